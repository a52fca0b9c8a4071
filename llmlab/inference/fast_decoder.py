"""The same decoder, laid out for decoding speed (as gpt-fast's model): fused matmuls, few small ops.

Decoding batch 1 on a CPU, the weight matmuls are the floor (each token reads every weight once);
everything else is overhead, and with 30 layers of ~40 small tensor ops each, at a few microseconds
per op, the overhead alone is a third of a token's time. ``FastDecoder`` computes exactly what
``Decoder`` computes, with fewer, larger operations:

* q, k and v come from one matmul with the three weights stacked (``wqkv``), the SwiGLU's gate and
  up projections from another (``w13``): 4 matmuls per layer instead of 7;
* RoPE rotates q and k together, on the (H + Hkv) heads of the fused output, with a roll;
* activations stay 2-D (B*T, C) between attention blocks;
* the linear layers can be weight-only int8/int4 (``llmlab.quant.linear``), 4-8x fewer bytes read, or
  fp32 stored transposed (``TransposedLinear``), the layout a CPU BLAS reads fastest at batch 1.

``llmlab.inference.compiled_step`` compiles its decode step whole (the fused small ops are the rest
of the overhead).

Use it for inference only (no dropout, no gradients); it shares nothing with the ``Decoder`` it was
built from, so build it after any change to that model's weights.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from llmlab import validate
from llmlab.nn.kv_cache import KVCache
from llmlab.nn.layers import rms_norm, rope_cos_sin
from llmlab.nn.model import Decoder, DecoderBlock, DecoderConfig

LinearFactory = Callable[[torch.Tensor], nn.Module]


def dense_linear(weight: torch.Tensor) -> nn.Module:
    """A bias-free ``nn.Linear`` holding a copy of ``weight`` (N, K)."""
    validate.tensor("weight", weight, ndim=2, floating=True, finite=True)
    if weight.numel() == 0:
        raise ValueError(f"weight must have shape (N, K) with N, K >= 1, got {tuple(weight.shape)}")
    layer = nn.Linear(weight.shape[1], weight.shape[0], bias=False, device="meta")
    layer.weight = nn.Parameter(weight.detach().clone(), requires_grad=False)
    return layer


class TransposedLinear(nn.Module):
    """y = x W^T with W (N, K) stored transposed, (K, N) contiguous: x (..., K) -> (..., N).

    The same numbers as ``nn.Linear``, another layout: at batch 1 a CPU BLAS reads a (K, N) matrix
    against a row vector faster than an (N, K) one (1.3x measured on SmolLM2's weights, 2 cores:
    ``benchmarks/decode.py``'s "fp32 K-major" roofline): a layout chosen for the kernel, not for the
    reader, as the int4 kernel's packing is."""

    def __init__(self, weight_t: torch.Tensor):
        super().__init__()
        validate.tensor("weight_t", weight_t, ndim=2, floating=True, finite=True)
        if weight_t.numel() == 0:
            raise ValueError(f"weight_t must have shape (K, N) with K, N >= 1, got {tuple(weight_t.shape)}")
        self.register_buffer("weight_t", weight_t)
        self.in_features, self.out_features = weight_t.shape

    @classmethod
    def from_float(cls, weight: torch.Tensor) -> "TransposedLinear":
        """From an ``nn.Linear``-style weight (N, K) (copied)."""
        validate.tensor("weight", weight, ndim=2, floating=True, finite=True)
        if weight.numel() == 0:
            raise ValueError(f"weight must have shape (N, K) with N, K >= 1, got {tuple(weight.shape)}")
        return cls(weight.detach().T.contiguous())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        try:  # hot: no checks on success, errors explained after the fact
            return x @ self.weight_t
        except (RuntimeError, TypeError) as error:
            validate.explain_input("x", x, self.in_features, error, dtype=self.weight_t.dtype)
            raise


def _check_factory(name: str, linear) -> None:
    if not callable(linear):
        raise TypeError(f"{name} must be a function from a float weight (N, K) to a module (e.g. dense_linear, "
                        f"Int4WeightOnlyLinear.from_float), got {type(linear).__name__}")


def _check_dtype(dtype) -> None:
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}")


class FastBlock(nn.Module):
    def __init__(self, block, cfg, linear: LinearFactory, dtype: torch.dtype):
        super().__init__()
        if not isinstance(block, DecoderBlock):
            raise TypeError(f"block must be a DecoderBlock (one of a Decoder's layers), got {type(block).__name__}")
        if not isinstance(cfg, DecoderConfig):
            raise TypeError(f"cfg must be the Decoder's DecoderConfig, got {type(cfg).__name__}")
        _check_factory("linear", linear)
        _check_dtype(dtype)
        a, f = block.attention, block.feed_forward
        self.H, self.Hkv, self.D, self.eps = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim, cfg.norm_eps
        self.register_buffer("attention_norm", block.attention_norm.weight.detach().to(dtype, copy=True))
        self.register_buffer("ffn_norm", block.ffn_norm.weight.detach().to(dtype, copy=True))
        self.wqkv = linear(torch.cat([a.wq.weight, a.wk.weight, a.wv.weight]).to(dtype))  # ((H + 2 Hkv) D, C)
        self.wo = linear(a.wo.weight.to(dtype))
        self.w13 = linear(torch.cat([f.w1.weight, f.w3.weight]).to(dtype))  # (2 F, C)
        self.w2 = linear(f.w2.weight.to(dtype))

    def forward(self, x: torch.Tensor, B: int, cos, sin, mask, kv_cache) -> torch.Tensor:
        """x (B*T, C) -> (B*T, C)."""
        H, Hkv, D = self.H, self.Hkv, self.D
        h = rms_norm(x, self.attention_norm, self.eps)
        qkv = self.wqkv(h).view(B, -1, H + 2 * Hkv, D).transpose(1, 2)  # (B, H + 2 Hkv, T, D)
        qk = qkv[:, :H + Hkv]
        qk = qk * cos + qk.roll(D // 2, -1) * sin  # rotate_half(x) * sin, with sin's sign folded in
        k, v = kv_cache(qk[:, H:], qkv[:, H + Hkv:])
        out = F.scaled_dot_product_attention(qk[:, :H], k, v, attn_mask=mask, enable_gqa=Hkv != H)
        x = x + self.wo(out.transpose(1, 2).reshape(x.shape))
        gate, up = self.w13(rms_norm(x, self.ffn_norm, self.eps)).chunk(2, -1)
        return x + self.w2(F.silu(gate) * up)


class FastDecoder(nn.Module):
    """Inference-only copy of a ``Decoder``: ``forward(idx, cache, attention_mask, last_only)``, always
    with a ``KVCache``. ``linear`` makes each block's layers from a float weight (N, K): dense by
    default, or e.g. ``Int4WeightOnlyLinear.from_float``; ``head`` does the same for the LM head.
    ``dtype``: of the activations and the KV cache (default: the model's); torch's CPU int4 kernel
    wants bfloat16 activations, and giving it them saves two casts per matmul."""

    def __init__(self, model: Decoder, linear: LinearFactory = dense_linear, head: LinearFactory | None = None,
                 dtype: torch.dtype | None = None):
        super().__init__()
        if not isinstance(model, Decoder):
            raise TypeError(f"model must be an llmlab Decoder, got {type(model).__name__}")
        _check_factory("linear", linear)
        if head is not None:
            _check_factory("head", head)
        if dtype is not None:
            _check_dtype(dtype)
        self.cfg = model.cfg
        dtype = dtype or model.norm.weight.dtype
        with torch.no_grad():
            self.register_buffer("tok_embeddings", model.tok_embeddings.weight.detach().to(dtype, copy=True))
            self.layers = nn.ModuleList(FastBlock(b, self.cfg, linear, dtype) for b in model.layers)
            self.register_buffer("norm", model.norm.weight.detach().to(dtype, copy=True))
            self.output = (head or linear)(model.output.weight.to(dtype))

    @torch.no_grad()
    def forward(self, idx: torch.Tensor, cache: KVCache, attention_mask: torch.Tensor | None = None,
                last_only: bool = False) -> torch.Tensor:
        """idx (B, T) continuing the sequences in ``cache`` -> logits (B, T, V) ((B, 1, V) with ``last_only``)."""
        validate.flag("last_only", last_only)
        cfg = self.cfg
        validate.token_batch("idx", idx, cfg.vocab_size, cfg.max_seq_len)
        if not isinstance(cache, KVCache):
            raise TypeError(f"cache must be a KVCache (KVCache.for_model(fast_model, batch_size, max_len)), "
                            f"got {type(cache).__name__}")
        B, T = idx.shape
        positions, mask = cache.begin(T, attention_mask, batch_size=B, max_positions=cfg.max_seq_len)
        x = self.blocks(idx, positions, mask, cache.update)
        cache.end(T)
        x = x.view(B, T, -1)
        if last_only:
            x = x[:, -1:]
        return self.output(rms_norm(x, self.norm, cfg.norm_eps))

    def blocks(self, idx: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor | None,
               update: Callable[[int, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        """Embed idx (B, T) and run every block: -> (B*T, C). ``positions`` (B, T): RoPE positions; ``mask``:
        broadcastable to (B, H, T, S), True = attend (None: every key); ``update(layer, k, v)`` stores layer's new
        keys/values (B, Hkv, T, D) and returns all of them (B, Hkv, S, D). No checks: callers check."""
        cfg = self.cfg
        B, T = idx.shape
        cos, sin = rope_cos_sin(positions, cfg.head_dim, cfg.rope_theta, dtype=self.norm.dtype)  # (B, T, D/2)
        # rotate_half(x) = roll(x, D/2) with its first half negated: fold that sign into sin
        cos, sin = torch.cat([cos, cos], -1)[:, None], torch.cat([-sin, sin], -1)[:, None]  # (B, 1, T, D)
        x = F.embedding(idx, self.tok_embeddings).view(B * T, -1)
        for i, layer in enumerate(self.layers):
            x = layer(x, B, cos, sin, mask, lambda k, v, i=i: update(i, k, v))
        return x
