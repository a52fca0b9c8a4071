"""Checks for notebook 04_attention."""
from __future__ import annotations

import math

import torch

from llmlab.grading.core import Check
from llmlab.nn import attention as A


def _randn(*shape, seed: int = 0, dtype=torch.float32) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def check_softmax(fn) -> None:
    c = Check("04.softmax", fn)
    x = _randn(3, 4, 7)
    out = c.call(x, -1)
    c.expect_tensor(out, shape=x.shape, dtype=x.dtype, name="softmax(x, -1)")
    if torch.allclose(out.sum(0), torch.ones(4, 7), atol=1e-5) or torch.allclose(out.sum(1), torch.ones(3, 7), atol=1e-5):
        c.fail("your values sum to 1 along the wrong dimension", "normalise along dim (here the last one)")
    c.close(out, torch.softmax(x, -1), "softmax(x, -1) differs from torch.softmax", "exp(x - max) / sum of exp(x - max)")
    c.close(c.call(x, 1), torch.softmax(x, 1), "softmax(x, dim=1) is wrong", "use the dim argument everywhere")
    big = torch.tensor([[1000.0, 1001.0, 999.0]])
    got = c.call(big, -1)
    c.expect(torch.isfinite(got).all(), "scores around 1000 gave NaN or inf",
             "exp(1000) overflows: subtract the row maximum before exp (the result does not change)")
    c.close(got, torch.softmax(big, -1), "large scores give a wrong distribution", "")
    masked = torch.tensor([[0.5, float("-inf"), 1.5], [float("-inf")] * 3])
    got = c.call(masked, -1)
    c.expect(torch.isfinite(got).all(), "a row that is entirely -inf gave NaN",
             "a query that may attend to nothing should get all-zero weights: avoid 0/0 (e.g. replace a zero sum by 1)")
    c.close(got, A.softmax(masked, -1), "rows with -inf entries are wrong", "-inf scores must get exactly zero weight")
    c.done()


def check_attention_scores(fn) -> None:
    c = Check("04.attention_scores", fn)
    q, k = _randn(2, 3, 5, 16, seed=1), _randn(2, 3, 7, 16, seed=2)
    out = c.call(q, k)
    c.expect_tensor(out, shape=(2, 3, 5, 7), name="attention_scores(q, k)")
    raw = q @ k.transpose(-2, -1)
    c.diagnose(out, {
        "scale by 1/sqrt(d), the square root of the head dimension, not by 1/d": raw / 16,
        "divide by sqrt(d): without it, scores grow with d and the softmax saturates": raw,
        "multiply by 1/sqrt(d), do not multiply by sqrt(d)": raw * 4,
    }, "your scores match a known mistake", rtol=1e-5)
    c.close(out, A.attention_scores(q, k), "scores differ from q k^T / sqrt(d)", "transpose the last two dims of k")
    c.close(c.call(q[0, 0], k[0, 0]), A.attention_scores(q[0, 0], k[0, 0]), "2-D inputs (T, D), (S, D) fail",
            "use k.transpose(-2, -1), which works for any number of leading dims")
    c.done()


def check_causal_mask(fn) -> None:
    c = Check("04.causal_mask", fn)
    out = c.call(4, 4)
    c.expect_tensor(out, shape=(4, 4), dtype=torch.bool, name="causal_mask(4, 4)")
    want = A.causal_mask(4)
    if torch.equal(out, want.T):
        c.fail("your mask lets each query see the future and hides the past", "query i may attend to keys j <= i: a lower triangle")
    if torch.equal(out, want & ~torch.eye(4, dtype=torch.bool)):
        c.fail("a query cannot attend to its own position in your mask", "the diagonal belongs in: j <= i, not j < i")
    c.expect(torch.equal(out, want), f"causal_mask(4, 4) gave\n{out.int()}", "True on and below the diagonal")
    for T, S in [(2, 5), (1, 6), (3, 3)]:
        got = c.call(T, S)
        c.expect(isinstance(got, torch.Tensor) and tuple(got.shape) == (T, S),
                 f"causal_mask({T}, {S}) has shape {tuple(getattr(got, 'shape', ()))}, expected ({T}, {S})",
                 "the mask is (queries, keys): T rows, S columns")
        c.expect(torch.equal(got, A.causal_mask(T, S)), f"causal_mask({T}, {S}) is wrong",
                 "with S > T the queries are the last T positions: query i sees keys j <= i + (S - T)")
    c.done()


def check_padding_mask(fn) -> None:
    c = Check("04.padding_mask", fn)
    am = torch.tensor([[1, 1, 1, 1], [0, 0, 1, 1], [0, 1, 1, 1]])
    out = c.call(am)
    want = A.padding_mask(am)
    c.expect(isinstance(out, torch.Tensor) and out.dtype == torch.bool, f"you returned {type(out).__name__} "
             f"{getattr(out, 'dtype', '')}, expected a bool tensor", "attention_mask.bool()")
    if tuple(out.shape) == (3, 1, 4, 1):
        c.fail("your mask hides padded queries, not padded keys", "padding hides keys: shape (B, 1, 1, S), the last dim")
    c.expect(tuple(out.shape) == (3, 1, 1, 4), f"shape {tuple(out.shape)}, expected (3, 1, 1, 4)",
             "add the head and query dims: attention_mask[:, None, None, :]")
    c.expect(not torch.equal(out, ~want), "your mask is inverted: it attends to padding only", "1 (a real token) means attend")
    c.expect(torch.equal(out, want), "the padding mask is wrong", "True where attention_mask is 1")
    c.done()


def check_attention_weights(fn) -> None:
    c = Check("04.attention_weights", fn)
    scores = _randn(2, 2, 4, 4, seed=3)
    mask = A.causal_mask(4)
    out = c.call(scores, mask)
    c.expect_tensor(out, shape=scores.shape, name="attention_weights(scores, mask)")
    soft = torch.softmax(scores, -1)
    c.diagnose(out, {
        "apply the mask before the softmax: zeroing weights afterwards leaves rows that no longer sum to 1":
            soft * mask,
        "masked scores must become -inf, not 0 (exp(0) = 1 still gives them weight)":
            torch.softmax(scores.masked_fill(~mask, 0.0), -1),
    }, "your weights match a known mistake", rtol=1e-5)
    c.expect((out.masked_select(~mask.expand_as(out)) == 0).all(), "hidden positions get non-zero weight",
             "fill the scores with -inf where the mask is False, then softmax")
    c.close(out, A.softmax(scores.masked_fill(~mask, float("-inf")), -1), "weights differ from softmax(masked scores)", "")
    pad = A.padding_mask(torch.tensor([[0, 1, 1, 1], [1, 1, 1, 1]]))
    got = c.call(scores, mask & pad)
    c.expect(torch.isfinite(got).all(), "a query that sees no key (left padding) gave NaN",
             "use a softmax that returns zeros for all -inf rows (your softmax from above)")
    c.done()


def check_split_heads(fn) -> None:
    c = Check("04.split_heads", fn)
    x = torch.arange(2 * 3 * 12, dtype=torch.float32).view(2, 3, 12)
    out = c.call(x, 4)
    c.expect_tensor(out, shape=(2, 4, 3, 3), name="split_heads(x (2, 3, 12), 4)")
    if torch.equal(out, x.view(2, 4, 3, 3)):
        c.fail("you reshaped (B, T, C) straight to (B, H, T, D): heads then mix time steps",
               "view as (B, T, H, D) first, then swap T and H with transpose(1, 2)")
    c.expect(torch.equal(out, A.split_heads(x, 4)), "the heads hold the wrong channels",
             "head h takes channels h*D .. (h+1)*D - 1 of every time step")
    c.done()


def check_merge_heads(fn) -> None:
    c = Check("04.merge_heads", fn)
    x = torch.arange(2 * 4 * 3 * 3, dtype=torch.float32).view(2, 4, 3, 3)
    out = c.call(x)
    c.expect_tensor(out, shape=(2, 3, 12), name="merge_heads(x (2, 4, 3, 3))")
    if torch.equal(out, x.reshape(2, 3, 12)):
        c.fail("you reshaped (B, H, T, D) straight to (B, T, H*D): time steps and heads get mixed",
               "transpose(1, 2) to (B, T, H, D) first, then reshape")
    c.expect(torch.equal(out, A.merge_heads(x)), "merge_heads is not the inverse of split_heads", "")
    c.done()


def check_repeat_kv(fn) -> None:
    c = Check("04.repeat_kv", fn)
    kv = torch.arange(1 * 2 * 3 * 2, dtype=torch.float32).view(1, 2, 3, 2)
    out = c.call(kv, 3)
    c.expect_tensor(out, shape=(1, 6, 3, 2), name="repeat_kv(kv (1, 2, 3, 2), 3)")
    if torch.equal(out, kv.repeat(1, 3, 1, 1)):
        c.fail("your heads come out as [g0, g1, g0, g1, g0, g1]",
               "consecutive query heads share a KV head: [g0, g0, g0, g1, g1, g1] (repeat_interleave, not repeat)")
    c.expect(torch.equal(out, A.repeat_kv(kv, 3)), "the repeated heads are wrong", "query head h uses KV head h // n_rep")
    c.expect(torch.equal(c.call(kv, 1), kv), "n_rep = 1 should return the input unchanged", "")
    c.done()


def check_attention(fn) -> None:
    c = Check("04.attention", fn)
    q, k, v = _randn(2, 3, 4, 8, seed=4), _randn(2, 3, 6, 8, seed=5), _randn(2, 3, 6, 8, seed=6)
    mask = A.causal_mask(4, 6)
    out = c.call(q, k, v, mask)
    c.expect_tensor(out, shape=(2, 3, 4, 8), name="attention(q, k, v, mask)")
    want, _ = A.scaled_dot_product_attention(q, k, v, mask)
    raw = q @ k.transpose(-2, -1)
    c.diagnose(out, {
        "scale the scores by 1/sqrt(d)": A.softmax(raw.masked_fill(~mask, float("-inf"))) @ v,
        "apply the mask before the softmax": (torch.softmax(raw / math.sqrt(8), -1) * mask) @ v,
        "the output is weights @ v: you multiplied by k": A.softmax((raw / math.sqrt(8)).masked_fill(~mask, float("-inf"))) @ k,
    }, "your output matches a known mistake", rtol=1e-5)
    c.close(out, want, "attention output differs from softmax(q k^T / sqrt(d) + mask) v", "")
    c.close(out, torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask),
            "attention output differs from F.scaled_dot_product_attention", "")
    c.close(c.call(q, k, v, None), A.scaled_dot_product_attention(q, k, v)[0], "mask=None (attend everywhere) fails",
            "skip the masking step when mask is None")
    c.done()
