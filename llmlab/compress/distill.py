"""Knowledge distillation (Hinton, Vinyals & Dean, 2015): train a small student to match a big teacher's
whole next-token distribution, not only the one correct token.

Both models' logits are softened by a temperature T, and the student is pulled towards the teacher's
soft targets:

    p = softmax(z_teacher / T),   q = softmax(z_student / T)                      (..., V) each
    kd_loss   = T² · KL(p || q) = T² · sum_v p_v (log p_v - log q_v)                mean over positions
    loss      = alpha · kd_loss + (1 - alpha) · cross_entropy(z_student, y)        y: the hard labels

A high T lifts the small probabilities the teacher gives to the *wrong* tokens ("dark knowledge":
after "The cat sat on the", "mat" is right but "sofa" is far likelier than "of"), which one-hot labels
never show. Why T²: the gradient of KL(p || q) with respect to a student logit is (q_v - p_v) / T, and for
large T both q_v and p_v are 1/V + O(1/T), so the gradient shrinks like 1/T². Multiplying by T² keeps
its size roughly independent of T, so alpha means the same thing whatever T is.

Top-k teacher cache. Running SmolLM2-135M as a teacher on every training step is slow on a CPU, and
storing its full logits (V = 49152 per token) is huge: 100k tokens x 49152 x 2 bytes (float16) = 9.8 GB.
Keeping only each position's k largest logits (k = 32: 100k x 32 x (2 + 4) bytes = 19 MB) lets the
teacher run once. The cost: the teacher's distribution becomes its top-k renormalised,

    p~_v = softmax(top_values / T)_v   for the k cached tokens,   0 for the other V - k,

so the tail mass outside the top k (and whatever it says about the wrong tokens) is lost, and the
top-k probabilities are inflated by 1 / (mass inside the top k). ``kd_loss_topk`` is exactly
T² · KL(p~ || q) with q the student's full softmax (the KL over V, with p~ zero outside the top k); with
k = V it is ``kd_loss``.
"""
from __future__ import annotations


import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from llmlab import model_device, validate


def _check_logits(name: str, x) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"{name} must be a float torch.Tensor, got {getattr(x, 'dtype', type(x).__name__)}")
    if x.ndim == 0 or x.shape[-1] == 0:
        raise ValueError(f"{name} must have shape (..., V) with V >= 1, got {tuple(x.shape)}")
    # softmax over 49k logits in bfloat16 loses most of the small probabilities distillation is about
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def _check_ids(name: str, x) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.dtype.is_floating_point or x.dtype.is_complex or x.dtype == torch.bool:
        raise TypeError(f"{name} must be a tensor of token ids (integers), got {getattr(x, 'dtype', type(x).__name__)}")
    return x


def _check_temperature(T) -> float:
    return validate.positive_float("temperature T", T)


def _check_same_shape(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> None:
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student_logits {tuple(student_logits.shape)} and teacher_logits "
                         f"{tuple(teacher_logits.shape)} must have the same shape (..., V)")


def soft_targets(logits: torch.Tensor, T: float) -> torch.Tensor:
    """softmax(logits / T) over the last dim; logits (..., V) -> probabilities (..., V).
    T = 1: the model's own distribution; T > 1 flattens it, T -> inf tends to uniform."""
    logits = _check_logits("logits", logits)
    return (logits / _check_temperature(T)).softmax(-1)


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, T: float) -> torch.Tensor:
    """T² · KL(softmax(teacher / T) || softmax(student / T)), averaged over positions; a scalar.

    student_logits, teacher_logits: (..., V), the same shape; every leading dim counts as a position
    (``F.kl_div(..., reduction="batchmean")`` on the (positions, V) view). The teacher is a fixed target:
    no gradient flows into it.
    """
    student_logits = _check_logits("student_logits", student_logits)
    teacher_logits = _check_logits("teacher_logits", teacher_logits)
    _check_same_shape(student_logits, teacher_logits)
    T = _check_temperature(T)
    log_q = (student_logits / T).log_softmax(-1)
    log_p = (teacher_logits.detach() / T).log_softmax(-1)
    # p (log p - log q) with log p from log_softmax, not log(softmax): a probability that underflows to 0
    # then gives 0 · finite = 0 instead of 0 · -inf = NaN
    kl = (log_p.exp() * (log_p - log_q)).sum(-1)  # (...,): one KL per position
    return kl.mean() * T**2


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor,
                      T: float, alpha: float) -> torch.Tensor:
    """alpha · kd_loss(student, teacher, T) + (1 - alpha) · cross_entropy(student, targets); a scalar.

    student_logits, teacher_logits (..., V); targets (...) long, the hard next tokens. The
    cross-entropy uses the student's logits at T = 1, as the student will be used. alpha = 1 is pure
    distillation, alpha = 0 ordinary training.
    """
    student_logits = _check_logits("student_logits", student_logits)
    alpha = validate.probability("alpha", alpha)
    if _check_ids("targets", targets).shape != student_logits.shape[:-1]:
        raise ValueError(f"targets must have shape {tuple(student_logits.shape[:-1])} (student_logits' without V), "
                         f"got {tuple(targets.shape)}")
    V = student_logits.shape[-1]
    if targets.numel() and (int(targets.min()) < 0 or int(targets.max()) >= V):
        raise ValueError(f"targets must hold token ids in [0, {V}), got {int(targets.min())} to {int(targets.max())}")
    soft = kd_loss(student_logits, teacher_logits, T)
    hard = F.cross_entropy(student_logits.reshape(-1, student_logits.shape[-1]), targets.reshape(-1).long())
    return alpha * soft + (1 - alpha) * hard


# ------------------------------------------------------------------------------- top-k teacher cache


def topk_logits(logits: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k largest logits of each position and their token ids, largest first:
    logits (..., V) -> (values (..., k), indices (..., k) long)."""
    logits = _check_logits("logits", logits)
    k = validate.positive_int("k", k)
    if k > logits.shape[-1]:
        raise ValueError(f"k must be <= the vocabulary size V = {logits.shape[-1]}, got {k}")
    values, indices = logits.topk(k, dim=-1)
    return values, indices


def kd_loss_topk(student_logits: torch.Tensor, top_values: torch.Tensor, top_indices: torch.Tensor,
                 T: float) -> torch.Tensor:
    """T² · KL(p~ || q) against a cached top-k teacher, averaged over positions; a scalar.

    student_logits (..., V); top_values (..., k): the teacher's top-k logits, or anything that differs
    from them by a constant per position, such as the log-probabilities ``teacher_topk`` stores (softmax
    does not see the shift); top_indices (..., k): their token ids. p~ = softmax(top_values / T) over the
    k cached tokens only (zero elsewhere); q = softmax(student_logits / T) over all V tokens, so the
    student is still pushed to take mass away from the tokens outside the top k.
    """
    student_logits = _check_logits("student_logits", student_logits)
    top_values = _check_logits("top_values", top_values)  # float16 from the cache -> float32
    _check_ids("top_indices", top_indices)
    if top_values.shape != top_indices.shape or top_values.shape[:-1] != student_logits.shape[:-1]:
        raise ValueError(f"student_logits {tuple(student_logits.shape)}, top_values {tuple(top_values.shape)} and "
                         f"top_indices {tuple(top_indices.shape)} must be (..., V), (..., k) and (..., k)")
    V, k = student_logits.shape[-1], top_indices.shape[-1]
    if k > V:
        raise ValueError(f"k = {k} cached tokens is more than the vocabulary size V = {V}")
    if int(top_indices.min()) < 0 or int(top_indices.max()) >= V:
        raise ValueError(f"top_indices must be token ids in [0, {V})")
    T = _check_temperature(T)
    log_q = (student_logits / T).log_softmax(-1).gather(-1, top_indices.long())  # (..., k); gather needs int64
    log_p = (top_values.detach().to(log_q.dtype) / T).log_softmax(-1)  # renormalised over the k cached tokens
    kl = (log_p.exp() * (log_p - log_q)).sum(-1)  # the other V - k tokens have p~ = 0: no term
    return kl.mean() * T**2


@torch.no_grad()
def teacher_topk(teacher: nn.Module, ids: torch.Tensor, k: int, batch_size: int = 8,
                 progress: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``teacher`` once over ids (B, T) and keep each position's top k: (values, indices), (B, T, k) each,
    on the CPU. ``teacher(x)`` maps (b, T) ids to (b, T, V) logits (an llmlab ``Decoder``); it runs on
    ``batch_size`` sequences at a time (all of them at once when batch_size >= B).

    values are the teacher's log-probabilities log softmax(z) (T = 1) of its top-k tokens, in float16:
    they differ from the top-k logits by a constant per position, so ``kd_loss_topk`` gives the same loss,
    but they lie in (-inf, 0] with the likeliest tokens near 0, where float16 is most precise (raw logits
    of 20-30 would carry ~0.01 absolute rounding error), and ``values.float().exp().sum(-1)`` is the
    probability mass the cache keeps. indices are int32 (any vocabulary < 2^31 fits; half of int64's
    memory); ``kd_loss_topk`` widens them to int64 for ``gather``. Per token: k · (2 + 4) bytes.
    """
    validate.flag("progress", progress)
    if not isinstance(teacher, nn.Module):
        raise TypeError(f"teacher must be an nn.Module mapping ids (b, T) to logits (b, T, V), got "
                        f"{type(teacher).__name__}")
    if _check_ids("ids", ids).ndim != 2 or ids.numel() == 0:
        raise ValueError(f"ids must have shape (B, T) with B, T >= 1, got {tuple(ids.shape)}")
    k = validate.positive_int("k", k)
    batch_size = validate.positive_int("batch_size", batch_size)
    device = model_device(teacher)
    was_training = teacher.training
    teacher.eval()  # no dropout: the cache must hold the teacher's real predictions
    values, indices = [], []
    for start in tqdm(range(0, ids.shape[0], batch_size), desc="teacher top-k", disable=not progress, leave=False):
        logits = teacher(ids[start:start + batch_size].to(device))  # (b, T, V)
        v, i = topk_logits(logits.float().log_softmax(-1), k)
        values.append(v.to("cpu", torch.float16))
        indices.append(i.to("cpu", torch.int32))
    teacher.train(was_training)
    return torch.cat(values), torch.cat(indices)
