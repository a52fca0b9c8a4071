"""Common mistakes in 04_attention."""
import math

import torch

from llmlab.nn import attention as A
from tests.mutants import mistake

REFERENCE = {
    "check_softmax": A.softmax,
    "check_attention_scores": A.attention_scores,
    "check_causal_mask": lambda T, S: A.causal_mask(T, S),
    "check_padding_mask": A.padding_mask,
    "check_attention_weights": lambda scores, mask: A.softmax(scores.masked_fill(~mask, float("-inf"))),
    "check_split_heads": A.split_heads,
    "check_merge_heads": A.merge_heads,
    "check_repeat_kv": A.repeat_kv,
    "check_attention": lambda q, k, v, mask=None: A.scaled_dot_product_attention(q, k, v, mask)[0],
}


@mistake("check_softmax", "subtract the row maximum")
def softmax_no_max(x, dim=-1):
    e = x.exp()
    return e / e.sum(dim, keepdim=True)


@mistake("check_softmax", "attend to nothing")
def softmax_nan_rows(x, dim=-1):
    return torch.softmax(x, dim)


@mistake("check_softmax", "wrong dimension")
def softmax_fixed_dim(x, dim=-1):
    return A.softmax(x, 0)


@mistake("check_attention_scores", "not by 1/d")
def scores_by_d(q, k):
    return q @ k.transpose(-2, -1) / q.shape[-1]


@mistake("check_attention_scores", "divide by sqrt(d)")
def scores_unscaled(q, k):
    return q @ k.transpose(-2, -1)


@mistake("check_causal_mask", "see the future")
def causal_upper(T, S):
    return A.causal_mask(T, S).T if T == S else ~A.causal_mask(T, S)


@mistake("check_causal_mask", "the diagonal belongs in")
def causal_strict(T, S):
    return A.causal_mask(T, S) & ~torch.eye(T, S, dtype=torch.bool)


@mistake("check_causal_mask", "i + (S - T)")
def causal_ignores_cache(T, S):
    return torch.ones(T, S, dtype=torch.bool).tril()


@mistake("check_padding_mask", "padding hides keys")
def padding_on_queries(attention_mask):
    return attention_mask.bool()[:, None, :, None]


@mistake("check_padding_mask", "inverted")
def padding_inverted(attention_mask):
    return ~attention_mask.bool()[:, None, None, :]


@mistake("check_attention_weights", "before the softmax")
def weights_mask_after(scores, mask):
    return torch.softmax(scores, -1) * mask


@mistake("check_attention_weights", "-inf, not 0")
def weights_fill_zero(scores, mask):
    return torch.softmax(scores.masked_fill(~mask, 0.0), -1)


@mistake("check_attention_weights", "sees no key")
def weights_torch_softmax(scores, mask):
    return torch.softmax(scores.masked_fill(~mask, float("-inf")), -1)


@mistake("check_split_heads", "then swap T and H")
def split_no_transpose(x, n_heads):
    B, T, C = x.shape
    return x.view(B, n_heads, T, C // n_heads)


@mistake("check_split_heads", "head h takes channels")
def split_wrong_channels(x, n_heads):
    B, T, C = x.shape
    return x.view(B, T, C // n_heads, n_heads).permute(0, 3, 1, 2)


@mistake("check_merge_heads", "transpose(1, 2)")
def merge_no_transpose(x):
    B, H, T, D = x.shape
    return x.reshape(B, T, H * D)


@mistake("check_merge_heads", "not the inverse")
def merge_wrong_order(x):
    B, H, T, D = x.shape
    return x.permute(0, 2, 3, 1).reshape(B, T, H * D)


@mistake("check_repeat_kv", "repeat_interleave, not repeat")
def repeat_tiled(x, n_rep):
    return x.repeat(1, n_rep, 1, 1)


@mistake("check_repeat_kv", "query head h uses KV head h // n_rep")
def repeat_wrong_dim(x, n_rep):
    return x.repeat_interleave(n_rep, dim=2)[:, :, : x.shape[2]].repeat(1, n_rep, 1, 1) if n_rep > 1 else x


@mistake("check_attention", "1/sqrt(d)")
def attention_unscaled(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return A.softmax(scores) @ v


@mistake("check_attention", "before the softmax")
def attention_mask_after(q, k, v, mask=None):
    w = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), -1)
    return (w * mask if mask is not None else w) @ v


@mistake("check_attention", "weights @ v")
def attention_times_k(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return A.softmax(scores) @ k


# ---------------------------------------------------------------- right on the example, wrong in general

@mistake("check_softmax", "each row's own maximum", kind="overfit")
def softmax_global_max(x, dim=-1):
    e = (x - x.max()).exp()
    s = e.sum(dim, keepdim=True)
    return e / s.masked_fill(s == 0, 1)


@mistake("check_attention_scores", "not a fixed number", kind="overfit")
def scores_fixed_sqrt(q, k):
    return q @ k.transpose(-2, -1) / 4.0  # sqrt(16): the example's head dimension


_SHOWN = {(4, 4), (2, 5), (1, 6), (3, 3)}


@mistake("check_causal_mask", "wrong in general", kind="overfit")
def causal_memorised(T, S):
    return A.causal_mask(T, S) if (T, S) in _SHOWN else torch.ones(T, S, dtype=torch.bool).tril()


@mistake("check_padding_mask", "wrong in general", kind="overfit")
def padding_fixed_length(attention_mask):
    return attention_mask.bool().view(-1, 1, 1, 4)


@mistake("check_attention_weights", "do not build your own causal mask", kind="overfit")
def weights_own_causal(scores, mask):
    T, S = scores.shape[-2:]
    return A.softmax(scores.masked_fill(~A.causal_mask(T, S), float("-inf")))


@mistake("check_split_heads", "on a hidden case (another batch", kind="overfit")
def split_fixed_head_dim(x, n_heads):
    B, T, C = x.shape
    return x.reshape(B, T, -1, 3).transpose(1, 2)


@mistake("check_merge_heads", "on a hidden case (another batch", kind="overfit")
def merge_fixed_width(x):
    return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], 12)


@mistake("check_repeat_kv", "not a fixed number of times", kind="overfit")
def repeat_three(x, n_rep):
    return x if n_rep == 1 else x.repeat_interleave(3, dim=1)


@mistake("check_attention", "do not build your own causal mask", kind="overfit")
def attention_own_causal(q, k, v, mask=None):
    if mask is not None:
        mask = A.causal_mask(q.shape[-2], k.shape[-2])
    return A.scaled_dot_product_attention(q, k, v, mask)[0]


# ---------------------------------------------------------------- changing the caller's tensors

@mistake("check_softmax", "leave the inputs as they are", kind="inplace")
def softmax_in_place(x, dim=-1):
    x.sub_(x.amax(dim, keepdim=True).nan_to_num(0.0, 0.0, 0.0)).exp_()
    return x / x.sum(dim, keepdim=True).masked_fill(x.sum(dim, keepdim=True) == 0, 1)


@mistake("check_attention_scores", "leave the inputs as they are", kind="inplace")
def scores_scale_q_in_place(q, k):
    q /= math.sqrt(q.shape[-1])
    return q @ k.transpose(-2, -1)


@mistake("check_padding_mask", "leave the inputs as they are", kind="inplace")
def padding_unsqueeze_in_place(attention_mask):
    return attention_mask.unsqueeze_(1).unsqueeze_(1).bool()


@mistake("check_attention_weights", "leave the inputs as they are", kind="inplace")
def weights_fill_in_place(scores, mask):
    return A.softmax(scores.masked_fill_(~mask, float("-inf")))


@mistake("check_split_heads", "leave the inputs as they are", kind="inplace")
def split_unsqueeze_in_place(x, n_heads):
    B, T, C = x.shape
    x.unsqueeze_(2)
    return x.view(B, T, n_heads, C // n_heads).transpose(1, 2)


@mistake("check_merge_heads", "leave the inputs as they are", kind="inplace")
def merge_transpose_in_place(x):
    B, H, T, D = x.shape
    return x.transpose_(1, 2).reshape(B, T, H * D)


@mistake("check_repeat_kv", "leave the inputs as they are", kind="inplace")
def repeat_into_input(x, n_rep):
    x.data = x.repeat_interleave(n_rep, dim=1)
    return x


@mistake("check_attention", "leave the inputs as they are", kind="inplace")
def attention_scale_q_in_place(q, k, v, mask=None):
    q *= 1 / math.sqrt(q.shape[-1])
    scores = q @ k.transpose(-2, -1)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return A.softmax(scores) @ v


# ---------------------------------------------------------------- the input's dtype lost

@mistake("check_softmax", "dtype", kind="dtype")
def softmax_float32(x, dim=-1):
    return A.softmax(x.float(), dim)


@mistake("check_attention_scores", "dtype", kind="dtype")
def scores_float32(q, k):
    return A.attention_scores(q.float(), k.float())


@mistake("check_causal_mask", "a mask is a bool tensor", kind="dtype")
def causal_float(T, S):
    return torch.ones(T, S).tril(S - T)


@mistake("check_padding_mask", "attention_mask.bool()", kind="dtype")
def padding_keeps_ints(attention_mask):
    return attention_mask[:, None, None, :]


@mistake("check_attention_weights", "dtype", kind="dtype")
def weights_float32(scores, mask):
    return A.softmax(scores.float().masked_fill(~mask, float("-inf")))


@mistake("check_split_heads", "dtype", kind="dtype")
def split_float32(x, n_heads):
    return A.split_heads(x, n_heads).float()


@mistake("check_merge_heads", "dtype", kind="dtype")
def merge_float32(x):
    return A.merge_heads(x).float()


@mistake("check_repeat_kv", "dtype", kind="dtype")
def repeat_into_zeros(x, n_rep):
    B, Hkv, S, D = x.shape
    out = torch.zeros(B, Hkv * n_rep, S, D)
    for h in range(Hkv * n_rep):
        out[:, h] = x[:, h // n_rep]
    return out


@mistake("check_attention", "dtype", kind="dtype")
def attention_float32(q, k, v, mask=None):
    return A.scaled_dot_product_attention(q.float(), k.float(), v.float(), mask)[0]


@mistake("check_softmax", "add no epsilon to the sum")
def softmax_eps_denominator(x, dim=-1):
    e = (x - x.amax(dim, keepdim=True).clamp_min(torch.finfo(x.dtype).min)).exp()
    return e / (e.sum(dim, keepdim=True) + 1e-9)


@mistake("check_attention_scores", "not the number of keys")
def scores_by_sqrt_keys(q, k):
    return q @ k.transpose(-2, -1) / math.sqrt(k.shape[-2])


@mistake("check_attention_scores", "not a fixed number")
def scores_by_sqrt_64(q, k):
    return q @ k.transpose(-2, -1) / 8.0


@mistake("check_attention_weights", "not -1e9")
def weights_fill_large_negative(scores, mask):
    return torch.softmax(scores.masked_fill(~mask, -1e9), -1)


@mistake("check_attention_weights", "not -1e9 or finfo.min")
def weights_fill_finfo_min(scores, mask):
    return torch.softmax(scores.masked_fill(~mask, torch.finfo(scores.dtype).min), -1)


@mistake("check_attention", "gets a zero output")
def attention_torch_softmax(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, -1) @ v
