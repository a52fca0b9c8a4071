"""int4 weights times int8 activations, with integer dot products: how llama.cpp decodes on a CPU.

``Int4WeightOnlyLinear`` widens every 4-bit weight to a float before it multiplies; a decode step is
then limited by that arithmetic, not by reading the weights. Here the activations are quantized too,
to int8 per 16 inputs, so that the dot products run on small integers (x86's ``vpdpbusd`` adds four
uint8 x int8 products into an int32 per instruction) and floats come in once per 16 inputs:

    y[m, n] = sum_b  dw[n, b] sum_{h in b} dx[m, h] (qw[n, h, :] . qx[m, h, :])  +  mw[n, b] sx[m, b]

weights   w[n, k] ~ dw[n, b] qw[n, k] + mw[n, b],  qw in [0, 15]     (llama.cpp's Q4_1, b = k // 32)
inputs    x[m, k] ~ dx[m, h] qx[m, k],  dx = max|x| / 127, qx in [-127, 127]   (h = k // 16)
          sx[m, b] = sum_h dx[m, h] sum_k qx[m, k], the block's sum of the quantized inputs

so y is exactly the dequantized x times the dequantized W^T. Two choices, measured on SmolLM2 (int8
head; perplexity over fp32 on 4,096 tokens of the pydoc validation split; the same weights with float
activations: +0.37%):

* the minimums multiply the sum of the *quantized* inputs, as llama.cpp's Q8_1 does. With the exact
  float sum instead, the error of a product is (w - m)(x' - x) rather than w (x' - x): larger, since
  w - m >= 0 spans the whole block's range (+1.2% instead of +0.54%);
* one activation scale per 16 inputs, where llama.cpp takes 32 (+0.54% instead of +0.74%, for one
  more multiply-add per block).

The kernel (``w4a8.cpp``, one custom op ``torch.ops.llmlab.w4a8_mm``) is compiled for this machine on
first use (``torch.utils.cpp_extension``: a C++ compiler and ninja, ~10 s, cached afterwards); it uses
AVX512-VNNI where the CPU has it, else AVX2 (``vpmaddubsw``), else a plain loop (``kernel_isa`` says
which). Where it cannot be built, and off the CPU, ``W4A8Linear`` computes the same formula in PyTorch
(``_reference``): right, not fast.
"""
from __future__ import annotations

import functools
import hashlib
import platform
from pathlib import Path

import torch
import torch.nn as nn

from llmlab import validate
from llmlab.quant.linear import _check_codes, _check_grid, min_max_codes

BLOCK = 32  # inputs per block: one (scale, minimum) per block of a weight row, one scale per half of x's
TILE = 16  # weight rows per tile: one 32-bit lane per row of a 512-bit register


def _cpu_tag() -> str:
    """A short hash of the CPU's feature flags: the build is -march=native, so a home folder shared by
    different machines keeps one build per kind of CPU (a build for another CPU could crash on this one)."""
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        flags = platform.machine() + platform.processor()
    return hashlib.sha256(flags.encode()).hexdigest()[:8]


def _build(name: str, march: str = "native", build_directory: str | None = None) -> None:
    """Compile ``w4a8.cpp`` for ``-march=march`` (cached by ``torch.utils.cpp_extension`` under ``name``)
    and load it into this process, which registers ``torch.ops.llmlab``."""
    from torch.utils.cpp_extension import load

    load(name=name, sources=[str(Path(__file__).with_name("w4a8.cpp"))], build_directory=build_directory,
         extra_cflags=["-O3", f"-march={march}", "-fopenmp"], extra_ldflags=["-fopenmp"],
         is_python_module=False, verbose=False)


@functools.cache
def kernel_available() -> bool:
    """Build (first call on a machine) and load the C++ kernel; False where it cannot be built."""
    try:
        _build(f"llmlab_w4a8_{_cpu_tag()}")
    except Exception:  # no compiler, no ninja, another OS: the PyTorch formula stands in
        return False

    @torch.library.register_fake("llmlab::w4a8_mm")
    def _(x, codes, scales):  # for torch.export / torch.compile: the output's shape only
        return x.new_empty(x.shape[0], codes.shape[0] * TILE)

    return True


def kernel_isa() -> str | None:
    """The instructions the built kernel uses: ``"avx512-vnni"``, ``"avx2"`` or ``"scalar"`` (a plain loop,
    slower than torch's int4 kernel); None where it could not be built."""
    return str(torch.ops.llmlab.w4a8_isa()) if kernel_available() else None


def _quantize_activations(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """x (M, K) float -> qx (M, K/32, 2, 16) int8 values as float, dx (M, K/32, 2) per half block,
    sx (M, K/32): each block's sum of dx qx."""
    xh = x.float().reshape(x.shape[0], x.shape[1] // BLOCK, 2, BLOCK // 2)
    dx = xh.abs().amax(-1) / 127
    inv = torch.where(dx > 0, 1 / dx, torch.zeros_like(dx))  # the kernel's x * (1 / d), rounded half to even
    qx = (xh * inv[..., None]).round()
    return qx, dx, (qx.sum(-1) * dx).sum(-1)


def _reference(x: torch.Tensor, q: torch.Tensor, scale: torch.Tensor, minimum: torch.Tensor) -> torch.Tensor:
    """The kernel's sum in PyTorch: x (M, K), codes q (N, K) in [0, 15], scale and minimum (N, K/32)
    -> (M, N) float32."""
    qx, dx, sx = _quantize_activations(x)
    N, K = q.shape
    dot = torch.einsum("mbhk,nbhk->mnbh", qx, q.float().reshape(N, K // BLOCK, 2, BLOCK // 2))  # exact: integers
    return ((dot * dx[:, None]).sum(-1) * scale.float()[None]).sum(-1) + sx @ minimum.float().T


def _pack(q: torch.Tensor, scale: torch.Tensor, minimum: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Codes q (N, K) in [0, 15], scale and minimum (N, K/32) -> the kernel's layout: codes
    (N/16, K/32, 4, 64) uint8 and scales (N/16, K/32, 2, 16) float16 (see ``w4a8.cpp``)."""
    N, K = q.shape
    T, KB = N // TILE, K // BLOCK
    qb = q.to(torch.uint8).reshape(T, TILE, KB, BLOCK).transpose(1, 2)  # (T, KB, 16 rows, 32)
    lo, hi = (half.reshape(T, KB, TILE, 4, 4) for half in qb.split(BLOCK // 2, -1))  # (..., row, chunk c, j)
    codes = (lo | hi << 4).transpose(2, 3).reshape(T, KB, 4, 64)  # chunk c: byte 4 row + j
    grid = torch.stack([scale, minimum]).reshape(2, T, TILE, KB).permute(1, 3, 0, 2)  # (T, KB, 2, 16)
    return codes.contiguous(), grid.to(torch.float16).contiguous()


def _unpack(codes: torch.Tensor, scales: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``_pack``'s inverse: q (N, K) uint8, scale and minimum (N, K/32) float32."""
    T, KB = codes.shape[:2]
    bytes_ = codes.reshape(T, KB, 4, TILE, 4).transpose(2, 3)  # (T, KB, row, c, j)
    q = torch.cat([(bytes_ & 0x0F).reshape(T, KB, TILE, 16), (bytes_ >> 4).reshape(T, KB, TILE, 16)], -1)
    q = q.transpose(1, 2).reshape(T * TILE, KB * BLOCK)
    grid = scales.float().permute(2, 0, 3, 1).reshape(2, T * TILE, KB)
    return q, grid[0], grid[1]


class W4A8Linear(nn.Module):
    """y = x W^T with W in 4-bit codes (Q4_1 blocks of 32) and x quantized to int8 per 16 inputs on the
    fly; integer dot products inside each block. x (..., K) -> (..., N), N % 16 == 0, K % 32 == 0."""

    def __init__(self, q: torch.Tensor, scale: torch.Tensor, minimum: torch.Tensor):
        super().__init__()
        N, K = _check_codes(q, "integer (4-bit)")
        if N % TILE or K % BLOCK:
            raise ValueError(f"q must be (N, K) with N a multiple of {TILE} and K of {BLOCK}, got {tuple(q.shape)}")
        if int(q.min()) < 0 or int(q.max()) > 15:
            raise ValueError(f"q must hold 4-bit codes in [0, 15], got codes from {int(q.min())} to {int(q.max())}")
        _check_grid("scale", scale, (N, K // BLOCK))
        _check_grid("minimum", minimum, (N, K // BLOCK))
        self.out_features, self.in_features = N, K
        if q.device.type == "cpu":
            kernel_available()  # built now (once per machine), not in the middle of a first forward or an export
        codes, scales = _pack(q.cpu(), scale.cpu(), minimum.cpu())
        self.register_buffer("codes", codes.to(q.device))  # (N/16, K/32, 4, 64) uint8
        self.register_buffer("scales", scales.to(q.device))  # (N/16, K/32, 2, 16) float16: dw, mw

    @classmethod
    def from_float(cls, weight: torch.Tensor) -> "W4A8Linear":
        """From a float weight (N, K): each block of 32 inputs of a row gets its min and (max - min) / 15."""
        N, K = validate.tensor("weight", weight, ndim=2).shape
        if N == 0 or N % TILE or K == 0 or K % BLOCK:
            raise ValueError(f"weight must be (N, K) with N a multiple of {TILE} and K of {BLOCK}, "
                             f"got {tuple(weight.shape)}")
        return cls(*min_max_codes(weight, BLOCK))

    def dequantize(self) -> torch.Tensor:
        """The float32 weight (N, K) the codes stand for (fp16 scales and minimums)."""
        q, scale, minimum = _unpack(self.codes, self.scales)
        return (q.float().reshape(self.out_features, -1, BLOCK) * scale[..., None]
                + minimum[..., None]).reshape(self.out_features, self.in_features)

    @property
    def weight_nbytes(self) -> int:
        """Bytes a matmul reads: half a byte per code, two float16 per block."""
        return self.codes.numel() + self.scales.numel() * self.scales.element_size()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        try:  # a decode step calls this ~120 times: no checks on success (errors are explained after)
            x2 = x.reshape(-1, x.shape[-1])
            if x.device.type == "cpu" and kernel_available():
                y = torch.ops.llmlab.w4a8_mm(x2.float(), self.codes, self.scales)
            else:
                y = _reference(x2, *_unpack(self.codes, self.scales))
            return y.to(x.dtype).reshape(*x.shape[:-1], self.out_features)
        except (RuntimeError, TypeError, AttributeError) as error:
            validate.explain_input("x", x, self.in_features, error)
            raise
