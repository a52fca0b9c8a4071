"""Mixed precision: what 16-bit floats do to numbers, and dynamic loss scaling as torch.amp.GradScaler does it.

A floating-point format trades range (exponent bits) for precision (significant bits):

    format     exponent bits  significant bits  largest finite   smallest normal  rounding error ≤
    float32          8              24            3.4e38            1.2e-38          2^-24 ≈ 6e-8
    bfloat16         8               8            3.4e38            1.2e-38          2^-8  ≈ 4e-3
    float16          5              11            65504             6.1e-5           2^-11 ≈ 5e-4

(the first significant bit is implicit: bf16 stores 7, fp16 10). bf16 keeps float32's range and loses
precision; fp16 keeps more precision but a gradient below 2^-24 ≈ 6e-8 rounds to 0 and one above 65504 to
inf. Loss scaling multiplies the loss (hence every gradient) by a large ``scale`` before the backward pass,
so small gradients survive in fp16, and divides them back before the optimizer step. GradScaler picks the
scale dynamically: an inf or NaN gradient means the scale was too large, so the step is skipped and the scale
halved; after ``growth_interval`` good steps in a row the scale is doubled again.
"""
from __future__ import annotations

import torch

from llmlab import validate

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _float_dtype(name: str, dtype) -> torch.dtype:
    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"{name} must be a torch.dtype, got {type(dtype).__name__}")
    if dtype not in FLOAT_DTYPES:
        raise ValueError(f"{name} must be one of {', '.join(map(str, FLOAT_DTYPES))}, got {dtype}")
    return dtype


def rounding_error(w: torch.Tensor, dtype: torch.dtype) -> tuple[float, float]:
    """What rounding the weights w (any shape) to ``dtype`` does to them, over the entries that are not 0.

    Returns ``(median relative error, fraction lost)``: the relative error of an entry is
    |w.to(dtype) - w| / |w|, computed in float64; the median is torch.median's (the lower of the two middle
    values when their number is even); an entry is *lost* when it rounds to 0 (underflow) or to ±inf (overflow).
    """
    validate.tensor("w", w, floating=True, finite=True)
    _float_dtype("dtype", dtype)
    w = w.detach().flatten()
    w = w[w != 0]  # a 0 stays 0 in every format, and its relative error would be 0/0
    if w.numel() == 0:
        raise ValueError("w must have at least one entry that is not 0")
    exact, rounded = w.double(), w.to(dtype).double()  # float64 holds every value of the other formats exactly
    relative = (rounded - exact).abs() / exact.abs()  # inf where an entry overflowed
    lost = (rounded == 0) | rounded.isinf()
    return relative.median().item(), lost.double().mean().item()


def scaled_step(params: list[torch.Tensor], grads: list[torch.Tensor], lr: float, scale: float, growth_tracker: int,
                growth_factor: float = 2.0, backoff_factor: float = 0.5,
                growth_interval: int = 2000) -> tuple[list[torch.Tensor], float, int]:
    """One SGD step with dynamic loss scaling, as torch.amp.GradScaler's ``step`` and ``update`` do it.

    params: the float32 (master) weights, any shapes; grads: their gradients of ``loss * scale``, same shapes,
    float16 from a half-precision backward pass or float32 from autocast. Returns new tensors and the scaler's
    new state, ``(params, scale, growth_tracker)``:

    * any inf or NaN in any gradient: the step is skipped (params unchanged), scale × backoff_factor,
      growth_tracker = 0;
    * otherwise param - lr · grad / scale, the division in the parameter's dtype (in float16 the unscaled
      gradient would underflow); growth_tracker + 1, and when it reaches growth_interval, scale × growth_factor
      and growth_tracker = 0.
    """
    if not isinstance(params, (list, tuple)) or not isinstance(grads, (list, tuple)):
        raise TypeError(f"params and grads must be lists of tensors, got {type(params).__name__} and "
                        f"{type(grads).__name__}")
    if len(params) != len(grads):
        raise ValueError(f"params and grads must have the same length, got {len(params)} and {len(grads)}")
    for i, (p, g) in enumerate(zip(params, grads)):
        validate.tensor(f"params[{i}]", p, floating=True, finite=True)
        validate.tensor(f"grads[{i}]", g, floating=True)  # inf and NaN are what the scaler looks for
        if p.shape != g.shape:
            raise ValueError(f"grads[{i}] has shape {tuple(g.shape)}, params[{i}] {tuple(p.shape)}: they must match")
    lr, scale = validate.positive_float("lr", lr), validate.positive_float("scale", scale)
    growth_factor = validate.real("growth_factor", growth_factor, minimum=1.0)
    backoff_factor = validate.real("backoff_factor", backoff_factor, above=0.0, maximum=1.0)
    growth_interval = validate.positive_int("growth_interval", growth_interval)
    growth_tracker = validate.integer("growth_tracker", growth_tracker, minimum=0, maximum=growth_interval - 1)

    found_inf = any(not validate.all_finite(g) for g in grads)
    if found_inf:  # the scale was too large: skip the step, shrink the scale, start counting again
        return [p.detach().clone() for p in params], scale * backoff_factor, 0
    new = [(p.detach() - lr * (g.detach().to(p.dtype) / scale)) for p, g in zip(params, grads)]
    growth_tracker += 1
    if growth_tracker == growth_interval:  # that many good steps in a row: try a larger scale
        return new, scale * growth_factor, 0
    return new, scale, growth_tracker
