"""Checks for notebook 04_attention."""
from __future__ import annotations

import math

import torch

from llmlab.grading.core import Case, Check, Draw, exercise, same
from llmlab.grading.core import randn as _randn
from llmlab.nn import attention as A

_NEG_INF = float("-inf")


def _softmax_cases(d: Draw) -> list[Case]:
    rows = d.randn(d.int(2, 5), d.int(3, 9))
    offsets = torch.tensor([(-1) ** i * 10.0 ** d.int(2, 4) for i in range(rows.shape[0])])[:, None]
    holes = d.randn(4, 6).masked_fill(d.rand(4, 6) < 0.4, _NEG_INF)
    holes[d.int(0, 3)] = _NEG_INF
    return [
        Case("rows on very different scales", rows + offsets, -1,
             hint="subtract each row's own maximum (amax(dim, keepdim=True)), not one maximum for the whole tensor"),
        Case("softmax over dim 0 of a 3-D tensor", d.randn(d.int(2, 4), 3, 5), 0),
        Case("a positive dim index", d.randn(2, d.int(2, 5), 6), 1),
        Case("rows with several -inf entries", holes, -1),
        Case("float64 input", d.randn(3, 5, dtype=torch.float64, scale=4.0), -1,
             hint="float64 is compared to 1e-12: compute in the input's dtype and add no epsilon to the sum "
                  "(for an all -inf row, replace a zero sum by 1 instead)"),
        Case("bfloat16 input", d.randn(2, 3, 8, dtype=torch.bfloat16), -1),
    ]


def _softmax_compare(out, want) -> str | None:
    """float64 strictly (an epsilon added to the sum shows), other dtypes within their tolerances."""
    strict = isinstance(want, torch.Tensor) and want.dtype == torch.float64
    return same(out, want, rtol=1e-12 if strict else None, atol=1e-300 if strict else None, reveal=False)


@exercise("04.softmax", reference=A.softmax, cases=_softmax_cases, compare=_softmax_compare)
def check_softmax(c: Check) -> None:
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


def _scores_cases(d: Draw) -> list[Case]:
    B, H, D = d.int(2, 4), d.int(1, 4), d.choice([8, 24, 64])
    return [
        Case("another head dimension", d.randn(B, H, d.int(1, 6), D), d.randn(B, H, d.int(1, 9), D),
             hint="scale by 1/sqrt(D) with D = q.shape[-1], not a fixed number"),
        Case("3-D inputs (B, T, D)", d.randn(B, 5, 32), d.randn(B, 7, 32)),
        Case("float64 input", d.randn(B, H, 3, 16, dtype=torch.float64), d.randn(B, H, 4, 16, dtype=torch.float64)),
    ]


@exercise("04.attention_scores", reference=A.attention_scores, cases=_scores_cases)
def check_attention_scores(c: Check) -> None:
    q, k = _randn(2, 3, 5, 16, seed=1), _randn(2, 3, 7, 16, seed=2)
    out = c.call(q, k)
    c.expect_tensor(out, shape=(2, 3, 5, 7), name="attention_scores(q, k)")
    raw = q @ k.transpose(-2, -1)
    c.diagnose(out, {
        "scale by 1/sqrt(d), the square root of the head dimension, not by 1/d": raw / 16,
        "divide by sqrt(d): without it, scores grow with d and the softmax saturates": raw,
        "multiply by 1/sqrt(d), do not multiply by sqrt(d)": raw * 4,
        "d is the head dimension q.shape[-1], not the number of keys k.shape[-2]": raw / math.sqrt(7),
        "scale by 1/sqrt(D) with D = q.shape[-1], not a fixed number": raw / 8,
        "multiply q by k transposed over its last two dims (k.transpose(-2, -1)), not by k.T or k itself":
            q @ k.transpose(-2, -1).flip(-1),
    }, "your scores match a known mistake", rtol=1e-5)
    c.close(out, A.attention_scores(q, k), "scores differ from q k^T / sqrt(d)",
            "scores = q @ k.transpose(-2, -1) / sqrt(d), with d = q.shape[-1]")
    c.close(c.call(q[0, 0], k[0, 0]), A.attention_scores(q[0, 0], k[0, 0]), "2-D inputs (T, D), (S, D) fail",
            "use k.transpose(-2, -1), which works for any number of leading dims")


def _causal_cases(d: Draw) -> list[Case]:
    T = d.int(5, 12)
    return [Case("a longer square mask", T, T), Case("a cache longer than the queries", T, T + d.int(3, 20)),
            Case("one query over a long cache", 1, d.int(7, 30)), Case("a single position", 1, 1)]


@exercise("04.causal_mask", reference=lambda T, S: A.causal_mask(T, S), cases=_causal_cases)
def check_causal_mask(c: Check) -> None:
    out = c.call(4, 4)
    c.expect_tensor(out, shape=(4, 4), name="causal_mask(4, 4)")
    c.expect(out.dtype == torch.bool, f"causal_mask(4, 4) has dtype {out.dtype}, expected torch.bool",
             "a mask is a bool tensor, True where a query may attend (dtype=torch.bool or .bool())")
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


def _padding_cases(d: Draw) -> list[Case]:
    B, S = d.int(2, 5), d.int(5, 11)
    lengths = [d.int(1, S) for _ in range(B)]
    left = torch.tensor([[0] * (S - n) + [1] * n for n in lengths])
    return [Case("another batch and length, left padding", left),
            Case("right padding", left.flip(-1)),
            Case("a bool attention_mask", left.bool())]


@exercise("04.padding_mask", reference=A.padding_mask, cases=_padding_cases)
def check_padding_mask(c: Check) -> None:
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


_NO_KEY_HINT = ("fill with -inf, not -1e9 or finfo.min, and use your softmax: a query that sees no key gets all-zero "
                "weights (not uniform ones, not NaN)")


def _weights_reference(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return A.softmax(scores.masked_fill(~mask, _NEG_INF))


def _weights_cases(d: Draw) -> list[Case]:
    B, H, T = d.int(2, 3), d.int(1, 3), d.int(3, 7)
    scores = d.randn(B, H, T, T, scale=3.0)
    free = d.rand(B, 1, T, T) < 0.6
    free[..., 0] = True
    starts = torch.tensor([[d.int(0, T - 1)] for _ in range(B)])
    pad = A.padding_mask((torch.arange(T) >= starts).long())  # left padding, a different amount per row
    return [
        Case("a mask that is not causal", scores, free,
             hint="use the mask you are given (masked_fill(~mask, -inf)): do not build your own causal mask"),
        Case("a padding mask (B, 1, 1, S)", scores, pad),
        Case("float64 scores", d.randn(B, H, T, T, dtype=torch.float64), A.causal_mask(T)),
        Case("causal and left padding together (some queries see no key)", scores, A.causal_mask(T) & pad,
             hint=_NO_KEY_HINT),
    ]


@exercise("04.attention_weights", reference=_weights_reference, cases=_weights_cases)
def check_attention_weights(c: Check) -> None:
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
    c.close(out, _weights_reference(scores, mask), "weights differ from softmax(masked scores)", "")
    pad = A.padding_mask(torch.tensor([[0, 1, 1, 1], [1, 1, 1, 1]]))
    got = c.call(scores, mask & pad)
    c.expect(torch.isfinite(got).all(), "a query that sees no key (left padding) gave NaN",
             "use a softmax that returns zeros for all -inf rows (your softmax from above)")


def _heads_cases(d: Draw) -> list[Case]:
    B, T, H, D = d.int(2, 4), d.int(2, 6), d.int(2, 5), d.int(2, 6)
    return [Case("another batch, length and head count", d.randn(B, T, H * D), H),
            Case("one head", d.randn(B, T, D), 1),
            Case("bfloat16 input", d.randn(B, T, H * D, dtype=torch.bfloat16), H)]


@exercise("04.split_heads", reference=A.split_heads, cases=_heads_cases)
def check_split_heads(c: Check) -> None:
    x = torch.arange(2 * 3 * 12, dtype=torch.float32).view(2, 3, 12)
    out = c.call(x, 4)
    c.expect_tensor(out, shape=(2, 4, 3, 3), name="split_heads(x (2, 3, 12), 4)")
    if torch.equal(out, x.view(2, 4, 3, 3)):
        c.fail("you reshaped (B, T, C) straight to (B, H, T, D): heads then mix time steps",
               "view as (B, T, H, D) first, then swap T and H with transpose(1, 2)")
    c.expect(torch.equal(out, A.split_heads(x, 4)), "the heads hold the wrong channels",
             "head h takes channels h*D .. (h+1)*D - 1 of every time step")


def _merge_cases(d: Draw) -> list[Case]:
    B, H, T, D = d.int(2, 4), d.int(2, 5), d.int(2, 6), d.int(2, 6)
    return [Case("another batch, head count and length", d.randn(B, H, T, D)),
            Case("bfloat16 input", d.randn(B, H, T, D, dtype=torch.bfloat16))]


@exercise("04.merge_heads", reference=A.merge_heads, cases=_merge_cases)
def check_merge_heads(c: Check) -> None:
    x = torch.arange(2 * 4 * 3 * 3, dtype=torch.float32).view(2, 4, 3, 3)
    out = c.call(x)
    c.expect_tensor(out, shape=(2, 3, 12), name="merge_heads(x (2, 4, 3, 3))")
    if torch.equal(out, x.reshape(2, 3, 12)):
        c.fail("you reshaped (B, H, T, D) straight to (B, T, H*D): time steps and heads get mixed",
               "transpose(1, 2) to (B, T, H, D) first, then reshape")
    c.expect(torch.equal(out, A.merge_heads(x)), "merge_heads is not the inverse of split_heads", "")


def _repeat_cases(d: Draw) -> list[Case]:
    B, S, D = d.int(2, 3), d.int(2, 5), d.int(2, 4)
    return [Case(f"{n_rep} query heads per KV head", d.randn(B, d.int(1, 3), S, D), n_rep,
                 hint="repeat each KV head n_rep times (the argument), not a fixed number of times")
            for n_rep in (2, 4, d.int(5, 7))] + \
        [Case("bfloat16 input", d.randn(B, 2, S, D, dtype=torch.bfloat16), 3)]


@exercise("04.repeat_kv", reference=A.repeat_kv, cases=_repeat_cases)
def check_repeat_kv(c: Check) -> None:
    kv = torch.arange(1 * 2 * 3 * 2, dtype=torch.float32).view(1, 2, 3, 2)
    out = c.call(kv, 3)
    c.expect_tensor(out, shape=(1, 6, 3, 2), name="repeat_kv(kv (1, 2, 3, 2), 3)")
    if torch.equal(out, kv.repeat(1, 3, 1, 1)):
        c.fail("your heads come out as [g0, g1, g0, g1, g0, g1]",
               "consecutive query heads share a KV head: [g0, g0, g0, g1, g1, g1] (repeat_interleave, not repeat)")
    c.expect(torch.equal(out, A.repeat_kv(kv, 3)), "the repeated heads are wrong", "query head h uses KV head h // n_rep")
    c.expect(torch.equal(c.call(kv, 1), kv), "n_rep = 1 should return the input unchanged", "")


def _attention_reference(q, k, v, mask=None) -> torch.Tensor:
    return A.scaled_dot_product_attention(q, k, v, mask)[0]


def _attention_cases(d: Draw) -> list[Case]:
    B, H, T, S, D = d.int(2, 3), d.int(1, 4), d.int(2, 5), d.int(5, 9), d.choice([4, 16, 32])
    q, k, v = d.randn(B, H, T, D), d.randn(B, H, S, D), d.randn(B, H, S, D)
    free = d.rand(B, 1, T, S) < 0.6
    free[..., -1] = True
    starts = torch.tensor([[d.int(0, S - T)] for _ in range(B)])
    return [
        Case("a mask that is not causal", q, k, v, free,
             hint="use the mask you are given: do not build your own causal mask"),
        Case("a padding mask (B, 1, 1, S)", q, k, v, A.padding_mask((torch.arange(S) >= starts).long())),
        Case("another head dimension, no mask", q, k, v, None),
        Case("float64 input", *(d.randn(B, H, T, 8, dtype=torch.float64) for _ in range(3)), A.causal_mask(T)),
        Case("a query that sees no key", q, k, v, free & (torch.arange(T)[:, None] != T - 1),
             hint="a query whose keys are all masked gets a zero output: fill with -inf and use your softmax "
                  "(torch.softmax gives NaN, -1e9 gives the mean of v)"),
    ]


@exercise("04.attention", reference=_attention_reference, cases=_attention_cases)
def check_attention(c: Check) -> None:
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
