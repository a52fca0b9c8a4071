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


def llama_gguf_writer(path, model, arch: str = "llama"):
    """A ``gguf.GGUFWriter`` at ``path`` with a ``Decoder``'s hyper-parameters in its header, and the
    model's weights under GGUF's tensor names (q/k rows permuted for interleaved RoPE, as llama.cpp's
    converter does). The caller adds what else it wants, then :func:`finish_gguf`."""
    import gguf

    from llmlab.nn.layers import permute_for_interleaved

    cfg = model.cfg
    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_block_count(cfg.n_layers)
    writer.add_context_length(cfg.max_seq_len)
    writer.add_embedding_length(cfg.dim)
    writer.add_feed_forward_length(cfg.hidden_dim)
    writer.add_head_count(cfg.n_heads)
    writer.add_head_count_kv(cfg.n_kv_heads)
    writer.add_rope_freq_base(cfg.rope_theta)
    writer.add_layer_norm_rms_eps(cfg.norm_eps)
    writer.add_vocab_size(cfg.vocab_size)
    tensors = {"token_embd.weight": model.tok_embeddings.weight, "output_norm.weight": model.norm.weight}
    for i, layer in enumerate(model.layers):
        att, ffn = layer.attention, layer.feed_forward
        tensors |= {
            f"blk.{i}.attn_norm.weight": layer.attention_norm.weight,
            f"blk.{i}.attn_q.weight": permute_for_interleaved(att.wq.weight, cfg.n_heads),
            f"blk.{i}.attn_k.weight": permute_for_interleaved(att.wk.weight, cfg.n_kv_heads),
            f"blk.{i}.attn_v.weight": att.wv.weight,
            f"blk.{i}.attn_output.weight": att.wo.weight,
            f"blk.{i}.ffn_norm.weight": layer.ffn_norm.weight,
            f"blk.{i}.ffn_gate.weight": ffn.w1.weight,
            f"blk.{i}.ffn_down.weight": ffn.w2.weight,
            f"blk.{i}.ffn_up.weight": ffn.w3.weight,
        }
    return writer, {name: t.detach().numpy().astype("float32") for name, t in tensors.items()}


def finish_gguf(writer) -> None:
    """Write the header, the key/values and the tensors, and close the file."""
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
