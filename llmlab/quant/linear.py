"""Weight-only quantized linear layers: int8 per output channel, int4 in groups along the input.

Decoding one token reads every weight once and does only 2 flops per weight read, so its speed is
set by bytes moved, not by arithmetic. Storing weights in 8 or 4 bits moves 4x or 8x fewer bytes
than float32; the activations stay in floating point ("weight-only"), and each weight is expanded
back on the fly inside the matmul kernel.

int8, symmetric, one scale per output row n:     w[n, k] ~ s[n] * q[n, k],            q in [-127, 127]
int4, asymmetric, one (scale, min) per group g of ``group_size`` inputs of row n:
                                                  w[n, k] ~ s[n, g] * q[n, k] + m[n, g], q in [0, 15]

On the CPU both call torch's packed kernels (``_weight_int8pack_mm``, ``_weight_int4pack_mm_for_cpu``),
which want bfloat16 activations; elsewhere the weight is dequantized and ``F.linear`` is used (right,
not fast). The int4 layout is llama.cpp's Q4_1: SmolLM2's GGUF blocks are Q4_1 groups of 32, so
re-quantizing its dequantized weights this way gives back the same numbers (up to float rounding).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from llmlab import validate
from llmlab.quant.affine import QuantizedTensor, quantize_weight
from llmlab.quant.gptq import GPTQResult


def _check_weight(weight: torch.Tensor) -> None:
    validate.tensor("weight", weight, ndim=2, floating=True, finite=True)
    if weight.numel() == 0:
        raise ValueError(f"weight must be (out_features, in_features) with both >= 1, got {tuple(weight.shape)}")


def _check_codes(q, integer: str) -> tuple[int, int]:
    """q: codes (N, K), N, K >= 1, of an integer dtype (``integer`` describes it); returns (N, K)."""
    validate.tensor("q", q, ndim=2)
    if q.is_floating_point() or q.is_complex() or q.dtype == torch.bool:
        raise TypeError(f"q must hold {integer} codes, got dtype {q.dtype}")
    if q.numel() == 0:
        raise ValueError(f"q must be (out_features, in_features) with both >= 1, got {tuple(q.shape)}")
    return q.shape


def _check_grid(name: str, x, shape: tuple[int, ...]) -> None:
    validate.tensor(name, x, floating=True, finite=True)
    if tuple(x.shape) != shape:
        raise ValueError(f"{name} must have shape {shape}, got {tuple(x.shape)}")


def _cpu_kernel(name: str) -> bool:
    return hasattr(torch.ops.aten, name)


class Int8WeightOnlyLinear(nn.Module):
    """y = x W^T with W stored as int8 and one float scale per output row. x (..., K) -> (..., N)."""

    def __init__(self, q: torch.Tensor, scale: torch.Tensor):
        super().__init__()
        if validate.tensor("q", q).dtype != torch.int8:
            raise TypeError(f"q must be an int8 tensor of codes, got dtype {q.dtype}")
        N, _ = _check_codes(q, "int8")
        _check_grid("scale", scale, (N,))
        self.register_buffer("q", q)  # (N, K) int8
        self.out_features, self.in_features = q.shape
        self.register_buffer("scale", scale)  # (N,) float32
        self.register_buffer("scale_bf16", scale.to(torch.bfloat16))  # what the CPU kernel reads, cast once

    @classmethod
    def from_float(cls, weight: torch.Tensor) -> "Int8WeightOnlyLinear":
        _check_weight(weight)
        qt = quantize_weight(weight, 8, granularity="channel")  # the largest |w| of each row maps to 127
        return cls(qt.q.to(torch.int8), qt.scale)

    def dequantize(self) -> torch.Tensor:
        return self.q.float() * self.scale[:, None]

    @property
    def weight_nbytes(self) -> int:
        """Bytes a matmul reads: the int8 codes and the scales."""
        return self.q.numel() + self.scale.numel() * self.scale.element_size()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        try:
            shape = x.shape
            x2 = x.reshape(-1, shape[-1])
            # the CPU kernel reads rows in steps of 16 (AVX-512): any other K gives garbage or a crash
            if x.device.type == "cpu" and shape[-1] % 16 == 0 and _cpu_kernel("_weight_int8pack_mm"):
                y = torch.ops.aten._weight_int8pack_mm(x2.to(torch.bfloat16), self.q, self.scale_bf16)
            else:
                y = F.linear(x2, self.q.to(x.dtype)) * self.scale.to(x.dtype)
            return y.to(x.dtype).reshape(*shape[:-1], self.out_features)  # not -1: no rows is (..., 0, N)
        except (RuntimeError, TypeError, AttributeError) as error:  # explained after the fact
            validate.explain_input("x", x, self.in_features, error)
            raise


def min_max_codes(weight: torch.Tensor, group_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Q4_1 codes of a float weight (N, K), each row in groups of ``group_size`` inputs: q (N, K) uint8 in
    [0, 15], scale and minimum (N, K / group_size), w ~ scale q + minimum with the group's range spread
    over the 16 codes."""
    _check_weight(weight)
    N, K = weight.shape
    group_size = validate.divisor("group_size", group_size, K, minimum=2, what="in_features")
    w = weight.detach().float().reshape(N, K // group_size, group_size)
    lo, hi = w.amin(-1), w.amax(-1)
    scale = ((hi - lo) / 15).clamp(min=1e-12)  # a constant group: any scale > 0 gives it back
    q = ((w - lo[..., None]) / scale[..., None]).round().clamp(0, 15)
    return q.reshape(N, K).to(torch.uint8), scale, lo


class Int4WeightOnlyLinear(nn.Module):
    """y = x W^T with W stored as 4-bit codes, one (scale, min) pair per group of ``group_size`` inputs.
    x (..., K) -> (..., N)."""

    def __init__(self, q: torch.Tensor, scale: torch.Tensor, minimum: torch.Tensor, group_size: int):
        super().__init__()
        N, K = _check_codes(q, "integer (4-bit)")
        if int(q.min()) < 0 or int(q.max()) > 15:
            raise ValueError(f"q must hold 4-bit codes in [0, 15], got codes from {int(q.min())} to {int(q.max())}")
        group_size = validate.divisor("group_size", group_size, K, what="in_features")
        _check_grid("scale", scale, (N, K // group_size))
        _check_grid("minimum", minimum, (N, K // group_size))
        self.group_size = group_size
        self.register_buffer("scale", scale)  # (N, K / g) float32
        self.register_buffer("minimum", minimum)  # (N, K / g)
        self.out_features, self.in_features = q.shape
        # the CPU kernel takes N divisible by 16 and groups of 32, 64, 128 or 256 only
        if (q.device.type == "cpu" and self.out_features % 16 == 0 and group_size in (32, 64, 128, 256)
                and _cpu_kernel("_weight_int4pack_mm_for_cpu")):
            # the kernel computes (q - 8) * s + z per group, so z = m + 8 s gives s q + m
            self.register_buffer("packed", torch.ops.aten._convert_weight_to_int4pack_for_cpu(q.int(), 1))
            sz = torch.stack([scale, minimum + 8 * scale], -1).transpose(0, 1)  # (K / g, N, 2)
            self.register_buffer("scale_zero", sz.to(torch.bfloat16).contiguous())
            self.q = None
        else:
            self.packed = None
            self.register_buffer("q", q.to(torch.uint8))

    @classmethod
    def from_float(cls, weight: torch.Tensor, group_size: int = 32) -> "Int4WeightOnlyLinear":
        q, scale, minimum = min_max_codes(weight, group_size)
        return cls(q, scale, minimum, weight.shape[1] // scale.shape[1])  # group_size, as checked

    @classmethod
    def from_quantized(cls, qt) -> "Int4WeightOnlyLinear":
        """From codes of at most 4 bits with one (scale, zero) per group of a row: an
        ``affine.QuantizedTensor`` or a ``gptq.GPTQResult`` (without act-order), symmetric or not.

        Value s (q - z) is stored as s q' + m with q' = q + c in [0, 15] (c = 8 for symmetric codes,
        which go negative) and m = -s (z + c)."""
        if not isinstance(qt, (QuantizedTensor, GPTQResult)):
            raise TypeError(f"qt must be an affine.QuantizedTensor or a gptq.GPTQResult, got {type(qt).__name__}")
        if qt.q.ndim != 2:
            raise ValueError(f"qt must hold a 2-D weight (N, K), got codes of shape {tuple(qt.q.shape)}")
        if qt.bits > 4:
            raise ValueError(f"int4 storage holds codes of at most 4 bits, got {qt.bits}")
        N, K = qt.q.shape
        G = qt.scale.numel() // N
        if G == 0 or qt.scale.numel() != N * G:
            raise ValueError(f"int4 storage needs one scale per row or per group of a row, got {qt.scale.numel()} scales "
                             f"for {N} rows (a per-tensor grid? quantize per channel or per group)")
        index = getattr(qt, "group_index", None)
        if index is not None and not torch.equal(index, torch.arange(K, device=index.device) // (K // G)):
            raise ValueError("the groups are not consecutive columns (GPTQ with act_order): the int4 kernel cannot read them")
        shift = 8 if qt.symmetric else 0
        scale, zero = qt.scale.reshape(N, G).float(), qt.zero.reshape(N, G).float()
        return cls((qt.q + shift).to(torch.uint8), scale, -scale * (zero + shift), K // G)

    def dequantize(self) -> torch.Tensor:
        """The float32 weight these codes stand for, (N, K) (from the packed form on the CPU)."""
        if self.packed is not None:
            eye = torch.eye(self.in_features, dtype=torch.bfloat16, device=self.packed.device)
            # x = I picks out the columns; exact in float32 accumulation except for bf16 scales
            return self._mm(eye).float().T.contiguous()
        q = self.q.float().reshape(self.out_features, -1, self.group_size)
        return (q * self.scale[..., None] + self.minimum[..., None]).reshape(self.out_features, self.in_features)

    @property
    def weight_nbytes(self) -> int:
        """Bytes a matmul reads: half a byte per code plus the (scale, zero) pairs."""
        pairs = self.scale_zero if self.packed is not None else torch.stack([self.scale, self.minimum])
        return self.out_features * self.in_features // 2 + pairs.numel() * pairs.element_size()

    def _mm(self, x2: torch.Tensor) -> torch.Tensor:
        return torch.ops.aten._weight_int4pack_mm_for_cpu(x2, self.packed, self.group_size, self.scale_zero)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        try:  # a decode step calls this ~120 times: no idle reshapes, no checks (errors are explained after)
            x2 = x if x.ndim == 2 else x.reshape(-1, x.shape[-1])
            if self.packed is not None and x.device.type == "cpu":
                y = self._mm(x2.to(torch.bfloat16)).to(x.dtype)
            else:
                y = F.linear(x2, self.dequantize().to(device=x.device, dtype=x.dtype))
            return y if x.ndim == 2 else y.reshape(*x.shape[:-1], self.out_features)  # not -1: no rows is (..., 0, N)
        except (RuntimeError, TypeError, AttributeError) as error:  # explained after the fact
            validate.explain_input("x", x, self.in_features, error)
            raise
