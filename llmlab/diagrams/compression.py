"""Diagrams of notebook 11 (compression), drawn from a real weight row and a real matrix's factors.

* ``shared_weights``: the weights of one row on a number line, each coloured by the centroid k-means assigned it
  to, the k centroids (the codebook) below with how many weights share each: weight sharing at a glance;
* ``low_rank_factors``: W (N × K) ≈ A (N × r) · B (r × K) as boxes drawn to scale, with the weights each holds,
  the break-even rank and, when given, the error of the cut.
"""
from __future__ import annotations

from llmlab import validate
from llmlab.diagrams.draw import PALETTE, arrow, box, canvas, optional_title

MAX_WEIGHTS = 4096  # dots on one line: a row of SmolLM2's widest matrix (1536) fits, a whole matrix does not
MAX_CENTROIDS = 20  # one distinct colour each (matplotlib's tab20)


def shared_weights(values, codebook, idx, title: str | None = None):
    """Weight sharing on one row: every value of ``values`` as a dot on a number line, coloured by its centroid
    ``codebook[idx]``; below the line, each centroid at its value, in the same colour, with the number of weights
    that share it. A weight far from the centroid of its colour is badly assigned.

    The line spans the values; centroids beyond them (a matrix's codebook serves all its rows) are left out and
    counted in a note.

    values: a float tensor (n,), 2 <= n <= 4096 (a row of a weight matrix); codebook: a float tensor (k,),
    1 <= k <= 20, in any order (as k-means leaves it); idx: integer indices into the codebook, values' shape (an
    ``assign``'s result). Returns the Figure.
    """
    import matplotlib
    import torch

    values = validate.tensor("values", values, floating=True, finite=True)
    if values.ndim != 1 or not 2 <= values.shape[0] <= MAX_WEIGHTS:
        raise ValueError(f"values must be a row of 2 to {MAX_WEIGHTS} weights, shape (n,), got {tuple(values.shape)}")
    codebook = validate.tensor("codebook", codebook, ndim=1, floating=True, finite=True)
    if not 1 <= codebook.shape[0] <= MAX_CENTROIDS:
        raise ValueError(f"codebook must hold 1 to {MAX_CENTROIDS} centroids, got {codebook.shape[0]}")
    idx = validate.tensor("idx", idx)
    if idx.is_floating_point() or idx.is_complex() or idx.dtype == torch.bool:
        raise TypeError(f"idx must hold integer centroid indices, got dtype {idx.dtype}")
    if idx.shape != values.shape:
        raise ValueError(f"idx must have values' shape {tuple(values.shape)} (one index per value), got "
                         f"{tuple(idx.shape)}")
    k = codebook.shape[0]
    idx = idx.reshape(-1).cpu()
    if int(idx.min()) < 0 or int(idx.max()) >= k:
        raise ValueError(f"idx must hold indices in [0, {k}) (the codebook's size), got {int(idx.min())} to "
                         f"{int(idx.max())}")
    title = optional_title(title)
    x, c = values.detach().double().cpu(), codebook.detach().double().cpu()
    counts = torch.bincount(idx, minlength=k).tolist()
    err = float((x - c[idx]).norm() / x.norm().clamp(min=1e-300))
    colors = [matplotlib.colormaps["tab20"](j % 20) for j in range(k)]
    lo, hi = float(x.min()), float(x.max())  # the row's range: centroids beyond it serve other rows
    pad = 0.06 * (hi - lo or 1.0)
    lo, hi = lo - pad, hi + pad
    width = 18.0

    def at(v: float) -> float:
        return 0.5 + (v - lo) / (hi - lo) * width

    fig, ax = canvas(width + 1.0, 7.0, title or f"{len(x)} weights share k = {k} values: relative error {err:.3f}",
                     scale=0.55)
    ax.set_aspect("auto")
    base = 2.6  # the number line
    ax.plot([at(lo), at(hi)], [base, base], color="#444444", lw=1)
    rows = 8  # dots spread over a few rows, so that close values do not hide each other
    ys = [base + 0.5 + (i % rows) * 0.45 for i in range(len(x))]
    ax.scatter([at(v) for v in x.tolist()], ys, s=9 if len(x) > 600 else 16, c=[colors[j] for j in idx.tolist()],
               edgecolors="#555555", linewidths=0.2, zorder=3)
    order = [j for j in sorted(range(k), key=lambda j: float(c[j])) if lo <= float(c[j]) <= hi]
    outside = k - len(order)
    for n, j in enumerate(order):
        v = at(float(c[j]))
        ax.plot([v, v], [base - 0.15, base + 0.15], color="#444444", lw=1)
        ax.plot([v], [base - 0.55], "v", ms=9, color=colors[j], mec="#444444", mew=0.6)
        ax.text(v, base - (1.05 if n % 2 == 0 else 1.55), f"{counts[j]}", ha="center", va="center", fontsize=7)
    ax.text(at(lo), base - 2.2, f"{lo:.3g}", fontsize=7, color="#555555")
    ax.text(at(hi), base - 2.2, f"{hi:.3g}", fontsize=7, color="#555555", ha="right")
    ax.text(0.5 + width / 2, 0.1, "▼ a centroid (a codebook entry), with how many weights share it; "
            "• a weight, in its centroid's colour", ha="center", fontsize=8)
    if outside:
        ax.text(0.5 + width / 2, 6.6, f"({outside} of the {k} centroids lie beyond these values: "
                "no weight of this row uses them)", ha="center", fontsize=7, color="#555555")
    return fig


def low_rank_factors(n: int, k: int, rank: int, error: float | None = None, title: str | None = None):
    """The low-rank cut of one matrix, to scale: W (n × k) next to A (n × rank) and B (rank × k), each labelled with
    its shape and weight count, A and B together against W (the saving, or the loss above the break-even rank
    n k / (n + k)). ``error``, if given (the relative error ‖W - A B‖ / ‖W‖ measured on the real matrix), is
    written under them.

    n, k: the matrix's rows and columns, 1 to 100,000; rank: 1 to min(n, k); error: a number >= 0, or None.
    Returns the Figure.
    """
    n = validate.integer("n", n, 1, 100_000)
    k = validate.integer("k", k, 1, 100_000)
    rank = validate.integer("rank", rank, 1, min(n, k))
    if error is not None:
        error = validate.real("error", error, minimum=0.0)
    title = optional_title(title)
    unit = 6.0 / max(n, k)  # the longer side of W is 6 units
    wn, wk, r = n * unit, k * unit, max(rank * unit, 0.06)  # a thin factor stays visible
    even = n * k / (n + k)
    params = rank * (n + k)
    gap = 1.2
    width = wk + 2 * gap + r + gap + wk + 1.6
    height = max(wn, 2.0) + 3.4
    fig, ax = canvas(width, height, title or f"rank {rank} of a {n} × {k} matrix: {params:,} weights instead of "
                     f"{n * k:,} ({params / (n * k):.0%})", scale=0.6)
    top = height - 1.2
    box(ax, 0.4, top - wn, wk, wn, "", color=PALETTE["stored"], rounded=False)
    ax.text(0.4 + wk / 2, top - wn / 2, f"W\n{n} × {k}\n{n * k:,}", ha="center", va="center", fontsize=8)
    ax.text(0.4 + wk + gap / 2, top - wn / 2, "≈", ha="center", va="center", fontsize=16)
    xa = 0.4 + wk + gap
    box(ax, xa, top - wn, r, wn, "", color=PALETTE["kept"], rounded=False)
    ax.text(xa + r / 2, top - wn - 0.35, f"A\n{n} × {rank}", ha="center", va="top", fontsize=8)
    ax.text(xa + r + gap / 2, top - wn / 2, "×", ha="center", va="center", fontsize=14)
    xb = xa + r + gap
    box(ax, xb, top - r, wk, r, "", color=PALETTE["kept"], rounded=False)
    ax.text(xb + wk / 2, top - r - 0.25, f"B  {rank} × {k}", ha="center", va="top", fontsize=8)
    ax.text(xb, top - r - 1.0, f"A and B: r (n + k)\n= {params:,} weights", ha="left", va="top", fontsize=8)
    verdict = (f"below the break-even rank n k / (n + k) = {even:.1f}: smaller than W" if rank < even
               else f"not below the break-even rank n k / (n + k) = {even:.1f}: no smaller than W")
    note = verdict + (f"; relative error ‖W - A B‖ / ‖W‖ = {error:.3f}" if error is not None else "")
    ax.text(width / 2, 0.4, note, ha="center", fontsize=8)
    arrow(ax, (0.4, top + 0.35), (0.4 + wk, top + 0.35), text="", style="<->")
    ax.text(0.4 + wk / 2, top + 0.5, f"k = {k}", ha="center", fontsize=7)
    return fig
