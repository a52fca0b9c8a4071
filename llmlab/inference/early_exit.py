"""Early exit: stop computing layers once the prediction is confident.

Every block of a pre-norm decoder adds to one residual stream, and the final norm + LM head can be
applied to the stream after *any* block, giving that depth's guess at the next token ("logit lens").
Easy tokens are often settled early; early exit (CALM, Schuster et al., 2022) stops at the first
exit layer whose top probability reaches a threshold τ: a lower τ saves more layers and changes
more predictions. Without training for it (LayerSkip does), the early guesses of a small model are
weak; they still make a self-speculative draft, because verification by the full model keeps the
output exact (``llmlab.inference.speculative.layer_draft``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn


@torch.no_grad()
def exit_predictions(model: nn.Module, idx: torch.Tensor, layers: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-1 token and its probability at each exit: after blocks ``layers`` (1-based counts, the
    last one = n_layers is the model itself). idx (1, T) -> preds (E, T) long, confidence (E, T)."""
    n = model.cfg.n_layers
    if not layers or any(not 1 <= k <= n for k in layers):
        raise ValueError(f"layers must be a non-empty list of block counts in [1, {n}], got {layers!r}")
    hidden: dict[int, torch.Tensor] = {}
    hooks = [model.layers[k - 1].register_forward_hook(lambda mod, args, out, k=k: hidden.__setitem__(k, out))
             for k in layers]
    try:
        model(idx)
    finally:
        for h in hooks:
            h.remove()
    preds, conf = [], []
    for k in layers:
        probs = model.output(model.norm(hidden[k][0])).float().softmax(-1)  # (T, V)
        c, p = probs.max(-1)
        preds.append(p)
        conf.append(c)
    return torch.stack(preds), torch.stack(conf)


@dataclass(frozen=True)
class ExitPoint:
    threshold: float
    layers_fraction: float  # mean share of the blocks computed: the compute saved is 1 - this
    agreement: float  # share of positions whose prediction equals the full model's


def exit_tradeoff(preds: torch.Tensor, conf: torch.Tensor, layers: list[int], n_layers: int,
                  thresholds: list[float]) -> list[ExitPoint]:
    """For each τ: exit at the first layer with confidence >= τ (else at the last exit, which must be
    the full model), and report compute used and agreement with the full model."""
    if layers[-1] != n_layers:
        raise ValueError("the last exit must be the full model (layers[-1] == n_layers)")
    depth = torch.tensor(layers, dtype=torch.float)
    points = []
    for tau in thresholds:
        ok = conf >= tau
        ok[-1] = True
        first = ok.float().argmax(0)  # (T,) index of the first confident exit
        chosen = preds.gather(0, first[None])[0]
        points.append(ExitPoint(float(tau), float(depth[first].mean() / n_layers),
                                float((chosen == preds[-1]).float().mean())))
    return points
