"""Checks for notebook 15a_privacy: per-sample gradients, DP-SGD, RDP accounting, membership inference,
federated averaging and gradient leakage."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from llmlab.grading.core import DTYPE_HINT, Case, Check, Draw, exercise, same
from llmlab.grading.core import randn as _randn
from llmlab.trust import accounting, dp_sgd, federated, leakage, membership

# ------------------------------------------------------------------------------------ per-sample gradients

_POSITIONS_HINT = ("an example's gradient sums the outer products over all its positions (every dim between the "
                   "first and the last), not their mean: reshape to (B, positions, features) first")


def _grad_sample_cases(d: Draw) -> list[Case]:
    B, i, o = d.int(2, 6), d.int(2, 7), d.int(2, 5)
    T = d.int(2, 5)
    return [Case("another batch and width", d.randn(B, i), d.randn(B, o)),
            Case("sequences (B, T, in)", d.randn(B, T, i), d.randn(B, T, o), hint=_POSITIONS_HINT),
            Case("two middle dims (B, H, T, in)", d.randn(B, 2, T, i), d.randn(B, 2, T, o), hint=_POSITIONS_HINT),
            Case("one example", d.randn(1, i), d.randn(1, o)),
            Case("float64 inputs", d.randn(B, i, dtype=torch.float64), d.randn(B, o, dtype=torch.float64))]


@exercise("15.linear_grad_samples", reference=dp_sgd.linear_grad_samples, cases=_grad_sample_cases)
def check_linear_grad_samples(c: Check) -> None:
    a, g = _randn(4, 5, seed=1), _randn(4, 3, seed=2)
    out = c.call(a, g)
    c.expect(isinstance(out, tuple) and len(out) == 2, f"expected a tuple (grad_weight, grad_bias), got "
             f"{type(out).__name__}", "return a tuple: `return grad_weight, grad_bias` (the docstring's tuple)")
    gw, gb = out
    c.expect_tensor(gw, name="grad_weight")
    if tuple(gw.shape) == (3, 5):
        c.fail("grad_weight has shape (3, 5): you summed over the batch",
               "DP-SGD needs one gradient per example: keep the batch dim, (B, out, in)")
    if tuple(gw.shape) == (4, 5, 3):
        c.fail("grad_weight has shape (4, 5, 3), expected (4, 3, 5)",
               "nn.Linear stores its weight as (out, in): the outer product is backprop ⊗ activation")
    c.expect_tensor(gw, shape=(4, 3, 5), name="grad_weight")
    c.expect_tensor(gb, shape=(4, 3), name="grad_bias")
    want_w, want_b = dp_sgd.linear_grad_samples(a, g)
    c.close(gw, want_w, "grad_weight is wrong", "grad_weight[i] = outer(backprops[i], activations[i])")
    c.close(gb, want_b, "grad_bias is wrong", "the bias's gradient is the backprop itself (summed over positions)")


# -------------------------------------------------------------------------------------------- clipping

_FIXED_C = "use max_norm, the argument, not a fixed number"
_TOGETHER = ("clip each example's whole gradient: one norm per example over all the parameters together, "
             "sqrt(Σ_k ‖grads[k][i]‖²), not one norm per parameter")


def _clip_variants(grads, C) -> dict[str, list[torch.Tensor]]:
    norms = dp_sgd.per_sample_norms(grads)

    def scaled(factor):
        return [g * factor.to(g.dtype).view(-1, *[1] * (g.ndim - 1)) for g in grads]

    per_param = [g * (C / (g.reshape(len(g), -1).norm(dim=1) + 1e-6)).clamp(max=1).view(-1, *[1] * (g.ndim - 1))
                 for g in grads]
    total = torch.cat([g.reshape(-1) for g in grads]).norm()
    return {
        _TOGETHER: per_param,
        "clip each example separately: the norm of one example's gradient, not of the whole batch's":
            [g * min(1.0, C / (float(total) + 1e-6)) for g in grads],
        "only gradients longer than max_norm shrink: the factor is min(1, max_norm / (norm + 1e-6))":
            scaled(C / (norms + 1e-6)),
        "Opacus divides by norm + 1e-6 (the exercise's convention), not by the norm alone": scaled((C / norms).clamp(max=1)),
        "the factor is max_norm / norm, not norm / max_norm": scaled((norms / C).clamp(max=1)),
    }


def _clip_cases(d: Draw) -> list[Case]:
    B = d.int(2, 7)
    return [Case("another max_norm", [d.randn(B, 3, 4), d.randn(B, 3)], d.float(0.05, 0.5), hint=_FIXED_C),
            Case("three parameters, a large max_norm", [d.randn(B, 2, 3), d.randn(B, 2), d.randn(B, 4, 2, 2)],
                 d.float(2.0, 8.0), hint=_FIXED_C),
            Case("an all-zero example", [torch.cat([torch.zeros(1, 3, 2), d.randn(B, 3, 2)]), d.randn(B + 1, 3)], 0.3),
            Case("float64 gradients", [d.randn(B, 4, 3, dtype=torch.float64), d.randn(B, 4, dtype=torch.float64)], 0.7),
            Case("bfloat16 gradients", [d.randn(B, 4, 3, dtype=torch.bfloat16), d.randn(B, 4, dtype=torch.bfloat16)], 0.5,
                 hint=DTYPE_HINT)]


@exercise("15.clip_per_sample", reference=dp_sgd.clip_per_sample, cases=_clip_cases)
def check_clip_per_sample(c: Check) -> None:
    grads = [_randn(5, 3, 4, seed=3, dtype=torch.float64) * torch.tensor([0.05, 0.3, 1.0, 2.0, 0.0], dtype=torch.float64)
             .view(5, 1, 1), _randn(5, 3, seed=4, dtype=torch.float64) * 0.2]
    out = c.call(grads, 1.0)
    c.expect(isinstance(out, (list, tuple)) and len(out) == 2, f"expected a list of 2 tensors, got {type(out).__name__}",
             "return one clipped tensor per parameter, in order")
    for k, (o, g) in enumerate(zip(out, grads)):
        c.expect_tensor(o, shape=g.shape, dtype=g.dtype, name=f"result[{k}]")
    want = dp_sgd.clip_per_sample(grads, 1.0)
    for hint, value in _clip_variants(grads, 1.0).items():
        if all(torch.allclose(o, v, rtol=1e-12, atol=1e-15) for o, v in zip(out, value)) and \
                not all(torch.allclose(w, v, rtol=1e-12, atol=1e-15) for w, v in zip(want, value)):
            c.fail("your clipped gradients match a known mistake", hint)
    for o, w in zip(out, want):
        c.close(o, w, "the clipped gradients are wrong", "g_i · min(1, max_norm / (‖g_i‖ + 1e-6)), ‖g_i‖ over all parameters",
                rtol=1e-10, atol=1e-13)
    norms = dp_sgd.per_sample_norms(list(out))
    c.expect(bool((norms <= 1.0 + 1e-9).all()), "some example still has a norm above max_norm", "")


# --------------------------------------------------------------------------------------------- DP-SGD step

_EXPECTED_B = ("divide by expected_batch_size, not by the number of examples drawn: with Poisson sampling the batch "
               "size varies, and that size itself would leak who is in the batch")


def _step_problem(d: Draw | None, shapes, B: int, dtype=torch.float32, seed: int = 0):
    if d is None:
        g = torch.Generator().manual_seed(seed)
        params = [torch.randn(s, generator=g).to(dtype) for s in shapes]
        grads = [torch.randn(B, *s, generator=g).to(dtype) for s in shapes]
    else:
        params = [d.randn(*s, dtype=dtype) for s in shapes]
        grads = [d.randn(B, *s, dtype=dtype) for s in shapes]
    return params, grads


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _step_variants(params, grads, C, sigma, E, lr, seed) -> dict[str, list[torch.Tensor]]:
    B, std = len(grads[0]), sigma * C

    def run(clipped, divide_by, noise_std, noise_after=False, sign=-1.0):
        g, out = _gen(seed), []
        noises = [torch.normal(0.0, noise_std, size=p.shape, generator=g, dtype=p.dtype) for p in params]
        for p, c, n in zip(params, clipped, noises):
            grad = (c.sum(0) / divide_by + n) if noise_after else (c.sum(0) + n) / divide_by
            out.append(p + sign * lr * grad)
        return out

    clipped = dp_sgd.clip_per_sample(grads, C)
    per_param = [g * (C / (g.reshape(B, -1).norm(dim=1) + 1e-6)).clamp(max=1).view(-1, *[1] * (g.ndim - 1)) for g in grads]
    return {
        _EXPECTED_B: run(clipped, B, std),
        "the noise's standard deviation is noise_multiplier × max_norm (σC), not noise_multiplier alone": run(clipped, E, sigma),
        "add the noise to the sum of the clipped gradients, then divide (the noise is scaled by 1/expected_batch_size too)":
            run(clipped, E, std, noise_after=True),
        "clip each example's gradient first (your clip_per_sample), then sum": run(grads, E, std),
        _TOGETHER: run(per_param, E, std),
        "an SGD step goes against the gradient: p - lr · grad": run(clipped, E, std, sign=1.0),
    }


def _step_cases(d: Draw) -> list[Case]:
    B = d.int(2, 9)
    p1, g1 = _step_problem(d, [(3, 4), (3,)], B)
    p2, g2 = _step_problem(d, [(2, 3), (2,), (4, 2)], B)
    p3, g3 = _step_problem(d, [(3, 2), (3,)], B, dtype=torch.float64)
    p4, g4 = _step_problem(d, [(2, 5), (2,)], 1)
    seed = d.int(0, 10**6)
    return [Case("another batch, max_norm and noise", p1, g1, d.float(0.1, 2.0), d.float(0.5, 3.0), d.int(2, 20),
                 d.float(0.01, 1.0), _gen(seed)),
            Case("three parameters", p2, g2, d.float(0.1, 2.0), d.float(0.5, 3.0), d.int(2, 20), 0.1, _gen(seed + 1),
                 hint="the norm covers every parameter in the list, and every parameter gets its own noise"),
            Case("float64 parameters", p3, g3, 0.5, 1.0, 8, 0.1, _gen(seed + 2),
                 hint="draw the noise in the parameter's dtype (torch.normal(..., dtype=p.dtype)): float64 noise is "
                      "another draw than float32 noise, and the step stays in float64"),
            Case("no noise (noise_multiplier 0)", p1, g1, 0.3, 0.0, B, 0.5, _gen(seed + 3)),
            Case("a batch of one", p4, g4, 1.0, 1.5, 10, 0.2, _gen(seed + 4))]


@exercise("15.dp_sgd_step", reference=dp_sgd.dp_sgd_step, cases=_step_cases)
def check_dp_sgd_step(c: Check) -> None:
    params, grads = _step_problem(None, [(3, 4), (3,)], 6, seed=5)
    args = (0.5, 1.1, 8, 0.1)
    out = c.call(params, grads, *args, _gen(11))
    c.expect(isinstance(out, (list, tuple)) and len(out) == 2, f"expected a list of 2 tensors, got {type(out).__name__}",
             "return the new parameters, one tensor per parameter, in order")
    for k, (o, p) in enumerate(zip(out, params)):
        c.expect_tensor(o, shape=p.shape, dtype=p.dtype, name=f"new params[{k}]")
    want = dp_sgd.dp_sgd_step(params, grads, *args, _gen(11))
    for hint, value in _step_variants(params, grads, *args, 11).items():
        if all(torch.allclose(o, v, rtol=1e-5, atol=1e-6) for o, v in zip(out, value)) and \
                not all(torch.allclose(w, v, rtol=1e-5, atol=1e-6) for w, v in zip(want, value)):
            c.fail("your step matches a known mistake", hint)
    for o, w in zip(out, want):
        c.close(o, w, "the new parameters are wrong",
                "clip, sum, + torch.normal(0, σC, size=p.shape, generator=generator) per parameter, / expected_batch_size, "
                "p - lr · grad")
    quiet, drew = c.call(params, grads, 0.5, 0.0, 6, 0.1, _gen(11), via=generator_moved)
    for o, w in zip(quiet, dp_sgd.dp_sgd_step(params, grads, 0.5, 0.0, 6, 0.1, _gen(11))):
        c.close(o, w, "with noise_multiplier 0 the step is wrong", "no noise: the mean of the clipped gradients")
    c.expect(not drew, "with noise_multiplier 0 your step still drew from the generator (its state moved)",
             "no draw when the std is 0, as Opacus: skip torch.normal (a zero-std draw still advances the generator, "
             "and every later step's noise would differ from Opacus's)")


def generator_moved(fn, params, grad_samples, max_norm, noise_multiplier, expected_batch_size, lr, generator):
    """Harness: ``fn``'s new parameters, and whether the call advanced ``generator`` (it runs where ``fn`` lives)."""
    before = generator.get_state().clone()
    out = fn(params, grad_samples, max_norm, noise_multiplier, expected_batch_size, lr, generator)
    return out, not torch.equal(before, generator.get_state())


# ------------------------------------------------------------------------------------------- accounting

def _rdp_compare(out, want) -> str | None:
    return same(out, want, rtol=1e-9, atol=1e-12, reveal=False)


def _rdp_variants(q, sigma, steps, orders) -> dict[str, list[float]]:
    one = accounting.gaussian_rdp(q, sigma, 1, orders)
    return {
        "RDP composes by adding: T steps cost steps × ρ(α)": one,
        "ρ(α) = log(A_α) / (α - 1): divide the log by α - 1": [r * (a - 1) * steps for r, a in zip(one, orders)],
        "with q < 1 use the subsampled mechanism's sum A_α, not the full-batch α / (2σ²)":
            [a / (2 * sigma**2) * steps for a in orders],
        "the exponent is (i² - i) / (2σ²): σ is squared": [
            steps * math.log(sum(math.comb(a, i) * q**i * (1 - q)**(a - i) * math.exp((i * i - i) / (2 * sigma)) for i in range(a + 1))) / (a - 1)
            for a in orders],
    }


def _rdp_cases(d: Draw) -> list[Case]:
    orders = sorted(d.sample(range(2, 64), d.int(3, 8)))
    return [Case("another sampling rate, noise and length", d.float(0.001, 0.1), d.float(0.7, 3.0), d.int(10, 5000), orders),
            Case("little noise and high orders", d.float(0.01, 0.2), d.float(0.3, 0.6), d.int(1, 100), [32, 48, 63],
                 hint="the terms overflow a float (exp(1000)): add them in log space (log-sum-exp), e.g. "
                      "math.lgamma for log C(α, i)"),
            Case("q = 1 (every example in every batch)", 1.0, d.float(0.5, 3.0), d.int(1, 50), orders,
                 hint="with q = 1 only the i = α term is left: ρ(α) = α / (2σ²) per step (log(1 - q) is -inf)"),
            Case("no noise (σ = 0)", d.float(0.01, 0.5), 0.0, 10, orders,
                 hint="no noise is no privacy: every order gives inf (do not divide by σ = 0)"),
            Case("q = 0 (nobody sampled)", 0.0, 1.0, 100, orders, hint="q = 0 releases nothing: ρ = 0"),
            Case("zero steps", 0.05, 1.0, 0, orders)]


@exercise("15.gaussian_rdp", reference=accounting.gaussian_rdp, cases=_rdp_cases, compare=_rdp_compare)
def check_gaussian_rdp(c: Check) -> None:
    orders = [2, 4, 8, 16, 32]
    q, sigma, steps = 0.02, 1.1, 100
    out = c.call(q, sigma, steps, orders)
    c.expect(isinstance(out, list) and len(out) == len(orders),
             f"expected a list of {len(orders)} numbers, got {type(out).__name__}",
             "return a list (the docstring's list[float]): one ρ per order, in order")
    c.expect(all(isinstance(v, float) for v in out), f"expected Python floats, got "
             f"{sorted({type(v).__name__ for v in out})}", "each ρ is a Python float: math gives floats, "
             "a tensor gives one with .item()")
    want = accounting.gaussian_rdp(q, sigma, steps, orders)
    c.diagnose(out, _rdp_variants(q, sigma, steps, orders), "your RDP matches a known mistake", rtol=1e-9, correct=want)
    c.expect(same(out, want, rtol=1e-9, atol=1e-12) is None, f"ρ = {[round(v, 6) for v in out]}, expected "
             f"{[round(v, 6) for v in want]}", "steps · log(Σ_i C(α,i) q^i (1-q)^(α-i) exp((i²-i)/(2σ²))) / (α - 1)")


_TIGHT = ("use the conversion of the exercise (Balle et al., as Opacus): ε = ρ - (log δ + log α)/(α - 1) "
          "+ log((α - 1)/α), not the older ρ + log(1/δ)/(α - 1)")


def _eps_cases(d: Draw) -> list[Case]:
    orders = sorted(d.sample(range(2, 80), d.int(4, 9)))
    shuffled = d.sample(orders, len(orders))
    q, sigma = d.float(0.005, 0.1), d.float(0.6, 2.0)
    with_inf = list(range(2, 12))
    return [Case("orders that are not 2, 3, 4, …", orders, accounting.gaussian_rdp(q, sigma, d.int(50, 3000), orders),
                 10 ** -d.int(3, 8), hint="the order is orders[i], not i + 2: read it from the list"),
            Case("orders in any order", shuffled, accounting.gaussian_rdp(q, sigma, 500, shuffled), 1e-5,
                 hint="the order is orders[i], not i + 2: read it from the list"),
            Case("an infinite ρ at some orders", with_inf, [math.inf] * 3 + accounting.gaussian_rdp(q, sigma, 100, with_inf[3:]),
                 1e-6),
            Case("a large δ", [2, 3, 5, 9], accounting.gaussian_rdp(0.5, 1.0, 10, [2, 3, 5, 9]), 0.1),
            Case("two orders that give exactly the same ε", *_tied_orders(d), hint=_FIRST_TIE),
            Case("ρ infinite at every order", [3, 5, 8], [math.inf] * 3, 1e-5,
                 hint="every ε is inf, a tie: return (inf, orders[0]), the first order")]


_FIRST_TIE = ("on a tie return the first order that gives the smallest ε: keep the best so far unless a later one is "
              "strictly smaller (< not <=; min() and argmin keep the first)")


def _epsilon(a: int, r: float, delta: float) -> float:
    return r - (math.log(delta) + math.log(a)) / (a - 1) + math.log((a - 1) / a)


def _tied_orders(d: Draw) -> tuple[list[int], list[float], float]:
    """Orders, largest first, whose ρ make ε(orders[0]) == ε(orders[-1]) exactly, below the others' ε: a tie the
    float arithmetic keeps, with the larger order first (sorting (ε, α) pairs would pick the smaller one)."""
    # ρ in [9, 11] and orders ≥ 6 keep every intermediate sum in [8, 16), one float grid: a tie can be reached
    orders, delta = sorted(d.sample(range(6, 40), 4), reverse=True), 1e-5
    rdp = [0.0] * len(orders)
    rdp[-1] = d.float(9.0, 11.0)
    while True:  # walk ρ at orders[0] by ulps towards the tie; if the rounding steps over it, move the target
        target = _epsilon(orders[-1], rdp[-1], delta)
        r = target - _epsilon(orders[0], 0.0, delta)
        below = _epsilon(orders[0], r, delta) < target
        while (e := _epsilon(orders[0], r, delta)) != target and (e < target) == below:
            r = math.nextafter(r, math.inf if below else -math.inf)
        if e == target:
            rdp[0] = r
            break
        rdp[-1] = math.nextafter(rdp[-1], math.inf)
    for i in range(1, len(orders) - 1):
        rdp[i] = target - _epsilon(orders[i], 0.0, delta) + 1.0
    return orders, rdp, delta


@exercise("15.rdp_to_epsilon", reference=accounting.rdp_to_epsilon, cases=_eps_cases, compare=_rdp_compare)
def check_rdp_to_epsilon(c: Check) -> None:
    orders = list(range(2, 33))
    rdp = accounting.gaussian_rdp(0.01, 1.0, 1000, orders)
    out = c.call(orders, rdp, 1e-5)
    c.expect(isinstance(out, tuple) and len(out) == 2, f"expected a tuple (epsilon, order), got {type(out).__name__}",
             "return a tuple: `return eps, order`, the smallest ε and the order that gives it")
    c.expect(isinstance(out[0], float), f"ε is a {type(out[0]).__name__}, expected a Python float",
             "ε is a Python float (math gives floats; a tensor or numpy value gives one with .item() or float())")
    c.expect(isinstance(out[1], int) and not isinstance(out[1], bool),
             f"the order is a {type(out[1]).__name__}, expected a Python int", "the order is an element of orders, an int")
    eps, order = out
    want_eps, want_order = accounting.rdp_to_epsilon(orders, rdp, 1e-5)
    old = [r + math.log(1 / 1e-5) / (a - 1) for a, r in zip(orders, rdp)]
    tight = [r - (math.log(1e-5) + math.log(a)) / (a - 1) + math.log((a - 1) / a) for a, r in zip(orders, rdp)]
    c.diagnose(eps, {_TIGHT: min(old),
                     "every order gives a valid guarantee: take the smallest ε, not the largest": max(tight)},
               "your ε matches a known mistake", rtol=1e-9, correct=want_eps)
    c.expect(math.isclose(eps, want_eps, rel_tol=1e-9), f"ε = {eps:.6g}, expected {want_eps:.6g}",
             "compute ε(α) for every order, then take the minimum")
    if order == orders.index(want_order):
        c.fail(f"the order is {order}: that is its position in the list", "return the order α itself, orders[i]")
    c.expect(order == want_order, f"the order is {order}, expected {want_order}", "the order at which ε is smallest")


# ------------------------------------------------------------------------------------ membership inference

_LOWER = "a member is guessed when its loss is at most τ (members have the lower losses): do not flip the attack or take abs"


def _advantage_variants(m, n) -> dict[str, float]:
    flip = membership.membership_advantage(-m, -n)
    t = m.mean()
    auc = ((m[:, None] < n[None, :]).double() + 0.5 * (m[:, None] == n[None, :]).double()).mean().item()
    return {_LOWER: flip,
            "try every threshold, not only the mean member loss: the advantage is the best TPR - FPR":
                (m <= t).double().mean().item() - (n <= t).double().mean().item(),
            "the advantage is TPR - FPR at the best single threshold, not the AUC": auc}


def _advantage_cases(d: Draw) -> list[Case]:
    a, b = d.int(5, 30), d.int(31, 60)
    m, n = d.rand(a) * 0.8, d.rand(b) * 1.5 + 0.2
    # a block of members 1e-9 below a block of non-members: apart in float64, tied in float32
    lm, ln = (d.randint(4, 8, (10,)) / 4).double(), (d.randint(4, 8, (10,)) / 4).double()
    lm[0], ln[0] = 1.75, 1.0  # the rest overlaps: the block decides
    near_m = torch.cat([torch.full((10,), 0.25, dtype=torch.float64) - 1e-9, lm])
    near_n = torch.cat([torch.full((10,), 0.25, dtype=torch.float64), ln])
    return [Case("unequal numbers of members and non-members", m, n,
                 hint="TPR is a share of the members, FPR a share of the non-members: divide each by its own count"),
            Case("tied losses", (d.randint(0, 4, (a,)) / 2).float(), (d.randint(1, 6, (b,)) / 2).float()),
            Case("float64 losses closer than float32 can tell", near_m, near_n,
                 hint="keep the losses' dtype (do not call .float()): float32 turns near-ties into ties"),
            Case("members with higher losses (no leak)", n[:a], m, hint=_LOWER),
            Case("one member", m[:1], n)]


@exercise("15.membership_advantage", reference=membership.membership_advantage, cases=_advantage_cases)
def check_membership_advantage(c: Check) -> None:
    m = torch.tensor([0.10, 0.20, 0.50, 0.90, 0.05])
    n = torch.tensor([0.30, 0.50, 1.20, 2.00, 0.15])
    out = c.number(c.call(m, n), "the advantage")
    want = membership.membership_advantage(m, n)
    c.diagnose(out, _advantage_variants(m, n), "your advantage matches a known mistake", rtol=1e-9, correct=want)
    c.expect(math.isclose(out, want, abs_tol=1e-6), f"advantage {out:.9g}, expected {want:.9g}",
             "for each threshold τ among the losses: share of members with loss ≤ τ minus share of non-members with loss ≤ τ")
    flipped = c.number(c.call(n + 1, m), "the advantage")
    c.expect(math.isclose(flipped, membership.membership_advantage(n + 1, m), abs_tol=1e-6),
             f"members with higher losses gave {flipped:.9g}, expected 0", _LOWER)


# ------------------------------------------------------------------------------------------- federated

def _states(d: Draw, k: int, shapes: dict, dtype=torch.float32) -> list[dict]:
    return [{key: d.randn(*s, dtype=dtype) for key, s in shapes.items()} for _ in range(k)]


def _fedavg_cases(d: Draw) -> list[Case]:
    shapes = {"weight": (3, 4), "bias": (3,)}
    big = {"embed.weight": (5, 3), "layers.0.weight": (4, 3), "layers.0.bias": (4,), "head.weight": (2, 4)}
    k = d.int(2, 6)
    return [Case("other sizes and more clients", _states(d, k, shapes), [d.int(1, 500) for _ in range(k)]),
            Case("a bigger model's state dict", _states(d, 2, big), [d.int(1, 50), d.int(1, 50)],
                 hint="average every key of the state dicts, whatever their names"),
            Case("one client", _states(d, 1, shapes), [d.int(1, 9)]),
            Case("float64 states", _states(d, 3, shapes, torch.float64), [1, 2, 3]),
            Case("bfloat16 states", _states(d, 2, shapes, torch.bfloat16), [3, 1], hint=DTYPE_HINT)]


@exercise("15.fedavg", reference=federated.fedavg, cases=_fedavg_cases)
def check_fedavg(c: Check) -> None:
    states = [{"weight": _randn(3, 4, seed=s), "bias": _randn(3, seed=s + 10)} for s in range(3)]
    sizes = [10, 30, 60]
    out = c.call(states, sizes)
    c.expect(isinstance(out, dict) and set(out) == {"weight", "bias"}, f"expected a dict with the states' keys, got "
             f"{type(out).__name__}", "return a state dict: {key: averaged tensor}")
    want = federated.fedavg(states, sizes)
    for k in want:  # types and dtypes first: the comparisons below need tensors of the states' dtype
        c.expect_tensor(out[k], shape=want[k].shape, name=f"result[{k!r}]")
        c.expect(out[k].dtype == want[k].dtype, f"result[{k!r}] has dtype {out[k].dtype}, expected the states' "
                 f"{want[k].dtype}", "return each average in the states' dtype: cast back with .to(state[key].dtype) "
                 "if you average in float64")
    plain = {k: sum(s[k] for s in states) / 3 for k in want}
    unnormalised = {k: sum(s[k] * n for s, n in zip(states, sizes)) for k in want}
    for hint, value in {"weight each client by its number of examples: n_k / Σ n": plain,
                        "divide the weighted sum by the total number of examples Σ n": unnormalised}.items():
        if all(torch.allclose(out[k], value[k], rtol=1e-5) for k in want):
            c.fail("your average matches a known mistake", hint)
    for k in want:
        c.close(out[k], want[k], f"result[{k!r}] is wrong", "Σ_k (n_k / Σ n) · state_k[key]")


_CLASSES = ("the number of classes is state['weight'].shape[0], not y.max() + 1: a client's data may lack some classes "
            "(non-IID clients)")


def _lsgd_problem(d: Draw, n: int, D: int, K: int, dtype=torch.float32, classes=None):
    state = {"weight": d.randn(K, D, dtype=dtype, scale=0.3), "bias": d.randn(K, dtype=dtype, scale=0.3)}
    y = d.randint(0, classes or K, (n,))
    return state, d.randn(n, D, dtype=dtype), y


_IN_DTYPE = ("return the dtype the input has, and compute in it (float64 here): float32 arithmetic cast back to "
             "float64 at the end loses the digits a float64 result must have")


def _lsgd_cases(d: Draw) -> list[Case]:
    s1, x1, y1 = _lsgd_problem(d, d.int(3, 20), d.int(2, 6), d.int(2, 5))
    s2, x2, y2 = _lsgd_problem(d, 12, 4, 4, classes=2)
    s3, x3, y3 = _lsgd_problem(d, 8, 3, 3, dtype=torch.float64)
    s4, x4, y4 = _lsgd_problem(d, 1, 3, 2)
    return [Case("another client", s1, x1, y1, d.float(0.05, 1.0), d.int(1, 6)),
            Case("a client without some classes", s2, x2, y2, 0.5, 3, hint=_CLASSES),
            Case("float64 weights", s3, x3, y3, 0.3, 4, hint=_IN_DTYPE),
            Case("one example", s4, x4, y4, 0.5, 2),
            Case("zero steps", s1, x1, y1, 0.5, 0)]


@exercise("15.local_sgd", reference=federated.local_sgd, cases=_lsgd_cases)
def check_local_sgd(c: Check) -> None:
    g = torch.Generator().manual_seed(8)
    state = {"weight": torch.randn(3, 4, generator=g) * 0.3, "bias": torch.randn(3, generator=g) * 0.3}
    x, y = torch.randn(10, 4, generator=g), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 2])
    out, graph = c.call(state, x, y, 0.5, 3, via=with_graph)
    c.expect(isinstance(out, dict) and set(out) == {"weight", "bias"},
             f"expected a dict {{'weight', 'bias'}}, got {type(out).__name__}", "return the new state dict")
    for k in out:
        c.expect_tensor(out[k], shape=state[k].shape, dtype=state[k].dtype, name=f"result[{k!r}]")
    c.expect(graph is None, f"result[{graph!r}] still requires grad or carries an autograd graph",
             "return plain tensors: .detach() what autograd built (a state dict holds values, not a graph that keeps "
             "every step's tensors alive)")
    want = federated.local_sgd(state, x, y, 0.5, 3)
    summed = federated.local_sgd(state, x, y, 0.5 * len(x), 3)
    once = federated.local_sgd(state, x, y, 0.5, 1)
    for hint, value in {"the loss is the mean cross-entropy over the client's examples, not the sum": summed,
                        "take `steps` gradient steps, each on all of the client's examples": once}.items():
        if all(torch.allclose(out[k], value[k], rtol=1e-4, atol=1e-6) for k in want):
            c.fail("your update matches a known mistake", hint)
    for k in want:
        c.close(out[k], want[k], f"result[{k!r}] is wrong",
                "W ← W - lr · ∂(mean cross-entropy)/∂W, `steps` times (and the same for the bias)")


def with_graph(fn, state, x, y, lr, steps):
    """Harness: ``fn``'s new state (detached), and the first key whose tensor requires grad or has a grad_fn (None
    when all are plain): the graph cannot travel, so it is judged where ``fn`` runs."""
    out = fn(state, x, y, lr, steps)
    if not isinstance(out, dict):
        return out, None
    graph = next((k for k, v in out.items() if isinstance(v, torch.Tensor) and (v.requires_grad or v.grad_fn is not None)),
                 None)
    return {k: v.detach() if isinstance(v, torch.Tensor) else v for k, v in out.items()}, graph


# ------------------------------------------------------------------------------------------- leakage

_ZERO_ROW = ("pick the row with the largest |grad_bias[i]|: an output whose gradient is 0 (a ReLU that did not fire, "
             "a saturated softmax) would divide 0 by 0")


def _one_example_grad(d: Draw, i: int, o: int, dtype=torch.float32, dead: int | None = None):
    x = d.randn(i, dtype=dtype)
    dy = d.randn(o, dtype=dtype)
    if dead is not None:
        dy[dead] = 0
    return torch.outer(dy, x), dy


def _leak_cases(d: Draw) -> list[Case]:
    return [Case("another layer", *_one_example_grad(d, d.int(3, 12), d.int(2, 6))),
            Case("the first output's gradient is 0", *_one_example_grad(d, 5, 4, dead=0), hint=_ZERO_ROW),
            Case("float64 gradients", *_one_example_grad(d, 6, 3, dtype=torch.float64)),
            Case("one output", *_one_example_grad(d, 7, 1)),
            Case("a summed gradient whose largest |grad_bias| is negative", *_two_example_grad(d, 5, [0.5, -3.0, 2.0]),
                 hint="pick the row by the largest |grad_bias[i]| (abs), not the largest signed value"),
            Case("a summed gradient with a tie in |grad_bias|", *_two_example_grad(d, 6, [1.0, 2.0, 0.5, -2.0]),
                 hint="on a tie take the first row with the largest |grad_bias[i]| (torch.argmax returns the first)")]


def _two_example_grad(d: Draw, i: int, grad_bias: list[float]):
    """A gradient summed over two examples, so not rank 1 (each row gives another "input"), whose bias gradient is
    ``grad_bias``."""
    gb = torch.tensor(grad_bias)
    dy2 = d.randn(len(gb), scale=0.5)
    return torch.outer(gb - dy2, d.randn(i)) + torch.outer(dy2, d.randn(i)), gb


@exercise("15.leak_input", reference=leakage.leak_input, cases=_leak_cases)
def check_leak_input(c: Check) -> None:
    x = torch.tensor([0.5, -1.0, 2.0, 0.25])
    lin = torch.nn.Linear(4, 3)
    with torch.no_grad():
        lin.weight.copy_(_randn(3, 4, seed=6))
        lin.bias.copy_(_randn(3, seed=7))
    with torch.enable_grad():
        F.cross_entropy(lin(x)[None], torch.tensor([1])).backward()
    gw, gb = lin.weight.grad.detach(), lin.bias.grad.detach()
    out = c.call(gw, gb)
    c.expect_tensor(out, name="the reconstructed input")
    if tuple(out.shape) == (3,):
        c.fail("your input has 3 entries, one per output", "row i of grad_weight (out, in) is x · grad_bias[i]: "
               "take a row, not a column")
    c.expect_tensor(out, shape=(4,), dtype=gw.dtype, name="the reconstructed input")
    if torch.allclose(out, gw[int(gb.abs().argmax())] * gb[int(gb.abs().argmax())]):
        c.fail("your input is the row times the bias gradient", "row i = x · grad_bias[i]: divide by grad_bias[i]")
    c.close(out, x, "the reconstructed input is not the input", "x = grad_weight[i] / grad_bias[i]")
