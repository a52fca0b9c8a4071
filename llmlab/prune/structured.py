"""Structured pruning: remove whole attention heads and MLP neurons, so the matrices really shrink.

Unstructured zeros leave a dense matmul as slow as before. Removing a *unit* (a head, a hidden
neuron) deletes rows and columns: a smaller dense model that every kernel runs faster, at a larger
quality cost per removed weight (Michel et al. 2019 for heads; LLM-Pruner 2023, Minitron 2024 for
neurons, followed by distillation to recover).

Which units? Each adds a vector to the residual stream. Neuron j of an MLP adds h_j(x) · w2[:, j];
head h adds W_o[:, h] · o_h(x), with W_o[:, h] the head's D columns of the output projection and o_h
its output (D values). Over calibration tokens X_u (n, D) of unit u, the size of what it adds is

    importance_u = ‖X_u W_uᵀ‖_F = sqrt(tr(W_u G_u W_uᵀ)),   G_u = X_uᵀ X_u (D, D),

which for a neuron (D = 1) is ‖h_j‖₂ · ‖w2[:, j]‖₂: Wanda's score summed over a whole unit.

Grouped-query attention ties query heads to KV heads (query head h reads KV head h // (H / Hkv)):
every KV group must keep the same number of query heads, and the KV cache keeps its size. Shrinking
it too means dropping whole groups, which costs much more quality.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
import torch.nn as nn

from llmlab import validate
from llmlab.validate import positive_int
from llmlab.nn.attention import MultiHeadAttention
from llmlab.nn.layers import SwiGLU
from llmlab.prune.wanda import InputGrams
from llmlab.quant.apply import calibration_batches


def unit_importance(w_out: torch.Tensor, gram: torch.Tensor) -> torch.Tensor:
    """w_out (C, U·D) the output projection read by U units of D inputs each (wo: heads, D = head dim;
    w2: neurons, D = 1); gram (U, D, D) the Gram matrix X_uᵀ X_u of each unit's inputs over the
    calibration tokens -> importance (U,) = ‖X_u W_uᵀ‖_F = sqrt(tr(W_u G_u W_uᵀ)). The trace is ≥ 0 in exact
    arithmetic, but where it is 0 (a unit whose weights read only directions its inputs never take) rounding
    can make it a tiny negative number: it is clamped at 0, or its square root would be NaN."""
    validate.tensor("gram", gram, floating=True, finite=True)
    validate.tensor("w_out", w_out, floating=True, finite=True)
    if gram.ndim != 3 or gram.shape[1] != gram.shape[2] or gram.numel() == 0:
        raise ValueError(f"gram must have shape (U, D, D) with U, D >= 1, got {tuple(gram.shape)}")
    U, D, _ = gram.shape
    if w_out.ndim != 2 or w_out.shape[0] == 0 or w_out.shape[1] != U * D:
        raise ValueError(f"w_out must have shape (C, U·D) = (C, {U * D}), got {tuple(w_out.shape)}")
    w = w_out.reshape(-1, U, D).transpose(0, 1).to(gram.dtype)  # (U, C, D)
    return torch.einsum("ucd,ude,uce->u", w, gram, w).clamp(min=0).sqrt()


def _check_fn(name: str, fn, what: str) -> None:
    if fn is not None and not callable(fn):
        raise TypeError(f"{name} must be a function {what} (or None for llmlab's), got {type(fn).__name__}")


@torch.no_grad()
def importances(model: nn.Module, batches: Iterable[torch.Tensor], importance_fn=None) -> dict[str, torch.Tensor]:
    """{'layers.i.heads': (H,), 'layers.i.neurons': (F,)} for every block, over ``model(ids)`` for each
    ids (B, T) of ``batches``. ``importance_fn``: (w_out (C, U·D), gram (U, D, D)) -> importance (U,), as
    ``unit_importance`` (None, the default: llmlab's); notebook 10 passes the learner's."""
    validate.layered_model("model", model)
    _check_fn("importance_fn", importance_fn, "(w_out, gram) -> importance (U,)")
    if not all(isinstance(getattr(b, "attention", None), MultiHeadAttention) and
               isinstance(getattr(getattr(b, "feed_forward", None), "w2", None), nn.Linear) for b in model.layers):
        raise TypeError(f"model must be an llmlab Decoder or Encoder (blocks with attention and a feed_forward "
                        f"with w2), got {type(model).__name__}")
    batches = calibration_batches(batches, tensors=True)
    outputs = {}  # the projections that read the units: wo (D = head dim) and w2 (D = 1) of every block
    for i, block in enumerate(model.layers):
        outputs[f"layers.{i}.heads"] = (block.attention.wo, block.attention.head_dim)
        outputs[f"layers.{i}.neurons"] = (block.feed_forward.w2, 1)
    with InputGrams(outputs) as hooks:
        for ids in batches:
            model(ids)
    if importance_fn is None:
        return {name: unit_importance(lin.weight, hooks.grams[name]).float() for name, (lin, _) in outputs.items()}
    out = {}
    for name, (lin, _) in outputs.items():
        gram = hooks.grams[name]
        imp = importance_fn(lin.weight.to(gram.dtype), gram)
        if not isinstance(imp, torch.Tensor) or imp.shape != gram.shape[:1] or not imp.is_floating_point():
            raise ValueError(f"importance_fn must return a float tensor of shape ({gram.shape[0]},), one score per "
                             f"unit of {name}, got {tuple(getattr(imp, 'shape', ())) or type(imp).__name__}")
        out[name] = imp.float()
    return out


def select_heads(importance: torch.Tensor, n_kv_heads: int, keep_per_group: int) -> torch.Tensor:
    """importance (H,) -> the sorted indices of the ``keep_per_group`` most important query heads of
    each of the n_kv_heads groups (heads g·H/Hkv ... (g+1)·H/Hkv - 1 share KV head g)."""
    validate.tensor("importance", importance, ndim=1, floating=True, finite=True)
    H = importance.shape[0]
    if H == 0:
        raise ValueError("importance is empty: it needs one score per query head (H,)")
    n_kv_heads = validate.divisor("n_kv_heads", n_kv_heads, H, what="the number of heads H")
    rep = H // n_kv_heads
    keep_per_group = positive_int("keep_per_group", keep_per_group)
    if keep_per_group > rep:
        raise ValueError(f"keep_per_group must be at most {rep} (query heads per KV group), got {keep_per_group}")
    top = importance.reshape(n_kv_heads, rep).topk(keep_per_group, dim=1).indices
    return (top + torch.arange(n_kv_heads, device=top.device)[:, None] * rep).flatten().sort().values


def _check_keep(keep, n: int, what: str) -> torch.Tensor:
    if keep is None or isinstance(keep, (str, bytes)):
        raise TypeError(f"keep must be a list or tensor of {what} indices, got {type(keep).__name__}")
    try:
        keep = torch.as_tensor(keep)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"keep must be a list or tensor of {what} indices, got {type(keep).__name__}") from None
    if keep.numel() and (keep.is_floating_point() or keep.is_complex() or keep.dtype == torch.bool):
        raise TypeError(f"keep must hold integer {what} indices, got dtype {keep.dtype}")
    keep = keep.long()
    if keep.ndim != 1 or keep.numel() == 0:
        raise ValueError(f"keep must be a non-empty 1-D list of {what} indices")
    if keep.unique().numel() != keep.numel() or bool(((keep < 0) | (keep >= n)).any()):
        raise ValueError(f"keep must hold distinct {what} indices in [0, {n}), got {keep.tolist()}")
    return keep.sort().values


def _check_decoder(model) -> nn.Module:
    """An llmlab Decoder: blocks in ``model.layers``, each with ``attention`` and a SwiGLU ``feed_forward``."""
    validate.layered_model("model", model)
    if not all(isinstance(getattr(b, "attention", None), MultiHeadAttention) and
               isinstance(getattr(b, "feed_forward", None), SwiGLU) for b in model.layers):
        raise TypeError(f"model must be an llmlab Decoder (blocks with attention and a SwiGLU feed_forward), "
                        f"got {type(model).__name__}")
    return model


def _rows(linear: nn.Linear, idx: torch.Tensor) -> nn.Linear:
    new = nn.Linear(linear.in_features, len(idx), bias=linear.bias is not None, device=linear.weight.device,
                    dtype=linear.weight.dtype)
    new.weight.data = linear.weight.data[idx.to(linear.weight.device)].clone()
    if linear.bias is not None:
        new.bias.data = linear.bias.data[idx.to(linear.weight.device)].clone()
    return new


def _cols(linear: nn.Linear, idx: torch.Tensor) -> nn.Linear:
    new = nn.Linear(len(idx), linear.out_features, bias=linear.bias is not None, device=linear.weight.device,
                    dtype=linear.weight.dtype)
    new.weight.data = linear.weight.data[:, idx.to(linear.weight.device)].clone()
    if linear.bias is not None:
        new.bias.data = linear.bias.data.clone()
    return new


def _from_weight(linear: nn.Linear, weight, rows: torch.Tensor | None, shape: tuple, fn: str, what: str) -> nn.Linear:
    """A new linear holding a caller's sliced ``weight`` (checked: ``shape``); the bias follows ``rows``
    (the kept output rows; None: the linear's outputs are all kept)."""
    if not isinstance(weight, torch.Tensor) or tuple(weight.shape) != shape or not weight.is_floating_point():
        raise ValueError(f"{fn} must return {what} as a float tensor of shape {shape}, got "
                         f"{tuple(getattr(weight, 'shape', ())) or type(weight).__name__}")
    new = nn.Linear(shape[1], shape[0], bias=linear.bias is not None, device=linear.weight.device,
                    dtype=linear.weight.dtype)
    new.weight.data = weight.detach().to(linear.weight.dtype).clone()
    if linear.bias is not None:
        new.bias.data = (linear.bias.data if rows is None else linear.bias.data[rows.to(linear.weight.device)]).clone()
    return new


def _tensors(out, n: int, fn: str) -> tuple:
    if not isinstance(out, (tuple, list)) or len(out) != n:
        raise TypeError(f"{fn} must return a tuple of {n} weights, got {type(out).__name__}")
    return tuple(out)


@torch.no_grad()
def prune_heads(attn: MultiHeadAttention, keep, slice_fn=None) -> MultiHeadAttention:
    """Keep only the query heads ``keep`` (indices into 0..H-1), in place: wq loses the other heads'
    rows, wo their columns. With GQA each KV group must keep the same number of heads.
    ``slice_fn``: (wq (H·D, C), wo (C, H·D), keep (h,) sorted, head_dim) -> (wq (h·D, C), wo (C, h·D)), the
    slicing (None, the default: llmlab's); notebook 10 passes the learner's ``slice_heads``."""
    if not isinstance(attn, MultiHeadAttention):
        raise TypeError(f"attn must be an llmlab MultiHeadAttention, got {type(attn).__name__}")
    _check_fn("slice_fn", slice_fn, "(wq, wo, keep, head_dim) -> (wq, wo)")
    H, D, Hkv = attn.n_heads, attn.head_dim, attn.n_kv_heads
    keep = _check_keep(keep, H, "head")
    per_group = torch.bincount(keep // (H // Hkv), minlength=Hkv)
    if bool((per_group != per_group[0]).any()) or per_group[0] == 0:
        raise ValueError(f"every KV group must keep the same (non-zero) number of query heads, got {per_group.tolist()}")
    idx = (keep[:, None] * D + torch.arange(D, device=keep.device)).flatten()  # the D rows of each kept head
    if slice_fn is None:
        attn.wq, attn.wo = _rows(attn.wq, idx), _cols(attn.wo, idx)
    else:
        wq, wo = _tensors(slice_fn(attn.wq.weight, attn.wo.weight, keep.to(attn.wq.weight.device), D), 2, "slice_fn")
        C, hD = attn.wq.in_features, len(idx)
        attn.wq = _from_weight(attn.wq, wq, idx, (hD, C), "slice_fn", "wq")
        attn.wo = _from_weight(attn.wo, wo, None, (attn.wo.out_features, hD), "slice_fn", "wo")
    attn.n_heads = len(keep)
    return attn


@torch.no_grad()
def prune_neurons(mlp: SwiGLU, keep, slice_fn=None) -> SwiGLU:
    """Keep only the hidden neurons ``keep`` of a SwiGLU MLP, in place: rows of w1 (gate) and w3 (up),
    columns of w2 (down). ``slice_fn``: (w1 (F, C), w3 (F, C), w2 (C, F), keep (f,) sorted) -> (w1 (f, C),
    w3 (f, C), w2 (C, f)), the slicing (None, the default: llmlab's); notebook 10 passes the learner's
    ``slice_neurons``."""
    if not isinstance(mlp, SwiGLU):
        raise TypeError(f"mlp must be an llmlab SwiGLU, got {type(mlp).__name__}")
    _check_fn("slice_fn", slice_fn, "(w1, w3, w2, keep) -> (w1, w3, w2)")
    keep = _check_keep(keep, mlp.w1.out_features, "neuron")
    if slice_fn is None:
        mlp.w1, mlp.w3, mlp.w2 = _rows(mlp.w1, keep), _rows(mlp.w3, keep), _cols(mlp.w2, keep)
        return mlp
    keep = keep.to(mlp.w1.weight.device)
    w1, w3, w2 = _tensors(slice_fn(mlp.w1.weight, mlp.w3.weight, mlp.w2.weight, keep), 3, "slice_fn")
    f, C = len(keep), mlp.w1.in_features
    mlp.w1, mlp.w3, mlp.w2 = (_from_weight(mlp.w1, w1, keep, (f, C), "slice_fn", "w1"),
                              _from_weight(mlp.w3, w3, keep, (f, C), "slice_fn", "w3"),
                              _from_weight(mlp.w2, w2, None, (mlp.w2.out_features, f), "slice_fn", "w2"))
    return mlp


@torch.no_grad()
def prune_structured(model: nn.Module, scores: dict[str, torch.Tensor], heads_per_group: int | None = None,
                     neuron_fraction: float = 1.0, *, select_fn=None, slice_heads_fn=None,
                     slice_neurons_fn=None) -> nn.Module:
    """Shrink every block of an llmlab Decoder in place: keep ``heads_per_group`` query heads per KV group
    (None: all) and the top ``neuron_fraction`` of MLP neurons, by ``scores`` from ``importances``.
    Everything is checked before the first block changes.

    The steps can be given as functions (None, the default: llmlab's); notebook 10 passes the learner's:
    ``select_fn`` as ``select_heads``, ``slice_heads_fn`` as ``prune_heads``'s ``slice_fn``, ``slice_neurons_fn``
    as ``prune_neurons``'s. A wrong result is refused (a head choice must keep every KV group equal), but a
    block already shrunk stays shrunk."""
    _check_decoder(model)
    _check_fn("select_fn", select_fn, "(importance, n_kv_heads, keep_per_group) -> head indices")
    _check_fn("slice_heads_fn", slice_heads_fn, "(wq, wo, keep, head_dim) -> (wq, wo)")
    _check_fn("slice_neurons_fn", slice_neurons_fn, "(w1, w3, w2, keep) -> (w1, w3, w2)")
    neuron_fraction = validate.real("neuron_fraction", neuron_fraction, above=0.0, maximum=1.0)
    if not isinstance(scores, Mapping):
        raise TypeError(f"scores must be a dict from structured.importances, got {type(scores).__name__}")
    if heads_per_group is not None:
        heads_per_group = positive_int("heads_per_group", heads_per_group)
    for i, block in enumerate(model.layers):
        attn = block.attention
        wanted = {f"layers.{i}.neurons": block.feed_forward.w1.out_features}
        if heads_per_group is not None:
            rep = attn.n_heads // attn.n_kv_heads
            if heads_per_group > rep:
                raise ValueError(f"heads_per_group must be <= {rep} (query heads per KV group of layers.{i}), "
                                 f"got {heads_per_group}")
            wanted[f"layers.{i}.heads"] = attn.n_heads
        for key, size in wanted.items():
            if key not in scores:
                raise ValueError(f"scores has no entry {key!r}: compute them with structured.importances on this model")
            s = scores[key]
            if not isinstance(s, torch.Tensor) or s.shape != (size,) or not s.is_floating_point():
                raise ValueError(f"scores[{key!r}] must be a float tensor of shape ({size},), got "
                                 f"{tuple(getattr(s, 'shape', ())) or type(s).__name__}")
    select = select_heads if select_fn is None else select_fn
    for i, block in enumerate(model.layers):
        if heads_per_group is not None:
            attn = block.attention
            prune_heads(attn, select(scores[f"layers.{i}.heads"], attn.n_kv_heads, heads_per_group), slice_heads_fn)
        s = scores[f"layers.{i}.neurons"]
        n_keep = max(1, round(neuron_fraction * s.numel()))
        prune_neurons(block.feed_forward, s.topk(n_keep).indices, slice_neurons_fn)
    return model
