"""The layers around attention: normalisation, feed-forward networks and position information.

Shapes: B batch, T positions, C model width, H heads, D head dim (C = H * D), F hidden width of the MLP.

Normalisation (one token's vector x of width C at a time):

    LayerNorm(x) = (x - mean(x)) / sqrt(var(x) + eps) * weight + bias      (BERT, GPT-2; var is biased, / C)
    RMSNorm(x)   = x / sqrt(mean(x^2) + eps) * weight                      (Llama, SmolLM2: no centring, no bias)

Feed-forward networks (applied to each position separately):

    GELU MLP:   w2(gelu(w1 x))                 gelu(x) = x * Phi(x) = 0.5 x (1 + erf(x / sqrt(2)))   (BERT)
    SwiGLU:     w2(silu(w1 x) * w3 x)          silu(x) = x * sigmoid(x)   (Llama; w1 "gate", w3 "up", w2 "down")

Positions. Attention by itself ignores order; a model adds it either to the input (sinusoidal or
learned position embeddings, BERT) or inside attention (RoPE, Llama). RoPE rotates each pair of
channels (a, b) of a query or key at position m by the angle m * theta_i,

    theta_i = base^(-2i / D),  i = 0 .. D/2 - 1
    (a, b) -> (a cos(m theta_i) - b sin(m theta_i),  b cos(m theta_i) + a sin(m theta_i)),

so that q_m . k_n depends on m - n only. Which channels form a pair is a convention:

* interleaved (Meta's original Llama code, GGUF / llama.cpp): pairs (2i, 2i+1);
* rotate-half (Hugging Face transformers): pairs (i, i + D/2).

Both give the same model if the rows of W_q and W_k are permuted to match (``permute_for_rotate_half``):
the GGUF file of SmolLM2 stores them in the interleaved order.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from llmlab import validate


# ------------------------------------------------------------------------------------------ norms


class RMSNorm(nn.Module):
    """y = x / sqrt(mean(x^2, last dim) + eps) * weight; x (..., C) -> (..., C).

    eps sits inside the square root, as in Llama and transformers' LlamaRMSNorm. The statistic is
    computed in float32 even for bf16/fp16 input (squares of bf16 values lose too much), then the
    result is cast back before the weight is applied, also as LlamaRMSNorm does.
    """

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = validate.positive_float("eps", eps)
        self.weight = nn.Parameter(torch.ones(validate.size("dim", dim)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        try:
            return _rms_norm(x, self.weight, self.eps)
        except (RuntimeError, TypeError, AttributeError) as error:  # explained after the fact
            validate.explain_input("x", x, self.weight.shape[0], error)
            raise

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, eps={self.eps}"


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """``RMSNorm``'s computation without its checks (for hot loops): x (..., C), weight (C,). A failure is
    explained after the fact."""
    try:
        return _rms_norm(x, weight, eps)
    except (RuntimeError, TypeError, AttributeError) as error:
        validate.tensor("x", x, min_ndim=1)
        validate.tensor("weight", weight, ndim=1)
        if weight.shape[0] != x.shape[-1]:
            raise ValueError(f"weight must have shape (C,) = ({x.shape[-1]},) for x {tuple(x.shape)}, "
                             f"got {tuple(weight.shape)}") from error
        validate.positive_float("eps", eps)
        raise


def _rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    x32 = x.float()
    x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)
    return weight * x32.to(x.dtype)


class LayerNorm(nn.Module):
    """y = (x - mean(x)) / sqrt(var(x) + eps) * weight + bias over the last dim; x (..., C) -> (..., C).

    var is the biased variance (divide by C, not C - 1), exactly like ``torch.nn.LayerNorm``;
    parameter names ``weight`` and ``bias`` match it too.
    """

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        dim = validate.size("dim", dim)
        self.eps = validate.positive_float("eps", eps)
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        try:
            mean = x.mean(-1, keepdim=True)
            var = (x - mean).pow(2).mean(-1, keepdim=True)
            return (x - mean) * torch.rsqrt(var + self.eps) * self.weight + self.bias
        except (RuntimeError, TypeError, AttributeError) as error:  # explained after the fact
            validate.explain_input("x", x, self.weight.shape[0], error)
            raise

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, eps={self.eps}"


# ------------------------------------------------------------------------------------------- MLPs


def gelu(x: torch.Tensor) -> torch.Tensor:
    """Exact GELU, x * Phi(x) = 0.5 x (1 + erf(x / sqrt(2))) (BERT's "gelu"; not the tanh approximation)."""
    return _gelu(validate.tensor("x", x, floating=True, finite=True))


def _gelu(x: torch.Tensor) -> torch.Tensor:
    """``gelu`` without its check, for ``GELUMLP``'s forward."""
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


class _FeedForward(nn.Module):
    """What both feed-forward networks share: w1 (C -> F) and w2 (F -> C), their arguments checked once, and an
    error in ``x`` explained only after it happens (``mlp`` runs in every block of every decode step)."""

    def __init__(self, dim: int, hidden_dim: int, bias: bool):
        super().__init__()
        validate.flag("bias", bias)
        dim, hidden_dim = validate.size("dim", dim), validate.size("hidden_dim", hidden_dim)
        self.w1 = nn.Linear(dim, hidden_dim, bias=bias)
        self.w2 = nn.Linear(hidden_dim, dim, bias=bias)

    def mlp(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        try:
            return self.mlp(x)
        except (RuntimeError, TypeError, AttributeError) as error:
            validate.explain_input("x", x, self.w1.in_features, error, self.w1.weight.dtype)
            raise


class GELUMLP(_FeedForward):
    """BERT's feed-forward network: w2(gelu(w1 x)); x (B, T, C) -> (B, T, C), with F hidden units."""

    def __init__(self, dim: int, hidden_dim: int, bias: bool = True):
        super().__init__(dim, hidden_dim, bias)

    def mlp(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(_gelu(self.w1(x)))


class SwiGLU(_FeedForward):
    """Llama's gated feed-forward network: w2(silu(w1 x) * w3 x); x (..., C) -> (..., C), e.g. (B, T, C).

    w1 (C -> F) is the gate, w3 (C -> F) the "up" projection, w2 (F -> C) the "down" projection
    (GGUF: ffn_gate, ffn_up, ffn_down; transformers: gate_proj, up_proj, down_proj). Three matrices
    instead of two, so F is usually ~8/3 C rather than 4 C for the same parameter count.
    """

    def __init__(self, dim: int, hidden_dim: int, bias: bool = False):
        super().__init__(dim, hidden_dim, bias)
        self.w3 = nn.Linear(self.w1.in_features, self.w1.out_features, bias=bias)

    def mlp(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


# -------------------------------------------------------------------------------------- positions


def sinusoidal_positions(n_positions: int, dim: int, base: float = 10000.0) -> torch.Tensor:
    """The Transformer's fixed position embeddings (Vaswani et al. 2017), shape (n_positions, dim):

        PE[m, 2i] = sin(m / base^(2i / dim)),   PE[m, 2i + 1] = cos(m / base^(2i / dim)).

    Added to the token embeddings; ``dim`` must be even.
    """
    n_positions, dim = validate.size("n_positions", n_positions), validate.size("dim", dim)
    if dim % 2:
        raise ValueError(f"dim must be even for sinusoidal positions, got {dim}")
    angles = rope_angles(torch.arange(n_positions), dim, base)  # (n_positions, dim / 2)
    return torch.stack([angles.sin(), angles.cos()], dim=-1).flatten(-2)


def rope_frequencies(head_dim: int, base: float = 10000.0, device=None) -> torch.Tensor:
    """theta_i = base^(-2i / D) for i = 0 .. D/2 - 1, shape (D/2,), float32: fast rotation first, slow last."""
    head_dim = validate.size("head_dim", head_dim)
    base = validate.real("base", base, above=1.0)  # base <= 1 would make the "slow" frequencies fast
    if head_dim % 2:
        raise ValueError(f"RoPE needs an even head dim, got {head_dim}")
    device = validate.device("device", device, allow_none=True)
    return 1.0 / base ** (torch.arange(0, head_dim, 2, device=device, dtype=torch.int64).float() / head_dim)


def rope_angles(positions: torch.Tensor, head_dim: int, base: float = 10000.0) -> torch.Tensor:
    """Angles m * theta_i: positions (..., T) integers, e.g. (T,) or (B, T) -> (..., T, D/2) float32."""
    _check_positions(positions)
    inv_freq = rope_frequencies(head_dim, base, device=positions.device)
    return positions.float()[..., None] * inv_freq


def rope_cos_sin(
    positions: torch.Tensor | int, head_dim: int, base: float = 10000.0, dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of ``rope_angles``, each (T, D/2). ``positions`` is a (T,) tensor or an int T (0 .. T-1)
    (or (B, T), one row of positions per sequence, giving (B, T, D/2)).

    The same tables serve both conventions; only which channels they are applied to differs.
    """
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}")
    if not isinstance(positions, torch.Tensor):  # an int T: positions 0 .. T-1
        positions = torch.arange(validate.size("positions", positions))
    angles = rope_angles(positions, head_dim, base)
    return angles.cos().to(dtype), angles.sin().to(dtype)


def _check_positions(positions: torch.Tensor) -> None:
    """RoPE positions: a non-empty integer tensor (..., T). Its values are not looked at: that would cost a
    GPU sync in every decode step (``Decoder`` and ``FastDecoder`` build their tables once per forward)."""
    validate.tensor("positions", positions, min_ndim=1)
    if positions.dtype.is_floating_point or positions.dtype.is_complex or positions.dtype == torch.bool:
        raise TypeError(f"positions must hold integer positions, got dtype {positions.dtype}")
    if positions.numel() == 0:
        raise ValueError(f"positions is empty, shape {tuple(positions.shape)}: need at least one position")


def _check_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> None:
    validate.tensor("x", x, min_ndim=2)
    validate.tensor("x", x, floating=True, finite=True)
    validate.tensor("cos", cos, min_ndim=2, floating=True, finite=True)
    validate.tensor("sin", sin, min_ndim=2, floating=True, finite=True)
    if x.shape[-1] % 2:
        raise ValueError(f"RoPE needs an even head dim, got {x.shape[-1]}")
    if cos.shape != sin.shape or cos.shape[-1] != x.shape[-1] // 2 or cos.shape[-2] != x.shape[-2]:
        raise ValueError(
            f"cos/sin must have shape (T, D/2) = ({x.shape[-2]}, {x.shape[-1] // 2}) for x {tuple(x.shape)}, "
            f"got {tuple(cos.shape)} and {tuple(sin.shape)}"
        )


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """(x1, x2) -> (-x2, x1) where x1, x2 are the first and second halves of the last dim."""
    try:
        x1, x2 = x.chunk(2, dim=-1)
    except (AttributeError, TypeError, RuntimeError, ValueError) as error:  # explained after the fact: hot (RoPE)
        validate.tensor("x", x, min_ndim=1)
        raise ValueError(f"x must have an even last dim of at least 2, got shape {tuple(x.shape)}") from error
    return torch.cat([-x2, x1], dim=-1)


def apply_rope_half(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """RoPE, rotate-half convention (transformers): channel i pairs with i + D/2.

    x (..., T, D), e.g. (B, H, T, D); cos, sin (T, D/2) from ``rope_cos_sin``. With c, s repeated
    twice along the last dim: x * c + rotate_half(x) * s.
    """
    _check_rope(x, cos, sin)
    cos, sin = torch.cat([cos, cos], -1).to(x.dtype), torch.cat([sin, sin], -1).to(x.dtype)
    return x * cos + rotate_half(x) * sin


def apply_rope_interleaved(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """RoPE, interleaved convention (Meta's Llama, GGUF/llama.cpp): channel 2i pairs with 2i + 1.

    x (..., T, D); cos, sin (T, D/2). The pair (a, b) = (x[2i], x[2i+1]) becomes
    (a cos - b sin, b cos + a sin): the complex number a + ib multiplied by e^{i m theta_i}.
    """
    _check_rope(x, cos, sin)
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    a, b = x[..., 0::2], x[..., 1::2]
    return torch.stack([a * cos - b * sin, b * cos + a * sin], dim=-1).flatten(-2)


def interleaved_to_half_order(head_dim: int) -> torch.Tensor:
    """Channel order that turns an interleaved head into a rotate-half one: (D,) indices
    [0, 2, 4, ..., D-2, 1, 3, ..., D-1], so ``x[..., order]`` puts pair (2i, 2i+1) at (i, i + D/2)."""
    head_dim = validate.size("head_dim", head_dim)
    if head_dim % 2:
        raise ValueError(f"head_dim must be even for RoPE, got {head_dim}")
    return torch.cat([torch.arange(0, head_dim, 2), torch.arange(1, head_dim, 2)])


def _half_head_rows(w: torch.Tensor, n_heads: int) -> int:
    """D / 2 for the rows (H * D, ...) of a q or k projection, after checking that they split that way."""
    validate.tensor("w", w, min_ndim=1)
    n_heads = validate.size("n_heads", n_heads)
    rows = w.shape[0]
    if rows == 0 or rows % (2 * n_heads):
        raise ValueError(f"w's {rows} rows (dim 0) cannot be split into n_heads = {n_heads} heads of an even head dim")
    return rows // n_heads // 2


def permute_for_rotate_half(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Reorder the rows of a q or k projection (out = H * D, in) from interleaved to rotate-half order.

    GGUF (llama.cpp's converter) stores W_q and W_k permuted for interleaved RoPE; this undoes it:

        w.reshape(H, D/2, 2, in).swapaxes(1, 2).reshape(H * D, in)

    i.e. within each head, output row 2i moves to i and row 2i + 1 to i + D/2. Then
    ``apply_rope_half(x @ W'^T)`` equals ``apply_rope_interleaved(x @ W^T)`` with its channels
    reordered, and all attention scores q . k are unchanged.
    """
    half = _half_head_rows(w, n_heads)
    return w.reshape(n_heads, half, 2, *w.shape[1:]).transpose(1, 2).reshape(w.shape)


def permute_for_interleaved(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Inverse of ``permute_for_rotate_half``: rotate-half rows (H * D, in) -> interleaved order
    (what llama.cpp's converter does to transformers' q_proj/k_proj):

        w.reshape(H, 2, D/2, in).swapaxes(1, 2).reshape(H * D, in)
    """
    half = _half_head_rows(w, n_heads)
    return w.reshape(n_heads, 2, half, *w.shape[1:]).transpose(1, 2).reshape(w.shape)
