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

from collections.abc import Callable
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


def choose_exit(preds: torch.Tensor, conf: torch.Tensor, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Early exit's rule at each position: the first exit whose confidence reaches the threshold
    (conf >= threshold, a tie exits), or the last exit (the full model) when none does.

    preds (E, T) the top-1 token at each of E exits, conf (E, T) its probability -> (exit (T,) long, the
    index of the exit taken in 0 .. E-1; token (T,) in preds' dtype, the prediction made there).
    """
    validate.tensor("preds", preds, ndim=2)
    if preds.dtype.is_floating_point or preds.dtype.is_complex or preds.dtype == torch.bool:
        raise TypeError(f"preds must hold token ids (an integer tensor), got dtype {preds.dtype}")
    if preds.numel() and int(preds.min()) < 0:
        raise ValueError(f"preds must hold token ids >= 0, got {int(preds.min())}")
    validate.tensor("conf", conf, ndim=2, floating=True)
    if preds.shape[0] == 0 or preds.shape[1] == 0:
        raise ValueError(f"preds must have shape (E, T) with E >= 1 exits and T >= 1 positions, got {tuple(preds.shape)}")
    if conf.shape != preds.shape:
        raise ValueError(f"conf must have the shape of preds {tuple(preds.shape)}, got {tuple(conf.shape)}")
    if bool(conf.isnan().any()):
        raise ValueError("conf contains NaN")
    threshold = validate.real("threshold", threshold, finite=False)  # +inf: never exit early
    return _choose_exit(preds, conf, threshold)


def _choose_exit(preds: torch.Tensor, conf: torch.Tensor, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    ok = conf >= threshold  # a new tensor: conf itself is left as it is
    ok[-1] = True  # the full model always answers
    first = ok.int().argmax(0)  # argmax returns the first maximum: the first confident exit
    return first, preds.gather(0, first[None])[0]


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
                  thresholds: list[float], choose: Callable | None = None) -> list[ExitPoint]:
    """For each τ: exit at the first layer with confidence >= τ (else at the last exit, which must be
    the full model), and report compute used and agreement with the full model.
    preds (E, T) and conf (E, T) as ``exit_predictions`` returns them for the E exits ``layers``.
    ``choose(preds, conf, τ) -> (exit (T,), token (T,))`` makes the choice (``choose_exit`` by default;
    a learner's own in notebook 08)."""
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
    if choose is not None and not callable(choose):
        raise TypeError(f"choose must be a function (preds, conf, threshold) -> (exit, token), got {type(choose).__name__}")
    depth = torch.tensor(layers, dtype=torch.float)
    points = []
    for tau in thresholds:
        if choose is None:
            first, chosen = _choose_exit(preds, conf, tau)
        else:
            first, chosen = _chosen(choose(preds.clone(), conf.clone(), tau), preds.shape)
        points.append(ExitPoint(float(tau), float(depth[first.cpu()].mean() / n_layers),
                                float((chosen.to(preds.device) == preds[-1]).float().mean())))
    return points


def _chosen(out, shape: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """``choose``'s answer checked: exit indices in [0, E) and tokens, each (T,) (lists are read as tensors)."""
    E, T = shape
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise TypeError(f"choose must return a pair (exit, token), got {type(out).__name__}")
    first, chosen = (torch.as_tensor(x) for x in out)
    for name, x in (("exit", first), ("token", chosen)):
        if x.shape != (T,) or x.dtype.is_floating_point or x.dtype.is_complex or x.dtype == torch.bool:
            raise ValueError(f"choose must return {name} as T = {T} integers, got shape {tuple(x.shape)}, dtype {x.dtype}")
    if T and not 0 <= int(first.min()) <= int(first.max()) < E:
        raise ValueError(f"choose returned exit indices outside 0 .. {E - 1}")
    return first.long(), chosen
