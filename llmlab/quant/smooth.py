"""Quantizing activations too (W8A8): LLM.int8's outlier split and SmoothQuant's rescaling.

Weights are known in advance and well behaved; activations are not. In large models a few *feature
channels* of the hidden state carry values 20-100x larger than the rest, on almost every token
(Dettmers et al., 2022). With one int8 scale per token, such a channel sets the scale, and every other
channel of that token is left with a handful of codes.

- LLM.int8: y = X W^T is split by input channel. Channels where some |x| exceeds a threshold (6.0) stay in
  16/32-bit, the rest go through int8 (per-token scales for X, per-output-channel scales for W):
      y = X[:, O] W[:, O]^T  +  deq(int8(X[:, ~O]) int8(W[:, ~O])^T).
- SmoothQuant (Xiao et al., 2022): divide channel j of X by s_j and multiply column j of W by s_j; the
  product is unchanged, but the difficulty moves from activations to weights. With per-channel maxima
      s_j = max|X_j|^alpha / max|W_j|^(1 - alpha),      alpha = 0.5 balancing the two,
  then ordinary per-token x per-channel int8 works. In a real model 1/s is folded into the preceding
  norm's weight, so it costs nothing at run time.

Everything here is *fake* quantization (quantize, dequantize, compute in float): it measures the
accuracy of a format, not its speed.
"""
from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn as nn

from llmlab import validate
from llmlab.quant.affine import dequantize_unchecked, quantize_unchecked, symmetric_scale_unchecked
from llmlab.quant.apply import calibration_batches


def _absmax_fake_quantize(x: torch.Tensor, dim: int, bits: int) -> torch.Tensor:
    scale = symmetric_scale_unchecked(x.abs().amax(dim, keepdim=True), bits)
    return dequantize_unchecked(quantize_unchecked(x, scale, 0.0, bits, symmetric=True), scale)


def absmax_fake_quantize(x: torch.Tensor, dim: int = -1, bits: int = 8) -> torch.Tensor:
    """Symmetric fake quantization with one scale per slice along ``dim`` (dim=-1: one per row/token).
    x: a float tensor of any shape with at least one dim, not empty along ``dim``."""
    validate.tensor("x", x, min_ndim=1, floating=True, finite=True)
    dim = validate.integer("dim", dim, -x.ndim, x.ndim - 1)
    if x.shape[dim] == 0:
        raise ValueError(f"x is empty along dim {dim} (shape {tuple(x.shape)}): a slice needs values for its scale")
    return _absmax_fake_quantize(x, dim, validate.bits("bits", bits))


def _check_linear_args(x, weight) -> None:
    validate.tensor("x", x, floating=True, finite=True)
    validate.tensor("weight", weight, floating=True, finite=True)
    if weight.ndim != 2 or x.ndim == 0 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"expected x (..., K) and weight (N, K), got {tuple(x.shape)} and {tuple(weight.shape)}")
    if weight.numel() == 0:
        raise ValueError(f"weight must be (N, K) with N, K >= 1, got {tuple(weight.shape)}")


def _w8a8_linear(x: torch.Tensor, weight: torch.Tensor, bits: int) -> torch.Tensor:
    return _absmax_fake_quantize(x, -1, bits) @ _absmax_fake_quantize(weight, -1, bits).T


def w8a8_linear(x: torch.Tensor, weight: torch.Tensor, bits: int = 8) -> torch.Tensor:
    """x (..., K) @ weight (N, K)^T with x quantized per token and weight per output channel. -> (..., N)."""
    _check_linear_args(x, weight)
    return _w8a8_linear(x, weight, validate.bits("bits", bits))


def _outlier_columns(x: torch.Tensor, threshold: float) -> torch.Tensor:
    return (x.reshape(-1, x.shape[-1]).abs() > threshold).any(0)


def outlier_columns(x: torch.Tensor, threshold: float = 6.0) -> torch.Tensor:
    """(K,) bool: the input channels where some token has |x| > threshold (>= 0; 0: every channel with a
    non-zero value). x (..., K), float."""
    validate.tensor("x", x, min_ndim=1, floating=True, finite=True)
    return _outlier_columns(x, validate.positive_float("threshold", threshold, allow_zero=True))


def mixed_int8_linear(x: torch.Tensor, weight: torch.Tensor, threshold: float = 6.0) -> torch.Tensor:
    """LLM.int8: outlier channels of x (..., K) in float, the rest in fake int8. -> (..., N).
    threshold >= 0 (``outlier_columns``): 0 computes every channel with a non-zero value in float."""
    _check_linear_args(x, weight)
    out = _outlier_columns(x, validate.positive_float("threshold", threshold, allow_zero=True))
    y = x[..., out] @ weight[:, out].T
    return y + _w8a8_linear(x[..., ~out], weight[:, ~out], 8) if not bool(out.all()) else y


def _check_absmax(name: str, m) -> torch.Tensor:
    """Per-channel maxima of |.|: a float tensor (K,), K >= 1, finite and >= 0."""
    validate.tensor(name, m, ndim=1, floating=True, finite=True)
    if m.numel() == 0:
        raise ValueError(f"{name} is empty: it needs one maximum per input channel (K,)")
    if bool((m < 0).any()):
        raise ValueError(f"{name} must be >= 0 (maxima of |.|), got a minimum of {float(m.min()):g}")
    return m


def smooth_scales(act_absmax: torch.Tensor, weight_absmax: torch.Tensor, alpha: float = 0.5) -> torch.Tensor:
    """SmoothQuant's s (K,) = act_absmax^alpha / weight_absmax^(1 - alpha), per input channel.

    act_absmax (K,): max |x_j| over calibration tokens; weight_absmax (K,): max |W[:, j]| over outputs."""
    alpha = validate.probability("alpha", alpha)
    _check_absmax("act_absmax", act_absmax)
    _check_absmax("weight_absmax", weight_absmax)
    if weight_absmax.shape != act_absmax.shape:
        raise ValueError(f"weight_absmax must have act_absmax's shape {tuple(act_absmax.shape)} (one per input "
                         f"channel), got {tuple(weight_absmax.shape)}")
    return (act_absmax.clamp(min=1e-5).pow(alpha) / weight_absmax.clamp(min=1e-5).pow(1 - alpha)).clamp(min=1e-5)


def smoothquant_linear(x: torch.Tensor, weight: torch.Tensor, alpha: float = 0.5,
                       act_absmax: torch.Tensor | None = None, scales=None) -> torch.Tensor:
    """W8A8 after smoothing: w8a8(x / s, W * s). ``act_absmax`` (K,) defaults to x's own (calibrated on x).

    ``scales``: the function that makes s, (act_absmax (K,), weight_absmax (K,), alpha) -> s (K,) > 0, as
    ``smooth_scales`` (None, the default: llmlab's); notebook 09 passes the learner's."""
    _check_linear_args(x, weight)
    if scales is not None and not callable(scales):
        raise TypeError(f"scales must be a function (act_absmax, weight_absmax, alpha) -> s (or None for "
                        f"llmlab's smooth_scales), got {type(scales).__name__}")
    if act_absmax is None:
        if x.numel() == 0:
            raise ValueError(f"x is empty, shape {tuple(x.shape)}: give act_absmax, or tokens to calibrate on")
        act_absmax = x.reshape(-1, x.shape[-1]).abs().amax(0)
    s = smooth_scales(act_absmax, weight.abs().amax(0), alpha)  # checks act_absmax against weight's K
    if scales is not None:
        s = scales(act_absmax, weight.abs().amax(0), alpha)
        if not isinstance(s, torch.Tensor) or s.shape != (weight.shape[1],) or not s.is_floating_point():
            raise ValueError(f"scales must return a float tensor of shape ({weight.shape[1]},), one per input "
                             f"channel, got {getattr(s, 'shape', type(s).__name__)}")
        if not bool(torch.isfinite(s).all() & (s > 0).all()):
            raise ValueError("scales must return finite scales > 0 (x is divided by them)")
    return _w8a8_linear(x / s, weight * s, 8)


def _check_names(names, linears: set[str]) -> set[str]:
    """names: an iterable of names of nn.Linear modules of the model (not a str, not empty)."""
    if isinstance(names, (str, bytes)) or not isinstance(names, Iterable):
        raise TypeError(f"names must be an iterable of module names, e.g. ['layers.0.attention.wq'], "
                        f"got {type(names).__name__}")
    wanted = set()
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"names must hold module names (str), found {type(name).__name__} {name!r}")
        if name not in linears:
            raise ValueError(f"names holds {name!r}, which is not an nn.Linear of model")
        wanted.add(name)
    if not wanted:
        raise ValueError("names is empty: give at least one linear's name, or None for all of them")
    return wanted


@torch.no_grad()
def linear_inputs(model: nn.Module, batches: Iterable[tuple], names: Iterable[str] | None = None) -> dict[str, torch.Tensor]:
    """The inputs (n_tokens, K) each ``nn.Linear`` of ``model`` reads on ``model(*batch)`` for every
    batch (only the modules in ``names`` when given): the data activation quantization is tuned on."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    linears = {name for name, m in model.named_modules() if isinstance(m, nn.Linear)}
    wanted = None if names is None else _check_names(names, linears)
    batches = calibration_batches(batches)
    seen: dict[str, list[torch.Tensor]] = {}
    handles = []
    for name, m in model.named_modules():
        if isinstance(m, nn.Linear) and (wanted is None or name in wanted):
            handles.append(m.register_forward_pre_hook(
                lambda mod, args, name=name: seen.setdefault(name, []).append(args[0].reshape(-1, args[0].shape[-1]))))
    try:
        for batch in batches:
            model(*batch)
    finally:
        for h in handles:
            h.remove()
    return {k: torch.cat(v) for k, v in seen.items()}


class FakeQuantLinear(nn.Module):
    """A linear whose input is fake-quantized per token and weight per channel (W8A8), optionally after
    SmoothQuant scales s (x / s, W * s) or with LLM.int8's outlier split (``outlier_threshold`` >= 0, as in
    ``mixed_int8_linear``). x (..., K) -> (..., N)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None = None, *, smooth: torch.Tensor | None = None,
                 outlier_threshold: float | None = None, bits: int = 8):
        super().__init__()
        validate.tensor("weight", weight, ndim=2, floating=True, finite=True)
        if weight.numel() == 0:
            raise ValueError(f"weight must be (out_features, in_features) with both >= 1, got {tuple(weight.shape)}")
        N, K = weight.shape
        if bias is not None:
            validate.tensor("bias", bias, ndim=1, floating=True, finite=True)
            if bias.shape[0] != N:
                raise ValueError(f"bias must have shape (out_features,) = ({N},), got {tuple(bias.shape)}")
        if smooth is not None:
            validate.tensor("smooth", smooth, ndim=1, floating=True, finite=True)
            if smooth.shape[0] != K:
                raise ValueError(f"smooth must have shape (in_features,) = ({K},), got {tuple(smooth.shape)}")
            if bool((smooth <= 0).any()):
                raise ValueError("smooth must hold scales > 0 (x is divided by them)")
        if outlier_threshold is not None:
            outlier_threshold = validate.positive_float("outlier_threshold", outlier_threshold, allow_zero=True)
        validate.bits("bits", bits)
        self.threshold, self.bits = outlier_threshold, bits
        # buffers, so that .to(device) and state_dict() carry them
        self.register_buffer("weight", weight.detach() * (1 if smooth is None else smooth))
        self.register_buffer("smooth", None if smooth is None else smooth.detach())
        self.register_buffer("bias", None if bias is None else bias.detach())
        self.out_features, self.in_features = weight.shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.smooth is not None:
            x = x / self.smooth
        if self.threshold is not None:
            y = mixed_int8_linear(x, self.weight, self.threshold)
        else:
            y = w8a8_linear(x, self.weight, self.bits)
        return y if self.bias is None else y + self.bias
