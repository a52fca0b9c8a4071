"""Applying a quantization scheme to every linear layer of a model's blocks.

``model.layers`` holds the Transformer blocks of both llmlab models (SmolLM2's ``Decoder`` and
MiniLM's ``Encoder``); the embedding and, for SmolLM2, the tied LM head stay in float32 in every scheme
here, as in most weight-only recipes (llama.cpp keeps them at 6-8 bits).
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn


def block_linears(model: nn.Module) -> dict[str, nn.Linear]:
    """{name: module} of every ``nn.Linear`` inside ``model.layers`` (names like 'layers.3.attention.wq')."""
    if not isinstance(getattr(model, "layers", None), nn.ModuleList):
        raise TypeError(f"expected an llmlab Decoder or Encoder (a model with .layers), got {type(model).__name__}")
    return {f"layers.{n}": m for n, m in model.layers.named_modules() if isinstance(m, nn.Linear)}


@torch.no_grad()
def map_weights(model: nn.Module, fn: Callable[[torch.Tensor], torch.Tensor]) -> nn.Module:
    """Replace, in place, each block linear's weight W by fn(W) (same shape): fake quantization."""
    for name, m in block_linears(model).items():
        w = fn(m.weight)
        if not isinstance(w, torch.Tensor) or w.shape != m.weight.shape:
            raise ValueError(f"fn must return a tensor of shape {tuple(m.weight.shape)} for {name}")
        m.weight.copy_(w)
    return model


def replace_linears(model: nn.Module, make: Callable[[str, nn.Linear], nn.Module]) -> nn.Module:
    """Swap, in place, each block linear for ``make(name, linear)`` (an int4 layer, a W8A8 layer, ...)."""
    for name, m in block_linears(model).items():
        parent, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent), attr, make(name, m))
    return model


def linear_weight_bytes(model: nn.Module) -> int:
    """Bytes of the block linears' weights as stored: ``weight_nbytes`` of quantized layers, else the
    weight tensor's own size."""
    total = 0
    for m in model.layers.modules():
        if hasattr(m, "weight_nbytes"):
            total += m.weight_nbytes
        elif isinstance(m, nn.Linear):
            total += m.weight.numel() * m.weight.element_size()
    return total
