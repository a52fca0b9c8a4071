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


@mistake("check_prune_mask", "return a bool mask", kind="dtype")
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


@mistake("check_wanda_scores", "no .float()", kind="dtype")
def wanda_norm_in_float32(w, x):
    return w.abs() * x.float().norm(dim=0)


# unit_importance
@mistake("check_unit_importance", "not NaN", kind="overfit")
def importance_unclamped(w_out, gram):
    U, D, _ = gram.shape
    w = w_out.reshape(-1, U, D).transpose(0, 1)
    return torch.einsum("ucd,ude,uce->u", w, gram, w).sqrt()


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


@mistake("check_prune_mask", "the share *removed*")
def pm_keeps_k_largest(scores, sparsity):
    k = round(sparsity * scores.shape[1])
    mask = torch.zeros_like(scores, dtype=torch.bool)
    return mask.scatter_(1, scores.topk(k, dim=1).indices, True)


# ---------------------------------------------------------------- right on the example, wrong in general

@mistake("check_prune_mask", "not int(x + 0.5)", kind="overfit")
def pm_round_half_up(scores, sparsity):
    k = int(sparsity * scores.shape[1] + 0.5)
    mask = torch.ones_like(scores, dtype=torch.bool)
    if k:
        mask.scatter_(1, scores.topk(k, dim=1, largest=False).indices, False)
    return mask


@mistake("check_prune_mask", "do not compare the scores with a threshold", kind="overfit")
def pm_threshold(scores, sparsity):
    k = round(sparsity * scores.shape[1])
    if not k:
        return torch.ones_like(scores, dtype=torch.bool)
    return scores > scores.kthvalue(k, dim=1, keepdim=True).values


@mistake("check_prune_mask", "the mask is inverted", kind="overfit")
def pm_inverted_on_other_widths(scores, sparsity):
    mask = magnitude.prune_mask(scores, sparsity)
    return mask if scores.shape[1] == 40 else ~mask  # True = pruned, except where the example pinned it down


@mistake("check_global_masks", "do not compare the scores with a threshold", kind="overfit")
def gm_threshold(scores, sparsity):
    flat = torch.cat([s.reshape(-1) for s in scores.values()])
    k = round(sparsity * flat.numel())
    t = flat.kthvalue(k).values if k else -float("inf")
    return {n: s > t for n, s in scores.items()}


@mistake("check_global_masks", "not int(x + 0.5)", kind="overfit")
def gm_round_half_up(scores, sparsity):
    flat = torch.cat([s.reshape(-1) for s in scores.values()])
    k = int(sparsity * flat.numel() + 0.5)
    keep = torch.ones_like(flat, dtype=torch.bool)
    keep[flat.topk(k, largest=False).indices] = False
    out, start = {}, 0
    for n, s in scores.items():
        out[n] = keep[start:start + s.numel()].reshape(s.shape)
        start += s.numel()
    return out


@mistake("check_weight_change_ratio", "use the mask you are given", kind="overfit")
def wcr_own_mask(w, mask):
    mine = magnitude.prune_mask(w.abs(), 0.5)  # the mask the example happens to pass
    return float((w * ~mine).norm() / w.norm())


@mistake("check_wanda_scores", "on a hidden case (", kind="overfit")
def ws_fixed_width(w, x):
    return w.abs() * x.norm(dim=0).view(1, 16)


@mistake("check_nm_mask", "do not compare the scores with a threshold", kind="overfit")
def nm_threshold(scores, n, m):
    groups = scores.reshape(scores.shape[0], -1, m)
    if n == 0:
        return torch.zeros_like(scores, dtype=torch.bool)
    return (groups >= groups.topk(n, dim=2).values[..., -1:]).reshape(scores.shape)


@mistake("check_nm_mask", "on a hidden case (", kind="overfit")
def nm_eight_rows(scores, n, m):
    groups = scores.reshape(8, -1, m)  # the example's 8 rows
    mask = torch.zeros_like(groups, dtype=torch.bool).scatter_(2, groups.topk(n, dim=2).indices, True)
    return mask.reshape(scores.shape)


@mistake("check_unit_importance", "on a hidden case (", kind="overfit")
def ui_fixed_head_dim(w_out, gram):
    U = gram.shape[0]
    w = w_out.reshape(-1, U, 3).transpose(0, 1)  # the example's D = 3
    return torch.einsum("ucd,ude,uce->u", w, gram, w).clamp(min=0).sqrt()


@mistake("check_select_heads", "on a hidden case (", kind="overfit")
def sh_nine_heads(importance, n_kv_heads, keep_per_group):
    rep = 9 // n_kv_heads  # SmolLM2's 9 heads
    top = importance.reshape(n_kv_heads, rep).topk(keep_per_group, dim=1).indices
    return (top + torch.arange(n_kv_heads)[:, None] * rep).flatten().sort().values


@mistake("check_slice_heads", "not the example's 4", kind="overfit")
def sl_four_rows(wq, wo, keep, head_dim):
    rows = (keep[:, None] * 4 + torch.arange(4)).flatten()
    return wq[rows], wo[:, rows]


@mistake("check_slice_neurons", "on a hidden case (", kind="overfit")
def sn_fixed_width(w1, w3, w2, keep):
    kept = torch.zeros(12, dtype=torch.bool)  # the example's 12 neurons
    kept[keep[keep < 12]] = True
    idx = kept.nonzero().flatten()
    return w1[idx], w3[idx], w2[:, idx]


# ---------------------------------------------------------------- changing the caller's tensors

@mistake("check_prune_mask", "leave the inputs as they are", kind="inplace")
def pm_mark_scores_in_place(scores, sparsity):
    k = round(sparsity * scores.shape[1])
    if k:
        scores.scatter_(1, scores.topk(k, dim=1, largest=False).indices, float("nan"))
    return ~scores.isnan()


@mistake("check_global_masks", "leave the inputs as they are", kind="inplace")
def gm_flatten_in_dict(scores, sparsity):
    shapes = {n: s.shape for n, s in scores.items()}
    for n in scores:
        scores[n] = scores[n].reshape(-1)
    flat = torch.cat(list(scores.values()))
    keep = magnitude.prune_mask(flat[None], sparsity, "tensor")[0]
    out, start = {}, 0
    for n, shape in shapes.items():
        out[n] = keep[start:start + shape.numel()].reshape(shape)
        start += shape.numel()
    return out


@mistake("check_weight_change_ratio", "leave the inputs as they are", kind="inplace")
def wcr_zero_in_place(w, mask):
    total = w.norm()
    w[mask] = 0  # what is left is the removed part
    return float(w.norm() / total)


@mistake("check_wanda_scores", "leave the inputs as they are", kind="inplace")
def ws_abs_in_place(w, x):
    return w.abs_() * x.norm(dim=0)


@mistake("check_nm_mask", "leave the inputs as they are", kind="inplace")
def nm_mark_in_place(scores, n, m):
    groups = scores.view(scores.shape[0], -1, m)
    groups.scatter_(2, groups.topk(n, dim=2).indices, float("inf"))
    return (groups == float("inf")).reshape(scores.shape)


@mistake("check_unit_importance", "leave the inputs as they are", kind="inplace")
def ui_clamp_gram_in_place(w_out, gram):
    return structured.unit_importance(w_out, gram.clamp_(min=0))  # "a Gram matrix is non-negative"


@mistake("check_select_heads", "leave the inputs as they are", kind="inplace")
def sh_greedy_in_place(importance, n_kv_heads, keep_per_group):
    rep = importance.shape[0] // n_kv_heads
    groups = importance.view(n_kv_heads, rep)
    picked = []
    for _ in range(keep_per_group):
        best = groups.argmax(1)
        picked.append(best + torch.arange(n_kv_heads) * rep)
        groups[torch.arange(n_kv_heads), best] = float("-inf")
    return torch.cat(picked).sort().values


@mistake("check_slice_heads", "leave the inputs as they are", kind="inplace")
def sl_scale_keep_in_place(wq, wo, keep, head_dim):
    keep *= head_dim
    rows = (keep[:, None] + torch.arange(head_dim)).flatten()
    return wq[rows], wo[:, rows]


@mistake("check_slice_neurons", "leave the inputs as they are", kind="inplace")
def sn_transpose_in_place(w1, w3, w2, keep):
    w2.t_()  # rows are easier to slice
    return w1[keep], w3[keep], w2[keep].t()


# ---------------------------------------------------------------- the input's dtype lost

@mistake("check_global_masks", "return a bool mask", kind="dtype")
def gm_float_masks(scores, sparsity):
    return {n: m.float() for n, m in magnitude.global_masks(scores, sparsity).items()}


@mistake("check_weight_change_ratio", "not a tensor", kind="dtype")
def wcr_tensor(w, mask):
    return (w * ~mask).norm() / w.norm()


@mistake("check_wanda_scores", "dtype", kind="dtype")
def ws_float32(w, x):
    return w.float().abs() * x.float().norm(dim=0)


@mistake("check_nm_mask", "return a bool mask", kind="dtype")
def nm_float(scores, n, m):
    return nm.nm_mask(scores, n, m).float()


@mistake("check_unit_importance", "dtype", kind="dtype")
def ui_float32(w_out, gram):
    return structured.unit_importance(w_out.float(), gram.float())


@mistake("check_select_heads", "integer head indices", kind="dtype")
def sh_float_indices(importance, n_kv_heads, keep_per_group):
    out = torch.zeros(n_kv_heads * keep_per_group)
    out[:] = structured.select_heads(importance, n_kv_heads, keep_per_group)
    return out


@mistake("check_slice_heads", "dtype", kind="dtype")
def sl_float32(wq, wo, keep, head_dim):
    rows = (keep[:, None] * head_dim + torch.arange(head_dim)).flatten()
    return wq[rows].float(), wo[:, rows].float()


@mistake("check_slice_neurons", "dtype", kind="dtype")
def sn_float32(w1, w3, w2, keep):
    return w1[keep].float(), w3[keep].float(), w2[:, keep].float()


@mistake("check_prune_mask", "do not take .abs()")
def prune_mask_ranks_magnitude(scores, sparsity):
    return magnitude.prune_mask(scores.abs(), sparsity)


@mistake("check_nm_mask", "do not take .abs()")
def nm_mask_ranks_magnitude(scores, n, m):
    return nm.nm_mask(scores.abs(), n, m)


@mistake("check_select_heads", "not int32", kind="dtype")
def sh_int32_indices(importance, n_kv_heads, keep_per_group):
    return structured.select_heads(importance, n_kv_heads, keep_per_group).int()


@mistake("check_slice_neurons", "do not sort it", kind="overfit")
def slice_sorted_keep(w1, w3, w2, keep):
    keep = keep.sort().values
    return w1[keep], w3[keep], w2[:, keep]
