"""Pruning every linear layer of a model's blocks with one recipe (magnitude or Wanda, unstructured or N:M)."""
from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn as nn

from llmlab.prune.magnitude import check_sparsity, prune_mask
from llmlab.prune.nm import check_nm, nm_mask
from llmlab.prune.wanda import wanda_scores
from llmlab.quant.apply import block_linears


@torch.no_grad()
def prune_model(model: nn.Module, sparsity: float = 0.5, *, norms: dict[str, torch.Tensor] | None = None,
                nm: tuple[int, int] | None = None, only: str | None = None) -> dict[str, torch.Tensor]:
    """Zero, in place, the lowest-scoring weights of each block linear; returns {name: mask}.

    Scores are |W| (magnitude) or, with ``norms`` from ``wanda.input_norms``, Wanda's |W|·‖X_j‖.
    ``nm=(2, 4)`` keeps 2 of every 4 instead of pruning ``sparsity`` of each row. ``only``: prune just
    the linears whose name ends with it (e.g. 'wq', 'w2') or contains it (e.g. 'layers.3.')."""
    masks = {}
    linears = block_linears(model)
    check_sparsity(sparsity)
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
        else:
            scores = wanda_scores(m.weight, norms[name])
        masks[name] = nm_mask(scores, *nm) if nm is not None else prune_mask(scores, sparsity)
        m.weight.mul_(masks[name])
    return masks
