"""Inference: the KV cache, the decoding loop, sampling filters, FastDecoder and weight-only quantization, long
context, early exit and the decode roofline. Small random decoders for the mechanics; the real SmolLM2 for the
identities that matter (cached == uncached == argmax of a full forward each step, batched == alone, chunked == one pass), and
transformers' logits processors as the oracle of the filters. Speculative decoding: tests/test_speculative.py."""
import dataclasses
import math
import os

import pytest
import torch
import torch.nn.functional as F

from llmlab.inference.early_exit import choose_exit, exit_predictions, exit_tradeoff
from llmlab.inference.fast_decoder import FastDecoder
from llmlab.inference.generation import (GREEDY, Sampling, generate, generate_batch, left_pad, repetition_penalty,
                               stop_strings, stream, top_k_filter, top_p_filter)
from llmlab.inference.long_context import chunked_nll, masked_nll, sliding_window_mask, window_perplexity
from llmlab.metrics.speed import bandwidth_bound, decode_bytes_per_token, measure_bandwidth
from llmlab.nn.kv_cache import KVCache, SlidingWindowCache, write_kv
from llmlab.nn.model import Decoder, DecoderConfig
from llmlab.quant.linear import Int4WeightOnlyLinear, Int8WeightOnlyLinear

V = 50


def _cfg(**kw) -> DecoderConfig:
    base = dict(vocab_size=V, dim=24, n_layers=2, n_heads=6, n_kv_heads=2, hidden_dim=40, rope_theta=1e4,
                norm_eps=1e-5, max_seq_len=64)
    return DecoderConfig(**{**base, **kw})


def _tiny(seed=0, **kw) -> Decoder:
    torch.manual_seed(seed)
    model = Decoder(_cfg(**kw)).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.uniform_(0.5, 1.5)
            elif p.ndim == 2:  # larger weights than the training init: peaked, input-dependent predictions
                p.normal_(0, 0.3)
    return model


def _ids(n, seed=0):
    return torch.randint(0, V, (n,), generator=torch.Generator().manual_seed(seed)).tolist()


def _cores_per_worker() -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))


@pytest.fixture(scope="module", autouse=True)
def _threads_per_worker():
    """Under pytest-xdist, each worker gets its share of the cores: PyTorch's OpenMP threads spin while they
    wait, so 2 workers x 2 threads on 2 cores run several times slower than 2 x 1."""
    before = torch.get_num_threads()
    torch.set_num_threads(min(before, _cores_per_worker()))
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny():
    return _tiny()


# ------------------------------------------------------------------------------------------ KV cache


def test_write_kv_writes_in_place_and_returns_views_of_the_filled_part():
    kc, vc = torch.zeros(2, 3, 8, 4), torch.zeros(2, 3, 8, 4)
    k, v = torch.randn(2, 3, 2, 4), torch.randn(2, 3, 2, 4)
    k_all, v_all = write_kv(kc, vc, k, v, start=3)
    assert k_all.shape == v_all.shape == (2, 3, 5, 4)
    assert torch.equal(kc[:, :, 3:5], k) and torch.equal(vc[:, :, 3:5], v)
    assert not kc[:, :, :3].any() and not kc[:, :, 5:].any() and not vc[:, :, 5:].any()
    assert k_all.data_ptr() == kc.data_ptr() and v_all.data_ptr() == vc.data_ptr()  # views, no copy
    kc[0, 0, 0, 0] = 7.0
    assert k_all[0, 0, 0, 0] == 7.0


def test_cache_size_and_overflow(tiny):
    cfg = tiny.cfg
    cache = KVCache.for_model(tiny, batch_size=2, max_len=10)
    assert cache.k.shape == (cfg.n_layers, 2, cfg.n_kv_heads, 10, cfg.head_dim)
    assert cache.nbytes == 2 * cfg.n_layers * 2 * cfg.n_kv_heads * 10 * cfg.head_dim * 4
    assert KVCache.for_model(tiny).max_len == cfg.max_seq_len
    with torch.no_grad():
        tiny(torch.tensor([_ids(6)] * 2), cache=cache)
        assert cache.length == 6
        with pytest.raises(ValueError, match="cache holds 10 tokens"):
            tiny(torch.tensor([_ids(5)] * 2), cache=cache)
        assert cache.length == 6  # a refused write changes nothing
        with pytest.raises(ValueError, match="batch size 2"):
            tiny(torch.tensor([_ids(1)]), cache=cache)
    for bad, exc in ((dict(max_len=0), ValueError), (dict(batch_size=0), ValueError), (dict(max_len=2.5), TypeError)):
        with pytest.raises(exc, match=next(iter(bad))):
            KVCache(**{**dict(n_layers=1, batch_size=1, n_kv_heads=1, head_dim=2, max_len=4), **bad})
    with pytest.raises(ValueError, match="attention_mask"):
        KVCache(1, 2, 1, 2, 8).begin(3, torch.ones(2, 4))


@torch.no_grad()
def test_cached_decoding_equals_full_forward_and_truncate_rolls_back(tiny):
    ids = torch.tensor([_ids(12, seed=1)])
    full = tiny(ids)[0]
    cache = KVCache.for_model(tiny, 1, 12)
    steps = [tiny(ids[:, :5], cache=cache)[0]] + [tiny(ids[:, t:t + 1], cache=cache)[0] for t in range(5, 12)]
    torch.testing.assert_close(torch.cat(steps), full, atol=1e-5, rtol=1e-5)
    # roll back 4 tokens and feed different ones: as if the first ones had never been written
    cache.truncate(8)
    assert cache.length == 8 and cache.next_pos.tolist() == [8]
    other = torch.tensor([[1, 2, 3]])
    out = tiny(other, cache=cache)[0]
    torch.testing.assert_close(out, tiny(torch.cat([ids[:, :8], other], 1))[0, 8:], atol=1e-5, rtol=1e-5)
    last = tiny(ids[:, :1], cache=KVCache.for_model(tiny, 1, 4), last_only=True)
    assert last.shape == (1, 1, V)
    with pytest.raises(ValueError, match="length must be in"):
        cache.truncate(12)
    with pytest.raises(ValueError, match="length must be in"):
        cache.truncate(-1)


def test_begin_positions_and_masks_with_left_padding():
    cache = KVCache(1, 2, 1, 2, 8)
    mask = torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1]])
    positions, m = cache.begin(4, mask)
    # a row's positions count its real tokens only; a pad takes the position of the next real token
    assert positions.tolist() == [[0, 0, 0, 1], [0, 1, 2, 3]]
    assert m.shape == (2, 1, 4, 4)
    assert m[0, 0].tolist() == [[True, False, False, False],  # a pad query sees itself only
                                [False, True, False, False],
                                [False, False, True, False],  # real queries never see pad keys
                                [False, False, True, True]]
    assert torch.equal(m[1, 0], torch.ones(4, 4, dtype=torch.bool).tril())
    cache.end(4)
    positions, m = cache.begin(1)  # a decode step after padding still needs the mask
    assert positions.tolist() == [[2], [4]]
    assert m[:, 0, 0].tolist() == [[False, False, True, True, True], [True] * 5]
    cache.end(1)
    cache.truncate(3)
    assert cache.next_pos.tolist() == [1, 3]
    unpadded = KVCache(1, 1, 1, 2, 8)
    unpadded.begin(3)
    unpadded.end(3)
    positions, m = unpadded.begin(1)
    assert positions.tolist() == [[3]] and m is None  # one query seeing every key: no mask at all


@torch.no_grad()
def test_left_padded_batch_with_cache_equals_each_row_alone(tiny):
    prompts = [_ids(3, seed=2), _ids(9, seed=3), _ids(6, seed=4)]
    ids, mask = left_pad(prompts, pad_id=7)
    assert ids.shape == (3, 9) and mask.sum(1).tolist() == [3, 9, 6] and ids[0, :6].tolist() == [7] * 6
    follow = torch.tensor([_ids(4, seed=5)] * 3).T  # the same 4 decode tokens for every row
    cache = KVCache.for_model(tiny, 3, 13)
    batch = [tiny(ids, attention_mask=mask, cache=cache)[:, -1]]
    batch += [tiny(f[:, None], cache=cache)[:, -1] for f in follow]
    for r, prompt in enumerate(prompts):
        alone_cache = KVCache.for_model(tiny, 1, 13)
        alone = [tiny(torch.tensor([prompt]), cache=alone_cache)[0, -1]]
        alone += [tiny(f[r:r + 1, None], cache=alone_cache)[0, -1] for f in follow]
        for b, a in zip(batch, alone):
            torch.testing.assert_close(b[r], a, atol=1e-5, rtol=1e-5)
        # the uncached padded forward agrees too (per-row RoPE positions)
        torch.testing.assert_close(tiny(ids, attention_mask=mask)[r, -1], alone[0], atol=1e-5, rtol=1e-5)


def test_generate_batch_equals_generate_on_a_small_model(tiny):
    prompts = [_ids(2, seed=6), _ids(7, seed=7), _ids(4, seed=8)]
    batch = generate_batch(tiny, prompts, 6)
    assert batch == [generate(tiny, p, 6) for p in prompts]
    assert batch == generate_batch(tiny, prompts, 6, use_cache=False)
    # eos: a row stops at it (included), the others go on
    eos = batch[1][2]
    stopped = generate_batch(tiny, prompts, 6, eos_id=eos)
    for row, full in zip(stopped, batch):
        assert row == (full[:full.index(eos) + 1] if eos in full else full)


def test_repetition_penalty_ignores_the_padding_of_a_batch(tiny):
    """A pad token is not text: penalising it in the padded rows only would make them differ from the prompt
    alone (pad ids 21 and 42 change this model's greedy output when counted as seen)."""
    prompts = [_ids(2, seed=6), _ids(7, seed=7), _ids(4, seed=8)]
    s = Sampling(temperature=0, repetition_penalty=3.0)
    alone = [generate(tiny, p, 8, s) for p in prompts]
    for pad_id in (21, 42):
        assert generate_batch(tiny, prompts, 8, s, pad_id=pad_id) == alone
        assert generate_batch(tiny, prompts, 8, s, pad_id=pad_id, use_cache=False) == alone


def test_sliding_window_cache_keeps_the_sinks_and_the_last_tokens():
    cache = SlidingWindowCache(1, 1, 1, 1, window=3, sink=2)
    assert cache.max_len == 5 and cache.nbytes == 2 * 5 * 4
    for t in range(10):
        positions, _ = cache.begin(1)
        assert positions.tolist() == [[t]]  # true positions, not slots
        cache.update(0, torch.full((1, 1, 1, 1), float(t)), torch.full((1, 1, 1, 1), -float(t)))
        cache.end(1)
        assert cache.length == min(t + 1, 5)
    assert cache.k[0, 0, 0, :, 0].tolist() == [0, 1, 7, 8, 9]
    assert cache.v[0, 0, 0, :, 0].tolist() == [0, -1, -7, -8, -9]
    positions, _ = cache.begin(2)  # a chunk of 2 sees the sinks, the last window - 2 = 1 token and itself
    assert positions.tolist() == [[10, 11]]
    assert cache.length == 3 and cache.k[0, 0, 0, :3, 0].tolist() == [0, 1, 9]
    with pytest.raises(ValueError, match="at most window"):
        SlidingWindowCache(1, 1, 1, 1, window=3).begin(4)
    with pytest.raises(NotImplementedError):
        cache.truncate(1)
    with pytest.raises(ValueError, match="window"):
        SlidingWindowCache(1, 1, 1, 1, window=0)
    with pytest.raises(ValueError, match="sink"):
        SlidingWindowCache(1, 1, 1, 1, window=3, sink=-1)


@torch.no_grad()
def test_window_perplexity_and_chunked_nll(tiny):
    ids = _ids(40, seed=9)
    t = torch.tensor(ids)
    reference = F.cross_entropy(tiny(t[None])[0, :-1], t[1:], reduction="none")
    for chunk in (1, 7, 64):
        torch.testing.assert_close(chunked_nll(tiny, ids, chunk=chunk), reference, atol=1e-5, rtol=1e-5)
    full_ppl, full_bytes = window_perplexity(tiny, ids, window=None)
    assert full_ppl == pytest.approx(math.exp(float(reference.mean())), rel=1e-5)
    for window, sink in ((40, 4), (48, 0)):  # a window holding the whole text changes nothing
        ppl, _ = window_perplexity(tiny, ids, window=window, sink=sink)
        assert ppl == pytest.approx(full_ppl, rel=1e-5)
    ppl, nbytes = window_perplexity(tiny, ids, window=8, sink=2)
    cfg = tiny.cfg
    assert nbytes == 2 * cfg.n_layers * cfg.n_kv_heads * 10 * cfg.head_dim * 4 < full_bytes
    assert math.isfinite(ppl) and ppl != pytest.approx(full_ppl, rel=1e-3)
    # memory does not grow with the text
    assert window_perplexity(tiny, _ids(60, seed=10), window=8, sink=2)[1] == nbytes
    with pytest.raises(ValueError, match="at least 2"):
        chunked_nll(tiny, [1])


def test_sliding_window_mask_counts_the_query_in_the_window():
    m = sliding_window_mask(7, 3, 2)
    assert m.dtype == torch.bool and m.shape == (7, 7)
    assert m[6].tolist() == [True, True, False, False, True, True, True]  # sinks 0, 1 and keys 4 .. 6
    assert m[1].tolist() == [True, True] + [False] * 5  # causal, sinks included
    assert torch.equal(sliding_window_mask(6, 6, 0), torch.ones(6, 6, dtype=torch.bool).tril())  # window >= T: causal
    assert torch.equal(sliding_window_mask(4, 1), torch.eye(4, dtype=torch.bool))
    assert torch.equal(sliding_window_mask(9, 2, 4)[:4, :4], torch.ones(4, 4, dtype=torch.bool).tril())  # sink > window
    for kw, error, match in [(dict(T=0, window=2), ValueError, "T"), (dict(T=4, window=0), ValueError, "window"),
                             (dict(T=4, window=2, sink=-1), ValueError, "sink"), (dict(T=4.0, window=2), TypeError, "T")]:
        with pytest.raises(error, match=match):
            sliding_window_mask(**kw)


@torch.no_grad()
def test_one_pass_with_the_window_mask_equals_the_window_cache_token_by_token(tiny):
    ids = _ids(30, seed=11)
    for window, sink in ((4, 0), (4, 2), (6, 9), (40, 0)):
        one_pass = masked_nll(tiny, ids, sliding_window_mask(29, window, sink))
        cache = SlidingWindowCache.for_model(tiny, 1, window=window, sink=sink)
        torch.testing.assert_close(one_pass, chunked_nll(tiny, ids, chunk=1, cache=cache), atol=1e-5, rtol=1e-5)
    t = torch.tensor(ids)  # the causal mask is the model's own forward
    torch.testing.assert_close(masked_nll(tiny, ids, torch.ones(29, 29, dtype=torch.bool).tril()),
                               F.cross_entropy(tiny(t[None])[0, :-1], t[1:], reduction="none"))
    assert not tiny.layers[0]._forward_pre_hooks  # the hooks are removed
    with pytest.raises(TypeError, match="mask"):
        masked_nll(tiny, ids, sliding_window_mask(29, 4).float())
    with pytest.raises(ValueError, match="mask"):
        masked_nll(tiny, ids, sliding_window_mask(30, 4))
    with pytest.raises(TypeError, match="model"):
        masked_nll(FastDecoder(tiny), ids, sliding_window_mask(29, 4))


# ------------------------------------------------------------------------------------------ sampling


def _logits(rows=64, vocab=100, seed=0):
    return torch.randn(rows, vocab, generator=torch.Generator().manual_seed(seed)) * 2


@pytest.mark.parametrize("k", [1, 5, 37, 100, 150])
def test_top_k_matches_transformers(k):
    transformers = pytest.importorskip("transformers")
    logits = _logits()
    ours = top_k_filter(logits, k)
    theirs = transformers.TopKLogitsWarper(k)(None, logits.clone())
    assert torch.equal(ours, theirs)
    assert (ours > float("-inf")).sum(1).tolist() == [min(k, 100)] * 64
    ties = torch.tensor([[1.0, 3.0, 3.0, 2.0, 3.0]])  # both keep every logit tied with the k-th
    assert torch.equal(top_k_filter(ties, 2), transformers.TopKLogitsWarper(2)(None, ties.clone()))
    assert torch.isinf(top_k_filter(ties, 2)).tolist() == [[True, False, False, True, False]]


@pytest.mark.parametrize("p", [1e-4, 0.1, 0.5, 0.9, 0.999, 1.0])
def test_top_p_matches_transformers(p):
    """Ours keeps a token when the mass of the more probable tokens is < p; transformers sorts ascending and
    drops a token when the cumulative mass up to it is <= 1 - p. The rules are the same set (mass before
    < p  <=>  mass from it on > 1 - p) up to float rounding and the order of tied logits, so the inputs are
    continuous random logits (no ties) and p values far from any cumulative sum."""
    transformers = pytest.importorskip("transformers")
    logits = _logits(seed=1)
    ours = top_p_filter(logits, p)
    theirs = transformers.TopPLogitsWarper(p)(None, logits.clone())
    assert torch.equal(torch.isinf(ours), torch.isinf(theirs))
    assert torch.equal(ours, theirs)
    kept = ours.softmax(-1) > 0
    probs = logits.softmax(-1)
    assert ((probs * kept).sum(1) >= p - 1e-6).all()  # the nucleus holds at least p
    assert kept.sum(1).min() >= 1  # the top token always survives


def test_top_p_keeps_the_smallest_nucleus():
    logits = torch.tensor([0.5, 0.3, 0.15, 0.05]).log()
    assert torch.isinf(top_p_filter(logits, 0.5)).tolist() == [False, True, True, True]
    assert torch.isinf(top_p_filter(logits, 0.51)).tolist() == [False, False, True, True]
    assert torch.isinf(top_p_filter(logits, 0.95)).tolist() == [False, False, False, True]
    assert torch.equal(top_p_filter(logits, 1.0), logits)


@pytest.mark.parametrize("penalty", [1.3, 0.7, 1.0])
def test_repetition_penalty_matches_transformers(penalty):
    transformers = pytest.importorskip("transformers")
    logits = _logits(rows=4, vocab=30, seed=2)
    previous = torch.randint(0, 30, (4, 12), generator=torch.Generator().manual_seed(3))  # with repeats
    ours = repetition_penalty(logits, previous, penalty)
    theirs = transformers.RepetitionPenaltyLogitsProcessor(penalty)(previous, logits.clone())
    torch.testing.assert_close(ours, theirs, atol=0, rtol=0)
    untouched = torch.ones_like(logits, dtype=torch.bool).scatter(1, previous, False)
    assert torch.equal(ours[untouched], logits[untouched])
    if penalty > 1:  # every seen token got less likely, once however often it occurred
        seen = ~untouched
        assert (ours[seen] < logits[seen]).all()


def test_sampling_follows_the_filtered_distribution():
    logits = torch.tensor([3.0, 2.5, 2.0, 1.0, 0.5, 0.0, -1.0, -2.0])
    s = Sampling(temperature=0.8, top_k=5, top_p=0.9, seed=0)
    expected = top_p_filter(top_k_filter(logits, 5) / 0.8, 0.9).softmax(-1)
    draws = s.choose(logits.expand(4000, -1), torch.zeros(4000, 1, dtype=torch.long), s.generator("cpu"))
    freq = torch.bincount(draws, minlength=8).float() / 4000
    assert (freq[expected == 0] == 0).all()
    assert 0.5 * (freq - expected).abs().sum() < 0.03


def test_sampling_with_a_seed_is_reproducible(tiny):
    prompt = _ids(4, seed=11)
    s = Sampling(temperature=1.0, top_k=20, top_p=0.95, repetition_penalty=1.2, seed=7)
    a = generate(tiny, prompt, 12, s)
    assert a == generate(tiny, prompt, 12, s)
    assert a != generate(tiny, prompt, 12, dataclasses.replace(s, seed=8))
    assert generate_batch(tiny, [prompt, prompt[:2]], 5, s) == generate_batch(tiny, [prompt, prompt[:2]], 5, s)
    greedy = generate(tiny, prompt, 8)
    assert generate(tiny, prompt, 8, Sampling(top_k=1, seed=1)) == greedy  # top-k 1 is greedy
    assert generate(tiny, prompt, 8, Sampling(temperature=1.0, top_p=1e-6, seed=1)) == greedy
    assert greedy == generate(tiny, prompt, 8, use_cache=False)


def test_stop_strings_and_eos_stop_generation(tiny):
    prompt = _ids(3, seed=12)
    full = generate(tiny, prompt, 12)

    def decode(ids):
        return "".join(f"<{i}>" for i in ids)

    target = full[4]
    new = generate(tiny, prompt, 12, stop=stop_strings(decode, ["<999>", f"<{target}>"]))
    assert new == full[:full.index(target) + 1]
    two = f"<{full[2]}><{full[3]}>"  # a stop string spanning two tokens
    assert generate(tiny, prompt, 12, stop=stop_strings(decode, [two])) == full[:4]
    assert generate(tiny, prompt, 12, eos_id=full[5]) == full[:full.index(full[5]) + 1]
    assert list(stream(tiny, prompt, 12)) == full
    assert generate(tiny, prompt, 0) == []
    with pytest.raises(ValueError, match="non-empty"):
        stop_strings(decode, [])
    with pytest.raises(ValueError, match="non-empty"):
        stop_strings(decode, "abc")
    with pytest.raises(ValueError, match="non-empty"):
        stop_strings(decode, ["a", ""])
    with pytest.raises(TypeError, match="decode"):
        stop_strings("not a function", ["a"])


# ------------------------------------------------------------------------------------------ errors


@pytest.fixture(scope="module")
def tiny16():
    return _tiny(max_seq_len=16)


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        (dict(max_new_tokens=-1), ValueError, "max_new_tokens"),
        (dict(max_new_tokens=2.0), TypeError, "max_new_tokens"),
        (dict(max_new_tokens=True), TypeError, "max_new_tokens"),
        (dict(ids=list(range(17))), ValueError, "longer than the model's context of 16"),
        (dict(ids=list(range(10)), max_new_tokens=7), ValueError, r"prompt \(10\) \+ max_new_tokens \(7\) exceed"),
        (dict(ids=[]), ValueError, "empty"),
        (dict(ids=[1, 99]), ValueError, "outside"),
        (dict(ids="abc"), TypeError, "str"),
        (dict(ids=torch.ones(2, 3, dtype=torch.long)), ValueError, "1-D"),
        (dict(sampling=0.5), TypeError, "Sampling"),
    ],
)
def test_generate_bad_input(tiny16, kwargs, exc, match):
    args = {**dict(ids=[1, 2, 3], max_new_tokens=2), **kwargs}
    with pytest.raises(exc, match=match):
        generate(tiny16, **args)
    ids = args["ids"]
    if isinstance(ids, list) and ids and max(ids) < V:  # the batch has the same checks
        with pytest.raises(exc, match=match):
            generate_batch(tiny16, [ids, [4, 5]], args["max_new_tokens"], args.get("sampling", GREEDY))


def test_generate_up_to_the_context_is_allowed(tiny16):
    assert len(generate(tiny16, list(range(10)), 6)) == 6
    assert len(generate(tiny16, list(range(16)), 0)) == 0


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        (dict(top_p=0), ValueError, "top_p"),
        (dict(top_p=1.5), ValueError, "top_p"),
        (dict(top_p=-0.1), ValueError, "top_p"),
        (dict(top_p=float("nan")), ValueError, "top_p"),
        (dict(temperature=-0.5), ValueError, "temperature"),
        (dict(temperature=float("nan")), ValueError, "temperature"),
        (dict(temperature="hot"), TypeError, "temperature"),
        (dict(top_k=0), ValueError, "top_k"),
        (dict(top_k=2.5), TypeError, "top_k"),
        (dict(repetition_penalty=0), ValueError, "repetition_penalty"),
        (dict(repetition_penalty=-1.0), ValueError, "repetition_penalty"),
    ],
)
def test_sampling_bad_parameters(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        Sampling(**kwargs)


def test_filters_bad_input():
    logits = torch.randn(2, 5)
    for p in (0, 1.5, -0.1, float("nan")):
        with pytest.raises(ValueError, match="p must be"):
            top_p_filter(logits, p)
    with pytest.raises(TypeError, match="p must be"):
        top_p_filter(logits, True)
    with pytest.raises(ValueError, match="k"):
        top_k_filter(logits, 0)
    with pytest.raises(TypeError, match="float tensor"):
        top_k_filter(torch.ones(2, 5, dtype=torch.long), 2)
    with pytest.raises(ValueError, match="previous must have shape"):
        repetition_penalty(logits, torch.zeros(3, 2, dtype=torch.long), 1.2)
    with pytest.raises(TypeError, match="previous must be a long tensor"):
        repetition_penalty(logits, torch.zeros(2, 2), 1.2)
    with pytest.raises(ValueError, match="penalty"):
        repetition_penalty(logits, torch.zeros(2, 2, dtype=torch.long), 0.0)
    with pytest.raises(ValueError, match="non-empty"):
        left_pad([])


# ------------------------------------------------------------------------------------------ quantization


def _int4_representable(N, K, group=32, seed=0):
    """Weights that Q4_1 with ``group`` stores exactly: w = s q + m with every group using codes 0 and 15,
    power-of-two scales and minimums on the scale's grid (so even the bf16 scales of the CPU kernel are exact)."""
    g = torch.Generator().manual_seed(seed)
    q = torch.randint(0, 16, (N, K // group, group), generator=g).float()
    q[..., 0], q[..., 1] = 0, 15
    s = 2.0 ** -torch.randint(3, 7, (N, K // group, 1), generator=g).float()
    m = s * torch.randint(-12, -4, (N, K // group, 1), generator=g).float()
    return (q * s + m).reshape(N, K)


@pytest.mark.parametrize("N,K,group", [(32, 64, 32), (48, 128, 64), (8, 64, 32), (16, 48, 16)])
def test_int4_reproduces_representable_weights_and_matches_f_linear(N, K, group):
    # (8, ...) and group 16 are outside the CPU kernel's shapes: they take the dequantize + F.linear path
    w = _int4_representable(N, K, group)
    layer = Int4WeightOnlyLinear.from_float(w, group_size=group)
    packed = N % 16 == 0 and group in (32, 64, 128, 256) and hasattr(torch.ops.aten, "_weight_int4pack_mm_for_cpu")
    assert (layer.packed is not None) == packed
    torch.testing.assert_close(layer.dequantize(), w, atol=1e-6, rtol=0)
    x = torch.randn(2, 3, K, generator=torch.Generator().manual_seed(1))
    y = layer(x)
    assert y.shape == (2, 3, N) and y.dtype == torch.float32
    ref = F.linear(x, layer.dequantize())
    torch.testing.assert_close(y, ref, rtol=2e-2, atol=2e-2 * float(ref.abs().max()))
    # half a byte per weight plus one (scale, zero) pair per group: bf16 packed, float32 unpacked
    assert layer.weight_nbytes == N * K // 2 + N * (K // group) * 2 * (2 if packed else 4)


def test_int4_error_on_random_weights_is_within_half_a_step():
    w = torch.randn(32, 96, generator=torch.Generator().manual_seed(2))
    layer = Int4WeightOnlyLinear.from_float(w)
    step = layer.scale.repeat_interleave(32, dim=1)  # (N, K): each weight's group scale
    err = (layer.dequantize() - w).abs()
    # rounding to the nearest code, plus (on the CPU) the kernel's bf16 scale s and zero m + 8 s, each within
    # a relative 2^-9 of the float value, times |q - 8| <= 8 and 1
    bf16 = 2.0 ** -9 * (8 * step + (layer.minimum + 8 * layer.scale).abs().repeat_interleave(32, dim=1))
    assert (err <= 0.5 * step + bf16 + 1e-6).all()
    assert err.max() > 0  # random weights are not representable: the test would catch a no-op
    with pytest.raises(ValueError, match="group_size"):
        Int4WeightOnlyLinear.from_float(w, group_size=40)
    with pytest.raises(ValueError, match="weight must have 2 dimensions"):
        Int4WeightOnlyLinear.from_float(torch.randn(8))


@pytest.mark.parametrize("N,K", [(32, 64), (5, 24), (3, 5)])
def test_int8_reproduces_representable_weights_and_matches_f_linear(N, K):
    # K = 24 and 5 are not multiples of 16: the CPU kernel would read past the rows (garbage or a crash)
    g = torch.Generator().manual_seed(3)
    q = torch.randint(-127, 128, (N, K), generator=g).float()
    q[:, 0] = 127  # the largest |w| of each row maps to 127
    s = 2.0 ** -torch.randint(4, 9, (N, 1), generator=g).float()
    w = q * s
    layer = Int8WeightOnlyLinear.from_float(w)
    assert layer.q.dtype == torch.int8
    torch.testing.assert_close(layer.dequantize(), w, atol=0, rtol=0)
    x = torch.randn(4, K, generator=g)
    ref = F.linear(x, w)
    torch.testing.assert_close(layer(x), ref, rtol=2e-2, atol=2e-2 * float(ref.abs().max()))
    assert layer.weight_nbytes == N * K + N * 4  # one byte per weight, one float32 scale per row
    rand = torch.randn(N, K, generator=g)
    err = (Int8WeightOnlyLinear.from_float(rand).dequantize() - rand).abs()
    assert (err <= rand.abs().amax(1, keepdim=True) / 254 + 1e-6).all()


@torch.no_grad()
def test_fast_decoder_equals_decoder_on_a_padded_batch(tiny):
    fast = FastDecoder(tiny)
    prompts = [_ids(3, seed=13), _ids(8, seed=14)]
    ids, mask = left_pad(prompts)
    ref = tiny(ids, attention_mask=mask)
    out = fast(ids, KVCache.for_model(fast, 2, 8), attention_mask=mask)
    real = mask.bool()
    torch.testing.assert_close(out[real], ref[real], atol=1e-5, rtol=1e-5)
    assert generate_batch(fast, prompts, 5) == generate_batch(tiny, prompts, 5)
    with pytest.raises(TypeError, match="KVCache"):
        fast(ids, None)
    with pytest.raises(TypeError, match="Decoder"):
        FastDecoder(torch.nn.Linear(2, 2))
    # quantized layers of any shape work (the fallback path where the CPU kernels do not apply)
    q = FastDecoder(tiny, linear=Int8WeightOnlyLinear.from_float)
    logits = q(ids[:1, -3:], KVCache.for_model(q, 1, 3))
    assert torch.isfinite(logits).all() and (logits - tiny(ids[:1, -3:])).abs().max() < 0.5


# ------------------------------------------------------------------------------------------ early exit, roofline


@torch.no_grad()
def test_early_exit_tradeoff():
    model = _tiny(n_layers=4)
    idx = torch.tensor([_ids(10, seed=15)])
    layers = [1, 2, 3, 4]
    preds, conf = exit_predictions(model, idx, layers)
    assert preds.shape == conf.shape == (4, 10) and preds.dtype == torch.long
    assert torch.equal(preds[-1], model(idx)[0].argmax(-1))  # the last exit is the model itself
    assert ((conf > 0) & (conf <= 1)).all()
    assert not model.layers[0]._forward_hooks  # the hooks are removed
    points = exit_tradeoff(preds, conf, layers, 4, [0.0, 0.2, 0.5, 0.9, 1.01])
    assert [p.threshold for p in points] == [0.0, 0.2, 0.5, 0.9, 1.01]
    fractions = [p.layers_fraction for p in points]
    assert fractions == sorted(fractions)  # a higher threshold never exits earlier
    assert points[0].layers_fraction == 0.25  # everything is confident enough at tau = 0
    assert points[0].agreement == pytest.approx(float((preds[0] == preds[-1]).float().mean()))
    assert points[-1].layers_fraction == 1.0 and points[-1].agreement == 1.0  # nothing reaches tau > 1
    assert all(0 <= p.agreement <= 1 for p in points)
    with pytest.raises(ValueError, match="full model"):
        exit_tradeoff(preds[:3], conf[:3], [1, 2, 3], 4, [0.5])
    with pytest.raises(ValueError, match="layers"):
        exit_predictions(model, idx, [0, 4])
    with pytest.raises(ValueError, match="layers"):
        exit_predictions(model, idx, [])


def test_choose_exit_takes_the_first_confident_exit_or_the_last():
    preds = torch.tensor([[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]], dtype=torch.int32)
    conf = torch.tensor([[0.5, 0.1, 0.9, 0.1], [0.9, 0.5, 0.1, 0.2], [0.1, 0.2, 0.3, 0.3]])
    before = conf.clone()
    exit_, token = choose_exit(preds, conf, 0.5)
    assert exit_.tolist() == [0, 1, 0, 2] and exit_.dtype == torch.long  # a tie exits; none confident: the last
    assert token.tolist() == [1, 6, 3, 12] and token.dtype == torch.int32
    assert torch.equal(conf, before)
    assert choose_exit(preds, conf, math.inf)[0].tolist() == [2] * 4
    assert choose_exit(preds[:1], conf[:1], 0.99)[0].tolist() == [0] * 4  # one exit: the full model
    for args, error, match in [((preds.float(), conf, 0.5), TypeError, "preds"), ((-preds, conf, 0.5), ValueError, "preds"),
                               ((preds, conf.long(), 0.5), TypeError, "conf"), ((preds, conf[:2], 0.5), ValueError, "conf"),
                               ((preds[:, :0], conf[:, :0], 0.5), ValueError, "preds"),
                               ((preds, conf, float("nan")), ValueError, "threshold"),
                               ((preds, conf, "0.5"), TypeError, "threshold")]:
        with pytest.raises(error, match=match):
            choose_exit(*args)


def test_exit_tradeoff_with_a_choose_of_ones_own():
    model = _tiny(n_layers=4)
    preds, conf = exit_predictions(model, torch.tensor([_ids(12, seed=16)]), [2, 4])
    taus = [0.0, 0.3, 0.6, 1.1]
    want = exit_tradeoff(preds, conf, [2, 4], 4, taus)
    assert exit_tradeoff(preds, conf, [2, 4], 4, taus, choose=choose_exit) == want

    def in_place(p, c, tau):  # the learner's function gets copies: exit_tradeoff's tensors are left as they are
        c.fill_(0.0)
        return choose_exit(p, c, tau)

    exit_tradeoff(preds, conf, [2, 4], 4, taus, choose=in_place)
    assert exit_tradeoff(preds, conf, [2, 4], 4, taus) == want
    as_lists = exit_tradeoff(preds, conf, [2, 4], 4, taus, choose=lambda p, c, t: [x.tolist() for x in choose_exit(p, c, t)])
    assert as_lists == want
    for bad, error in [("first", TypeError), (lambda p, c, t: None, TypeError),
                       (lambda p, c, t: (torch.full((12,), 2), p[-1]), ValueError),
                       (lambda p, c, t: (torch.zeros(12), p[-1]), ValueError),
                       (lambda p, c, t: (torch.zeros(3, dtype=torch.long), p[-1]), ValueError)]:
        with pytest.raises(error, match="choose"):
            exit_tradeoff(preds, conf, [2, 4], 4, taus, choose=bad)


def test_decode_bytes_per_token_and_bandwidth_bound():
    assert decode_bytes_per_token(1000, 30, 3, 64, 100, 2) == 1000 + 2 * 30 * 3 * 64 * 100 * 2
    assert decode_bytes_per_token(1000, 30, 3, 64, 0) == 1000
    # the KV term is exactly what a cache of that context holds (float32)
    assert decode_bytes_per_token(1, 30, 3, 64, 100) - 1 == KVCache(30, 1, 3, 64, 100).nbytes
    assert bandwidth_bound(2e6, 1e9) == pytest.approx(500.0)
    assert measure_bandwidth(n_bytes=2**20, repeats=1) > 0
    for bad, exc in ((dict(weight_bytes=0), ValueError), (dict(n_layers=-1), ValueError), (dict(context_len=-1), ValueError),
                     (dict(head_dim=2.0), TypeError), (dict(kv_bytes_per_element=True), TypeError)):
        args = {**dict(weight_bytes=10, n_layers=1, n_kv_heads=1, head_dim=2, context_len=3), **bad}
        with pytest.raises(exc, match=next(iter(bad))):
            decode_bytes_per_token(**args)
    with pytest.raises(ValueError):
        bandwidth_bound(0, 1e9)


# ------------------------------------------------------------------------------------------ SmolLM2


@pytest.fixture(scope="module")
def smollm2():
    pytest.importorskip("gguf")
    from llmlab.models import load_smollm2

    return load_smollm2(device="cpu")


@pytest.fixture(scope="module")
def tok():
    from llmlab.tokenization.smollm2 import load_smollm2_tokenizer

    return load_smollm2_tokenizer()


def test_smollm2_cached_generation_equals_uncached_and_plain_argmax(smollm2, tok):
    ids = tok.encode("Once upon a time,")
    cached = generate(smollm2, ids, 6)
    print(repr(tok.decode(cached)))
    assert len(cached) == 6
    assert cached == generate(smollm2, ids, 6, use_cache=False)
    seq = list(ids)
    with torch.no_grad():  # the definition: the whole sequence through the model, argmax of the last position
        for _ in range(6):
            seq.append(int(smollm2(torch.tensor([seq]))[0, -1].argmax()))
    assert cached == seq[len(ids):]


def test_smollm2_batch_equals_each_prompt_alone(smollm2, tok):
    prompts = [tok.encode(t) for t in ("The capital of France is", "Hello", "def fibonacci(n):\n    return")]
    assert len({len(p) for p in prompts}) == 3
    batch = generate_batch(smollm2, prompts, 5, pad_id=2)
    assert batch == [generate(smollm2, p, 5) for p in prompts]


def test_smollm2_stop_string(smollm2, tok):
    new = generate(smollm2, tok.encode("The capital of France is"), 12, stop=stop_strings(tok.decode, ["Paris"]))
    assert "Paris" in tok.decode(new) and "Paris" not in tok.decode(new[:-1])


@torch.no_grad()
def test_smollm2_chunked_prefill_equals_one_forward(smollm2, tok):
    ids = torch.tensor([tok.encode("A key/value cache stores the keys and values of every past token, so each "
                                   "new token needs one row of queries.")])
    T = ids.shape[1]
    assert T > 23
    full = smollm2(ids)[0]
    cache = KVCache.for_model(smollm2, 1, T)
    chunks = [smollm2(ids[:, s:e], cache=cache)[0] for s, e in ((0, 9), (9, 10), (10, 23), (23, T))]
    chunked = torch.cat(chunks)
    assert (chunked - full).abs().max().item() <= 1e-3
    assert torch.equal(chunked.argmax(-1), full.argmax(-1))
    reference = F.cross_entropy(full[:-1], ids[0, 1:], reduction="none")
    torch.testing.assert_close(chunked_nll(smollm2, ids[0], chunk=8), reference, atol=1e-4, rtol=1e-4)


@torch.no_grad()
def test_smollm2_fast_decoder_logits_equal_decoder(smollm2, tok):
    ids = tok.encode("The quick brown fox jumps over the lazy dog.")
    fast = FastDecoder(smollm2)
    ref = smollm2(torch.tensor([ids]))[0]
    out = fast(torch.tensor([ids]), KVCache.for_model(fast, 1, len(ids)))[0]
    assert (out - ref).abs().max().item() <= 1e-3
    assert generate(fast, ids, 4) == generate(smollm2, ids, 4)


def test_bad_input_to_the_inference_helpers(tiny):
    from llmlab.inference.speculative import expected_tokens_per_round

    with pytest.raises(ValueError, match="weight must have 2 dimensions"):
        Int4WeightOnlyLinear.from_float(torch.ones(64))
    with pytest.raises(TypeError, match="weight must be a floating-point tensor"):
        Int8WeightOnlyLinear.from_float(torch.ones(4, 4, dtype=torch.long))
    with pytest.raises(TypeError, match="llmlab Decoder"):
        FastDecoder(torch.nn.Linear(2, 2))
    with pytest.raises(TypeError, match="dtype"):
        FastDecoder(tiny, dtype=torch.int8)
    with pytest.raises(TypeError, match="KVCache"):
        FastDecoder(tiny)(torch.zeros(1, 3, dtype=torch.long), cache=None)
    with pytest.raises(ValueError, match="layers"):
        exit_predictions(tiny, torch.zeros(1, 3, dtype=torch.long), [0, tiny.cfg.n_layers])
    with pytest.raises(ValueError, match="alpha"):
        expected_tokens_per_round(1.5, 4)
    with pytest.raises(ValueError, match="context_len"):
        decode_bytes_per_token(1000, 2, 2, 8, -1)
    with pytest.raises(ValueError, match="n_kv_heads"):
        decode_bytes_per_token(1000, 2, 0, 8, 10)
    with pytest.raises(ValueError, match="> 0"):
        bandwidth_bound(0, 1e9)
