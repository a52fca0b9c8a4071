"""int4 weights x int8 activations (``llmlab.quant.w4a8``): the C++ kernel (each of its paths) computes its
PyTorch formula, the formula is the int8-quantized inputs times the dequantized Q4_1 weights, and SmolLM2
with these layers decodes as it does in fp32.

Where the kernel cannot be built (no C++ compiler or ninja) the kernel tests skip; the layer's own
tests then run its PyTorch fallback.
"""
from __future__ import annotations

import pytest
import torch

from llmlab.quant import w4a8
from llmlab.quant.linear import Int4WeightOnlyLinear, Int8WeightOnlyLinear
from llmlab.quant.w4a8 import W4A8Linear

needs_kernel = pytest.mark.skipif(not w4a8.kernel_available(), reason="the w4a8 C++ kernel cannot be built here")


def _layer(N: int, K: int, seed: int = 0) -> W4A8Linear:
    return W4A8Linear.from_float(torch.randn(N, K, generator=torch.Generator().manual_seed(seed)))


def test_pack_and_unpack_are_inverse_on_every_code():
    g = torch.Generator().manual_seed(1)
    q = torch.randint(0, 16, (48, 96), generator=g, dtype=torch.uint8)
    scale, minimum = torch.rand(48, 3, generator=g) + 0.1, torch.randn(48, 3, generator=g)
    codes, scales = w4a8._pack(q, scale, minimum)
    assert codes.shape == (3, 3, 4, 64) and scales.shape == (3, 3, 2, 16) and scales.dtype == torch.float16
    q2, s2, m2 = w4a8._unpack(codes, scales)
    assert torch.equal(q2, q)
    torch.testing.assert_close(s2, scale.half().float(), rtol=0, atol=0)
    torch.testing.assert_close(m2, minimum.half().float(), rtol=0, atol=0)
    # the documented byte: row r, chunk c, j < 4 holds q[r, 4c + j] | q[r, 16 + 4c + j] << 4
    r, c, j = 5, 2, 3
    assert int(codes[0, 1, c, 4 * r + j]) == int(q[r, 32 + 4 * c + j]) | int(q[r, 32 + 16 + 4 * c + j]) << 4


def test_activations_are_int8_per_half_block_with_the_sums_of_their_blocks():
    x = torch.tensor([[*range(-16, 16)], [0.0] * 16 + [1.0] * 16])
    qx, dx, sx = w4a8._quantize_activations(x)
    assert qx.shape == (2, 1, 2, 16) and dx.shape == (2, 1, 2) and sx.shape == (2, 1)
    torch.testing.assert_close(dx[0, 0], torch.tensor([16 / 127, 15 / 127]))  # max |x| of each half maps to 127
    assert dx[1, 0, 0] == 0
    assert qx[0, 0, 0, 0] == -127 and qx[0, 0, 1, -1] == 127 and qx.abs().max() <= 127
    assert torch.equal(qx[1, 0, 0], torch.zeros(16)) and torch.equal(qx[1, 0, 1], torch.full((16,), 127.0))
    # what the weights' minimums multiply: each block's sum of the quantized values
    torch.testing.assert_close(sx, (qx * dx[..., None]).sum((-2, -1)))
    torch.testing.assert_close(sx[:, 0], torch.tensor([-16.0, 16.0]), atol=16 * 16 / 127, rtol=0)
    torch.testing.assert_close((qx * dx[..., None]).reshape(2, 32), x, atol=16 / 127 / 2, rtol=0)


def test_the_formula_is_the_quantized_inputs_times_the_dequantized_weights():
    layer = _layer(32, 128)
    x = torch.randn(5, 128)
    y = w4a8._reference(x, *w4a8._unpack(layer.codes, layer.scales))
    qx, dx, _ = w4a8._quantize_activations(x)
    xq = (qx * dx[..., None]).reshape(5, 128)  # x as the kernel sees it
    torch.testing.assert_close(y, xq @ layer.dequantize().T, rtol=1e-4, atol=1e-4)
    exact = x @ layer.dequantize().T  # and x itself: off by the inputs' rounding only
    assert (y - exact).abs().max() < 0.02 * exact.abs().max()


@needs_kernel
@pytest.mark.parametrize("M,N,K", [(1, 16, 32), (1, 960, 576), (3, 48, 96), (4, 32, 64), (7, 576, 1536), (13, 48, 64),
                                   (16, 32, 96), (0, 16, 32)])
def test_the_kernel_computes_the_formula(M, N, K):
    layer = _layer(N, K, seed=M)
    x = torch.randn(M, K) * 3
    x[:, :32] = 0  # an all-zero block of activations: scale 0
    y = torch.ops.llmlab.w4a8_mm(x, layer.codes, layer.scales)
    expected = w4a8._reference(x, *w4a8._unpack(layer.codes, layer.scales))
    assert y.shape == (M, N)
    scale = float(expected.abs().amax()) if expected.numel() else 1.0
    torch.testing.assert_close(y, expected, rtol=1e-5, atol=1e-5 * max(1.0, scale))


_OTHER_PATH = """
import sys, torch
from llmlab.quant import w4a8
w4a8._build("llmlab_w4a8_" + sys.argv[1].replace("-", "_"), sys.argv[1], sys.argv[2])
g = torch.Generator().manual_seed(0)
for M, N, K in [(1, 16, 32), (3, 48, 96), (5, 96, 64), (0, 16, 32)]:
    codes, scales = w4a8._pack(torch.randint(0, 16, (N, K), generator=g), torch.rand(N, K // 32, generator=g),
                               -torch.rand(N, K // 32, generator=g))
    x = torch.randn(M, K, generator=g) * 3
    expected = w4a8._reference(x, *w4a8._unpack(codes, scales))
    torch.testing.assert_close(torch.ops.llmlab.w4a8_mm(x, codes, scales), expected, rtol=1e-5, atol=1e-4)
x[-1:, 7] = float("nan")
assert torch.ops.llmlab.w4a8_mm(x, codes, scales)[-1:].isnan().all()
print(torch.ops.llmlab.w4a8_isa())
"""


@needs_kernel
def test_the_avx2_and_plain_loop_paths_compute_the_formula_too(tmp_path):
    """The paths of CPUs without AVX-512 (most laptops): built here for older -march targets, each in its own
    process (one torch.ops.llmlab per process), both at once."""
    import subprocess
    import sys

    runs = {}
    for march in ("haswell", "x86-64"):
        (tmp_path / march).mkdir()
        runs[march] = subprocess.Popen([sys.executable, "-c", _OTHER_PATH, march, str(tmp_path / march)],
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for march, isa in (("haswell", "avx2"), ("x86-64", "scalar")):
        out, err = runs[march].communicate(timeout=600)
        assert runs[march].returncode == 0, err[-2000:]
        assert out.split()[-1] == isa


@needs_kernel
def test_a_nan_input_makes_its_row_nan():
    layer = _layer(32, 64)
    x = torch.randn(3, 64)
    x[1, 40] = float("nan")
    kernel = torch.ops.llmlab.w4a8_mm(x, layer.codes, layer.scales)
    formula = w4a8._reference(x, *w4a8._unpack(layer.codes, layer.scales))
    for y in (kernel, formula):  # max |x| alone would skip the NaN
        assert y[1].isnan().all() and not y[[0, 2]].isnan().any()


@needs_kernel
def test_the_kernel_refuses_a_wrong_layout():
    layer = _layer(16, 64)
    with pytest.raises(RuntimeError, match="inputs"):
        torch.ops.llmlab.w4a8_mm(torch.randn(2, 32), layer.codes, layer.scales)
    with pytest.raises(RuntimeError, match="float32"):
        torch.ops.llmlab.w4a8_mm(torch.randn(2, 64).double(), layer.codes, layer.scales)


def test_the_layer_without_the_kernel_computes_the_same(monkeypatch):
    layer = _layer(32, 64)
    x = torch.randn(2, 3, 64)
    fast = layer(x)
    monkeypatch.setattr(w4a8, "kernel_available", lambda: False)
    slow = layer(x)
    assert slow.shape == fast.shape == (2, 3, 32)
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-4)


def test_from_float_is_the_int4_layers_grid():
    w = torch.randn(32, 64)
    int4 = Int4WeightOnlyLinear.from_float(w, 32)
    layer = W4A8Linear.from_float(w)
    q, scale, minimum = w4a8._unpack(layer.codes, layer.scales)
    assert torch.equal(q, int4.q if int4.q is not None else q)  # the same codes (packed differently on the CPU)
    torch.testing.assert_close(scale, int4.scale.half().float(), rtol=0, atol=0)
    torch.testing.assert_close(layer.dequantize(), int4.dequantize(), rtol=0, atol=0.02)
    assert layer.weight_nbytes == 32 * 64 // 2 + 2 * 2 * 32 * 2


def test_bad_arguments_are_named():
    q = torch.zeros(16, 32, dtype=torch.uint8)
    grid = torch.ones(16, 1)
    with pytest.raises(TypeError, match="q"):
        W4A8Linear(q.float(), grid, grid)
    with pytest.raises(ValueError, match="q"):
        W4A8Linear(torch.zeros(15, 32, dtype=torch.uint8), grid[:15], grid[:15])
    with pytest.raises(ValueError, match="q"):
        W4A8Linear(q + 16, grid, grid)
    with pytest.raises(ValueError, match="scale"):
        W4A8Linear(q, torch.ones(16, 2), grid)
    with pytest.raises(TypeError, match="weight"):
        W4A8Linear.from_float([[1.0]])
    with pytest.raises(ValueError, match="weight"):
        W4A8Linear.from_float(torch.randn(16, 48))
    with pytest.raises(ValueError, match="x"):
        _layer(16, 32)(torch.randn(2, 33))
    with pytest.raises(TypeError, match="x"):
        _layer(16, 32)("x")


def test_smollm2_decodes_as_in_fp32():
    """The whole model with int4 x int8 blocks and an int8 head: its next-token distribution stays close to
    fp32's and its first greedy tokens are fp32's (on a Chinese question)."""
    pytest.importorskip("gguf")
    from llmlab.inference.fast_decoder import FastDecoder
    from llmlab.inference.generation import generate
    from llmlab.models import load_smollm2
    from llmlab.nn.kv_cache import KVCache
    from llmlab.tokenization.smollm2 import chat_template, load_smollm2_tokenizer

    model = load_smollm2(device="cpu")
    ids = load_smollm2_tokenizer().encode(chat_template([{"role": "user", "content": "什么是哈希表？"}]))
    fp32 = FastDecoder(model)
    w4 = FastDecoder(model, W4A8Linear.from_float, Int8WeightOnlyLinear.from_float)
    x = torch.tensor([ids])
    p, q = (m(x, KVCache.for_model(m, 1, len(ids)), last_only=True)[0, -1].softmax(-1) for m in (fp32, w4))
    assert 0.5 * (p - q).abs().sum() < 0.1  # total variation distance
    assert generate(w4, ids, 6) == generate(fp32, ids, 6)
