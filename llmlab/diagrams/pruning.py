"""Diagrams of notebook 10 (pruning), drawn from the masks and importance scores of the run.

* ``mask_patterns``: the same corner of a real weight matrix under several masks side by side (per-row
  magnitude, Wanda, 2:4, ...): which weights each one keeps, with the groups of an N:M pattern marked;
* ``kept_heads``: every layer's query heads, kept or removed by structured pruning, grouped by the KV head they
  share, shaded by their importance.
"""
from __future__ import annotations

from collections.abc import Mapping

from llmlab import validate
from llmlab.diagrams.draw import PALETTE, box, canvas, cells, optional_title

MAX_PANELS = 4
MAX_SIDE = 32  # rows or columns of a mask corner
MAX_LAYERS = 64
MAX_HEADS = 32


def mask_patterns(masks: Mapping, rows: int = 8, cols: int = 16, group: int | None = None,
                  title: str | None = None):
    """The top-left ``rows`` x ``cols`` corner of each mask, side by side: kept weights (True) in green,
    pruned ones (False) in red, with the share kept in the corner under each panel.

    masks: {name: bool tensor (N, K)}, 1 to 4 masks of one shape, at least rows x cols; rows, cols: 1 to 32;
    group: the M of an N:M pattern (None: no marks), a divisor of cols: a thin line after every M columns shows
    the groups the pattern counts in. Returns the Figure.
    """
    import torch

    if not isinstance(masks, Mapping):
        raise TypeError(f"masks must be a dict {{name: bool mask (N, K)}}, got {type(masks).__name__}")
    if not 1 <= len(masks) <= MAX_PANELS:
        raise ValueError(f"masks must hold 1 to {MAX_PANELS} masks, got {len(masks)}")
    rows = validate.integer("rows", rows, 1, MAX_SIDE)
    cols = validate.integer("cols", cols, 1, MAX_SIDE)
    if group is not None:
        group = validate.divisor("group", group, cols, what="cols")
    title = optional_title(title)
    shape = None
    corners = {}
    for name, mask in masks.items():
        if not isinstance(name, str):
            raise TypeError(f"masks must be keyed by str names, found {type(name).__name__} {name!r}")
        validate.tensor(f"masks[{name!r}]", mask, ndim=2)
        if mask.dtype != torch.bool:
            raise TypeError(f"masks[{name!r}] must be a bool mask (True = kept), got dtype {mask.dtype}")
        if shape is not None and mask.shape != shape:
            raise ValueError(f"masks must share one shape, got {tuple(shape)} and {tuple(mask.shape)} ({name!r})")
        shape = mask.shape
        if mask.shape[0] < rows or mask.shape[1] < cols:
            raise ValueError(f"masks[{name!r}] of shape {tuple(mask.shape)} is smaller than the corner rows x cols = "
                             f"{rows} x {cols}")
        corners[name] = mask[:rows, :cols].cpu()
    gap = 1.5
    width = len(corners) * (cols + gap) - gap + 0.2
    fig, ax = canvas(width, rows + 3.4, title or f"which weights each mask keeps: the first {rows} rows x {cols} "
                     f"inputs of a {tuple(shape)[0]} x {tuple(shape)[1]} matrix", scale=0.38)
    for p, (name, corner) in enumerate(corners.items()):
        x = 0.1 + p * (cols + gap)
        colors = [[PALETTE["kept"] if keep else PALETTE["dropped"] for keep in row] for row in corner.tolist()]
        cells(ax, colors, x=x, y=1.2, size=1.0)
        ax.text(x + cols / 2, rows + 1.5, name, ha="center", fontsize=9, weight="bold")
        share = float(corner.float().mean())
        ax.text(x + cols / 2, 0.5, f"{share:.0%} kept here, {float(masks[name].float().mean()):.0%} in the matrix",
                ha="center", fontsize=7)
        if group is not None:
            for c in range(group, cols, group):
                ax.plot([x + c, x + c], [1.1, rows + 1.3], color="#222222", lw=1.6)
    box(ax, 0.1, rows + 2.4, 0.5, 0.5, color=PALETTE["kept"], rounded=False, edge="#999999")
    ax.text(0.8, rows + 2.65, "kept", va="center", fontsize=7)
    box(ax, 3.0, rows + 2.4, 0.5, 0.5, color=PALETTE["dropped"], rounded=False, edge="#999999")
    ax.text(3.7, rows + 2.65, "pruned (set to 0)", va="center", fontsize=7)
    if group is not None:
        ax.text(9.5, rows + 2.65, f"| groups of {group} consecutive inputs", va="center", fontsize=7)
    return fig


def kept_heads(importance, keep, n_kv_heads: int, title: str | None = None):
    """Every layer's query heads as a grid (heads down, layers across), kept ones in green and removed ones in
    red, each shaded by its importance within its layer (darker: more important); thick lines separate the
    groups of heads that share a KV head.

    importance: a float tensor (L, H) of the heads' scores (``structured.importances``); keep: for each layer
    the indices of the heads it keeps, a list of L index lists or tensors, or a tensor (L, h); n_kv_heads: a
    divisor of H. L <= 64, H <= 32. Returns the Figure.
    """
    import torch
    from matplotlib.colors import to_rgb

    importance = validate.tensor("importance", importance, ndim=2, floating=True, finite=True)
    L, H = importance.shape
    if not (1 <= L <= MAX_LAYERS and 1 <= H <= MAX_HEADS):
        raise ValueError(f"importance must be (L, H) with 1 <= L <= {MAX_LAYERS}, 1 <= H <= {MAX_HEADS}, got "
                         f"{tuple(importance.shape)}")
    n_kv_heads = validate.divisor("n_kv_heads", n_kv_heads, H, what="the number of heads H")
    if isinstance(keep, (str, bytes)) or not hasattr(keep, "__len__"):
        raise TypeError(f"keep must be a list of L index lists (or a tensor (L, h)), got {type(keep).__name__}")
    if len(keep) != L:
        raise ValueError(f"keep must hold one list of head indices per layer ({L}), got {len(keep)}")
    kept = torch.zeros(L, H, dtype=torch.bool)
    for i, heads in enumerate(keep):
        try:
            idx = torch.as_tensor(heads)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(f"keep[{i}] must be a list or tensor of head indices, got {type(heads).__name__}") from None
        if idx.numel() == 0:
            raise ValueError(f"keep[{i}] is empty: every layer keeps at least one head")
        if idx.is_floating_point() or idx.is_complex() or idx.dtype == torch.bool or idx.ndim != 1:
            raise TypeError(f"keep[{i}] must be a 1-D list of integer head indices, got {heads!r}")
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= H):
            raise ValueError(f"keep[{i}] must hold head indices in [0, {H}), got {idx.tolist()}")
        kept[i, idx.long().cpu()] = True
    title = optional_title(title)
    imp = importance.detach().double().cpu()
    rank = (imp - imp.amin(1, keepdim=True)) / (imp.amax(1, keepdim=True) - imp.amin(1, keepdim=True)).clamp(min=1e-12)

    def shade(color: str, t: float) -> str:
        r, g, b = to_rgb(color)
        f = 0.35 + 0.65 * t  # from a pale tint (least important) to the full colour
        r, g, b = (1 - f) + f * r, (1 - f) + f * g, (1 - f) + f * b
        return f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"

    colors = [[shade(PALETTE["kept"] if kept[layer, h] else PALETTE["dropped"], float(rank[layer, h]))
               for layer in range(L)] for h in range(H)]
    x0, y0 = 3.2, 1.6
    fig, ax = canvas(x0 + L + 1.4, y0 + H + 2.6, title or f"{int(kept.sum())} of {L * H} query heads kept "
                     f"({H} per layer in {n_kv_heads} KV groups)", scale=0.34)
    cells(ax, colors, x=x0, y=y0, size=1.0)
    rep = H // n_kv_heads
    for g in range(n_kv_heads):
        top = y0 + H - g * rep
        ax.text(x0 - 0.3, top - rep / 2, f"KV group {g}", ha="right", va="center", fontsize=7)
        if g:
            ax.plot([x0, x0 + L], [top, top], color="#222222", lw=1.8)
    for h in range(H):
        ax.text(x0 + L + 0.25, y0 + H - h - 0.5, f"h{h}", va="center", fontsize=6)
    for layer in range(0, L, 5 if L > 12 else 1):
        ax.text(x0 + layer + 0.5, y0 - 0.5, str(layer), ha="center", fontsize=6)
    ax.text(x0 + L / 2, y0 - 1.3, "layer", ha="center", fontsize=8)
    box(ax, x0, y0 + H + 1.0, 0.6, 0.6, color=PALETTE["kept"], rounded=False, edge="#999999")
    ax.text(x0 + 0.9, y0 + H + 1.3, "kept", va="center", fontsize=7)
    box(ax, x0 + 4.0, y0 + H + 1.0, 0.6, 0.6, color=PALETTE["dropped"], rounded=False, edge="#999999")
    ax.text(x0 + 4.9, y0 + H + 1.3, "removed   (pale: the layer's least important heads, dark: its most)",
            va="center", fontsize=7)
    return fig
