"""Which inputs drive a prediction: integrated gradients, occlusion and attention rollout, and the plumbing
that lets them run on MiniLM's and SmolLM2's token embeddings.

* **Integrated gradients** (Sundararajan et al., 2017) average the gradient along the straight path from a
  baseline x' to the input x and multiply by (x - x'):

      IG(x) = (x - x') * integral_0^1 grad f(x' + a (x - x')) da

  The integral is computed with ``steps``-point Gauss-Legendre quadrature, Captum's default method: nodes and
  weights of ``numpy.polynomial.legendre.leggauss(steps)`` mapped from [-1, 1] to [0, 1] (a = (1 + t) / 2,
  weight w / 2). *Completeness*: the attributions sum to f(x) - f(x') (up to the quadrature error).
* **Occlusion** replaces one token's row by the baseline's and records how much f drops.
* **Attention rollout** (Abnar & Zuidema, 2020) follows attention through the layers: average the heads, add
  the identity for the residual connection, renormalise the rows, and multiply the layers' matrices.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Callable

import numpy as np
import torch
import torch.nn as nn

from llmlab import validate
from llmlab.nn.attention import causal_mask, padding_mask


def _check_f(f) -> None:
    if not callable(f):
        raise TypeError(f"f must be a function (or module) mapping a batch (N, ...) to scores (N,), "
                        f"got {type(f).__name__}")


def _scores(f, batch: torch.Tensor) -> torch.Tensor:
    out = f(batch)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (batch.shape[0],):
        raise ValueError(f"f must return one score per input, shape ({batch.shape[0]},), "
                         f"got {tuple(getattr(out, 'shape', ())) or type(out).__name__}")
    return out


def gauss_legendre(steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(alphas, weights), float64 (steps,): Gauss-Legendre nodes and weights on [0, 1] (Captum's 'gausslegendre')."""
    steps = validate.size("steps", steps)
    t, w = np.polynomial.legendre.leggauss(steps)
    return torch.from_numpy(0.5 * (1 + t)), torch.from_numpy(0.5 * w)


def integrated_gradients(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, baseline: torch.Tensor,
                         steps: int = 32) -> torch.Tensor:
    """Integrated gradients of the scalar score ``f`` at x against ``baseline``, Gauss-Legendre quadrature.

    x, baseline: one input, the same shape S (e.g. (T, C) token embeddings), floating. ``f`` maps a batch
    (N, *S) to scores (N,). Returns (x - baseline) * sum_k w_k grad f(baseline + a_k (x - baseline)), shape S,
    in x's dtype. Gradients are switched on inside, whatever the caller's setting.
    """
    _check_f(f)
    validate.tensor("x", x, floating=True, finite=True)
    validate.tensor("baseline", baseline, floating=True, finite=True)
    if baseline.shape != x.shape:
        raise ValueError(f"baseline must have x's shape {tuple(x.shape)}, got {tuple(baseline.shape)}")
    alphas, weights = gauss_legendre(steps)
    view = (-1,) + (1,) * x.ndim
    alphas, weights = alphas.to(x.dtype).view(view), weights.to(x.dtype).view(view)
    diff = x - baseline
    path = (baseline + alphas * diff).detach()  # (steps, *S)
    with torch.enable_grad():
        path.requires_grad_(True)
        (grads,) = torch.autograd.grad(_scores(f, path).sum(), path)
    return diff * (weights * grads).sum(0)


def occlusion(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, baseline: torch.Tensor) -> torch.Tensor:
    """Per-token occlusion: out[t] = f(x) - f(x with row t replaced by baseline[t]).

    x, baseline (T, D); ``f`` maps (N, T, D) to (N,). One batch of T + 1 inputs. Returns (T,) in x's dtype.
    """
    _check_f(f)
    validate.tensor("x", x, ndim=2, floating=True, finite=True)
    validate.tensor("baseline", baseline, floating=True, finite=True)
    if baseline.shape != x.shape:
        raise ValueError(f"baseline must have x's shape {tuple(x.shape)}, got {tuple(baseline.shape)}")
    T = x.shape[0]
    one = torch.eye(T, dtype=torch.bool, device=x.device)[:, :, None]  # (T, T, 1): row t of copy t
    batch = torch.cat([x[None], torch.where(one, baseline, x)])  # (T + 1, T, D)
    with torch.no_grad():
        scores = _scores(f, batch)
    return (scores[0] - scores[1:]).to(x.dtype)


def attention_rollout(attn: torch.Tensor) -> torch.Tensor:
    """Attention rollout: attn (L, H, T, T), each layer's weights (rows: queries, summing to 1 or 0) ->
    R (T, T), R[i, j] = how much position i's final state draws on input token j.

    A_l = mean over heads + I, rows renormalised to 1; R = A_{L-1} @ ... @ A_1 @ A_0 (the last layer on the
    left). Every row of R sums to 1.
    """
    validate.tensor("attn", attn, ndim=4, floating=True, finite=True)
    if attn.shape[-1] != attn.shape[-2] or attn.shape[0] == 0 or attn.shape[1] == 0:
        raise ValueError(f"attn must have shape (L, H, T, T) with L, H >= 1, got {tuple(attn.shape)}")
    eye = torch.eye(attn.shape[-1], dtype=attn.dtype, device=attn.device)
    A = attn.mean(1) + eye
    A = A / A.sum(-1, keepdim=True)
    R = A[0]
    for layer in A[1:]:
        R = layer @ R
    return R


# ------------------------------------------------------------------------------- models run from embeddings


def encoder_forward(encoder, word_embeddings: torch.Tensor, attention_mask: torch.Tensor | None = None,
                    need_weights: bool = False):
    """MiniLM (an llmlab ``Encoder``) run from its word embeddings (B, T, C) instead of token ids: positions,
    token types and every layer as ``Encoder.forward``. Returns hidden (B, T, C), and with ``need_weights``
    also the attention weights (L, B, H, T, T)."""
    from llmlab.nn.model import Encoder

    if not isinstance(encoder, Encoder):
        raise TypeError(f"encoder must be an llmlab Encoder (load_minilm()), got {type(encoder).__name__}")
    validate.tensor("word_embeddings", word_embeddings, ndim=3, floating=True)
    validate.flag("need_weights", need_weights)
    B, T, C = word_embeddings.shape
    if B == 0 or C != encoder.cfg.dim or not 1 <= T <= encoder.cfg.max_seq_len:
        raise ValueError(f"word_embeddings must be (B, T, {encoder.cfg.dim}) with T <= {encoder.cfg.max_seq_len}, "
                         f"got {tuple(word_embeddings.shape)}")
    mask = None
    if attention_mask is not None:
        validate.zero_one_mask("attention_mask", attention_mask)
        if attention_mask.shape != (B, T):
            raise ValueError(f"attention_mask must be (B, T) = {(B, T)}, got {tuple(attention_mask.shape)}")
        mask = padding_mask(attention_mask)
    positions = torch.arange(T, device=word_embeddings.device)
    x = word_embeddings + encoder.position_embeddings(positions) + encoder.token_type_embeddings.weight[0]
    x = encoder.embedding_norm(x)
    weights = []
    for layer in encoder.layers:
        attended, w = layer.attention(x, mask, need_weights=True) if need_weights else (layer.attention(x, mask), None)
        weights.append(w)
        x = layer.attention_norm(x + attended)
        x = layer.ffn_norm(x + layer.feed_forward(x))
    return (x, torch.stack(weights)) if need_weights else x


class ProbeScore(nn.Module):
    """The topic probe of 07b as a function of one text's MiniLM word embeddings: E (N, T, C) -> (N,), the
    log-probability of class ``target`` under softmax(embedding W + b), the embedding being MiniLM's mean-pooled,
    L2-normalised last hidden state (no padding: every row is the same text)."""

    def __init__(self, encoder, W: torch.Tensor, b: torch.Tensor, target: int):
        super().__init__()
        from llmlab.nn.model import Encoder

        if not isinstance(encoder, Encoder):
            raise TypeError(f"encoder must be an llmlab Encoder (load_minilm()), got {type(encoder).__name__}")
        validate.tensor("W", W, ndim=2, floating=True, finite=True)
        validate.tensor("b", b, ndim=1, floating=True, finite=True)
        if W.shape[0] != encoder.cfg.dim or W.shape[1] < 1:
            raise ValueError(f"W must be (D, K) with D = {encoder.cfg.dim}, the encoder's width, got {tuple(W.shape)}")
        if b.shape != (W.shape[1],):
            raise ValueError(f"b must be (K,) = ({W.shape[1]},), got {tuple(b.shape)}")
        self.encoder, self.target = encoder, validate.integer("target", target, 0, W.shape[1] - 1)
        self.register_buffer("W", W.detach().clone())
        self.register_buffer("b", b.detach().clone())

    def forward(self, E: torch.Tensor) -> torch.Tensor:
        hidden = encoder_forward(self.encoder, E)
        pooled = torch.nn.functional.normalize(hidden.mean(1), dim=-1)
        return torch.log_softmax(pooled @ self.W.to(pooled.dtype) + self.b.to(pooled.dtype), -1)[:, self.target]


def decoder_last_logits(model, x: torch.Tensor, need_weights: bool = False):
    """SmolLM2 (an llmlab ``Decoder``) run from input embeddings x (B, T, C), no padding: the logits of the
    last position (B, V), and with ``need_weights`` every layer's attention weights (L, B, H, T, T)."""
    from llmlab.nn.model import Decoder, rope_rotary

    if not isinstance(model, Decoder):
        raise TypeError(f"model must be an llmlab Decoder (load_smollm2()), got {type(model).__name__}")
    validate.tensor("x", x, ndim=3, floating=True)
    validate.flag("need_weights", need_weights)
    cfg = model.cfg
    if x.shape[0] == 0 or x.shape[-1] != cfg.dim or not 1 <= x.shape[1] <= cfg.max_seq_len:
        raise ValueError(f"x must be (B, T, {cfg.dim}) with 1 <= T <= {cfg.max_seq_len}, got {tuple(x.shape)}")
    T = x.shape[1]
    rotary = rope_rotary(torch.arange(T, device=x.device), cfg.head_dim, cfg.rope_theta, model.norm.weight.dtype)
    mask = causal_mask(T, device=x.device)
    weights = []
    for layer in model.layers:
        if need_weights:
            x, w = layer(x, mask, rotary, need_weights=True)
            weights.append(w)
        else:
            x = layer(x, mask, rotary)
    logits = model.output(model.norm(x[:, -1]))
    return (logits, torch.stack(weights)) if need_weights else logits


class ZeroShotScore(nn.Module):
    """07b's zero-shot classifier as a function of the text's SmolLM2 input embeddings: E (N, T, C) -> (N,),
    log p(label token | prefix + text + suffix) at the last position (the prefix and suffix fixed token ids)."""

    def __init__(self, model, prefix_ids: Sequence[int], suffix_ids: Sequence[int], label_id: int):
        super().__init__()
        from llmlab.nn.model import Decoder

        if not isinstance(model, Decoder):
            raise TypeError(f"model must be an llmlab Decoder (load_smollm2()), got {type(model).__name__}")
        vocab = model.cfg.vocab_size
        self.model = model
        self.label_id = validate.integer("label_id", label_id, 0, vocab - 1)
        emb = model.tok_embeddings.weight
        self.register_buffer("prefix", emb[torch.tensor(validate.token_ids("prefix_ids", prefix_ids, vocab))].detach())
        self.register_buffer("suffix", emb[torch.tensor(validate.token_ids("suffix_ids", suffix_ids, vocab))].detach())

    def forward(self, E: torch.Tensor) -> torch.Tensor:
        N = E.shape[0]
        x = torch.cat([self.prefix.expand(N, -1, -1).to(E.dtype), E, self.suffix.expand(N, -1, -1).to(E.dtype)], 1)
        return torch.log_softmax(decoder_last_logits(self.model, x).float(), -1)[:, self.label_id]


def byte_groups(pieces: Sequence[bytes]) -> list[tuple[str, list[int]]]:
    """Group consecutive byte-level tokens into printable text: [(text, [token indices])], a group closing as
    soon as its bytes decode as UTF-8 (a Chinese character split over 2-3 byte tokens becomes one group)."""
    if isinstance(pieces, (bytes, str)) or not isinstance(pieces, Sequence):
        raise TypeError(f"pieces must be a list of bytes (one per token), got {type(pieces).__name__}")
    if not all(isinstance(p, bytes) for p in pieces):
        raise TypeError("pieces must hold bytes only")
    groups, buf, idx = [], b"", []
    for i, p in enumerate(pieces):
        buf, idx = buf + p, idx + [i]
        try:
            text = buf.decode("utf-8")
        except UnicodeDecodeError:
            continue
        groups.append((text, idx))
        buf, idx = b"", []
    if idx:
        groups.append((buf.decode("utf-8", errors="replace"), idx))
    return groups
