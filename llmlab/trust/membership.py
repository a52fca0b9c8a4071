"""Membership inference by a loss threshold (Yeom et al., 2018).

A model fits the examples it was trained on better than unseen ones, so a low loss betrays a member. The attacker
guesses "member" when an example's loss is at most a threshold τ; its **advantage** is the best
TPR(τ) - FPR(τ) over all thresholds (0 for a model that leaks nothing, 1 for one that separates them all).
(ε, δ)-DP bounds it: advantage ≤ (e^ε - 1 + 2δ) / (e^ε + 1).
"""
from __future__ import annotations

import math

import torch

from llmlab import validate


def membership_advantage(member_losses: torch.Tensor, nonmember_losses: torch.Tensor) -> float:
    """max over τ of P(member loss ≤ τ) - P(non-member loss ≤ τ), the thresholds τ ranging over every value
    (and -inf, which gives 0: the result is in [0, 1]). member_losses (m,), nonmember_losses (n,)."""
    m = validate.tensor("member_losses", member_losses, ndim=1, floating=True, finite=True)
    n = validate.tensor("nonmember_losses", nonmember_losses, ndim=1, floating=True, finite=True)
    for name, t in (("member_losses", m), ("nonmember_losses", n)):
        if not len(t):
            raise ValueError(f"{name} is empty: need at least one loss")
    dtype = torch.promote_types(m.dtype, n.dtype)
    m, n = m.to(dtype), n.to(dtype)
    thresholds = torch.cat([m, n]).unique()
    tpr = torch.searchsorted(m.sort().values, thresholds, right=True).double() / len(m)
    fpr = torch.searchsorted(n.sort().values, thresholds, right=True).double() / len(n)
    return max(0.0, (tpr - fpr).max().item())


def dp_advantage_bound(epsilon: float, delta: float) -> float:
    """The most any membership attack can gain against an (ε, δ)-DP training: (e^ε - 1 + 2δ) / (e^ε + 1)."""
    epsilon = validate.positive_float("epsilon", epsilon, allow_zero=True)
    delta = validate.probability("delta", delta)
    if epsilon > 700:
        return 1.0
    return min(1.0, (math.exp(epsilon) - 1 + 2 * delta) / (math.exp(epsilon) + 1))
