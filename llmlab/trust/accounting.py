"""Privacy accounting for DP-SGD with Rényi differential privacy (Mironov, 2017; Mironov et al., 2019).

A mechanism is (α, ρ)-RDP when the Rényi divergence of order α between its outputs on two neighbouring data sets
is at most ρ. RDP composes by addition: T steps cost T·ρ(α). The sampled Gaussian mechanism (each example in the
batch with probability q, noise multiplier σ) has, at an integer order α ≥ 2,

    ρ(α) = log A_α / (α - 1),   A_α = Σ_{i=0..α} C(α, i) q^i (1 - q)^(α-i) exp((i² - i) / (2σ²)),

and a set of (α, ρ) converts to (ε, δ)-DP by the best order of
ε(α) = ρ - (log δ + log α) / (α - 1) + log((α - 1) / α)   (Balle et al., 2020, Theorem 21).
The same formulas as ``opacus.accountants.analysis.rdp`` at integer orders.
"""
from __future__ import annotations

import math

from llmlab import validate

ORDERS = list(range(2, 64))  # integer orders; Opacus's default adds fractional ones between 1 and 11


def _orders(orders) -> list[int]:
    if not isinstance(orders, (list, tuple)):
        raise TypeError(f"orders must be a list of ints, got {type(orders).__name__}")
    if not orders:
        raise ValueError("orders is empty: need at least one order")
    return [validate.integer(f"orders[{i}]", a, minimum=2, maximum=10_000) for i, a in enumerate(orders)]


def _log_add(a: float, b: float) -> float:
    lo, hi = min(a, b), max(a, b)
    return hi if lo == -math.inf else math.log1p(math.exp(lo - hi)) + hi


def _rdp_one(q: float, sigma: float, alpha: int) -> float:
    if q == 0:
        return 0.0
    if sigma == 0:
        return math.inf
    if q == 1:
        return alpha / (2 * sigma**2)
    log_a = -math.inf
    for i in range(alpha + 1):  # summed in log space: the terms overflow a float long before their log does
        log_binom = math.lgamma(alpha + 1) - math.lgamma(i + 1) - math.lgamma(alpha - i + 1)
        log_a = _log_add(log_a, log_binom + i * math.log(q) + (alpha - i) * math.log1p(-q) + (i * i - i) / (2 * sigma**2))
    return log_a / (alpha - 1)


def gaussian_rdp(q: float, noise_multiplier: float, steps: int, orders: list[int]) -> list[float]:
    """The RDP ρ(α) of ``steps`` steps of the sampled Gaussian mechanism (sampling rate q, noise multiplier σ) at
    each integer order α ≥ 2 of ``orders``: steps · log(A_α) / (α - 1). q = 0 gives 0, σ = 0 gives inf."""
    q = validate.probability("q", q)
    noise_multiplier = validate.positive_float("noise_multiplier", noise_multiplier, allow_zero=True)
    steps = validate.size("steps", steps, minimum=0)
    return [_rdp_one(q, noise_multiplier, a) * steps for a in _orders(orders)]


def rdp_to_epsilon(orders: list[int], rdp: list[float], delta: float) -> tuple[float, int]:
    """(ε, α): the smallest ε(α) = ρ_α - (log δ + log α)/(α - 1) + log((α - 1)/α) over the orders, and the order
    that gives it (the first one on a tie). ρ may be inf (then that order gives inf)."""
    orders = _orders(orders)
    if not isinstance(rdp, (list, tuple)):
        raise TypeError(f"rdp must be a list of numbers, got {type(rdp).__name__}")
    rdp = [validate.real(f"rdp[{i}]", r, minimum=0.0, finite=False) for i, r in enumerate(rdp)]
    if len(rdp) != len(orders):
        raise ValueError(f"rdp must have one value per order ({len(orders)}), got {len(rdp)}")
    delta = validate.probability("delta", delta, allow_zero=False, allow_one=False)
    eps = [r - (math.log(delta) + math.log(a)) / (a - 1) + math.log((a - 1) / a) for a, r in zip(orders, rdp)]
    best = min(range(len(eps)), key=lambda i: eps[i])
    return eps[best], orders[best]


def dp_epsilon(q: float, noise_multiplier: float, steps: int, delta: float, orders: list[int] | None = None) -> float:
    """ε of ``steps`` DP-SGD steps at (q, σ) for ``delta``, over integer ``orders`` (default :data:`ORDERS`)."""
    orders = ORDERS if orders is None else orders
    return rdp_to_epsilon(orders, gaussian_rdp(q, noise_multiplier, steps, orders), delta)[0]
