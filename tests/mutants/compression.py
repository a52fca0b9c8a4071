"""Common mistakes in 11_compression."""
import math
import warnings

import torch
import torch.nn.functional as F

from llmlab.compress import distill, lowrank, ratio, sharing


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
def st_no_temperature(logits, T):
    return logits.softmax(-1)


def st_times_T(logits, T):
    return (logits * T).softmax(-1)


def st_log(logits, T):
    return (logits / T).log_softmax(-1)


def st_wrong_dim(logits, T):
    return (logits / T).softmax(0)


def st_unnormalised(logits, T):
    return (logits / T).exp()


# kd_loss
def _kl(log_p, log_q):
    return (log_p.exp() * (log_p - log_q)).sum(-1).mean()


def kd_no_T2(s, t, T):
    return _kl((t / T).log_softmax(-1), (s / T).log_softmax(-1))


def kd_times_T(s, t, T):
    return kd_no_T2(s, t, T) * T


def kd_reversed(s, t, T):
    return _kl((s / T).log_softmax(-1), (t / T).log_softmax(-1)) * T**2


def kd_student_not_softened(s, t, T):
    return _kl((t / T).log_softmax(-1), s.log_softmax(-1)) * T**2


def kd_teacher_not_softened(s, t, T):
    return _kl(t.log_softmax(-1), (s / T).log_softmax(-1)) * T**2


def kd_sum_positions(s, t, T):
    log_p, log_q = (t / T).log_softmax(-1), (s / T).log_softmax(-1)
    return (log_p.exp() * (log_p - log_q)).sum() * T**2


def kd_kl_div_mean(s, t, T):
    with warnings.catch_warnings():  # torch warns that 'mean' is not the KL's definition: the very mistake
        warnings.simplefilter("ignore")
        return F.kl_div((s / T).log_softmax(-1), (t / T).softmax(-1), reduction="mean") * T**2


def kd_kl_div_batchmean_3d(s, t, T):
    return F.kl_div((s / T).log_softmax(-1), (t / T).log_softmax(-1), reduction="batchmean", log_target=True) * T**2


def kd_cross_entropy(s, t, T):
    return -((t / T).softmax(-1) * (s / T).log_softmax(-1)).sum(-1).mean() * T**2


def kd_float(s, t, T):
    return distill.kd_loss(s, t, T).item()


def kd_detached(s, t, T):
    return distill.kd_loss(s.detach(), t, T)


def kd_per_position(s, t, T):
    log_p, log_q = (t / T).log_softmax(-1), (s / T).log_softmax(-1)
    return (log_p.exp() * (log_p - log_q)).sum(-1) * T**2


# distillation_loss
def _ce(s, y):
    return F.cross_entropy(s.reshape(-1, s.shape[-1]), y.reshape(-1))


def dl_alpha_swapped(s, t, y, T, alpha):
    return (1 - alpha) * distill.kd_loss(s, t, T) + alpha * _ce(s, y)


def dl_ce_at_T(s, t, y, T, alpha):
    return alpha * distill.kd_loss(s, t, T) + (1 - alpha) * _ce(s / T, y)


def dl_plain_sum(s, t, y, T, alpha):
    return distill.kd_loss(s, t, T) + _ce(s, y)


def dl_ce_unflattened(s, t, y, T, alpha):
    return alpha * distill.kd_loss(s, t, T) + (1 - alpha) * F.cross_entropy(s, y)


def dl_ce_times_T2(s, t, y, T, alpha):
    return alpha * distill.kd_loss(s, t, T) + (1 - alpha) * _ce(s, y) * T**2


# assign
def as_argmax(w, codebook):
    return (w[..., None] - codebook).abs().argmax(-1)


def as_signed(w, codebook):
    return (w[..., None] - codebook).argmin(-1)


def as_sorted_rank(w, codebook):
    c = codebook.sort().values
    return torch.searchsorted((c[1:] + c[:-1]) / 2, w.flatten()).reshape(w.shape)


def as_uniform_grid(w, codebook):
    k = len(codebook)
    pos = (w - codebook.min()) / (codebook.max() - codebook.min()) * (k - 1)
    return pos.round().clamp(0, k - 1).long()


def as_float(w, codebook):
    return sharing.assign(w, codebook).float()


# update
def up_empty_zero(w, idx, codebook):
    new = sharing.update(w, idx, codebook)
    return torch.where(torch.bincount(idx.flatten(), minlength=len(codebook)) > 0, new, torch.zeros_like(new))


def up_empty_nan(w, idx, codebook):
    idx, w = idx.flatten(), w.flatten()
    return torch.stack([w[idx == j].mean() for j in range(len(codebook))])


def up_sum(w, idx, codebook):
    sums = torch.zeros_like(codebook).index_add_(0, idx.flatten(), w.flatten())
    return torch.where(torch.bincount(idx.flatten(), minlength=len(codebook)) > 0, sums, codebook)


def up_median(w, idx, codebook):
    idx, w = idx.flatten(), w.flatten()
    return torch.stack([w[idx == j].median() if (idx == j).any() else codebook[j] for j in range(len(codebook))])


def up_rows(w, idx, codebook):
    """Means of the first row only: forgets that a 2-D weight holds more than one row."""
    return sharing.update(w.reshape(-1, w.shape[-1])[0], idx.reshape(-1, w.shape[-1])[0], codebook)


# truncated_svd
def _svd(w):
    return torch.linalg.svd(w, full_matrices=False)


def svd_smallest(w, rank):
    U, S, Vh = _svd(w)
    root = S[-rank:].sqrt()
    return U[:, -rank:] * root, root[:, None] * Vh[-rank:]


def svd_no_sigma(w, rank):
    U, S, Vh = _svd(w)
    return U[:, :rank], Vh[:rank]


def svd_sigma_twice(w, rank):
    U, S, Vh = _svd(w)
    return U[:, :rank] * S[:rank], S[:rank, None] * Vh[:rank]


def svd_vh_columns(w, rank):
    U, S, Vh = _svd(w)
    root = S[:rank].sqrt()
    return U[:, :rank] * root, root[:, None] * Vh[:, :rank].T


def svd_swapped(w, rank):
    U, S, Vh = _svd(w)
    root = S[:rank].sqrt()
    return Vh[:rank].T * root, root[:, None] * U[:, :rank].T


def svd_all_sigma_left(w, rank):
    U, S, Vh = _svd(w)
    return U[:, :rank] * S[:rank], Vh[:rank]


# sharing_ratio
def sr_inverted(n_weights, k, weight_bits, codebook_bits):
    return 1 / sharing_ratio(n_weights, k, weight_bits, codebook_bits)


def sr_no_codebook(n_weights, k, weight_bits, codebook_bits):
    return weight_bits / math.ceil(math.log2(k))


def sr_fractional_bits(n_weights, k, weight_bits, codebook_bits):
    return n_weights * weight_bits / (n_weights * math.log2(k) + k * codebook_bits)


def sr_codebook_per_weight(n_weights, k, weight_bits, codebook_bits):
    return weight_bits / (math.ceil(math.log2(k)) + k * codebook_bits)


# sparse_ratio
def sp_inverted(n_weights, density, value_bits, index_bits):
    return 1 / sparse_ratio(n_weights, density, value_bits, index_bits)


def sp_no_index(n_weights, density, value_bits, index_bits):
    return 1 / density


def sp_sparsity(n_weights, density, value_bits, index_bits):
    return n_weights * value_bits / (round((1 - density) * n_weights) * (value_bits + index_bits))


def sp_int(n_weights, density, value_bits, index_bits):
    return n_weights * value_bits / (int(density * n_weights) * (value_bits + index_bits))


MUTANTS = [
    ("check_soft_targets", st_no_temperature, "temperature is not used"),
    ("check_soft_targets", st_times_T, "do not multiply"),
    ("check_soft_targets", st_log, "not log-probabilities"),
    ("check_soft_targets", st_wrong_dim, "the last dim"),
    ("check_soft_targets", st_unnormalised, "normalise"),
    ("check_kd_loss", kd_no_T2, "multiply the KL by T²"),
    ("check_kd_loss", kd_times_T, "T², not T"),
    ("check_kd_loss", kd_reversed, "swapped teacher and student"),
    ("check_kd_loss", kd_student_not_softened, "divide the student's logits by T too"),
    ("check_kd_loss", kd_teacher_not_softened, "divide the teacher's logits by T too"),
    ("check_kd_loss", kd_sum_positions, "do not sum over positions"),
    ("check_kd_loss", kd_kl_div_mean, "also divides by V"),
    ("check_kd_loss", kd_kl_div_batchmean_3d, "divides by the first dim only"),
    ("check_kd_loss", kd_cross_entropy, "teacher's entropy"),
    ("check_kd_loss", kd_float, "no .item()"),
    ("check_kd_loss", kd_detached, "no gradient"),
    ("check_kd_loss", kd_per_position, "average over the positions"),
    ("check_distillation_loss", dl_alpha_swapped, "swapped them"),
    ("check_distillation_loss", dl_ce_at_T, "plain logits (T = 1)"),
    ("check_distillation_loss", dl_plain_sum, "not their plain sum"),
    ("check_distillation_loss", dl_ce_times_T2, "the cross-entropy is not"),
    ("check_distillation_loss", dl_ce_unflattened, "flatten the positions first"),
    ("check_assign", as_argmax, "argmin, not argmax"),
    ("check_assign", as_signed, "signed difference"),
    ("check_assign", as_sorted_rank, "*sorted* codebook"),
    ("check_assign", as_uniform_grid, "not evenly spaced"),
    ("check_assign", as_float, "expected integers"),
    ("check_update", up_empty_zero, "keeps its old value"),
    ("check_update", up_empty_nan, "divides 0 by 0"),
    ("check_update", up_sum, "divide the sum by the count"),
    ("check_update", up_median, "not the median"),
    ("check_update", up_rows, "every weight counts once"),
    ("check_truncated_svd", svd_smallest, "*largest* singular values"),
    ("check_truncated_svd", svd_no_sigma, "singular values are missing"),
    ("check_truncated_svd", svd_sigma_twice, "not by σ"),
    ("check_truncated_svd", svd_vh_columns, "its *rows* are the right singular vectors"),
    ("check_truncated_svd", svd_swapped, "U and V are swapped"),
    ("check_truncated_svd", svd_all_sigma_left, "split the singular values evenly"),
    ("check_sharing_ratio", sr_inverted, "inverted"),
    ("check_sharing_ratio", sr_no_codebook, "the codebook is stored too"),
    ("check_sharing_ratio", sr_fractional_bits, "whole number of bits"),
    ("check_sharing_ratio", sr_codebook_per_weight, "not once per weight"),
    ("check_sparse_ratio", sp_inverted, "inverted"),
    ("check_sparse_ratio", sp_no_index, "its position too"),
    ("check_sparse_ratio", sp_sparsity, "not the share pruned"),
    ("check_sparse_ratio", sp_int, "int() truncates"),
]
