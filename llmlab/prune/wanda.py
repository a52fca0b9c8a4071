"""Wanda (Sun et al. 2023, "A Simple and Effective Pruning Approach for Large Language Models").

Magnitude pruning forgets that a weight only matters through the inputs it multiplies. The output
y_i = Σ_j W_ij x_j changes by W_ij x_j when W_ij goes, so Wanda scores each weight by

    S_ij = |W_ij| · ‖X_j‖₂,

with ‖X_j‖₂ the L2 norm of input feature j over a few calibration tokens (X (n_tokens, K)), and removes
the lowest scores *per output row*. LLMs have a few input features whose activations are 10-100×
larger than the rest (notebook 09's outliers); magnitude pruning deletes their small weights, Wanda
keeps them. No weight update, one forward pass: on LLaMA-2-7B at 50% the paper reports perplexity
5.12 dense, 14.89 magnitude, 6.42 Wanda. SparseGPT (Frantar & Alistarh 2023) also *updates* the
surviving weights, GPTQ-style, and does a little better at high sparsity.

The norms here come from one pass of the dense model; the paper's code feeds each block the outputs
of the already-pruned blocks before it, which matters little at 50%.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
import torch.nn as nn

from llmlab import validate
from llmlab.prune.magnitude import check_scores
from llmlab.quant.apply import block_linears, calibration_batches


def wanda_scores(w: torch.Tensor, x_norm: torch.Tensor) -> torch.Tensor:
    """w (N, K), x_norm (K,) the L2 norm of each input feature over the calibration tokens -> S (N, K)."""
    check_scores("w", w)
    validate.tensor("x_norm", x_norm, floating=True, finite=True)
    if x_norm.shape != (w.shape[1],):
        raise ValueError(f"x_norm must have shape (K,) = ({w.shape[1]},), one norm per input feature, "
                         f"got {tuple(getattr(x_norm, 'shape', ()))}")
    return w.abs() * x_norm.to(w.dtype)[None, :]


class InputGrams:
    """Forward pre-hooks that accumulate, for each linear, the Gram matrix of its inputs cut into U units
    of D features: (U, D, D) = Σ_t x_tu x_tuᵀ over all tokens t. With D = 1 it is Σ_t x_tj², Wanda's
    squared norms; ``structured`` uses D = head dim on the attention output projection.
    ``linears``: {name: (module, D)}. Use as a context manager around the calibration forwards."""

    def __init__(self, linears: dict[str, tuple[nn.Linear, int]]):
        if not isinstance(linears, Mapping):
            raise TypeError(f"linears must be a dict {{name: (nn.Linear, D)}}, got {type(linears).__name__}")
        if not linears:
            raise ValueError("linears is empty: give at least one linear layer")
        for name, entry in linears.items():
            if not (isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[0], nn.Linear)):
                raise TypeError(f"linears must map names to (nn.Linear, D) pairs, got {entry!r} for {name!r}")
            validate.divisor(f"linears[{name!r}]'s D", entry[1], entry[0].in_features, what="in_features")
        self.grams: dict[str, torch.Tensor] = {}
        self._handles = [m.register_forward_pre_hook(self._hook(n, d)) for n, (m, d) in linears.items()]

    def _hook(self, name: str, d: int):
        def f(module, args):
            x = args[0].detach().reshape(-1, args[0].shape[-1] // d, d).double()  # (n, U, D); float64 sums
            g = (x * x).sum(0)[..., None] if d == 1 else torch.einsum("nud,nue->ude", x, x)
            self.grams[name] = self.grams.get(name, 0) + g
        return f

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for h in self._handles:
            h.remove()


@torch.no_grad()
def input_norms(model: nn.Module, batches: Iterable[torch.Tensor], linears: dict[str, nn.Linear] | None = None
                ) -> dict[str, torch.Tensor]:
    """{name: ‖X_j‖₂ (K,)} for each block linear of ``model`` (or of ``linears``), over ``model(ids)``
    for every ids (B, T) in ``batches``."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module (an llmlab Decoder), got {type(model).__name__}")
    linears = linears if linears is not None else block_linears(model)
    if not isinstance(linears, Mapping):
        raise TypeError(f"linears must be a dict {{name: nn.Linear}}, got {type(linears).__name__}")
    if not linears:
        raise ValueError("linears is empty: give at least one linear layer, or None for all of model's")
    batches = calibration_batches(batches, tensors=True)
    with InputGrams({n: (m, 1) for n, m in linears.items()}) as hooks:
        for ids in batches:
            model(ids)
    return {n: g.flatten().sqrt().float() for n, g in hooks.grams.items()}
