"""Established libraries built from our own assets: what the tests compare llmlab with, and what the
benchmarks time it against. Test-only code: llmlab itself never imports these libraries."""
from __future__ import annotations

import json

from llmlab.tokenization import bpe


def hf_smollm2_tokenizer(fields: dict):
    """HF ``tokenizers`` BPE with SmolLM2's vocab and merges (the GGUF's ``tokenizer.*`` fields), its
    Digits(individual_digits=True) + ByteLevel pre-tokeniser, and its special (control) tokens.

    transformers' GGUF conversion drops the Digits step; with it, HF and llama.cpp agree."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    tokens, types = fields["tokenizer.ggml.tokens"], fields["tokenizer.ggml.token_type"]
    merges = [tuple(m.split(" ")) for m in fields["tokenizer.ggml.merges"]]
    tok = Tokenizer(models.BPE({t: i for i, t in enumerate(tokens)}, merges))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t, k in zip(tokens, types) if k == 3])
    return tok


def hf_train_bpe(text: str, vocab_size: int) -> list[tuple[bytes, bytes]]:
    """The merges HF ``tokenizers``' BpeTrainer learns (ByteLevel pre-tokeniser), as pairs of bytes."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator([text], trainer)
    merges = json.loads(tok.to_str())["model"]["merges"]
    merges = [m.split(" ") if isinstance(m, str) else m for m in merges]
    return [(bpe.unicode_to_bytes(a), bpe.unicode_to_bytes(b)) for a, b in merges]
