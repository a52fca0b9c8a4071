"""An inference engine made of parts you can swap: the course's capstone assembles it from your own functions.

The engine runs a ``Decoder`` (SmolLM2) one batch row at a time, with everything that makes decoding fast
and small passed in as a plain function (``Parts``), each defaulting to llmlab's reference:

    prefill and decode, per layer:
        q, k, v = split(wqkv(rms_norm(x)))           ``parts.linear`` built every weight (dense, int8, int4, ...)
        q, k    = rope(q, k)                          at the positions start .. start+T-1
        K, V    = parts.write_kv(cache_k, cache_v, k, v, start)      the KV cache, written in place
        out_t   = parts.cached_attention(q_t, K[..t], V[..t])        one query at a time: a prompt of T
                                                                     tokens is T decode steps' attention
        x       = x + wo(out);  x = x + w2(silu(w1 h) * w3 h)
    the next token:
        greedy: argmax;  sampling: parts.repetition_penalty -> parts.top_k_filter -> parts.top_p_filter
        (transformers' order) -> softmax(z / temperature) -> torch.multinomial with the seed's generator
    speculative (greedy): parts.prompt_lookup drafts gamma tokens, one forward of gamma + 1 tokens checks
        them, the longest agreeing prefix is kept and the cache rolls back past the rest

``parts.weight`` transforms every block weight before ``parts.linear`` builds it: pruning is
``weight=lambda w: w * prune_mask(w, 0.5)``. With the default parts the engine's greedy tokens are
``generate(model, ids, n)``'s, and with a seed its sampled tokens are ``generate(model, ids, n, sampling)``'s.

Shapes: B batch (1 here), T new tokens, S cached slots, H query heads, Hkv key/value heads, D head dim,
C width, V vocabulary.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from llmlab import validate
from llmlab.inference import generation, speculative
from llmlab.inference.fast_decoder import dense_linear
from llmlab.nn import kv_cache
from llmlab.nn.attention import repeat_kv
from llmlab.nn.layers import rms_norm, rope_cos_sin, rotate_half
from llmlab.nn.model import Decoder


def cached_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """One decode step of grouped-query attention: q (B, H, 1, D) the new token's queries, k, v (B, Hkv, S, D)
    every cached key and value (the new token's included) -> (B, H, 1, D) = softmax(q K^T / sqrt(D)) V, query
    head h reading key/value head h // (H / Hkv)."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        validate.tensor(name, t, ndim=4, floating=True)
    if q.shape[2] != 1:
        raise ValueError(f"q must hold one query per head, shape (B, H, 1, D), got {tuple(q.shape)}")
    if k.shape != v.shape or k.shape[0] != q.shape[0] or k.shape[3] != q.shape[3] or q.shape[1] % k.shape[1]:
        raise ValueError(f"k and v must be (B, Hkv, S, D) with q's B and D and Hkv dividing H: q {tuple(q.shape)}, "
                         f"k {tuple(k.shape)}, v {tuple(v.shape)}")
    return _cached_attention(q, k, v)


def _cached_attention(q, k, v):
    rep = q.shape[1] // k.shape[1]
    k, v = repeat_kv(k, rep), repeat_kv(v, rep)
    return torch.softmax((q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5, dim=-1) @ v


def _keep(w: torch.Tensor) -> torch.Tensor:
    """The default ``Parts.weight``: every weight as it is."""
    return w


@dataclass(frozen=True)
class Parts:
    """The functions an ``Engine`` runs, each with the signature of the course's exercise of the same name."""

    write_kv: Callable = kv_cache.write_kv                       # (k_cache, v_cache, k, v, start) -> (K, V)
    cached_attention: Callable = cached_attention                # (q (B,H,1,D), K, V) -> (B, H, 1, D)
    top_k_filter: Callable = generation.top_k_filter             # (logits, k) -> logits
    top_p_filter: Callable = generation.top_p_filter             # (logits, p) -> logits
    repetition_penalty: Callable = generation.repetition_penalty  # (logits, previous, penalty) -> logits
    prompt_lookup: Callable = speculative.prompt_lookup          # (tokens, gamma, max_ngram) -> draft
    weight: Callable = _keep                                     # block weight (N, K) -> weight (N, K)
    linear: Callable = dense_linear                              # weight (N, K) -> module x (.., K) -> (.., N)
    head: Callable | None = None                                 # the LM head's linear; None: ``linear``

    def __post_init__(self):
        for f in dataclasses.fields(self):
            if not callable(getattr(self, f.name)) and not (f.name == "head" and self.head is None):
                raise TypeError(f"{f.name} must be a function, got {type(getattr(self, f.name)).__name__}")


class _Block(nn.Module):
    """One decoder block's weights, laid out as ``FastDecoder``'s (q, k, v stacked; SwiGLU's w1 and w3 stacked)."""

    def __init__(self, block, parts: Parts):
        super().__init__()
        a, f = block.attention, block.feed_forward
        self.attention_norm = nn.Parameter(block.attention_norm.weight.detach().clone(), requires_grad=False)
        self.ffn_norm = nn.Parameter(block.ffn_norm.weight.detach().clone(), requires_grad=False)
        w = lambda *ws: parts.linear(torch.cat([parts.weight(x.detach()) for x in ws]))  # noqa: E731
        self.wqkv, self.wo = w(a.wq.weight, a.wk.weight, a.wv.weight), w(a.wo.weight)
        self.w13, self.w2 = w(f.w1.weight, f.w3.weight), w(f.w2.weight)


class Engine(nn.Module):
    """SmolLM2 (any llmlab ``Decoder``) decoded with ``parts``: ``generate`` (greedy or sampled),
    ``speculative_generate`` (prompt lookup, greedy) and ``tokens_per_s``. Inference only: it copies the
    model's weights when built, so build it again after changing them."""

    def __init__(self, model: Decoder, parts: Parts | None = None, max_len: int = 1024):
        super().__init__()
        if not isinstance(model, Decoder):
            raise TypeError(f"model must be an llmlab Decoder (load_smollm2()), got {type(model).__name__}")
        parts = Parts() if parts is None else parts
        if not isinstance(parts, Parts):
            raise TypeError(f"parts must be a Parts, got {type(parts).__name__}")
        self.cfg, self.parts = model.cfg, parts
        self.max_len = validate.integer("max_len", max_len, 1, model.cfg.max_seq_len)
        with torch.no_grad():
            self.tok_embeddings = nn.Parameter(model.tok_embeddings.weight.detach().clone(), requires_grad=False)
            self.layers = nn.ModuleList(_Block(b, parts) for b in model.layers)
            self.norm = nn.Parameter(model.norm.weight.detach().clone(), requires_grad=False)
            # the LM head is not pruned (``weight``): llama.cpp and the pruning papers leave it whole
            self.output = (parts.head or parts.linear)(model.output.weight.detach())
        cfg, device, dtype = self.cfg, self.norm.device, self.norm.dtype
        shape = (cfg.n_layers, 1, cfg.n_kv_heads, self.max_len, cfg.head_dim)
        self.k_cache = torch.zeros(shape, dtype=dtype, device=device)
        self.v_cache = torch.zeros(shape, dtype=dtype, device=device)
        self.length = 0  # filled slots of the cache

    @torch.no_grad()
    def forward(self, ids: list[int]) -> torch.Tensor:
        """The T tokens ``ids`` (a list of ids) continue the cached sequence -> logits (T, V), float32."""
        ids = validate.token_ids("ids", ids, self.cfg.vocab_size)
        cfg, T, start = self.cfg, len(ids), self.length
        if start + T > self.max_len:
            raise ValueError(f"{start} cached + {T} new tokens exceed the engine's max_len of {self.max_len}")
        H, Hkv, D = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim
        x = F.embedding(torch.tensor([ids], device=self.norm.device), self.tok_embeddings)  # (1, T, C)
        cos, sin = rope_cos_sin(torch.arange(start, start + T, device=x.device), D, cfg.rope_theta, x.dtype)
        cos, sin = torch.cat([cos, cos], -1), torch.cat([sin, sin], -1)  # (T, D): rotate-half RoPE
        for i, layer in enumerate(self.layers):
            qkv = layer.wqkv(rms_norm(x, layer.attention_norm, cfg.norm_eps))
            q, k, v = qkv.view(1, T, H + 2 * Hkv, D).transpose(1, 2).split([H, Hkv, Hkv], dim=1)
            q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
            K, V = self.parts.write_kv(self.k_cache[i], self.v_cache[i], k, v, start)
            # query t sees the keys 0 .. start+t: the cache makes a prompt's attention T decode steps
            out = torch.cat([self.parts.cached_attention(q[:, :, t:t + 1], K[:, :, :start + t + 1],
                                                         V[:, :, :start + t + 1]) for t in range(T)], dim=2)
            x = x + layer.wo(out.transpose(1, 2).reshape(1, T, H * D))
            gate, up = layer.w13(rms_norm(x, layer.ffn_norm, cfg.norm_eps)).chunk(2, -1)
            x = x + layer.w2(F.silu(gate) * up)
        self.length = start + T
        return self.output(rms_norm(x[0], self.norm, cfg.norm_eps)).float()

    def _start(self, ids, max_new_tokens: int, extra: int = 0) -> list[int]:
        prompt = validate.token_ids("ids", ids, self.cfg.vocab_size)
        validate.token_budget(max_new_tokens, len(prompt) + extra, self.max_len)
        self.length = 0
        return prompt

    def _choose(self, logits: torch.Tensor, tokens: list[int], sampling: generation.Sampling,
                generator: torch.Generator | None) -> int:
        """logits (V,) of the next position -> the next token, as ``Sampling.choose`` picks it."""
        p = self.parts
        logits = logits[None]
        if sampling.repetition_penalty != 1:
            logits = p.repetition_penalty(logits, torch.tensor([tokens], device=logits.device),
                                          sampling.repetition_penalty)
        if sampling.temperature == 0:
            return int(logits.argmax(-1))
        if sampling.top_k is not None:
            logits = p.top_k_filter(logits, sampling.top_k)
        logits = p.top_p_filter(logits / sampling.temperature, sampling.top_p)
        return int(torch.multinomial(logits.softmax(-1), 1, generator=generator)[0, 0])

    def generate(self, ids, max_new_tokens: int, sampling: generation.Sampling = generation.GREEDY,
                 eos_id: int | None = None) -> list[int]:
        """The new tokens after prompt ``ids`` (a list of ids), up to ``max_new_tokens``, ``eos_id`` included
        when it comes."""
        if not isinstance(sampling, generation.Sampling):
            raise TypeError(f"sampling must be a Sampling, got {type(sampling).__name__}")
        if eos_id is not None:
            validate.integer("eos_id", eos_id, 0, self.cfg.vocab_size - 1)
        tokens = self._start(ids, max_new_tokens)
        generator = sampling.generator(self.norm.device)
        n_prompt, logits = len(tokens), None
        if max_new_tokens:
            logits = self(tokens)[-1]
        while len(tokens) - n_prompt < max_new_tokens:
            nxt = self._choose(logits, tokens, sampling, generator)
            tokens.append(nxt)
            if nxt == eos_id or len(tokens) - n_prompt == max_new_tokens:
                break
            logits = self([nxt])[-1]
        return tokens[n_prompt:]

    def speculative_generate(self, ids, max_new_tokens: int, gamma: int = 4, max_ngram: int = 3,
                             eos_id: int | None = None) -> tuple[list[int], speculative.SpeculativeStats]:
        """Greedy decoding drafted by ``parts.prompt_lookup``: the same tokens as ``generate(ids, n)``, in fewer
        forward passes when the text repeats itself. Returns (new tokens, the acceptance statistics)."""
        gamma = validate.integer("gamma", gamma, 1, self.max_len)
        max_ngram = validate.positive_int("max_ngram", max_ngram)
        if eos_id is not None:
            validate.integer("eos_id", eos_id, 0, self.cfg.vocab_size - 1)
        tokens = self._start(ids, max_new_tokens, extra=gamma)
        n_prompt, stats = len(tokens), speculative.SpeculativeStats()
        if len(tokens) > 1:
            self(tokens[:-1])  # the cache holds every token but the last, which each round feeds again
        while len(tokens) - n_prompt < max_new_tokens:
            draft = [int(t) for t in self.parts.prompt_lookup(list(tokens), gamma, max_ngram)][:gamma]
            start = self.length
            target = self(tokens[-1:] + draft).argmax(-1).tolist()  # the target's choice after each position
            n = 0
            while n < len(draft) and draft[n] == target[n]:
                n += 1
            new = draft[:n] + [target[n]]  # the agreeing guesses, then the target's own next token
            stats.rounds, stats.proposed, stats.accepted = stats.rounds + 1, stats.proposed + len(draft), \
                stats.accepted + n
            self.length = start + len(new)  # roll back: the slots of rejected guesses are written over later
            tokens += new
            if eos_id is not None and eos_id in new:
                tokens = tokens[:tokens.index(eos_id, n_prompt) + 1]
                break
        return tokens[n_prompt:n_prompt + max_new_tokens], stats

    def tokens_per_s(self, ids, max_new_tokens: int = 32) -> float:
        """Decode speed: new tokens per second of greedy ``generate`` after the prompt's prefill."""
        tokens = self._start(ids, max_new_tokens)
        max_new_tokens = validate.positive_int("max_new_tokens", max_new_tokens)
        logits = self(tokens)[-1]
        t = time.perf_counter()
        for _ in range(max_new_tokens):
            logits = self([int(logits.argmax())])[-1]
        float(logits[0])  # waits for a GPU
        return max_new_tokens / (time.perf_counter() - t)

    @property
    def weight_nbytes(self) -> int:
        """Bytes of the blocks' and the head's weights as the parts stored them."""
        total = 0
        for m in [*self.layers, self.output]:
            for sub in m.modules():
                if hasattr(sub, "weight_nbytes"):
                    total += sub.weight_nbytes
                elif isinstance(sub, nn.Linear):
                    total += sub.weight.numel() * sub.weight.element_size()
        return total
