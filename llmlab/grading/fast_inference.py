"""Checks for notebook 08_fast_inference."""
from __future__ import annotations

import math

import torch

from llmlab import generation, speculative
from llmlab.grading.core import Check
from llmlab.metrics import speed
from llmlab.nn import attention as A
from llmlab.nn import kv_cache
from llmlab.nn.model import DecoderConfig


def _randn(*shape, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _int_list(c: Check, out, what: str) -> list[int]:
    if isinstance(out, torch.Tensor):
        out = out.tolist()
    if not isinstance(out, (list, tuple)) or not all(isinstance(t, int) and not isinstance(t, bool) for t in out):
        c.fail(f"{what} returned {out!r}, expected a list of ints", "return a Python list of token ids (use .tolist() or int(...))")
    return list(out)


# ------------------------------------------------------------------------------------------ KV cache


def check_write_kv(fn) -> None:
    c = Check("08.write_kv", fn)
    B, Hkv, S, D, T, start = 2, 3, 10, 4, 3, 4
    k_cache, v_cache = _randn(B, Hkv, S, D, seed=1), _randn(B, Hkv, S, D, seed=2)
    k, v = _randn(B, Hkv, T, D, seed=3), _randn(B, Hkv, T, D, seed=4)
    kc, vc = k_cache.clone(), v_cache.clone()
    out = c.call(kc, vc, k, v, start, copy_args=False)
    c.expect(isinstance(out, tuple) and len(out) == 2, f"expected a pair (k_all, v_all), got {type(out).__name__}",
             "return both the keys and the values")
    k_all, v_all = out
    c.expect_tensor(k_all, name="k_all")
    if tuple(k_all.shape) == (B, Hkv, S, D):
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
    kc2, vc2 = k_cache.clone(), v_cache.clone()
    out = c.call(kc2, vc2, k[:, :, :1], v[:, :, :1], 0, copy_args=False)
    c.expect(torch.equal(kc2[:, :, :1], k[:, :, :1]) and tuple(out[0].shape) == (B, Hkv, 1, D),
             "a first token at start = 0 is wrong", "with start = 0 the result holds exactly the new token")
    c.done()


def check_cached_attention(fn) -> None:
    c = Check("08.cached_attention", fn)
    B, H, Hkv, S, D = 2, 6, 2, 7, 8
    q, k, v = _randn(B, H, 1, D, seed=5), _randn(B, Hkv, S, D, seed=6), _randn(B, Hkv, S, D, seed=7)
    out = c.call(q, k, v)
    c.expect_tensor(out, shape=(B, H, 1, D), dtype=q.dtype, name="cached_attention(q (2, 6, 1, 8), k, v (2, 2, 7, 8))")
    rep = H // Hkv
    want = A.scaled_dot_product_attention(q, A.repeat_kv(k, rep), A.repeat_kv(v, rep))[0]
    c.diagnose(out, {
        "GQA grouping: query head h uses KV head h // (H / Hkv) (repeat_interleave, not a tiled repeat)":
            A.scaled_dot_product_attention(q, k.repeat(1, rep, 1, 1), v.repeat(1, rep, 1, 1))[0],
        "scale the scores by 1 / sqrt(D)": torch.softmax(q @ A.repeat_kv(k, rep).transpose(-1, -2), -1) @ A.repeat_kv(v, rep),
        "the new token comes after every cached key: it may see all of them (no causal mask for one query)":
            A.repeat_kv(v, rep)[:, :, :1].expand(B, H, 1, D),
    }, "your attention output matches a known mistake", rtol=1e-5, correct=want)
    c.close(out, want, "the attention output differs", "softmax(q K^T / sqrt(D)) V with K, V repeated to H heads")
    one = c.call(q[:, :, :, :], k[:, :, :1], v[:, :, :1])
    c.close(one, A.repeat_kv(v[:, :, :1], rep), "with a single cached key the output should be its value", "")
    c.done()


# ------------------------------------------------------------------------------------------ batching


def check_left_pad(fn) -> None:
    c = Check("08.left_pad", fn)
    prompts = [[5, 6, 7], [8], [9, 10]]
    out = c.call(prompts, 0)
    c.expect(isinstance(out, tuple) and len(out) == 2, "expected a pair (ids, attention_mask)", "return ids, mask")
    ids, mask = out
    c.expect_tensor(ids, shape=(3, 3), dtype=torch.long, name="ids")
    c.expect_tensor(mask, shape=(3, 3), name="attention_mask")
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
    c.done()


# ------------------------------------------------------------------------------------------ sampling


def check_top_k_filter(fn) -> None:
    c = Check("08.top_k_filter", fn)
    logits = torch.tensor([[1.0, 3.0, 2.0, 0.5, 2.5], [0.0, -1.0, 4.0, 4.0, 1.0]])
    out = c.call(logits, 2)
    c.expect_tensor(out, shape=logits.shape, dtype=logits.dtype, name="top_k_filter(logits (2, 5), 2)")
    if not out.isinf().any() and (out == 0).sum() > (logits == 0).sum():
        c.fail("excluded logits were set to 0", "set them to -inf: a logit of 0 still gets probability after the softmax")
    for n in (1, 3):
        if torch.equal(out, generation.top_k_filter(logits, n)):
            c.fail(f"your filter keeps {n} tokens per row for k = 2",
                   f"you kept k {'+' if n > 2 else '-'} 1 tokens: the k largest, no more and no fewer")
    c.expect(torch.equal(out, generation.top_k_filter(logits, 2)), f"top_k_filter(., 2) gave {out.tolist()}",
             "keep the k largest logits of each row unchanged, -inf elsewhere")
    x = _randn(3, 50, seed=8)
    c.expect(torch.equal(c.call(x, 50), x), "k = V should change nothing", "with k >= V every token stays")
    c.expect(torch.equal(c.call(x, 7), generation.top_k_filter(x, 7)), "top-7 of random logits is wrong", "")
    c.done()


def check_top_p_filter(fn) -> None:
    c = Check("08.top_p_filter", fn)
    probs = torch.tensor([[0.5, 0.2, 0.15, 0.1, 0.05]])
    logits = probs.log()
    out = c.call(logits, 0.6)
    c.expect_tensor(out, shape=logits.shape, dtype=logits.dtype, name="top_p_filter(logits, 0.6)")
    kept = (~out.isinf()).long().tolist()[0]
    if kept == [1, 0, 0, 0, 0]:
        c.fail("with p = 0.6 you kept only the top token (0.5)",
               "keep the token that crosses the threshold: 0.5 < 0.6, so the 0.2 token is needed too")
    c.expect(kept == [1, 1, 0, 0, 0], f"with p = 0.6 you kept {kept}, expected [1, 1, 0, 0, 0]",
             "sort by probability; keep tokens while the mass before them is below p")
    kept = (~c.call(logits, 0.75).isinf()).long().tolist()[0]
    c.expect(kept == [1, 1, 1, 0, 0], f"with p = 0.75 you kept {kept}, expected [1, 1, 1, 0, 0]",
             "0.5 + 0.2 = 0.7 is still below 0.75, so the 0.15 token is kept too")
    kept = (~c.call(logits, 0.3).isinf()).long().tolist()[0]
    c.expect(kept == [1, 0, 0, 0, 0], f"with p = 0.3 you kept {kept}, expected only the top token",
             "the most probable token is always kept, even when it alone exceeds p")
    shuffled = logits[:, [3, 0, 4, 2, 1]]
    got = c.call(shuffled, 0.8)
    c.expect(torch.equal(got, generation.top_p_filter(shuffled, 0.8)), "unsorted logits give a wrong result",
             "undo the sort: scatter the keep/drop decision back to vocabulary order")
    x = _randn(4, 40, seed=9) * 2
    c.expect(torch.equal(c.call(x, 0.9), generation.top_p_filter(x, 0.9)), "random logits, p = 0.9: wrong tokens kept", "")
    c.expect(torch.equal(c.call(x, 1.0), x), "p = 1 should keep everything", "")
    c.done()


def check_repetition_penalty(fn) -> None:
    c = Check("08.repetition_penalty", fn)
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
    x, prev = _randn(2, 30, seed=10), torch.randint(30, (2, 6), generator=torch.Generator().manual_seed(11))
    c.close(c.call(x, prev, 1.3), generation.repetition_penalty(x, prev, 1.3), "a batch of 2 rows is wrong",
            "each row has its own previous tokens")
    c.done()


# ------------------------------------------------------------------------------------------ speculative


def check_speculative_accept(fn) -> None:
    c = Check("08.speculative_accept", fn)
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
    if got[:1] == [1]:
        c.fail("a draft with p/q = 0.5 was accepted with u = 0.7", "accept with probability min(1, p/q): compare u with the ratio")
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
    c.done()


def check_expected_tokens(fn) -> None:
    c = Check("08.expected_tokens", fn)

    def val(alpha, gamma):
        out = c.call(alpha, gamma, error_hints={"division by zero": "α = 1 is a limit: every draft passes, γ + 1 tokens per round"})
        if isinstance(out, torch.Tensor):
            out = out.item()
        c.expect(isinstance(out, (int, float)) and math.isfinite(out), f"expected_tokens({alpha}, {gamma}) = {out!r}",
                 "return a finite float")
        return float(out)

    got = val(0.8, 4)
    want = speculative.expected_tokens_per_round(0.8, 4)
    if abs(got - (1 - 0.8 ** 4) / 0.2) < 1e-9:
        c.fail("your formula uses α^γ", "a round yields up to γ + 1 tokens (the γ drafts and one from the target): α^(γ+1)")
    if abs(got - 4 * 0.8) < 1e-9:
        c.fail("you multiplied γ by α", "acceptances stop at the first rejection: sum the geometric series 1 + α + ... + α^γ")
    c.expect(abs(got - want) < 1e-9, f"expected_tokens(0.8, 4) = {got}, expected {want:.6f}", "(1 - α^(γ+1)) / (1 - α)")
    c.expect(abs(val(0.0, 5) - 1.0) < 1e-9, "α = 0 should give 1 token per round", "nothing accepted: only the target's token")
    c.expect(abs(val(1.0, 3) - 4.0) < 1e-9, "α = 1 should give γ + 1", "α = 1 is a limit: every draft passes, γ + 1 tokens per round")
    c.done()


def check_prompt_lookup(fn) -> None:
    c = Check("08.prompt_lookup", fn)

    def run(tokens, gamma, n):
        return _int_list(c, c.call(tokens, gamma, n), "prompt_lookup")

    tokens = [1, 2, 3, 9, 1, 2, 3, 4, 5, 6, 1, 2, 3]
    got = run(tokens, 3, 3)
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
    c.done()


# ------------------------------------------------------------------------------------------ roofline


def check_bytes_per_token(fn) -> None:
    c = Check("08.bytes_per_token", fn)
    cfg = DecoderConfig(vocab_size=100, dim=64, n_layers=3, n_heads=8, n_kv_heads=2, hidden_dim=96, max_seq_len=512)

    def want(weight_bytes, ctx, kv_bytes):
        return speed.decode_bytes_per_token(weight_bytes, cfg.n_layers, cfg.n_kv_heads, cfg.head_dim, ctx, kv_bytes)

    out = c.call(cfg, 1000, 100, 2)
    if isinstance(out, torch.Tensor):
        out = out.item()
    c.expect(isinstance(out, (int, float)), f"returned {out!r}", "return a number of bytes")
    hd = cfg.head_dim
    mistakes = {
        "the KV cache is read every step too: add its bytes": 1000,
        "the cache holds both keys and values: factor 2": 1000 + 3 * 2 * hd * 100 * 2,
        "GQA: the cache holds n_kv_heads heads, not n_heads": 1000 + 2 * 3 * 8 * hd * 100 * 2,
        "count every layer's cache (n_layers)": 1000 + 2 * 2 * hd * 100 * 2,
    }
    for hint, value in mistakes.items():
        if out == value:
            c.fail(f"bytes_per_token gave {out}", hint)
    c.expect(out == want(1000, 100, 2), f"bytes_per_token(cfg, 1000, 100, 2) = {out}, expected {want(1000, 100, 2)}",
             "weights + 2 * n_layers * n_kv_heads * head_dim * context_len * kv_bytes")
    c.expect(c.call(cfg, 5000, 0, 4) == 5000, "with an empty context only the weights are read", "")
    c.done()
