"""Scaling laws: the loss of a model family as a power law in its size, L(N) = a · N^(-alpha) + c.

c is the irreducible loss (the entropy of the text that no model removes); a · N^(-alpha) the part that more
parameters remove, ever more slowly (Kaplan et al. 2020; Hoffmann et al. 2022 fit the same form with a data
term). For a fixed c the law is a line in log-log axes, log(L - c) = log a - alpha · log N, so the fit here is
a grid search over c with a least-squares line for each:

    for k = 0 .. grid-1:  c_k = k / grid · min(L)
        fit log(L - c_k) = b0 + b1 · log N by least squares (natural logs, float64), a = exp(b0), alpha = -b1
        sse_k = sum over points of (a · N^(-alpha) + c_k - L)^2      (in L itself, not in logs)
    keep the first k with the smallest sse_k.

(scipy.optimize.curve_fit minimises the same squared error over a, alpha and c together; the grid is
deterministic and never diverges.)
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from llmlab import validate


def _points(name: str, values) -> list[float]:
    if isinstance(values, torch.Tensor):
        values = values.tolist()
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise TypeError(f"{name} must be a list of numbers, got {type(values).__name__}")
    return [validate.real(f"{name}'s values", v, above=0.0) for v in values]


def power_law(N: float, a: float, alpha: float, c: float) -> float:
    """a · N^(-alpha) + c."""
    N = validate.real("N", N, above=0.0)
    a, alpha = validate.real("a", a, above=0.0), validate.real("alpha", alpha, above=0.0)
    return a * N ** -alpha + validate.real("c", c, minimum=0.0)


def fit_power_law(N: Sequence[float], L: Sequence[float], grid: int = 200) -> tuple[float, float, float]:
    """(a, alpha, c) of L ≈ a·N^(-alpha) + c, by the grid over c described in the module's docstring."""
    N, L = _points("N", N), _points("L", L)
    if len(N) != len(L) or len(N) < 3:
        raise ValueError(f"N and L must have the same length, at least 3 points; got {len(N)} and {len(L)}")
    if len(set(N)) < 2:
        raise ValueError("N must hold at least two different sizes")
    grid = validate.size("grid", grid, minimum=1)
    x = torch.tensor(N, dtype=torch.float64).log()
    Lt = torch.tensor(L, dtype=torch.float64)
    xc = x - x.mean()
    best = None
    for k in range(grid):
        c = k / grid * min(L)
        z = (Lt - c).log()
        b1 = float((xc * (z - z.mean())).sum() / (xc * xc).sum())
        b0 = float(z.mean()) - b1 * float(x.mean())
        a, alpha = math.exp(b0), -b1
        sse = float(((a * torch.exp(-alpha * x) + c - Lt) ** 2).sum())
        if best is None or sse < best[0]:
            best = (sse, a, alpha, c)
    return best[1], best[2], best[3]
