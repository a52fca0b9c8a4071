"""Checks for notebook 05_transformer."""
from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F

from llmlab.grading.core import Case, Check, Draw, exercise
from llmlab.grading.core import randn as _randn
from llmlab.models.minilm import mean_pool
from llmlab.nn import layers as L
from llmlab.nn.attention import causal_mask, merge_heads, repeat_kv, split_heads
from llmlab.nn.model import DecoderBlock, DecoderConfig

_LEADING_DIMS = {"values to unpack": "x may be (T, C) or (B, T, C): work on the last dim only, whatever the leading dims"}


@lru_cache(maxsize=1)
def _smollm2():
    from llmlab.models import load_smollm2

    return load_smollm2(device="cpu").eval()  # checks compare on the CPU, whatever the learner uses


@lru_cache(maxsize=1)
def _gguf_tensors() -> dict[str, torch.Tensor]:
    from llmlab.models import smollm2_gguf_path
    from llmlab.models.gguf import open_gguf, read_tensors

    return read_tensors(open_gguf(smollm2_gguf_path()))


def _layer0() -> dict[str, torch.Tensor]:
    state = _smollm2().state_dict()
    return {k.removeprefix("layers.0."): v for k, v in state.items() if k.startswith("layers.0.")}


def _rms_reference(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """RMSNorm in float32 at least (float64 stays float64), cast back to x's dtype before the weight."""
    h = x if x.dtype == torch.float64 else x.float()
    return (h / (h.pow(2).mean(-1, keepdim=True) + eps).sqrt()).to(x.dtype) * weight


def _norm_cases(d: Draw, bias: bool) -> list[Case]:
    def args(*shape, dtype=torch.float32, scale=1.0, offset=0.0):
        C = shape[-1]
        w = [1 + 0.2 * d.randn(C, dtype=dtype)] + ([d.randn(C, dtype=dtype)] if bias else [])
        return (d.randn(*shape, dtype=dtype, scale=scale) + offset, *w, d.choice([1e-5, 1e-6]))
    x, *rest = args(d.int(3, 6), 24)
    wide = "average over the last dim (mean(-1)), whatever its width: do not divide by a fixed 16"
    return [
        Case("2-D input (T, C) of another width", x, *rest, hint=wide),
        Case("4-D input (B, H, T, D)", *args(2, d.int(2, 3), d.int(2, 5), d.choice([6, 40])), hint=wide),
        Case("rows on very different scales", x * 10.0 ** d.randint(-3, 4, (x.shape[0], 1)), *rest),
    ] + ([Case("rows with a large mean (float64)", *args(3, 12, dtype=torch.float64, offset=1e6),
               hint="compute the variance as mean((x - mean)²): E[x²] - mean² loses every digit when the mean is large")]
         if bias else
         [Case("bfloat16 input and weight", *args(2, d.int(2, 5), 32, dtype=torch.bfloat16),
               hint="return x's dtype: compute in float32 if you like, then cast back (.to(x.dtype)) before the weight")]) + \
        [Case("float64 input", *args(2, d.int(2, 5), d.choice([8, 20]), dtype=torch.float64))]


@exercise("05.rms_norm", reference=_rms_reference, cases=lambda d: _norm_cases(d, bias=False))
def check_rms_norm(c: Check) -> None:
    x, w = _randn(2, 3, 16), _randn(16, seed=1)
    out = c.call(x, w, 1e-5)
    c.expect_tensor(out, shape=x.shape, dtype=x.dtype, name="rms_norm(x, weight, eps)")
    ms = x.pow(2).mean(-1, keepdim=True)
    want = _rms_reference(x, w, 1e-5)
    c.diagnose(out, {
        "eps goes inside the square root: x / sqrt(mean(x²) + eps)": x / (ms.sqrt() + 1e-5) * w,
        "RMSNorm does not subtract the mean (that is LayerNorm)": (x - x.mean(-1, keepdim=True)) / ((x - x.mean(-1, keepdim=True)).pow(2).mean(-1, keepdim=True) + 1e-5).sqrt() * w,
        "average the squares over the last dimension (the channels) only": x / (x.pow(2).mean() + 1e-5).sqrt() * w,
        "multiply by the weight after normalising": x / (ms + 1e-5).sqrt(),
    }, "your normalisation matches a known mistake", rtol=1e-4, correct=want)
    c.close(out, want, "rms_norm differs from x / sqrt(mean(x²) + eps) * weight", "")
    tiny = torch.full((1, 4), 1e-4)
    c.close(c.call(tiny, torch.ones(4), 1e-2), tiny / math.sqrt(1e-8 + 1e-2), "with tiny inputs eps matters and your result is off",
            "eps inside the square root")


@exercise("05.layer_norm", reference=lambda x, w, b, eps: F.layer_norm(x, (x.shape[-1],), w, b, eps),
          cases=lambda d: _norm_cases(d, bias=True))
def check_layer_norm(c: Check) -> None:
    x, w, b = _randn(2, 3, 16), _randn(16, seed=1), _randn(16, seed=2)
    out = c.call(x, w, b, 1e-5)
    c.expect_tensor(out, shape=x.shape, name="layer_norm(x, weight, bias, eps)")
    mu = x.mean(-1, keepdim=True)
    c.diagnose(out, {
        "use the population variance (divide by C, torch.var(..., unbiased=False)), as LayerNorm does":
            (x - mu) / (x.var(-1, keepdim=True) + 1e-5).sqrt() * w + b,
        "eps goes inside the square root": (x - mu) / ((x - mu).pow(2).mean(-1, keepdim=True).sqrt() + 1e-5) * w + b,
        "subtract the mean first": x / (x.pow(2).mean(-1, keepdim=True) + 1e-5).sqrt() * w + b,
    }, "your normalisation matches a known mistake", rtol=1e-4, correct=F.layer_norm(x, (16,), w, b, 1e-5))
    tiny = torch.full((1, 4), 1e-4) + torch.tensor([[0.0, 1e-4, 2e-4, 3e-4]])
    c.close(c.call(tiny, torch.ones(4), torch.zeros(4), 1e-2), F.layer_norm(tiny, (4,), eps=1e-2),
            "with tiny inputs eps matters and your result is off", "eps inside the square root: sqrt(var + eps)")
    c.close(out, F.layer_norm(x, (16,), w, b, 1e-5), "layer_norm differs from F.layer_norm", "(x - mean) / sqrt(var + eps) * weight + bias")


def _rope_cases(d: Draw) -> list[Case]:
    B, H, T, D = d.int(2, 3), d.int(2, 4), d.int(3, 7), d.choice([16, 32])
    start = d.int(3, 50)
    return [
        Case(f"batch of {B}, {H} heads, head dim {D}", d.randn(B, H, T, D), *L.rope_cos_sin(T, D, 10000.0),
             hint="split at D/2 = x.shape[-1] // 2 and repeat cos and sin to D, not at a fixed channel"),
        Case("positions that do not start at 0 (after a KV cache)", d.randn(B, H, T, 8),
             *L.rope_cos_sin(torch.arange(start, start + T), 8, 1e5), hint="use the cos and sin tables you are given"),
        Case("3-D x (H, T, D)", d.randn(H, T, 8), *L.rope_cos_sin(T, 8, 10000.0)),
        Case("bfloat16 x, cos and sin", d.randn(B, H, T, 8, dtype=torch.bfloat16), *L.rope_cos_sin(T, 8, 1e4, torch.bfloat16)),
        Case("float64 x, cos and sin", d.randn(B, H, T, 8, dtype=torch.float64), *L.rope_cos_sin(T, 8, 1e4, torch.float64)),
    ]


@exercise("05.apply_rope", reference=L.apply_rope_half, cases=_rope_cases)
def check_apply_rope(c: Check) -> None:
    x = _randn(1, 2, 5, 8)
    cos, sin = L.rope_cos_sin(5, 8, 10000.0)
    out = c.call(x, cos, sin)
    c.expect_tensor(out, shape=x.shape, name="apply_rope(x, cos, sin)")
    c.diagnose(out, {
        "this model pairs channel i with i + D/2 (rotate-half); you paired neighbours 2i, 2i+1 (interleaved)":
            L.apply_rope_interleaved(x, cos, sin),
        "the sign is on the first half: rotate_half(x) = cat(-x2, x1)": x * torch.cat([cos, cos], -1) - L.rotate_half(x) * torch.cat([sin, sin], -1),
    }, "your rotation matches a known mistake", rtol=1e-5, correct=L.apply_rope_half(x, cos, sin))
    c.close(out, L.apply_rope_half(x, cos, sin), "RoPE output differs", "x * cos + rotate_half(x) * sin, with cos and sin repeated twice")
    c.close(out[..., 0, :], x[..., 0, :], "position 0 must be left unchanged (angle 0)", "")
    q, k = _randn(1, 1, 6, 8, seed=3)[..., 2:3, :], _randn(1, 1, 6, 8, seed=4)[..., 4:5, :]

    def score(m: int, n: int) -> float:
        cm, sm = L.rope_cos_sin(torch.tensor([m]), 8, 10000.0)
        cn, sn = L.rope_cos_sin(torch.tensor([n]), 8, 10000.0)
        return (c.call(q, cm, sm) * c.call(k, cn, sn)).sum().item()
    c.expect(abs(score(3, 1) - score(10, 8)) < 1e-4, "q·k after RoPE should depend only on the distance m - n",
             "rotate each pair by position × frequency; the same rotation for q and k")


def _unpermute_cases(d: Draw) -> list[Case]:
    H = d.choice([1, 2, 4, 5])
    heads = "use n_heads, the argument (9 for SmolLM2's W_q, 3 for its W_k), not a fixed number"
    return [Case("9 heads (a W_q)", d.randn(9 * 8, d.int(2, 6)), 9, hint=heads),
            Case("another head count and head dim", d.randn(H * d.choice([2, 6, 10]), 3), H, hint=heads),
            Case("bfloat16 weights", d.randn(4 * 4, 5, dtype=torch.bfloat16), 4)]


@exercise("05.unpermute_qk", reference=L.permute_for_rotate_half, cases=_unpermute_cases)
def check_unpermute_qk(c: Check) -> None:
    w = torch.arange(3 * 8 * 2, dtype=torch.float32).view(24, 2)
    out = c.call(w, 3)
    c.expect_tensor(out, shape=w.shape, name="unpermute_qk(w (24, 2), 3)")
    if torch.equal(out, w):
        c.fail("you returned the weights unchanged",
               "GGUF stores q/k rows in interleaved-RoPE order; reorder them so rotate-half RoPE sees the same pairs")
    if torch.equal(out, L.permute_for_interleaved(w, 3)):
        c.fail("you applied the inverse permutation", "reshape to (H, D/2, 2, in), swap axes 1 and 2, reshape back")
    c.expect(torch.equal(out, L.permute_for_rotate_half(w, 3)), "rows end up in the wrong order",
             "within each head, row 2i moves to i and row 2i+1 to i + D/2")
    real = _gguf_tensors()["blk.0.attn_k.weight"]
    c.expect(torch.equal(c.call(real, 3), L.permute_for_rotate_half(real, 3)),
             "SmolLM2's real attn_k (3 KV heads) is reordered wrongly", "")


def _swiglu_reference(x, w1, w2, w3):
    return F.linear(F.silu(F.linear(x, w1)) * F.linear(x, w3), w2)


def _swiglu_cases(d: Draw) -> list[Case]:
    def args(*lead, C, Fh, dtype=torch.float32):
        return (d.randn(*lead, C, dtype=dtype), d.randn(Fh, C, dtype=dtype, scale=C ** -0.5),
                d.randn(C, Fh, dtype=dtype, scale=Fh ** -0.5), d.randn(Fh, C, dtype=dtype, scale=C ** -0.5))
    return [Case("x of shape (T, C), no batch dim", *args(d.int(2, 6), C=d.int(4, 10), Fh=d.int(5, 20))),
            Case("a batch of 3 and another hidden width", *args(3, d.int(2, 5), C=8, Fh=d.int(13, 30))),
            Case("bfloat16 input and weights", *args(2, 3, C=16, Fh=24, dtype=torch.bfloat16)),
            Case("float64 input and weights", *args(2, 3, C=8, Fh=12, dtype=torch.float64))]


@exercise("05.swiglu", reference=_swiglu_reference, cases=_swiglu_cases, error_hints=_LEADING_DIMS)
def check_swiglu(c: Check) -> None:
    x, w1, w2, w3 = _randn(2, 3, 8), _randn(12, 8, seed=1), _randn(8, 12, seed=2), _randn(12, 8, seed=3)
    out = c.call(x, w1, w2, w3)
    c.expect_tensor(out, shape=x.shape, name="swiglu(x, w1, w2, w3)")
    g, u = x @ w1.T, x @ w3.T
    want = _swiglu_reference(x, w1, w2, w3)
    c.diagnose(out, {
        "SwiGLU uses SiLU (x·sigmoid(x)), not GELU": (F.gelu(g) * u) @ w2.T,
        "the gate is w1: silu(w1 x) * (w3 x), not silu(w3 x) * (w1 x)": (F.silu(u) * g) @ w2.T,
        "multiply the gate by the up projection w3 x": F.silu(g) @ w2.T,
    }, "your MLP matches a known mistake", rtol=1e-5, correct=want)
    c.close(out, want, "SwiGLU output differs", "w2(silu(w1 x) * w3 x)")


def _reference_block(x, layer, cos, sin, n_heads, n_kv_heads, eps):
    """SmolLM2's own DecoderBlock (float32) on these weights."""
    block = _block_module(x, layer, n_heads, n_kv_heads, eps)
    return block(x, causal_mask(x.shape[1]), _rotary(cos, sin))


def _reference_attention(x, layer, cos, sin, n_heads, n_kv_heads, eps):
    """The attention sub-layer of SmolLM2's own DecoderBlock (float32): attention(RMSNorm(x)), no residual."""
    block = _block_module(x, layer, n_heads, n_kv_heads, eps)
    return block.attention(block.attention_norm(x), causal_mask(x.shape[1]), _rotary(cos, sin))


def _block_module(x, layer, n_heads, n_kv_heads, eps) -> DecoderBlock:
    cfg = DecoderConfig(vocab_size=8, dim=x.shape[-1], n_layers=1, n_heads=n_heads, n_kv_heads=n_kv_heads,
                        hidden_dim=layer["feed_forward.w1.weight"].shape[0], norm_eps=eps)
    block = DecoderBlock(cfg)
    block.load_state_dict(layer)
    return block


def _rotary(cos, sin):
    return lambda q, k: (L.apply_rope_half(q, cos, sin), L.apply_rope_half(k, cos, sin))


def _functional_attention(x, layer, cos, sin, n_heads, n_kv_heads, eps, rope_v=False, causal=True, norm=True,
                          rope=True, residual=False):
    """The attention sub-layer written out step by step, in x's dtype, with switches for the classic mistakes:
    wo(attention(RoPE(q), RoPE(k), v)) of RMSNorm(x), before the residual add."""
    h = x / (x.pow(2).mean(-1, keepdim=True) + eps).sqrt() * layer["attention_norm.weight"] if norm else x
    q, k, v = (split_heads(h @ layer[f"attention.w{n}.weight"].T, nh)
               for n, nh in (("q", n_heads), ("k", n_kv_heads), ("v", n_kv_heads)))
    if rope:
        q, k = L.apply_rope_half(q, cos, sin), L.apply_rope_half(k, cos, sin)
    if rope_v:
        v = L.apply_rope_half(v, cos, sin)
    rep = n_heads // n_kv_heads
    a = F.scaled_dot_product_attention(q, repeat_kv(k, rep), repeat_kv(v, rep), is_causal=causal)
    out = merge_heads(a) @ layer["attention.wo.weight"].T
    return x + out if residual else out


def _functional_block(x, layer, cos, sin, n_heads, n_kv_heads, eps, rope_v=False, residual=True, post_norm=False,
                      causal=True, mlp_norm="ffn_norm.weight", parallel=False):
    """A decoder block written out step by step, in x's dtype, with switches for six classic mistakes."""
    def norm(h, name):
        return h / (h.pow(2).mean(-1, keepdim=True) + eps).sqrt() * layer[name]

    def lin(h, name):
        return h @ layer[name].T

    a = _functional_attention(x, layer, cos, sin, n_heads, n_kv_heads, eps, rope_v=rope_v, causal=causal,
                              norm=not post_norm)
    mlp_in = x
    x = x + a if residual else a
    if post_norm:
        x = norm(x, "attention_norm.weight")
    h = x if post_norm else norm(mlp_in if parallel else x, mlp_norm)
    m = lin(F.silu(lin(h, "feed_forward.w1.weight")) * lin(h, "feed_forward.w3.weight"), "feed_forward.w2.weight")
    x = x + m if residual else m
    return norm(x, "ffn_norm.weight") if post_norm else x


def _toy_layer(d: Draw, C: int, n_kv: int, D: int, Fh: int, dtype=torch.float32, prefix: str = "") -> dict[str, torch.Tensor]:
    """Random weights of one block (width C, n_kv * D key/value channels, Fh hidden units)."""
    shapes = {"attention_norm.weight": (C,), "attention.wq.weight": (C, C), "attention.wk.weight": (n_kv * D, C),
              "attention.wv.weight": (n_kv * D, C), "attention.wo.weight": (C, C), "ffn_norm.weight": (C,),
              "feed_forward.w1.weight": (Fh, C), "feed_forward.w2.weight": (C, Fh), "feed_forward.w3.weight": (Fh, C)}
    return {prefix + name: (1 + 0.2 * d.randn(*s, dtype=dtype)) if len(s) == 1 else d.randn(*s, dtype=dtype, scale=s[1] ** -0.5)
            for name, s in shapes.items()}


def _block_cases(d: Draw) -> list[Case]:
    def args(B, H, n_kv, D, dtype=torch.float32, theta=None):
        T = d.int(3, 7)
        return (d.randn(B, T, H * D, dtype=dtype), _toy_layer(d, H * D, n_kv, D, d.int(8, 24), dtype),
                *L.rope_cos_sin(T, D, theta or d.choice([1e4, 1e5])), H, n_kv, d.choice([1e-5, 1e-6]))
    gqa = "repeat each KV head n_heads // n_kv_heads times (not 3) and keep every row of the batch"
    return [Case("cos and sin tables of another RoPE base", *args(1, 6, 2, 4, theta=d.choice([500.0, 2000.0])),
                 hint="use the cos and sin tables you are given (another model has another RoPE base), not tables of your own"),
            Case("a batch of 3, 4 query heads per KV head", *args(3, 8, 2, 4), hint=gqa),
            Case("2 query heads per KV head", *args(2, 4, 2, 6), hint=gqa),
            Case("plain multi-head attention (n_kv_heads = n_heads)", *args(2, 2, 2, 8), hint=gqa),
            Case("float64 input and weights", *args(2, 4, 1, 4, torch.float64))]


def _smollm2_block_args() -> tuple:
    """SmolLM2's layer 0 on 6 positions of a small random residual stream: the example of both block checks."""
    return _randn(1, 6, 576) * 0.1, _layer0(), *L.rope_cos_sin(6, 64, 1e5), 9, 3, 1e-5


@exercise("05.attention_sublayer", reference=_functional_attention, cases=_block_cases, rtol=1e-4, atol=1e-5)
def check_attention_sublayer(c: Check) -> None:
    args = _smollm2_block_args()
    x = args[0]
    out = c.call(*args)
    c.expect_tensor(out, shape=x.shape, dtype=x.dtype, name="attention_sublayer(x, SmolLM2 layer 0, ...)")
    with torch.no_grad():
        want = _reference_attention(*args)
        c.diagnose(out, {
            "return the sub-layer's output alone, before the residual add (decoder_block adds x)":
                _functional_attention(*args, residual=True),
            "causal attention: a position attends to itself and the past only (is_causal=True or a causal mask)":
                _functional_attention(*args, causal=False),
            "RoPE rotates q and k only, never v (values carry content, not position)": _functional_attention(*args, rope_v=True),
            "rotate q and k with apply_rope (the cos and sin you are given) after splitting the heads":
                _functional_attention(*args, rope=False),
            "pre-norm: the sub-layer reads rms_norm(x, attention_norm.weight, eps), not x itself":
                _functional_attention(*args, norm=False),
        }, "your attention sub-layer matches a known mistake", rtol=1e-4, correct=want)
    # The learner's fused attention and the reference's explicit one sum in different orders: float32 tolerances
    # a little wider than the default (see check_decoder_block).
    c.close(out, want, "SmolLM2's layer 0 gives a different attention output from the reference",
            "follow the steps: RMSNorm, q/k/v projections, split heads, RoPE on q and k, repeat_kv, causal attention, "
            "merge heads, wo", rtol=1e-4, atol=1e-5)


@exercise("05.decoder_block", reference=_functional_block, cases=_block_cases, rtol=1e-4, atol=1e-5)
def check_decoder_block(c: Check) -> None:
    args = _smollm2_block_args()
    x = args[0]
    out = c.call(*args)
    c.expect_tensor(out, shape=x.shape, dtype=x.dtype, name="decoder_block(x, SmolLM2 layer 0, ...)")
    with torch.no_grad():
        want = _reference_block(*args)
        c.diagnose(out, {
            "add each sublayer's output to its input: x = x + attention(norm(x)); x = x + mlp(norm(x))":
                _functional_block(*args, residual=False),
            "pre-norm: normalise the input of each sublayer (Llama), not the sum after it (the original Transformer)":
                _functional_block(*args, post_norm=True),
            "the MLP's RMSNorm has its own gain, ffn_norm.weight (attention_norm.weight is the attention's)":
                _functional_block(*args, mlp_norm="attention_norm.weight"),
            "the MLP reads the updated stream h = x + attention_sublayer(x, ...), not the block's input x":
                _functional_block(*args, parallel=True),
            "causal attention: a position attends to itself and the past only (is_causal=True or a causal mask)":
                _functional_block(*args, causal=False),
            "RoPE rotates q and k only, never v (values carry content, not position)": _functional_block(*args, rope_v=True),
        }, "your block matches a known mistake", rtol=1e-4, correct=want)
    # The learner's fused attention and the reference's explicit one sum in different orders: with one
    # CPU thread, 1 of the 3,456 outputs fell just outside float32's default tolerances.
    c.close(out, want, "SmolLM2's layer 0 gives a different output from the reference block",
            "h = x + attention_sublayer(x, ...) (check it passes above), then out = h + swiglu(rms_norm(h, "
            "ffn_norm.weight, eps), w1, w2, w3)", rtol=1e-4, atol=1e-5)


_GGUF_NAMES = {
    "attn_norm.weight": "attention_norm.weight", "attn_q.weight": "attention.wq.weight", "attn_k.weight": "attention.wk.weight",
    "attn_v.weight": "attention.wv.weight", "attn_output.weight": "attention.wo.weight", "ffn_norm.weight": "ffn_norm.weight",
    "ffn_gate.weight": "feed_forward.w1.weight", "ffn_down.weight": "feed_forward.w2.weight", "ffn_up.weight": "feed_forward.w3.weight",
}


def _load_reference(tensors: dict, i: int, n_heads: int, n_kv_heads: int) -> dict[str, torch.Tensor]:
    layer = {ours: tensors[f"blk.{i}.{name}"] for name, ours in _GGUF_NAMES.items()}
    for name, heads in (("attention.wq.weight", n_heads), ("attention.wk.weight", n_kv_heads)):
        layer[name] = L.permute_for_rotate_half(layer[name], heads)
    return layer


def _load_cases(d: Draw) -> list[Case]:
    def gguf(n_layers, H, n_kv, D, dtype=torch.float32):
        ours = {v: k for k, v in _GGUF_NAMES.items()}
        return {f"blk.{i}.{ours[name]}": w for i in range(n_layers)
                for name, w in _toy_layer(d, H * D, n_kv, D, 6, dtype).items()}
    return [Case("2 query heads per KV head", gguf(2, 4, 2, 4), 1, 4, 2,
                 hint="un-permute W_q with n_heads and W_k with n_kv_heads, the arguments (their ratio is not always 3)"),
            Case("layer 1 of a 12-layer model", gguf(12, 2, 1, 4), 1, 2, 1,
                 hint="take the names that start with the whole prefix blk.{i}. (dot included): blk.1 also starts blk.10"),
            Case("float16 tensors (as a GGUF file may store them)", gguf(3, 2, 2, 2, torch.float16), 2, 2, 2)]


@exercise("05.load_layer", reference=_load_reference, cases=_load_cases)
def check_load_layer(c: Check) -> None:
    tensors = {k: v for k, v in _gguf_tensors().items() if k.startswith(("blk.0.", "blk.1.", "blk.17."))}  # copied by c.call
    hints = {"blk.": "GGUF names are blk.{i}.attn_q.weight, blk.{i}.ffn_gate.weight, ... (see the table above)",
             "cannot be split": "q has n_heads = 9 heads, k has n_kv_heads = 3"}
    for i in (0, 17):
        out = c.call(tensors, i, 9, 3, error_hints=hints)
        want = _load_reference(tensors, i, 9, 3)
        c.expect(isinstance(out, dict) and set(out) == set(want), f"layer {i}: keys {sorted(out)[:4]}..., expected {sorted(want)}",
                 "return a dict with the nine DecoderBlock names, e.g. 'attention.wq.weight', 'feed_forward.w1.weight'")
        name = next((name for name in want if not torch.equal(out[name], want[name])), None)
        gguf_name = {"attention.wq.weight": "attn_q.weight", "attention.wk.weight": "attn_k.weight"}.get(name)
        if gguf_name and torch.equal(out[name], tensors[f"blk.{i}.{gguf_name}"]):
            c.fail(f"layer {i}: {name} is in GGUF's row order",
                   "GGUF's q and k are permuted for interleaved RoPE: un-permute them (your unpermute_qk), with 9 heads for q and 3 for k")
        if name and any(torch.equal(out[name], want[other]) for other in want if other != name):
            c.fail(f"layer {i}: {name} holds another tensor", "ffn_gate is w1 (the gate), ffn_up is w3, ffn_down is w2; attn_output is wo")
        c.expect(name is None, f"layer {i}: {name} differs from the expected weights",
                 "only q and k are re-ordered; every other tensor is copied as it is")


def _forward_reference(ids: torch.Tensor, weights: dict, cfg) -> torch.Tensor:
    """embed, blocks, final RMSNorm, tied head: written out in the weights' dtype."""
    cos, sin = L.rope_cos_sin(ids.shape[1], cfg.head_dim, cfg.rope_theta)
    x = weights["tok_embeddings.weight"][ids]
    for i in range(cfg.n_layers):
        layer = {k.removeprefix(f"layers.{i}."): v for k, v in weights.items() if k.startswith(f"layers.{i}.")}
        x = _functional_block(x, layer, cos, sin, cfg.n_heads, cfg.n_kv_heads, cfg.norm_eps)
    x = x / (x.pow(2).mean(-1, keepdim=True) + cfg.norm_eps).sqrt() * weights["norm.weight"]
    return x @ weights["tok_embeddings.weight"].T


def _forward_cases(d: Draw) -> list[Case]:
    def args(B, dtype=torch.float32, theta=100000.0):
        H, n_kv, D = d.choice([(4, 2, 4), (2, 1, 8), (4, 4, 4)])
        cfg = DecoderConfig(vocab_size=d.int(30, 80), dim=H * D, n_layers=2, n_heads=H, n_kv_heads=n_kv,
                            hidden_dim=d.int(8, 24), rope_theta=theta, norm_eps=1e-6, max_seq_len=64)
        weights = {"tok_embeddings.weight": d.randn(cfg.vocab_size, cfg.dim, dtype=dtype),
                   "norm.weight": 1 + 0.2 * d.randn(cfg.dim, dtype=dtype)}
        for i in range(cfg.n_layers):
            weights.update(_toy_layer(d, cfg.dim, n_kv, D, cfg.hidden_dim, dtype, prefix=f"layers.{i}."))
        return d.randint(0, cfg.vocab_size, (B, d.int(3, 6))), weights, cfg
    return [Case("a toy model in float64 (2 layers), one prompt", *args(1, torch.float64)),
            Case("a toy model with another RoPE base, a batch of 2 prompts", *args(2, theta=d.choice([500.0, 1000.0])),
                 hint="read every size from cfg (n_layers, head_dim, rope_theta, norm_eps) and run every row of ids")]


@exercise("05.decoder_forward", reference=_forward_reference, cases=_forward_cases, rtol=1e-4, atol=1e-5)
def check_decoder_forward(c: Check) -> None:
    model = _smollm2()
    state = {k: v for k, v in model.state_dict().items() if k != "output.weight"}  # tied: no separate head
    ids = torch.tensor([[504, 3458, 282, 4649, 314, 7042, 30]])
    hints = {"output.weight": "SmolLM2 ties its output layer to the embedding: logits = x @ tok_embeddings.weight.T"}
    with torch.no_grad():
        out = c.call(ids, state, model.cfg, error_hints=hints, copy_args=False)
        want = model(ids)
    c.expect_tensor(out, shape=want.shape, name="decoder_forward(ids, weights, cfg)")
    x = model.tok_embeddings(ids)
    with torch.no_grad():
        cos, sin = L.rope_cos_sin(ids.shape[1], 64, model.cfg.rope_theta)
        rotary = lambda q, k: (L.apply_rope_half(q, cos, sin), L.apply_rope_half(k, cos, sin))  # noqa: E731
        for layer in model.layers:
            x = layer(x, causal_mask(ids.shape[1]), rotary)
        no_final_norm = x @ model.tok_embeddings.weight.T
    if torch.allclose(out, no_final_norm, atol=1e-3):
        c.fail("your logits skip the final RMSNorm", "apply norm.weight (RMSNorm) to the last hidden state before the head")
    c.close(out, want, "logits differ from the reference SmolLM2", "embed, run the 30 blocks, final RMSNorm, tied head", atol=1e-3, rtol=1e-4)
    c.expect(torch.equal(out.argmax(-1), want.argmax(-1)), "the predicted tokens differ", "")


class ToyForward:
    """A model for greedy decoding, as one-hot logits (1, T, V): the token after position t is (mul * s + add) % V,
    where s is the token at t, or (``context=True``) the sum of all the tokens up to t.
    A module-level class, so that a class run can send it to the learner's kernel."""

    def __init__(self, vocab_size: int, mul: int = 7, add: int = 3, context: bool = False):
        self.V, self.mul, self.add, self.context = vocab_size, mul, add, context

    def __call__(self, ids: torch.Tensor) -> torch.Tensor:
        s = ids.cumsum(-1) if self.context else ids
        return F.one_hot((self.mul * s + self.add) % self.V, self.V).float()


def _greedy_reference(forward, ids, max_new_tokens, eos_id):
    ids, new = list(ids), []
    while len(new) < max_new_tokens and (not new or new[-1] != eos_id):
        new.append(int(forward(torch.tensor([ids]))[0, -1].argmax()))
        ids.append(new[-1])
    return new


def _greedy_cases(d: Draw) -> list[Case]:
    V = d.int(40, 300)
    model, prompt = ToyForward(V, d.int(2, V - 1), d.int(1, V - 1), context=True), [d.int(0, V - 1) for _ in range(d.int(3, 8))]
    first = _greedy_reference(model, prompt, 1, None)[0]
    return [Case("a model whose next token depends on the whole context", model, prompt, 8, None,
                 hint="feed the whole sequence (the prompt and every token generated so far) at each step, not only the last token"),
            Case("eos_id as the first token generated", model, prompt, 5, first),
            Case("one new token, another vocabulary", ToyForward(V, 3, 1), prompt, 1, V + 1)]


@exercise("05.greedy_generate", reference=_greedy_reference, cases=_greedy_cases)
def check_greedy_generate(c: Check) -> None:
    V = 11
    toy_forward = ToyForward(V)
    out = c.call(toy_forward, [1, 2], 4, None)
    want = [(7 * 2 + 3) % V]
    for _ in range(3):
        want.append((7 * want[-1] + 3) % V)
    c.expect(isinstance(out, list) and all(isinstance(t, int) for t in out), f"you returned {out!r}, expected a list of ints",
             "return the new token ids as Python ints (int(logits[0, -1].argmax()))")
    if out == [(7 * 1 + 3) % V] * 4 or (out and out[0] == (7 * 1 + 3) % V):
        c.fail(f"you generated {out}, expected {want}", "predict from the logits at the last position, logits[0, -1]")
    if out == [want[0]] * 4:
        c.fail(f"you generated {out}, expected {want}", "append each new token to the input before the next step")
    c.expect(out == want, f"you generated {out}, expected {want}", "")
    stop = c.call(toy_forward, [1, 2], 10, want[1])
    c.expect(stop == want[:2], f"with eos_id={want[1]} you generated {stop}, expected {want[:2]}",
             "stop right after producing eos_id (keep the eos token itself)")
    c.expect(c.call(toy_forward, [1, 2], 0, None) == [], "max_new_tokens=0 should give []", "")


def _pool_cases(d: Draw) -> list[Case]:
    B, T, C = d.int(3, 5), d.int(6, 9), d.int(5, 12)
    left = torch.stack([(torch.arange(T) >= T - d.int(1, T)).long() for _ in range(B)])
    return [Case("left padding, another batch and width", d.randn(B, T, C), left,
                 hint="weight each position by its mask value (sum of m_t h_t / sum of m_t), wherever the padding is"),
            Case("a bool attention_mask", d.randn(B, T, C), left.flip(-1).bool()),
            Case("bfloat16 hidden states", d.randn(B, T, C, dtype=torch.bfloat16), left.flip(-1)),
            Case("float64 hidden states", d.randn(B, T, C, dtype=torch.float64), left),
            Case("a row that is all padding", d.randn(B, T, C), torch.cat([left[:-1], torch.zeros_like(left[-1:])]),
                 hint="a row with no real token gives zeros, not NaN: divide by the count clamped at 1e-9 "
                      "(max(sum_t m_t, 1e-9)), as sentence-transformers does")]


@exercise("05.mean_pool", reference=mean_pool, cases=_pool_cases)
def check_mean_pool(c: Check) -> None:
    h = _randn(2, 5, 6)
    am = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    out = c.call(h, am)
    c.expect_tensor(out, shape=(2, 6), name="mean_pool(hidden, attention_mask)")
    c.diagnose(out, {
        "average only the real tokens: padding positions must not count": F.normalize(h.mean(1), dim=-1),
        "normalise each embedding to length 1 (F.normalize), so a dot product is a cosine": mean_pool(h, am, normalize=False),
    }, "your embeddings match a known mistake", rtol=1e-5, correct=mean_pool(h, am))
    c.close(out, mean_pool(h, am), "sentence embeddings differ", "sum(h * mask) / sum(mask), then divide by the L2 norm")
