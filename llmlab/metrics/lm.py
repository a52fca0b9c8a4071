"""Language-model metrics from per-step log-probabilities.

Given log p(. | x_<t) at every step, shape (T, V), and the tokens that came, shape (T,):

    log p(x) = sum_t log p(x_t | x_<t)                    (sequence log-likelihood)
    H        = -(1/T) sum_t log p(x_t | x_<t)             (cross-entropy, nats per token)
    PPL      = exp(H)                                     (perplexity)

Perplexity is the effective number of equally likely choices per token: a uniform guess over V
tokens scores exactly V. These are the numbers `F.cross_entropy` and every LM paper report.
"""
from __future__ import annotations

import torch

PROB_SUM_TOL = 1e-3


def _check_log_probs(log_probs: torch.Tensor, targets: torch.Tensor) -> None:
    if not isinstance(log_probs, torch.Tensor) or not isinstance(targets, torch.Tensor):
        raise TypeError(
            f"log_probs and targets must be torch tensors, got {type(log_probs).__name__} and {type(targets).__name__}"
        )
    if log_probs.ndim != 2:
        raise ValueError(f"log_probs must have shape (T, V), got {tuple(log_probs.shape)}")
    if targets.ndim != 1 or targets.shape[0] != log_probs.shape[0]:
        raise ValueError(f"targets must have shape (T,) = ({log_probs.shape[0]},), got {tuple(targets.shape)}")
    if log_probs.shape[0] == 0:
        raise ValueError("empty sequence: need at least one step (T >= 1)")
    if not log_probs.is_floating_point():
        raise TypeError(f"log_probs must be a float tensor, got {log_probs.dtype}")
    if targets.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
        raise TypeError(f"targets must be an integer tensor, got {targets.dtype}")
    if targets.min() < 0 or targets.max() >= log_probs.shape[1]:
        raise ValueError(f"targets must lie in [0, V={log_probs.shape[1]})")
    sums = log_probs.double().logsumexp(-1)
    if not torch.allclose(sums, torch.zeros_like(sums), atol=PROB_SUM_TOL):
        raise ValueError(
            "log_probs rows must be log-probabilities (each row's exp sums to 1); "
            "apply log_softmax to logits first"
        )


def sequence_log_prob(log_probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Sum of log p(x_t | x_<t): log_probs (T, V), targets (T,) -> scalar tensor."""
    _check_log_probs(log_probs, targets)
    return log_probs.gather(-1, targets.long().unsqueeze(-1)).sum()


def cross_entropy(log_probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood in nats per token: log_probs (T, V), targets (T,) -> scalar."""
    return -sequence_log_prob(log_probs, targets) / targets.shape[0]


def perplexity(log_probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """exp(cross-entropy): log_probs (T, V), targets (T,) -> scalar."""
    return cross_entropy(log_probs, targets).exp()
