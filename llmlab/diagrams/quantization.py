"""Diagrams of notebook 09 (quantization), drawn from a real weight block and the grid the run computed for it.

* ``block_on_grid``: the values of one weight block on a number line, the levels of its b-bit affine grid
  (scale s, zero point z) below them, and an arrow from each value to the level it rounds to; values beyond the
  grid (clipped) in red;
* ``q4_0_layout``: one Q4_0 block as llama.cpp stores it: the fp16 scale d in 2 bytes, then 16 bytes whose low
  nibbles hold codes 0-15 and high nibbles codes 16-31, read back from the packed bytes.
"""
from __future__ import annotations

import numbers

from llmlab import validate
from llmlab.diagrams.draw import PALETTE, arrow, box, canvas, cells, legend, optional_title

MAX_VALUES = 64  # more values than this no longer read at a glance


def _number(name: str, value, above: float | None = None, minimum: float | None = None) -> float:
    """A real number or a tensor holding one (a 0-d or one-element scale), as a float."""
    import torch

    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"{name} must hold one number, got a tensor of shape {tuple(value.shape)}")
        if value.is_complex() or value.dtype == torch.bool:
            raise TypeError(f"{name} must be a real number, got a tensor of dtype {value.dtype}")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number (or a one-element tensor), got {type(value).__name__}")
    return validate.real(name, value, above=above, minimum=minimum)


def block_on_grid(values, scale, zero, bits: int, x_hat=None, title: str | None = None):
    """A weight block on its affine b-bit grid: the levels s (q - z) for every code q in [0, 2^b - 1], each
    value of ``values`` above the number line and an arrow down to the level it rounds to,
    clamp(round(x / s) + z, 0, 2^b - 1): the rounding error is the arrow's horizontal length. Values beyond
    the grid's ends are clipped (red arrows).

    values: a float tensor (n,), 2 <= n <= 64 (a block of 32 weights, say); scale: a number > 0 and
    zero: a whole number in [0, 2^bits - 1] (numbers or one-element tensors, as ``scale_zero_point`` returns
    them); bits: 2 to 6 (at most 64 levels); x_hat: the values after quantizing and dequantizing, of
    ``values``' shape (a quantize_dequantize's result), where the arrows end; None computes them here with
    torch.round, as above. Returns the Figure.
    """
    import torch

    values = validate.tensor("values", values, floating=True, finite=True)
    if values.ndim != 1 or not 2 <= values.shape[0] <= MAX_VALUES:
        raise ValueError(f"values must be a block of 2 to {MAX_VALUES} numbers, shape (n,), got {tuple(values.shape)}")
    bits = validate.integer("bits", bits, 2, 6)
    qmax = 2 ** bits - 1
    scale = _number("scale", scale, above=0.0)
    zero = _number("zero", zero)
    if zero != round(zero) or not 0 <= zero <= qmax:
        raise ValueError(f"zero must be a whole code in [0, {qmax}] (the code of 0.0), got {zero:g}")
    title = optional_title(title)
    x = values.detach().double().cpu()
    if x_hat is None:
        x_hat = scale * (torch.clamp(torch.round(x / scale) + zero, 0, qmax) - zero)
    else:
        validate.tensor("x_hat", x_hat, floating=True, finite=True)
        if x_hat.shape != x.shape:
            raise ValueError(f"x_hat must have the shape of values {tuple(x.shape)}, got {tuple(x_hat.shape)}")
        x_hat = x_hat.detach().double().cpu()
    levels = [scale * (c - zero) for c in range(qmax + 1)]
    lo, hi = min(levels[0], float(x.min()), float(x_hat.min())), max(levels[-1], float(x.max()), float(x_hat.max()))
    pad = 0.04 * (hi - lo or 1.0)
    lo, hi = lo - pad, hi + pad
    width = 18.0

    def at(v: float) -> float:
        return 0.5 + (v - lo) / (hi - lo) * width

    fig, ax = canvas(width + 1.0, 7.4, title or f"{len(x)} weights on a {bits}-bit affine grid: "
                     f"s = {scale:.3g}, z = {zero:g} (codes 0 to {qmax})", scale=0.55)
    ax.set_aspect("auto")
    base = 1.4  # the number line
    ax.plot([at(lo), at(hi)], [base, base], color="#444444", lw=1)
    step = max(1, (qmax + 1) // 16)  # label at most 16 codes
    for c, level in enumerate(levels):
        ax.plot([at(level)] * 2, [base - 0.25, base + 0.25], color=PALETTE["kept"], lw=1.6)
        if c % step == 0 or c in (qmax, zero):
            ax.text(at(level), base - 0.45, f"{c}\n(= 0.0)" if c == zero else str(c), ha="center", va="top",
                    fontsize=7, color=PALETTE["kept"])
    clipped = (x < levels[0] - scale / 2) | (x > levels[-1] + scale / 2)
    for i, (v, vh) in enumerate(zip(x.tolist(), x_hat.tolist())):
        y = 3.4 + (i % 4) * 0.6  # four rows, so that close values do not hide each other
        color = PALETTE["dropped"] if bool(clipped[i]) else "#555555"
        arrow(ax, (at(v), y - 0.08), (at(vh), base + 0.28), color=color)
        ax.plot([at(v)], [y], "o", ms=4, color=PALETTE["new"], mec="#444444", mew=0.5, zorder=3)
    ax.text(at(lo), base - 1.15, f"{lo:.3g}", fontsize=7, color="#555555")
    ax.text(at(hi), base - 1.15, f"{hi:.3g}", fontsize=7, color="#555555", ha="right")
    err = float((x - x_hat).abs().max())
    ax.text(0.5 + width / 2, 0.15, f"largest rounding error {err:.3g} (s / 2 = {scale / 2:.3g}); "
            f"{int(clipped.sum())} clipped", ha="center", fontsize=8)
    for i, (label, color) in enumerate({"a weight": PALETTE["new"], "a grid level, its code below": PALETTE["kept"],
                                        "clipped: beyond the grid": PALETTE["dropped"]}.items()):
        box(ax, 0.6 + 6.2 * i, 6.55, 0.3, 0.3, color=color, rounded=False, edge="#999999")
        ax.text(1.05 + 6.2 * i, 6.7, label, va="center", fontsize=7)
    return fig


def q4_0_layout(d, q, packed, title: str | None = None):
    """One Q4_0 block as its 18 bytes: the fp16 scale ``d`` (2 bytes), then 16 bytes of nibbles. The 32 codes
    ``q`` are drawn on top, codes 0-15 in one colour and 16-31 in another; each byte below shows its low nibble
    (``byte & 15``) and high nibble (``byte >> 4``) as read from ``packed``, so a packing in another order shows
    up as nibbles that differ from the codes above them.

    One block, with the shapes the block functions give it: d a float tensor (1, 1), the block's scale; q an
    integer tensor (1, 32) of codes in [0, 15]; packed a uint8 tensor (1, 16). Returns the Figure.
    """
    import torch
    from matplotlib.patches import Rectangle

    validate.tensor("d", d, floating=True, finite=True)
    if tuple(d.shape) != (1, 1):
        raise ValueError(f"d must be one block's scale, shape (1, 1), got {tuple(d.shape)}")
    d = float(d)
    q = validate.tensor("q", q)
    if q.is_floating_point() or q.is_complex() or q.dtype == torch.bool:
        raise TypeError(f"q must hold integer codes, got dtype {q.dtype}")
    if tuple(q.shape) != (1, 32):
        raise ValueError(f"q must hold the 32 codes of one block, shape (1, 32), got {tuple(q.shape)}")
    if int(q.min()) < 0 or int(q.max()) > 15:
        raise ValueError(f"q must hold 4-bit codes in [0, 15], got {int(q.min())} to {int(q.max())}")
    packed = validate.tensor("packed", packed)
    if packed.dtype != torch.uint8:
        raise TypeError(f"packed must be uint8 bytes, got dtype {packed.dtype}")
    if tuple(packed.shape) != (1, 16):
        raise ValueError(f"packed must hold the 16 bytes of one block, shape (1, 16), got {tuple(packed.shape)}")
    title = optional_title(title)
    codes, data = q[0].tolist(), packed[0].tolist()
    low, high = "#8ecae6", "#f4a261"
    fig, ax = canvas(31.0, 9.6, title or "one Q4_0 block: 2 + 16 = 18 bytes for 32 weights (4.5 bits each)",
                     scale=0.42)
    # the 32 codes, two rows of 16 so that code j sits right above code j + 16 and the byte they share
    for half, y, color in ((0, 7.0, low), (1, 5.9, high)):
        ax.text(3.9, y + 0.5, f"codes {16 * half}-{16 * half + 15}", ha="right", va="center", fontsize=8)
        cells(ax, [[color] * 16], x=4.2, y=y, size=1.0,
              labels=[[str(c) for c in codes[16 * half:16 * half + 16]]], fontsize=8)
    for j in range(16):
        ax.text(4.7 + j, 8.3, str(j), ha="center", fontsize=6, color="#777777")
    # the bytes: d (2 bytes), then 16 bytes, each a low and a high nibble
    y = 2.0
    box(ax, 0.2, y, 3.8, 1.6, f"d (fp16)\n{d:.4g}", color=PALETTE["compute"], rounded=False, fontsize=8)
    for j, byte in enumerate(data):
        x = 4.2 + j
        box(ax, x, y + 0.8, 1.0, 0.8, str(byte & 15), color=low, rounded=False, fontsize=8)
        box(ax, x, y, 1.0, 0.8, str(byte >> 4), color=high, rounded=False, fontsize=8)
        ax.text(x + 0.5, y - 0.4, f"{byte:02x}", ha="center", fontsize=7, family="monospace")
        if byte & 15 != codes[j] or byte >> 4 != codes[j + 16]:
            ax.add_patch(Rectangle((x + 0.06, y + 0.06), 0.88, 1.48, fill=False, edgecolor=PALETTE["dropped"], lw=2))
    ax.text(0.2, y - 0.4, "hex:", fontsize=7, color="#555555")
    arrow(ax, (4.7, 5.85), (4.7, y + 1.65), color="#444444")
    arrow(ax, (19.7, 5.85), (19.7, y + 1.65), color="#444444")
    ax.text(21.0, 4.9, "byte j = code j | code (j + 16) << 4", fontsize=8)
    bad = sum(b & 15 != codes[j] or b >> 4 != codes[j + 16] for j, b in enumerate(data))
    note = "every nibble matches its code" if not bad else f"{bad} bytes (red) hold other codes than those above them"
    ax.text(4.2, 0.5, f"value of code c: d (c - 8).   {note}", fontsize=8)
    legend(ax, {"low nibble: codes 0-15": low, "high nibble: codes 16-31": high}, x=21.0, y=4.0, size=0.45,
           fontsize=7)
    return fig
