"""The compiled decode step gives the eager FastDecoder's greedy tokens, compiles as one graph, and is
compiled once per machine.

The model: SmolLM2's real weights, its first 4 blocks (a 30-block compile takes a minute or two on 2
cores; what the compiler does to one block it does to every block). ``benchmarks/decode.py`` runs the
whole model compiled and checks its tokens against transformers'.
"""
from __future__ import annotations

import dataclasses

import pytest
import torch

from llmlab.inference import compiled_step
from llmlab.inference.compiled_step import CompiledDecoder, StaticStep, compiler_available, fingerprint
from llmlab.inference.fast_decoder import FastDecoder
from llmlab.inference.generation import generate, stream_batch
from llmlab.nn.kv_cache import KVCache, SlidingWindowCache
from llmlab.nn.model import Decoder
from llmlab.quant.linear import Int4WeightOnlyLinear, Int8WeightOnlyLinear

needs_compiler = pytest.mark.skipif(compiler_available() is not None, reason=str(compiler_available()))
BLOCKS = 4


@pytest.fixture(scope="module")
def prompts():
    from llmlab.tokenization.smollm2 import chat_template, load_smollm2_tokenizer

    tok = load_smollm2_tokenizer()
    return [tok.encode(chat_template([{"role": "user", "content": q}]))
            for q in ("What is a hash table?", "用一句话解释什么是注意力机制。")]


@pytest.fixture(scope="module")
def decoder():
    """SmolLM2's embedding, first BLOCKS blocks and final norm, as a Decoder."""
    pytest.importorskip("gguf")
    from llmlab.models import load_smollm2

    full = load_smollm2(device="cpu")
    model = Decoder(dataclasses.replace(full.cfg, n_layers=BLOCKS)).eval()
    state = {k: v for k, v in full.state_dict().items()
             if not k.startswith("layers.") or int(k.split(".")[1]) < BLOCKS}
    model.load_state_dict(state)
    return model


@pytest.fixture(scope="module")
def fast(decoder):
    return FastDecoder(decoder)


@needs_compiler
def test_the_step_compiles_as_one_graph_and_gives_the_eager_tokens(fast, prompts):
    torch._dynamo.reset()
    jit = CompiledDecoder(fast, mode="jit")
    assert jit.options["fullgraph"] is True  # a graph break would raise, not fall back to Python
    for ids in prompts:
        assert generate(jit, ids, 12) == generate(fast, ids, 12)
    # the step itself, traced with fullgraph=True: one graph, no break
    explained = torch._dynamo.explain(StaticStep(fast))(*compiled_step.step_inputs(fast, 1, 32))
    assert (explained.graph_count, explained.graph_break_count) == (1, 0), explained.break_reasons


@needs_compiler
def test_the_ahead_of_time_package_gives_the_eager_tokens_and_is_built_once(fast, prompts, tmp_path, monkeypatch):
    aot = CompiledDecoder(fast, mode="aot", package_dir=tmp_path, verbose=False)
    for ids in prompts:
        assert generate(aot, ids, 12) == generate(fast, ids, 12)
    # both prompts at once, left-padded: pad slots are masked as keys, one package serves every batch size
    batch = [t.tolist() for t in stream_batch(aot, prompts, 8)]
    assert batch == [t.tolist() for t in stream_batch(fast, prompts, 8)]
    packages = list(tmp_path.glob("*.pt2"))
    assert packages == [aot.package_path()] and fingerprint(fast) in aot.package_path().name

    def no_compile(*args, **kwargs):
        raise AssertionError("compiled again: the package on disk should have been loaded")

    monkeypatch.setattr(compiled_step, "package_step", no_compile)  # a new process would load it, not compile
    again = CompiledDecoder(fast, mode="aot", package_dir=tmp_path, verbose=False)
    assert generate(again, prompts[0], 4) == generate(fast, prompts[0], 4)


@needs_compiler
def test_the_int4_x_int8_step_compiles_around_its_kernel_and_gives_the_eager_tokens(decoder, prompts, tmp_path):
    """The benchmark's compiled int4 row: W4A8 blocks (a custom C++ op in the exported graph) and an int8 head."""
    from llmlab.quant import w4a8

    if not w4a8.kernel_available():
        pytest.skip("the w4a8 C++ kernel cannot be built here")
    eager = FastDecoder(decoder, w4a8.W4A8Linear.from_float, Int8WeightOnlyLinear.from_float)
    aot = CompiledDecoder(eager, mode="aot", package_dir=tmp_path, autotune=False, verbose=False)
    for ids in prompts:
        assert generate(aot, ids, 8) == generate(eager, ids, 8)


def test_the_fingerprint_changes_with_any_weight_and_with_the_layout(fast):
    before = fingerprint(fast)
    assert fingerprint(fast) == before
    with torch.no_grad():
        fast.layers[2].w2.weight[5, 7] += 1e-3
        try:
            assert fingerprint(fast) != before
        finally:
            fast.layers[2].w2.weight[5, 7] -= 1e-3
    small = Decoder(dataclasses.replace(fast.cfg, n_layers=1, vocab_size=64, max_seq_len=32)).eval()
    dense = FastDecoder(small)
    int4 = FastDecoder(small, Int4WeightOnlyLinear.from_float, Int8WeightOnlyLinear.from_float)
    assert fingerprint(dense) != fingerprint(int4)


def test_what_the_step_cannot_take_runs_eagerly(fast, prompts):
    """A prefill, a sliding-window cache (its slots move) and a call without last_only need no compiler."""
    model = CompiledDecoder(fast, mode="aot", package_dir="/nonexistent", verbose=False)
    ids = torch.tensor([prompts[0]])
    cache, reference = KVCache.for_model(fast, 1, 64), KVCache.for_model(fast, 1, 64)
    assert torch.equal(model(ids, cache), fast(ids, reference))
    window, reference = SlidingWindowCache.for_model(fast, window=8), SlidingWindowCache.for_model(fast, window=8)
    fast(ids[:, :4], reference)
    model(ids[:, :4], window)
    assert torch.equal(model(ids[:, 4:5], window, last_only=True), fast(ids[:, 4:5], reference, last_only=True))
    assert model._step is None


def test_bad_arguments_are_named(fast):
    with pytest.raises(TypeError, match="fast"):
        CompiledDecoder("model")
    with pytest.raises(ValueError, match="mode"):
        CompiledDecoder(fast, mode="eager")
    with pytest.raises(ValueError, match="jit"):
        CompiledDecoder(fast, mode="aot", dynamic=True)
    with pytest.raises(TypeError, match="verbose"):
        CompiledDecoder(fast, verbose=1)
    with pytest.raises(TypeError, match="fast"):
        compiled_step.package_step("model", "x.pt2")
    with pytest.raises(ValueError, match="max_batch"):
        compiled_step.package_step(fast, "x.pt2", max_batch=1)
    with pytest.raises(ValueError, match="path"):
        compiled_step.package_step(fast, "x.so")


def test_the_k_major_layout_computes_what_nn_linear_computes(decoder, fast, prompts):
    from llmlab.inference.fast_decoder import TransposedLinear

    w, x = torch.randn(48, 32), torch.randn(3, 5, 32)
    layer = TransposedLinear.from_float(w)
    assert layer.weight_t.shape == (32, 48) and layer.weight_t.is_contiguous()
    torch.testing.assert_close(layer(x), torch.nn.functional.linear(x, w), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="x"):
        layer(torch.randn(2, 31))
    kmajor = FastDecoder(decoder, TransposedLinear.from_float)  # the same weights, stored (K, N)
    assert generate(kmajor, prompts[1], 12) == generate(fast, prompts[1], 12)
