"""The decoder and encoder: small random models (shapes, masks, GGUF round trip, bad input), then the real
SmolLM2 and MiniLM against transformers loading the same files (the oracle)."""
import dataclasses
import json
import re

import numpy as np
import pytest
import torch

import llmlab
from llmlab.data import chinese_gold, pydoc_text
from llmlab.inference.generation import generate
from llmlab.models import load_minilm, load_smollm2, minilm_dir, smollm2_gguf_path
from llmlab.models.minilm import embed, mean_pool
from llmlab.nn.model import Decoder, DecoderConfig, Encoder, EncoderConfig
from llmlab.tokenization.smollm2 import chat_template, load_smollm2_tokenizer
from llmlab.tokenization.wordpiece import load_minilm_tokenizer
from tests.oracles import finish_gguf, llama_gguf_writer

gguf = pytest.importorskip("gguf")

TINY = DecoderConfig(vocab_size=50, dim=24, n_layers=2, n_heads=6, n_kv_heads=2, hidden_dim=40, rope_theta=1e4,
                     norm_eps=1e-5, max_seq_len=16)


def _tiny_decoder(seed=0) -> Decoder:
    torch.manual_seed(seed)
    model = Decoder(TINY).eval()
    with torch.no_grad():  # non-trivial norms, so a mix-up of norm weights shows
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.uniform_(0.5, 1.5)
    return model


def _ids(B, T, V=50, seed=0):
    return torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------------ small decoder


def test_decoder_shapes_tied_head_and_causality():
    model = _tiny_decoder()
    assert model.output.weight is model.tok_embeddings.weight
    assert sum(p.numel() for p in model.parameters()) < sum(p.numel() for p in model.state_dict().values())
    idx = _ids(2, 7)
    with torch.no_grad():
        logits = model(idx)
        assert logits.shape == (2, 7, 50) and logits.dtype == torch.float32
        changed = idx.clone()
        changed[:, 4:] = (changed[:, 4:] + 1) % 50  # the future may not leak into earlier positions
        other = model(changed)
    torch.testing.assert_close(other[:, :4], logits[:, :4])
    assert not torch.allclose(other[:, 4:], logits[:, 4:])


def test_decoder_left_padding_gives_the_unpadded_logits():
    model = _tiny_decoder()
    a, b = _ids(1, 9, seed=1), _ids(1, 5, seed=2)
    batch = torch.cat([a, torch.cat([torch.full((1, 4), 7), b], 1)])
    mask = torch.ones(2, 9, dtype=torch.long)
    mask[1, :4] = 0
    with torch.no_grad():
        out = model(batch, attention_mask=mask)
        assert torch.isfinite(out).all()  # padded rows see themselves: no NaN to leak into later layers
        torch.testing.assert_close(out[0], model(a)[0], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(out[1, 4:], model(b)[0], atol=1e-5, rtol=1e-5)
        # without the mask the padding is read as text and changes the result
        assert not torch.allclose(model(batch)[1, 4:], model(b)[0], atol=1e-3)


def test_decoder_returns_each_layers_attention_weights_on_request():
    model = _tiny_decoder().eval()
    ids = _ids(2, 6, seed=3)
    with torch.no_grad():
        logits, weights = model(ids, need_weights=True)
        torch.testing.assert_close(logits, model(ids), atol=1e-5, rtol=1e-5)
    cfg = model.cfg
    assert weights.shape == (cfg.n_layers, 2, cfg.n_heads, 6, 6)
    torch.testing.assert_close(weights.sum(-1), torch.ones(cfg.n_layers, 2, cfg.n_heads, 6))
    assert bool((weights.triu(1) == 0).all())


def test_uncached_greedy_generation_is_argmax_and_stops_at_eos():
    model = _tiny_decoder()
    prompt = [3, 1, 4, 1, 5]
    seq = list(prompt)
    with torch.no_grad():
        for _ in range(6):
            seq.append(int(model(torch.tensor([seq]))[0, -1].argmax()))
    new = generate(model, prompt, 6, use_cache=False)
    assert new == seq[len(prompt):]
    assert generate(model, torch.tensor(prompt), 6, eos_id=new[2], use_cache=False) == new[: new.index(new[2]) + 1]
    assert generate(model, prompt, 0, use_cache=False) == []


@pytest.mark.parametrize(
    "call,exc,match",
    [
        (lambda m: m(torch.zeros(5, dtype=torch.long)), ValueError, r"\(B, T\)"),
        (lambda m: m(torch.zeros(1, 2, 3, dtype=torch.long)), ValueError, r"\(B, T\)"),
        (lambda m: m(torch.zeros(1, 5)), TypeError, "integer token ids"),
        (lambda m: m([[1, 2]]), TypeError, "torch.Tensor"),
        (lambda m: m(torch.zeros(1, 17, dtype=torch.long)), ValueError, "longer than max_seq_len=16"),
        (lambda m: m(torch.zeros(1, 0, dtype=torch.long)), ValueError, "empty"),
        (lambda m: m(torch.tensor([[1, 50]])), ValueError, r"outside \[0, 50\)"),
        (lambda m: m(torch.ones(2, 3, dtype=torch.long), torch.ones(2, 4, dtype=torch.long)), ValueError, "shape of the ids"),
        (lambda m: m(torch.ones(2, 3, dtype=torch.long), torch.ones(2, 3)), TypeError, "0/1 integers or bools"),
        (lambda m: m(torch.ones(2, 3, dtype=torch.long), torch.tensor([[1, 1, 1], [0, 0, 0]])), ValueError, r"rows \[1\]"),
        (lambda m: generate(m, [], 3, use_cache=False), ValueError, "empty"),
        (lambda m: generate(m, [1, 2], 20, use_cache=False), ValueError, "exceed the context of 16"),
        (lambda m: DecoderConfig(dim=30, n_heads=4), ValueError, "not divisible by n_heads 4"),
        (lambda m: DecoderConfig(n_heads=9, n_kv_heads=2), ValueError, "not a multiple of n_kv_heads"),
        (lambda m: DecoderConfig(dim=30, n_heads=10, n_kv_heads=5), ValueError, "even for RoPE"),
        (lambda m: EncoderConfig(dim=30, n_heads=4), ValueError, "not divisible by n_heads 4"),
    ],
)
def test_decoder_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call(_tiny_decoder())


# ------------------------------------------------------------------------------------ small encoder


def test_encoder_padding_and_mean_pool():
    torch.manual_seed(0)
    cfg = EncoderConfig(vocab_size=40, dim=16, n_layers=2, n_heads=4, hidden_dim=32, max_seq_len=12)
    model = Encoder(cfg).eval()
    a, b = _ids(1, 8, 40, seed=1), _ids(1, 5, 40, seed=2)
    batch = torch.cat([a, torch.cat([b, torch.zeros(1, 3, dtype=torch.long)], 1)])  # right padding, as BERT
    mask = torch.tensor([[1] * 8, [1] * 5 + [0] * 3])
    with torch.no_grad():
        h = model(batch, mask)
        assert h.shape == (2, 8, 16)
        torch.testing.assert_close(h[1, :5], model(b)[0], atol=1e-5, rtol=1e-5)
        pooled = mean_pool(h, mask)
    torch.testing.assert_close(pooled[1], torch.nn.functional.normalize(h[1, :5].mean(0), dim=0))
    torch.testing.assert_close(pooled.norm(dim=-1), torch.ones(2))
    torch.testing.assert_close(mean_pool(h, mask, normalize=False)[0], h[0].mean(0))
    with pytest.raises(ValueError, match="longer than max_seq_len=12"):
        model(torch.zeros(1, 13, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        mean_pool(h, mask[0])


# ------------------------------------------------------------------------------ GGUF files we write


def _write_gguf(path, model: Decoder | None, arch="llama", drop=(), reshape=()):
    """A llama GGUF holding ``model``'s weights as F32 (``drop``: names left out; ``reshape``: names
    written one row short); with no model, a 2-block header and a stray embedding."""
    if model is not None:
        writer, tensors = llama_gguf_writer(path, model, arch)
        for name, array in tensors.items():
            if name not in drop:
                writer.add_tensor(name, array[:-1] if name in reshape else array)
    else:
        writer = gguf.GGUFWriter(str(path), arch)
        writer.add_block_count(2)
        writer.add_tensor("token_embd.weight", np.zeros((10, 8), dtype=np.float32))
    finish_gguf(writer)
    return path


def test_gguf_round_trip_of_a_small_llama(tmp_path):
    model = _tiny_decoder()
    loaded = load_smollm2(_write_gguf(tmp_path / "tiny.gguf", model), device="cpu")
    assert loaded.cfg == dataclasses.replace(TINY, norm_eps=loaded.cfg.norm_eps)
    assert loaded.cfg.norm_eps == pytest.approx(TINY.norm_eps)  # stored as float32 in the file
    assert loaded.output.weight is loaded.tok_embeddings.weight
    for name, p in model.state_dict().items():  # q/k un-permuted back: every weight exactly as written
        assert torch.equal(loaded.state_dict()[name], p), name
    idx = _ids(2, 9)
    with torch.no_grad():
        torch.testing.assert_close(loaded(idx), model(idx), atol=0, rtol=0)
    half = load_smollm2(tmp_path / "tiny.gguf", device="cpu", dtype=torch.bfloat16)
    assert half.tok_embeddings.weight.dtype == torch.bfloat16 and half.output.weight is half.tok_embeddings.weight
    with torch.no_grad():
        assert half(idx).dtype == torch.bfloat16
        torch.testing.assert_close(half(idx).float(), model(idx), atol=0.1, rtol=0.05)
    # a fresh model each call: changing one does not change the next (the cache is not shared)
    with torch.no_grad():
        loaded.tok_embeddings.weight.zero_()
    assert torch.equal(load_smollm2(tmp_path / "tiny.gguf", device="cpu").tok_embeddings.weight,
                       model.tok_embeddings.weight)


def test_gguf_of_another_architecture_is_refused(tmp_path):
    path = _write_gguf(tmp_path / "gpt2.gguf", None, arch="gpt2")
    with pytest.raises(ValueError, match="architecture 'llama'.*found 'gpt2'"):
        load_smollm2(path, device="cpu")


def test_gguf_names_and_shapes_are_checked(tmp_path):
    model = _tiny_decoder()
    with pytest.raises(ValueError, match=r"missing \['blk.1.ffn_up.weight'\]"):
        load_smollm2(_write_gguf(tmp_path / "a.gguf", model, drop=("blk.1.ffn_up.weight",)), device="cpu")
    with pytest.raises(ValueError, match=r"shape mismatch: layers.0.feed_forward.w2.weight: file \(23, 40\), model \(24, 40\)"):
        load_smollm2(_write_gguf(tmp_path / "b.gguf", model, reshape=("blk.0.ffn_down.weight",)), device="cpu")
    with pytest.raises(FileNotFoundError):
        load_smollm2(tmp_path / "nothing.gguf")


def test_minilm_folder_checks(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ValueError, match="found 'gpt2'"):
        load_minilm(tmp_path)
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        load_minilm(tmp_path / "missing")


# ----------------------------------------------------------------------------- SmolLM2 vs transformers

PROMPTS = {
    "english": "The quick brown fox jumps over the lazy dog, because it wanted to see what lay on the other side.",
    "chat": chat_template([{"role": "user", "content": "Explain what a Python list comprehension is, briefly."}]),
    "chinese": "机器学习是人工智能的一个分支，它让计算机能够从数据中学习，而不需要明确的编程。",
}


@pytest.fixture(scope="module")
def smollm2():
    return load_smollm2(device=llmlab.device())


@pytest.fixture(scope="module")
def smollm2_tokenizer():
    return load_smollm2_tokenizer()


@pytest.fixture(scope="module")
def hf_smollm2():
    transformers = pytest.importorskip("transformers")
    path = smollm2_gguf_path()
    model = transformers.AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    return model.to(llmlab.device()).eval()


def test_smollm2_config(smollm2):
    assert smollm2.cfg == DecoderConfig(vocab_size=49152, dim=576, n_layers=30, n_heads=9, n_kv_heads=3,
                                        hidden_dim=1536, rope_theta=1e5, norm_eps=smollm2.cfg.norm_eps,
                                        max_seq_len=8192, tie_embeddings=True)
    assert abs(smollm2.cfg.norm_eps - 1e-5) < 1e-10
    assert smollm2.output.weight is smollm2.tok_embeddings.weight


@pytest.mark.parametrize("name", list(PROMPTS))
def test_smollm2_logits_match_transformers(name, smollm2, smollm2_tokenizer, hf_smollm2):
    ids = torch.tensor([smollm2_tokenizer.encode(PROMPTS[name])], device=llmlab.device())
    with torch.no_grad():
        ours, theirs = smollm2(ids).cpu(), hf_smollm2(ids).logits.cpu()
    delta = (ours - theirs).abs().max().item()
    print(f"{name}: {ids.shape[1]} tokens, max |dlogit| = {delta:.2e}")
    assert delta <= 1e-3
    assert torch.equal(ours.argmax(-1), theirs.argmax(-1))


def test_smollm2_weights_equal_transformers_after_unpermuting(smollm2, hf_smollm2):
    ours, theirs = smollm2.layers[3].attention, hf_smollm2.model.layers[3].self_attn
    assert torch.equal(ours.wq.weight, theirs.q_proj.weight) and torch.equal(ours.wk.weight, theirs.k_proj.weight)


def test_smollm2_left_padded_batch(smollm2, smollm2_tokenizer):
    rows = [smollm2_tokenizer.encode(PROMPTS["english"]), smollm2_tokenizer.encode(PROMPTS["chinese"])[:11]]
    T = max(map(len, rows))
    ids = torch.full((2, T), 2, dtype=torch.long)  # 2 = <|im_end|>, the GGUF's padding token
    mask = torch.zeros(2, T, dtype=torch.long)
    for r, row in enumerate(rows):
        ids[r, T - len(row):], mask[r, T - len(row):] = torch.tensor(row), 1
    dev = llmlab.device()
    with torch.no_grad():
        batch = smollm2(ids.to(dev), mask.to(dev)).cpu()
        for r, row in enumerate(rows):
            alone = smollm2(torch.tensor([row], device=dev))[0].cpu()
            assert (batch[r, T - len(row):] - alone).abs().max().item() <= 1e-3
            assert torch.equal(batch[r, T - len(row):].argmax(-1), alone.argmax(-1))


def test_smollm2_answers_paris(smollm2, smollm2_tokenizer):
    tok = smollm2_tokenizer
    ids = tok.encode(chat_template([{"role": "user", "content": "What is the capital of France?"}]))
    new = generate(smollm2, ids, max_new_tokens=16, eos_id=tok.special_tokens["<|im_end|>"], use_cache=False)
    text = tok.decode(new)
    print(repr(text))
    assert "Paris" in text


# ------------------------------------------------------------------------------ MiniLM vs transformers


def _sentences() -> list[str]:
    english = [s.strip() for s in re.split(r"(?<=[.!?])\s+", pydoc_text("val")) if 20 <= len(s.strip()) <= 400]
    chinese = ["".join(words) for words in chinese_gold()]
    assert len(english) >= 60 and len(chinese) >= 40
    return english[::len(english) // 60][:60] + chinese[::len(chinese) // 40][:40]


def test_minilm_embeddings_match_transformers():
    transformers = pytest.importorskip("transformers")
    sentences = _sentences()
    assert len(sentences) == 100
    tok = load_minilm_tokenizer()
    model = load_minilm(device=llmlab.device())
    ours = embed(model, tok, sentences, batch_size=16).cpu()
    assert ours.shape == (100, 384)

    bert = transformers.BertModel.from_pretrained(str(minilm_dir()), add_pooling_layer=False).eval()
    rows = [tok.encode(s) for s in sentences]
    assert max(map(len, rows)) <= 256  # no truncation on either side
    ids = torch.zeros(len(rows), max(map(len, rows)), dtype=torch.long)
    for r, row in enumerate(rows):
        ids[r, : len(row)] = torch.tensor(row)
    mask = (torch.arange(ids.shape[1])[None] < torch.tensor([len(r) for r in rows])[:, None]).long()
    with torch.no_grad():
        hidden = bert(input_ids=ids, attention_mask=mask).last_hidden_state
    m = mask[..., None].float()
    theirs = torch.nn.functional.normalize((hidden * m).sum(1) / m.sum(1), dim=-1)
    cosine = (ours * theirs).sum(-1)
    print(f"min cosine {cosine.min().item():.8f}")
    assert cosine.min().item() >= 0.99999
