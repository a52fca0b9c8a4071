"""Adversarial examples against a classifier's continuous inputs: FGSM, PGD in an L-infinity ball, and
adversarial training of a linear probe as a defence.

An L-infinity attack of radius eps may move every coordinate of the input x0 by at most eps. To first order
the loss rises fastest inside that box by moving each coordinate by eps in the direction of its gradient's
sign, which is the **fast gradient sign method** (Goodfellow et al., 2015):

    x_adv = x0 + eps * sign(grad_x loss(x0, y))

**PGD** (Madry et al., 2018) takes several smaller steps of size alpha, each followed by a projection back
into the box [x0 - eps, x0 + eps] (an elementwise clamp):

    x_{k+1} = clamp(x_k + alpha * sign(grad_x loss(x_k, y)), x0 - eps, x0 + eps)

The gradient of the probe's cross-entropy with respect to its input is (softmax(x W + b) - onehot(y)) W^T
(``probe_input_grad``): no autograd needed for a linear head.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from llmlab import validate


def _same_shape(name: str, t: torch.Tensor, x: torch.Tensor) -> None:
    validate.tensor(name, t, floating=True, finite=True)
    if t.shape != x.shape:
        raise ValueError(f"{name} must have x's shape {tuple(x.shape)}, got {tuple(t.shape)}")


def fgsm(x: torch.Tensor, grad: torch.Tensor, eps: float) -> torch.Tensor:
    """x + eps * sign(grad): the L-infinity step of radius eps that raises the loss most to first order.

    x, grad: the same shape (any), floating; the result has x's shape and dtype. A zero gradient moves
    nothing (sign(0) = 0).
    """
    validate.tensor("x", x, floating=True, finite=True)
    _same_shape("grad", grad, x)
    eps = validate.positive_float("eps", eps, allow_zero=True)
    return x + eps * grad.sign().to(x.dtype)


def pgd_step(x: torch.Tensor, x0: torch.Tensor, grad: torch.Tensor, eps: float, alpha: float) -> torch.Tensor:
    """One step of projected gradient descent on the loss (ascent): clamp(x + alpha sign(grad), x0 - eps, x0 + eps).

    x: the current point, x0: the clean input, grad: the loss's gradient at x, all of one shape. The result
    never leaves the L-infinity ball of radius eps around x0, whatever alpha is.
    """
    validate.tensor("x", x, floating=True, finite=True)
    _same_shape("x0", x0, x)
    _same_shape("grad", grad, x)
    eps = validate.positive_float("eps", eps, allow_zero=True)
    alpha = validate.positive_float("alpha", alpha, allow_zero=True)
    return _pgd_step(x, x0, grad, eps, alpha)


def _pgd_step(x, x0, grad, eps, alpha):
    # unchecked: pgd_attack calls it once per iteration on arguments checked once
    stepped = x + alpha * grad.sign().to(x.dtype)
    return torch.minimum(torch.maximum(stepped, x0 - eps), x0 + eps)


def pgd_attack(loss_grad: Callable[[torch.Tensor], torch.Tensor], x0: torch.Tensor, eps: float, alpha: float,
               steps: int, step: Callable | None = None) -> torch.Tensor:
    """``steps`` PGD steps from x0: ``loss_grad(x)`` returns the loss's gradient at x (x's shape); ``step``
    (default ``pgd_step``) takes (x, x0, grad, eps, alpha) and returns the next point."""
    if not callable(loss_grad):
        raise TypeError(f"loss_grad must be a function x -> gradient, got {type(loss_grad).__name__}")
    validate.tensor("x0", x0, floating=True, finite=True)
    eps = validate.positive_float("eps", eps, allow_zero=True)
    alpha = validate.positive_float("alpha", alpha, allow_zero=True)
    steps = validate.size("steps", steps)
    if step is not None and not callable(step):
        raise TypeError(f"step must be a function like pgd_step, got {type(step).__name__}")
    step = step or _pgd_step
    x = x0.clone()
    for _ in range(steps):
        x = step(x, x0, loss_grad(x), eps, alpha)
    return x


def _check_probe(X: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> None:
    validate.tensor("X", X, ndim=2, floating=True, finite=True)
    if X.shape[0] == 0:
        raise ValueError("X is empty: need at least one example (N >= 1)")
    validate.tensor("W", W, ndim=2, floating=True, finite=True)
    validate.tensor("b", b, ndim=1, floating=True, finite=True)
    if W.shape[0] != X.shape[1] or b.shape[0] != W.shape[1]:
        raise ValueError(f"W must be (D, K) = ({X.shape[1]}, K) and b (K,): got W {tuple(W.shape)}, b {tuple(b.shape)}")


def _check_labels(y: torch.Tensor, X: torch.Tensor, K: int) -> None:
    validate.tensor("y", y, ndim=1)
    if y.dtype.is_floating_point or y.dtype == torch.bool or len(y) != len(X):
        raise ValueError(f"y must hold ({len(X)},) integer class ids, got {y.dtype} {tuple(y.shape)}")
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= K):
        raise ValueError(f"y must lie in [0, {K}), got min {int(y.min())}, max {int(y.max())}")


def probe_input_grad(X: torch.Tensor, y: torch.Tensor, W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Gradient of each example's cross-entropy of softmax(x W + b) on its label, with respect to x.

    X (N, D), y (N,), W (D, K), b (K,) -> (N, D) = (softmax(X W + b) - onehot(y)) W^T.
    """
    _check_probe(X, W, b)
    _check_labels(y, X, W.shape[1])
    return _probe_grad(X, y, W, b)


def _probe_grad(X, y, W, b):
    p = torch.softmax(X @ W + b, -1)
    return (p - F.one_hot(y.long(), W.shape[1]).to(p.dtype)) @ W.T


def accuracy_under_attack(X: torch.Tensor, y: torch.Tensor, W: torch.Tensor, b: torch.Tensor, eps: float,
                          attack: str = "fgsm", steps: int = 10, fgsm_fn: Callable | None = None,
                          step_fn: Callable | None = None) -> float:
    """The probe's accuracy on X (N, D) after an L-infinity attack of radius eps on every example.

    ``attack``: "fgsm" (one step, ``fgsm_fn``, default ``fgsm``) or "pgd" (``steps`` steps of size
    2.5 eps / steps, ``step_fn``, default ``pgd_step``). The attacker knows W and b (white box) and
    each example's true label.
    """
    _check_probe(X, W, b)
    _check_labels(y, X, W.shape[1])
    eps = validate.positive_float("eps", eps, allow_zero=True)
    attack = validate.choice("attack", attack, ("fgsm", "pgd"))
    steps = validate.size("steps", steps)
    if attack == "fgsm":
        X_adv = (fgsm_fn or fgsm)(X, _probe_grad(X, y, W, b), eps)
    else:
        X_adv = pgd_attack(lambda x: _probe_grad(x, y, W, b), X, eps, 2.5 * eps / steps, steps, step=step_fn)
    return ((X_adv @ W + b).argmax(-1) == y).double().mean().item()


def adversarial_training(X: torch.Tensor, y: torch.Tensor, n_classes: int, eps: float, l2: float = 0.01,
                         rounds: int = 3, steps: int = 100) -> tuple[torch.Tensor, torch.Tensor]:
    """Adversarial training of a linear probe: fit on X, then ``rounds`` times refit on X together with
    FGSM examples (radius eps) made against the current probe. Returns (W, b) as ``fit_logistic_regression``."""
    from llmlab.evaluation.probe import fit_logistic_regression

    validate.tensor("X", X, ndim=2, floating=True, finite=True)
    if X.shape[0] == 0:
        raise ValueError("X is empty: need at least one example (N >= 1)")
    n_classes = validate.size("n_classes", n_classes, minimum=2)
    _check_labels(y, X, n_classes)
    eps = validate.positive_float("eps", eps, allow_zero=True)
    rounds = validate.size("rounds", rounds)
    W, b = fit_logistic_regression(X, y, n_classes, l2=l2, steps=steps)
    for _ in range(rounds):
        X_adv = fgsm(X, _probe_grad(X, y, W, b), eps)
        W, b = fit_logistic_regression(torch.cat([X, X_adv]), torch.cat([y, y]), n_classes, l2=l2, steps=steps)
    return W, b
