"""Magnitude pruning: set the smallest weights to zero and keep a mask of the survivors.

A mask M has W's shape, True where a weight is kept; the pruned weight is W ⊙ M. The *sparsity* is the
share of zeros. With a score S (|W| here; Wanda's |W|·‖X‖ in ``wanda``), the k = round(sparsity · n)
lowest-scoring weights of each comparison group are removed. The group is a choice:

row      each output row (of W (N, K)) loses the same share: every output neuron keeps some inputs.
tensor   one threshold per matrix: rows with small weights may be emptied.
global   one threshold over all matrices: layers with small weights (often the sensitive ones) lose
         the most.

``torch.nn.utils.prune`` implements the tensor scope (``l1_unstructured``) and the global one
(``global_unstructured`` with ``L1Unstructured``); both count k = round(amount · n), as here, so the
masks agree (``tests/test_prune.py``). A mask is not compression by itself: the zeros still take
space and time in a dense matmul. Sparse formats (``compress``) or N:M hardware (``nm``) cash it in.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

import torch

from llmlab import validate

Scope = Literal["row", "tensor"]


def check_sparsity(sparsity) -> float:
    """The share of weights set to zero: a number in [0, 1)."""
    return validate.probability("sparsity", sparsity, allow_one=False)


def check_scores(name: str, s) -> torch.Tensor:
    """s: weight-shaped scores (N, K), float, not empty, without NaN; the messages call it ``name`` (the
    argument of the function that checks it)."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a str (the argument's name for the messages), got {type(name).__name__}")
    if not name:
        raise ValueError("name is empty: give the argument's name for the messages")
    if not isinstance(s, torch.Tensor) or not s.is_floating_point():
        raise TypeError(f"{name} must be a float torch.Tensor, got {getattr(s, 'dtype', type(s).__name__)}")
    if s.ndim != 2:
        raise ValueError(f"{name} must be a 2-D weight-shaped tensor (N, K), got shape {tuple(s.shape)}")
    if s.numel() == 0:
        raise ValueError(f"{name} is empty, shape {tuple(s.shape)}: there is no weight to prune")
    if bool(torch.isnan(s).any()):
        raise ValueError(f"{name} holds NaN values")
    return s


def n_pruned(n: int, sparsity: float) -> int:
    """How many of n weights a sparsity removes: round(sparsity · n), as torch.nn.utils.prune counts."""
    return round(check_sparsity(sparsity) * validate.positive_int("n", n, minimum=0))


def lowest_k_mask(scores: torch.Tensor, k: int) -> torch.Tensor:
    """scores (R, n) -> bool mask (R, n), False at the k lowest scores of each row.

    Through the k-th smallest value t of each row (``kthvalue``, about twice as fast as ``topk`` for
    k ~ n/2): everything below t goes, and of the scores equal to t only as many as still needed, the
    first ones. Ties are common: SmolLM2's weights come from 4-bit blocks, 16 values per 32 weights."""
    check_scores("scores", scores)
    return _lowest_k_mask(scores, validate.integer("k", k, 0, scores.shape[1]))


def _lowest_k_mask(scores: torch.Tensor, k: int) -> torch.Tensor:
    if k == 0:
        return torch.ones_like(scores, dtype=torch.bool)
    t = scores.kthvalue(k, dim=1, keepdim=True).values  # (R, 1)
    tie = scores == t
    need = k - (scores < t).sum(1, keepdim=True)  # how many of the ties go
    return (scores > t) | (tie & (tie.cumsum(1) > need))


def prune_mask(scores: torch.Tensor, sparsity: float, scope: Scope = "row") -> torch.Tensor:
    """scores (N, K) -> bool mask (N, K), False at the round(sparsity · K) lowest scores of each row
    (scope "row") or the round(sparsity · N · K) lowest of the whole matrix (scope "tensor")."""
    check_scores("scores", scores)
    if scope not in ("row", "tensor"):
        raise ValueError(f"scope must be 'row' or 'tensor', got {scope!r}")
    flat = scores if scope == "row" else scores.reshape(1, -1)
    return _lowest_k_mask(flat, n_pruned(flat.shape[1], sparsity)).reshape(scores.shape)


def magnitude_mask(w: torch.Tensor, sparsity: float, scope: Scope = "row") -> torch.Tensor:
    """The mask that removes the smallest |w|: ``prune_mask(|w|, sparsity, scope)``."""
    return prune_mask(check_scores("w", w).abs(), sparsity, scope)


def global_masks(scores: dict[str, torch.Tensor], sparsity: float) -> dict[str, torch.Tensor]:
    """One threshold over all matrices: {name: scores (N, K)} -> {name: bool mask}, False at the
    round(sparsity · total) lowest scores of all of them together."""
    if not isinstance(scores, Mapping):
        raise TypeError(f"scores must be a dict {{name: scores (N, K)}}, got {type(scores).__name__}")
    if not scores:
        raise ValueError("scores is empty: give at least one matrix")
    check_sparsity(sparsity)
    flat = torch.cat([check_scores(f"scores[{n!r}]", s).reshape(-1) for n, s in scores.items()])
    keep = _lowest_k_mask(flat[None], n_pruned(flat.numel(), sparsity))[0]
    masks, start = {}, 0
    for name, s in scores.items():
        masks[name] = keep[start:start + s.numel()].reshape(s.shape)
        start += s.numel()
    return masks


def weight_change_ratio(w: torch.Tensor, mask: torch.Tensor) -> float:
    """‖W - W ⊙ M‖_F / ‖W‖_F: how much of the matrix a mask removes, by norm rather than by count. Equal
    counts remove very different norms in different layers; this ratio is a cheap sensitivity proxy.
    w: a float tensor without NaN or inf; mask: a bool tensor of w's shape (True: kept)."""
    validate.tensor("w", w, floating=True, finite=True)
    if validate.tensor("mask", mask).dtype != torch.bool:
        raise TypeError(f"mask must be a bool tensor (True where a weight is kept), got dtype {mask.dtype}")
    if mask.shape != w.shape:
        raise ValueError(f"mask shape {tuple(mask.shape)} differs from w's {tuple(w.shape)}")
    return float(torch.linalg.vector_norm(w * ~mask) / torch.linalg.vector_norm(w).clamp(min=1e-30))


def sparsity_of(tensors) -> float:
    """Share of exact zeros in a tensor or an iterable of tensors."""
    if isinstance(tensors, (str, bytes)) or not isinstance(tensors, (torch.Tensor, Iterable)):
        raise TypeError(f"tensors must be a tensor or an iterable of tensors, got {type(tensors).__name__}")
    tensors = [tensors] if isinstance(tensors, torch.Tensor) else list(tensors)
    if not tensors:
        raise ValueError("tensors is empty: give at least one tensor")
    for t in tensors:
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"tensors must hold torch.Tensors, found {type(t).__name__}")
    if sum(t.numel() for t in tensors) == 0:
        raise ValueError("tensors hold no values: the share of zeros of nothing is undefined")
    return sum(int((t == 0).sum()) for t in tensors) / sum(t.numel() for t in tensors)
