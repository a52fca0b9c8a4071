"""Language-model metrics from per-step log-probabilities.

Given log p(. | x_<t) at every step, shape (T, V), and the tokens that came, shape (T,):

    log p(x) = sum_t log p(x_t | x_<t)                    (sequence log-likelihood)
    H        = -(1/T) sum_t log p(x_t | x_<t)             (cross-entropy, nats per token)
    PPL      = exp(H)                                     (perplexity)

Perplexity is the effective number of equally likely choices per token: a uniform guess over V
tokens scores exactly V. These are the numbers `F.cross_entropy` and every LM paper report.

A text longer than the model's context is scored with a sliding window (``strided_windows``,
``strided_nll``, ``strided_perplexity``): each window conditions on up to ``window`` tokens and
scores only the tokens no earlier window scored.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from llmlab import model_device, validate

PROB_SUM_TOL = 1e-3


def _check_log_probs(log_probs: torch.Tensor, targets: torch.Tensor) -> None:
    if not isinstance(log_probs, torch.Tensor) or not isinstance(targets, torch.Tensor):
        raise TypeError(
            f"log_probs and targets must be torch tensors, got {type(log_probs).__name__} and {type(targets).__name__}"
        )
    if log_probs.ndim != 2:
        raise ValueError(f"log_probs must have shape (T, V), got {tuple(log_probs.shape)}")
    if log_probs.shape[0] == 0 or log_probs.shape[1] == 0:
        raise ValueError(f"log_probs is empty, shape {tuple(log_probs.shape)}: need at least one step (T >= 1)")
    if targets.ndim != 1 or targets.shape[0] != log_probs.shape[0]:
        raise ValueError(f"targets must have shape (T,) = ({log_probs.shape[0]},), got {tuple(targets.shape)}")
    if not log_probs.is_floating_point():
        raise TypeError(f"log_probs must be a float tensor, got {log_probs.dtype}")
    if torch.isnan(log_probs).any():
        raise ValueError("log_probs contain NaN")
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


# ---------------------------------------------------------------------------------------------
# Perplexity of a text longer than the model's context: a sliding window with a stride
# ---------------------------------------------------------------------------------------------
#
# A model with a context of ``window`` tokens cannot condition on the whole text. Chopping the text
# into disjoint windows is cheap but unfair: the first tokens of every window are predicted with
# almost no context. The sliding-window method (transformers' documentation, "Perplexity of
# fixed-length models") moves a window of ``window`` tokens forward by ``stride`` tokens and scores
# only the tokens that are new in each window, the last ``trg_len = end - prev_end``; the earlier
# ones are context only. Every token is then scored exactly once, with at least
# ``window - stride`` tokens of context (except near the start). Smaller strides give more context
# and a lower perplexity, at the cost of about ``window / stride`` times more forward passes.


def model_perplexity(model, ids: torch.Tensor, batch_size: int = 4) -> float:
    """exp(mean next-token cross-entropy) of ``model`` over the rows of ``ids``: token ids (N, T), or one
    sequence (T,), T >= 2. In each row every position but the last predicts the next token; all N (T - 1)
    predictions count equally. Rows run ``batch_size`` at a time (SmolLM2's logits are 49,152 wide: 4,096
    positions at once take 800 MB), without gradients, in eval mode (the model's mode is restored after).
    ``model(idx)`` maps (B, T) ids to logits (B, T, V): an llmlab ``Decoder`` or any such callable."""
    if not callable(model):
        raise TypeError(f"model must map token ids to logits (a Decoder or a function), got {type(model).__name__}")
    validate.tensor("ids", ids, min_ndim=1)
    if ids.dtype.is_floating_point or ids.dtype.is_complex or ids.dtype == torch.bool:
        raise TypeError(f"ids must hold integer token ids, got dtype {ids.dtype}")
    if ids.ndim > 2:
        raise ValueError(f"ids must have shape (N, T) or (T,), got {tuple(ids.shape)}")
    rows = ids.reshape(-1, ids.shape[-1])
    if rows.shape[1] < 2 or rows.shape[0] == 0:
        raise ValueError(f"ids must hold at least one row of 2 or more tokens, got shape {tuple(ids.shape)}")
    batch_size = validate.size("batch_size", batch_size)
    device = model_device(model)
    was_training = getattr(model, "training", None)
    if was_training is not None:
        model.eval()
    total = torch.zeros((), dtype=torch.float64)
    try:
        with torch.inference_mode():
            for start in range(0, len(rows), batch_size):
                x = rows[start:start + batch_size].to(device or rows.device)
                logits = model(x[:, :-1])  # (B, T - 1, V): position t predicts token t + 1
                total += F.cross_entropy(logits.flatten(0, 1).float(), x[:, 1:].flatten(), reduction="sum").double().cpu()
    finally:
        if was_training is not None:
            model.train(was_training)
    return math.exp(total.item() / (rows.shape[0] * (rows.shape[1] - 1)))


def strided_windows(n_tokens: int, window: int, stride: int) -> list[tuple[int, int, int]]:
    """The windows of the sliding-window perplexity, as ``(begin, end, trg_len)`` triples.

    Window i covers tokens ``[begin, end)`` with ``begin = i * stride`` and
    ``end = min(begin + window, n_tokens)``; its last ``trg_len = end - prev_end`` tokens are the
    ones not yet covered by an earlier window (the first window: all of them). The list stops with
    the first window that reaches the end of the text, so the trg_len add up to ``n_tokens``.

    >>> strided_windows(10, window=4, stride=2)
    [(0, 4, 4), (2, 6, 2), (4, 8, 2), (6, 10, 2)]
    """
    n_tokens = validate.size("n_tokens", n_tokens)
    window = validate.positive_int("window", window, minimum=2)
    stride = validate.positive_int("stride", stride)
    if stride > window:
        raise ValueError(f"stride ({stride}) > window ({window}) would skip tokens between windows")
    windows, prev_end = [], 0
    for begin in range(0, n_tokens, stride):
        end = min(begin + window, n_tokens)
        windows.append((begin, end, end - prev_end))
        prev_end = end
        if end == n_tokens:
            break
    return windows


def strided_nll(model, ids, window: int, stride: int, progress: bool = False) -> tuple[float, int]:
    """Total negative log-likelihood (nats) of ``ids`` under ``model`` with a sliding window, and the
    number of tokens it covers: ``(sum_t -log p(x_t | context_t), n_scored)``.

    ``model(idx)`` maps token ids (1, L) to logits (1, L, V) (an llmlab ``Decoder``, or any
    callable); ``ids`` is the text's token ids, a 1-D tensor or list of length N >= 2. Each window of
    ``strided_windows(N, window, stride)`` is run once; of its positions, only the last ``trg_len``
    are scored, each predicted from the tokens before it in the same window. A window's first token
    has nothing before it and cannot be scored: that is the text's first token when
    ``stride < window`` (``n_scored = N - 1``), and the first token of every chunk when
    ``stride == window`` (``n_scored = N - number of windows``).
    """
    validate.flag("progress", progress)
    if not callable(model):
        raise TypeError(f"model must map token ids to logits (a Decoder or a function), got {type(model).__name__}")
    if isinstance(ids, torch.Tensor):
        if ids.ndim != 1:
            raise ValueError(f"ids must be one sequence (1-D), got shape {tuple(ids.shape)}")
        if ids.dtype.is_floating_point or ids.dtype == torch.bool:
            raise TypeError(f"ids must hold integer token ids, got dtype {ids.dtype}")
        ids = ids.long()
    else:
        ids = torch.tensor(validate.token_ids("ids", ids), dtype=torch.long)
    if len(ids) < 2:
        raise ValueError(f"ids must hold at least 2 tokens to score one prediction, got {len(ids)}")
    device = model_device(model)
    if device is not None:
        ids = ids.to(device)
    windows = strided_windows(len(ids), window, stride)
    if progress:
        from tqdm.auto import tqdm

        windows = tqdm(windows, desc=f"stride {stride}", leave=False)
    total, n_scored = torch.zeros((), dtype=torch.float64), 0
    with torch.inference_mode():
        for begin, end, trg_len in windows:
            x = ids[begin:end]
            logits = model(x[None])[0]  # (L, V); position t predicts x[t + 1]
            n = min(trg_len, len(x) - 1)  # position 0 of a window predicts nothing
            if n == 0:  # a one-token last chunk (stride == window): nothing to score, and x[-0:] would be all of x
                continue
            log_probs = logits[-n - 1 : -1].float().log_softmax(-1)  # (n, V)
            total -= log_probs.gather(-1, x[-n:, None]).cpu().double().sum()
            n_scored += n
    if not torch.isfinite(total):
        raise ValueError("the model produced NaN or infinite log-probabilities")
    return total.item(), n_scored


def strided_perplexity(model, ids, window: int, stride: int, progress: bool = False) -> float:
    """exp(total NLL / tokens scored) of ``strided_nll``: the perplexity of a long text under a model
    that sees at most ``window`` tokens, sliding by ``stride``. ``stride == window`` is disjoint
    chunks (cheapest, least context); ``stride == 1`` gives every token ``window - 1`` tokens of
    context (``N`` forward passes)."""
    total, n = strided_nll(model, ids, window, stride, progress)
    return math.exp(total / n)
