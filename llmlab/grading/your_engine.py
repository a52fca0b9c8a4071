"""Checks for notebook 14_your_engine: the parts of notebooks 08-10 assembled into one engine that runs SmolLM2.

The parts pasted from 08-10 (``write_kv``, ``cached_attention``, the sampling filters, ``per_group``, ``prune_mask``,
``prompt_lookup``) are graded through the new functions that call them: ``attention_layer``, ``next_token``,
``int4_storage`` and the whole engine, ``engine_generate``, whose greedy tokens must be SmolLM2's, token for token.

The ``reference_*`` functions are the references of the checks, and the demos' fall-backs (``yours(fn, reference)``)
while an exercise is not written yet.
"""
from __future__ import annotations

import functools

import torch

from llmlab.grading.core import DTYPE_HINT, HIDDEN_HINT, INPLACE_HINT, Case, Check, Draw, exercise, same
from llmlab.grading.core import randn as _randn
from llmlab.inference import generation, speculative
from llmlab.inference.engine import cached_attention as _cached_attention
from llmlab.nn import kv_cache
from llmlab.nn.layers import rope_cos_sin, rotate_half
from llmlab.prune import magnitude


def _int_list(c: Check, out, what: str) -> list[int]:
    if isinstance(out, torch.Tensor):
        out = out.tolist()
    if not isinstance(out, (list, tuple)) or not all(isinstance(t, int) and not isinstance(t, bool) for t in out):
        c.fail(f"{what} returned {out!r:.80}, expected a list of ints",
               "return a Python list of token ids (use .tolist() or int(...))")
    return list(out)


def _same_ids(actual, expected) -> str | None:
    return same(actual.tolist() if isinstance(actual, torch.Tensor) else actual, expected, reveal=False)


# ------------------------------------------------------------------------------------------ the attention sub-layer


def _rms(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def _interleaved(x: torch.Tensor) -> torch.Tensor:
    """The rotation of pairs (0, 1), (2, 3), ...: GPT-J's RoPE layout, not SmolLM2's."""
    pairs = x.unflatten(-1, (-1, 2))
    return torch.stack([-pairs[..., 1], pairs[..., 0]], -1).flatten(-2)


def _layer(x, w, k_cache, v_cache, start, cos, sin, eps, *, residual=True, causal=True, filled=True, norm=True,
           rope_k=True, rope_v=False, rotate=rotate_half):
    """The attention sub-layer, and (by its switches) the mistakes the check recognises."""
    B, T, _ = x.shape
    D = cos.shape[-1]
    H, Hkv = w["wq"].shape[0] // D, k_cache.shape[1]
    h = _rms(x, w["norm"], eps) if norm else x
    q = (h @ w["wq"].T).view(B, T, H, D).transpose(1, 2)
    k = (h @ w["wk"].T).view(B, T, Hkv, D).transpose(1, 2)
    v = (h @ w["wv"].T).view(B, T, Hkv, D).transpose(1, 2)
    q = q * cos + rotate(q) * sin
    if rope_k:
        k = k * cos + rotate(k) * sin
    if rope_v:
        v = v * cos + rotate(v) * sin
    K, V = kv_cache.write_kv(k_cache, v_cache, k, v, start)
    ends = [start + t + 1 for t in range(T)] if causal else [start + T] * T
    if not filled:  # every slot of the cache, the stale ones after start+T-1 too
        K, V, ends = k_cache, v_cache, [k_cache.shape[2]] * T
    out = torch.cat([_cached_attention(q[:, :, t:t + 1], K[:, :, :e], V[:, :, :e]) for t, e in enumerate(ends)], 2)
    out = out.transpose(1, 2).reshape(B, T, H * D) @ w["wo"].T
    return x + out if residual else out


def reference_attention_layer(x: torch.Tensor, w: dict, k_cache: torch.Tensor, v_cache: torch.Tensor, start: int,
                              cos: torch.Tensor, sin: torch.Tensor, eps: float) -> torch.Tensor:
    """The reference of ``attention_layer``: x (B, T, C) -> x + wo(attention) (B, T, C), the caches written in place."""
    return _layer(x, w, k_cache, v_cache, start, cos, sin, eps)


def layer_state(fn, x, w, k_cache, v_cache, start, cos, sin, eps):
    """Harness: ``fn``'s output, the two caches after the call (it writes them in place), and x and w after it (which
    it must leave alone)."""
    return fn(x, w, k_cache, v_cache, start, cos, sin, eps), k_cache, v_cache, x, w


def _layer_inputs(randn, B, T, start, S, H, Hkv, D, C, dtype=torch.float32):
    """(x, w, k_cache, v_cache, start, cos, sin, eps): weights scaled so that activations stay near 1; the cache
    holds earlier keys before ``start`` and stale values after (an older text)."""
    w = {"norm": (1 + 0.2 * randn(C)).to(dtype), "wq": (randn(H * D, C) * C ** -0.5).to(dtype),
         "wk": (randn(Hkv * D, C) * C ** -0.5).to(dtype), "wv": (randn(Hkv * D, C) * C ** -0.5).to(dtype),
         "wo": (randn(C, H * D) * (H * D) ** -0.5).to(dtype)}
    cos, sin = rope_cos_sin(torch.arange(start, start + T), D)
    cos, sin = torch.cat([cos, cos], -1).to(dtype), torch.cat([sin, sin], -1).to(dtype)
    return (randn(B, T, C).to(dtype), w, randn(B, Hkv, S, D).to(dtype), randn(B, Hkv, S, D).to(dtype), start, cos,
            sin, 1e-5)


def _tolerance(dtype: torch.dtype) -> dict:
    # five matmuls and a softmax in another order than the reference's: float32 agrees to a few units in 1e-6
    return {"rtol": 1e-4, "atol": 1e-5} if dtype == torch.float32 else {}


def _layer_compare(actual, expected) -> str | None:
    (out, kc, vc, x, w), (want, kw, vw, x0, w0) = actual, expected
    tol = _tolerance(want.dtype)
    return (same(out, want, name="the sub-layer's output", reveal=False, **tol)
            or (same((x, w), (x0, w0), reveal=False) and "x or the weights changed in place")
            or (same((kc, vc), (kw, vw), reveal=False, **tol) and "after the call the caches are not the old ones with "
                "slots start .. start+T-1 holding the new rotated keys and the values"))


def _layer_cases(d: Draw) -> list[Case]:
    def inputs(**kw):
        return _layer_inputs(lambda *s: d.randn(*s, dtype=torch.float64), **kw)

    return [Case("a batch of 2, one new token at start > 0", *inputs(B=2, T=1, start=d.int(1, 6), S=8, H=4, Hkv=2,
                                                                     D=8, C=32),
                 hint="keep B from x.shape: each batch row has its own rows of the cache"),
            Case("a prompt at start = 0 that fills the cache", *inputs(B=1, T=5, start=0, S=5, H=4, Hkv=2, D=4, C=16)),
            Case("3 query heads per KV head (as SmolLM2), head dim 6", *inputs(B=1, T=3, start=d.int(0, 3), S=7, H=6,
                                                                                Hkv=2, D=6, C=36),
                 hint="take H from wq.shape[0] // D and Hkv from k_cache.shape[1]: query head h reads KV head "
                      "h // (H / Hkv)"),
            Case("a width C other than H * D", *inputs(B=1, T=2, start=d.int(0, 4), S=7, H=4, Hkv=2, D=6, C=20),
                 hint="the heads' outputs side by side are (B, T, H*D), the input of wo: H*D need not equal C"),
            Case("float64 inputs", *_layer_inputs(lambda *s: d.randn(*s, dtype=torch.float64), B=1, T=2,
                                                  start=d.int(0, 4), S=7, H=4, Hkv=2, D=8, C=32, dtype=torch.float64))]


_CAUSAL = ("new token t sees slots 0 .. start+t only (itself and what came before): call your cached_attention once "
           "per new token, with K[:, :, :start+t+1]")


@exercise("14.attention_layer", reference=reference_attention_layer, cases=_layer_cases, via=layer_state,
          inplace=True, compare=_layer_compare)
def check_attention_layer(c: Check) -> None:
    n = [0]

    def randn(*shape):
        n[0] += 1
        return _randn(*shape, seed=100 + n[0])

    x, w, kc, vc, start, cos, sin, eps = _layer_inputs(randn, B=1, T=3, start=2, S=8, H=4, Hkv=2, D=8, C=32)
    out, k_after, v_after, x_after, w_after = c.call(x, w, kc, vc, start, cos, sin, eps, via=layer_state,
                                                     inplace=True)
    c.expect_tensor(out, shape=x.shape, dtype=x.dtype, name="attention_layer(x (1, 3, 32), ...)")
    if not torch.equal(x_after, x) or any(not torch.equal(w_after[k], w[k]) for k in w):
        c.fail("your function changed x or a weight in place", INPLACE_HINT)

    def run(**switches):
        return _layer(x, w, kc.clone(), vc.clone(), start, cos, sin, eps, **switches)

    want = run()
    c.diagnose(out, {
        "add the input back: the sub-layer returns x + wo(attention), the residual stream plus what attention adds":
            run(residual=False),
        _CAUSAL: run(causal=False),
        "attend to the filled slots only (what write_kv returns): slots after start+T-1 hold an older text":
            run(filled=False),
        "normalise first: the projections read h = RMSNorm(x) * w['norm']; x itself is what is added back":
            run(norm=False),
        "rotate k as well as q, before it goes into the cache: the cached keys must carry their positions":
            run(rope_k=False),
        "rotate q and k only: v carries content, not position": run(rope_v=True),
        "SmolLM2's weights are in rotate-half order (as transformers'): rotate_half(x) = cat(-x2, x1) of the two "
        "halves of D, not of interleaved pairs": run(rotate=_interleaved),
    }, "your sub-layer's output matches a known mistake", rtol=1e-4, correct=want)
    c.close(out, want, "the sub-layer's output differs",
            "h = RMSNorm(x); q, k, v from h, split into heads (B, T, H, D).transpose(1, 2); RoPE on q and k; "
            "write_kv; cached_attention per new token; heads side by side, then wo, plus x", rtol=1e-4, atol=1e-5)
    kw, vw = kc.clone(), vc.clone()
    _layer(x, w, kw, vw, start, cos, sin, eps)
    if torch.equal(k_after, kc) and torch.equal(v_after, vc):
        c.fail("the caches are unchanged after the call",
               "write the new keys and values into k_cache and v_cache in place, with your write_kv")
    c.close(k_after, kw, "k_cache after the call",
            "slots start .. start+T-1 hold the new keys after RoPE; every other slot keeps what it held",
            rtol=1e-4, atol=1e-5)
    c.close(v_after, vw, "v_cache after the call", "slots start .. start+T-1 hold the new values (no RoPE)",
            rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------------------------------ the next token


def reference_next_token(logits: torch.Tensor, previous: list[int], temperature: float, top_k: int | None,
                         top_p: float, penalty: float, u: float) -> int:
    """The reference of ``next_token``: logits (V,) -> the token chosen as transformers chooses it, drawn with u."""
    z = logits.float()[None]
    z = generation.repetition_penalty(z, torch.tensor([list(previous)], dtype=torch.long, device=z.device), penalty)
    if temperature == 0:
        return int(z.argmax(-1))
    if top_k is not None:
        z = generation.top_k_filter(z, top_k)
    z = generation.top_p_filter(z / temperature, top_p)
    return generation.sample_from_probs(z.softmax(-1)[0], u)


def _probs(logits, previous, temperature, top_k, top_p, penalty) -> torch.Tensor:
    """The distribution ``reference_next_token`` draws from (V,), float64."""
    z = logits.double()[None]
    z = generation.repetition_penalty(z, torch.tensor([list(previous)], dtype=torch.long), penalty)
    if top_k is not None:
        z = generation.top_k_filter(z, top_k)
    return generation.top_p_filter(z / temperature, top_p).softmax(-1)[0]


def _midpoint(d: Draw, probs: torch.Tensor) -> float:
    """A u half-way up a step of the CDF of ``probs`` (V,): every precision draws the same token with it."""
    cdf = probs.double().cumsum(0)
    return d.choice([round(float(cdf[i] - probs[i] / 2), 6) for i in range(len(cdf)) if probs[i] > 1e-4])


def _nucleus(d: Draw, logits, previous, temperature, top_k, penalty) -> float:
    """A top_p at least 1e-3 away from the mass before every token, so any precision keeps the same tokens."""
    z = logits.double()[None]
    z = generation.repetition_penalty(z, torch.tensor([list(previous)], dtype=torch.long), penalty)
    if top_k is not None:
        z = generation.top_k_filter(z, top_k)
    probs = (z / temperature).softmax(-1).sort(-1, descending=True).values[0]
    before = probs.cumsum(0) - probs
    return next(p for p in (round(d.float(0.5, 0.95), 3) for _ in range(10_000)) if (before - p).abs().min() > 1e-3)


def _bf16_case(d: Draw) -> tuple:
    """(logits, top_p, u) for bfloat16 logits over 2,000 tokens, with u half-way up a step of the reference's CDF
    where the same steps left in bfloat16 (top-p's softmax and cumulative sum kept to 8 significant bits) draw
    another token."""
    for _ in range(100):
        z = d.randn(2000, dtype=torch.bfloat16, scale=2.0)
        p = _nucleus(d, z, [], 0.8, None, 1.0)
        p32 = _probs(z, [], 0.8, None, p, 1.0)
        p16 = generation.top_p_filter(z[None] / 0.8, p).softmax(-1)[0].double()
        mids = (p32.cumsum(0) - p32 / 2)[p32 > 1e-4]
        mids = mids[mids < 1]
        cdf32, cdf16 = p32.cumsum(0), p16.cumsum(0)
        wrong = torch.searchsorted(cdf32, mids, right=True) != torch.searchsorted(cdf16, mids, right=True)
        if bool(wrong.any()):
            break
    pool = mids[wrong] if bool(wrong.any()) else mids
    return z, p, round(float(pool[d.int(0, len(pool) - 1)]), 7)


def _next_token_cases(d: Draw) -> list[Case]:
    def draw(V, dtype=torch.float32, scale=2.0):
        return d.randn(V, dtype=dtype, scale=scale), [d.int(0, V - 1) for _ in range(d.int(3, 9))]

    cases = []
    z, prev = draw(d.int(20, 40), torch.float64)
    t, k = round(d.float(0.6, 1.4), 2), d.int(3, 10)
    p = _nucleus(d, z, prev, t, k, 1.2)
    cases.append(Case("float64 logits, another vocabulary", z, prev, t, k, p, 1.2,
                      _midpoint(d, _probs(z, prev, t, k, p, 1.2))))
    z, prev = draw(d.int(15, 30))
    t = round(d.float(0.6, 1.4), 2)
    p = _nucleus(d, z, prev, t, None, 1.3)
    cases.append(Case("top_k None (no top-k filter)", z, prev, t, None, p, 1.3,
                      _midpoint(d, _probs(z, prev, t, None, p, 1.3)), hint="top_k None means no top-k filter: skip it"))
    z, prev = draw(d.int(10, 20))
    cases.append(Case("top_k larger than the vocabulary", z, prev, 0.9, len(z) + d.int(1, 9), 1.0, 1.0,
                      _midpoint(d, _probs(z, prev, 0.9, len(z) + 1, 1.0, 1.0))))
    z, p, u = _bf16_case(d)
    cases.append(Case("bfloat16 logits over 2,000 tokens", z, [], 0.8, None, p, 1.0, u,
                      hint="work in float32 (logits.float() first): a softmax in bfloat16 is too coarse to sample "
                           "from"))
    z, _ = draw(d.int(10, 20))
    top = d.sample(range(len(z)), 3)
    z[top] = z.max() + 1  # three equal largest logits
    cases.append(Case("greedy with equal largest logits", z, [], 0.0, None, 1.0, 1.0, 0.5,
                      hint="greedy is torch.argmax on the penalised logits, which returns the first of equal maxima"))
    z, _ = draw(d.int(10, 20))
    cases.append(Case("no previous tokens (an empty list)", z, [], 0.8, 5, 1.0, 1.5,
                      _midpoint(d, _probs(z, [], 0.8, 5, 1.0, 1.5)),
                      hint="previous may be empty: torch.tensor([previous], dtype=torch.long) is (1, 0) and "
                           "penalises nothing"))
    z, prev = draw(d.int(10, 20))
    cases.append(Case("greedy with a penalty below 1", z, prev, 0.0, None, 1.0, round(d.float(0.3, 0.7), 2), 0.0))
    return cases


_U_GRID = [0.03, 0.14, 0.27, 0.38, 0.52, 0.61, 0.73, 0.86, 0.97]


@exercise("14.next_token", reference=reference_next_token, cases=_next_token_cases, compare=_same_ids)
def check_next_token(c: Check) -> None:
    logits = torch.tensor([2.0, 1.0, 0.5, 3.0, -1.0, 0.0, 2.5, 1.5, -0.5, 1.2])
    previous = [3, 3, 1, 8]

    def run(*args) -> int:
        out = c.call(logits, previous, *args)
        if isinstance(out, torch.Tensor) and out.numel() == 1 and not out.is_floating_point():
            out = out.item()
        c.expect(isinstance(out, int) and not isinstance(out, bool),
                 f"next_token returned {out!r:.60}, expected an int", "return a Python int: int(...) of the index")
        return out

    got = run(0.0, None, 1.0, 1.0, 0.5)
    c.expect(got == 3, f"greedy (temperature 0) gave {got}, expected 3, the largest logit",
             "temperature 0 is greedy: the argmax of the logits")
    got = run(0.0, None, 1.0, 2.0, 0.5)
    if got == 3:
        c.fail("with penalty 2 greedy still picks token 3, which occurred before",
               "apply the repetition penalty first, greedy included: token 3's logit 3.0 becomes 1.5")
    c.expect(got == 6, f"greedy with penalty 2 gave {got}, expected 6", "penalise, then take the argmax")

    settings = (2.0, 7, 0.8, 1.3)  # temperature, top_k, top_p, penalty: each mistake below draws other tokens
    got = [run(*settings, u) for u in _U_GRID]
    want = [reference_next_token(logits, previous, *settings, u) for u in _U_GRID]

    def variant(order) -> list[int]:
        out = []
        for u in _U_GRID:
            z = logits[None].float()
            for step in order:
                z = step(z)
            out.append(generation.sample_from_probs(z.softmax(-1)[0], u))
        return out

    pen = lambda z: generation.repetition_penalty(z, torch.tensor([previous]), 1.3)  # noqa: E731
    top_k = lambda z: generation.top_k_filter(z, 7)  # noqa: E731
    top_p = lambda z: generation.top_p_filter(z, 0.8)  # noqa: E731
    temp = lambda z: z / 2.0  # noqa: E731
    c.diagnose(got, {
        "divide by the temperature before top_p: the nucleus is taken from the tempered distribution":
            variant([pen, top_k, top_p, temp]),
        "top-k first, then top-p (transformers' order): top-p's mass is counted over the k tokens left":
            variant([pen, temp, top_p, top_k]),
        "apply the repetition penalty when sampling too, first of all": variant([top_k, temp, top_p]),
        "divide the logits by the temperature before the softmax": variant([pen, top_k, top_p]),
    }, "your sampled tokens match a known mistake", correct=want)
    c.expect(got == want, f"with u = {_U_GRID} you drew {got}, expected {want}",
             "penalty, top-k, / temperature, top-p, softmax, then the first token whose cumulative probability "
             "exceeds u (sample_from_probs)")


# ------------------------------------------------------------------------------------------ int4 storage


def _int4_codes(pruned: torch.Tensor, group_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    N, K = pruned.shape
    groups = pruned.reshape(N, K // group_size, group_size)
    scale = groups.abs().amax(-1).clamp(min=1e-12) / 7
    q = torch.round(groups / scale[..., None]).clamp(-7, 7).reshape(N, K)
    return (q + 8).to(torch.uint8), scale, -8 * scale


def reference_int4_storage(w: torch.Tensor, sparsity: float, group_size: int
                           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The reference of ``int4_storage``: w (N, K) -> (codes (N, K) uint8, scale, minimum (N, K // group_size))."""
    return _int4_codes(w * magnitude.prune_mask(w.abs(), sparsity), group_size)


def _int4_dequantized(codes, scale, minimum, group_size: int) -> torch.Tensor:
    N, K = codes.shape
    q = codes.reshape(N, K // group_size, group_size).to(scale.dtype)
    return (q * scale[..., None] + minimum[..., None]).reshape(N, K)


def _int4_weight(randn, N: int, K: int, group_size: int, dtype=torch.float32) -> torch.Tensor:
    """Rows whose groups have very different sizes: pruning empties the smallest groups."""
    return (randn(N, K) * torch.logspace(-3, 0, K // group_size).repeat_interleave(group_size)).to(dtype)


def _int4_cases(d: Draw) -> list[Case]:
    def weight(N, K, g, dtype=torch.float32):
        return _int4_weight(lambda *s: d.randn(*s, dtype=torch.float64), N, K, g, dtype)

    g = d.choice([8, 64])
    zero = weight(4, 64, 16)
    zero[1, 16:32] = 0  # an all-zero group
    return [Case(f"groups of {g}", weight(d.int(3, 6), 2 * max(g, 16), g), round(d.float(0.2, 0.7), 2), g,
                 hint="use group_size: a group is group_size consecutive inputs of a row"),
            Case("sparsity 0 (quantization only)", weight(5, 32, 16), 0.0, 16),
            Case("sparsity * K exactly halfway (round(2.5) = 2)", weight(3, 10, 5), 0.25, 5,
                 hint="prune round(sparsity * K) weights per row, as your prune_mask does"),
            Case("an all-zero group", zero, 0.3, 16,
                 hint="an all-zero group gets the scale 1e-12 / 7 (max|w| clamped to at least 1e-12) and codes 8"),
            Case("float64 weights", weight(4, 64, 32, torch.float64), 0.5, 32)]


def _int4_compare(actual, expected) -> str | None:
    if not isinstance(actual, (tuple, list)) or len(actual) != 3:
        return f"result is a {type(actual).__name__}, expected (codes, scale, minimum)"
    return same(tuple(actual), expected, reveal=False)


@exercise("14.int4_storage", reference=reference_int4_storage, cases=_int4_cases, compare=_int4_compare)
def check_int4_storage(c: Check) -> None:
    w = _int4_weight(lambda *s: _randn(*s, seed=31), 8, 64, 32)  # per row: a small group, then a large one
    for sparsity, g in ((0.5, 32), (0.25, 16)):
        out = c.call(w, sparsity, g)
        c.expect(isinstance(out, (tuple, list)) and len(out) == 3, f"expected (codes, scale, minimum), got "
                 f"{type(out).__name__}", "return the three tensors the int4 layer stores")
        codes, scale, minimum = out
        G = 64 // g
        c.expect_tensor(codes, shape=(8, 64), name="codes")
        c.expect(codes.dtype == torch.uint8, f"codes have dtype {codes.dtype}, expected torch.uint8",
                 "the int4 kernel reads unsigned bytes: .to(torch.uint8), after the shift by 8")
        if int(codes.max()) > 15:
            c.fail(f"codes up to {int(codes.max())}, outside [0, 15]",
                   "store q + 8: your per_group's codes go from -7 to 7, and a negative code cast to uint8 wraps to "
                   "249 .. 255")
        c.expect_tensor(scale, shape=(8, G), dtype=w.dtype, name="scale")
        c.expect_tensor(minimum, shape=(8, G), dtype=w.dtype, name="minimum")
        want_codes, want_scale, want_min = reference_int4_storage(w, sparsity, g)
        c.diagnose(codes, {
            "prune the weights of smallest magnitude: rank |w| (w.abs()), not w, which would prune the most negative":
                _int4_codes(w * magnitude.prune_mask(w, sparsity), g)[0],
            "prune first (your prune_mask on |w|), then quantize: these are the codes of the unpruned weight":
                _int4_codes(w, g)[0],
        }, f"the codes at sparsity {sparsity} are wrong", correct=want_codes)
        c.close(codes.float(), want_codes.float(), f"codes at sparsity {sparsity}, groups of {g}",
                "prune the round(sparsity * K) smallest |w| of each row, quantize the rest with per_group(w, 4, "
                "group_size), add 8")
        c.diagnose(scale, {"prune first, then quantize: a group that pruning emptied gets the scale 1e-12 / 7, "
                           "its weights are all 0": _int4_codes(w, g)[1]},
                   "the scales are wrong", correct=want_scale)
        c.close(scale, want_scale, f"scales at sparsity {sparsity}", "your per_group's scales of the pruned weight")
        c.diagnose(minimum, {"minimum = -8 * scale: code 8 stands for 0, so value = code * scale + minimum":
                             8 * want_scale, "the minimum is not 0: value = code * scale + minimum with codes "
                             "shifted by 8, so minimum = -8 * scale": torch.zeros_like(want_scale)},
                   "the minimums are wrong", correct=want_min)
        c.close(minimum, want_min, f"minimums at sparsity {sparsity}", "minimum = -8 * scale")
        pruned = (_int4_dequantized(codes, scale, minimum, g) == 0).sum(1)
        c.expect(bool((pruned >= round(sparsity * 64)).all()), "some rows have fewer zero weights than were pruned",
                 "a pruned weight must come back as exactly 0: code 8, 8 * scale + minimum = 0")


# ------------------------------------------------------------------------------------------ speculative


def _greedy_cases(d: Draw) -> list[Case]:
    def ids(n):
        return [d.int(0, 49151) for _ in range(n)]

    g = d.int(5, 8)
    every = ids(g + 1)
    again = ids(6)
    draft = again[:5]
    draft[1] = (draft[1] + 1) % 49152  # the second guess is wrong, the third right again
    first = ids(2)
    return [Case(f"γ = {g}, every guess right", every, every[:g],
                 hint="when all γ guesses agree, keep them all and add the target's token after them, target[γ]"),
            Case("a guess right again after a wrong one", again, draft,
                 hint="stop at the first disagreement: the later guesses followed a wrong token"),
            Case("γ = 1, the guess wrong", first, [(first[0] + 7) % 49152]),
            Case("no guesses (γ = 0)", ids(1), [], hint="with no guesses the round yields the target's token alone")]


@exercise("14.greedy_accept", reference=speculative.greedy_accept, cases=_greedy_cases, compare=_same_ids)
def check_greedy_accept(c: Check) -> None:
    def run(target, draft):
        return _int_list(c, c.call(target, draft), f"greedy_accept({target}, {draft})")

    got = run([5, 7, 9, 2], [5, 7, 3])
    if got == [5, 7]:
        c.fail("greedy_accept([5, 7, 9, 2], [5, 7, 3]) gave only the agreeing guesses [5, 7]",
               "after the agreeing guesses, add the target's own token at the first disagreement: the round always "
               "yields at least one token")
    if got == [5, 7, 2]:
        c.fail("after the guesses [5, 7] you added target[3] = 2", "the target's token at the first disagreement n is "
               "target[n] (here target[2] = 9): the target's choice after the agreed prefix")
    c.expect(got == [5, 7, 9], f"greedy_accept([5, 7, 9, 2], [5, 7, 3]) gave {got}, expected [5, 7, 9]",
             "keep the longest prefix of the draft that equals the target's choices, then target[n]")
    got = run([4, 8, 6, 1], [4, 9, 6])
    if len(got) > 2 or got[:2] in ([4, 6], [4, 9]):
        c.fail(f"greedy_accept([4, 8, 6, 1], [4, 9, 6]) gave {got}: it kept a guess after the second one failed",
               "stop at the first disagreement: the later guesses followed a wrong token")
    c.expect(got == [4, 8], f"greedy_accept([4, 8, 6, 1], [4, 9, 6]) gave {got}, expected [4, 8]",
             "stop at the first disagreement and add the target's token there")
    got = run([1, 2, 3], [1, 2])
    c.expect(got == [1, 2, 3], f"greedy_accept([1, 2, 3], [1, 2]) gave {got}, expected [1, 2, 3]",
             "when every guess agrees, add the bonus token target[γ]: γ + 1 tokens from one forward pass")
    got = run([6, 8], [4])
    c.expect(got == [6], f"greedy_accept([6, 8], [4]) gave {got}, expected [6]",
             "a wrong first guess leaves the target's token target[0] alone")


# ------------------------------------------------------------------------------------------ the whole engine

# (text, its token ids): prompts after which SmolLM2 chooses each of its first 4 greedy tokens (2 for the long chat
# prompts) by a clear margin (>= 0.05 between its two best logits), so that any exact implementation gets the same
# tokens (tests/test_your_engine.py checks it). The first English and Chinese ones are the notebook's.
PROMPTS = {'en': [('The capital of France is', [504, 3575, 282, 4649, 314]),
        ('Water boils at a temperature of', [12615, 36411, 418, 253, 2779, 282]),
        ('def add(a, b):\n    return', [1604, 803, 24, 81, 28, 278, 727, 472, 1003]),
        ('Once upon a time, there was a', [6403, 1980, 253, 655, 28, 665, 436, 253]),
        ('The quick brown fox jumps over the', [504, 2365, 6354, 16438, 27003, 690, 260]),
        ('import numpy as', [2017, 6772, 347]),
        ('The largest planet in our solar system is', [504, 3995, 3925, 281, 653, 3693, 817, 314]),
        ('One, two, three, four,', [2705, 28, 827, 28, 1296, 28, 1876, 28])],
 'zh': [('今天天气很好，我们一起去',
         [15076, 228, 18614, 119, 18614, 119, 177, 125, 238, 29157, 226, 48392, 138, 12831, 19805, 235, 15076, 122,
          22924, 179, 130, 132, 44652, 136]),
        ('中国的首都是', [28589, 23022, 138, 11567, 180, 116, 240, 180, 38466, 27830]),
        ('机器学习是人工智能的一个分支，它',
         [14483, 135, 176, 243, 118, 18753, 116, 27948, 250, 27830, 40249, 36149, 115, 177, 243, 135, 47093, 11567,
          43340, 37349, 36694, 124, 12831, 18310, 221]),
        ('一年有十二个月，一个星期有',
         [22924, 32090, 129, 30746, 27991, 219, 16736, 230, 26951, 14483, 226, 12831, 43340, 22178, 249, 14483, 249,
          30746]),
        ('北京是一座历史悠久的城市，',
         [30158, 241, 16736, 122, 27830, 22924, 24024, 117, 44652, 224, 12034, 127, 177, 220, 250, 27948, 223,
          11567, 176, 249, 232, 32947, 220, 12831]),
        ('我喜欢吃苹果和', [19805, 235, 176, 240, 246, 177, 122, 112, 16357, 221, 179, 229, 134, 43774, 42179])],
 'long': [('Name three primary colors.',
           [1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365, 3511, 308, 34519, 28, 7018, 411, 407, 19712,
            8182, 2, 198, 1, 4093, 198, 5820, 1296, 3003, 4683, 30, 2, 198, 1, 520, 9531, 198]),
          ('请用一句话介绍长城。',
           [1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365, 3511, 308, 34519, 28, 7018, 411, 407, 19712,
            8182, 2, 198, 1, 4093, 198, 16313, 132, 23088, 22924, 12034, 115, 16313, 247, 15076, 229, 20887, 231,
            180, 239, 140, 176, 249, 232, 19076, 2, 198, 1, 520, 9531, 198]),
          ('What is the boiling point of water?',
           [1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365, 3511, 308, 34519, 28, 7018, 411, 407, 19712,
            8182, 2, 198, 1, 4093, 198, 1780, 314, 260, 16891, 1225, 282, 913, 47, 2, 198, 1, 520, 9531, 198])]}
_N_VISIBLE = 4

# SmolLM2's first greedy tokens after each prompt above (4, 2 after a long one), as llmlab's generate gives them
# (tests/test_your_engine.py checks it): the check's reference for its own prompts, so that a check does not decode
# them again with the whole model, which took longer than the learner's engine itself
GREEDY = {"The capital of France is": [7042, 30, 198, 198],
          "Water boils at a temperature of": [1130, 216, 33, 28],
          "def add(a, b):\n    return": [253, 1232, 278, 198],
          "Once upon a time, there was a": [1165, 3102, 32047, 281],
          "The quick brown fox jumps over the": [4411, 30, 198, 198],
          "import numpy as": [2333, 198, 2017, 14671],
          "The largest planet in our solar system is": [14713, 28, 564, 357],
          "One, two, three, four,": [2531, 28, 2976, 28],
          "今天天气很好，我们一起去": [178, 246, 229, 178],
          "中国的首都是": [22924, 18645, 231, 178],
          "机器学习是人工智能的一个分支，它": [37139, 38746, 23088, 16736],
          "一年有十二个月，一个星期有": [27991, 219, 16736, 230],
          "北京是一座历史悠久的城市，": [27830, 22924, 18310, 131],
          "我喜欢吃苹果和": [180, 113, 249, 176],
          "Name three primary colors.": [504, 3003],
          "请用一句话介绍长城。": [180, 239],
          "What is the boiling point of water?": [504, 16891]}
_GREEDY_BY_IDS = {tuple(ids): GREEDY[text] for pool in PROMPTS.values() for text, ids in pool}


@functools.lru_cache(maxsize=1)
def _smollm2():
    from llmlab.models import load_smollm2

    return load_smollm2(device="cpu")


@functools.lru_cache(maxsize=256)
def _greedy(ids: tuple[int, ...], n: int) -> tuple[int, ...]:
    with torch.no_grad():
        return tuple(generation.generate(_smollm2(), list(ids), n))


def reference_engine_generate(prompt_ids: list[int], n: int) -> list[int]:
    """The reference of ``engine_generate``: SmolLM2's n greedy tokens after ``prompt_ids`` (llmlab's ``generate``;
    for the check's own prompts, the first tokens of ``GREEDY``)."""
    known = _GREEDY_BY_IDS.get(tuple(prompt_ids))
    if known is not None and 0 <= n <= len(known):
        return list(known[:n])
    return list(_greedy(tuple(prompt_ids), n))


def _engine_cases(d: Draw) -> list[Case]:
    return [Case("another English prompt", list(d.choice(PROMPTS["en"][1:])[1]), d.int(2, 4)),
            Case("another Chinese prompt", list(d.choice(PROMPTS["zh"][1:])[1]), d.int(2, 4)),
            Case("a chat prompt of 35 to 50 tokens", list(d.choice(PROMPTS["long"])[1]), 2,
                 hint="size each layer's cache from the prompt's length plus n, not a fixed number of slots"),
            Case("n = 0", list(d.choice(PROMPTS["en"])[1]), 0, hint="n = 0 asks for no new token: return []")]


@exercise("14.engine_generate", reference=reference_engine_generate, cases=_engine_cases, compare=_same_ids)
def check_engine_generate(c: Check) -> None:
    for kind in ("en", "zh"):
        text, ids = PROMPTS[kind][0]
        n = _N_VISIBLE
        out = _int_list(c, c.call(list(ids), n), f"engine_generate(<the ids of {text!r}>, {n})")
        want = reference_engine_generate(ids, n)
        if len(out) == len(ids) + n and out[:len(ids)] == list(ids):
            c.fail(f"engine_generate(<{text!r}>, {n}) returned the prompt and the new tokens",
                   "return only the n new tokens")
        c.expect(len(out) == n, f"engine_generate(<{text!r}>, {n}) returned {len(out)} tokens, expected {n}",
                 "decode exactly n new tokens (no stop at an end token)")
        if out[0] != want[0]:
            c.fail(f"after {text!r} your first new token is {out[0]}, SmolLM2's is {want[0]}",
                   "the first token comes from the prefill: the whole prompt through every layer at start = 0 "
                   "(embeddings, your attention_layer and the SwiGLU feed-forward, each with its residual), then the "
                   "final RMSNorm and the LM head on the last position")
        k = next((i for i, (a, b) in enumerate(zip(out, want)) if a != b), None)
        if k is not None:
            c.fail(f"after {text!r} your tokens part from SmolLM2's at new token {k}",
                   "the prefill is right but a decode step is not: feed each new token alone, at start = the number "
                   "of tokens before it (its RoPE position and its cache slot), with the caches kept from step to step")
        c.passed += 1
