"""Two transformers built from llmlab's own layers: a Llama-style decoder (runs SmolLM2-135M) and a
BERT-style encoder (runs all-MiniLM-L6-v2).

Decoder (pre-norm; the residual stream x is never normalised in place):

    x = embed(idx)                                   (B, T) -> (B, T, C)
    for each block:
        x = x + attention(RMSNorm(x), causal mask, RoPE)     grouped-query attention
        x = x + SwiGLU(RMSNorm(x))
    logits = RMSNorm(x) @ E^T                        (B, T, V), the LM head tied to the embedding E

Encoder (post-norm, as BERT):

    x = LayerNorm(word[ids] + position[0..T-1] + token_type[0])
    for each block:
        x = LayerNorm(x + attention(x, padding mask))        bidirectional, with biases
        x = LayerNorm(x + GELU-MLP(x))
    sentence embedding = normalise(mean of x over the real tokens)   (llmlab.models.minilm.mean_pool)

Shapes: B batch, T positions, C width, V vocabulary, H heads, D = C / H head dim.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import torch.nn as nn

from llmlab import validate
from llmlab.nn.attention import MultiHeadAttention, causal_mask, padded_positions_unchecked, padding_mask
from llmlab.nn.kv_cache import KVCache
from llmlab.nn.layers import GELUMLP, LayerNorm, RMSNorm, SwiGLU, rope_cos_sin, rotate_half


def _check_attention_mask(attention_mask: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    validate.zero_one_mask("attention_mask", attention_mask)
    if attention_mask.shape != idx.shape:
        raise ValueError(
            f"attention_mask must have the shape of the ids {tuple(idx.shape)}, got {tuple(attention_mask.shape)}"
        )
    mask = attention_mask.to(device=idx.device).bool()
    empty = (~mask.any(1)).nonzero().flatten().tolist()
    if empty:
        raise ValueError(f"attention_mask rows {empty} have no real token (all padding)")
    return mask


def _check_config(cfg, kind: type):
    if not isinstance(cfg, kind):
        raise TypeError(f"cfg must be a {kind.__name__}, got {type(cfg).__name__}")
    return cfg


# ------------------------------------------------------------------------------------------ decoder


@dataclass
class DecoderConfig:
    """Hyper-parameters of a Llama-style decoder. The defaults are SmolLM2-135M's."""

    vocab_size: int = 49152
    dim: int = 576  # C, the width of the residual stream
    n_layers: int = 30
    n_heads: int = 9
    n_kv_heads: int = 3  # < n_heads: grouped-query attention
    hidden_dim: int = 1536  # F, SwiGLU's hidden width
    rope_theta: float = 100000.0  # RoPE base
    norm_eps: float = 1e-5
    max_seq_len: int = 8192
    tie_embeddings: bool = True
    dropout: float = 0.0  # on the embeddings and on each sub-layer's output, in training mode only

    def __post_init__(self):
        for name in ("vocab_size", "dim", "n_layers", "n_heads", "n_kv_heads", "hidden_dim", "max_seq_len"):
            validate.size(name, getattr(self, name))
        self.dropout = validate.probability("dropout", self.dropout, allow_one=False)
        self.rope_theta = validate.real("rope_theta", self.rope_theta, above=1.0)
        self.norm_eps = validate.positive_float("norm_eps", self.norm_eps)
        validate.flag("tie_embeddings", self.tie_embeddings)
        if self.dim % self.n_heads:
            raise ValueError(f"dim {self.dim} is not divisible by n_heads {self.n_heads}")
        if self.n_heads % self.n_kv_heads:
            raise ValueError(f"n_heads {self.n_heads} is not a multiple of n_kv_heads {self.n_kv_heads}")
        if (self.dim // self.n_heads) % 2:
            raise ValueError(f"head dim {self.dim // self.n_heads} must be even for RoPE")

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads


class DecoderBlock(nn.Module):
    """x + attention(norm(x)), then x + SwiGLU(norm(x)); x (B, T, C) -> (B, T, C).

    With ``cfg.dropout`` > 0, each sub-layer's output is dropped out before it joins the residual
    stream (GPT-2's "residual dropout"), in training mode only.
    """

    def __init__(self, cfg: DecoderConfig):
        super().__init__()
        _check_config(cfg, DecoderConfig)
        self.attention_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.attention = MultiHeadAttention(cfg.dim, cfg.n_heads, cfg.n_kv_heads, bias=False)
        self.ffn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.feed_forward = SwiGLU(cfg.dim, cfg.hidden_dim)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, rotary, kv_cache=None, need_weights: bool = False):
        """x (B, T, C) -> (B, T, C); with ``need_weights`` also the attention weights (B, H, T, S)."""
        attended = self.attention(self.attention_norm(x), mask, rotary, kv_cache, need_weights=need_weights)
        attended, weights = attended if need_weights else (attended, None)
        x = x + self.dropout(attended)
        x = x + self.dropout(self.feed_forward(self.ffn_norm(x)))
        return (x, weights) if need_weights else x


def rope_rotary(positions: torch.Tensor, head_dim: int, theta: float, dtype: torch.dtype):
    """The function (q, k) -> (q, k) that applies RoPE at ``positions`` ((T,) or (B, T)) to q (B, H, T, D) and
    k (B, Hkv, T, D): what each attention layer of a ``Decoder`` receives as ``rotary``."""
    theta = validate.real("theta", theta, above=1.0)  # here, so that an error names theta, not rope_cos_sin's base
    if not isinstance(positions, torch.Tensor):
        raise TypeError(f"positions must be a torch.Tensor of shape (T,) or (B, T), got {type(positions).__name__}")
    cos, sin = rope_cos_sin(positions, head_dim, theta, dtype=dtype)
    if cos.ndim == 3:
        cos, sin = cos[:, None], sin[:, None]  # (B, 1, T, D/2): one table per row, shared by the heads
    # apply_rope_half, with its tables widened once here rather than twice in each of the L layers
    cos, sin = torch.cat([cos, cos], -1), torch.cat([sin, sin], -1)

    def rotary(q: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin

    return rotary


class Decoder(nn.Module):
    """A Llama-style causal language model (SmolLM2 when built by ``llmlab.models.load_smollm2``).

    Module names follow Meta's Llama code: ``tok_embeddings``, ``layers[i].attention`` (wq, wk, wv,
    wo), ``layers[i].feed_forward`` (w1, w2, w3), ``norm``, ``output``. With ``tie_embeddings`` the
    LM head ``output.weight`` *is* ``tok_embeddings.weight`` (one Parameter).

    RoPE uses the rotate-half convention (``llmlab.nn.layers.apply_rope_half``), so q/k weights must be in
    transformers' order (the loader un-permutes GGUF's).
    """

    def __init__(self, cfg: DecoderConfig):
        super().__init__()
        self.cfg = _check_config(cfg, DecoderConfig)
        self.tok_embeddings = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.dropout = nn.Dropout(cfg.dropout)
        self.layers = nn.ModuleList(DecoderBlock(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.output = nn.Linear(cfg.dim, cfg.vocab_size, bias=False)
        self.tie_weights()
        self.init_weights()

    @torch.no_grad()
    def init_weights(self, std: float = 0.02) -> None:
        """GPT-2's initialisation, for training from scratch: every matrix ~ N(0, std²), and the two
        projections that write into the residual stream (``wo``, ``w2``) scaled by 1/sqrt(2 L), so
        the stream's variance does not grow with depth. Without it the tied embedding's default
        N(0, 1) makes the first logits huge and the first loss ~3x ln V instead of ln V."""
        std = validate.positive_float("std", std)
        for name, p in self.named_parameters():
            if p.ndim == 2:
                scale = (2 * self.cfg.n_layers) ** -0.5 if name.endswith(("wo.weight", "w2.weight")) else 1.0
                p.normal_(0.0, std * scale)

    def tie_weights(self) -> None:
        """Make the LM head share the embedding matrix (when ``cfg.tie_embeddings``); call again after
        replacing parameters (e.g. ``load_state_dict(..., assign=True)``)."""
        if self.cfg.tie_embeddings:
            self.output.weight = self.tok_embeddings.weight

    def forward(self, idx: torch.Tensor, attention_mask: torch.Tensor | None = None, cache: KVCache | None = None,
                last_only: bool = False, need_weights: bool = False):
        """idx (B, T) token ids -> logits (B, T, V), float; (B, 1, V) with ``last_only``.

        ``attention_mask`` (B, T), 1 = real token, 0 = padding, for a batch of *left*-padded prompts
        (real tokens at the end, so every sequence's next token is at position T-1). A row's RoPE
        positions count its real tokens only (0 at its first real token, as transformers does), so
        each row is computed as if it were alone. Padded keys are masked; a padded query would then
        see no key at all (NaN in the fused kernel), so each position may always see itself. The
        logits at padded positions are meaningless; ignore them.

        ``cache``: a ``KVCache``; the T tokens continue the sequences it holds (their keys and values
        are appended), so a decode step is ``model(next_ids (B, 1), cache=cache)``.
        ``last_only`` computes the LM head for the last position only (prefill needs no more).
        ``need_weights`` returns (logits, weights): weights (L, B, H, T, S), every layer's attention
        weights, computed by the explicit (unfused) attention, for plotting.
        """
        validate.flag("last_only", last_only)
        validate.flag("need_weights", need_weights)
        cfg = self.cfg
        validate.token_batch("idx", idx, cfg.vocab_size, cfg.max_seq_len)
        B, T = idx.shape
        if attention_mask is not None:
            keep = _check_attention_mask(attention_mask, idx)
        if cache is not None:
            positions, mask = cache.begin(T, attention_mask, batch_size=B, max_positions=cfg.max_seq_len)
        elif attention_mask is None:
            positions, mask = torch.arange(T, device=idx.device), causal_mask(T, device=idx.device)  # (T,), (T, T)
        else:
            positions = padded_positions_unchecked(keep)  # (B, T)
            mask = causal_mask(T, device=idx.device) & padding_mask(keep)  # (B, 1, T, T)
            mask = mask | torch.eye(T, dtype=torch.bool, device=idx.device)
        rotary = rope_rotary(positions, cfg.head_dim, cfg.rope_theta, self.norm.weight.dtype)
        x = self.dropout(self.tok_embeddings(idx))
        weights = []
        for i, layer in enumerate(self.layers):
            kv_cache = None if cache is None else functools.partial(cache.update, i)
            if need_weights:
                x, w = layer(x, mask, rotary, kv_cache, need_weights=True)
                weights.append(w)
            else:
                x = layer(x, mask, rotary, kv_cache)
        if cache is not None:
            cache.end(T)
        if last_only:
            x = x[:, -1:]
        logits = self.output(self.norm(x))
        return (logits, torch.stack(weights)) if need_weights else logits


# ------------------------------------------------------------------------------------------ encoder


@dataclass
class EncoderConfig:
    """Hyper-parameters of a BERT-style encoder. The defaults are all-MiniLM-L6-v2's."""

    vocab_size: int = 30522
    dim: int = 384
    n_layers: int = 6
    n_heads: int = 12
    hidden_dim: int = 1536
    max_seq_len: int = 512  # learned position embeddings: a hard limit
    type_vocab_size: int = 2
    norm_eps: float = 1e-12

    def __post_init__(self):
        for name in ("vocab_size", "dim", "n_layers", "n_heads", "hidden_dim", "max_seq_len", "type_vocab_size"):
            validate.size(name, getattr(self, name))
        self.norm_eps = validate.positive_float("norm_eps", self.norm_eps)
        if self.dim % self.n_heads:
            raise ValueError(f"dim {self.dim} is not divisible by n_heads {self.n_heads}")


class EncoderBlock(nn.Module):
    """Post-norm: x = LN(x + attention(x)); x = LN(x + MLP(x)); x (B, T, C) -> (B, T, C)."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        _check_config(cfg, EncoderConfig)
        self.attention = MultiHeadAttention(cfg.dim, cfg.n_heads, bias=True)
        self.attention_norm = LayerNorm(cfg.dim, cfg.norm_eps)
        self.feed_forward = GELUMLP(cfg.dim, cfg.hidden_dim)
        self.ffn_norm = LayerNorm(cfg.dim, cfg.norm_eps)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        x = self.attention_norm(x + self.attention(x, mask))
        return self.ffn_norm(x + self.feed_forward(x))


class Encoder(nn.Module):
    """A BERT-style bidirectional encoder (all-MiniLM-L6-v2 when built by ``llmlab.models.load_minilm``)."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.cfg = _check_config(cfg, EncoderConfig)
        self.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.position_embeddings = nn.Embedding(cfg.max_seq_len, cfg.dim)
        self.token_type_embeddings = nn.Embedding(cfg.type_vocab_size, cfg.dim)
        self.embedding_norm = LayerNorm(cfg.dim, cfg.norm_eps)
        self.layers = nn.ModuleList(EncoderBlock(cfg) for _ in range(cfg.n_layers))

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """input_ids (B, T), attention_mask (B, T) 1 = real / 0 = padding (right padding, as BERT's
        tokenizers do) -> hidden states (B, T, C). Token types default to 0 (one segment).

        Padded keys are masked; padded queries still attend to the real tokens, so every row of the
        mask has a key and their (unused) outputs stay finite.
        """
        cfg = self.cfg
        validate.token_batch("input_ids", input_ids, cfg.vocab_size, cfg.max_seq_len)
        B, T = input_ids.shape
        mask = None
        if attention_mask is not None:
            mask = padding_mask(_check_attention_mask(attention_mask, input_ids))
            validate.zero_one_mask("attention_mask", attention_mask)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        else:
            validate.token_batch("token_type_ids", token_type_ids, cfg.type_vocab_size, cfg.max_seq_len)
            if token_type_ids.shape != input_ids.shape:
                raise ValueError(
                    f"token_type_ids must have shape {tuple(input_ids.shape)}, got {tuple(token_type_ids.shape)}"
                )
        positions = torch.arange(T, device=input_ids.device)
        x = self.word_embeddings(input_ids) + self.position_embeddings(positions)
        x = x + self.token_type_embeddings(token_type_ids)
        x = self.embedding_norm(x)
        for layer in self.layers:
            x = layer(x, mask)
        return x
