"""Pruning every linear layer of a model's blocks with one recipe (magnitude or Wanda, unstructured or N:M)."""
from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
import torch.nn as nn

from llmlab.prune.magnitude import check_sparsity, prune_mask
from llmlab.prune.nm import check_nm, nm_mask
from llmlab.prune.wanda import wanda_scores
from llmlab.quant.apply import block_linears


@torch.no_grad()
def prune_model(model: nn.Module, sparsity: float = 0.5, *, norms: dict[str, torch.Tensor] | None = None,
                nm: tuple[int, int] | None = None, only: str | None = None, mask_fn: Callable | None = None,
                nm_fn: Callable | None = None, score_fn: Callable | None = None) -> dict[str, torch.Tensor]:
    """Zero, in place, the lowest-scoring weights of each block linear; returns {name: mask}.

    Scores are |W| (magnitude) or, with ``norms`` from ``wanda.input_norms``, Wanda's |W|·‖X_j‖.
    ``nm=(2, 4)`` keeps 2 of every 4 instead of pruning ``sparsity`` of each row. ``only``: prune just
    the linears whose name ends with it (e.g. 'wq', 'w2') or contains it (e.g. 'layers.3.').

    The steps can be given as functions (None, the default: llmlab's); notebook 10 passes the learner's:
    ``mask_fn`` (scores (N, K), sparsity) -> bool mask (N, K), as ``magnitude.prune_mask``;
    ``nm_fn`` (scores (N, K), n, m) -> bool mask (N, K), as ``nm.nm_mask``;
    ``score_fn`` (w (N, K), x (n_tokens, K)) -> scores (N, K) = |W| ‖X_j‖, Wanda's score from a layer's inputs.
    Only the norms are kept, so ``score_fn`` gets x = norms[name][None], one row whose feature norms are
    exactly the calibration norms: the same scores without storing every token's inputs."""
    masks = {}
    linears = block_linears(model)
    check_sparsity(sparsity)
    for name, fn, what in (("mask_fn", mask_fn, "(scores, sparsity) -> bool mask"),
                           ("nm_fn", nm_fn, "(scores, n, m) -> bool mask"),
                           ("score_fn", score_fn, "(w, x) -> scores")):
        if fn is not None and not callable(fn):
            raise TypeError(f"{name} must be a function {what} (or None for llmlab's), got {type(fn).__name__}")
    if score_fn is not None and norms is None:
        raise ValueError("score_fn scores weights by their inputs: give norms (wanda.input_norms) with it")
    if nm_fn is not None and nm is None:
        raise ValueError("nm_fn makes N:M masks: give nm=(n, m) with it")
    if nm is not None:
        if not isinstance(nm, (tuple, list)) or len(nm) != 2:
            raise TypeError(f"nm must be a pair (n, m) such as (2, 4), got {nm!r}")
        check_nm(*nm)
    if norms is not None and not isinstance(norms, Mapping):
        raise TypeError(f"norms must be a dict {{name: norms (K,)}} from wanda.input_norms, got {type(norms).__name__}")
    if only is not None:
        if not isinstance(only, str):
            raise TypeError(f"only must be a str (part of a linear's name, e.g. 'w2'), got {type(only).__name__}")
        if not only:
            raise ValueError("only is empty: give part of a linear's name, e.g. 'w2', or None for all of them")
        linears = {n: m for n, m in linears.items() if n.endswith(only) or only in n}
        if not linears:
            raise ValueError(f"no block linear matches {only!r}")
    for name, m in linears.items():
        if norms is None:
            scores = m.weight.abs()
        elif name not in norms:
            raise ValueError(f"norms has no entry for {name}: compute them with wanda.input_norms on this model")
        elif score_fn is None:
            scores = wanda_scores(m.weight, norms[name])
        else:
            scores = _given(score_fn(m.weight, norms[name][None].to(m.weight.dtype)), m.weight, "score_fn", name)
        if nm is not None:
            mask = nm_mask(scores, *nm) if nm_fn is None else _given(nm_fn(scores, *nm), m.weight, "nm_fn", name)
        else:
            mask = prune_mask(scores, sparsity) if mask_fn is None else _given(mask_fn(scores, sparsity), m.weight,
                                                                              "mask_fn", name)
        masks[name] = mask
        m.weight.mul_(mask)
    return masks


def _given(out, w: torch.Tensor, fn: str, name: str) -> torch.Tensor:
    """A caller's scores (float) or mask (bool) for the weight ``w`` of linear ``name``, checked."""
    want_bool = fn != "score_fn"
    if not isinstance(out, torch.Tensor) or out.shape != w.shape:
        raise ValueError(f"{fn} must return a tensor of the weight's shape {tuple(w.shape)} for {name}, got "
                         f"{tuple(getattr(out, 'shape', ())) or type(out).__name__}")
    if want_bool and out.dtype != torch.bool:
        raise TypeError(f"{fn} must return a bool mask (True = kept) for {name}, got dtype {out.dtype}")
    if not want_bool and not out.is_floating_point():
        raise TypeError(f"{fn} must return float scores for {name}, got dtype {out.dtype}")
    return out
