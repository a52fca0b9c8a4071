"""Common mistakes in 10_pruning."""
import torch

from llmlab.prune import magnitude, nm, structured, wanda
from tests.mutants import mistake


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
@mistake("check_prune_mask", "lowest")
def pm_largest(scores, sparsity):
    return magnitude.prune_mask(-scores, sparsity)


@mistake("check_prune_mask", "one threshold per tensor is not per row")
def pm_per_tensor(scores, sparsity):
    return magnitude.prune_mask(scores, sparsity, "tensor")


@mistake("check_prune_mask", "round(sparsity * K)")
def pm_int_count(scores, sparsity):
    k = int(sparsity * scores.shape[1])
    mask = torch.ones_like(scores, dtype=torch.bool)
    if k:
        mask.scatter_(1, scores.topk(k, dim=1, largest=False).indices, False)
    return mask


@mistake("check_prune_mask", "True means *kept*")
def pm_inverted(scores, sparsity):
    return ~magnitude.prune_mask(scores, sparsity)


@mistake("check_prune_mask", "return a bool mask")
def pm_float(scores, sparsity):
    return magnitude.prune_mask(scores, sparsity).float()


# global_masks
@mistake("check_global_masks", "one* threshold over all matrices")
def gm_per_matrix(scores, sparsity):
    return {n: magnitude.prune_mask(s, sparsity, "tensor") for n, s in scores.items()}


@mistake("check_global_masks", "one* threshold over all matrices")
def gm_per_row(scores, sparsity):
    return {n: magnitude.prune_mask(s, sparsity) for n, s in scores.items()}


@mistake("check_global_masks", "True means *kept*")
def gm_inverted(scores, sparsity):
    return {n: ~m for n, m in magnitude.global_masks(scores, sparsity).items()}


# weight_change_ratio
@mistake("check_weight_change_ratio", "by norm, not by count")
def wcr_count(w, mask):
    return float((~mask).float().mean())


@mistake("check_weight_change_ratio", "*removed* part")
def wcr_kept(w, mask):
    return float((w * mask).norm() / w.norm())


@mistake("check_weight_change_ratio", "not its square")
def wcr_squared(w, mask):
    return float(((w * ~mask).norm() / w.norm()) ** 2)


@mistake("check_weight_change_ratio", "divide by ‖W‖_F")
def wcr_unnormalised(w, mask):
    return float((w * ~mask).norm())


# wanda_scores
@mistake("check_wanda_scores", "x.norm(dim=0)")
def ws_wrong_axis(w, x):
    return w.abs() * x.norm(dim=1)


@mistake("check_wanda_scores", "score |W|")
def ws_no_abs(w, x):
    return w * x.norm(dim=0)


@mistake("check_wanda_scores", "not its square")
def ws_squared(w, x):
    return w.abs() * x.pow(2).sum(0)


@mistake("check_wanda_scores", "not their mean absolute value")
def ws_mean_abs(w, x):
    return w.abs() * x.abs().mean(0)


# nm_mask
@mistake("check_nm_mask", "within a row")
def nm_columns(scores, n, m):
    return nm.nm_mask(scores.T.contiguous(), n, m).T


@mistake("check_nm_mask", "*largest*")
def nm_smallest(scores, n, m):
    return ~nm.nm_mask(scores, m - n, m)


@mistake("check_nm_mask", "keeps N = 1 weights")
def nm_keeps_m_minus_n(scores, n, m):
    return nm.nm_mask(scores, m - n, m)


@mistake("check_nm_mask", "True means *kept*")
def nm_inverted(scores, n, m):
    return ~nm.nm_mask(scores, n, m)


# unit_importance
@mistake("check_unit_importance", "use the Gram matrix")
def ui_weights_only(w_out, gram):
    U, D, _ = gram.shape
    return w_out.reshape(w_out.shape[0], U, D).pow(2).sum((0, 2)).sqrt()


@mistake("check_unit_importance", "take the square root")
def ui_no_sqrt(w_out, gram):
    return structured.unit_importance(w_out, gram) ** 2


@mistake("check_unit_importance", "*columns* of w_out")
def ui_rows(w_out, gram):
    U, D, _ = gram.shape
    w = w_out.reshape(U, D, -1)
    return torch.einsum("udc,ude,uec->u", w, gram, w).clamp(min=0).sqrt()


# select_heads
@mistake("check_select_heads", "pick the best within each group")
def sh_global(importance, n_kv_heads, keep_per_group):
    return importance.topk(n_kv_heads * keep_per_group).indices.sort().values


@mistake("check_select_heads", "sorted")
def sh_unsorted(importance, n_kv_heads, keep_per_group):
    rep = importance.shape[0] // n_kv_heads
    top = importance.reshape(n_kv_heads, rep).topk(keep_per_group, dim=1).indices
    return (top + torch.arange(n_kv_heads)[:, None] * rep).flatten()


@mistake("check_select_heads", "*highest*")
def sh_least(importance, n_kv_heads, keep_per_group):
    return structured.select_heads(-importance, n_kv_heads, keep_per_group)


@mistake("check_select_heads", "offset")
def sh_no_offset(importance, n_kv_heads, keep_per_group):
    rep = importance.shape[0] // n_kv_heads
    return importance.reshape(n_kv_heads, rep).topk(keep_per_group, dim=1).indices.flatten().sort().values


# slice_heads
@mistake("check_slice_heads", "head_dim = 4 consecutive rows")
def sl_one_row_per_head(wq, wo, keep, head_dim):
    return wq[keep], wo[:, keep]


@mistake("check_slice_heads", "*columns*")
def sl_wo_rows(wq, wo, keep, head_dim):
    rows = (keep[:, None] * head_dim + torch.arange(head_dim)).flatten()
    return wq[rows], wo[rows]


# slice_neurons
@mistake("check_slice_neurons", "up projection w3")
def sn_forget_w3(w1, w3, w2, keep):
    return w1[keep], w3, w2[:, keep]


@mistake("check_slice_neurons", "*columns*")
def sn_w2_rows(w1, w3, w2, keep):
    return w1[keep], w3[keep], w2[keep]
