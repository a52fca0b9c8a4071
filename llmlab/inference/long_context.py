"""Long inputs: chunked prefill and a bounded cache.

A prompt of T tokens prefilled at once builds (T, T) attention scores per head and (T, V) logits:
memory grows with T. *Chunked prefill* feeds it in chunks of c tokens through the KV cache; each
chunk attends to the cache and to itself, so the result is the same and the peak activation
memory is set by c. The cache itself still grows with T, 2 L Hkv D bytes-per-element per token;
a *sliding-window* cache that keeps only the last W tokens (plus a few "attention sink" tokens at
the start, StreamingLLM) bounds it too, at a cost in quality that perplexity measures.

Fed one token at a time, that cache lets query i see key j when

    j <= i  and  (i - j < window  or  j < sink)          (``sliding_window_mask``)

the window counting the query itself; ``masked_nll`` runs that mask over the whole text in one pass
(Mistral's attention), with the same result.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from llmlab import model_device, validate
from llmlab.nn.kv_cache import KVCache, SlidingWindowCache
from llmlab.nn.model import Decoder


def sliding_window_mask(T: int, window: int, sink: int = 0) -> torch.Tensor:
    """(T, T) bool, True where query i may attend to key j: j <= i and (i - j < window or j < sink).

    The window counts the query itself (window = 1: itself and the sinks only); the first ``sink``
    positions stay visible to every later query (attention sinks). window >= T is the causal mask.
    """
    T, window, sink = validate.size("T", T), validate.size("window", window), validate.size("sink", sink, minimum=0)
    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    return (j <= i) & ((i - j < window) | (j < sink))


@torch.no_grad()
def masked_nll(model: nn.Module, ids, mask: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood of each token after the first, in one forward pass whose attention uses
    ``mask`` (T - 1, T - 1) bool, True = may attend (e.g. ``sliding_window_mask``), instead of the causal
    mask, in every layer. model an llmlab ``Decoder``; ids: list or (T,) -> (T - 1,) float32."""
    if not isinstance(model, Decoder):
        raise TypeError(f"model must be an llmlab Decoder, got {type(model).__name__}")
    ids = torch.tensor(validate.token_ids("ids", ids, model.cfg.vocab_size), device=model_device(model))
    if len(ids) < 2:
        raise ValueError("need at least 2 tokens to score")
    T = len(ids) - 1
    validate.tensor("mask", mask, ndim=2)
    if mask.dtype != torch.bool:
        raise TypeError(f"mask must be a bool tensor (True = may attend), got dtype {mask.dtype}")
    if mask.shape != (T, T):
        raise ValueError(f"mask must have shape (T, T) = ({T}, {T}) for the {T} tokens fed, got {tuple(mask.shape)}")
    mask = mask.to(ids.device)

    def swap_mask(block, args):  # a block is called as block(x, mask, rotary, kv_cache)
        return (args[0], mask, *args[2:])

    hooks = [block.register_forward_pre_hook(swap_mask) for block in model.layers]
    try:
        logits = model(ids[None, :-1])[0].float()
    finally:
        for h in hooks:
            h.remove()
    return F.cross_entropy(logits, ids[1:], reduction="none")


@torch.no_grad()
def chunked_nll(model: nn.Module, ids, chunk: int = 128, cache: KVCache | None = None) -> torch.Tensor:
    """Negative log-likelihood of each token after the first, computed chunk by chunk through
    ``cache`` (a new full ``KVCache`` by default). ids: list or (T,) -> (T - 1,) float32."""
    validate.decoder("model", model)
    ids = torch.tensor(validate.token_ids("ids", ids, model.cfg.vocab_size), device=model_device(model))
    chunk = validate.size("chunk", chunk)
    if len(ids) < 2:
        raise ValueError("need at least 2 tokens to score")
    if cache is not None and not isinstance(cache, KVCache):
        raise TypeError(f"cache must be a KVCache or SlidingWindowCache (or None for a new one), "
                        f"got {type(cache).__name__}")
    cache = cache if cache is not None else KVCache.for_model(model, 1, len(ids))
    nll = []
    for s in range(0, len(ids) - 1, chunk):
        x = ids[s:min(s + chunk, len(ids) - 1)]
        logits = model(x[None], cache=cache)[0].float()
        nll.append(F.cross_entropy(logits, ids[s + 1:s + 1 + len(x)], reduction="none"))
    return torch.cat(nll)


def window_perplexity(model: nn.Module, ids, window: int | None, sink: int = 4,
                      chunk: int = 64) -> tuple[float, int]:
    """(perplexity, cache bytes) of ``ids`` with a sliding-window cache (``window=None``: full cache).
    ids: list or (T,)."""
    validate.decoder("model", model)
    ids = validate.token_ids("ids", ids, model.cfg.vocab_size)
    chunk = validate.size("chunk", chunk)
    if window is None:
        cache = KVCache.for_model(model, 1, len(ids))
    else:
        cache = SlidingWindowCache.for_model(model, 1, window=window, sink=sink)
        chunk = min(chunk, window)
    nll = chunked_nll(model, ids, chunk, cache)
    return math.exp(float(nll.mean())), cache.nbytes
