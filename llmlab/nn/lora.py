"""LoRA: fine-tune a large model by training a low-rank correction to a few of its matrices.

A frozen linear layer y = x Wᵀ (W: (out, in)) gets a trainable update of rank r ≪ min(out, in):

    y = x Wᵀ + (α / r) · x Aᵀ Bᵀ,        A: (r, in) ~ small random,  B: (out, r) = 0

so training starts exactly at the pre-trained model (B = 0) and learns r·(in + out) numbers per
matrix instead of in·out. After training the update folds into the weight, W' = W + (α/r) B A, and
the merged model costs nothing extra at inference (Hu et al. 2021; Hugging Face PEFT's ``LoraConfig``
uses the same r, α and target-module names).
"""
from __future__ import annotations

import math
from collections.abc import Collection, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from llmlab import validate


def _check_adapter(weight: torch.Tensor, A: torch.Tensor, B: torch.Tensor, alpha: float) -> None:
    """weight (out, in), A (r, in), B (out, r) floating-point, with r >= 1; alpha a finite number (0 turns the
    adapter off, a negative one is the same as negating B). Shapes and dtypes only: no pass over the values."""
    for name, t in (("weight", weight), ("A", A), ("B", B)):
        validate.tensor(name, t, ndim=2, floating=True)
    out_f, in_f = weight.shape
    r = A.shape[0]
    if r < 1 or A.shape[1] != in_f:
        raise ValueError(f"A must have shape (r, {in_f}) with r >= 1 for a weight (out, in) = {tuple(weight.shape)}, "
                         f"got {tuple(A.shape)}")
    if B.shape != (out_f, r):
        raise ValueError(f"B must have shape ({out_f}, {r}) = (out, r) for weight {tuple(weight.shape)} and "
                         f"A {tuple(A.shape)}, got {tuple(B.shape)}")
    validate.real("alpha", alpha)


def _check_input(x: torch.Tensor, bias: torch.Tensor | None, weight: torch.Tensor) -> None:
    """x (..., in) floating-point and bias None or (out,), for weight (out, in)."""
    validate.tensor("x", x, min_ndim=1, floating=True)
    if x.shape[-1] != weight.shape[1]:
        raise ValueError(f"x must have width {weight.shape[1]} (in) in its last dim, got shape {tuple(x.shape)}")
    if bias is not None:
        validate.tensor("bias", bias, floating=True)
        if bias.shape != weight.shape[:1]:
            raise ValueError(f"bias must have shape ({weight.shape[0]},) = (out,), got {tuple(bias.shape)}")


def _lora(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, A: torch.Tensor, B: torch.Tensor,
          alpha: float) -> torch.Tensor:
    """``lora_linear`` without its checks (a layer's forward pass)."""
    return F.linear(x, weight, bias) + (alpha / A.shape[0]) * F.linear(F.linear(x, A), B)


def lora_linear(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, A: torch.Tensor, B: torch.Tensor, alpha: float
) -> torch.Tensor:
    """x (..., in) -> (..., out) = x Wᵀ + b + (alpha / r) (x Aᵀ) Bᵀ, with r = A.shape[0].

    The adapter goes through the rank-r bottleneck, (x Aᵀ) Bᵀ: it never builds the (out, in) matrix B A.
    """
    _check_adapter(weight, A, B, alpha)
    _check_input(x, bias, weight)
    return _lora(x, weight, bias, A, B, alpha)


def merged_weight(weight: torch.Tensor, A: torch.Tensor, B: torch.Tensor, alpha: float) -> torch.Tensor:
    """W + (alpha / r) B A: (out, in), the weight of a plain layer equal to the adapted one."""
    _check_adapter(weight, A, B, alpha)
    return weight + (alpha / A.shape[0]) * (B @ A)


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable rank-``rank`` adapter; x (..., in) -> (..., out)."""

    def __init__(self, base: nn.Linear, rank: int = 8, alpha: float = 16.0, generator: torch.Generator | None = None):
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"base must be an nn.Linear (LoRA wraps a linear layer), got {type(base).__name__}")
        rank = validate.integer("rank", rank, 1, min(base.in_features, base.out_features))
        self.base, self.rank, self.alpha = base, rank, validate.real("alpha", alpha)
        base.weight.requires_grad_(False)
        if base.bias is not None:
            base.bias.requires_grad_(False)
        w = base.weight
        # A as nn.Linear's default (Kaiming-uniform) init, B = 0: the adapter starts as the identity.
        bound = 1 / math.sqrt(base.in_features)
        A = torch.rand(rank, base.in_features, generator=generator, dtype=torch.float32) * 2 * bound - bound
        self.A = nn.Parameter(A.to(device=w.device, dtype=w.dtype))
        self.B = nn.Parameter(torch.zeros(base.out_features, rank, device=w.device, dtype=w.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # the adapter's own shapes were fixed in __init__; x is explained only if the product fails (a forward
        # pass runs once per targeted layer per step: no checks on success)
        try:
            return _lora(x, self.base.weight, self.base.bias, self.A, self.B, self.alpha)
        except (RuntimeError, TypeError) as error:
            validate.explain_input("x", x, self.base.weight.shape[1], error, self.base.weight.dtype)
            raise

    def merge(self) -> nn.Linear:
        """A plain ``nn.Linear`` with W + (α/r) B A (and the same bias)."""
        out = nn.Linear(self.base.in_features, self.base.out_features, bias=self.base.bias is not None,
                        device=self.base.weight.device, dtype=self.base.weight.dtype)
        with torch.no_grad():
            out.weight.copy_(merged_weight(self.base.weight, self.A, self.B, self.alpha))
            if self.base.bias is not None:
                out.bias.copy_(self.base.bias)
        return out


def _check_model(model) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    return model


def add_lora(
    model: nn.Module, targets: Sequence[str] = ("wq", "wv"), rank: int = 8, alpha: float = 16.0, seed: int = 0
) -> list[str]:
    """Freeze every parameter of ``model`` and wrap each ``nn.Linear`` whose name ends with one of
    ``targets`` (e.g. "wq" matches "layers.3.attention.wq") in a ``LoRALinear``, in place.

    Returns the wrapped modules' names; a ValueError if nothing matched (a misspelt target would
    otherwise train nothing, silently).
    """
    _check_model(model)
    if isinstance(targets, str) or not isinstance(targets, Collection):
        raise TypeError(f"targets must be a sequence of layer names such as ('wq', 'wv'), got {type(targets).__name__}")
    if not targets:
        raise ValueError("targets is empty: name the linear layers to adapt, e.g. ('wq', 'wv')")
    for t in targets:
        if not isinstance(t, str):
            raise TypeError(f"targets must hold layer names (str), found {type(t).__name__} {t!r}")
    # checked before anything is frozen or wrapped: a bad argument leaves the model as it was
    validate.positive_int("rank", rank)
    validate.real("alpha", alpha)
    seed = validate.integer("seed", seed)
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and n.split(".")[-1] in targets]
    if not names:
        linear = sorted({n.split(".")[-1] for n, m in model.named_modules() if isinstance(m, nn.Linear)})
        raise ValueError(f"no nn.Linear named {list(targets)} in the model: targets must name some of its linear "
                         f"layers, which are named {linear}")
    for p in model.parameters():
        p.requires_grad_(False)
    g = torch.Generator().manual_seed(seed)
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        setattr(parent, child, LoRALinear(getattr(parent, child), rank, alpha, generator=g))
    return names


def merge_lora(model: nn.Module) -> nn.Module:
    """Replace every ``LoRALinear`` in ``model`` by its merged ``nn.Linear``, in place; returns the model."""
    _check_model(model)
    for name, module in list(model.named_modules()):
        if isinstance(module, LoRALinear):
            parent_name, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent_name), child, module.merge())
    return model


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts; a tied weight counts once."""
    _check_model(model)
    params = list(model.parameters())  # nn.Module.parameters() yields a shared Parameter once
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)
