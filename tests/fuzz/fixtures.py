"""Tiny, deterministic inputs for the valid calls: tensors, models, tokenizers, files.

Every builder returns a fresh object (a call may modify its arguments in place); the files are written
once per process into a temporary folder.
"""
from __future__ import annotations

import functools
import json
import os
import tempfile
from collections import Counter
from pathlib import Path

import torch

VOCAB = 50


def randn(*shape, seed: int = 0, dtype=torch.float32) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def ids(*shape, vocab: int = VOCAB, seed: int = 0) -> torch.Tensor:
    """Token ids in [1, vocab) (0 stays free for padding)."""
    return torch.randint(1, vocab, shape, generator=torch.Generator().manual_seed(seed))


def probs(*shape, seed: int = 0) -> torch.Tensor:
    return torch.softmax(randn(*shape, seed=seed), dim=-1)


def decoder_config(**kw):
    from llmlab.nn.model import DecoderConfig

    base = dict(vocab_size=VOCAB, dim=16, n_layers=2, n_heads=4, n_kv_heads=2, hidden_dim=32, max_seq_len=32,
                rope_theta=1e4)
    return DecoderConfig(**{**base, **kw})


def decoder(seed: int = 0, **kw):
    from llmlab.nn.model import Decoder

    torch.manual_seed(seed)
    return Decoder(decoder_config(**kw)).eval()


def encoder_config(**kw):
    from llmlab.nn.model import EncoderConfig

    base = dict(vocab_size=VOCAB, dim=16, n_layers=2, n_heads=4, hidden_dim=32, max_seq_len=16)
    return EncoderConfig(**{**base, **kw})


def encoder(seed: int = 0):
    from llmlab.nn.model import Encoder

    torch.manual_seed(seed)
    return Encoder(encoder_config()).eval()


def linear(n_in: int = 8, n_out: int = 4, bias: bool = True, seed: int = 0) -> torch.nn.Linear:
    torch.manual_seed(seed)
    return torch.nn.Linear(n_in, n_out, bias=bias)


def mlp():
    from llmlab.nn.layers import SwiGLU

    torch.manual_seed(0)
    return SwiGLU(16, 32)


def attention(n_heads: int = 4, n_kv_heads: int = 2, fast: bool = False):
    from llmlab.nn.attention import MultiHeadAttention

    torch.manual_seed(0)
    return MultiHeadAttention(16, n_heads, n_kv_heads, fast=fast)


def kv_cache(batch_size: int = 1, max_len: int = 16):
    from llmlab.nn.kv_cache import KVCache

    return KVCache(n_layers=2, batch_size=batch_size, n_kv_heads=2, head_dim=4, max_len=max_len)


def text_tokens(n: int = 40) -> list[int]:
    return list(b"the cat sat on the mat, the cat ran."[:n])


def ngram_counts(n: int = 2) -> Counter:
    from llmlab.ngram import count_ngrams

    return count_ngrams(text_tokens(), n)


def ngram_lm(n: int = 2):
    from llmlab.ngram import NGramLM

    lm = NGramLM(n=n)
    lm.fit(text_tokens())
    return lm


BPE_TEXT = "low lower lowest newer newest wider widest low low lower new new"


def bpe():
    from llmlab.tokenization.bpe import ByteBPE

    return ByteBPE.train(BPE_TEXT, 262, special_tokens=["<|endoftext|>"])


def wordpiece_vocab() -> dict[str, int]:
    pieces = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "un", "##aff", "##able", ",", "!"]
    return {p: i for i, p in enumerate(pieces)}


def wordpiece():
    from llmlab.tokenization.wordpiece import WordPiece

    return WordPiece(wordpiece_vocab())


def dictionary():
    from llmlab.tokenization.chinese import Dictionary

    return Dictionary.from_words([("我们", 5), ("喜欢", 3), ("学习", 4), ("我", 2), ("们", 1), ("学", 1)])


@functools.lru_cache(maxsize=1)
def _hmm():
    from llmlab.tokenization.chinese import HMM

    return HMM.from_jieba()


def hmm():
    return _hmm()


def question(qid: str = "lm-001"):
    from llmlab import interview

    return interview.question(qid)


def question_item(qid: str = "lm-001") -> dict:
    """The JSON object of a question, as ``interview.validate`` reads it."""
    import dataclasses

    q = question(qid)
    item = {k: v for k, v in dataclasses.asdict(q).items() if v not in ((), "", None) or k in ("answer",)}
    item["tags"] = list(q.tags)
    item["mistakes"] = [dict(m) for m in q.mistakes]
    return item


def process_group() -> None:
    """A one-process gloo group, so the worker functions of ``launch.run`` can run here."""
    import torch.distributed as dist

    if not dist.is_initialized():
        store = dist.HashStore()
        dist.init_process_group("gloo", store=store, rank=0, world_size=1)


# ------------------------------------------------------------------------------------------------ files


@functools.lru_cache(maxsize=1)
def folder() -> Path:
    """This process's own folder for files: under ``LLMLAB_FUZZ_TMP`` (the runner's, removed at the end)
    when set, else a new temporary folder."""
    parent = os.environ.get("LLMLAB_FUZZ_TMP")
    return Path(tempfile.mkdtemp(prefix=f"worker-{os.getpid()}-", dir=parent))


def _write_gguf(path: Path) -> Path:
    """A 2-layer llama GGUF (F32 weights) with a tiny SmolLM-style tokenizer in its header."""
    from llmlab.tokenization.bpe import bytes_to_unicode
    from tests.oracles import finish_gguf, llama_gguf_writer

    writer, tensors = llama_gguf_writer(path, decoder())
    spelling = bytes_to_unicode()
    tokens = [spelling[b] for b in range(256)] + ["Ġt", "<|endoftext|>"]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("smollm")
    writer.add_token_list(tokens)
    writer.add_token_types([1] * 257 + [3])
    writer.add_token_merges(["Ġ t"])
    for name, array in tensors.items():
        writer.add_tensor(name, array)
    finish_gguf(writer)
    return path


@functools.lru_cache(maxsize=1)
def gguf_path() -> Path:
    return _write_gguf(folder() / "tiny.gguf")


def gguf_reader():
    from llmlab.models.gguf import open_gguf

    return open_gguf(gguf_path())


def gguf_metadata() -> dict:
    from llmlab.models.gguf import read_metadata

    return read_metadata(gguf_reader())


def gguf_tensors() -> dict:
    from llmlab.models.gguf import read_tensors

    return read_tensors(gguf_reader())


def bert_tensors() -> dict[str, torch.Tensor]:
    """A tiny ``Encoder``'s weights under transformers' BERT names."""
    from llmlab.models import minilm

    cfg = encoder_config()
    ours = encoder().state_dict()
    rename = {v: k for k, v in minilm._TOP.items()}
    for i in range(cfg.n_layers):
        for theirs, mine in minilm._BLOCK.items():
            for p in ("weight", "bias"):
                rename[f"layers.{i}.{mine}.{p}"] = f"encoder.layer.{i}.{theirs}.{p}"
    return {rename[k]: v.clone() for k, v in ours.items() if k in rename}


def bert_config() -> dict:
    cfg = encoder_config()
    return {"model_type": "bert", "vocab_size": cfg.vocab_size, "hidden_size": cfg.dim,
            "num_hidden_layers": cfg.n_layers, "num_attention_heads": cfg.n_heads,
            "intermediate_size": cfg.hidden_dim, "max_position_embeddings": cfg.max_seq_len,
            "type_vocab_size": 2, "layer_norm_eps": 1e-12, "hidden_act": "gelu"}


@functools.lru_cache(maxsize=1)
def bert_dir() -> Path:
    """A BERT folder (config.json, model.safetensors, vocab.txt) holding a tiny encoder."""
    from safetensors.torch import save_file

    path = folder() / "bert"
    path.mkdir(exist_ok=True)
    (path / "config.json").write_text(json.dumps(bert_config()), encoding="utf-8")
    save_file({k: v.contiguous() for k, v in bert_tensors().items()}, str(path / "model.safetensors"))
    (path / "vocab.txt").write_text("\n".join(wordpiece_vocab()) + "\n", encoding="utf-8")
    return path


def _text_file(name: str, text: str) -> Path:
    path = folder() / name
    path.write_text(text, encoding="utf-8")
    return path


@functools.lru_cache(maxsize=1)
def jieba_dict_file() -> Path:
    return _text_file("dict.txt", "我们 5 r\n喜欢 3 v\n学习 4 v\n")


@functools.lru_cache(maxsize=1)
def gold_file() -> Path:
    return _text_file("gold.txt", "我们 喜欢 学习\n学习 很 好\n")


@functools.lru_cache(maxsize=1)
def fortunes_file() -> Path:
    return _text_file("fortunes", "我们喜欢学习中文。\n%\n学而时习之，不亦说乎？\n%\n")
