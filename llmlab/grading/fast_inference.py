"""Checks for notebook 08_fast_inference."""
from __future__ import annotations

import math

import torch

from llmlab.inference import early_exit, generation, long_context, speculative
from llmlab.grading.core import Case, Check, Draw, exercise, same
from llmlab.grading.core import randn as _randn
from llmlab.metrics import speed
from llmlab.nn import attention as A
from llmlab.nn import kv_cache
from llmlab.nn.model import DecoderConfig

_INF = float("-inf")


def _int_list(c: Check, out, what: str) -> list[int]:
    if isinstance(out, torch.Tensor):
        out = out.tolist()
    if not isinstance(out, (list, tuple)) or not all(isinstance(t, int) and not isinstance(t, bool) for t in out):
        c.fail(f"{what} returned {out!r}, expected a list of ints", "return a Python list of token ids (use .tolist() or int(...))")
    return list(out)


def _same_ids(actual, expected) -> str | None:
    return same(actual.tolist() if isinstance(actual, torch.Tensor) else actual, expected, reveal=False)


# ------------------------------------------------------------------------------------------ measuring speed


_MEDIAN_HINT = ("with an even count the median is the mean of the two middle values (statistics.median does that; "
                "torch.median returns the lower one)")
_FLOAT32_HINT = ("compute in Python floats (or float64): float32 keeps about 7 digits, too few for the small "
                 "differences of readings such as 54321.012345")
_ONE_TOKEN_HINT = "with one token there is no decode step to time: return float('nan') for the latency"


def _speed_cases(d: Draw) -> list[Case]:
    def run(n, t0, step=0.02):
        times, t = [], t0 + d.float(0.1, 0.5)  # the prefill, then decode steps with jitter
        for _ in range(n):
            times.append(round(t, 6))
            t += step * d.float(0.5, 3.0)
        return round(t0, 6), times

    even, one, large, far = run(2 * d.int(2, 6) + 1, 0.0), run(1, d.float(0, 5)), run(d.int(500, 1000), 1.0, 0.005), \
        run(d.int(6, 12), d.float(1e4, 1e5))
    t0, tied = run(d.int(5, 9), 0.0)
    k = d.int(1, len(tied) - 2)
    tied[k + 1] = tied[k]  # two tokens read at the same instant: a step of 0 (a clock's resolution)
    return [Case("an even number of decode steps", *even, hint=_MEDIAN_HINT),
            Case("a single token", *one, hint=_ONE_TOKEN_HINT),
            Case("a long run (hundreds of tokens)", *large, hint=_FLOAT32_HINT),
            Case("clock readings far from 0 (time.perf_counter's)", *far,
                 hint="every figure is a difference of readings: subtract t_start (never assume it is 0); "
                      + _FLOAT32_HINT),
            Case("two tokens at the same clock reading (a step of 0)", t0, tied)]


@exercise("08.speed_metrics", reference=speed.speed_metrics, cases=_speed_cases)
def check_speed_metrics(c: Check) -> None:
    t0, times = 2.0, [2.5, 2.6, 2.9, 3.0]  # TTFT 0.5; steps 0.1, 0.3, 0.1; 4 tokens in 1 s
    out = c.call(t0, times)
    c.expect(isinstance(out, tuple) and len(out) == 3, f"expected a tuple (ttft, latency, throughput), got "
             f"{type(out).__name__}", "return the three figures as a tuple, in that order")
    c.expect(all(isinstance(x, float) for x in out), f"speed_metrics returned {[type(x).__name__ for x in out]}, "
             "expected three Python floats", "float(...) or .item(): clock readings need float64's digits")
    ttft, latency, throughput = (c.number(x, f"speed_metrics(2.0, [2.5, 2.6, 2.9, 3.0])[{i}]") for i, x in enumerate(out))
    want = speed.speed_metrics(t0, times)
    c.diagnose(ttft, {"TTFT is a duration: subtract t_0, the moment of the request": 2.5,
                      "TTFT runs from the request t_0 to the first token t_1 (the prefill), not over a decode step": 0.1},
               f"the TTFT is {ttft:.6g} s", correct=want[0])
    c.expect(math.isclose(ttft, want[0], rel_tol=1e-6), f"the TTFT is {ttft:.6g} s, expected {want[0]:.6g}", "TTFT = t_1 - t_0")
    c.diagnose(latency, {
        "the median of the decode steps, not their mean: one slow step (a pause, a page fault) should not move it":
            (0.1 + 0.3 + 0.1) / 3,
        "the wait for the first token is the TTFT (the prefill); the per-token latencies are the decode steps "
        "t_i - t_{i-1}, i >= 2": 0.2,
    }, f"the per-token latency is {latency:.6g} s", correct=want[1])
    c.expect(math.isclose(latency, want[1], rel_tol=1e-6), f"the per-token latency is {latency:.6g} s, expected {want[1]:.6g}",
             "the median of t_i - t_{i-1} over i = 2 .. n")
    c.diagnose(throughput, {
        "throughput covers the whole run, from the request: n / (t_n - t_0), the prefill included": 8.0,
        "throughput is the whole run's rate, n / (t_n - t_0), not the decode steps' rate": 6.0,
        "count every token that came out: n / (t_n - t_0), n = len(token_times)": 3.0,
    }, f"the throughput is {throughput:.6g} tokens/s", correct=want[2])
    c.expect(math.isclose(throughput, want[2], rel_tol=1e-6), f"the throughput is {throughput:.6g} tokens/s, expected {want[2]:.6g}",
             "n / (t_n - t_0) tokens per second")


# ------------------------------------------------------------------------------------------ KV cache


def write_kv_state(fn, k_cache, v_cache, k, v, start):
    """Harness: ``fn``'s result and the two caches after the call (it writes them in place)."""
    return fn(k_cache, v_cache, k, v, start), k_cache, v_cache


def write_kv_views(fn, k_cache, v_cache, k, v, start):
    """Harness: ``fn``'s result, and whether it is two views of the caches (tensors that share their memory)."""
    out = fn(k_cache, v_cache, k, v, start)
    views = isinstance(out, tuple) and len(out) == 2 and all(
        isinstance(a, torch.Tensor) and a.untyped_storage().data_ptr() == cache.untyped_storage().data_ptr()
        for a, cache in zip(out, (k_cache, v_cache)))
    return out, views


def _cache_compare(actual, expected) -> str | None:
    (out, kc, vc), (want, wkc, wvc) = actual, expected
    return same(out, want, name="(k_all, v_all)", reveal=False) or (same((kc, vc), (wkc, wvc), reveal=False) and
        "after the call the caches are not the old ones with slots start .. start+T-1 replaced by k and v")


def _write_kv_cases(d: Draw) -> list[Case]:
    S = d.int(8, 16)

    def case(kind, B, T, start, cache=torch.float32, new=torch.float32, hint=""):
        Hkv, D = d.int(1, 4), d.choice([2, 6, 8])
        return Case(kind, *(d.randn(B, Hkv, n, D, dtype=t) for n, t in ((S, cache), (S, cache), (T, new), (T, new))),
                    start, hint=hint)

    return [case("a batch of 3, one new token", 3, 1, d.int(1, S - 1),
                 hint="write every batch row: slice with :, not a loop over a fixed batch size"),
            case("a prompt written at start = 0 into a cache that holds an older text", 2, d.int(1, 5), 0,
                 hint="write only slots start .. start+T-1 and leave every other slot as it is, at start = 0 too"),
            case("the last free slots (start + T = S)", 2, 3, S - 3),
            case("a float64 cache", 2, 2, d.int(0, S - 2), torch.float64, torch.float64),
            case("float32 keys written into a bfloat16 cache", 2, 2, d.int(0, S - 2), torch.bfloat16)]


@exercise("08.write_kv", reference=kv_cache.write_kv, cases=_write_kv_cases, via=write_kv_state, inplace=True,
          compare=_cache_compare)
def check_write_kv(c: Check) -> None:
    B, Hkv, S, D, T, start = 2, 3, 10, 4, 3, 4
    k_cache, v_cache = _randn(B, Hkv, S, D, seed=1), _randn(B, Hkv, S, D, seed=2)
    k, v = _randn(B, Hkv, T, D, seed=3), _randn(B, Hkv, T, D, seed=4)
    kc, vc = k_cache.clone(), v_cache.clone()
    out, views = c.call(kc, vc, k, v, start, copy_args=False, via=write_kv_views)
    c.expect(isinstance(out, tuple) and len(out) == 2, f"expected a pair (k_all, v_all), got {type(out).__name__}",
             "return both the keys and the values")
    k_all, v_all = out
    c.expect_tensor(k_all, name="k_all")
    if k_all.shape == k_cache.shape:
        c.fail("you returned the whole cache, unfilled slots included",
               "return only the filled slots, [:, :, :start+T]: the empty ones would be attended to")
    c.expect_tensor(k_all, shape=(B, Hkv, start + T, D), name="k_all")
    c.expect_tensor(v_all, shape=(B, Hkv, start + T, D), name="v_all")
    if torch.equal(kc, k_cache) and torch.equal(vc, v_cache):
        c.fail("the cache tensors are unchanged after the call",
               "write into the preallocated cache in place (k_cache[:, :, a:b] = k), do not build a new tensor")
    if torch.equal(kc[:, :, start + 1:start + 1 + T], k) or torch.equal(kc[:, :, start - 1:start - 1 + T], k):
        c.fail("the new keys landed one slot off", "the cache was written at the wrong position: slots start .. start+T-1")
    c.expect(torch.equal(kc[:, :, start:start + T], k) and torch.equal(vc[:, :, start:start + T], v),
             "the new keys/values are not at slots start .. start+T-1",
             "the cache was written at the wrong position: the time axis is dim 2 of (B, Hkv, S, D)")
    c.expect(torch.equal(kc[:, :, :start], k_cache[:, :, :start]) and torch.equal(kc[:, :, start + T:], k_cache[:, :, start + T:]),
             "slots outside start .. start+T-1 changed", "write only the T new slots")
    c.expect(torch.equal(k_all, kc[:, :, :start + T]) and torch.equal(v_all, vc[:, :, :start + T]),
             "k_all / v_all are not the cache's first start+T slots", "return k_cache[:, :, :start+T] (and the same for v)")
    c.expect(views, "k_all / v_all are copies of the cache, not views of it",
             "return views, k_cache[:, :, :start+T] as it is (no .clone(), no torch.cat): a copy is one more pass over "
             "the whole cache at every step")


def _cached_attention(q, k, v):
    rep = q.shape[1] // k.shape[1]
    return A.scaled_dot_product_attention(q, A.repeat_kv(k, rep), A.repeat_kv(v, rep))[0]


def _cached_attention_cases(d: Draw) -> list[Case]:
    B, S, D = d.int(2, 4), d.int(2, 9), d.choice([4, 16])

    def qkv(H, Hkv, dtype=torch.float32, S=S):
        return d.randn(B, H, 1, D, dtype=dtype), *(d.randn(B, Hkv, S, D, dtype=dtype) for _ in "kv")

    ratio = "compute the ratio from the shapes (q.shape[1] // k.shape[1]): query head h uses KV head h // ratio"
    return [Case(f"{H // Hkv} query heads per KV head", *qkv(H, Hkv), hint=ratio) for H, Hkv in ((9, 3), (4, 4), (8, 2))] + \
        [Case("float64 input, one cached key", *qkv(4, 2, torch.float64, 1)),
         Case("bfloat16 input, 3 cached keys", *qkv(6, 3, torch.bfloat16, 3))]


def _bf16_loose(actual, expected) -> str | None:  # bfloat16 attention rounds at every step: a few units in the last place
    return same(actual, expected, atol=3e-2 if expected.dtype == torch.bfloat16 else None, reveal=False)


@exercise("08.cached_attention", reference=_cached_attention, cases=_cached_attention_cases, compare=_bf16_loose)
def check_cached_attention(c: Check) -> None:
    B, H, Hkv, S, D = 2, 6, 2, 7, 8
    q, k, v = _randn(B, H, 1, D, seed=5), _randn(B, Hkv, S, D, seed=6), _randn(B, Hkv, S, D, seed=7)
    out = c.call(q, k, v)
    c.expect_tensor(out, shape=(B, H, 1, D), dtype=q.dtype, name="cached_attention(q (2, 6, 1, 8), k, v (2, 2, 7, 8))")
    rep = H // Hkv
    want = _cached_attention(q, k, v)
    c.diagnose(out, {
        "GQA grouping: query head h uses KV head h // (H / Hkv) (repeat_interleave, not a tiled repeat)":
            A.scaled_dot_product_attention(q, k.repeat(1, rep, 1, 1), v.repeat(1, rep, 1, 1))[0],
        "scale the scores by 1 / sqrt(D)": torch.softmax(q @ A.repeat_kv(k, rep).transpose(-1, -2), -1) @ A.repeat_kv(v, rep),
        "the new token comes after every cached key: it may see all of them (no causal mask for one query)":
            A.repeat_kv(v, rep)[:, :, :1].expand(B, H, 1, D),
    }, "your attention output matches a known mistake", rtol=1e-5, correct=want)
    c.close(out, want, "the attention output differs", "softmax(q K^T / sqrt(D)) V with K, V repeated to H heads")


# ------------------------------------------------------------------------------------------ batching


def _left_pad_cases(d: Draw) -> list[Case]:
    pad, n = d.int(0, 3), d.int(2, 5)
    tricky = [[d.choice([pad, d.int(4, 50)]) for _ in range(d.int(1, 6))] + [pad] for _ in range(d.int(4, 6))]
    return [Case("real tokens equal to pad_id", tricky, pad, hint="build the mask from each prompt's length, "
                 "not from ids != pad_id: a real token may equal pad_id"),
            Case("prompts of equal length", [[d.int(0, 99) for _ in range(n)] for _ in range(3)], d.int(0, 99)),
            Case("a single prompt", [[d.int(1, 99) for _ in range(n)]], 0)]


@exercise("08.left_pad", reference=generation.left_pad, cases=_left_pad_cases)
def check_left_pad(c: Check) -> None:
    out = c.call([[5, 6, 7], [8], [9, 10]], 0)
    c.expect(isinstance(out, tuple) and len(out) == 2, "expected a pair (ids, attention_mask)", "return ids, mask")
    ids, mask = out
    c.expect_tensor(ids, shape=(3, 3), name="ids")
    c.expect(ids.dtype == torch.long, f"ids have dtype {ids.dtype}, expected torch.long",
             "token ids are int64: build the padded ids with dtype=torch.long, as embedding layers expect")
    c.expect_tensor(mask, shape=(3, 3), name="attention_mask")
    c.expect(mask.dtype == torch.long, f"attention_mask has dtype {mask.dtype}, expected torch.long",
             "the mask is int64 ones and zeros, as Hugging Face tokenizers return it (not bool): models sum it and "
             "take its cumsum to find positions")
    if torch.equal(ids, torch.tensor([[5, 6, 7], [8, 0, 0], [9, 10, 0]])):
        c.fail("you padded on the right", "padding goes on the left, so every prompt ends at position T-1 where its "
               "next token is read")
    c.expect(torch.equal(ids, torch.tensor([[5, 6, 7], [0, 0, 8], [0, 9, 10]])), f"ids are {ids.tolist()}",
             "pad each prompt on the left with pad_id up to the longest length")
    if torch.equal(mask.long(), torch.tensor([[0, 0, 0], [1, 1, 0], [1, 0, 0]])):
        c.fail("the mask is inverted", "1 marks real tokens, 0 padding")
    c.expect(torch.equal(mask.long(), torch.tensor([[1, 1, 1], [0, 0, 1], [0, 1, 1]])), f"attention_mask is {mask.tolist()}",
             "1 where the token is real, 0 where it is padding")
    ids, _ = c.call([[3], [4, 4]], 7)
    c.expect(ids.tolist() == [[7, 3], [4, 4]], "pad_id is not used", "fill with the given pad_id")


# ------------------------------------------------------------------------------------------ sampling


def _top_k_cases(d: Draw) -> list[Case]:
    V, k = d.int(6, 20), d.int(2, 5)
    ties = d.randint(-3, 3, (3, V)).float()
    ties[:, :k + 1] = 3.0  # the k-th and (k+1)-th largest are equal
    return [Case("k larger than the vocabulary", d.randn(2, V), V + d.int(1, 9),
                 hint="k may exceed the vocabulary size V: then every token stays (topk(min(k, V)))"),
            Case("logits tied with the k-th largest", ties[:, d.sample(range(V), V)], k,
                 hint="keep every logit equal to the k-th largest too: compare with the k-th value, do not keep exactly k positions"),
            Case("3-D logits (B, T, V)", d.randn(2, 3, V, scale=3.0), d.int(1, V - 1)),
            Case("float64 logits", d.randn(2, V, dtype=torch.float64), k),
            Case("bfloat16 logits", d.randn(2, V, dtype=torch.bfloat16), k)]


@exercise("08.top_k_filter", reference=generation.top_k_filter, cases=_top_k_cases)
def check_top_k_filter(c: Check) -> None:
    logits = torch.tensor([[1.0, 3.0, 2.0, 0.5, 2.5], [0.0, -1.0, 4.0, 4.0, 1.0]])
    out = c.call(logits, 2)
    c.expect_tensor(out, shape=logits.shape, dtype=logits.dtype, name="top_k_filter(logits (2, 5), 2)")
    if not out.isinf().any() and (out == 0).sum() > (logits == 0).sum():
        c.fail("excluded logits were set to 0", "set them to -inf: a logit of 0 still gets probability after the softmax")
    for n in (1, 3):  # (c.diagnose passes over values with -inf)
        if torch.equal(out, generation.top_k_filter(logits, n)):
            c.fail(f"your filter keeps {n} tokens per row for k = 2",
                   f"you kept k {'+' if n > 2 else '-'} 1 tokens: the k largest, no more and no fewer")
    c.expect(torch.equal(out, generation.top_k_filter(logits, 2)), f"top_k_filter(., 2) gave {out.tolist()}",
             "keep the k largest logits of each row unchanged, -inf elsewhere")
    x = _randn(3, 50, seed=8)
    c.expect(torch.equal(c.call(x, 50), x), "k = V should change nothing", "with k >= V every token stays")


def with_logits(fn, logits, p):
    """Harness: ``fn``'s filtered logits and the logits it was given (to judge equal probabilities)."""
    return fn(logits, p), logits


def _nucleus_compare(actual, expected) -> str | None:
    """Equal probabilities at the boundary may be cut in either order: then the same number of tokens per row,
    kept unchanged, none less probable than a dropped one, is as right as the reference's choice."""
    (out, _), (want, logits) = actual, expected
    why = same(out, want, reveal=False)
    if why is None or "wrong values" not in why:
        return why
    kept = out != _INF
    top = logits.masked_fill(~kept, math.inf).amin(-1) >= logits.masked_fill(kept, _INF).amax(-1)
    if torch.equal(kept.sum(-1), (want != _INF).sum(-1)) and torch.equal(out[kept], logits[kept]) and bool(top.all()):
        return None
    return why


def _nucleus_p(d: Draw, logits: torch.Tensor, margin: float) -> float:
    """A p at least ``margin`` away from the mass before every token, so any precision keeps the same tokens."""
    probs = logits.double().softmax(-1).sort(-1, descending=True).values
    before = (probs.cumsum(-1) - probs).flatten()
    return next(p for p in (round(d.float(0.2, 0.95), 3) for _ in range(10_000)) if (before - p).abs().min() > margin)


def _top_p_cases(d: Draw) -> list[Case]:
    V = d.int(8, 16)
    exact = torch.full((3, V), _INF)  # 2, 4 and 8 equal tokens: probabilities 1/2, 1/4, 1/8, exact in float
    for row, n in enumerate((2, 4, 8)):
        exact[row, d.sample(range(V), n)] = 0.0
    holes = d.randn(3, V).masked_fill((d.rand(3, V) < 0.3) & (torch.arange(V) > 0), _INF)
    return [Case("tokens before it that sum to exactly p", exact, 0.5,
                 hint="drop a token once the mass before it reaches p (>= p): with exactly p before it, it is not needed"),
            *(Case(kind, x, _nucleus_p(d, x, margin), hint=hint) for kind, x, margin, hint in (
                ("3-D logits (B, T, V)", d.randn(2, 3, V, scale=2.0), 1e-4,
                 "work along the last dim (sort, cumsum and scatter with dim=-1): logits may be (B, T, V)"),
                ("large logits", d.randn(3, V, scale=60.0), 1e-4, ""),
                ("logits that hold -inf (after top-k)", holes, 1e-4, ""),
                ("float64 logits", d.randn(2, V, dtype=torch.float64, scale=2.0), 1e-4, ""),
                ("bfloat16 logits", d.randn(2, 6, dtype=torch.bfloat16, scale=2.0), 0.03, "")))]


@exercise("08.top_p_filter", reference=generation.top_p_filter, cases=_top_p_cases, via=with_logits,
          compare=_nucleus_compare)
def check_top_p_filter(c: Check) -> None:
    logits = torch.tensor([[0.5, 0.2, 0.15, 0.1, 0.05]]).log()
    out = c.call(logits, 0.6)
    c.expect_tensor(out, shape=logits.shape, dtype=logits.dtype, name="top_p_filter(logits, 0.6)")
    kept = (~out.isinf()).long().tolist()[0]
    if kept == [1, 0, 0, 0, 0]:
        c.fail("with p = 0.6 you kept only the top token (0.5)",
               "keep the token that crosses the threshold: 0.5 < 0.6, so the 0.2 token is needed too")
    c.expect(kept == [1, 1, 0, 0, 0], f"with p = 0.6 you kept {kept}, expected [1, 1, 0, 0, 0]",
             "sort by probability; keep tokens while the mass before them is below p")
    kept = (~c.call(logits, 0.3).isinf()).long().tolist()[0]
    c.expect(kept == [1, 0, 0, 0, 0], f"with p = 0.3 you kept {kept}, expected only the top token",
             "the most probable token is always kept, even when it alone exceeds p")
    shuffled = logits[:, [3, 0, 4, 2, 1]]
    c.expect(torch.equal(c.call(shuffled, 0.8), generation.top_p_filter(shuffled, 0.8)), "unsorted logits give a wrong "
             "result", "sort by probability (descending) before the cumulative sum, then scatter the keep/drop "
             "decision back to vocabulary order")
    x = _randn(4, 40, seed=9) * 2
    c.expect(torch.equal(c.call(x, 1.0), x), "p = 1 should keep everything", "")


def _penalty_cases(d: Draw) -> list[Case]:
    V = d.int(8, 40)
    return [Case("a batch of 3, each row with its own repeated tokens", d.randn(3, V, scale=2.0),
                 d.randint(0, V, (3, d.int(5, 12))), d.float(1.1, 2.5)),
            Case("a penalty below 1 (it favours repetition)", d.randn(2, V), d.randint(0, V, (2, 6)), d.float(0.5, 0.9),
                 hint="apply z / penalty if z > 0 else z * penalty whatever the penalty: below 1 it raises seen logits"),
            Case("no previous tokens yet (S = 0)", d.randn(2, V), d.randint(0, V, (2, 0)), 1.5),
            Case("float64 logits", d.randn(2, V, dtype=torch.float64), d.randint(0, V, (2, 5)), 1.3),
            Case("bfloat16 logits", d.randn(2, V, dtype=torch.bfloat16), d.randint(0, V, (2, 5)), 1.3)]


@exercise("08.repetition_penalty", reference=generation.repetition_penalty, cases=_penalty_cases)
def check_repetition_penalty(c: Check) -> None:
    logits = torch.tensor([[2.0, -1.0, 0.5, -3.0, 1.0]])
    previous = torch.tensor([[0, 1, 1, 4]])
    out = c.call(logits, previous, 2.0)
    c.expect_tensor(out, shape=logits.shape, dtype=logits.dtype, name="repetition_penalty(logits, previous, 2.0)")
    want = generation.repetition_penalty(logits, previous, 2.0)
    c.diagnose(out, {
        "a negative logit must be multiplied by the penalty (dividing makes it *more* likely)":
            torch.tensor([[1.0, -0.5, 0.5, -3.0, 0.5]]),
        "penalise each seen token once, however often it occurred": torch.tensor([[1.0, -4.0, 0.5, -3.0, 0.5]]),
        "only tokens in previous are penalised": torch.tensor([[1.0, -2.0, 0.25, -6.0, 0.5]]),
    }, "your penalty matches a known mistake", correct=want)
    c.close(out, want, "the penalised logits differ", "seen tokens: z / penalty if z > 0 else z * penalty")


# ------------------------------------------------------------------------------------------ speculative


def _dists(d: Draw, rows: int, V: int, dtype=torch.float32) -> torch.Tensor:
    x = d.rand(rows, V, dtype=torch.float64) ** 2 + 0.02
    return (x / x.sum(-1, keepdim=True)).to(dtype)


def _speculative_cases(d: Draw) -> list[Case]:
    def round_(gamma, V, u, dtype=torch.float32):
        return _dists(d, gamma + 1, V, dtype), _dists(d, gamma, V, dtype), d.randint(0, V, (gamma,)), u.to(dtype), d.float(0, 0.99)

    p, q, draft, u, v = round_(3, d.int(5, 9), torch.zeros(3))  # reject the middle draft: the one least likely under p/q
    draft[1], u[1] = int((p[1] / q[1]).argmin()), 0.9999
    V = d.int(5, 9)  # a rejection whose residual, normalised in float32, sums to a hair below 1 (v = 1 - 1e-9 above it)
    for pc, qc in ((_dists(d, 2, V), _dists(d, 1, V)) for _ in range(10_000)):
        r = (pc[0] - qc[0]).clamp(min=0)
        if pc[0, -1] < qc[0, -1] and (r / r.sum()).cumsum(0)[-1] < 1 and (pc[0] / qc[0]).min() < 0.9:
            break  # (its last token has no residual mass: clamping the index to V - 1 is no way out)
    cols = d.sample(range(3), 3)  # p/q = 0.25 / 0.5 = u exactly
    pe, qe = torch.tensor([[0.25, 0.25, 0.5], [0.5, 0.25, 0.25]])[:, cols], torch.tensor([[0.5, 0.25, 0.25]])[:, cols]
    return [Case("γ = 4, every draft accepted", *round_(4, d.int(4, 9), torch.zeros(4)),
                 hint="the bonus token comes from p[γ], the last row of p: γ is len(draft), not a fixed number"),
            Case("γ = 1", *round_(1, d.int(3, 9), d.rand(1))),
            Case("γ = 3, the middle draft rejected", p, q, draft, u, v),
            Case("u equal to p/q", pe, qe, torch.tensor([cols.index(0)]), torch.tensor([0.5]), d.float(0, 0.99),
                 hint="accept only when u < min(1, p/q), strictly: u = p/q is a rejection"),
            Case("a residual whose float32 CDF ends below v", pc, qc, (pc[0] / qc[0]).argmin()[None], torch.tensor([0.9999]),
                 1 - 1e-9, hint="draw with sample_from_probs: in float32 a CDF can end a hair below v, which it handles"),
            Case("float64 probabilities", *round_(2, d.int(3, 9), d.rand(2), torch.float64))]


@exercise("08.speculative_accept", reference=speculative.speculative_accept, cases=_speculative_cases, compare=_same_ids)
def check_speculative_accept(c: Check) -> None:
    p = torch.tensor([[0.6, 0.3, 0.1], [0.2, 0.2, 0.6], [0.1, 0.8, 0.1]])
    q = torch.tensor([[0.3, 0.6, 0.1], [0.5, 0.4, 0.1]])

    def run(draft, u, v):
        return _int_list(c, c.call(p, q, torch.tensor(draft), torch.tensor(u), v), "speculative_accept")

    def want(draft, u, v):
        return speculative.speculative_accept(p, q, torch.tensor(draft), torch.tensor(u), v)

    # draft 0 (p/q = 2: always accepted), draft 2 at step 2 (p/q = 6: always accepted), bonus from p[2]
    got = run([0, 2], [0.9, 0.9], 0.5)
    if got == [0, 2]:
        c.fail("all drafts accepted but no token was added", "when every draft passes, draw a bonus token from p[γ]")
    c.expect(got == want([0, 2], [0.9, 0.9], 0.5), f"drafts [0, 2] with u = [0.9, 0.9] gave {got}, expected [0, 2, 1]",
             "accept d_i when u_i < min(1, p_i(d_i) / q_i(d_i)); after all γ, draw the bonus from p[γ]")
    # draft 1 at step 0: p/q = 0.5, u = 0.7 -> rejected; residual max(0, p0 - q0) = [0.3, 0, 0] -> token 0
    got = run([1, 2], [0.7, 0.1], 0.99)
    if len(got) > 1 and got[0] == 1:
        c.fail("a draft with p/q = 0.5 was accepted with u = 0.7", "accept with probability min(1, p/q): compare u with the ratio")
    if got == [1]:  # |p - q| = [0.3, 0.3, 0]: v = 0.99 falls on token 1, which max(0, p - q) gives no mass
        c.fail("after a rejection you drew token 1, which the draft over-proposed",
               "the residual is max(0, p - q), not |p - q|: tokens with q > p get no mass")
    if got == [2]:
        c.fail("after a rejection you sampled from p", "after a rejection, sample from the residual norm(max(0, p - q))")
    c.expect(got == [0], f"drafts [1, 2] with u = [0.7, 0.1] gave {got}, expected [0]",
             "stop at the first rejection and draw from norm(max(0, p_i - q_i))")
    # the last draft is rejected: token 1 at step 1 has p/q = 0.2 / 0.4 = 0.5, u = 0.8
    got = run([0, 1], [0.1, 0.8], 0.2)
    if got[:2] == [0, 1]:
        c.fail("the last draft was accepted without its test", "verify every draft, the last one too (loop over all γ)")
    c.expect(got == want([0, 1], [0.1, 0.8], 0.2), f"drafts [0, 1] with u = [0.1, 0.8] gave {got}, expected [0, 2]",
             "the second draft fails (0.8 > 0.5); the residual of step 1 is norm(max(0, p1 - q1)) = [0, 0, 1]")
    got = run([1, 0], [0.3, 0.3], 0.0)
    c.expect(got == want([1, 0], [0.3, 0.3], 0.0), f"u = 0.3 < p/q = 0.5 should accept token 1; got {got}",
             "accept when u < p/q, even when p < q")


_LIMIT_HINT = "α = 1 is a limit: every draft passes, γ + 1 tokens per round"


def _expected_cases(d: Draw) -> list[Case]:
    return [Case("another α and γ", round(d.float(0.05, 0.95), 3), d.int(1, 9)),
            Case("γ = 0 (no drafts)", round(d.float(0.1, 0.9), 3), 0),
            Case("α = 1 with another γ", 1.0, d.choice([2, 5, 6, 8]), hint=_LIMIT_HINT)]


@exercise("08.expected_tokens", reference=speculative.expected_tokens_per_round, cases=_expected_cases,
          rtol=1e-9, atol=1e-12)
def check_expected_tokens(c: Check) -> None:
    def val(alpha, gamma):
        out = c.number(c.call(alpha, gamma, error_hints={"division by zero": _LIMIT_HINT}), f"expected_tokens({alpha}, {gamma})")
        c.expect(math.isfinite(out), f"expected_tokens({alpha}, {gamma}) = {out!r}", "return a finite float")
        return float(out)

    got = val(0.8, 4)
    c.diagnose(got, {"a round yields up to γ + 1 tokens (the γ drafts and one from the target): α^(γ+1)": (1 - 0.8 ** 4) / 0.2,
                     "acceptances stop at the first rejection: sum the geometric series 1 + α + ... + α^γ": 4 * 0.8},
               f"expected_tokens(0.8, 4) = {got}, the value of a known mistake", rtol=1e-9)
    want = speculative.expected_tokens_per_round(0.8, 4)
    c.expect(abs(got - want) < 1e-9, f"expected_tokens(0.8, 4) = {got}, expected {want:.6f}", "(1 - α^(γ+1)) / (1 - α)")
    c.expect(abs(val(0.0, 5) - 1.0) < 1e-9, "α = 0 should give 1 token per round", "nothing accepted: only the target's token")
    c.expect(abs(val(1.0, 3) - 4.0) < 1e-9, "α = 1 should give γ + 1", _LIMIT_HINT)


def _lookup_cases(d: Draw) -> list[Case]:
    x, run = d.int(5, 9), d.int(4, 7)
    return [Case("a match that overlaps the tail (a repeated token)", [d.int(10, 20) for _ in range(d.int(1, 4))] + [x] * run,
                 d.int(2, 4), 3, hint="an earlier occurrence may overlap the tail (in 7 7 7 7 the 3-gram at 0 overlaps the one "
                 "at 1): try every start below len(tokens) - n"),
            Case("a long text over 3 token ids", [d.int(0, 2) for _ in range(d.int(30, 60))], d.int(2, 6), d.int(2, 4)),
            Case("max_ngram longer than the text", [d.int(0, 1) for _ in range(3)], 3, 5),
            Case("a one-token text", [d.int(0, 9)], 3, 2)]


@exercise("08.prompt_lookup", reference=speculative.prompt_lookup, cases=_lookup_cases, compare=_same_ids)
def check_prompt_lookup(c: Check) -> None:
    def run(tokens, gamma, n):
        return _int_list(c, c.call(tokens, gamma, n), "prompt_lookup")

    got = run([1, 2, 3, 9, 1, 2, 3, 4, 5, 6, 1, 2, 3], 3, 3)
    if got == []:
        c.fail("no proposal although [1, 2, 3] occurred before", "search the earlier text for the last n tokens "
               "(excluding the tail itself, which always matches)")
    if got == [9, 1, 2]:
        c.fail("you used the earliest match", "use the latest earlier match: the most recent context is the best guess")
    c.expect(got == [4, 5, 6], f"got {got}, expected [4, 5, 6]", "the tokens that followed the latest earlier [1, 2, 3]")
    got = run([7, 8, 5, 6, 7, 8], 2, 3)
    if got == []:
        c.fail("no proposal for tail [6, 7, 8] although [7, 8] occurred", "fall back to shorter n-grams, n = max_ngram .. 1")
    c.expect(got == [5, 6], f"got {got}, expected [5, 6]", "try n = max_ngram first, then shorter")
    got = run([1, 4, 2, 9, 4, 7, 1, 4], 2, 2)
    if got == [7, 1]:
        c.fail("you matched a 1-gram before the 2-gram", "try the longest n-gram first: it is the more specific match")
    c.expect(got == [2, 9], f"got {got}, expected [2, 9]", "the 2-gram [1, 4] occurred at the start, followed by [2, 9]")
    c.expect(run([1, 2, 3], 4, 3) == [], "no earlier match should give []", "return an empty list when nothing matches")
    c.expect(run([5, 6, 5], 4, 1) == [6, 5], "a match near the end gives fewer than γ tokens", "return what follows, at most γ")


# ------------------------------------------------------------------------------------------ early exit


def _exit_case(d: Draw, E: int, T: int, levels=None, dtype=torch.float32, ids=torch.long):
    preds = d.randint(0, 1000, (E, T)).to(ids)
    if levels is None:
        conf = d.rand(E, T, dtype=torch.float64).to(dtype)
    else:  # confidences on a grid of exact binary fractions: many equal the threshold
        conf = torch.tensor(levels, dtype=dtype)[d.randint(0, len(levels), (E, T))]
    return preds, conf


def _exit_cases(d: Draw) -> list[Case]:
    E = d.int(4, 8)
    return [Case("more exits, some positions confident at none", *_exit_case(d, E, d.int(20, 40)), 0.9,
                 hint="when no exit is confident, take the last one, row E - 1 (preds[-1]): E is the number of rows"),
            Case("confidences equal to the threshold", *_exit_case(d, E, 30, [0.25, 0.5, 0.75]), 0.5,
                 hint="a confidence equal to the threshold exits: conf >= threshold"),
            Case("a threshold no exit reaches", *_exit_case(d, 3, 12), 1.5),
            Case("a single exit (E = 1: the full model)", *_exit_case(d, 1, 9), d.float(0.2, 0.8)),
            Case("float64 confidences", *_exit_case(d, E, 16, dtype=torch.float64), d.float(0.3, 0.7)),
            Case("bfloat16 confidences", *_exit_case(d, E, 16, [0.25, 0.5, 0.75], torch.bfloat16), 0.75),
            Case("int32 token ids", *_exit_case(d, E, 16, ids=torch.int32), d.float(0.3, 0.7),
                 hint="return the tokens in preds' dtype: gather or index preds, do not build a new tensor")]


@exercise("08.choose_exit", reference=early_exit.choose_exit, cases=_exit_cases)
def check_choose_exit(c: Check) -> None:
    preds = torch.tensor([[11, 12, 13, 14, 15], [21, 22, 23, 24, 25], [31, 32, 33, 34, 35]])
    conf = torch.tensor([[0.9, 0.5, 0.5, 0.7499, 0.75],  # 0.7499 rounds to 0.75 in float16
                         [0.95, 0.8, 0.5, 0.5, 0.875],
                         [0.99, 0.78125, 0.625, 0.5, 0.7]])
    out = c.call(preds, conf, 0.75)
    c.expect(isinstance(out, tuple) and len(out) == 2, f"expected a pair (exit, token), got {type(out).__name__}",
             "return the exit indices and the tokens predicted there")
    exit_, token = out
    c.expect_tensor(exit_, shape=(5,), name="exit")
    c.expect(exit_.dtype == torch.long, f"exit has dtype {exit_.dtype}, expected torch.long",
             "exit indices are integers, torch.long (torch.zeros(T) is float32: give dtype=torch.long)")
    c.expect_tensor(token, shape=(5,), dtype=preds.dtype, name="token")
    want_exit, want_token = early_exit.choose_exit(preds, conf, 0.75)  # [0, 1, 2, 2, 0]
    got = exit_.tolist()
    if got == [x + 1 for x in want_exit.tolist()]:
        c.fail(f"exit is {got}: one more than the indices", "exit is an index into the rows of preds, from 0 to E - 1")
    c.diagnose(got, {
        "a position where no exit is confident takes the last exit, E - 1 (the full model): argmax over an "
        "all-False column gives 0": [0, 1, 0, 0, 0],
        "a confidence equal to the threshold exits (conf >= threshold): position 4 has 0.75 at exit 0": [0, 1, 2, 2, 1],
        "take the first confident exit, not the most confident one: the point is to stop early": [2, 1, 2, 2, 1],
        "take the first confident exit, not the last one: the point is to stop early": [2, 2, 2, 2, 1],
        "compare the confidences in their own dtype: in float16, 0.7499 rounds to 0.75 and exits":
            early_exit.choose_exit(preds, conf.half(), 0.75)[0].tolist(),
    }, f"exit is {got} for threshold 0.75", correct=want_exit.tolist())
    c.expect(got == want_exit.tolist(), f"exit is {got}, expected {want_exit.tolist()}",
             "the first row whose confidence is >= threshold, else the last row")
    c.expect(torch.equal(token, want_token), f"token is {token.tolist()}, expected {want_token.tolist()}",
             "the token of preds at the exit taken: preds[exit[t], t]")


# ------------------------------------------------------------------------------------------ long inputs


def _window_cases(d: Draw) -> list[Case]:
    w = d.int(2, 4)
    return [Case("more sinks than the window", d.int(12, 16), w, w + d.int(1, 3),
                 hint="a sink key is visible to every query at or after it, the queries among the sinks too"),
            Case("no sinks (a plain sliding window)", d.int(8, 20), d.int(2, 5), 0),
            Case("window = 1 (each query sees itself and the sinks)", d.int(6, 12), 1, d.int(1, 3)),
            Case("a window longer than the text (the causal mask)", d.int(3, 8), d.int(9, 30), d.int(0, 2)),
            Case("a long text", d.int(100, 200), d.int(8, 32), 4),
            Case("a one-token text", 1, d.int(1, 4), d.int(0, 2))]


@exercise("08.sliding_window_mask", reference=long_context.sliding_window_mask, cases=_window_cases)
def check_sliding_window_mask(c: Check) -> None:
    T, window, sink = 8, 3, 2
    out = c.call(T, window, sink)
    c.expect_tensor(out, shape=(T, T), name="sliding_window_mask(8, 3, 2)")
    c.expect(out.dtype == torch.bool, f"the mask has dtype {out.dtype}, expected torch.bool",
             "return a bool mask, True = may attend (not 1.0/0.0, nor an additive 0/-inf mask)")
    want = long_context.sliding_window_mask(T, window, sink)
    i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
    c.diagnose(out, {
        "the window counts the query itself: query i sees keys i - window + 1 .. i, window keys in all (not window + 1)":
            (j <= i) & ((i - j <= window) | (j < sink)),
        "the window counts the query itself: query i sees keys i - window + 1 .. i, window keys in all (not window - 1)":
            (j <= i) & ((i - j < window - 1) | (j < sink)),
        "the first sink keys stay visible to every later query: (i - j < window) or (j < sink)": (j <= i) & (i - j < window),
        "causal: a query never sees a later key (j <= i)": ((i - j).abs() < window) | (j < sink),
        "causal: a query never sees a later key (j <= i), the sinks included": ((j <= i) & (i - j < window)) | (j < sink),
    }, "the mask matches a known mistake", correct=want)
    c.expect(torch.equal(out, want), "the mask of (T=8, window=3, sink=2) is wrong",
             "True where j <= i and (i - j < window or j < sink)")
    alone = c.call(5, 1, 0)
    c.expect(not (torch.is_tensor(alone) and alone.shape == (5, 5) and bool(alone[:, 0].all()) and bool(alone[1, 0])),
             "sliding_window_mask(5, 1, 0) keeps key 0 visible to every query",
             "sink = 0 means no sink at all: (j < sink) is False for every key")
    c.expect(torch.equal(alone, torch.eye(5, dtype=torch.bool)), "window = 1 without sinks should let "
             "each query see itself only", "the window counts the query itself")


# ------------------------------------------------------------------------------------------ roofline


def _bytes_reference(cfg, weight_bytes, context_len, kv_bytes):
    return speed.decode_bytes_per_token(weight_bytes, cfg.n_layers, cfg.n_kv_heads, cfg.head_dim, context_len, kv_bytes)


def _bytes_cases(d: Draw) -> list[Case]:
    def cfg(heads, kv, head_dim):
        return DecoderConfig(vocab_size=100, dim=heads * head_dim, n_layers=d.int(2, 30), n_heads=heads, n_kv_heads=kv,
                             hidden_dim=64, max_seq_len=8192)

    hint = "take n_layers, n_kv_heads and head_dim from cfg: the model of the example is one of many"
    return [Case("SmolLM2's shape (9 heads, 3 KV heads)", cfg(9, 3, 64), d.int(10**6, 10**9), d.int(100, 8192), 2, hint=hint),
            Case("multi-head attention (n_kv_heads = n_heads)", cfg(4, 4, 16), d.int(1000, 10**6), d.int(1, 500), 4, hint=hint),
            Case("multi-query attention (n_kv_heads = 1)", cfg(6, 1, 32), d.int(1000, 10**6), d.int(1, 500), 1, hint=hint)]


@exercise("08.bytes_per_token", reference=_bytes_reference, cases=_bytes_cases)
def check_bytes_per_token(c: Check) -> None:
    cfg = DecoderConfig(vocab_size=100, dim=64, n_layers=3, n_heads=8, n_kv_heads=2, hidden_dim=96, max_seq_len=512)
    out = c.number(c.call(cfg, 1000, 100, 2), "bytes_per_token(cfg, 1000, 100, 2)")
    hd = cfg.head_dim
    c.diagnose(out, {
        "the KV cache is read every step too: add its bytes": 1000,
        "the cache holds both keys and values: factor 2": 1000 + 3 * 2 * hd * 100 * 2,
        "GQA: the cache holds n_kv_heads heads, not n_heads": 1000 + 2 * 3 * 8 * hd * 100 * 2,
        "count every layer's cache (n_layers)": 1000 + 2 * 2 * hd * 100 * 2,
    }, f"bytes_per_token gave {out}")
    want = _bytes_reference(cfg, 1000, 100, 2)
    c.expect(out == want, f"bytes_per_token(cfg, 1000, 100, 2) = {out}, expected {want}",
             "weights + 2 * n_layers * n_kv_heads * head_dim * context_len * kv_bytes")
    c.expect(c.call(cfg, 5000, 0, 4) == 5000, "with an empty context only the weights are read", "")
