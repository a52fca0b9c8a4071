"""Turning a model's next-token distribution into text: temperature and sampling.

Temperature rescales logits before the softmax, p_i = exp(z_i / T) / sum_j exp(z_j / T):
T < 1 sharpens (T -> 0 is greedy argmax), T > 1 flattens toward uniform. Sampling draws one token
by inverting the cumulative distribution: with u ~ U[0, 1), pick the first i whose CDF exceeds u.
"""
from __future__ import annotations

import torch

from llmlab import _validate

PROB_SUM_TOL = 1e-4


def temperature_softmax(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """softmax(logits / T) over the last dim; T = 0 gives the one-hot argmax. logits: (..., V)."""
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point():
        raise TypeError("logits must be a float tensor")
    temperature = _validate.positive_float("temperature", temperature, allow_zero=True)
    if temperature == 0:
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).to(logits.dtype)
    # subtracting the max changes nothing mathematically and keeps exp() from overflowing
    z = logits / temperature
    z = (z - z.amax(-1, keepdim=True)).exp()
    return z / z.sum(-1, keepdim=True)


def sample_from_probs(probs: torch.Tensor, u: float) -> int:
    """Inverse-CDF sampling: the first index i with cumsum(probs)[i] > u. probs: (V,), u in [0, 1)."""
    if not isinstance(probs, torch.Tensor) or probs.ndim != 1 or not probs.is_floating_point():
        raise TypeError("probs must be a 1-D float tensor of shape (V,)")
    if (probs < 0).any() or abs(probs.sum().item() - 1) > PROB_SUM_TOL:
        raise ValueError(f"probs must be non-negative and sum to 1, got sum {probs.sum().item():.6f}")
    if not 0 <= u < 1:
        raise ValueError(f"u must lie in [0, 1), got {u}")
    cdf = probs.double().cumsum(0)
    i = int(torch.searchsorted(cdf, torch.tensor([u], dtype=torch.float64), right=True))
    # rounding can leave cdf[-1] a hair below u: fall back to the last token that has mass
    return min(i, int(probs.nonzero().max()))


def sample(probs: torch.Tensor, generator: torch.Generator | None = None) -> int:
    """One token drawn from ``probs`` (V,), reproducibly when a seeded ``generator`` is given."""
    u = torch.rand((), generator=generator, dtype=torch.float64).item()
    return sample_from_probs(probs, u)
