"""DP-SGD (Abadi et al., 2016) as Opacus runs it: per-sample gradients, per-sample clipping, Gaussian noise.

One step on a batch of B examples drawn with probability q each (Poisson sampling, expected size qN):

1. the gradient of each example's own loss, ``g_i`` (for ``nn.Linear``: the outer product of the backprop and
   the activation, :func:`linear_grad_samples`);
2. each ``g_i``, all the parameters together, scaled to an L2 norm of at most C: ``g_i · min(1, C / (‖g_i‖ + 1e-6))``
   (:func:`clip_per_sample`; the 1e-6 is Opacus's);
3. the sum of the clipped gradients, plus ``N(0, σ²C²)`` noise on every coordinate, divided by the *expected*
   batch size qN (not the drawn one: its size would itself reveal who is in the batch), then an SGD step
   (:func:`dp_sgd_step`).

Clipping bounds what one example can change (sensitivity C); the noise hides that change. ``accounting`` turns
(q, σ, steps) into an (ε, δ) guarantee.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from llmlab import validate

CLIP_EPS = 1e-6  # Opacus adds it to every norm before dividing (a zero gradient stays zero)


def _tensors(name: str, xs, min_ndim: int = 0) -> list[torch.Tensor]:
    if not isinstance(xs, (list, tuple)):
        raise TypeError(f"{name} must be a list of tensors, got {type(xs).__name__}")
    if not xs:
        raise ValueError(f"{name} is empty: need at least one tensor")
    for i, x in enumerate(xs):
        validate.tensor(f"{name}[{i}]", x, min_ndim=min_ndim, floating=True)
    return list(xs)


def linear_grad_samples(activations: torch.Tensor, backprops: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample gradients of ``nn.Linear`` (y = x Wᵀ + b) from its input and the gradient at its output.

    activations: (B, ..., in), backprops: (B, ..., out), where backprops[i] = ∂L_i/∂y[i] is the gradient of
    example i's own loss. Returns (grad_weight (B, out, in), grad_bias (B, out)): for each example, the sum
    over its positions (the middle dims) of the outer products backprop ⊗ activation, and of the backprops."""
    validate.tensor("activations", activations, min_ndim=2, floating=True, finite=True)
    validate.tensor("backprops", backprops, min_ndim=2, floating=True, finite=True)
    if activations.shape[:-1] != backprops.shape[:-1]:
        raise ValueError(f"activations {tuple(activations.shape)} and backprops {tuple(backprops.shape)} must share "
                         "every dim but the last")
    a = activations.reshape(activations.shape[0], -1, activations.shape[-1])
    g = backprops.reshape(backprops.shape[0], -1, backprops.shape[-1]).to(a.dtype)
    return torch.einsum("bto,bti->boi", g, a), g.sum(1)


def per_sample_norms(grads: list[torch.Tensor]) -> torch.Tensor:
    """(B,) the L2 norm of each example's whole gradient: grads[k] is parameter k's (B, *shape)."""
    grads = _tensors("grads", grads, min_ndim=1)
    if len({len(g) for g in grads}) != 1:
        raise ValueError(f"grads must all have the same batch size, got {[len(g) for g in grads]}")
    return _norms(grads)


def _norms(grads: list[torch.Tensor]) -> torch.Tensor:
    return torch.stack([g.reshape(len(g), -1).norm(2, dim=-1) for g in grads], dim=1).norm(2, dim=1)


def clip_per_sample(grads: list[torch.Tensor], max_norm: float) -> list[torch.Tensor]:
    """Per-sample clipping, Opacus's convention: grads[k] (B, *shape_k) holds parameter k's gradient for each of
    the B examples; example i's gradient (all the parameters together) has norm n_i = sqrt(Σ_k ‖grads[k][i]‖²)
    and is multiplied by min(1, max_norm / (n_i + 1e-6)). Returns new tensors, in the inputs' dtypes."""
    grads = _tensors("grads", grads, min_ndim=1)
    max_norm = validate.positive_float("max_norm", max_norm)
    if len({len(g) for g in grads}) != 1:
        raise ValueError(f"grads must all have the same batch size, got {[len(g) for g in grads]}")
    return _clip(grads, max_norm)


def _clip(grads: list[torch.Tensor], max_norm: float) -> list[torch.Tensor]:
    factor = (max_norm / (_norms(grads) + CLIP_EPS)).clamp(max=1.0)
    return [g * factor.to(g.dtype).view(-1, *[1] * (g.ndim - 1)) for g in grads]


def dp_sgd_step(params: list[torch.Tensor], grad_samples: list[torch.Tensor], max_norm: float,
                noise_multiplier: float, expected_batch_size: int, lr: float,
                generator: torch.Generator | None = None) -> list[torch.Tensor]:
    """One DP-SGD step, equal to Opacus's DPOptimizer (loss_reduction="mean") followed by plain SGD.

    params[k]: parameter k; grad_samples[k]: (B, *params[k].shape) its per-sample gradients. Clip them per sample
    (:func:`clip_per_sample`), sum over the batch, add noise ``torch.normal(0, noise_multiplier * max_norm,
    size=params[k].shape, generator=generator)`` to each parameter in order (no draw when the std is 0, as
    Opacus), divide by ``expected_batch_size``, and return the new parameters ``p - lr * grad``."""
    params = _tensors("params", params)
    grad_samples = _tensors("grad_samples", grad_samples, min_ndim=1)
    if len(params) != len(grad_samples):
        raise ValueError(f"grad_samples must have one tensor per parameter ({len(params)}), got {len(grad_samples)}")
    for k, (p, g) in enumerate(zip(params, grad_samples)):
        if g.shape[1:] != p.shape:
            raise ValueError(f"grad_samples[{k}] must have shape (B, {', '.join(map(str, p.shape))}), got {tuple(g.shape)}")
    if len({len(g) for g in grad_samples}) != 1:
        raise ValueError(f"grad_samples must all have the same batch size, got {[len(g) for g in grad_samples]}")
    max_norm = validate.positive_float("max_norm", max_norm)
    noise_multiplier = validate.positive_float("noise_multiplier", noise_multiplier, allow_zero=True)
    expected_batch_size = validate.size("expected_batch_size", expected_batch_size)
    lr = validate.positive_float("lr", lr, allow_zero=True)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    return _step(params, grad_samples, max_norm, noise_multiplier, expected_batch_size, lr, generator)


def _step(params, grad_samples, max_norm, noise_multiplier, expected_batch_size, lr, generator):
    std = noise_multiplier * max_norm
    out = []
    for p, g in zip(params, _clip(grad_samples, max_norm)):
        summed = g.to(p.dtype).sum(0)
        if std > 0:
            summed = summed + torch.normal(0.0, std, size=p.shape, generator=generator, dtype=p.dtype)
        out.append(p - lr * (summed / expected_batch_size))
    return out


def poisson_batches(n: int, sample_rate: float, steps: int, generator: torch.Generator) -> list[torch.Tensor]:
    """``steps`` batches of example indices, each example in each batch with probability ``sample_rate``
    (Poisson sampling: what the privacy accounting assumes)."""
    n, steps = validate.size("n", n), validate.size("steps", steps)
    sample_rate = validate.probability("sample_rate", sample_rate, allow_zero=False)
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    return [torch.nonzero(torch.rand(n, generator=generator) < sample_rate).flatten() for _ in range(steps)]


def train_dp_logistic(x: torch.Tensor, y: torch.Tensor, n_classes: int, noise_multiplier: float, max_norm: float,
                      sample_rate: float, steps: int, lr: float, seed: int = 0, step=None, grad_samples=None):
    """A linear classifier on features x (N, D) trained from zeros by ``steps`` DP-SGD steps on Poisson batches
    of rate ``sample_rate``; ``step`` (default :func:`dp_sgd_step`) and ``grad_samples`` (default
    :func:`linear_grad_samples`) may be a learner's. Returns (weight (K, D), bias (K,))."""
    validate.tensor("x", x, ndim=2, floating=True, finite=True)
    validate.tensor("y", y, ndim=1)
    if len(y) != len(x) or y.is_floating_point():
        raise ValueError(f"y must hold one integer label per row of x ({len(x)}), got {len(y)} of dtype {y.dtype}")
    n_classes = validate.size("n_classes", n_classes, minimum=2)
    if len(y) and not 0 <= int(y.min()) <= int(y.max()) < n_classes:
        raise ValueError(f"y's labels must lie in [0, {n_classes}), got {int(y.min())}..{int(y.max())}")
    noise_multiplier = validate.positive_float("noise_multiplier", noise_multiplier, allow_zero=True)
    max_norm = validate.positive_float("max_norm", max_norm)
    sample_rate = validate.probability("sample_rate", sample_rate, allow_zero=False)
    steps = validate.integer("steps", steps, minimum=0, maximum=100_000)
    lr = validate.positive_float("lr", lr, allow_zero=True)
    for name, fn in (("step", step), ("grad_samples", grad_samples)):
        if fn is not None and not callable(fn):
            raise TypeError(f"{name} must be a function or None, got {type(fn).__name__}")
    step = step or dp_sgd_step
    grad_samples = grad_samples or linear_grad_samples
    gen = torch.Generator().manual_seed(validate.integer("seed", seed, minimum=0))
    W, b = torch.zeros(n_classes, x.shape[1], dtype=x.dtype), torch.zeros(n_classes, dtype=x.dtype)
    expected = max(1, round(sample_rate * len(x)))
    for idx in (poisson_batches(len(x), sample_rate, steps, gen) if steps else []):
        xb, yb = x[idx], y[idx]
        backprops = torch.softmax(xb @ W.T + b, -1) - F.one_hot(yb, n_classes).to(x.dtype)
        gw, gb = grad_samples(xb, backprops)
        W, b = step([W, b], [gw, gb], max_norm, noise_multiplier, expected, lr, gen)
    return W, b
