"""Valid calls: the model code (``llmlab.nn``, ``llmlab.models``), decoding and inference."""
from __future__ import annotations

import torch

from tests.fuzz import fixtures as F
from tests.fuzz.call import Call, method


def _attention_inputs():
    return dict(q=F.randn(1, 2, 3, 4), k=F.randn(1, 2, 5, 4, seed=1), v=F.randn(1, 2, 5, 4, seed=2))


def _cos_sin():
    from llmlab.nn.layers import rope_cos_sin

    return rope_cos_sin(5, 8)


def _rope_inputs():
    cos, sin = _cos_sin()
    return dict(x=F.randn(1, 2, 5, 8), cos=cos, sin=sin)


def _lora_model():
    from llmlab.nn.lora import add_lora

    model = F.decoder()
    add_lora(model, rank=2)
    return model


def _exit_predictions():
    from llmlab.inference.early_exit import exit_predictions

    with torch.no_grad():
        return exit_predictions(F.decoder(), F.ids(1, 6), [1, 2])


def _fast_forward():
    from llmlab.inference.fast_decoder import FastDecoder
    from llmlab.nn.kv_cache import KVCache

    model = F.decoder()
    return Call(FastDecoder(model).forward, dict(idx=F.ids(1, 4), cache=KVCache.for_model(model, max_len=16),
                                                 attention_mask=None, last_only=False))


def _fast_block():
    from llmlab.inference.fast_decoder import dense_linear

    model = F.decoder()
    return dict(block=model.layers[0], cfg=model.cfg, linear=dense_linear, dtype=torch.float32)


def _sampling(**kw):
    from llmlab.inference.generation import Sampling

    return Sampling(**{"temperature": 0.0, **kw})


def _load_smollm2():
    import llmlab.models
    from llmlab.models.smollm2 import load_smollm2

    return Call(llmlab.models.load_smollm2, dict(path=F.gguf_path(), device="cpu", dtype=torch.float32),
                signature=load_smollm2)


def _load_minilm():
    import llmlab.models
    from llmlab.models.minilm import load_minilm

    return Call(llmlab.models.load_minilm, dict(path=F.bert_dir(), device="cpu"), signature=load_minilm)


def _metadata_without_vocab():
    """A GGUF header without ``llama.vocab_size``, so that ``n_tokens`` is the vocabulary's size."""
    meta = F.gguf_metadata()
    del meta["llama.vocab_size"]
    return meta


def _gguf_cfg():
    from llmlab.models.smollm2 import config_from_metadata

    return config_from_metadata(F.gguf_metadata())


def _model_draft():
    from llmlab.inference.speculative import ModelDraft

    return ModelDraft(F.decoder(), max_len=32)


def _prompt_lookup_draft():
    from llmlab.inference.speculative import PromptLookupDraft

    return PromptLookupDraft(max_ngram=2)


def _cache_update():
    return method(F.kv_cache(), "update", layer=1, k=F.randn(1, 2, 3, 4), v=F.randn(1, 2, 3, 4, seed=1))


def _cache_truncate():
    from llmlab.nn.kv_cache import KVCache

    model = F.decoder()
    cache = KVCache.for_model(model, max_len=16)
    with torch.no_grad():
        model(F.ids(1, 5), cache=cache)
    return method(cache, "truncate", length=3)


def _sliding_cache():
    return dict(n_layers=2, batch_size=1, n_kv_heads=2, head_dim=4, window=8, sink=2, dtype=torch.float32,
                device="cpu")


def _model(module: str):
    import importlib

    return importlib.import_module(module)


VALID = {
    # ------------------------------------------------------------------------- nn.attention
    "llmlab.nn.attention.softmax": lambda: dict(x=F.randn(2, 5), dim=-1),
    "llmlab.nn.attention.causal_mask": lambda: dict(T=4, S=6, device="cpu"),
    "llmlab.nn.attention.padding_mask": lambda: dict(attention_mask=torch.tensor([[0, 1, 1], [1, 1, 1]])),
    "llmlab.nn.attention.padded_positions": lambda: dict(real=torch.tensor([[0, 1, 1], [1, 1, 1]]).bool(),
                                                         start=torch.tensor([2, 0])),
    "llmlab.nn.attention.attention_scores": lambda: dict(q=F.randn(1, 2, 3, 4), k=F.randn(1, 2, 5, 4, seed=1)),
    "llmlab.nn.attention.scaled_dot_product_attention": lambda: dict(
        **_attention_inputs(), mask=torch.ones(3, 5, dtype=torch.bool).tril(2)),
    "llmlab.nn.attention.split_heads": lambda: dict(x=F.randn(1, 3, 8), n_heads=2),
    "llmlab.nn.attention.merge_heads": lambda: dict(x=F.randn(1, 2, 3, 4)),
    "llmlab.nn.attention.repeat_kv": lambda: dict(x=F.randn(1, 2, 3, 4), n_rep=2),
    "llmlab.nn.attention.MultiHeadAttention": lambda: dict(dim=16, n_heads=4, n_kv_heads=2, bias=False, fast=True),
    "llmlab.nn.attention.MultiHeadAttention.forward": lambda: method(
        F.attention(), "forward", x=F.randn(1, 3, 16), mask=torch.ones(3, 3, dtype=torch.bool).tril()),
    # -------------------------------------------------------------------------- nn.kv_cache
    "llmlab.nn.kv_cache.write_kv": lambda: dict(k_cache=torch.zeros(1, 2, 8, 4), v_cache=torch.zeros(1, 2, 8, 4),
                                                k=F.randn(1, 2, 3, 4), v=F.randn(1, 2, 3, 4, seed=1), start=2),
    "llmlab.nn.kv_cache.KVCache": lambda: dict(n_layers=2, batch_size=1, n_kv_heads=2, head_dim=4, max_len=16,
                                               dtype=torch.float32, device="cpu"),
    "llmlab.nn.kv_cache.KVCache.for_model": lambda: method(
        _model("llmlab.nn.kv_cache").KVCache, "for_model", model=F.decoder(), batch_size=2, max_len=16),
    "llmlab.nn.kv_cache.KVCache.update": _cache_update,
    "llmlab.nn.kv_cache.KVCache.truncate": _cache_truncate,
    "llmlab.nn.kv_cache.SlidingWindowCache": _sliding_cache,
    "llmlab.nn.kv_cache.SlidingWindowCache.for_model": lambda: method(
        _model("llmlab.nn.kv_cache").SlidingWindowCache, "for_model", model=F.decoder(), batch_size=1, window=8,
        sink=2),
    # ---------------------------------------------------------------------------- nn.layers
    "llmlab.nn.layers.RMSNorm": lambda: dict(dim=8, eps=1e-6),
    "llmlab.nn.layers.RMSNorm.forward": lambda: method(_model("llmlab.nn.layers").RMSNorm(8), "forward",
                                                       x=F.randn(2, 8)),
    "llmlab.nn.layers.rms_norm": lambda: dict(x=F.randn(2, 8), weight=torch.ones(8), eps=1e-6),
    "llmlab.nn.layers.LayerNorm": lambda: dict(dim=8, eps=1e-5),
    "llmlab.nn.layers.LayerNorm.forward": lambda: method(_model("llmlab.nn.layers").LayerNorm(8), "forward",
                                                         x=F.randn(2, 8)),
    "llmlab.nn.layers.gelu": lambda: dict(x=F.randn(4)),
    "llmlab.nn.layers.GELUMLP": lambda: dict(dim=8, hidden_dim=16, bias=True),
    "llmlab.nn.layers.SwiGLU": lambda: dict(dim=8, hidden_dim=16, bias=False),
    "llmlab.nn.layers.SwiGLU.forward": lambda: method(F.mlp(), "forward", x=F.randn(1, 3, 16)),
    "llmlab.nn.layers.sinusoidal_positions": lambda: dict(n_positions=6, dim=8, base=10000.0),
    "llmlab.nn.layers.rope_frequencies": lambda: dict(head_dim=8, base=10000.0, device="cpu"),
    "llmlab.nn.layers.rope_angles": lambda: dict(positions=torch.arange(5), head_dim=8, base=10000.0),
    "llmlab.nn.layers.rope_cos_sin": lambda: dict(positions=torch.arange(5), head_dim=8, base=10000.0,
                                                  dtype=torch.float32),
    "llmlab.nn.layers.rotate_half": lambda: dict(x=F.randn(2, 8)),
    "llmlab.nn.layers.apply_rope_half": _rope_inputs,
    "llmlab.nn.layers.apply_rope_interleaved": _rope_inputs,
    "llmlab.nn.layers.interleaved_to_half_order": lambda: dict(head_dim=8),
    "llmlab.nn.layers.permute_for_rotate_half": lambda: dict(w=F.randn(16, 8), n_heads=2),
    "llmlab.nn.layers.permute_for_interleaved": lambda: dict(w=F.randn(16, 8), n_heads=2),
    # ------------------------------------------------------------------------------ nn.lora
    "llmlab.nn.lora.lora_linear": lambda: dict(x=F.randn(2, 8), weight=F.randn(4, 8, seed=1), bias=F.randn(4, seed=2),
                                               A=F.randn(2, 8, seed=3), B=F.randn(4, 2, seed=4), alpha=4.0),
    "llmlab.nn.lora.merged_weight": lambda: dict(weight=F.randn(4, 8), A=F.randn(2, 8, seed=3), B=F.randn(4, 2, seed=4),
                                                 alpha=4.0),
    "llmlab.nn.lora.LoRALinear": lambda: dict(base=F.linear(), rank=2, alpha=4.0,
                                              generator=torch.Generator().manual_seed(0)),
    "llmlab.nn.lora.LoRALinear.forward": lambda: method(_model("llmlab.nn.lora").LoRALinear(F.linear(), rank=2),
                                                        "forward", x=F.randn(3, 8)),
    "llmlab.nn.lora.add_lora": lambda: dict(model=F.decoder(), targets=["wq", "wv"], rank=2, alpha=4.0, seed=0),
    "llmlab.nn.lora.merge_lora": lambda: dict(model=_lora_model()),
    "llmlab.nn.lora.count_parameters": lambda: dict(model=_lora_model()),
    # ----------------------------------------------------------------------------- nn.model
    "llmlab.nn.model.DecoderConfig": lambda: dict(vocab_size=50, dim=16, n_layers=2, n_heads=4, n_kv_heads=2,
                                                  hidden_dim=32, rope_theta=1e4, norm_eps=1e-5, max_seq_len=32,
                                                  tie_embeddings=True, dropout=0.1),
    "llmlab.nn.model.DecoderBlock": lambda: dict(cfg=F.decoder_config()),
    "llmlab.nn.model.rope_rotary": lambda: dict(positions=torch.arange(5), head_dim=4, theta=1e4, dtype=torch.float32),
    "llmlab.nn.model.Decoder": lambda: dict(cfg=F.decoder_config()),
    "llmlab.nn.model.Decoder.forward": lambda: method(F.decoder(), "forward", idx=F.ids(2, 5),
                                                      attention_mask=torch.ones(2, 5, dtype=torch.long),
                                                      cache=None, last_only=False),
    "llmlab.nn.model.Decoder.init_weights": lambda: method(F.decoder(), "init_weights", std=0.02),
    "llmlab.nn.model.EncoderConfig": lambda: dict(vocab_size=50, dim=16, n_layers=2, n_heads=4, hidden_dim=32,
                                                  max_seq_len=16, type_vocab_size=2, norm_eps=1e-12),
    "llmlab.nn.model.EncoderBlock": lambda: dict(cfg=F.encoder_config()),
    "llmlab.nn.model.Encoder": lambda: dict(cfg=F.encoder_config()),
    "llmlab.nn.model.Encoder.forward": lambda: method(F.encoder(), "forward", input_ids=F.ids(2, 5),
                                                      attention_mask=torch.ones(2, 5, dtype=torch.long),
                                                      token_type_ids=torch.zeros(2, 5, dtype=torch.long)),
    # ------------------------------------------------------------------------------- models
    "llmlab.models.load_smollm2": _load_smollm2,
    "llmlab.models.load_minilm": _load_minilm,
    "llmlab.models.files.smollm2_gguf_path": lambda: dict(allow_hub=False),
    "llmlab.models.files.minilm_dir": lambda: dict(allow_hub=False),
    "llmlab.models.gguf.open_gguf": lambda: dict(path=F.gguf_path()),
    "llmlab.models.gguf.read_metadata": lambda: dict(reader=F.gguf_reader(), skip_prefix=("tokenizer.ggml.",)),
    "llmlab.models.gguf.read_tensors": lambda: dict(reader=F.gguf_reader()),
    "llmlab.models.gguf.tensor_types": lambda: dict(reader=F.gguf_reader()),
    "llmlab.models.minilm.config_from_json": lambda: dict(cfg=F.bert_config()),
    "llmlab.models.minilm.bert_to_llmlab": lambda: dict(tensors=F.bert_tensors(), n_layers=2),
    "llmlab.models.minilm.load_minilm": lambda: dict(path=F.bert_dir(), device="cpu"),
    "llmlab.models.minilm.mean_pool": lambda: dict(hidden=F.randn(2, 5, 8),
                                                   attention_mask=torch.ones(2, 5, dtype=torch.long), normalize=True),
    "llmlab.models.minilm.embed": lambda: dict(model=F.encoder(), tokenizer=F.wordpiece(),
                                               sentences=["hello world", "unaffable!"], batch_size=1, max_length=8),
    "llmlab.models.smollm2.config_from_metadata": lambda: dict(meta=_metadata_without_vocab(), n_tokens=F.VOCAB),
    "llmlab.models.smollm2.gguf_to_llmlab": lambda: dict(tensors=F.gguf_tensors(), cfg=_gguf_cfg()),
    "llmlab.models.smollm2.layer_from_gguf": lambda: dict(tensors=F.gguf_tensors(), i=1, cfg=_gguf_cfg()),
    "llmlab.models.smollm2.check_shapes": lambda: dict(model=F.decoder(), state=F.decoder(seed=1).state_dict()),
    "llmlab.models.smollm2.load_smollm2": lambda: dict(path=F.gguf_path(), device="cpu", dtype=torch.float32),
    "llmlab.models.smollm2.clear_cache": lambda: {},
    # ------------------------------------------------------------------------- fast_decoder
    "llmlab.inference.fast_decoder.dense_linear": lambda: dict(weight=F.randn(4, 8)),
    "llmlab.inference.fast_decoder.FastBlock": _fast_block,
    "llmlab.inference.fast_decoder.FastDecoder": lambda: dict(model=F.decoder(),
                                                    linear=_model("llmlab.inference.fast_decoder").dense_linear,
                                                    head=_model("llmlab.inference.fast_decoder").dense_linear,
                                                    dtype=torch.float32),
    "llmlab.inference.fast_decoder.FastDecoder.forward": _fast_forward,
    # --------------------------------------------------------------------------- generation
    "llmlab.inference.generation.temperature_softmax": lambda: dict(logits=F.randn(2, 8), temperature=0.7),
    "llmlab.inference.generation.sample_from_probs": lambda: dict(probs=F.probs(8), u=0.5),
    "llmlab.inference.generation.sample": lambda: dict(probs=F.probs(8), generator=torch.Generator().manual_seed(0)),
    "llmlab.inference.generation.top_k_filter": lambda: dict(logits=F.randn(2, 8), k=3),
    "llmlab.inference.generation.top_p_filter": lambda: dict(logits=F.randn(2, 8), p=0.9),
    "llmlab.inference.generation.repetition_penalty": lambda: dict(logits=F.randn(2, 8), previous=F.ids(2, 3, vocab=8),
                                                         penalty=1.2),
    "llmlab.inference.generation.Sampling": lambda: dict(temperature=0.7, top_k=5, top_p=0.9, repetition_penalty=1.1, seed=0),
    "llmlab.inference.generation.Sampling.choose": lambda: method(
        _sampling(temperature=0.7, top_k=5, repetition_penalty=1.3, seed=0), "choose", logits=F.randn(2, F.VOCAB),
        previous=F.ids(2, 3), generator=torch.Generator().manual_seed(0)),
    "llmlab.inference.generation.left_pad": lambda: dict(prompts=[[1, 2, 3], [4, 5]], pad_id=0),
    "llmlab.inference.generation.stream_batch": lambda: dict(model=F.decoder(), prompts=[[1, 2, 3], [4, 5]], max_new_tokens=3,
                                                   sampling=_sampling(), pad_id=0, use_cache=True,
                                                   cache=F.kv_cache(batch_size=2)),
    "llmlab.inference.generation.generate_batch": lambda: dict(model=F.decoder(), prompts=[[1, 2, 3], [4, 5]], max_new_tokens=3,
                                                     sampling=_sampling(), eos_id=7, pad_id=0, use_cache=True),
    "llmlab.inference.generation.stream": lambda: dict(model=F.decoder(), ids=[1, 2, 3], max_new_tokens=3, sampling=_sampling(),
                                             eos_id=7, stop=lambda new: False, use_cache=True, cache=F.kv_cache()),
    "llmlab.inference.generation.generate": lambda: dict(model=F.decoder(), ids=[1, 2, 3], max_new_tokens=3,
                                               sampling=_sampling(), eos_id=7, stop=lambda new: False, use_cache=True),
    "llmlab.inference.generation.stop_strings": lambda: dict(decode=lambda ids: "".join(chr(97 + i % 26) for i in ids),
                                                   strings=["xyz"]),
    # ------------------------------------------------------------------------- long_context
    "llmlab.inference.long_context.chunked_nll": lambda: dict(model=F.decoder(), ids=F.ids(12), chunk=4, cache=F.kv_cache()),
    "llmlab.inference.long_context.window_perplexity": lambda: dict(model=F.decoder(), ids=F.ids(12), window=8, sink=2, chunk=4),
    # --------------------------------------------------------------------------- early_exit
    "llmlab.inference.early_exit.exit_predictions": lambda: dict(model=F.decoder(), idx=F.ids(1, 6), layers=[1, 2]),
    "llmlab.inference.early_exit.ExitPoint": lambda: dict(threshold=0.5, layers_fraction=0.5, agreement=1.0),
    "llmlab.inference.early_exit.exit_tradeoff": lambda: dict(zip(("preds", "conf"), _exit_predictions()), layers=[1, 2],
                                                    n_layers=2, thresholds=[0.1, 0.9]),
    # -------------------------------------------------------------------------- speculative
    "llmlab.inference.speculative.expected_tokens_per_round": lambda: dict(alpha=0.7, gamma=4),
    "llmlab.inference.speculative.speculative_accept": lambda: dict(p=F.probs(4, 8), q=F.probs(3, 8, seed=1),
                                                          draft=torch.tensor([1, 2, 3]),
                                                          u=torch.tensor([0.1, 0.5, 0.9]), v=0.3),
    "llmlab.inference.speculative.greedy_accept": lambda: dict(target=[1, 2, 3, 4], draft=[1, 2, 5]),
    "llmlab.inference.speculative.ModelDraft": lambda: dict(model=F.decoder(), max_len=32),
    "llmlab.inference.speculative.ModelDraft.propose": lambda: method(_model_draft(), "propose", no_grad=True, tokens=[1, 2, 3],
                                                            gamma=2, temperature=0.5,
                                                            generator=torch.Generator().manual_seed(0)),
    "llmlab.inference.speculative.PromptLookupDraft": lambda: dict(max_ngram=2),
    "llmlab.inference.speculative.PromptLookupDraft.propose": lambda: method(_prompt_lookup_draft(), "propose",
                                                                   tokens=[1, 2, 3, 1, 2], gamma=2),
    "llmlab.inference.speculative.prompt_lookup": lambda: dict(tokens=[1, 2, 3, 1, 2], gamma=2, max_ngram=2),
    "llmlab.inference.speculative.layer_draft": lambda: dict(model=F.decoder(), n_layers=1),
    "llmlab.inference.speculative.SpeculativeStats": lambda: dict(rounds=1, proposed=4, accepted=2),
    "llmlab.inference.speculative.speculative_generate": lambda: dict(target=F.decoder(), draft=_prompt_lookup_draft(),
                                                            ids=[1, 2, 3, 1, 2], max_new_tokens=4, gamma=2,
                                                            temperature=0.0, seed=0, eos_id=7),
}

SKIP: dict[str, str] = {
    "llmlab.nn.attention.padded_positions_unchecked": "padded_positions without its checks, for the model and the "
                                                      "cache, whose masks are checked once",
}
