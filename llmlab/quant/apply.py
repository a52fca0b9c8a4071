"""Applying a quantization scheme to every linear layer of a model's blocks.

``model.layers`` holds the Transformer blocks of both llmlab models (SmolLM2's ``Decoder`` and
MiniLM's ``Encoder``); the embedding and, for SmolLM2, the tied LM head stay in float32 in every scheme
here, as in most weight-only recipes (llama.cpp keeps them at 6-8 bits).
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Callable

import torch
import torch.nn as nn

from llmlab import validate


def calibration_batches(batches, tensors: bool = False) -> Iterator:
    """``batches`` as a calibration pass reads them, each checked as it comes: a non-empty tuple (or list) of
    arguments for ``model(*batch)``, or with ``tensors`` an id tensor for ``model(ids)``. The iterator raises
    once it is over if there was none, since a calibration without data would silently measure nothing."""
    validate.flag("tensors", tensors)
    what = "id tensors (B, T) for model(ids)" if tensors else "tuples of arguments for model(*batch), e.g. (ids,)"
    if isinstance(batches, (str, bytes)) or not isinstance(batches, Iterable):
        raise TypeError(f"batches must be an iterable of {what}, got {type(batches).__name__}")
    return _checked_batches(batches, tensors, what)


def _checked_batches(batches: Iterable, tensors: bool, what: str) -> Iterator:
    n = 0
    for batch in batches:
        if tensors and not isinstance(batch, torch.Tensor):
            raise TypeError(f"batches must hold {what}, found {type(batch).__name__}")
        if not tensors:
            if not isinstance(batch, (tuple, list)):
                raise TypeError(f"batches must hold {what}, found {type(batch).__name__}")
            if not batch:
                raise ValueError(f"batches holds an empty tuple: it must hold {what}")
        n += 1
        yield batch
    if n == 0:
        raise ValueError(f"batches is empty: give at least one batch of calibration data ({what})")


def block_linears(model: nn.Module) -> dict[str, nn.Linear]:
    """{name: module} of every ``nn.Linear`` inside ``model.layers`` (names like 'layers.3.attention.wq')."""
    return {f"layers.{n}": m for n, m in validate.layered_model("model", model).layers.named_modules() if isinstance(m, nn.Linear)}


def _check_callable(name: str, fn, what: str) -> None:
    if not callable(fn):
        raise TypeError(f"{name} must be a function {what}, got {type(fn).__name__}")


@torch.no_grad()
def map_weights(model: nn.Module, fn: Callable[[torch.Tensor], torch.Tensor]) -> nn.Module:
    """Replace, in place, each block linear's weight W by fn(W) (same shape): fake quantization."""
    linears = block_linears(model)
    _check_callable("fn", fn, "of a weight, W -> W^")
    for name, m in linears.items():
        w = fn(m.weight)
        if not isinstance(w, torch.Tensor) or w.shape != m.weight.shape:
            raise ValueError(f"fn must return a tensor of shape {tuple(m.weight.shape)} for {name}")
        m.weight.copy_(w)
    return model


def replace_linears(model: nn.Module, make: Callable[[str, nn.Linear], nn.Module]) -> nn.Module:
    """Swap, in place, each block linear for ``make(name, linear)`` (an int4 layer, a W8A8 layer, ...)."""
    linears = block_linears(model)
    _check_callable("make", make, "(name, linear) -> module")
    for name, m in linears.items():
        parent, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent), attr, make(name, m))
    return model


def linear_weight_bytes(model: nn.Module) -> int:
    """Bytes of the block linears' weights as stored: ``weight_nbytes`` of quantized layers, else the
    weight tensor's own size."""
    total = 0
    for m in validate.layered_model("model", model).layers.modules():
        if hasattr(m, "weight_nbytes"):
            total += m.weight_nbytes
        elif isinstance(m, nn.Linear):
            total += m.weight.numel() * m.weight.element_size()
    return total
