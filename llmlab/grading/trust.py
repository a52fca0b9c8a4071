"""Checks for notebook 15b_robustness_interpretability (robustness, interpretability, bias, energy)."""
from __future__ import annotations

import math

import numpy as np
import torch

from llmlab.grading.core import Case, Check, Draw, exercise
from llmlab.grading.core import randn as _randn
from llmlab.trust import adversarial, attribution, bias, energy


class Scorer(torch.nn.Module):
    """A smooth scalar score of one input of shape S, batched: z (N, *S) -> (N,), the checks' stand-in for a
    model. tanh(z W1) w2 + 0.1 |z|^2 on the flattened input; fixed weights from ``seed``, no parameters."""

    def __init__(self, numel: int, seed: int = 0, hidden: int = 8):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("W1", torch.randn(numel, hidden, generator=g, dtype=torch.float64) / math.sqrt(numel))
        self.register_buffer("w2", torch.randn(hidden, generator=g, dtype=torch.float64))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        flat = z.reshape(z.shape[0], -1)
        return torch.tanh(flat @ self.W1.to(flat.dtype)) @ self.w2.to(flat.dtype) + 0.1 * flat.pow(2).sum(-1)


def _with_zeros(d: Draw, *shape: int, dtype=torch.float32) -> torch.Tensor:
    g = d.randn(*shape, dtype=dtype)
    return g.masked_fill(d.rand(*shape) < 0.3, 0.0)


_GRAD_DTYPE = ("the result has x's dtype whatever grad's is: cast the sign to x's dtype (grad.sign().to(x.dtype)), "
               "or a float64 gradient turns a float32 input into float64")
_ZERO_HINT = "sign(0) = 0: a coordinate whose gradient is exactly zero does not move (torch.sign, not a >= 0 test)"


# ------------------------------------------------------------------------------------------------- FGSM


def _fgsm_cases(d: Draw) -> list[Case]:
    return [
        Case("gradients with exact zeros (saturated units)", d.randn(4, 6), _with_zeros(d, 4, 6), 0.05,
             hint=_ZERO_HINT),
        Case("a 3-D input and another eps", d.randn(2, 3, 5), d.randn(2, 3, 5), d.float(0.001, 0.3)),
        Case("eps = 0", d.randn(3, 4), d.randn(3, 4), 0.0),
        Case("float64 input", d.randn(5, 3, dtype=torch.float64), d.randn(5, 3, dtype=torch.float64), 0.01),
        Case("a float64 gradient for a float32 input", d.randn(4, 5), d.randn(4, 5, dtype=torch.float64), 0.02,
             hint=_GRAD_DTYPE),
    ]


@exercise("15.fgsm", reference=adversarial.fgsm, cases=_fgsm_cases)
def check_fgsm(c: Check) -> None:
    x, grad = _randn(3, 5, seed=1), _randn(3, 5, seed=2) * 1e-3
    out = c.call(x, grad, 0.1)
    c.expect_tensor(out, shape=x.shape, dtype=x.dtype, name="fgsm(x, grad, 0.1)")
    c.diagnose(out, {
        "add the step: the attack climbs the loss, x + eps·sign(grad) (a minus sign is a descent step)":
            x - 0.1 * grad.sign(),
        "step by eps·sign(grad), not eps·grad: the sign uses the whole L∞ budget on every coordinate":
            x + 0.1 * grad,
        "an L∞ attack moves every coordinate by eps; grad / ||grad|| is the L2 attack": x + 0.1 * grad / grad.norm(),
        "return the perturbed input x + eps·sign(grad), not the perturbation alone": 0.1 * grad.sign(),
    }, "your adversarial input matches a known mistake")
    c.close(out, adversarial.fgsm(x, grad, 0.1), "fgsm(x, grad, 0.1) is wrong", "x + eps * sign(grad)")
    c.expect(bool(((out - x).abs() - 0.1).abs().max() < 1e-6), "some coordinates moved by other than eps",
             "every coordinate moves by exactly eps")


# ---------------------------------------------------------------------------------------------- PGD step


def _pgd_cases(d: Draw) -> list[Case]:
    x0 = d.randn(4, 5)
    x = x0 + d.rand(4, 5) * 0.1 - 0.05
    return [
        Case("gradients with exact zeros", x, x0, _with_zeros(d, 4, 5), 0.05, 0.02, hint=_ZERO_HINT),
        Case("a step larger than the ball (alpha > eps)", x, x0, d.randn(4, 5), 0.05, 0.3),
        Case("a 3-D input", *(d.randn(2, 3, 4) for _ in range(3)), d.float(0.01, 0.5), d.float(0.01, 0.2)),
        Case("float64 input", *(d.randn(3, 3, dtype=torch.float64) for _ in range(3)), 0.1, 0.05),
        Case("a float64 gradient for a float32 input", x, x0, d.randn(4, 5, dtype=torch.float64), 0.05, 0.02,
             hint=_GRAD_DTYPE),
    ]


@exercise("15.pgd_step", reference=adversarial.pgd_step, cases=_pgd_cases)
def check_pgd_step(c: Check) -> None:
    x0 = _randn(4, 6, seed=3)
    x = x0 + 0.09 * _randn(4, 6, seed=4).sign()  # near the edge of the ball: a step of 0.15 crosses it
    grad = _randn(4, 6, seed=5)
    eps, alpha = 0.1, 0.15
    out = c.call(x, x0, grad, eps, alpha)
    c.expect_tensor(out, shape=x.shape, dtype=x.dtype, name="pgd_step(x, x0, grad, 0.1, 0.15)")
    stepped = x + alpha * grad.sign()
    c.diagnose(out, {
        "project back into the ball: clamp the result to [x0 - eps, x0 + eps]": stepped,
        "the ball is centred on the clean input x0, not on the current point x":
            torch.minimum(torch.maximum(stepped, x - eps), x + eps),
        "clamp the perturbation x - x0 to [-eps, eps] and add it to x0, not x itself to [-eps, eps]":
            stepped.clamp(-eps, eps),
        "step by alpha (the step size), and let the projection enforce eps":
            torch.minimum(torch.maximum(x + eps * grad.sign(), x0 - eps), x0 + eps),
        "clamp on both sides: x0 - eps below and x0 + eps above": torch.minimum(stepped, x0 + eps),
        "step in the direction of sign(grad): ascent, a plus sign": torch.minimum(torch.maximum(
            x - alpha * grad.sign(), x0 - eps), x0 + eps),
    }, "your step matches a known mistake")
    c.expect(bool(((out - x0).abs() <= eps + 1e-6).all()), "your result leaves the L∞ ball of radius eps around x0",
             "clamp to [x0 - eps, x0 + eps] after the step")
    c.close(out, adversarial.pgd_step(x, x0, grad, eps, alpha), "pgd_step is wrong",
            "clamp(x + alpha·sign(grad), x0 - eps, x0 + eps)")


# ----------------------------------------------------------------------------------- integrated gradients


def _ig_cases(d: Draw) -> list[Case]:
    T, D = d.int(2, 5), d.int(2, 4)
    return [
        Case("a baseline that is not zero", Scorer(T * D, d.int(0, 999)), d.randn(T, D), d.randn(T, D, scale=0.5), 16,
             hint="the path runs from the baseline to x: baseline + a_k (x - baseline), and the result is multiplied "
                  "by (x - baseline), not by x"),
        Case("another number of steps", Scorer(T * D, d.int(0, 999)), d.randn(T, D), torch.zeros(T, D), d.int(3, 9),
             hint="take the nodes and weights of leggauss(steps), the argument"),
        Case("a 1-D input", Scorer(D, d.int(0, 999)), d.randn(D), d.randn(D, scale=0.3), 8),
        Case("a 3-D input", Scorer(2 * T * D, d.int(0, 999)), d.randn(2, T, D), torch.zeros(2, T, D), 8,
             hint="reshape the weights to (steps, 1, 1, ...) for any number of input dims"),
        Case("two steps on a strongly curved score", Scorer(T * D, d.int(0, 999)), d.randn(T, D, scale=2.5),
             torch.zeros(T, D), 2, hint="use `steps` nodes, the argument (leggauss(steps)), not a fixed number: with "
                                       "2 steps the quadrature gives another answer than with 32"),
        Case("float64 input", Scorer(T * D, d.int(0, 999)), d.randn(T, D, dtype=torch.float64),
             d.randn(T, D, dtype=torch.float64, scale=0.2), 12,
             hint="return x's dtype, and compute in it (nodes, weights and path in float64 here): float32 arithmetic "
                  "cast back to float64 loses the digits a float64 result must have"),
    ]


_NO_GRAD = {"does not require grad": "gradients are off in the notebook (torch.set_grad_enabled(False)) and in this "
                                     "check: build the path and call f inside `with torch.enable_grad():`"}


def without_grad(fn, *args, **kwargs):
    """Harness: ``fn(*args)`` with gradients off, as the notebook runs (``fn`` must switch them on itself)."""
    with torch.no_grad():
        return fn(*args, **kwargs)


@exercise("15.integrated_gradients", reference=attribution.integrated_gradients, cases=_ig_cases, via=without_grad,
          error_hints=_NO_GRAD)
def check_integrated_gradients(c: Check) -> None:
    f = Scorer(12, seed=7)
    x, baseline = _randn(4, 3, seed=8), torch.zeros(4, 3)
    out = c.call(f, x, baseline, 16, via=without_grad, error_hints=_NO_GRAD)
    c.expect_tensor(out, shape=x.shape, dtype=x.dtype, name="integrated_gradients(f, x (4, 3), zeros, 16)")
    want = attribution.integrated_gradients(f, x, baseline, 16)
    alphas, weights = (t.float() for t in attribution.gauss_legendre(16))
    view = (-1, 1, 1)

    def grads_at(a: torch.Tensor) -> torch.Tensor:
        z = (baseline + a.view(view) * x).requires_grad_(True)
        with torch.enable_grad():
            return torch.autograd.grad(f(z).sum(), z)[0]

    g = grads_at(alphas)
    uniform = torch.linspace(0, 1, 16)
    c.diagnose(out, {
        "multiply the averaged gradient by (x - baseline): without it the result is only the mean gradient":
            (weights.view(view) * g).sum(0),
        "map the Gauss-Legendre weights from [-1, 1] to [0, 1]: halve them (the weights then sum to 1)":
            2 * want,
        "gradient × input is integrated gradients with one point at a = 1: average over the path's nodes":
            x * grads_at(torch.ones(1))[0],
        "use the Gauss-Legendre nodes (1 + t) / 2 and weights w / 2 of leggauss(steps), not evenly spaced points":
            x * grads_at(uniform).mean(0),
        "map the nodes from [-1, 1] to [0, 1] with a = (1 + t) / 2": x * (weights.view(view) * grads_at(
            torch.from_numpy(np.polynomial.legendre.leggauss(16)[0]).float())).sum(0),
    }, "your attributions match a known mistake", rtol=1e-4)
    c.close(out, want, "your attributions differ from integrated gradients (Gauss-Legendre, 16 steps)",
            "(x - baseline) * sum_k w_k grad f(baseline + a_k (x - baseline))")
    total, gap = out.sum().item(), (f(x[None]) - f(baseline[None])).item()
    c.expect(abs(total - gap) < 1e-3, f"your attributions sum to {total:.4f}, but f(x) - f(baseline) = {gap:.4f}",
             "completeness: integrated gradients add up to the change of f along the path")


# --------------------------------------------------------------------------------------------- occlusion


def _occlusion_cases(d: Draw) -> list[Case]:
    T, D = d.int(2, 7), d.int(2, 5)
    return [
        Case("a baseline that is not zero", Scorer(T * D, d.int(0, 999)), d.randn(T, D), d.randn(T, D),
             hint="put baseline's row t in place of x's row t (not zeros)"),
        Case("one token", Scorer(D, d.int(0, 999)), d.randn(1, D), torch.zeros(1, D)),
        Case("more tokens and dims", Scorer(9 * 6, d.int(0, 999)), d.randn(9, 6), d.randn(9, 6, scale=0.1)),
        Case("float64 input", Scorer(T * D, d.int(0, 999)), d.randn(T, D, dtype=torch.float64),
             torch.zeros(T, D, dtype=torch.float64)),
    ]


@exercise("15.occlusion", reference=attribution.occlusion, cases=_occlusion_cases)
def check_occlusion(c: Check) -> None:
    f = Scorer(15, seed=9)
    x, baseline = _randn(5, 3, seed=10), torch.zeros(5, 3)
    out = c.call(f, x, baseline)
    c.expect_tensor(out, shape=(5,), dtype=x.dtype, name="occlusion(f, x (5, 3), baseline)")
    want = attribution.occlusion(f, x, baseline)
    full = f(x[None])[0]
    keep_one = torch.stack([f(torch.where(torch.arange(5)[:, None] == t, x, baseline)[None])[0] for t in range(5)])
    cumulative = torch.stack([f(torch.where(torch.arange(5)[:, None] <= t, baseline, x)[None])[0] for t in range(5)])
    c.diagnose(out, {
        "the attribution is the drop f(x) - f(occluded), not f(occluded) - f(x)": -want,
        "return f(x) - f(occluded): the occluded score alone is not an attribution": full - want,
        "replace row t only, keeping the other rows of x (not keep row t and blank the rest)": full - keep_one,
        "start from a fresh copy of x for each token: your occlusions accumulate": full - cumulative,
    }, "your attributions match a known mistake", rtol=1e-5)
    c.close(out, want, "your occlusion attributions are wrong", "out[t] = f(x) - f(x with row t := baseline[t])")


# ------------------------------------------------------------------------------------- attention rollout


def _softmax_rows(d: Draw, L: int, H: int, T: int, dtype=torch.float32, causal: bool = False) -> torch.Tensor:
    s = d.randn(L, H, T, T, dtype=dtype, scale=2.0)
    if causal:
        s = s.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
    return s.softmax(-1)


def _rollout_cases(d: Draw) -> list[Case]:
    T = d.int(3, 7)
    padded = _softmax_rows(d, 3, 2, T)
    padded[:, :, -1] = 0.0  # a padded query that attends to nothing
    return [
        Case("causal (lower-triangular) weights", _softmax_rows(d, d.int(2, 5), d.int(1, 4), T, causal=True)),
        Case("a query whose weights are all zero (padding)", padded,
             hint="add I, then divide each row by its sum: a row of zeros becomes the identity's row, "
                  "not half of it (0.5·W + 0.5·I assumes rows that sum to 1)"),
        Case("one layer", _softmax_rows(d, 1, d.int(1, 4), T),
             hint="with one layer the rollout is that layer's A = normalise(mean over heads + I)"),
        Case("float64 weights", _softmax_rows(d, 4, 3, T, dtype=torch.float64)),
    ]


@exercise("15.attention_rollout", reference=attribution.attention_rollout, cases=_rollout_cases)
def check_attention_rollout(c: Check) -> None:
    g = torch.Generator().manual_seed(11)
    attn = (torch.randn(3, 2, 4, 4, generator=g) * 2).softmax(-1)
    out = c.call(attn)
    c.expect_tensor(out, shape=(4, 4), dtype=attn.dtype, name="attention_rollout(attn (3, 2, 4, 4))")
    eye = torch.eye(4)
    A = attn.mean(1) + eye
    A = A / A.sum(-1, keepdim=True)
    Amax = attn.amax(1) + eye
    Amax = Amax / Amax.sum(-1, keepdim=True)
    W = attn.mean(1)
    c.diagnose(out, {
        "multiply with the last layer on the left: R = A_2 @ A_1 @ A_0": A[0] @ A[1] @ A[2],
        "add the identity for the residual connection before multiplying": W[2] @ W[1] @ W[0],
        "renormalise each row of (mean + I) to sum to 1": (W[2] + eye) @ (W[1] + eye) @ (W[0] + eye),
        "average the heads (mean over dim 1), not their maximum": Amax[2] @ Amax[1] @ Amax[0],
        "roll out through every layer: multiply all L matrices, not only the last": A[2],
    }, "your rollout matches a known mistake", rtol=1e-5)
    c.expect(torch.allclose(out.sum(-1), torch.ones(4), atol=1e-5), "the rows of your rollout do not sum to 1",
             "each A_l has rows summing to 1, so their product does too")
    c.close(out, attribution.attention_rollout(attn), "your rollout is wrong",
            "A_l = rows-normalised (mean over heads + I); R = A_{L-1} @ ... @ A_0")


# ------------------------------------------------------------------------------------------------- WEAT


def _embeds(d: Draw, n: int, D: int, dtype=torch.float32) -> torch.Tensor:
    return d.randn(n, D, dtype=dtype) * (d.rand(n, 1, dtype=dtype) * 3 + 0.5)  # rows of different lengths


def _weat_cases(d: Draw) -> list[Case]:
    D = d.int(4, 9)
    return [
        Case("X and Y of different sizes", _embeds(d, 3, D), _embeds(d, 6, D), _embeds(d, 4, D), _embeds(d, 5, D),
             hint="X and Y may differ in size: mean over each set, then one standard deviation over all of X ∪ Y"),
        Case("other sizes and dims", _embeds(d, d.int(2, 6), D), _embeds(d, d.int(2, 6), D), _embeds(d, d.int(1, 5), D),
             _embeds(d, d.int(1, 5), D)),
        Case("float64 embeddings", *(_embeds(d, 4, D, torch.float64) for _ in range(4))),
    ]


@exercise("15.weat_effect_size", reference=bias.weat_effect_size, cases=_weat_cases, rtol=1e-5)
def check_weat_effect_size(c: Check) -> None:
    g = torch.Generator().manual_seed(12)
    X, Y, A, B = (torch.randn(5, 6, generator=g) * (torch.rand(5, 1, generator=g) * 3 + 0.5) for _ in range(4))
    out = c.call(X, Y, A, B)
    c.expect(isinstance(out, float), f"weat_effect_size returned {type(out).__name__}, expected a Python float",
             "return a Python float: .item() on a 0-d tensor")
    n = torch.nn.functional.normalize

    def s(w, a, b):
        return (w @ a.T).mean(1) - (w @ b.T).mean(1)

    def d(sx, sy):
        return ((sx.mean() - sy.mean()) / torch.cat([sx, sy]).std()).item()

    sx, sy = bias.association(X, A, B), bias.association(Y, A, B)
    c.diagnose(out, {
        "use cosine similarity: normalise every row (the embeddings here have different lengths)":
            d(s(X, A, B), s(Y, A, B)),
        "use the sample standard deviation (n - 1 in the denominator, torch.std's default)":
            ((sx.mean() - sy.mean()) / torch.cat([sx, sy]).std(correction=0)).item(),
        "divide by the standard deviation of s over X ∪ Y (Cohen's d), not leave the raw difference":
            (sx.mean() - sy.mean()).item(),
        "the standard deviation is over the targets X ∪ Y, not over X alone": ((sx.mean() - sy.mean()) / sx.std()).item(),
        "s(w) = mean cos(w, A) - mean cos(w, B): subtract B's from A's, not the other way round": -d(sx, sy),
        "cosine needs both sides normalised: normalise A and B too":
            d(s(n(X, dim=-1), A, B), s(n(Y, dim=-1), A, B)),
    }, "your effect size matches a known mistake", rtol=1e-5)
    want = bias.weat_effect_size(X, Y, A, B)
    c.expect(math.isclose(out, want, rel_tol=1e-5), f"effect size {out:.5f}, expected {want:.5f}",
             "d = (mean s(X) - mean s(Y)) / std of s over X ∪ Y, s(w) = mean cos(w, a) - mean cos(w, b)")


# -------------------------------------------------------------------------------------------- bootstrap


def _boot_cases(d: Draw) -> list[Case]:
    return [
        Case("another level", d.randn(15, dtype=torch.float64), 400, d.int(0, 10**6), level=0.9,
             hint="the quantiles are (1 - level) / 2 and (1 + level) / 2 of the level given"),
        Case("another size, number of resamples and seed", d.randn(d.int(3, 9), dtype=torch.float64) + 3,
             d.int(50, 300), d.int(0, 10**6)),
        Case("float32 values", d.randn(12), 200, d.int(0, 10**6)),
        Case("one value", d.randn(1, dtype=torch.float64), 100, 5),
    ]


@exercise("15.bootstrap_ci", reference=bias.bootstrap_ci, cases=_boot_cases)
def check_bootstrap_ci(c: Check) -> None:
    values = _randn(20, seed=13, dtype=torch.float64) + 1.0
    out, moved = c.call(values, 1000, 0, via=global_rng_moved)
    c.expect_tensor(out, shape=(2,), dtype=values.dtype, name="bootstrap_ci(values (20,), 1000, 0)")
    c.expect(type(out) is torch.Tensor, f"bootstrap_ci returned a {type(out).__name__}, expected a plain torch.Tensor",
             "return a plain tensor, as torch.quantile gives it (not a subclass)")
    c.expect(bool(out[0] <= out[1]), f"your interval ({float(out[0]):.4f}, {float(out[1]):.4f}) has lo > hi",
             "return (lo, hi): the lower quantile first")
    c.expect(not moved, "your function changed torch's global random state (torch.manual_seed or a draw without "
             "generator=)", "leave the global generator alone: draw from your own g = torch.Generator().manual_seed(seed), "
             "with generator=g, so the learner's other random numbers do not depend on this call")
    g = torch.Generator().manual_seed(0)
    idx = torch.randint(0, 20, (1000, 20), generator=g)
    means = values[idx].mean(1)
    q = lambda a, b: torch.quantile(means, torch.tensor([a, b], dtype=values.dtype))  # noqa: E731
    m, se = values.mean(), values.std() / math.sqrt(20)
    g = torch.Generator().manual_seed(0)
    perm = torch.stack([values[torch.randperm(20, generator=g)].mean() for _ in range(1000)])
    c.diagnose(out, {
        "two-sided: put (1 - level) / 2 in each tail, the quantiles 0.025 and 0.975 for level 0.95": q(0.05, 0.95),
        "a percentile interval takes the quantiles of the resampled means, not mean ± 1.96 standard errors":
            torch.stack([m - 1.96 * se, m + 1.96 * se]),
        "one row per resample: torch.randint(0, N, (n, N)), then the mean over dim 1":
            torch.quantile(values[torch.randint(0, 20, (20, 1000), generator=torch.Generator().manual_seed(0))].mean(0),
                           torch.tensor([0.025, 0.975], dtype=values.dtype)),
        "resample with replacement (torch.randint): a permutation has always the same mean":
            torch.quantile(perm, torch.tensor([0.025, 0.975], dtype=values.dtype)),
        "the interval is for the mean: quantiles of the resamples' means, not of the values themselves":
            torch.quantile(values, torch.tensor([0.025, 0.975], dtype=values.dtype)),
    }, "your interval matches a known mistake")
    c.close(out, bias.bootstrap_ci(values, 1000, 0), "your interval differs from the percentile bootstrap",
            "g = torch.Generator().manual_seed(seed); idx = torch.randint(0, N, (n, N), generator=g); "
            "quantiles of values[idx].mean(1)")


def global_rng_moved(fn, values, n, seed, **kwargs):
    """Harness: ``fn``'s interval, and whether the call changed torch's global random state (which it then restores)."""
    before = torch.get_rng_state()
    out = fn(values, n, seed, **kwargs)
    moved = not torch.equal(before, torch.get_rng_state())
    torch.set_rng_state(before)
    return out, moved


# ---------------------------------------------------------------------------------------------- energy


def _energy_cases(d: Draw) -> list[Case]:
    return [
        Case("values that do not divide evenly", d.float(0.1, 9.0), d.int(3, 97), d.float(5.0, 300.0)),
        Case("one token", d.float(0.01, 2.0), 1, d.float(1.0, 700.0)),
        Case("no power", 3.0, 7, 0.0),
    ]


@exercise("15.energy_per_token", reference=energy.energy_per_token, cases=_energy_cases)
def check_energy_per_token(c: Check) -> None:
    for seconds, tokens, watts in ((4.0, 20, 50.0), (1.5, 30, 40.0)):
        out = c.call(seconds, tokens, watts)
        c.expect(isinstance(out, float), f"energy_per_token returned {type(out).__name__}, expected a float",
                 "return a Python float (joules per token)")
        c.diagnose(out, {
            "divide by the number of tokens: the energy is per token": watts * seconds,
            "multiply by the power: joules = watts × seconds": seconds / tokens,
            "give joules (W × s); kWh would be joules / 3.6e6": watts * seconds / tokens / 3.6e6,
            "joules = watts × seconds, not watts / seconds": watts / seconds / tokens,
        }, "your energy matches a known mistake", correct=watts * seconds / tokens)
        want = energy.energy_per_token(seconds, tokens, watts)
        c.expect(math.isclose(out, want, rel_tol=1e-9), f"energy_per_token({seconds}, {tokens}, {watts}) = {out}, "
                 f"expected {want}", "power × time, divided by the tokens")
