"""Common mistakes in 04_attention."""
import math

import torch

from llmlab.nn import attention as A

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


def softmax_no_max(x, dim=-1):
    e = x.exp()
    return e / e.sum(dim, keepdim=True)


def softmax_nan_rows(x, dim=-1):
    return torch.softmax(x, dim)


def softmax_fixed_dim(x, dim=-1):
    return A.softmax(x, 0)


def scores_by_d(q, k):
    return q @ k.transpose(-2, -1) / q.shape[-1]


def scores_unscaled(q, k):
    return q @ k.transpose(-2, -1)


def causal_upper(T, S):
    return A.causal_mask(T, S).T if T == S else ~A.causal_mask(T, S)


def causal_strict(T, S):
    return A.causal_mask(T, S) & ~torch.eye(T, S, dtype=torch.bool)


def causal_ignores_cache(T, S):
    return torch.ones(T, S, dtype=torch.bool).tril()


def padding_on_queries(attention_mask):
    return attention_mask.bool()[:, None, :, None]


def padding_inverted(attention_mask):
    return ~attention_mask.bool()[:, None, None, :]


def weights_mask_after(scores, mask):
    return torch.softmax(scores, -1) * mask


def weights_fill_zero(scores, mask):
    return torch.softmax(scores.masked_fill(~mask, 0.0), -1)


def weights_torch_softmax(scores, mask):
    return torch.softmax(scores.masked_fill(~mask, float("-inf")), -1)


def split_no_transpose(x, n_heads):
    B, T, C = x.shape
    return x.view(B, n_heads, T, C // n_heads)


def split_wrong_channels(x, n_heads):
    B, T, C = x.shape
    return x.view(B, T, C // n_heads, n_heads).permute(0, 3, 1, 2)


def merge_no_transpose(x):
    B, H, T, D = x.shape
    return x.reshape(B, T, H * D)


def merge_wrong_order(x):
    B, H, T, D = x.shape
    return x.permute(0, 2, 3, 1).reshape(B, T, H * D)


def repeat_tiled(x, n_rep):
    return x.repeat(1, n_rep, 1, 1)


def repeat_wrong_dim(x, n_rep):
    return x.repeat_interleave(n_rep, dim=2)[:, :, : x.shape[2]].repeat(1, n_rep, 1, 1) if n_rep > 1 else x


def attention_unscaled(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return A.softmax(scores) @ v


def attention_mask_after(q, k, v, mask=None):
    w = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), -1)
    return (w * mask if mask is not None else w) @ v


def attention_times_k(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return A.softmax(scores) @ k


MUTANTS = [
    ("check_softmax", softmax_no_max, "subtract the row maximum"),
    ("check_softmax", softmax_nan_rows, "attend to nothing"),
    ("check_softmax", softmax_fixed_dim, "wrong dimension"),
    ("check_attention_scores", scores_by_d, "not by 1/d"),
    ("check_attention_scores", scores_unscaled, "divide by sqrt(d)"),
    ("check_causal_mask", causal_upper, "see the future"),
    ("check_causal_mask", causal_strict, "the diagonal belongs in"),
    ("check_causal_mask", causal_ignores_cache, "i + (S - T)"),
    ("check_padding_mask", padding_on_queries, "padding hides keys"),
    ("check_padding_mask", padding_inverted, "inverted"),
    ("check_attention_weights", weights_mask_after, "before the softmax"),
    ("check_attention_weights", weights_fill_zero, "-inf, not 0"),
    ("check_attention_weights", weights_torch_softmax, "sees no key"),
    ("check_split_heads", split_no_transpose, "then swap T and H"),
    ("check_split_heads", split_wrong_channels, "head h takes channels"),
    ("check_merge_heads", merge_no_transpose, "transpose(1, 2)"),
    ("check_merge_heads", merge_wrong_order, "not the inverse"),
    ("check_repeat_kv", repeat_tiled, "repeat_interleave, not repeat"),
    ("check_repeat_kv", repeat_wrong_dim, "query head h uses KV head h // n_rep"),
    ("check_attention", attention_unscaled, "1/sqrt(d)"),
    ("check_attention", attention_mask_after, "before the softmax"),
    ("check_attention", attention_times_k, "weights @ v"),
]
