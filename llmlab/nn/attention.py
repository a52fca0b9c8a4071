"""Scaled dot-product attention, masks, multi-head and grouped-query attention.

For queries Q (T, d), keys K (S, d) and values V (S, d_v):

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d) + M) V

where M is 0 where a query may look and -inf where it may not (the causal mask hides the future;
the padding mask hides pad tokens). Multi-head attention runs H of these in parallel on slices of
the model width C = H * d; grouped-query attention (GQA, Llama 2/3, SmolLM2) lets groups of query
heads share one key/value head, which divides the KV cache by the group size.

Shapes: B batch, T queries, S keys, H query heads, Hkv key/value heads, D head dim, C = H * D.
Boolean masks use True for "may attend".
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from llmlab import validate


def _check_rank(name: str, x: torch.Tensor, rank: int, shape: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != rank:
        raise ValueError(f"{name} must have shape {shape} ({rank} dims), got {tuple(x.shape)}")


def softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """exp(x - max) / sum exp(x - max) along ``dim``: subtracting the max changes nothing but keeps
    exp from overflowing. A row that is all -inf (nothing to attend to) gives zeros, not NaN."""
    validate.tensor("x", x, floating=True)
    validate.integer("dim", dim, minimum=-max(x.ndim, 1), maximum=max(x.ndim, 1) - 1)
    if bool(torch.isnan(x).any()):  # -inf is a masked score, NaN is a bug upstream
        raise ValueError("x holds NaN values")
    return _softmax(x, dim)


def _softmax(x: torch.Tensor, dim: int) -> torch.Tensor:
    """``softmax`` without its checks, for ``scaled_dot_product_attention``, which checked its inputs."""
    m = x.amax(dim, keepdim=True)
    e = (x - m.masked_fill(torch.isinf(m), 0)).exp()
    s = e.sum(dim, keepdim=True)
    return e / s.masked_fill(s == 0, 1)


def causal_mask(T: int, S: int | None = None, device: torch.device | str | None = None) -> torch.Tensor:
    """(T, S) bool: query i may see key j when j <= i + (S - T). With S > T the queries are the last
    T positions of a longer sequence (decoding with a cache)."""
    T = validate.size("T", T)
    S = T if S is None else validate.size("S", S)
    if S < T:
        raise ValueError(f"S (keys) must be >= T (queries), got T={T}, S={S}")
    device = validate.device("device", device, allow_none=True)
    return torch.ones(T, S, dtype=torch.bool, device=device).tril(S - T)


def padding_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """(B, S) with 1 for real tokens, 0 for padding -> (B, 1, 1, S) bool, broadcastable over heads and queries."""
    _check_rank("attention_mask", attention_mask, 2, "(B, S)")
    validate.zero_one_mask("attention_mask", attention_mask)
    return attention_mask.bool()[:, None, None, :]


def padded_positions(real: torch.Tensor, start: torch.Tensor | int = 0) -> torch.Tensor:
    """RoPE positions of a padded batch: real (B, T) bool, True for real tokens; start (B,) or an int, the
    positions the rows have reached already (their cached tokens) -> (B, T) long. A real token's position
    counts the real tokens before it in its row (0 for a row's first, as transformers does); a pad token
    takes the position of the next real one (it is never attended to, so any position would do)."""
    _check_rank("real", real, 2, "(B, T)")
    if real.dtype != torch.bool:
        raise TypeError(f"real must be a bool tensor (True for a real token), got dtype {real.dtype}")
    if real.numel() == 0:
        raise ValueError(f"real is empty, shape {tuple(real.shape)}: need at least one row of one token")
    if isinstance(start, torch.Tensor):
        if start.dtype.is_floating_point or start.dtype.is_complex or start.dtype == torch.bool:
            raise TypeError(f"start must hold integer positions, got dtype {start.dtype}")
        if start.shape != real.shape[:1]:
            raise ValueError(f"start must have shape (B,) = ({real.shape[0]},), got {tuple(start.shape)}")
        if bool((start < 0).any()):
            raise ValueError(f"start must hold positions >= 0, got {start.tolist()}")
    else:
        start = validate.integer("start", start, minimum=0)
    return padded_positions_unchecked(real, start)


def padded_positions_unchecked(real: torch.Tensor, start: torch.Tensor | int = 0) -> torch.Tensor:
    """``padded_positions`` without its checks: for the model and the cache, whose masks are already checked."""
    if isinstance(start, torch.Tensor):
        start = start[:, None]
    real = real.long()
    return start + real.cumsum(1) - real


def attention_scores(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """q (..., T, D), k (..., S, D) -> (..., T, S) = q k^T / sqrt(D)."""
    validate.tensor("q", q, min_ndim=2, floating=True, finite=True)
    validate.tensor("k", k, min_ndim=2, floating=True, finite=True)
    if k.dtype != q.dtype:
        raise TypeError(f"k must have q's dtype {q.dtype}, got {k.dtype}")
    if k.shape[-1] != q.shape[-1]:
        raise ValueError(f"q {tuple(q.shape)} and k {tuple(k.shape)} must have the same head dim D (last dim)")
    try:
        return _scores(q, k)
    except RuntimeError as error:  # the leading dims do not broadcast
        raise ValueError(f"the leading dims of q {tuple(q.shape)} and k {tuple(k.shape)} do not broadcast") from error


def _scores(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """``attention_scores`` without its checks."""
    return q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])


def scaled_dot_product_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """q (B, H, T, D), k (B, H, S, D), v (B, H, S, Dv), mask broadcastable to (B, H, T, S), True = attend.

    Returns (output (B, H, T, Dv), attention weights (B, H, T, S)). The mask is applied to the
    scores *before* the softmax, so hidden positions get exactly zero weight.
    """
    for name, x in (("q", q), ("k", k), ("v", v)):
        validate.tensor(name, x, ndim=4, floating=True, finite=True)
    for name, x in (("k", k), ("v", v)):
        if x.dtype != q.dtype:
            raise TypeError(f"{name} must have q's dtype {q.dtype}, got {x.dtype}")
    if q.shape[:2] != k.shape[:2] or q.shape[-1] != k.shape[-1] or k.shape[:3] != v.shape[:3]:
        raise ValueError(f"q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}: q, k and v need the same "
                         "batch and heads, q and k the same head dim, k and v the same length")
    if mask is not None and not (isinstance(mask, torch.Tensor) and mask.dtype == torch.bool):
        got = f"dtype {mask.dtype}" if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise TypeError(f"mask must be a bool torch.Tensor (True = attend), got {got}")
    try:
        return _attention(q, k, v, mask)
    except RuntimeError as error:  # explained after the fact: the only shape left unchecked is the mask's
        want = (*q.shape[:3], k.shape[2])
        try:
            if mask is not None and torch.broadcast_shapes(mask.shape, want) != want:
                raise RuntimeError
        except RuntimeError:
            raise ValueError(f"mask must be broadcastable to (B, H, T, S) = {want}, got {tuple(mask.shape)}") from error
        raise


def _attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None):
    """``scaled_dot_product_attention`` without its checks, for ``MultiHeadAttention``'s explicit path."""
    scores = _scores(q, k)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = _softmax(scores, dim=-1)
    return weights @ v, weights


def split_heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """(B, T, C) -> (B, H, T, C // H): head h takes channels h*D .. (h+1)*D - 1."""
    _check_rank("x", x, 3, "(B, T, C)")
    B, T, C = x.shape
    try:
        if C % n_heads:
            raise ValueError(f"n_heads must divide the width C = {C}, got {n_heads}")
        return x.view(B, T, n_heads, C // n_heads).transpose(1, 2)
    except (TypeError, ZeroDivisionError, RuntimeError) as error:  # explained after the fact: this runs 3 times a layer
        validate.divisor("n_heads", n_heads, C, what="the width C =")
        raise error


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, H, T, D) -> (B, T, H * D), the inverse of ``split_heads``."""
    _check_rank("x", x, 4, "(B, H, T, D)")
    B, H, T, D = x.shape
    return x.transpose(1, 2).reshape(B, T, H * D)


def repeat_kv(x: torch.Tensor, n_rep: int) -> torch.Tensor:
    """(B, Hkv, S, D) -> (B, Hkv * n_rep, S, D): key/value head g serves query heads g*n_rep .. g*n_rep + n_rep - 1
    (consecutive query heads share a KV head, as in Llama and SmolLM2)."""
    _check_rank("x", x, 4, "(B, Hkv, S, D)")
    if n_rep == 1:
        return x
    if isinstance(n_rep, int) and n_rep < 1:  # expand would give no head at all, without an error
        raise ValueError(f"n_rep must be >= 1, got {n_rep}")
    B, Hkv, S, D = x.shape
    try:
        return x[:, :, None].expand(B, Hkv, n_rep, S, D).reshape(B, Hkv * n_rep, S, D)
    except (TypeError, RuntimeError) as error:  # explained after the fact: this runs twice a layer
        validate.size("n_rep", n_rep)
        raise error


class MultiHeadAttention(nn.Module):
    """Multi-head attention with optional grouped-query attention (n_kv_heads < n_heads).

    ``rotary``: a function (q, k) -> (q, k) applied to the split heads (RoPE), or None.
    ``fast``: use ``F.scaled_dot_product_attention`` (the same maths in one fused kernel) instead of
    the explicit version. ``forward(..., need_weights=True)`` takes the explicit path and also returns
    the attention weights, for plotting.
    """

    def __init__(self, dim: int, n_heads: int, n_kv_heads: int | None = None, bias: bool = False, fast: bool = True):
        super().__init__()
        validate.flag("bias", bias)
        validate.flag("fast", fast)
        dim, n_heads = validate.size("dim", dim), validate.size("n_heads", n_heads)
        n_kv_heads = n_heads if n_kv_heads is None else validate.size("n_kv_heads", n_kv_heads)
        if dim % n_heads:
            raise ValueError(f"dim {dim} is not divisible by n_heads {n_heads}")
        if n_heads % n_kv_heads:
            raise ValueError(f"n_heads {n_heads} is not a multiple of n_kv_heads {n_kv_heads}")
        self.n_heads, self.n_kv_heads, self.head_dim, self.fast = n_heads, n_kv_heads, dim // n_heads, fast
        self.wq = nn.Linear(dim, dim, bias=bias)
        self.wk = nn.Linear(dim, n_kv_heads * self.head_dim, bias=bias)
        self.wv = nn.Linear(dim, n_kv_heads * self.head_dim, bias=bias)
        self.wo = nn.Linear(dim, dim, bias=bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, rotary=None, kv_cache=None,
                need_weights: bool = False):
        """x (B, T, C), mask broadcastable to (B, H, T, S) with True = attend -> (B, T, C); with
        ``need_weights`` (as ``torch.nn.MultiheadAttention``) the pair (output, weights (B, H, T, S)).

        ``kv_cache``: a function (k, v) -> (k_all, v_all) that stores this call's keys and values
        (B, Hkv, T, D) and returns all of them so far (B, Hkv, S, D) (``KVCache.update`` of one
        layer); without it S = T.
        """
        _check_rank("x", x, 3, "(B, T, C)")
        try:
            q = split_heads(self.wq(x), self.n_heads)
            k = split_heads(self.wk(x), self.n_kv_heads)
            v = split_heads(self.wv(x), self.n_kv_heads)
            if rotary is not None:
                q, k = rotary(q, k)
            if kv_cache is not None:
                k, v = kv_cache(k, v)
            if self.fast and not need_weights:
                # the fused kernel maps query head h to KV head h // (H / Hkv) itself: no copy of K and V
                gqa = self.n_kv_heads != self.n_heads
                out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=gqa)
                return self.wo(merge_heads(out))
            rep = self.n_heads // self.n_kv_heads
            out, weights = _attention(q, repeat_kv(k, rep), repeat_kv(v, rep), mask)
            out = self.wo(merge_heads(out))
            return (out, weights) if need_weights else out
        except (RuntimeError, TypeError, ValueError) as error:  # explained after the fact: forward runs once a layer
            self._explain(x, mask, error)
            raise

    def _explain(self, x: torch.Tensor, mask, error: Exception) -> None:
        """Raise an error that names ``x`` or ``mask`` when one of them made ``forward`` fail."""
        width = self.wq.in_features
        if x.shape[-1] != width:
            raise ValueError(f"x must have shape (B, T, C) with C = {width}, got {tuple(x.shape)}") from error
        if mask is not None and not (isinstance(mask, torch.Tensor) and mask.dtype == torch.bool):
            got = f"dtype {mask.dtype}" if isinstance(mask, torch.Tensor) else type(mask).__name__
            raise TypeError(f"mask must be a bool torch.Tensor (True = attend), got {got}") from error
        if isinstance(mask, torch.Tensor) and "size of tensor" in str(error):
            raise ValueError(f"mask must be broadcastable to (B, H, T, S) for x {tuple(x.shape)}, "
                             f"got {tuple(mask.shape)}") from error
        if not x.is_floating_point() or x.dtype != self.wq.weight.dtype:  # last: autocast may mix dtypes
            raise TypeError(f"x must have the layer's dtype {self.wq.weight.dtype}, got {x.dtype}") from error
