"""Common mistakes in 10_pruning."""
import torch

from llmlab.prune import magnitude, nm, structured, wanda


def wanda_from_inputs(w, x):
    return wanda.wanda_scores(w, x.norm(dim=0))


def slice_heads(wq, wo, keep, head_dim):
    rows = (keep[:, None] * head_dim + torch.arange(head_dim)).flatten()
    return wq[rows], wo[:, rows]


def slice_neurons(w1, w3, w2, keep):
    return w1[keep], w3[keep], w2[:, keep]


REFERENCE = {
    "check_prune_mask": magnitude.prune_mask,
    "check_global_masks": magnitude.global_masks,
    "check_weight_change_ratio": magnitude.weight_change_ratio,
    "check_wanda_scores": wanda_from_inputs,
    "check_nm_mask": nm.nm_mask,
    "check_unit_importance": structured.unit_importance,
    "check_select_heads": structured.select_heads,
    "check_slice_heads": slice_heads,
    "check_slice_neurons": slice_neurons,
}


# prune_mask
def pm_largest(scores, sparsity):
    return magnitude.prune_mask(-scores, sparsity)


def pm_per_tensor(scores, sparsity):
    return magnitude.prune_mask(scores, sparsity, "tensor")


def pm_int_count(scores, sparsity):
    k = int(sparsity * scores.shape[1])
    mask = torch.ones_like(scores, dtype=torch.bool)
    if k:
        mask.scatter_(1, scores.topk(k, dim=1, largest=False).indices, False)
    return mask


def pm_inverted(scores, sparsity):
    return ~magnitude.prune_mask(scores, sparsity)


def pm_float(scores, sparsity):
    return magnitude.prune_mask(scores, sparsity).float()


# global_masks
def gm_per_matrix(scores, sparsity):
    return {n: magnitude.prune_mask(s, sparsity, "tensor") for n, s in scores.items()}


def gm_per_row(scores, sparsity):
    return {n: magnitude.prune_mask(s, sparsity) for n, s in scores.items()}


def gm_inverted(scores, sparsity):
    return {n: ~m for n, m in magnitude.global_masks(scores, sparsity).items()}


# weight_change_ratio
def wcr_count(w, mask):
    return float((~mask).float().mean())


def wcr_kept(w, mask):
    return float((w * mask).norm() / w.norm())


def wcr_squared(w, mask):
    return float(((w * ~mask).norm() / w.norm()) ** 2)


def wcr_unnormalised(w, mask):
    return float((w * ~mask).norm())


# wanda_scores
def ws_wrong_axis(w, x):
    return w.abs() * x.norm(dim=1)


def ws_no_abs(w, x):
    return w * x.norm(dim=0)


def ws_squared(w, x):
    return w.abs() * x.pow(2).sum(0)


def ws_mean_abs(w, x):
    return w.abs() * x.abs().mean(0)


# nm_mask
def nm_columns(scores, n, m):
    return nm.nm_mask(scores.T.contiguous(), n, m).T


def nm_smallest(scores, n, m):
    return ~nm.nm_mask(scores, m - n, m)


def nm_keeps_m_minus_n(scores, n, m):
    return nm.nm_mask(scores, m - n, m)


def nm_inverted(scores, n, m):
    return ~nm.nm_mask(scores, n, m)


# unit_importance
def ui_weights_only(w_out, gram):
    U, D, _ = gram.shape
    return w_out.reshape(w_out.shape[0], U, D).pow(2).sum((0, 2)).sqrt()


def ui_no_sqrt(w_out, gram):
    return structured.unit_importance(w_out, gram) ** 2


def ui_rows(w_out, gram):
    U, D, _ = gram.shape
    w = w_out.reshape(U, D, -1)
    return torch.einsum("udc,ude,uec->u", w, gram, w).clamp(min=0).sqrt()


# select_heads
def sh_global(importance, n_kv_heads, keep_per_group):
    return importance.topk(n_kv_heads * keep_per_group).indices.sort().values


def sh_unsorted(importance, n_kv_heads, keep_per_group):
    rep = importance.shape[0] // n_kv_heads
    top = importance.reshape(n_kv_heads, rep).topk(keep_per_group, dim=1).indices
    return (top + torch.arange(n_kv_heads)[:, None] * rep).flatten()


def sh_least(importance, n_kv_heads, keep_per_group):
    return structured.select_heads(-importance, n_kv_heads, keep_per_group)


def sh_no_offset(importance, n_kv_heads, keep_per_group):
    rep = importance.shape[0] // n_kv_heads
    return importance.reshape(n_kv_heads, rep).topk(keep_per_group, dim=1).indices.flatten().sort().values


# slice_heads
def sl_one_row_per_head(wq, wo, keep, head_dim):
    return wq[keep], wo[:, keep]


def sl_wo_rows(wq, wo, keep, head_dim):
    rows = (keep[:, None] * head_dim + torch.arange(head_dim)).flatten()
    return wq[rows], wo[rows]


# slice_neurons
def sn_forget_w3(w1, w3, w2, keep):
    return w1[keep], w3, w2[:, keep]


def sn_w2_rows(w1, w3, w2, keep):
    return w1[keep], w3[keep], w2[keep]


MUTANTS = [
    ("check_prune_mask", pm_largest, "lowest"),
    ("check_prune_mask", pm_per_tensor, "one threshold per tensor is not per row"),
    ("check_prune_mask", pm_int_count, "round(sparsity * K)"),
    ("check_prune_mask", pm_inverted, "True means *kept*"),
    ("check_prune_mask", pm_float, "return a bool mask"),
    ("check_global_masks", gm_per_matrix, "one* threshold over all matrices"),
    ("check_global_masks", gm_per_row, "one* threshold over all matrices"),
    ("check_global_masks", gm_inverted, "True means *kept*"),
    ("check_weight_change_ratio", wcr_count, "by norm, not by count"),
    ("check_weight_change_ratio", wcr_kept, "*removed* part"),
    ("check_weight_change_ratio", wcr_squared, "not its square"),
    ("check_weight_change_ratio", wcr_unnormalised, "divide by ‖W‖_F"),
    ("check_wanda_scores", ws_wrong_axis, "x.norm(dim=0)"),
    ("check_wanda_scores", ws_no_abs, "score |W|"),
    ("check_wanda_scores", ws_squared, "not its square"),
    ("check_wanda_scores", ws_mean_abs, "not their mean absolute value"),
    ("check_nm_mask", nm_columns, "within a row"),
    ("check_nm_mask", nm_smallest, "*largest*"),
    ("check_nm_mask", nm_keeps_m_minus_n, "keeps N = 1 weights"),
    ("check_nm_mask", nm_inverted, "True means *kept*"),
    ("check_unit_importance", ui_weights_only, "use the Gram matrix"),
    ("check_unit_importance", ui_no_sqrt, "take the square root"),
    ("check_unit_importance", ui_rows, "*columns* of w_out"),
    ("check_select_heads", sh_global, "pick the best within each group"),
    ("check_select_heads", sh_unsorted, "sorted"),
    ("check_select_heads", sh_least, "*highest*"),
    ("check_select_heads", sh_no_offset, "offset"),
    ("check_slice_heads", sl_one_row_per_head, "head_dim = 4 consecutive rows"),
    ("check_slice_heads", sl_wo_rows, "*columns*"),
    ("check_slice_neurons", sn_forget_w3, "up projection w3"),
    ("check_slice_neurons", sn_w2_rows, "*columns*"),
]
