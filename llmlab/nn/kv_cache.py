"""The key/value cache: decoding one token at a time without recomputing the past.

A causal decoder's keys and values at position t depend only on tokens 0 .. t, so once computed they
never change. Generating token t+1 therefore needs the new token's query, key and value only; the
keys and values of 0 .. t are read from a cache:

    step t:   k_t, v_t = W_k x_t, W_v x_t          written at slot t of the cache
              out_t    = softmax(q_t K[0..t]^T / sqrt(D)) V[0..t]

Without a cache each step reruns the whole sequence (O(T) work per token, O(T^2) per text); with it
a step costs one token's matmuls plus reading the cache. The cache is *preallocated* (one tensor of
the maximal length, written in place), as in gpt-fast and llama.cpp: no tensor grows by ``cat``
every step, and rolling back (speculative decoding) is just moving the length back.

It is grouped-query aware: it stores the Hkv key/value heads, not the H query heads they serve, so
SmolLM2's cache (9 query heads, 3 KV heads) is 3x smaller than multi-head attention's would be:

    bytes = 2 (K and V) * n_layers * B * Hkv * S * D * bytes per element

``SlidingWindowCache`` bounds memory for long inputs: it keeps the first ``sink`` tokens (attention
sinks, StreamingLLM) and the most recent ``window`` ones, and evicts the middle.

Shapes: L layers, B batch, Hkv key/value heads, S slots, D head dim, T new tokens.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from llmlab import model_device, model_dtype, validate
from llmlab.nn.attention import causal_mask, padded_positions_unchecked


def write_kv(
    k_cache: torch.Tensor, v_cache: torch.Tensor, k: torch.Tensor, v: torch.Tensor, start: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Write the T new keys/values at slots start .. start+T-1 and return every filled slot.

    k_cache, v_cache (B, Hkv, S, D), written in place; k, v (B, Hkv, T, D). Returns the views
    (k_cache[:, :, :start+T], v_cache[:, :, :start+T]), each (B, Hkv, start+T, D).
    """
    for name, t in (("k_cache", k_cache), ("v_cache", v_cache), ("k", k), ("v", v)):
        # the caches' unfilled slots may hold anything (torch.empty): only the new keys and values are checked
        validate.tensor(name, t, ndim=4, floating=True, finite=name in ("k", "v"))
    if v_cache.shape != k_cache.shape:
        raise ValueError(f"v_cache must have k_cache's shape {tuple(k_cache.shape)}, got {tuple(v_cache.shape)}")
    B, Hkv, S, D = k_cache.shape
    for name, t in (("k", k), ("v", v)):
        if t.shape[:2] != (B, Hkv) or t.shape[3] != D or t.shape != k.shape:
            raise ValueError(f"{name} must have shape (B, Hkv, T, D) = ({B}, {Hkv}, T, {D}), the same as k, "
                             f"got {tuple(t.shape)}")
    start = validate.integer("start", start, minimum=0, maximum=S - k.shape[2])
    return _write(k_cache, v_cache, k, v, start)


def _write(k_cache: torch.Tensor, v_cache: torch.Tensor, k: torch.Tensor, v: torch.Tensor, start: int):
    """write_kv without the checks: the cache's own step, whose shapes ``KVCache`` already fixed."""
    T = k.shape[2]
    k_cache.narrow(2, start, T).copy_(k)  # = k_cache[:, :, start:start+T] = k, in fewer tensor ops
    v_cache.narrow(2, start, T).copy_(v)
    return k_cache.narrow(2, 0, start + T), v_cache.narrow(2, 0, start + T)


def _model_cfg(model):
    """The ``DecoderConfig`` of ``model`` (a ``Decoder`` or a model built from one, such as ``FastDecoder``)."""
    from llmlab.nn.model import DecoderConfig  # here: llmlab.nn.model imports this module

    cfg = getattr(model, "cfg", None)
    if not isinstance(cfg, DecoderConfig):
        raise TypeError(f"model must be a Decoder (a model with a DecoderConfig .cfg), got {type(model).__name__}")
    return cfg


class KVCache:
    """Preallocated keys and values of every layer for a batch of B sequences, ``max_len`` slots each.

    The model drives it (``Decoder.forward(idx, cache=...)``): ``begin`` before the layers (it
    checks room, records which new tokens are padding and returns their RoPE positions and the
    attention mask), ``update`` in each layer, ``end`` after the last one. ``length`` is the number of
    filled slots, shared by the batch; ``truncate`` moves it back.

    Left padding: a row's pad tokens occupy slots but are masked as keys, and positions count real
    tokens only, so every row is computed as if it were alone (as transformers does).
    """

    def __init__(self, n_layers: int, batch_size: int, n_kv_heads: int, head_dim: int, max_len: int,
                 dtype: torch.dtype = torch.float32, device: torch.device | str | None = None):
        for name, value in (("n_layers", n_layers), ("batch_size", batch_size), ("n_kv_heads", n_kv_heads),
                            ("head_dim", head_dim), ("max_len", max_len)):
            validate.size(name, value)
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}")
        shape = (n_layers, batch_size, n_kv_heads, max_len, head_dim)
        device = validate.device("device", device, allow_none=True)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)
        self._layers = list(zip(self.k.unbind(0), self.v.unbind(0)))  # per-layer views, made once
        self.real = torch.ones(batch_size, max_len, dtype=torch.bool, device=self.k.device)  # False = pad
        self.next_pos = torch.zeros(batch_size, dtype=torch.long, device=self.k.device)  # RoPE position
        self.length = 0
        self.padded = False  # any pad slot written: decode steps then need a mask

    @classmethod
    def for_model(cls, model: nn.Module, batch_size: int = 1, max_len: int | None = None, **kwargs) -> "KVCache":
        """A cache shaped for a ``Decoder`` (its config, dtype and device); ``max_len`` defaults to the
        model's context length."""
        cfg, dtype, device = _model_cfg(model), model_dtype(model), model_device(model)
        max_len = cfg.max_seq_len if max_len is None else max_len
        return cls(cfg.n_layers, batch_size, cfg.n_kv_heads, cfg.head_dim, max_len, dtype=dtype, device=device, **kwargs)

    @property
    def batch_size(self) -> int:
        return self.k.shape[1]

    @property
    def max_len(self) -> int:
        return self.k.shape[3]

    @property
    def nbytes(self) -> int:
        """Bytes allocated for keys and values."""
        return 2 * self.k.numel() * self.k.element_size()

    def _room(self, T: int) -> None:
        if self.length + T > self.max_len:
            raise ValueError(f"the cache holds {self.max_len} tokens: {self.length} are filled and {T} more do "
                             "not fit; make it longer (max_len=...) or use a SlidingWindowCache")

    def begin(self, T: int, attention_mask: torch.Tensor | None = None, *, batch_size: int | None = None,
              max_positions: int | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Prepare to add T tokens: returns their positions (B, T) and the attention mask, broadcastable
        to (B, H, T, S) with True = attend, or None when every query may see every filled key.
        ValueError when the model's ``batch_size`` differs from the cache's, or a position would reach
        ``max_positions`` (the model's context)."""
        if batch_size is not None and batch_size != self.batch_size:
            raise ValueError(f"the cache was made for batch size {self.batch_size}, the input has {batch_size} rows")
        if max_positions is not None and int(self.next_pos.max()) + T > max_positions:
            raise ValueError(f"{int(self.next_pos.max())} cached + {T} new tokens exceed the context of {max_positions}")
        if attention_mask is not None and attention_mask.shape != (self.batch_size, T):
            raise ValueError(f"attention_mask must have shape (B, T) = ({self.batch_size}, {T}), "
                             f"got {tuple(attention_mask.shape)}")
        if T < 1:
            raise ValueError("need at least one new token")
        self._room(T)
        start, device = self.length, self.real.device
        if attention_mask is None:
            new = torch.ones(self.batch_size, T, dtype=torch.bool, device=device)
            positions = self.next_pos[:, None] + torch.arange(T, device=device)
        else:
            new = attention_mask.to(device=device, dtype=torch.bool)
            positions = padded_positions_unchecked(new, self.next_pos)
            self.padded = self.padded or not bool(new.all())
        self.real[:, start:start + T] = new
        self.next_pos = self.next_pos + new.long().sum(1)
        S = start + T
        if T == 1 and not self.padded:
            return positions, None  # one query, every key visible: no mask, SDPA's fastest path
        mask = causal_mask(T, S, device=device) & self.real[:, None, :S]  # (B, T, S): pad keys hidden
        # a pad query would see no key at all (NaN in the fused kernel): let it see itself
        mask[:, torch.arange(T, device=device), torch.arange(start, S, device=device)] = True
        return positions, mask[:, None]

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Layer ``layer``'s new k, v (B, Hkv, T, D) -> all its keys and values (B, Hkv, S, D)."""
        try:
            return _write(*self._layers[layer], k, v, self.length)
        except (IndexError, TypeError, AttributeError, RuntimeError) as error:  # explained after the fact: hot
            self._explain_update(layer, k, v, error)
            raise

    def _explain_update(self, layer, k, v, error: Exception) -> None:
        """Raise an error that names the argument of ``update`` that made it fail, if one did."""
        validate.integer("layer", layer, -len(self._layers), len(self._layers) - 1)
        _, B, Hkv, S, D = self.k.shape
        for name, t in (("k", k), ("v", v)):
            validate.tensor(name, t, ndim=4)
            if t.shape[:2] != (B, Hkv) or t.shape[3] != D or t.shape != k.shape:
                raise ValueError(f"{name} must have shape (B, Hkv, T, D) = ({B}, {Hkv}, T, {D}), the same as k, "
                                 f"got {tuple(t.shape)}") from error
        if self.length + k.shape[2] > S:
            raise ValueError(f"k and v hold {k.shape[2]} new tokens, more than the {S - self.length} free slots "
                             "of the cache") from error

    def end(self, T: int) -> None:
        """The T tokens of ``begin`` went through every layer."""
        self.length += T

    def truncate(self, length: int) -> None:
        """Forget every slot from ``length`` on (a rejected speculative draft): nothing is erased, the
        next write simply lands there."""
        validate.integer("length", length)
        if not 0 <= length <= self.length:
            raise ValueError(f"length must be in [0, {self.length}], got {length}")
        self.length = length
        self.next_pos = self.real[:, :length].long().sum(1)

    def reset(self) -> None:
        self.real.fill_(True)
        self.next_pos.zero_()
        self.length, self.padded = 0, False


class SlidingWindowCache(KVCache):
    """A cache of at most ``sink + window`` slots: the first ``sink`` tokens and the last ``window``.

    Before new tokens are written, the oldest non-sink slots are evicted (the survivors are moved
    down), so memory stays bounded however long the text. Keys keep the rotation of their original
    positions and queries use their true position, so attention still sees true distances (the
    text must stay within the model's RoPE range). StreamingLLM showed that the first few tokens
    soak up attention ("sinks"): dropping them hurts far more than dropping the middle.

    A chunk of T tokens sees the sinks, the last ``window - T`` cached tokens and itself (causally).
    """

    def __init__(self, n_layers: int, batch_size: int, n_kv_heads: int, head_dim: int, window: int, sink: int = 4,
                 dtype: torch.dtype = torch.float32, device: torch.device | str | None = None):
        window, sink = validate.size("window", window), validate.size("sink", sink, minimum=0)
        super().__init__(n_layers, batch_size, n_kv_heads, head_dim, sink + window, dtype=dtype, device=device)
        self.window, self.sink = window, sink

    @classmethod
    def for_model(cls, model: nn.Module, batch_size: int = 1, window: int = 256, sink: int = 4) -> "SlidingWindowCache":
        cfg, dtype, device = _model_cfg(model), model_dtype(model), model_device(model)
        return cls(cfg.n_layers, batch_size, cfg.n_kv_heads, cfg.head_dim, window, sink, dtype=dtype, device=device)

    def _room(self, T: int) -> None:
        if T > self.window:
            raise ValueError(f"cannot add {T} tokens at once to a window of {self.window}: feed chunks of at most "
                             "window tokens (chunked prefill)")
        excess = self.length + T - self.max_len
        if excess <= 0:
            return
        lo, hi = self.sink, self.length  # keep [0, sink) and [sink + excess, length)
        for store in (self.k, self.v):
            store[:, :, :, lo:hi - excess] = store[:, :, :, lo + excess:hi].clone()
        self.real[:, lo:hi - excess] = self.real[:, lo + excess:hi].clone()
        self.length -= excess

    def truncate(self, length: int) -> None:
        raise NotImplementedError("a sliding-window cache cannot roll back past evicted tokens")
