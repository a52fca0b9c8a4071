"""Checks for notebook 09_quantization."""
from __future__ import annotations

import torch

from llmlab.grading.core import Case, Check, Draw, exercise, randn, same
from llmlab.quant import affine, gguf_blocks, gptq, smooth

_BITS_HINT = "use the bits argument: 2^bits - 1 (affine) or Q = 2^(bits-1) - 1 (symmetric), not the example's 4 or 8 bits"
_HALF_EVEN = "round with torch.round, which sends halves to the even code (2.5 -> 2, 3.5 -> 4), not floor(x + 0.5)"


def _pair(c: Check, out, what: str, n: int = 2) -> tuple:
    c.expect(isinstance(out, tuple) and len(out) == n, f"{what} returned {type(out).__name__}, expected a tuple of {n}",
             f"return the {n} results as a tuple, in the order of the docstring")
    return out


def _codes_then(*names: str, codes: bool = True):
    """compare(): the first item (integer codes) by value whatever its dtype, the others as the reference's;
    a "scale" relatively (no absolute tolerance: the 1e-12 floor of a zero range must show)."""
    def compare(actual, expected) -> str | None:
        if not (isinstance(actual, tuple) and len(actual) == len(expected)):
            return f"the result is a {type(actual).__name__}, expected a tuple of {len(expected)}"
        if codes:
            actual, expected = (actual[0].double() if isinstance(actual[0], torch.Tensor) else actual[0],
                                *actual[1:]), (expected[0].double(), *expected[1:])
        return next((r for a, e, n in zip(actual, expected, names)
                     if (r := same(a, e, name=n, reveal=False, atol=1e-300 if n == "scale" else None))), None)
    return compare


# ------------------------------------------------------------------------------------------ affine


def _szp_cases(d: Draw) -> list[Case]:
    lo = d.randn(3, 5)  # some ranges all positive or all negative: their zero points clamp
    hi = lo + d.rand(3, 5) * 3 + 0.1
    s, k = 2.0 ** -d.int(2, 5), torch.tensor([0.5, 1.5, 2.5, 3.5, 4.5])
    return [
        Case("other bit widths on a (3, 5) grid of ranges", lo, hi, d.choice([2, 3, 5, 6, 7]), hint=_BITS_HINT),
        Case("-lo / s exactly halfway between two codes", -k * s, (15 - k) * s, 4,
             hint=f"the zero point is -torch.round(lo / s): {_HALF_EVEN}"),
        Case("one range as 0-d tensors", torch.tensor(-d.float(0.1, 2)), torch.tensor(d.float(0.1, 2)), 8),
        Case("float64 ranges", -d.rand(4, dtype=torch.float64), d.rand(4, dtype=torch.float64), 8),
        Case("tiny ranges (hi - lo down to 1e-9)", torch.zeros(3), torch.tensor([1e-9, 1e-7, 0.0]), 8,
             hint="s = max((hi - lo) / (2^b - 1), 1e-12): clamp the scale, do not add 1e-12 to it"),
    ]


@exercise("09.scale_zero_point", reference=affine.scale_zero_point, cases=_szp_cases,
          compare=_codes_then("scale", "zero", codes=False))
def check_scale_zero_point(c: Check) -> None:
    lo = torch.tensor([-1.0, -0.2, 0.5, -3.0, -4.0])
    hi = torch.tensor([1.0, 2.0, 1.5, -1.0, 0.0])  # straddling 0, skewed, all positive, all negative, ending at 0
    for bits in (4, 8):
        scale, zero = _pair(c, c.call(lo, hi, bits), f"scale_zero_point(lo, hi, {bits})")
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


def _quantize_dequantize(x, scale, zero, bits):
    q = affine.quantize(x, scale, zero, bits, symmetric=False)
    return q, affine.dequantize(q, scale, zero)


def _qd_cases(d: Draw) -> list[Case]:
    N, K, bits = d.int(2, 5), d.int(5, 13), d.choice([2, 3, 5, 8])
    x = d.randn(N, K) * torch.logspace(-1, 1, N)[:, None]
    scale, zero = affine.affine_grid(x.amin(1, keepdim=True) * 0.8, x.amax(1, keepdim=True) * 0.8, bits)
    s = 2.0 ** -d.int(2, 5)
    halves = (torch.arange(-3, 4) + 0.5) * s  # x / s exactly halfway between two codes
    x64 = d.randn(3, 7, dtype=torch.float64)
    return [
        Case(f"{bits} bits, one grid per row of x", x, scale, zero, bits, hint=_BITS_HINT),
        Case("x / s exactly halfway between two codes", halves, torch.tensor(s), torch.tensor(8.0), 4, hint=_HALF_EVEN),
        Case("float64 x, scale and zero", x64, torch.tensor(0.02, dtype=torch.float64),
             torch.tensor(100.0, dtype=torch.float64), 8),
    ]


@exercise("09.quantize_dequantize", reference=_quantize_dequantize, cases=_qd_cases, compare=_codes_then("q", "x_hat"))
def check_quantize_dequantize(c: Check) -> None:
    x = torch.cat([randn(200, seed=5) * 0.8, torch.tensor([-3.0, 3.0, 0.0, 0.25])])
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


def _per_channel(w, bits):
    Q = 2 ** (bits - 1) - 1
    scale = w.abs().amax(1).clamp(min=1e-12) / Q
    return torch.round(w / scale[:, None]).clamp(-Q, Q), scale


def _per_group(w, bits, group_size):
    N, K = w.shape
    Q = 2 ** (bits - 1) - 1
    scale = w.reshape(N, K // group_size, group_size).abs().amax(-1).clamp(min=1e-12) / Q
    return torch.round(w.reshape(N, -1, group_size) / scale[..., None]).clamp(-Q, Q).reshape(N, K), scale


def _weight_cases(d: Draw, grouped: bool) -> list[Case]:
    g = d.choice([8, 24]) if grouped else None
    N, K = d.int(3, 7), (d.choice([3, 5]) * g if grouped else d.int(5, 31))
    w = d.randn(N, K) * torch.logspace(-2, 1, N)[:, None]
    extra = (g,) if grouped else ()
    zeros = w.clone()
    zeros[-1, : (g or K)] = 0  # an all-zero row (group)
    return [Case(f"{bits} bits, another shape{', groups of ' + str(g) if grouped else ''}", w, bits, *extra,
                 hint=_BITS_HINT) for bits in (d.choice([2, 3]), d.choice([5, 6]))] + \
        [Case("float64 weights", d.randn(4, 2 * (g or 8), dtype=torch.float64), 8, *extra),
         Case(f"an all-zero {'group' if grouped else 'row'}", zeros, 8, *extra,
              hint="clamp max|w| to at least 1e-12 before dividing by Q: an all-zero row gets the scale 1e-12 / Q, not 0")]


@exercise("09.per_channel", reference=_per_channel, cases=lambda d: _weight_cases(d, False),
          compare=_codes_then("q", "scale"))
def check_per_channel(c: Check) -> None:
    w = randn(12, 40, seed=6) * torch.logspace(-2, 1, 12)[:, None]  # rows of very different sizes
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


@exercise("09.per_group", reference=_per_group, cases=lambda d: _weight_cases(d, True), compare=_codes_then("q", "scale"))
def check_per_group(c: Check) -> None:
    w = randn(6, 64, seed=7)
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


# ------------------------------------------------------------------------------------------ GGUF blocks

_RECIPROCAL = ("compute the codes as x * (1 / d), with the float32 reciprocal of the float32 d, as ggml does: "
               "x / d differs from it in the last bit, which moves a code now and then")


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


def _boundary_blocks(d: Draw, q4: bool, n: int = 24) -> torch.Tensor:
    """Blocks full of values next to a rounding boundary, where x / d and x * (1 / d) give different codes."""
    extreme = (d.rand(n) + 0.5) * torch.where(d.rand(n) < 0.5, -1.0, 1.0) * 2.0 ** d.int(-4, 6)
    scale = extreme / -8 if q4 else extreme.abs() / 127
    j = torch.arange(-8, 8) + 0.5 if q4 else torch.cat([torch.arange(-126, -1), torch.arange(1, 126)]) + 0.5
    x = j * scale[:, None]
    near = [x] + [torch.nextafter(x, torch.tensor(s * float("inf"))) for s in (1, -1)]
    for _ in range(3):
        near += [torch.nextafter(near[-2], torch.tensor(float("inf"))), torch.nextafter(near[-1], torch.tensor(float("-inf")))]
    cand = torch.stack(near, -1).reshape(n, -1)
    codes = (lambda v: torch.trunc(v + 8.5)) if q4 else gguf_blocks.round_half_away
    differ = codes(cand * (1 / scale[:, None])) != codes(cand / scale[:, None])
    out = (d.rand(n, 32) * 1.8 - 0.9) * extreme.abs()[:, None]
    for r in range(n):
        picked = cand[r][differ[r]][:31]
        out[r, 1:1 + len(picked)] = picked
    out[:, 0] = extreme
    return out


def _block_cases(d: Draw, q4: bool) -> list[Case]:
    n = d.int(3, 9)
    b = d.randn(n, 32) * torch.logspace(-2, 3, n)[:, None]
    b[d.int(0, len(b) - 1)] = 0
    tiny = d.randn(4, 32) * 1e-7  # d = max|x| / 127 (or / 8) underflows in float16, not in float32
    cases = [Case("values next to a rounding boundary", _boundary_blocks(d, q4), hint=_RECIPROCAL),
             Case("another number of blocks, one of them all zeros", b),
             Case("blocks of tiny values (d rounds to 0 in float16)", tiny,
                  hint="compute the codes with the float32 d and its float32 reciprocal; round d to fp16 only to store it")]
    if q4:
        top = d.float(0.5, 4.0)
        ties = d.randn(6, 32).clamp(-0.4, 0.4) * top
        for r in range(6):  # +top and -top in the same block, in both orders
            i, j = d.sample(range(32), 2)
            ties[r, min(i, j)], ties[r, max(i, j)] = (top, -top) if r % 2 else (-top, top)
        cases.append(Case("two values of equal largest |x| and opposite signs", ties,
                          hint="on a tie for the largest |x|, the extreme is the value that comes first in the block "
                               "(blocks.abs().argmax(1) returns the first)"))
    return cases


def _block_tensors(c: Check, out, name: str, n: int, code_dtype: torch.dtype):
    d, q = _pair(c, out, f"{name}(blocks ({n}, 32))")
    c.expect_tensor(d, shape=(n, 1), name="d")
    c.expect_tensor(q, shape=(n, 32), name="q")
    c.expect(d.dtype == torch.float16, f"d has dtype {d.dtype}, expected torch.float16",
             "compute d in float32, then store it as fp16: return d.to(torch.float16)")
    c.expect(q.dtype == code_dtype, f"q has dtype {q.dtype}, expected {code_dtype}",
             f"return the codes as {str(code_dtype).replace('torch.', '')}: q.to({code_dtype})")
    return d, q


def _call_on_blocks(c: Check, name: str, top: int, code_dtype: torch.dtype):
    """Run a block quantizer on half-way blocks and random ones; check the (d, q) it returns."""
    blocks = torch.cat([_half_blocks(top), _blocks()])
    d, q = _block_tensors(c, c.call(blocks), name, len(blocks), code_dtype)
    return blocks, d, q


@exercise("09.q8_0_block", reference=gguf_blocks.q8_0_codes, cases=lambda d: _block_cases(d, False))
def check_q8_0_block(c: Check) -> None:
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


@exercise("09.q4_0_block", reference=gguf_blocks.q4_0_codes, cases=lambda d: _block_cases(d, True))
def check_q4_0_block(c: Check) -> None:
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
    zero = 6  # _blocks()[0], after the 6 half-way blocks, is all zeros
    c.expect(bool((q[zero] == 8).all()), f"an all-zero block got codes {q[zero].unique().tolist()}, expected 8",
             "an all-zero block has d = 0: use 1/d = 0 there (not 1/0 = inf, whose 0 * inf is NaN), so every code is 8")
    inv = torch.where(want_d == 0, 0, 1 / (extreme / -8))
    c.diagnose(q.float(), {"ggml computes trunc(x / d + 8.5), which rounds halves up; torch.round(x / d) + 8 rounds them to even":
                           (torch.round(blocks * inv) + 8).clamp(0, 15)}, "the codes differ from ggml's",
               correct=want_q.float())
    c.expect(torch.equal(q, want_q), f"{int((q != want_q).sum())} codes differ from ggml's",
             "q = min(15, trunc(x * (1 / d) + 8.5)), computed with the float32 d")


def _pack_cases(d: Draw) -> list[Case]:
    return [Case("another number of blocks", d.randint(0, 16, (d.int(51, 90), 32)).to(torch.uint8)),
            Case("a single block of codes 0 and 15", (d.randint(0, 2, (1, 32)) * 15).to(torch.uint8))]


@exercise("09.pack_nibbles", reference=gguf_blocks.pack_nibbles, cases=_pack_cases)
def check_pack_nibbles(c: Check) -> None:
    q = torch.randint(0, 16, (50, 32), generator=torch.Generator().manual_seed(8), dtype=torch.uint8)
    out = c.call(q)
    c.expect_tensor(out, shape=(50, 16), name="packed")
    c.expect(out.dtype == torch.uint8, f"packed has dtype {out.dtype}, expected torch.uint8",
             "two 4-bit codes fill one byte: keep the codes in torch.uint8 (no .long() / .int())")
    want = gguf_blocks.pack_nibbles(q)
    c.diagnose(out.float(), {
        "ggml pairs code j with code j + 16, not neighbours 2j and 2j + 1": (q[:, 0::2] | (q[:, 1::2] << 4)).float(),
        "code j goes in the low nibble, code j + 16 in the high one": (q[:, 16:] | (q[:, :16] << 4)).float(),
    }, "the packed bytes differ from ggml's", correct=want.float())
    c.expect(torch.equal(out, want), "the packed bytes differ from ggml's", "byte j = q[:, j] | (q[:, j + 16] << 4)")


# ------------------------------------------------------------------------------------------ GPTQ


def _gptq_problem(N: int = 16, K: int = 48):
    g = torch.Generator().manual_seed(9)
    X = torch.randn(400, K, generator=g) @ torch.randn(K, K, generator=g)  # correlated inputs: GPTQ's edge
    W = torch.randn(N, K, generator=g)
    return W, X, gptq.hessian(X)


def gptq_step(fn, W, U, i, q):
    """Harness for the hidden cases: the learner's step, then (err, the updated W)."""
    err = fn(W, U, i, q)
    return err, W


def _gptq_cases(d: Draw) -> list[Case]:
    def problem(N, B, i, dtype=torch.float32):
        X = d.randn(3 * B, B, dtype=dtype) @ d.randn(B, B, dtype=dtype)
        W = d.randn(N, B, dtype=dtype)
        U = gptq.inverse_hessian_factor(gptq.hessian(X))
        return W, U, i, affine.fake_quantize(W[:, i], 4, granularity="tensor")

    N, B = d.int(3, 9), d.int(50, 70)
    return [Case("a wider block", *problem(N, B, d.int(0, 20)),
                 hint="update every column after i, W[:, i+1:], whatever the block's width"),
            Case("the first column", *problem(N, 12, 0)),
            Case("the last column (nothing after it)", *problem(N, 12, 11)),
            Case("float64 weights", *problem(N, 10, 4, torch.float64))]


@exercise("09.gptq_update", reference=gptq.gptq_column_update, cases=_gptq_cases, via=gptq_step, inplace=True)
def check_gptq_update(c: Check) -> None:
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
    c.expect(torch.equal(W1[:, :i + 1], W[:, :i + 1]), "columns up to i (column i included) changed",
             "only the columns after i are updated: W[:, i+1:], not W[:, i:]")
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


# ------------------------------------------------------------------------------------------ activations


def _smooth_cases(d: Draw) -> list[Case]:
    K = d.int(65, 130)
    act, wmax = d.rand(K) * 3 + 0.1, d.rand(K) * 0.3 + 0.02
    return [Case(f"another width, alpha = {a:.2f}", act, wmax, a) for a in (d.float(0.05, 0.45), d.float(0.55, 0.95))] + \
        [Case("alpha = 1 (all of the range to the weights)", act, wmax, 1.0),
         Case("float64 maxima", d.rand(9, dtype=torch.float64) + 0.1, d.rand(9, dtype=torch.float64) + 0.1, 0.5),
         Case("channels whose maximum is 0", act * (torch.arange(K) % 7 != 0), wmax * (torch.arange(K) % 11 != 3),
              d.float(0.2, 0.8), hint="clamp both maxima to at least 1e-5 before the powers: a channel never active "
              "has max 0")]


@exercise("09.smooth_scales", reference=smooth.smooth_scales, cases=_smooth_cases)
def check_smooth_scales(c: Check) -> None:
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


def _mixed_cases(d: Draw) -> list[Case]:
    T, K, N = d.int(5, 20), d.int(12, 40), d.int(3, 9)
    x, W = d.randn(T, K), d.randn(N, K, scale=0.1)
    cols = d.sample(range(K), 3)
    x[:, cols[:2]] *= 8
    x[d.int(0, T - 1), cols[2]] = -d.float(3.5, 5.5)
    return [Case("threshold 3 instead of 6", x, W, 3.0, hint="use the threshold argument, not a fixed 6"),
            Case("no outlier at all", x.clamp(-2, 2), W, 6.0),
            Case("float64 inputs", x.double(), W.double(), 6.0),
            Case("values of exactly the threshold", x.clamp(-2, 2).index_put_((torch.tensor([0, T - 1]), torch.tensor(cols[:2])),
                                                                         torch.tensor([6.0, -6.0])), W, 6.0,
                 hint="an outlier is |x| > threshold, strictly: a value of exactly the threshold stays in int8")]


@exercise("09.mixed_int8", reference=smooth.mixed_int8_linear, cases=_mixed_cases)
def check_mixed_int8(c: Check) -> None:
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
