"""SmolLM2-135M-Instruct as an llmlab ``Decoder``, built from its GGUF file.

The file (llama architecture) holds 30 blocks of width 576, 9 query heads sharing 3 key/value heads
(head dim 64), SwiGLU hidden width 1536, RoPE base 1e5, RMSNorm eps 1e-5, 49,152 tokens and no
``output.weight``: the LM head is the embedding matrix (tied). The embedding is stored Q8_0, the 210
block matrices Q4_1, the norms F32; everything is dequantised to float32 here, so the model computes
exactly what llama.cpp's Q4_1 weights mean, in full precision.

RoPE convention. llama.cpp's converter stores W_q and W_k with their rows permuted for the
*interleaved* RoPE (pairs 2i, 2i+1). We undo that permutation (``permute_for_rotate_half``) and use
the *rotate-half* RoPE (pairs i, i + D/2), transformers' convention: the weights then equal
transformers' ``q_proj``/``k_proj`` and the two models can be compared layer by layer.

GGUF name                 -> llmlab name
token_embd.weight            tok_embeddings.weight (= output.weight, tied)
output_norm.weight           norm.weight
blk.{i}.attn_norm.weight     layers.{i}.attention_norm.weight
blk.{i}.attn_q/k/v/output    layers.{i}.attention.wq/wk/wv/wo.weight   (q, k un-permuted)
blk.{i}.ffn_norm.weight      layers.{i}.ffn_norm.weight
blk.{i}.ffn_gate/down/up     layers.{i}.feed_forward.w1/w2/w3.weight
"""
from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path

import torch

from llmlab import validate
from llmlab.models import gguf as gguf_io
from llmlab.nn.layers import permute_for_rotate_half
from llmlab.nn.model import Decoder, DecoderConfig

ARCHITECTURE = "llama"

_BLOCK_NAMES = {
    "attn_norm.weight": "attention_norm.weight",
    "attn_q.weight": "attention.wq.weight",
    "attn_k.weight": "attention.wk.weight",
    "attn_v.weight": "attention.wv.weight",
    "attn_output.weight": "attention.wo.weight",
    "ffn_norm.weight": "ffn_norm.weight",
    "ffn_gate.weight": "feed_forward.w1.weight",
    "ffn_down.weight": "feed_forward.w2.weight",
    "ffn_up.weight": "feed_forward.w3.weight",
}


def _check_mapping(name: str, value, what: str) -> None:
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a dict of {what}, got {type(value).__name__}")


def _check_config(cfg) -> None:
    if not isinstance(cfg, DecoderConfig):
        raise TypeError(f"cfg must be a DecoderConfig (config_from_metadata(...)), got {type(cfg).__name__}")


def config_from_metadata(meta: dict, n_tokens: int | None = None) -> DecoderConfig:
    """A ``DecoderConfig`` from a llama-architecture GGUF header (``llama.block_count`` etc.).

    Raises ValueError naming the architecture when it is not llama, or naming a missing key.
    ``n_tokens``: the vocabulary size when the header has no ``llama.vocab_size``.
    """
    _check_mapping("meta", meta, "GGUF metadata (read_metadata(reader))")
    if n_tokens is not None:
        n_tokens = validate.size("n_tokens", n_tokens)
    arch = meta.get("general.architecture")
    if arch != ARCHITECTURE:
        raise ValueError(
            f"meta must describe a GGUF of architecture {ARCHITECTURE!r} (SmolLM2 is a Llama), found {arch!r}"
        )

    def get(key: str, default=None):
        value = meta.get(f"{arch}.{key}", default)
        if value is None:
            raise ValueError(f"GGUF metadata lacks {arch}.{key}")
        return value

    n_heads = int(get("attention.head_count"))
    head_dim = int(get("embedding_length")) // n_heads
    if int(get("rope.dimension_count", head_dim)) != head_dim:
        raise ValueError(f"RoPE on {get('rope.dimension_count')} of {head_dim} head channels is not supported")
    vocab = meta.get(f"{arch}.vocab_size", n_tokens)
    if vocab is None:
        raise ValueError(f"GGUF metadata lacks {arch}.vocab_size")
    return DecoderConfig(
        vocab_size=int(vocab),
        dim=int(get("embedding_length")),
        n_layers=int(get("block_count")),
        n_heads=n_heads,
        n_kv_heads=int(get("attention.head_count_kv", n_heads)),
        hidden_dim=int(get("feed_forward_length")),
        rope_theta=float(get("rope.freq_base", 10000.0)),
        norm_eps=float(get("attention.layer_norm_rms_epsilon")),
        max_seq_len=int(get("context_length")),
        tie_embeddings=True,  # decided below by the presence of output.weight
    )


def gguf_to_llmlab(tensors: dict[str, torch.Tensor], cfg: DecoderConfig) -> dict[str, torch.Tensor]:
    """Rename GGUF tensors to ``Decoder`` parameter names and un-permute q/k for rotate-half RoPE.

    Raises ValueError listing missing or unexpected tensors.
    """
    _check_mapping("tensors", tensors, "tensors by GGUF name (read_tensors(reader))")
    _check_config(cfg)
    expected = {"token_embd.weight", "output_norm.weight"}
    expected |= {f"blk.{i}.{name}" for i in range(cfg.n_layers) for name in _BLOCK_NAMES}
    optional = {"output.weight"}
    missing = sorted(expected - tensors.keys())
    unexpected = sorted(tensors.keys() - expected - optional)
    if missing or unexpected:
        raise ValueError(
            f"tensors do not match a {cfg.n_layers}-layer llama: missing {missing[:8]}"
            f"{'...' if len(missing) > 8 else ''}, unexpected {unexpected[:8]}{'...' if len(unexpected) > 8 else ''}"
        )
    state = {"tok_embeddings.weight": tensors["token_embd.weight"], "norm.weight": tensors["output_norm.weight"]}
    state["output.weight"] = tensors.get("output.weight", tensors["token_embd.weight"])
    for i in range(cfg.n_layers):
        state.update({f"layers.{i}.{name}": w for name, w in _layer(tensors, i, cfg).items()})
    return state


def layer_from_gguf(tensors: dict[str, torch.Tensor], i: int, cfg: DecoderConfig) -> dict[str, torch.Tensor]:
    """Block ``i``'s weights under ``DecoderBlock`` names ("attention.wq.weight", ...), with the q and k
    projections un-permuted from GGUF's interleaved-RoPE row order to rotate-half order."""
    _check_mapping("tensors", tensors, "tensors by GGUF name (read_tensors(reader))")
    _check_config(cfg)
    i = validate.integer("i", i, 0, cfg.n_layers - 1)
    missing = [f"blk.{i}.{name}" for name in _BLOCK_NAMES if f"blk.{i}.{name}" not in tensors]
    if missing:
        raise ValueError(f"tensors lacks block {i}'s {missing[:8]}")
    return _layer(tensors, i, cfg)


def _layer(tensors: dict[str, torch.Tensor], i: int, cfg: DecoderConfig) -> dict[str, torch.Tensor]:
    layer = {}
    for name, ours in _BLOCK_NAMES.items():
        w = tensors[f"blk.{i}.{name}"]
        if name == "attn_q.weight":
            w = permute_for_rotate_half(w, cfg.n_heads)
        elif name == "attn_k.weight":
            w = permute_for_rotate_half(w, cfg.n_kv_heads)
        layer[ours] = w
    return layer


def check_shapes(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """ValueError naming every parameter whose shape differs between ``model`` and ``state``."""
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    _check_mapping("state", state, "tensors by parameter name")
    wanted = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if wanted.keys() != state.keys():
        raise ValueError(
            f"state's parameter names differ from model's: missing {sorted(wanted.keys() - state.keys())[:8]}, "
            f"unexpected {sorted(state.keys() - wanted.keys())[:8]}"
        )
    bad = [f"{k}: file {tuple(s.shape)}, model {wanted[k]}" for k, s in state.items() if tuple(s.shape) != wanted[k]]
    if bad:
        raise ValueError("shape mismatch: " + "; ".join(bad[:8]) + ("..." if len(bad) > 8 else ""))


@functools.lru_cache(maxsize=2)
def _read(path: str, mtime_ns: int, size: int) -> tuple[DecoderConfig, dict[str, torch.Tensor]]:
    """Config and float32 CPU state dict of a GGUF, cached by (path, modification time, size):
    parsing and dequantising SmolLM2 takes ~4 s, a cache hit nothing."""
    reader = gguf_io.open_gguf(path)
    meta = gguf_io.read_metadata(reader)
    embd = [t for t in reader.tensors if t.name == "token_embd.weight"]
    n_tokens = int(embd[0].shape[-1]) if embd else None  # ggml order: (width, vocab)
    cfg = config_from_metadata(meta, n_tokens)  # raises on another architecture before reading tensors
    tensors = gguf_io.read_tensors(reader)
    cfg.tie_embeddings = "output.weight" not in tensors
    return cfg, gguf_to_llmlab(tensors, cfg)


def load_smollm2(
    path: str | Path | None = None, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
) -> Decoder:
    """SmolLM2-135M-Instruct (or another llama-architecture GGUF) as a ``Decoder`` in eval mode.

    ``path`` defaults to the packaged file (``smollm2_gguf_path()``), ``device`` to ``llmlab.device()``.
    Every call returns a fresh model with its own weights (modify them freely); the dequantised
    float32 weights of the last two files read are cached in this process, so a second call takes
    ~0.2 s instead of ~4 s.
    """
    if path is None:
        from llmlab.models import smollm2_gguf_path

        path = smollm2_gguf_path()
    if device is None:
        import llmlab

        device = llmlab.device()
    device = validate.device("device", device)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}")
    path = validate.path("path", path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"GGUF file not found: {path}")
    stat = path.stat()
    cfg, state = _read(str(path), stat.st_mtime_ns, stat.st_size)
    with torch.device("meta"):  # no random init of 135M parameters only to overwrite them
        model = Decoder(DecoderConfig(**vars(cfg)))
    check_shapes(model, state)
    copies: dict[int, torch.Tensor] = {}  # one copy per distinct tensor, so a tied head stays shared
    for v in state.values():
        if id(v) not in copies:
            copies[id(v)] = v.to(device=device, dtype=dtype, copy=True)
    model.load_state_dict({k: copies[id(v)] for k, v in state.items()}, strict=True, assign=True)
    model.tie_weights()
    return model.eval()


def clear_cache() -> None:
    """Forget the cached float32 weights (~540 MB per SmolLM2; the last two files read are kept)."""
    _read.cache_clear()
