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

from llmlab import validate
from llmlab.nn.model import Decoder


def _check_layers(layers, n_layers: int) -> list[int]:
    """A non-empty list of block counts in [1, n_layers]."""
    if isinstance(layers, (str, bytes)) or not isinstance(layers, (list, tuple)):
        raise TypeError(f"layers must be a list of block counts, got {type(layers).__name__}")
    if not layers:
        raise ValueError(f"layers must be a non-empty list of block counts in [1, {n_layers}], got {layers!r}")
    return [validate.integer(f"layers[{i}]", k, 1, n_layers) for i, k in enumerate(layers)]


@torch.no_grad()
def exit_predictions(model: nn.Module, idx: torch.Tensor, layers: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-1 token and its probability at each exit: after blocks ``layers`` (1-based counts, the
    last one = n_layers is the model itself). idx (1, T) -> preds (E, T) long, confidence (E, T)."""
    if not isinstance(model, Decoder):
        raise TypeError(f"model must be an llmlab Decoder, got {type(model).__name__}")
    n = model.cfg.n_layers
    layers = _check_layers(layers, n)
    validate.token_batch("idx", idx, model.cfg.vocab_size, model.cfg.max_seq_len)
    if idx.shape[0] != 1:
        raise ValueError(f"idx must have shape (1, T): one sequence, got {tuple(idx.shape)}")
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

    def __post_init__(self):
        validate.real("threshold", self.threshold)  # any τ: above 1 never exits early
        validate.probability("layers_fraction", self.layers_fraction, allow_zero=False)
        validate.probability("agreement", self.agreement)


def exit_tradeoff(preds: torch.Tensor, conf: torch.Tensor, layers: list[int], n_layers: int,
                  thresholds: list[float]) -> list[ExitPoint]:
    """For each τ: exit at the first layer with confidence >= τ (else at the last exit, which must be
    the full model), and report compute used and agreement with the full model.
    preds (E, T) and conf (E, T) as ``exit_predictions`` returns them for the E exits ``layers``."""
    n_layers = validate.positive_int("n_layers", n_layers)
    layers = _check_layers(layers, n_layers)
    if layers[-1] != n_layers:
        raise ValueError("the last exit must be the full model (layers[-1] == n_layers)")
    validate.tensor("preds", preds, ndim=2)
    if preds.dtype.is_floating_point or preds.dtype.is_complex or preds.dtype == torch.bool:
        raise TypeError(f"preds must hold token ids (an integer tensor), got dtype {preds.dtype}")
    if preds.numel() and int(preds.min()) < 0:
        raise ValueError(f"preds must hold token ids >= 0, got {int(preds.min())}")
    validate.tensor("conf", conf, ndim=2, floating=True, finite=True)
    if preds.shape != (len(layers), preds.shape[1]) or preds.shape[1] == 0:
        raise ValueError(f"preds must have shape (E, T) with one row per exit of layers (E = {len(layers)}) "
                         f"and T >= 1, got {tuple(preds.shape)}")
    if conf.shape != preds.shape:
        raise ValueError(f"conf must have the shape of preds {tuple(preds.shape)}, got {tuple(conf.shape)}")
    if isinstance(thresholds, (str, bytes)) or not isinstance(thresholds, (list, tuple)):
        raise TypeError(f"thresholds must be a list of numbers, got {type(thresholds).__name__}")
    thresholds = [validate.real(f"thresholds[{i}]", t) for i, t in enumerate(thresholds)]
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
