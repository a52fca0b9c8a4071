"""all-MiniLM-L6-v2 as an llmlab ``Encoder``, and sentence embeddings with it.

A 6-layer BERT (width 384, 12 heads, GELU MLP of width 1536, post-LayerNorm, eps 1e-12, learned
positions up to 512, vocabulary 30,522) trained by sentence-transformers so that the mean of its
last hidden states over the real tokens, L2-normalised, is a sentence embedding: cosine similarity
of two embeddings = semantic similarity. The weights are float32 safetensors in transformers' BERT
naming:

transformers name                                   -> llmlab name
embeddings.word/position/token_type_embeddings         word/position/token_type_embeddings
embeddings.LayerNorm                                   embedding_norm
encoder.layer.{i}.attention.self.query/key/value       layers.{i}.attention.wq/wk/wv
encoder.layer.{i}.attention.output.dense               layers.{i}.attention.wo
encoder.layer.{i}.attention.output.LayerNorm           layers.{i}.attention_norm
encoder.layer.{i}.intermediate.dense                   layers.{i}.feed_forward.w1
encoder.layer.{i}.output.dense                         layers.{i}.feed_forward.w2
encoder.layer.{i}.output.LayerNorm                     layers.{i}.ffn_norm

Not used: ``pooler.dense`` (BERT's [CLS] pooler; sentence-transformers mean-pools instead) and the
``embeddings.position_ids`` buffer (just 0..511).
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from llmlab import model_device, validate
from llmlab.nn.model import Encoder, EncoderConfig

MAX_SEQ_LEN = 256  # sentence-transformers' max_seq_length for this model (sentence_bert_config.json)
IGNORED = ("pooler.", "embeddings.position_ids")

_TOP = {
    "embeddings.word_embeddings.weight": "word_embeddings.weight",
    "embeddings.position_embeddings.weight": "position_embeddings.weight",
    "embeddings.token_type_embeddings.weight": "token_type_embeddings.weight",
    "embeddings.LayerNorm.weight": "embedding_norm.weight",
    "embeddings.LayerNorm.bias": "embedding_norm.bias",
}
_BLOCK = {
    "attention.self.query": "attention.wq",
    "attention.self.key": "attention.wk",
    "attention.self.value": "attention.wv",
    "attention.output.dense": "attention.wo",
    "attention.output.LayerNorm": "attention_norm",
    "intermediate.dense": "feed_forward.w1",
    "output.dense": "feed_forward.w2",
    "output.LayerNorm": "ffn_norm",
}


def config_from_json(cfg: dict) -> EncoderConfig:
    """An ``EncoderConfig`` from a transformers BERT ``config.json`` (ValueError for other models)."""
    if not isinstance(cfg, Mapping):
        raise TypeError(f"cfg must be the dict of a config.json, got {type(cfg).__name__}")
    if cfg.get("model_type") != "bert":
        raise ValueError(f"cfg must be a BERT config.json (model_type 'bert'), found {cfg.get('model_type')!r}")
    if cfg.get("hidden_act", "gelu") != "gelu" or cfg.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError(
            f"only hidden_act 'gelu' and absolute positions are supported, got {cfg.get('hidden_act')!r}, "
            f"{cfg.get('position_embedding_type')!r}"
        )
    return EncoderConfig(
        vocab_size=cfg["vocab_size"],
        dim=cfg["hidden_size"],
        n_layers=cfg["num_hidden_layers"],
        n_heads=cfg["num_attention_heads"],
        hidden_dim=cfg["intermediate_size"],
        max_seq_len=cfg["max_position_embeddings"],
        type_vocab_size=cfg.get("type_vocab_size", 2),
        norm_eps=float(cfg.get("layer_norm_eps", 1e-12)),
    )


def bert_to_llmlab(tensors: dict[str, torch.Tensor], n_layers: int) -> dict[str, torch.Tensor]:
    """Rename transformers' BERT tensors to ``Encoder`` names (a leading ``bert.`` is dropped).

    Raises ValueError listing missing or unexpected tensors.
    """
    n_layers = validate.size("n_layers", n_layers)
    if not isinstance(tensors, Mapping):
        raise TypeError(f"tensors must be a dict of tensors by name (safetensors' load_file), "
                        f"got {type(tensors).__name__}")
    tensors = {k.removeprefix("bert."): v for k, v in tensors.items()}
    rename = dict(_TOP)
    for i in range(n_layers):
        for theirs, ours in _BLOCK.items():
            for p in ("weight", "bias"):
                rename[f"encoder.layer.{i}.{theirs}.{p}"] = f"layers.{i}.{ours}.{p}"
    missing = sorted(rename.keys() - tensors.keys())
    unexpected = sorted(k for k in tensors.keys() - rename.keys() if not k.startswith(IGNORED))
    if missing or unexpected:
        raise ValueError(
            f"tensors do not match a {n_layers}-layer BERT: missing {missing[:8]}, unexpected {unexpected[:8]}"
        )
    return {ours: tensors[theirs] for theirs, ours in rename.items()}


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """Sentence embeddings as sentence-transformers makes them: hidden (B, T, C), attention_mask (B, T)
    -> (B, C) = sum_t m_t h_t / max(sum_t m_t, 1e-9), then (``normalize``) divided by its L2 norm
    (max(||e||, 1e-12), like F.normalize), so a dot product is a cosine similarity."""
    validate.tensor("hidden", hidden, ndim=3, floating=True, finite=True)
    if hidden.shape[0] == 0 or hidden.shape[1] == 0:
        raise ValueError(f"hidden must hold at least one sentence of one position, got shape {tuple(hidden.shape)}")
    validate.tensor("attention_mask", attention_mask)
    if attention_mask.shape != hidden.shape[:2]:
        raise ValueError(
            f"attention_mask must have shape (B, T) = {tuple(hidden.shape[:2])}, got {tuple(attention_mask.shape)}"
        )
    if not bool(((attention_mask == 0) | (attention_mask == 1)).all()):
        raise ValueError("attention_mask must hold only 1 (a real token) and 0 (padding)")
    if not isinstance(normalize, bool):
        raise TypeError(f"normalize must be True or False, got {type(normalize).__name__}")
    m = attention_mask.to(hidden.dtype)[..., None]  # (B, T, 1)
    pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
    return F.normalize(pooled, p=2, dim=-1) if normalize else pooled


def load_minilm(path: str | Path | None = None, device: torch.device | str | None = None) -> Encoder:
    """all-MiniLM-L6-v2 (or another BERT folder with ``config.json`` + ``model.safetensors``) as an
    ``Encoder`` in eval mode, float32, on ``device`` (default ``llmlab.device()``)."""
    from safetensors.torch import load_file

    from llmlab.models.smollm2 import check_shapes

    if path is None:
        from llmlab.models import minilm_dir

        path = minilm_dir()
    if device is None:
        import llmlab

        device = llmlab.device()
    device = validate.device("device", device)
    path = validate.path("path", path)
    for name in ("config.json", "model.safetensors"):
        if not (path / name).is_file():
            raise FileNotFoundError(
                f"{path / name} not found: expected a BERT folder with config.json and model.safetensors"
            )
    cfg = config_from_json(json.loads((path / "config.json").read_text(encoding="utf-8")))
    state = bert_to_llmlab(load_file(path / "model.safetensors"), cfg.n_layers)
    with torch.device("meta"):
        model = Encoder(cfg)
    check_shapes(model, state)
    state = {k: v.to(device=device, dtype=torch.float32) for k, v in state.items()}
    model.load_state_dict(state, strict=True, assign=True)
    return model.eval()


@torch.no_grad()
def embed(
    model: Encoder, tokenizer, sentences: Sequence[str], batch_size: int = 32, max_length: int = MAX_SEQ_LEN
) -> torch.Tensor:
    """Sentence embeddings (N, C), L2-normalised mean-pooled last hidden states, as sentence-transformers.

    ``tokenizer.encode(text)`` must give [CLS] ... [SEP] ids (``load_minilm_tokenizer()``). Longer
    inputs are cut to ``max_length`` tokens, keeping [CLS] and the final [SEP]. Sentences are sorted
    by length and run in batches of ``batch_size``, right-padded with id 0 ([PAD]) and masked, so
    little compute goes to padding; the result is in the input order.
    """
    if not callable(model) or not hasattr(model, "cfg"):
        raise TypeError(f"model must be an llmlab Encoder (load_minilm()), got {type(model).__name__}")
    if isinstance(tokenizer, str) or not callable(getattr(tokenizer, "encode", None)):
        raise TypeError(f"tokenizer must have an encode(text) method (load_minilm_tokenizer()), "
                        f"got {type(tokenizer).__name__}")
    if isinstance(sentences, str) or not isinstance(sentences, Sequence):
        raise TypeError(f"sentences must be a list of str, got {type(sentences).__name__}")
    if not all(isinstance(s, str) for s in sentences):
        raise TypeError("sentences must hold str only")
    batch_size = validate.size("batch_size", batch_size)
    max_length = validate.size("max_length", max_length, minimum=2)  # room for [CLS] and [SEP]
    device = model_device(model)
    encoded = []
    for s in sentences:
        ids = tokenizer.encode(s)
        encoded.append(ids if len(ids) <= max_length else ids[: max_length - 1] + ids[-1:])
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    out = torch.empty(len(encoded), model.cfg.dim, device=device)
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        T = max(len(encoded[i]) for i in rows)
        ids = torch.zeros(len(rows), T, dtype=torch.long)
        mask = torch.zeros(len(rows), T, dtype=torch.long)
        for r, i in enumerate(rows):
            ids[r, : len(encoded[i])] = torch.tensor(encoded[i])
            mask[r, : len(encoded[i])] = 1
        ids, mask = ids.to(device), mask.to(device)
        out[rows] = mean_pool(model(ids, mask), mask)
    return out
