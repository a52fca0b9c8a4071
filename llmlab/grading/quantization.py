"""Checks for notebook 09_quantization."""
from __future__ import annotations

import torch

from llmlab.grading.core import Check
from llmlab.quant import affine, gguf_blocks, gptq, smooth


def _randn(*shape, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _pair(c: Check, out, what: str, n: int = 2) -> tuple:
    c.expect(isinstance(out, tuple) and len(out) == n, f"{what} returned {type(out).__name__}, expected a tuple of {n}",
             f"return the {n} results as a tuple, in the order of the docstring")
    return out


def _half_blocks(top: int, n: int = 6) -> torch.Tensor:
    """Blocks whose largest |x| is ``top`` (127 for Q8_0, 8 for Q4_0: then |d| = 1) and whose other
    values sit exactly on halves after scaling: the rounding rule decides their codes."""
    g = torch.Generator().manual_seed(3)
    b = torch.randint(1 - top, top - 1, (n, 32), generator=g).float() + 0.5
    b[:, 0] = float(top)
    b[1::2] *= -1  # blocks whose extreme is negative
    return b


def _blocks(seed: int = 4) -> torch.Tensor:
    """Random blocks of assorted scales, plus an all-zero and a constant block."""
    g = torch.Generator().manual_seed(seed)
    b = torch.randn(200, 32, generator=g) * torch.logspace(-3, 2, 200)[:, None]
    b[0] = 0
    b[1] = 0.75
    b[2] = -2.5
    return b


# ------------------------------------------------------------------------------------------ affine


def check_scale_zero_point(fn) -> None:
    c = Check("09.scale_zero_point", fn)
    lo = torch.tensor([-1.0, -0.2, 0.5, -3.0, -4.0])
    hi = torch.tensor([1.0, 2.0, 1.5, -1.0, 0.0])  # straddling 0, skewed, all positive, all negative, ending at 0
    for bits in (4, 8):
        out = _pair(c, c.call(lo, hi, bits), f"scale_zero_point(lo, hi, {bits})")
        scale, zero = out
        c.expect_tensor(scale, shape=lo.shape, name="scale")
        c.expect_tensor(zero, shape=lo.shape, name="zero")
        qmax = 2 ** bits - 1
        c.diagnose(scale, {f"a b-bit grid has 2^b - 1 steps between its 2^b codes: divide by {qmax}, not {qmax + 1}":
                           (hi - lo) / (qmax + 1)}, f"the scale is wrong for {bits} bits", correct=(hi - lo) / qmax)
        c.close(scale, (hi - lo) / qmax, f"scale for {bits} bits", "s = (hi - lo) / (2^b - 1)")
        c.expect(bool((zero == torch.round(zero)).all()), f"the zero points {zero.tolist()} are not whole numbers",
                 "the zero point is an integer code: round -lo / s")
        want_scale, want_zero = affine.scale_zero_point(lo, hi, bits)
        if bool(((zero < 0) | (zero > qmax)).any()):
            c.fail(f"zero points {zero.tolist()} fall outside [0, {qmax}]",
                   f"the zero point was not clamped: it must be a valid {bits}-bit code, clamp it into [0, {qmax}]")
        c.diagnose(zero, {"z = -round(lo / s): the code that stands for the value 0 (mind the sign)":
                          torch.round(lo / want_scale).clamp(0, qmax)}, "the zero point is wrong", correct=want_zero)
        c.close(zero, want_zero, f"zero point for {bits} bits", "z = clamp(-round(lo / s), 0, 2^b - 1)")
    scale, zero = c.call(torch.tensor([0.3]), torch.tensor([0.3]), 8)
    c.expect(bool(torch.isfinite(scale).all() & (scale > 0).all() & torch.isfinite(zero).all()),
             "a constant group (lo == hi) gives a zero or non-finite scale", "clamp the scale to a tiny positive minimum (1e-12)")
    c.done()


def check_quantize_dequantize(fn) -> None:
    c = Check("09.quantize_dequantize", fn)
    x = torch.cat([_randn(200, seed=5) * 0.8, torch.tensor([-3.0, 3.0, 0.0, 0.25])])
    lo, hi = torch.tensor(-1.0), torch.tensor(1.5)  # x reaches beyond: those values must clip
    scale, zero = affine.scale_zero_point(lo, hi, 4)
    q, x_hat = _pair(c, c.call(x, scale, zero, 4), "quantize_dequantize(x, scale, zero, 4)")
    c.expect_tensor(q, shape=x.shape, name="q")
    c.expect_tensor(x_hat, shape=x.shape, dtype=x.dtype, name="x_hat")
    want_q = affine.quantize(x, scale, zero, 4, symmetric=False)
    c.expect(bool((q.float() == torch.round(q.float())).all()), "q holds fractions", "the codes are integers: round x / s")
    if bool(((q < 0) | (q > 15)).any()):
        c.fail(f"codes from {q.min().item():g} to {q.max().item():g}, outside [0, 15]",
               "clamp the codes into the b-bit range [0, 2^b - 1]: values beyond the grid saturate")
    c.diagnose(q.float(), {"round to the nearest code (torch.round), do not truncate":
                           (torch.floor(x / scale) + zero).clamp(0, 15),
                           "add the zero point after rounding x / s (q = round(x / s) + z)":
                           torch.round(x / scale - zero).clamp(0, 15)}, "the codes are wrong", correct=want_q)
    c.close(q.float(), want_q, "codes q", "q = clamp(round(x / s) + z, 0, 2^b - 1)")
    want = affine.dequantize(want_q, scale, zero)
    c.diagnose(x_hat, {"dequantize as s (q - z): the zero point is a code, subtract it before scaling":
                       want_q * scale + zero, "dequantize: multiply by the scale": want_q - zero},
               "x_hat is wrong", correct=want)
    c.close(x_hat, want, "dequantized values", "x_hat = s (q - z)")
    c.done()


def check_per_channel(fn) -> None:
    c = Check("09.per_channel", fn)
    w = _randn(12, 40, seed=6) * torch.logspace(-2, 1, 12)[:, None]  # rows of very different sizes
    for bits in (8, 4):
        q, scale = _pair(c, c.call(w, bits), f"per_channel(w (12, 40), {bits})")
        c.expect_tensor(scale, name="scale")
        if tuple(scale.shape) == (40,):
            c.fail("one scale per input column", "per *output* channel: one scale per row of w (N, K), reduce over dim 1")
        c.expect(scale.numel() == 12, f"scale has {scale.numel()} values, expected 12 (one per output row)",
                 "per output channel: one scale per row, w.abs().amax(dim=1)")
        scale = scale.reshape(12)
        Q = 2 ** (bits - 1) - 1
        amax = w.abs().amax(1)
        c.diagnose(scale, {
            "one scale for the whole tensor is per-tensor; take the max of each row": w.abs().max().expand(12) / Q,
            f"the format says {Q}: divide max|w| by {Q}, not {Q}.5": amax / (Q + 0.5),
            f"the symmetric range is [-{Q}, {Q}]: divide max|w| by {Q}, not {Q + 1}": amax / (Q + 1),
            "use max |w| (the absolute value): a row's largest weight may be negative": w.amax(1) / Q,
        }, f"the {bits}-bit scales are wrong", correct=amax / Q)
        c.close(scale, amax / Q, f"{bits}-bit scales", f"s = max|w| over the row / {Q}")
        c.expect_tensor(q, shape=w.shape, name="q")
        c.expect(bool((q.float().abs() <= Q).all()), f"codes beyond ±{Q}", f"clamp to [-{Q}, {Q}]")
        c.close(q.float(), affine.quantize_weight(w, bits).q, f"{bits}-bit codes", "q = round(w / s[:, None])")
    c.done()


def check_per_group(fn) -> None:
    c = Check("09.per_group", fn)
    w = _randn(6, 64, seed=7)
    w[:, 5] *= 20  # one outlier column: it should only coarsen its own group
    for g in (16, 32):
        q, scale = _pair(c, c.call(w, 4, g), f"per_group(w (6, 64), 4, {g})")
        c.expect_tensor(scale, name="scale")
        c.expect(tuple(scale.shape) == (6, 64 // g), f"scale has shape {tuple(scale.shape)}, expected {(6, 64 // g)}",
                 "one scale per group of group_size consecutive inputs of each row: (N, K / group_size)")
        want = affine.quantize_weight(w, 4, granularity="group", group_size=g)
        c.diagnose(scale, {
            "a group is group_size *consecutive* inputs: reshape to (N, K // g, g), not (N, g, K // g)":
                w.reshape(6, g, 64 // g).abs().amax(1) / 7,
            "that is one scale per row (per channel): take one scale per group of group_size inputs":
                (w.abs().amax(1, keepdim=True) / 7).expand(6, 64 // g),
        }, "the group scales are wrong", correct=want.scale.reshape(6, -1))
        c.close(scale, want.scale.reshape(6, -1), f"scales with groups of {g}", "s = max|w| over each group / 7 for 4 bits")
        c.expect_tensor(q, shape=w.shape, name="q")
        c.close(q.float(), want.q, f"codes with groups of {g}",
                "divide each group by its own scale: reshape q to (N, K // g, g) and broadcast s[..., None]")
    c.done()


# ------------------------------------------------------------------------------------------ GGUF blocks


def _call_on_blocks(c: Check, name: str, top: int, code_dtype: torch.dtype):
    """Run a block quantizer on half-way blocks and random ones; check the (d, q) it returns."""
    blocks = torch.cat([_half_blocks(top), _blocks()])
    d, q = _pair(c, c.call(blocks), f"{name}(blocks ({len(blocks)}, 32))")
    c.expect_tensor(d, shape=(len(blocks), 1), dtype=torch.float16, name="d")
    c.expect_tensor(q, shape=(len(blocks), 32), dtype=code_dtype, name="q")
    return blocks, d, q


def check_q8_0_block(fn) -> None:
    c = Check("09.q8_0_block", fn)
    blocks, d, q = _call_on_blocks(c, "q8_0_block", 127, torch.int8)
    want_d, want_q = gguf_blocks.q8_0_codes(blocks)
    amax = blocks.abs().amax(1, keepdim=True)
    c.diagnose(d.float(), {"Q8_0 divides by 127, not 127.5": (amax / 127.5).half().float()},
               "the scales are wrong", correct=want_d.float())
    c.expect(torch.equal(d, want_d), "the scales differ from ggml's", "d = max|x| / 127 in float32, then stored as fp16")
    half_even = torch.round(blocks / (amax / 127).clamp(min=1e-30)).clamp(-127, 127)
    if torch.equal(q.float()[:6], half_even[:6]) and not torch.equal(q, want_q):
        c.fail("values exactly halfway between two codes went to the even code",
               "ggml rounds halves away from zero (C's roundf), unlike torch.round / np.round: 2.5 -> 3, -2.5 -> -3")
    fp16_codes = gguf_blocks.round_half_away(blocks * torch.where(want_d == 0, 0, 1 / want_d.float()))
    c.diagnose(q.float(), {"compute the codes with the float32 scale (x * (1 / d)); round d to fp16 only to store it":
                           fp16_codes}, "the codes differ from ggml's", correct=want_q.float())
    c.expect(torch.equal(q, want_q), f"{int((q != want_q).sum())} codes differ from ggml's",
             "q = roundf(x * (1 / d)) with d = max|x| / 127; an all-zero block gets all-zero codes")
    c.done()


def check_q4_0_block(fn) -> None:
    c = Check("09.q4_0_block", fn)
    blocks, d, q = _call_on_blocks(c, "q4_0_block", 8, torch.uint8)
    want_d, want_q = gguf_blocks.q4_0_codes(blocks)
    extreme = blocks.gather(1, blocks.abs().argmax(1, keepdim=True))
    c.diagnose(d.float(), {
        "the sign trick: d = (the value of largest |x|, with its sign) / -8, not max|x| / 8":
            (blocks.abs().amax(1, keepdim=True) / 8).half().float(),
        "divide the extreme by -8 (it then lands exactly on code 0), not by 7": (extreme / -7).half().float(),
        "d = extreme / -8: mind the minus sign": (extreme / 8).half().float(),
    }, "the scales are wrong", correct=want_d.float())
    c.expect(torch.equal(d, want_d), "the scales differ from ggml's", "d = extreme / -8 in float32, stored as fp16")
    if int(q.max()) > 15:
        c.fail(f"a code of {int(q.max())} does not fit in 4 bits", "clamp the codes to at most 15")
    inv = torch.where(want_d == 0, 0, 1 / (extreme / -8))
    c.diagnose(q.float(), {"ggml computes trunc(x / d + 8.5), which rounds halves up; torch.round(x / d) + 8 rounds them to even":
                           (torch.round(blocks * inv) + 8).clamp(0, 15)}, "the codes differ from ggml's",
               correct=want_q.float())
    c.expect(torch.equal(q, want_q), f"{int((q != want_q).sum())} codes differ from ggml's",
             "q = min(15, trunc(x * (1 / d) + 8.5)), computed with the float32 d")
    c.done()


def check_pack_nibbles(fn) -> None:
    c = Check("09.pack_nibbles", fn)
    q = torch.randint(0, 16, (50, 32), generator=torch.Generator().manual_seed(8), dtype=torch.uint8)
    out = c.call(q)
    c.expect_tensor(out, shape=(50, 16), dtype=torch.uint8, name="packed")
    want = gguf_blocks.pack_nibbles(q)
    c.diagnose(out.float(), {
        "ggml pairs code j with code j + 16, not neighbours 2j and 2j + 1": (q[:, 0::2] | (q[:, 1::2] << 4)).float(),
        "code j goes in the low nibble, code j + 16 in the high one": (q[:, 16:] | (q[:, :16] << 4)).float(),
    }, "the packed bytes differ from ggml's", correct=want.float())
    c.expect(torch.equal(out, want), "the packed bytes differ from ggml's", "byte j = q[:, j] | (q[:, j + 16] << 4)")
    c.done()


# ------------------------------------------------------------------------------------------ GPTQ


def _gptq_problem(N: int = 16, K: int = 48):
    g = torch.Generator().manual_seed(9)
    X = torch.randn(400, K, generator=g) @ torch.randn(K, K, generator=g)  # correlated inputs: GPTQ's edge
    W = torch.randn(N, K, generator=g)
    return W, X, gptq.hessian(X)


def check_gptq_update(fn) -> None:
    c = Check("09.gptq_update", fn)
    W, X, H = _gptq_problem()
    U = gptq.inverse_hessian_factor(H)
    i = 5
    q = affine.fake_quantize(W[:, i], 4, granularity="tensor")
    W1 = W.clone()
    err = c.call(W1, U, i, q, copy_args=False)
    c.expect_tensor(err, shape=(W.shape[0],), name="err")
    W2 = W.clone()
    want = gptq.gptq_column_update(W2, U, i, q)
    c.diagnose(err, {"divide the rounding error by U[i, i]": W[:, i] - q}, "err is wrong", correct=want)
    c.close(err, want, "err", "err = (W[:, i] - q) / U[i, i]")
    c.expect(torch.equal(W1[:, :i], W[:, :i]), "columns before i changed", "only the columns after i are updated")
    if torch.equal(W1[:, i + 1:], W[:, i + 1:]):
        c.fail("the columns after i are unchanged",
               "GPTQ without error propagation is plain rounding: subtract outer(err, U[i, i+1:]) from W[:, i+1:], in place")
    c.diagnose(W1[:, i + 1:], {"subtract the update (W -= err U[i, i+1:]): adding it doubles the error":
                               W[:, i + 1:] + torch.outer(want, U[i, i + 1:])},
               "the update of the later columns is wrong", rtol=1e-5, correct=W2[:, i + 1:])
    c.close(W1[:, i + 1:], W2[:, i + 1:], "the later columns after the update", "W[:, i+1:] -= outer(err, U[i, i+1:])")
    # the whole algorithm with the learner's step: it must beat round-to-nearest on the layer's output
    res = gptq.gptq_quantize(W, H, 3, update=lambda W_, U_, i_, q_: c.call(W_, U_, i_, q_, copy_args=False))
    ref = gptq.gptq_quantize(W, H, 3)
    c.close(res.dequantize(), ref.dequantize(), "GPTQ with your update", "the step is used on every column of every block")
    rtn = affine.fake_quantize(W, 3)
    out_err = lambda Wq: float(((X @ (W - Wq).T) ** 2).mean())
    c.expect(out_err(res.dequantize()) < 0.8 * out_err(rtn),
             f"GPTQ's output error {out_err(res.dequantize()):.3g} is not below round-to-nearest's {out_err(rtn):.3g}",
             "propagate the error so later columns compensate for it")
    c.done()


# ------------------------------------------------------------------------------------------ activations


def check_smooth_scales(fn) -> None:
    c = Check("09.smooth_scales", fn)
    g = torch.Generator().manual_seed(10)
    act = torch.rand(64, generator=g) * 2 + 0.1
    act[[3, 17]] = torch.tensor([40.0, 25.0])  # outlier channels
    wmax = torch.rand(64, generator=g) * 0.3 + 0.02
    for alpha in (0.5, 0.75):
        s = c.call(act, wmax, alpha)
        c.expect_tensor(s, shape=(64,), name="s")
        want = smooth.smooth_scales(act, wmax, alpha)
        c.diagnose(s, {
            "s = act^alpha / w^(1 - alpha): alpha goes with the activations": wmax.pow(alpha) / act.pow(1 - alpha),
            "s = act^alpha / w^(1 - alpha), a ratio, not a product": act.pow(alpha) * wmax.pow(1 - alpha),
            "the weights' exponent is 1 - alpha": act.pow(alpha) / wmax.pow(alpha),
        }, f"the scales for alpha={alpha} are wrong", correct=want)
        c.close(s, want, f"scales for alpha={alpha}", "s_j = max|X_j|^alpha / max|W_j|^(1 - alpha)")
    c.expect(bool(s[3] > s.median()), "outlier channels should get the largest scales",
             "s grows with the channel's activation maximum: those channels are divided the most")
    c.done()


def check_mixed_int8(fn) -> None:
    c = Check("09.mixed_int8", fn)
    g = torch.Generator().manual_seed(11)
    x = torch.randn(24, 32, generator=g)
    x[:, [4, 9]] *= 30  # two outlier feature channels
    x[7, 20] = -8.0  # one negative outlier in another channel
    W = torch.randn(10, 32, generator=g) * 0.1
    out = c.call(x, W, 6.0)
    c.expect_tensor(out, shape=(24, 10), dtype=x.dtype, name="y")
    want = smooth.mixed_int8_linear(x, W, 6.0)
    cols = (x.abs() > 6).any(0)
    rows = (x.abs() > 6).any(1)
    pos = (x > 6).any(0)
    by_token = torch.empty_like(want)
    by_token[rows], by_token[~rows] = x[rows] @ W.T, smooth.w8a8_linear(x[~rows], W)
    c.diagnose(out, {
        "outliers are feature *columns* of x (dim -1, shared by all tokens), not tokens": by_token,
        "an outlier is |x| > threshold: a large negative value counts too":
            x[:, pos] @ W[:, pos].T + smooth.w8a8_linear(x[:, ~pos], W[:, ~pos]),
        "keep the outlier columns in float: int8 everywhere is plain W8A8": smooth.w8a8_linear(x, W),
        "the outlier part is computed in float, not int8":
            smooth.w8a8_linear(x[:, cols], W[:, cols]) + smooth.w8a8_linear(x[:, ~cols], W[:, ~cols]),
    }, "the result matches a known mistake", rtol=1e-5, correct=want)
    c.close(out, want, "y", "y = x[:, O] @ W[:, O].T + w8a8_linear(x[:, ~O], W[:, ~O]), O the outlier columns")
    exact = x @ W.T
    c.expect(float((out - exact).norm() / exact.norm()) < 0.02, "y is far from the float product",
             "add the two parts: the float matmul of the outlier columns and the int8 one of the rest")
    c.done()
