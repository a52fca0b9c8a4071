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

from typing import Iterable

import torch
import torch.nn as nn

from llmlab import validate
from llmlab.quant.affine import dequantize, quantize, symmetric_scale


def absmax_fake_quantize(x: torch.Tensor, dim: int = -1, bits: int = 8) -> torch.Tensor:
    """Symmetric fake quantization with one scale per slice along ``dim`` (dim=-1: one per row/token)."""
    scale = symmetric_scale(x.abs().amax(dim, keepdim=True), bits)
    return dequantize(quantize(x, scale, 0.0, bits, symmetric=True), scale)


def _check_linear_args(x, weight) -> None:
    validate.tensor("x", x, floating=True, finite=True)
    validate.tensor("weight", weight, floating=True, finite=True)
    if weight.ndim != 2 or x.ndim == 0 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"expected x (..., K) and weight (N, K), got {tuple(x.shape)} and {tuple(weight.shape)}")


def w8a8_linear(x: torch.Tensor, weight: torch.Tensor, bits: int = 8) -> torch.Tensor:
    """x (..., K) @ weight (N, K)^T with x quantized per token and weight per output channel. -> (..., N)."""
    _check_linear_args(x, weight)
    return absmax_fake_quantize(x, -1, bits) @ absmax_fake_quantize(weight, -1, bits).T


def outlier_columns(x: torch.Tensor, threshold: float = 6.0) -> torch.Tensor:
    """(K,) bool: the input channels where some token has |x| > threshold. x (..., K)."""
    return (x.reshape(-1, x.shape[-1]).abs() > threshold).any(0)


def mixed_int8_linear(x: torch.Tensor, weight: torch.Tensor, threshold: float = 6.0) -> torch.Tensor:
    """LLM.int8: outlier channels of x (..., K) in float, the rest in fake int8. -> (..., N)."""
    _check_linear_args(x, weight)
    out = outlier_columns(x, threshold)
    y = x[..., out] @ weight[:, out].T
    return y + w8a8_linear(x[..., ~out], weight[:, ~out]) if not bool(out.all()) else y


def smooth_scales(act_absmax: torch.Tensor, weight_absmax: torch.Tensor, alpha: float = 0.5) -> torch.Tensor:
    """SmoothQuant's s (K,) = act_absmax^alpha / weight_absmax^(1 - alpha), per input channel.

    act_absmax (K,): max |x_j| over calibration tokens; weight_absmax (K,): max |W[:, j]| over outputs."""
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    return (act_absmax.clamp(min=1e-5).pow(alpha) / weight_absmax.clamp(min=1e-5).pow(1 - alpha)).clamp(min=1e-5)


def smoothquant_linear(x: torch.Tensor, weight: torch.Tensor, alpha: float = 0.5,
                       act_absmax: torch.Tensor | None = None) -> torch.Tensor:
    """W8A8 after smoothing: w8a8(x / s, W * s). ``act_absmax`` defaults to x's own (calibrated on x)."""
    if act_absmax is None:
        act_absmax = x.reshape(-1, x.shape[-1]).abs().amax(0)
    s = smooth_scales(act_absmax, weight.abs().amax(0), alpha)
    return w8a8_linear(x / s, weight * s)


@torch.no_grad()
def linear_inputs(model: nn.Module, batches: Iterable[tuple], names: Iterable[str] | None = None) -> dict[str, torch.Tensor]:
    """The inputs (n_tokens, K) each ``nn.Linear`` of ``model`` reads on ``model(*batch)`` for every
    batch (only the modules in ``names`` when given): the data activation quantization is tuned on."""
    wanted = None if names is None else set(names)
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
    SmoothQuant scales s (x / s, W * s) or with LLM.int8's outlier split. x (..., K) -> (..., N)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None = None, *, smooth: torch.Tensor | None = None,
                 outlier_threshold: float | None = None, bits: int = 8):
        super().__init__()
        validate.tensor("weight", weight, floating=True, finite=True)
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
