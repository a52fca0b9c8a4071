"""Uniform quantization: a float tensor becomes small integers and one or a few float scales.

Two schemes, b bits each:

symmetric   q = clamp(round(x / s), -Q, Q),       x^ = s q,          Q = 2^(b-1) - 1, s = max|x| / Q
affine      q = clamp(round(x / s) + z, 0, 2^b-1), x^ = s (q - z),   s = (hi - lo) / (2^b - 1),
                                                                     z = clamp(-round(lo / s), 0, 2^b - 1)

Symmetric keeps 0 at code 0 and needs no zero point; it uses the *restricted* range [-Q, Q] (int8:
[-127, 127]; 4 bits: [-7, 7]) so that +max and -max are equally representable, as LLM.int8 and
PyTorch's symmetric int8 do. Affine fits the grid to a range [lo, hi], which pays off for skewed groups;
its zero point is an integer code, so it is clamped into [0, 2^b - 1] (a range that does not contain 0
would otherwise ask for a zero point that does not fit in b bits). ``affine_grid`` first widens the
data's [min, max] to contain 0, as PyTorch's observers and GPTQ do.

Rounding: ``torch.round`` rounds halves to even (0.5 -> 0, 1.5 -> 2, 2.5 -> 2), like PyTorch's own
quantized tensors. C's ``roundf`` rounds halves away from zero (0.5 -> 1, 2.5 -> 3); llama.cpp's
formats are defined with it, so ``gguf_blocks`` uses ``round_half_away``.

Granularity: one scale per tensor, per output channel (row of a weight (N, K)) or per group of
``group_size`` consecutive inputs of a row. Finer granularity costs more scales and follows the data
better: an outlier then only coarsens the grid of its own group.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

from llmlab import validate

Granularity = Literal["tensor", "channel", "group"]


def qrange(bits: int, symmetric: bool) -> tuple[int, int]:
    """The codes a b-bit scheme uses: (-(2^(b-1) - 1), 2^(b-1) - 1) symmetric, (0, 2^b - 1) affine."""
    validate.bits("bits", bits)
    return (-(2 ** (bits - 1) - 1), 2 ** (bits - 1) - 1) if symmetric else (0, 2 ** bits - 1)


def round_half_away(x: torch.Tensor) -> torch.Tensor:
    """C's roundf: halves go away from zero (2.5 -> 3, -2.5 -> -3), unlike torch.round (2.5 -> 2).

    Not floor(|x| + 0.5): in float32 that sum itself rounds, so 0.49999997 would give 1 and odd integers
    above 2^23 would move. The fraction is compared with one half exactly instead, as ggml's Python port does."""
    a = x.abs()
    whole = torch.floor(a)
    return torch.sign(x) * (whole + torch.floor(2 * (a - whole)))


def symmetric_scale(absmax: torch.Tensor, bits: int) -> torch.Tensor:
    """s = max|x| / (2^(b-1) - 1): the largest magnitude lands exactly on the last code."""
    return absmax.clamp(min=1e-12) / qrange(bits, True)[1]


def scale_zero_point(lo: torch.Tensor, hi: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Affine grid for values in [lo, hi]: s = (hi - lo) / (2^b - 1), z = clamp(-round(lo / s), 0, 2^b - 1).

    lo, hi: any matching shape (one pair per tensor, channel or group). Returns (scale, zero) of that
    shape; zero holds integer codes (as floats, so it broadcasts in arithmetic)."""
    qmax = qrange(bits, False)[1]
    scale = ((hi - lo) / qmax).clamp(min=1e-12)  # a constant group still gets a usable scale
    zero = (-torch.round(lo / scale)).clamp(0, qmax)
    return scale, zero


def affine_grid(lo: torch.Tensor, hi: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``scale_zero_point`` of [lo, hi] widened to contain 0, as PyTorch's observers and GPTQ do: 0 is
    then exactly representable (padding and ReLU zeros stay exact) and the zero point never clips, so a
    group of only positive (or only negative) values keeps its whole range."""
    return scale_zero_point(lo.clamp(max=0), hi.clamp(min=0), bits)


def quantize(x: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor | float, bits: int,
             symmetric: bool) -> torch.Tensor:
    """Integer codes (same float dtype as x) of x on the grid (scale, zero); zero = 0 when symmetric."""
    lo, hi = qrange(bits, symmetric)
    return (torch.round(x / scale) + zero).clamp(lo, hi)


def dequantize(q: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor | float = 0.0) -> torch.Tensor:
    """x^ = s (q - z)."""
    return scale * (q - zero)


@dataclass
class QuantizedTensor:
    """Codes and the grid they live on. ``q`` (N, K) float codes; ``scale``/``zero`` broadcast against
    ``q`` viewed as (N, K / g, g) (per group), (N, 1, K) (per channel) or (1, 1, N*K) (per tensor)."""

    q: torch.Tensor
    scale: torch.Tensor
    zero: torch.Tensor
    bits: int
    symmetric: bool
    group_size: int

    def dequantize(self) -> torch.Tensor:
        shape = self.q.shape
        g = self.q.reshape(-1, self.group_size)  # every row of g shares one (scale, zero)
        return dequantize(g, self.scale.reshape(-1, 1), self.zero.reshape(-1, 1)).reshape(shape)

    @property
    def nbytes(self) -> int:
        """Storage when codes are packed at ``bits`` bits and each scale (and zero point) is fp16."""
        params = self.scale.numel() * (1 if self.symmetric else 2)
        return math.ceil(self.q.numel() * self.bits / 8) + 2 * params


def quantize_weight(w: torch.Tensor, bits: int = 8, *, symmetric: bool = True, granularity: Granularity = "channel",
                    group_size: int | None = None) -> QuantizedTensor:
    """Round-to-nearest (RTN) quantization of a weight w (N, K), or of any tensor per ``"tensor"``.

    granularity "tensor": one grid for everything; "channel": one per output row; "group": one per
    ``group_size`` consecutive inputs of a row (group_size must divide K)."""
    validate.flag("symmetric", symmetric)
    validate.tensor("w", w, floating=True, finite=True)
    validate.bits("bits", bits)
    if granularity == "tensor":
        g = w.numel()
    elif granularity in ("channel", "group"):
        if w.ndim != 2:
            raise ValueError(f"per-{granularity} quantization needs a 2-D weight (N, K), got shape {tuple(w.shape)}")
        g = w.shape[1]
        if granularity == "group":
            if group_size is None:
                raise ValueError("granularity='group' needs a group_size")
            g = validate.divisor("group_size", group_size, w.shape[1], what="the width K")
    else:
        raise ValueError(f"granularity must be 'tensor', 'channel' or 'group', got {granularity!r}")
    groups = w.detach().float().reshape(-1, g)
    if symmetric:
        scale = symmetric_scale(groups.abs().amax(1, keepdim=True), bits)
        zero = torch.zeros_like(scale)
    else:
        scale, zero = affine_grid(groups.amin(1, keepdim=True), groups.amax(1, keepdim=True), bits)
    q = quantize(groups, scale, zero, bits, symmetric)
    return QuantizedTensor(q.reshape(w.shape), scale.squeeze(1), zero.squeeze(1), bits, symmetric, g)


def fake_quantize(w: torch.Tensor, bits: int = 8, **kwargs) -> torch.Tensor:
    """w rounded onto its quantization grid and back to float (``quantize_weight`` then dequantize),
    in w's dtype: what a model computes with when its weights are stored in ``bits`` bits."""
    return quantize_weight(w, bits, **kwargs).dequantize().to(w.dtype)


# ------------------------------------------------------------------------------------------ error


def mse(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    """Mean squared error."""
    return float((x.double() - x_hat.double()).pow(2).mean())


def sqnr_db(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    """Signal-to-quantization-noise ratio, 10 log10(sum x^2 / sum (x - x^)^2), in dB (inf when exact).
    Each extra bit of a uniform grid adds ~6 dB (the noise amplitude halves)."""
    noise = float((x.double() - x_hat.double()).pow(2).sum())
    return math.inf if noise == 0 else 10 * math.log10(float(x.double().pow(2).sum()) / noise)


def relative_error(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    """||x - x^|| / ||x|| (Frobenius)."""
    return float((x.double() - x_hat.double()).norm() / x.double().norm().clamp(min=1e-300))
