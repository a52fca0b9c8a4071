"""llmlab: reference implementations, real-model loaders and the grader of an LLM course.

Import stays light (no torch at import time) so the grader and the course tools start fast.
"""
from __future__ import annotations

import os

__version__ = "0.1.0"

_DEVICE_ENV = "LLMLAB_DEVICE"


def device():
    """The torch device the course runs on.

    ``LLMLAB_DEVICE`` (e.g. ``cpu``, ``cuda``, ``cuda:1``, ``mps``) overrides; otherwise CUDA when
    present, else CPU. An override naming a device that is not available is an error, not a silent
    fallback: a learner who asks for the GPU should know when they do not get it.
    """
    import torch

    wanted = os.environ.get(_DEVICE_ENV, "").strip()
    if wanted:
        try:
            dev = torch.device(wanted)
        except RuntimeError as e:
            raise ValueError(
                f"{_DEVICE_ENV}={wanted!r} is not a torch device name; expected e.g. 'cpu', 'cuda', 'cuda:0', 'mps'"
            ) from e
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"{_DEVICE_ENV}={wanted!r} but CUDA is not available on this machine")
        if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"{_DEVICE_ENV}={wanted!r} but only {torch.cuda.device_count()} CUDA device(s) are present"
            )
        if dev.type == "mps" and not torch.backends.mps.is_available():
            raise ValueError(f"{_DEVICE_ENV}={wanted!r} but MPS is not available on this machine")
        return dev
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _first_tensor(model, floating: bool = False):
    """The model's first parameter, else its first buffer (a model of quantized buffers only), that is
    floating-point if asked; None for a callable without any (a plain function of token ids)."""
    import itertools

    tensors = itertools.chain(getattr(model, "parameters", tuple)(), getattr(model, "buffers", tuple)())
    return next((t for t in tensors if t.is_floating_point() or not floating), None)


def model_device(model):
    """The device of ``model``'s parameters (or buffers, for a model of quantized buffers only), where
    its inputs must go; None for a callable without either (a plain function of token ids), whose
    inputs can stay where they are."""
    t = _first_tensor(model)
    return None if t is None else t.device


def model_dtype(model):
    """The floating dtype of ``model``'s parameters (or buffers): what its activations, and a KV cache
    built for it, are computed in. ValueError for a model without a floating tensor."""
    t = _first_tensor(model, floating=True)
    if t is None:
        raise ValueError("the model has no floating-point parameter or buffer to take a dtype from")
    return t.dtype


__all__ = ["device", "model_device", "model_dtype", "__version__"]
