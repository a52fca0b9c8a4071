"""Common mistakes in 11_compression."""
import math
import warnings

import torch
import torch.nn.functional as F

from llmlab.compress import distill, lowrank, ratio, sharing
from tests.mutants import mistake


def sharing_ratio(n_weights, k, weight_bits, codebook_bits):
    return ratio.compression_ratio(n_weights * weight_bits,
                                   n_weights * sharing.codebook_bits_per_weight(n_weights, k, codebook_bits))


def sparse_ratio(n_weights, density, value_bits, index_bits):
    return ratio.compression_ratio(n_weights * value_bits, ratio.pruned_bits(n_weights, density, value_bits, index_bits))


REFERENCE = {
    "check_soft_targets": distill.soft_targets,
    "check_kd_loss": distill.kd_loss,
    "check_distillation_loss": distill.distillation_loss,
    "check_assign": sharing.assign,
    "check_update": sharing.update,
    "check_truncated_svd": lowrank.truncated_svd,
    "check_sharing_ratio": sharing_ratio,
    "check_sparse_ratio": sparse_ratio,
}


# soft_targets
@mistake("check_soft_targets", "temperature is not used")
def st_no_temperature(logits, T):
    return logits.softmax(-1)


@mistake("check_soft_targets", "do not multiply")
def st_times_T(logits, T):
    return (logits * T).softmax(-1)


@mistake("check_soft_targets", "not log-probabilities")
def st_log(logits, T):
    return (logits / T).log_softmax(-1)


@mistake("check_soft_targets", "the last dim")
def st_wrong_dim(logits, T):
    return (logits / T).softmax(0)


@mistake("check_soft_targets", "normalise")
def st_unnormalised(logits, T):
    return (logits / T).exp()


# kd_loss
def _kl(log_p, log_q):
    return (log_p.exp() * (log_p - log_q)).sum(-1).mean()


@mistake("check_kd_loss", "multiply the KL by T²")
def kd_no_T2(s, t, T):
    return _kl((t / T).log_softmax(-1), (s / T).log_softmax(-1))


@mistake("check_kd_loss", "T², not T")
def kd_times_T(s, t, T):
    return kd_no_T2(s, t, T) * T


@mistake("check_kd_loss", "swapped teacher and student")
def kd_reversed(s, t, T):
    return _kl((s / T).log_softmax(-1), (t / T).log_softmax(-1)) * T**2


@mistake("check_kd_loss", "divide the student's logits by T too")
def kd_student_not_softened(s, t, T):
    return _kl((t / T).log_softmax(-1), s.log_softmax(-1)) * T**2


@mistake("check_kd_loss", "divide the teacher's logits by T too")
def kd_teacher_not_softened(s, t, T):
    return _kl(t.log_softmax(-1), (s / T).log_softmax(-1)) * T**2


@mistake("check_kd_loss", "do not sum over positions")
def kd_sum_positions(s, t, T):
    log_p, log_q = (t / T).log_softmax(-1), (s / T).log_softmax(-1)
    return (log_p.exp() * (log_p - log_q)).sum() * T**2


@mistake("check_kd_loss", "also divides by V")
def kd_kl_div_mean(s, t, T):
    with warnings.catch_warnings():  # torch warns that 'mean' is not the KL's definition: the very mistake
        warnings.simplefilter("ignore")
        return F.kl_div((s / T).log_softmax(-1), (t / T).softmax(-1), reduction="mean") * T**2


@mistake("check_kd_loss", "divides by the first dim only")
def kd_kl_div_batchmean_3d(s, t, T):
    return F.kl_div((s / T).log_softmax(-1), (t / T).log_softmax(-1), reduction="batchmean", log_target=True) * T**2


@mistake("check_kd_loss", "teacher's entropy")
def kd_cross_entropy(s, t, T):
    return -((t / T).softmax(-1) * (s / T).log_softmax(-1)).sum(-1).mean() * T**2


@mistake("check_kd_loss", "no .item()")
def kd_float(s, t, T):
    return distill.kd_loss(s, t, T).item()


@mistake("check_kd_loss", "no gradient")
def kd_detached(s, t, T):
    return distill.kd_loss(s.detach(), t, T)


@mistake("check_kd_loss", "average over the positions")
def kd_per_position(s, t, T):
    log_p, log_q = (t / T).log_softmax(-1), (s / T).log_softmax(-1)
    return (log_p.exp() * (log_p - log_q)).sum(-1) * T**2


# distillation_loss
def _ce(s, y):
    return F.cross_entropy(s.reshape(-1, s.shape[-1]), y.reshape(-1))


@mistake("check_distillation_loss", "swapped them")
def dl_alpha_swapped(s, t, y, T, alpha):
    return (1 - alpha) * distill.kd_loss(s, t, T) + alpha * _ce(s, y)


@mistake("check_distillation_loss", "plain logits (T = 1)")
def dl_ce_at_T(s, t, y, T, alpha):
    return alpha * distill.kd_loss(s, t, T) + (1 - alpha) * _ce(s / T, y)


@mistake("check_distillation_loss", "not their plain sum")
def dl_plain_sum(s, t, y, T, alpha):
    return distill.kd_loss(s, t, T) + _ce(s, y)


@mistake("check_distillation_loss", "flatten the positions")
def dl_ce_unflattened(s, t, y, T, alpha):
    return alpha * distill.kd_loss(s, t, T) + (1 - alpha) * F.cross_entropy(s, y)


@mistake("check_distillation_loss", "the cross-entropy is not")
def dl_ce_times_T2(s, t, y, T, alpha):
    return alpha * distill.kd_loss(s, t, T) + (1 - alpha) * _ce(s, y) * T**2


# assign
@mistake("check_assign", "argmin, not argmax")
def as_argmax(w, codebook):
    return (w[..., None] - codebook).abs().argmax(-1)


@mistake("check_assign", "signed difference")
def as_signed(w, codebook):
    return (w[..., None] - codebook).argmin(-1)


@mistake("check_assign", "*sorted* codebook")
def as_sorted_rank(w, codebook):
    c = codebook.sort().values
    return torch.searchsorted((c[1:] + c[:-1]) / 2, w.flatten()).reshape(w.shape)


@mistake("check_assign", "not evenly spaced")
def as_uniform_grid(w, codebook):
    k = len(codebook)
    pos = (w - codebook.min()) / (codebook.max() - codebook.min()) * (k - 1)
    return pos.round().clamp(0, k - 1).long()


@mistake("check_assign", "expected integers")
def as_float(w, codebook):
    return sharing.assign(w, codebook).float()


# update
@mistake("check_update", "keeps its old value")
def up_empty_zero(w, idx, codebook):
    new = sharing.update(w, idx, codebook)
    return torch.where(torch.bincount(idx.flatten(), minlength=len(codebook)) > 0, new, torch.zeros_like(new))


@mistake("check_update", "divides 0 by 0")
def up_empty_nan(w, idx, codebook):
    idx, w = idx.flatten(), w.flatten()
    return torch.stack([w[idx == j].mean() for j in range(len(codebook))])


@mistake("check_update", "divide the sum by the count")
def up_sum(w, idx, codebook):
    sums = torch.zeros_like(codebook).index_add_(0, idx.flatten(), w.flatten())
    return torch.where(torch.bincount(idx.flatten(), minlength=len(codebook)) > 0, sums, codebook)


@mistake("check_update", "not the median")
def up_median(w, idx, codebook):
    idx, w = idx.flatten(), w.flatten()
    return torch.stack([w[idx == j].median() if (idx == j).any() else codebook[j] for j in range(len(codebook))])


@mistake("check_update", "every weight counts once")
def up_rows(w, idx, codebook):
    """Means of the first row only: forgets that a 2-D weight holds more than one row."""
    return sharing.update(w.reshape(-1, w.shape[-1])[0], idx.reshape(-1, w.shape[-1])[0], codebook)


# truncated_svd
def _svd(w):
    return torch.linalg.svd(w, full_matrices=False)


@mistake("check_truncated_svd", "*largest* singular values")
def svd_smallest(w, rank):
    U, S, Vh = _svd(w)
    root = S[-rank:].sqrt()
    return U[:, -rank:] * root, root[:, None] * Vh[-rank:]


@mistake("check_truncated_svd", "singular values are missing")
def svd_no_sigma(w, rank):
    U, S, Vh = _svd(w)
    return U[:, :rank], Vh[:rank]


@mistake("check_truncated_svd", "not by σ")
def svd_sigma_twice(w, rank):
    U, S, Vh = _svd(w)
    return U[:, :rank] * S[:rank], S[:rank, None] * Vh[:rank]


@mistake("check_truncated_svd", "its *rows* are the right singular vectors")
def svd_vh_columns(w, rank):
    U, S, Vh = _svd(w)
    root = S[:rank].sqrt()
    return U[:, :rank] * root, root[:, None] * Vh[:, :rank].T


@mistake("check_truncated_svd", "U and V are swapped")
def svd_swapped(w, rank):
    U, S, Vh = _svd(w)
    root = S[:rank].sqrt()
    return Vh[:rank].T * root, root[:, None] * U[:, :rank].T


@mistake("check_truncated_svd", "split the singular values evenly")
def svd_all_sigma_left(w, rank):
    U, S, Vh = _svd(w)
    return U[:, :rank] * S[:rank], Vh[:rank]


# sharing_ratio
@mistake("check_sharing_ratio", "inverted")
def sr_inverted(n_weights, k, weight_bits, codebook_bits):
    return 1 / sharing_ratio(n_weights, k, weight_bits, codebook_bits)


@mistake("check_sharing_ratio", "the codebook is stored too")
def sr_no_codebook(n_weights, k, weight_bits, codebook_bits):
    return weight_bits / math.ceil(math.log2(k))


@mistake("check_sharing_ratio", "whole number of bits")
def sr_fractional_bits(n_weights, k, weight_bits, codebook_bits):
    return n_weights * weight_bits / (n_weights * math.log2(k) + k * codebook_bits)


@mistake("check_sharing_ratio", "not once per weight")
def sr_codebook_per_weight(n_weights, k, weight_bits, codebook_bits):
    return weight_bits / (math.ceil(math.log2(k)) + k * codebook_bits)


# sparse_ratio
@mistake("check_sparse_ratio", "inverted")
def sp_inverted(n_weights, density, value_bits, index_bits):
    return 1 / sparse_ratio(n_weights, density, value_bits, index_bits)


@mistake("check_sparse_ratio", "its position too")
def sp_no_index(n_weights, density, value_bits, index_bits):
    return 1 / density


@mistake("check_sparse_ratio", "not the share pruned")
def sp_sparsity(n_weights, density, value_bits, index_bits):
    return n_weights * value_bits / (round((1 - density) * n_weights) * (value_bits + index_bits))


@mistake("check_sparse_ratio", "int() truncates")
def sp_int(n_weights, density, value_bits, index_bits):
    return n_weights * value_bits / (int(density * n_weights) * (value_bits + index_bits))


# ---------------------------------------------------------------- right on the examples, wrong in general

@mistake("check_soft_targets", "exp(6000) overflows", kind="overfit")
def st_no_max(logits, T):
    e = (logits / T).exp()
    return e / e.sum(-1, keepdim=True)


@mistake("check_soft_targets", "whatever the number of dims", kind="overfit")
def st_dim_2(logits, T):
    return torch.softmax(logits / T, dim=2)  # the example's logits are 3-D


@mistake("check_soft_targets", "leave the inputs as they are", kind="inplace")
def st_divides_in_place(logits, T):
    logits /= T
    return logits.softmax(-1)


@mistake("check_soft_targets", "return the dtype the input has", kind="dtype")
def st_float32(logits, T):
    return torch.softmax(logits / T, -1, dtype=torch.float32)


@mistake("check_kd_loss", "log(softmax(...)) underflows", kind="overfit")
def kd_softmax_log(s, t, T):
    p, q = (t / T).softmax(-1), (s / T).softmax(-1)
    return (p * (p.log() - q.log())).sum(-1).mean() * T**2


@mistake("check_kd_loss", "average over every position", kind="overfit")
def kd_batch_times_time(s, t, T):
    log_p, log_q = (t / T).log_softmax(-1), (s / T).log_softmax(-1)
    return (log_p.exp() * (log_p - log_q)).sum() / (s.shape[0] * s.shape[1]) * T**2  # (B, T, V) only


@mistake("check_kd_loss", "leave the inputs as they are", kind="inplace")
def kd_stabilised_in_place(s, t, T):
    t -= t.amax(-1, keepdim=True)  # "for stability": the softmax does not change, the caller's logits do
    return distill.kd_loss(s, t, T)


@mistake("check_kd_loss", "return the dtype the input has", kind="dtype")
def kd_float32(s, t, T):
    log_p, log_q = (t.float() / T).log_softmax(-1), (s.float() / T).log_softmax(-1)
    return (log_p.exp() * (log_p - log_q)).sum(-1).mean() * T**2


@mistake("check_distillation_loss", "flatten the positions", kind="overfit")
def dl_transposed_ce(s, t, y, T, alpha):
    return alpha * distill.kd_loss(s, t, T) + (1 - alpha) * F.cross_entropy(s.transpose(1, 2), y)  # (B, T, V) only


@mistake("check_distillation_loss", "leave the inputs as they are", kind="inplace")
def dl_stabilised_in_place(s, t, y, T, alpha):
    s.sub_(s.amax(-1, keepdim=True))
    return alpha * distill.kd_loss(s, t, T) + (1 - alpha) * _ce(s, y)


@mistake("check_distillation_loss", "return the dtype the input has", kind="dtype")
def dl_float32(s, t, y, T, alpha):
    s, t = s.float(), t.float()
    return alpha * distill.kd_loss(s, t, T) + (1 - alpha) * _ce(s, y)


@mistake("check_assign", "goes to the smaller one", kind="overfit")
def as_first_index_on_ties(w, codebook):
    return (w[..., None] - codebook).abs().argmin(-1)


@mistake("check_assign", "leave the inputs as they are", kind="inplace")
def as_unsqueeze_in_place(w, codebook):
    w.unsqueeze_(-1)
    return (w - codebook).abs().argmin(-1)


@mistake("check_assign", "return int64 indices", kind="dtype")
def as_uint8(w, codebook):
    return (w[..., None] - codebook).abs().argmin(-1).to(torch.uint8)  # 8-bit indices: k <= 256


@mistake("check_update", "wherever it sits in the codebook", kind="overfit")
def up_bincount_no_minlength(w, idx, codebook):
    idx, w = idx.flatten(), w.flatten()
    counts = torch.bincount(idx)  # as long as the largest index in use: empty clusters at the end stay out
    sums = torch.zeros(len(counts), dtype=w.dtype).index_add_(0, idx, w)
    new = codebook.clone()
    new[:len(counts)] = sums / counts
    return new


@mistake("check_update", "leave the inputs as they are", kind="inplace")
def up_in_place(w, idx, codebook):
    for j in range(len(codebook)):
        if (idx == j).any():
            codebook[j] = w[idx == j].mean()
    return codebook


@mistake("check_update", "return the codebook's dtype", kind="dtype")
def up_float64(w, idx, codebook):
    idx, w = idx.flatten(), w.flatten()
    sums = torch.zeros(len(codebook), dtype=torch.float64).index_add_(0, idx, w.double())
    counts = torch.bincount(idx, minlength=len(codebook))
    return torch.where(counts > 0, sums / counts.clamp(min=1), codebook.double())


@mistake("check_truncated_svd", "the eigenvalues of w wᵀ square", kind="overfit")
def svd_eigh(w, rank):
    evals, V = torch.linalg.eigh(w.T @ w)  # ascending
    S = evals.flip(0)[:rank].clamp(min=0).sqrt()
    V = V.flip(1)[:, :rank]
    root = S.sqrt()
    return (w @ V / S) * root, root[:, None] * V.T


@mistake("check_truncated_svd", "leave the inputs as they are", kind="inplace")
def svd_normalised_in_place(w, rank):
    scale = w.abs().max()
    w /= scale
    U, S, Vh = _svd(w)
    root = (S[:rank] * scale).sqrt()
    return U[:, :rank] * root, root[:, None] * Vh[:rank]


@mistake("check_truncated_svd", "return the dtype the input has", kind="dtype")
def svd_float32(w, rank):
    U, S, Vh = _svd(w.float())
    root = S[:rank].sqrt()
    return U[:, :rank] * root, root[:, None] * Vh[:rank]


@mistake("check_sharing_ratio", "round(x + 0.5) sends 5.5 to 6", kind="overfit")
def sr_round_half_up(n_weights, k, weight_bits, codebook_bits):
    index_bits = round(math.log2(k) + 0.5)  # "ceil"
    return n_weights * weight_bits / (n_weights * index_bits + k * codebook_bits)


@mistake("check_sparse_ratio", "sends a half to the even integer", kind="overfit")
def sp_round_half_up(n_weights, density, value_bits, index_bits):
    nnz = int(density * n_weights + 0.5)
    return n_weights * value_bits / (nnz * (value_bits + index_bits))


@mistake("check_assign", "in the weights' dtype")
def assign_in_float32(w, codebook):
    sorted_c, order = codebook.float().sort()
    rank = torch.searchsorted((sorted_c[1:] + sorted_c[:-1]) / 2, w.float().flatten())
    return order[rank].reshape(w.shape)
