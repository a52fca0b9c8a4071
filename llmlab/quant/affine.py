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


def _qrange(bits: int, symmetric: bool) -> tuple[int, int]:
    return (-(2 ** (bits - 1) - 1), 2 ** (bits - 1) - 1) if symmetric else (0, 2 ** bits - 1)


def qrange(bits: int, symmetric: bool) -> tuple[int, int]:
    """The codes a b-bit scheme uses: (-(2^(b-1) - 1), 2^(b-1) - 1) symmetric, (0, 2^b - 1) affine."""
    return _qrange(validate.bits("bits", bits), validate.flag("symmetric", symmetric))


def round_half_away_unchecked(x: torch.Tensor) -> torch.Tensor:
    """``round_half_away`` without its checks, for callers that checked x once (per-block loops)."""
    a = x.abs()
    whole = torch.floor(a)
    return torch.sign(x) * (whole + torch.floor(2 * (a - whole)))


def round_half_away(x: torch.Tensor) -> torch.Tensor:
    """C's roundf: halves go away from zero (2.5 -> 3, -2.5 -> -3), unlike torch.round (2.5 -> 2).
    x: a float tensor of any shape, without NaN or inf.

    Not floor(|x| + 0.5): in float32 that sum itself rounds, so 0.49999997 would give 1 and odd integers
    above 2^23 would move. The fraction is compared with one half exactly instead, as ggml's Python port does."""
    return round_half_away_unchecked(validate.tensor("x", x, floating=True, finite=True))


def symmetric_scale_unchecked(absmax: torch.Tensor, bits: int) -> torch.Tensor:
    """``symmetric_scale`` without its checks, for callers that checked their inputs once."""
    return absmax.clamp(min=1e-12) / _qrange(bits, True)[1]


def symmetric_scale(absmax: torch.Tensor, bits: int) -> torch.Tensor:
    """s = max|x| / (2^(b-1) - 1): the largest magnitude lands exactly on the last code. absmax: float,
    >= 0, any shape (one per tensor, channel or group)."""
    validate.tensor("absmax", absmax, floating=True, finite=True)
    validate.bits("bits", bits)
    if bool((absmax < 0).any()):
        raise ValueError(f"absmax must be >= 0 (a largest |x|), got a minimum of {float(absmax.min()):g}")
    return symmetric_scale_unchecked(absmax, bits)


def _check_range(lo, hi) -> None:
    """lo, hi: float tensors of one shape, without NaN or inf, lo <= hi."""
    validate.tensor("lo", lo, floating=True, finite=True)
    validate.tensor("hi", hi, floating=True, finite=True)
    if lo.shape != hi.shape:
        raise ValueError(f"lo and hi must have the same shape (one pair per grid), got {tuple(lo.shape)} and "
                         f"{tuple(hi.shape)}")
    if bool((hi < lo).any()):
        raise ValueError("hi must be >= lo everywhere: a range [lo, hi] is given by its ends in that order")


def _scale_zero_point(lo: torch.Tensor, hi: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    qmax = _qrange(bits, False)[1]
    scale = ((hi - lo) / qmax).clamp(min=1e-12)  # a constant group still gets a usable scale
    zero = (-torch.round(lo / scale)).clamp(0, qmax)
    return scale, zero


def scale_zero_point(lo: torch.Tensor, hi: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Affine grid for values in [lo, hi]: s = (hi - lo) / (2^b - 1), z = clamp(-round(lo / s), 0, 2^b - 1).

    lo, hi: float tensors of any matching shape (one pair per tensor, channel or group), lo <= hi. Returns
    (scale, zero) of that shape; zero holds integer codes (as floats, so it broadcasts in arithmetic)."""
    _check_range(lo, hi)
    return _scale_zero_point(lo, hi, validate.bits("bits", bits))


def affine_grid_unchecked(lo: torch.Tensor, hi: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``affine_grid`` without its checks, for callers that checked their inputs once."""
    return _scale_zero_point(lo.clamp(max=0), hi.clamp(min=0), bits)


def affine_grid(lo: torch.Tensor, hi: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``scale_zero_point`` of [lo, hi] widened to contain 0, as PyTorch's observers and GPTQ do: 0 is
    then exactly representable (padding and ReLU zeros stay exact) and the zero point never clips, so a
    group of only positive (or only negative) values keeps its whole range."""
    _check_range(lo, hi)
    return affine_grid_unchecked(lo, hi, validate.bits("bits", bits))


def _check_grid(target: str, x: torch.Tensor, scale, zero) -> None:
    """scale: a float tensor > 0; zero: a number or a tensor; both broadcast to the shape of ``x``
    (named ``target``) without changing it, and hold no NaN or inf."""
    validate.tensor("scale", scale, floating=True, finite=True)
    if bool((scale <= 0).any()):
        raise ValueError(f"scale must be > 0 everywhere, got a minimum of {float(scale.min()):g}")
    if isinstance(zero, torch.Tensor):
        if zero.dtype == torch.bool or zero.is_complex():
            raise TypeError(f"zero must hold real numbers (integer codes), got dtype {zero.dtype}")
        validate.tensor("zero", zero, finite=True)
        shapes = {"scale": scale.shape, "zero": zero.shape}
    else:
        validate.real("zero", zero)
        shapes = {"scale": scale.shape}
    for name, shape in shapes.items():
        try:
            fits = torch.broadcast_shapes(x.shape, shape) == x.shape
        except RuntimeError:
            fits = False
        if not fits:
            raise ValueError(f"{name} must broadcast to {target}'s shape {tuple(x.shape)} (one value per grid), "
                             f"got {tuple(shape)}")


def quantize_unchecked(x: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor | float, bits: int,
              symmetric: bool) -> torch.Tensor:
    """``quantize`` without its checks (15x its cost on a column), for loops that checked their inputs once:
    GPTQ quantizes a matrix column by column."""
    lo, hi = _qrange(bits, symmetric)
    return (torch.round(x / scale) + zero).clamp(lo, hi)


def quantize(x: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor | float, bits: int,
             symmetric: bool) -> torch.Tensor:
    """Integer codes (same float dtype as x) of x on the grid (scale, zero); zero = 0 when symmetric.
    scale (> 0) and zero (a number or a tensor) broadcast to x's shape."""
    validate.tensor("x", x, floating=True, finite=True)
    _check_grid("x", x, scale, zero)
    return quantize_unchecked(x, scale, zero, validate.bits("bits", bits), validate.flag("symmetric", symmetric))


def dequantize_unchecked(q: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor | float = 0.0) -> torch.Tensor:
    """``dequantize`` without its checks, for loops that checked their inputs once (GPTQ, per column)."""
    return scale * (q - zero)


def dequantize(q: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor | float = 0.0) -> torch.Tensor:
    """x^ = s (q - z). q: codes, in a float or an integer dtype; scale (> 0) and zero (a number or a
    tensor) broadcast to q's shape."""
    validate.tensor("q", q, finite=True)
    if q.dtype == torch.bool or q.is_complex():
        raise TypeError(f"q must hold integer codes (a float or integer dtype), got dtype {q.dtype}")
    _check_grid("q", q, scale, zero)
    return dequantize_unchecked(q, scale, zero)


@dataclass
class QuantizedTensor:
    """Codes and the grid they live on. ``q``: float codes, the quantized tensor's shape ((N, K) for a
    weight); ``scale``/``zero`` (n_grids,): one per ``group_size`` consecutive codes of q flattened, that is
    per group of a row (N * K / g), per row (N) or for the whole tensor (1)."""

    q: torch.Tensor
    scale: torch.Tensor
    zero: torch.Tensor
    bits: int
    symmetric: bool
    group_size: int

    def __post_init__(self) -> None:
        validate.tensor("q", self.q, floating=True, finite=True)
        validate.tensor("scale", self.scale, ndim=1, floating=True, finite=True)
        validate.tensor("zero", self.zero, ndim=1, floating=True, finite=True)
        validate.bits("bits", self.bits)
        validate.flag("symmetric", self.symmetric)
        validate.positive_int("group_size", self.group_size)
        if self.zero.shape != self.scale.shape:
            raise ValueError(f"zero must have scale's shape {tuple(self.scale.shape)} (one per grid), "
                             f"got {tuple(self.zero.shape)}")
        if self.scale.numel() * self.group_size != self.q.numel():
            raise ValueError(f"q must hold one group of group_size = {self.group_size} codes per value of scale "
                             f"({self.scale.numel()}), got {self.q.numel()} codes")

    def dequantize(self) -> torch.Tensor:
        shape = self.q.shape
        g = self.q.reshape(-1, self.group_size)  # every row of g shares one (scale, zero)
        return dequantize_unchecked(g, self.scale.reshape(-1, 1), self.zero.reshape(-1, 1)).reshape(shape)

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
    if w.numel() == 0:
        raise ValueError(f"w is empty, shape {tuple(w.shape)}: there is nothing to quantize")
    if granularity == "tensor":
        g = w.numel()
    elif granularity in ("channel", "group"):
        if w.ndim != 2:
            raise ValueError(f"w must be a 2-D weight (N, K) for per-{granularity} quantization, got shape "
                             f"{tuple(w.shape)}")
        g = w.shape[1]
        if granularity == "group":
            if group_size is None:
                raise ValueError("granularity='group' needs a group_size")
            g = validate.divisor("group_size", group_size, w.shape[1], what="the width K")
    else:
        raise ValueError(f"granularity must be 'tensor', 'channel' or 'group', got {granularity!r}")
    groups = w.detach().float().reshape(-1, g)
    if symmetric:
        scale = symmetric_scale_unchecked(groups.abs().amax(1, keepdim=True), bits)
        zero = torch.zeros_like(scale)
    else:
        scale, zero = affine_grid_unchecked(groups.amin(1, keepdim=True), groups.amax(1, keepdim=True), bits)
    q = quantize_unchecked(groups, scale, zero, bits, symmetric)
    return QuantizedTensor(q.reshape(w.shape), scale.squeeze(1), zero.squeeze(1), bits, symmetric, g)


def fake_quantize(w: torch.Tensor, bits: int = 8, **kwargs) -> torch.Tensor:
    """w rounded onto its quantization grid and back to float (``quantize_weight`` then dequantize),
    in w's dtype: what a model computes with when its weights are stored in ``bits`` bits."""
    return quantize_weight(w, bits, **kwargs).dequantize().to(w.dtype)


# ------------------------------------------------------------------------------------------ error


def _check_pair(x, x_hat) -> None:
    """x, x_hat: tensors of one shape, not empty, without NaN or inf (any real dtype: compared in float64)."""
    validate.tensor("x", x, finite=True)
    validate.tensor("x_hat", x_hat, finite=True)
    if x_hat.shape != x.shape:
        raise ValueError(f"x_hat must have x's shape {tuple(x.shape)}, got {tuple(x_hat.shape)}")
    if x.numel() == 0:
        raise ValueError(f"x and x_hat are empty, shape {tuple(x.shape)}: there is no error to measure")


def mse(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    """Mean squared error."""
    _check_pair(x, x_hat)
    return float((x.double() - x_hat.double()).pow(2).mean())


def sqnr_db(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    """Signal-to-quantization-noise ratio, 10 log10(sum x^2 / sum (x - x^)^2), in dB (inf when exact).
    Each extra bit of a uniform grid adds ~6 dB (the noise amplitude halves)."""
    _check_pair(x, x_hat)
    noise = float((x.double() - x_hat.double()).pow(2).sum())
    return math.inf if noise == 0 else 10 * math.log10(float(x.double().pow(2).sum()) / noise)


def relative_error(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    """||x - x^|| / ||x|| (Frobenius)."""
    _check_pair(x, x_hat)
    return float((x.double() - x_hat.double()).norm() / x.double().norm().clamp(min=1e-300))
