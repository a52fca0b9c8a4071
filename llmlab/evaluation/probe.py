"""A linear probe: multinomial logistic regression on frozen features (e.g. sentence embeddings).

Given features X (N, D) and classes y (N,) in 0..K-1, the model is p(y | x) = softmax(x W + b),
W (D, K), b (K,), fitted by minimising the L2-regularised mean cross-entropy

    L(W, b) = -(1/N) sum_i log softmax(x_i W + b)[y_i]  +  (l2 / 2) ||W||^2

The bias is not penalised: it only shifts the class priors, and shrinking it toward 0 would pull
the model toward equal priors. L is convex, and strictly convex in W when l2 > 0, so full-batch
L-BFGS finds the optimum in a few dozen steps on problems of this size.

This is scikit-learn's ``LogisticRegression(C=C)`` (multinomial, lbfgs), whose objective is
``C sum_i CE_i + ||W||^2 / 2``: divided by ``C N`` it is L with ``l2 = 1 / (C N)``. (softmax does not
change when a constant is added to every logit, so b is defined up to a constant; we return the
one with mean 0.)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from llmlab import validate


def _check_x(X: torch.Tensor) -> None:
    validate.tensor("X", X, floating=True)
    if X.ndim != 2:
        raise ValueError(f"X must have shape (N, D), got {tuple(X.shape)}")


def _check_xy(X: torch.Tensor, y: torch.Tensor, n_classes: int) -> None:
    _check_x(X)
    if len(X) == 0:
        raise ValueError(f"X is empty, shape {tuple(X.shape)}: need at least one example")
    validate.tensor("y", y)
    if y.ndim != 1 or len(y) != len(X):
        raise ValueError(f"y must have shape (N,) = ({len(X)},), got {tuple(y.shape)}")
    if y.dtype.is_floating_point or y.dtype.is_complex or y.dtype == torch.bool:
        raise TypeError(f"y must hold integer class ids, got {y.dtype}")
    if not validate.all_finite(X):
        raise ValueError("X contains NaN or inf")
    if y.min() < 0 or y.max() >= n_classes:
        raise ValueError(f"y must lie in [0, n_classes={n_classes}), got min {int(y.min())}, max {int(y.max())}")


def _check_wb(X: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> None:
    """W (D, K) and b (K,) that fit X (N, D): same floating dtype as X, so that X @ W + b is defined."""
    validate.tensor("W", W, ndim=2, floating=True)
    validate.tensor("b", b, ndim=1, floating=True)
    if W.shape[0] != X.shape[1] or W.shape[1] == 0:
        raise ValueError(f"W must have shape (D, K) = ({X.shape[1]}, K >= 1) for X of shape {tuple(X.shape)}, "
                         f"got {tuple(W.shape)}")
    if b.shape[0] != W.shape[1]:
        raise ValueError(f"b must have shape (K,) = ({W.shape[1]},), got {tuple(b.shape)}")
    if W.dtype != X.dtype:
        raise TypeError(f"W must have X's dtype {X.dtype}, got {W.dtype}")


def logistic_loss(X: torch.Tensor, y: torch.Tensor, W: torch.Tensor, b: torch.Tensor, l2: float) -> torch.Tensor:
    """Mean cross-entropy of softmax(X W + b) on y, plus (l2 / 2) ||W||^2: a scalar tensor.

    X (N, D), y (N,), W (D, K), b (K,).
    """
    _check_x(X)
    _check_wb(X, W, b)
    _check_xy(X, y, W.shape[1])
    l2 = validate.positive_float("l2", l2, allow_zero=True)
    return _loss(X, y, W, b, l2)


def _loss(X: torch.Tensor, y: torch.Tensor, W: torch.Tensor, b: torch.Tensor, l2: float) -> torch.Tensor:
    # unchecked: the optimiser's closure evaluates it many times on arguments checked once
    return F.cross_entropy(X @ W + b, y) + 0.5 * l2 * W.pow(2).sum()


def fit_logistic_regression(
    X: torch.Tensor, y: torch.Tensor, n_classes: int, l2: float = 1e-3, steps: int = 100
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fit W (D, K) and b (K,) minimising ``logistic_loss`` with full-batch L-BFGS (float64).

    X (N, D) float, y (N,) ints in [0, n_classes). ``steps``: L-BFGS iterations (each evaluates
    the loss and gradient on all N examples a few times). Returns W and b in X's dtype and device,
    b with mean 0.
    """
    n_classes = validate.size("n_classes", n_classes, minimum=2)
    _check_xy(X, y, n_classes)
    l2 = validate.positive_float("l2", l2, allow_zero=True)
    steps = validate.size("steps", steps)
    X64, y64 = X.double(), y.long()
    W = torch.zeros(X.shape[1], n_classes, dtype=torch.float64, device=X.device, requires_grad=True)
    b = torch.zeros(n_classes, dtype=torch.float64, device=X.device, requires_grad=True)
    opt = torch.optim.LBFGS([W, b], lr=1, max_iter=steps, history_size=20, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-10, tolerance_change=1e-14)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = _loss(X64, y64, W, b, l2)
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    W, b = W.detach(), b.detach()
    return W.to(X.dtype), (b - b.mean()).to(X.dtype)


def predict_proba(X: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Class probabilities softmax(X W + b): X (N, D) -> (N, K)."""
    _check_x(X)
    validate.tensor("X", X, finite=True)
    _check_wb(X, W, b)
    return torch.softmax(X @ W + b, dim=-1)
