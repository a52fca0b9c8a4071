"""Diagrams of notebook 16 (learning regimes), drawn from the run's real folds and activations.

* ``kfold_grid``: every item of a data set as a cell, coloured by the fold that tests it, laid out in rows (the
  topic set's 8 groups of 40), with each fold's size and score in the legend;
* ``lstm_gates``: one LSTM step on a real input: the four gates' activations unit by unit, and how the cell
  state is forgotten, written and read.
"""
from __future__ import annotations

from collections.abc import Sequence

from llmlab import validate
from llmlab.diagrams.draw import PALETTE, canvas, cells, legend, optional_title

FOLD_COLOURS = (PALETTE["new"], PALETTE["stored"], PALETTE["kept"], PALETTE["compute"], PALETTE["comm"],
                PALETTE["dropped"])
MAX_UNITS = 24  # cells per gate that still read at a glance


def kfold_grid(fold_of: Sequence[int], n_cols: int, row_labels: Sequence[str] | None = None,
               scores: Sequence[float] | None = None, title: str | None = None):
    """Item i drawn at row i // n_cols, column i % n_cols, coloured by ``fold_of[i]`` (the fold that tests it,
    0 … k-1, k at most 6); ``row_labels`` name the rows, ``scores`` (k numbers) each fold's test score. Returns
    the Figure."""
    if isinstance(fold_of, (str, bytes)) or not isinstance(fold_of, Sequence):
        raise TypeError(f"fold_of must be a list of fold numbers, got {type(fold_of).__name__}")
    fold_of = [validate.integer("fold_of's values", f, 0, len(FOLD_COLOURS) - 1) for f in fold_of]
    if not fold_of:
        raise ValueError("fold_of is empty: need at least one item")
    n_cols = validate.integer("n_cols", n_cols, 1, 200)
    k = max(fold_of) + 1
    rows = -(-len(fold_of) // n_cols)
    if rows > 40:
        raise ValueError(f"{len(fold_of)} items in rows of {n_cols} make {rows} rows: at most 40 (raise n_cols)")
    if row_labels is not None:
        row_labels = validate.strings("row_labels", row_labels)
        if len(row_labels) != rows:
            raise ValueError(f"row_labels must name the {rows} rows, got {len(row_labels)} labels")
    if scores is not None:
        if isinstance(scores, (str, bytes)) or not isinstance(scores, Sequence):
            raise TypeError(f"scores must be a list of numbers, got {type(scores).__name__}")
        scores = [validate.real("scores' values", s) for s in scores]
        if len(scores) != k:
            raise ValueError(f"scores must hold one number per fold ({k}), got {len(scores)}")
    title = optional_title(title)
    size, left = 0.5, 3.0
    title = title or f"{len(fold_of)} items, {k} folds: the colour says which round tests the item"
    fig, ax = canvas(left + n_cols * size + 6.5, rows * size + 1.0, title, scale=0.45)
    grid = [[FOLD_COLOURS[fold_of[r * n_cols + c]] if r * n_cols + c < len(fold_of) else PALETTE["idle"]
             for c in range(n_cols)] for r in range(rows)]
    cells(ax, grid, x=left, y=0.5, size=size)
    for r, name in enumerate(row_labels or []):
        ax.text(left - 0.2, 0.5 + (rows - r - 0.5) * size, name, ha="right", va="center", fontsize=8)
    entries = {}
    for j in range(k):
        n = fold_of.count(j)
        entries[f"fold {j}: {n} items" + (f", score {scores[j]:.3f}" if scores is not None else "")] = FOLD_COLOURS[j]
    legend(ax, entries, x=left + n_cols * size + 0.4, y=rows * size, size=0.4, fontsize=8)
    return fig


def _values(name: str, v) -> list[float]:
    if hasattr(v, "tolist"):
        v = v.tolist()
    if isinstance(v, (str, bytes)) or not isinstance(v, Sequence):
        raise TypeError(f"{name} must be a 1-D tensor or a list of numbers, got {type(v).__name__}")
    v = [validate.real(f"{name}'s values", x) for x in v]
    if not 1 <= len(v) <= MAX_UNITS:
        raise ValueError(f"{name} must hold 1 to {MAX_UNITS} units, got {len(v)}")
    return v


def _shade(value: float, low: float, high: float) -> str:
    """A colour from white (low) to the palette's 'kept' teal (high), for a value in [low, high]."""
    t = min(1.0, max(0.0, (value - low) / (high - low)))
    end = tuple(int(PALETTE["kept"][i : i + 2], 16) for i in (1, 3, 5))
    mixed = [round(255 + (e - 255) * t) for e in end]
    return "#" + "".join(f"{m:02x}" for m in mixed)


def lstm_gates(i, f, g, o, c_prev, c, h, title: str | None = None):
    """One LSTM step, unit by unit: the gates i, f, o (σ, in [0, 1]) and the candidate g (tanh, in [-1, 1]) as rows
    of shaded cells with their values, then c_prev, the new cell c = f·c_prev + i·g and the output h = o·tanh(c).
    Each argument holds the same units (1 to 24 of them). Returns the Figure."""
    rows = {"i  input gate σ": _values("i", i), "f  forget gate σ": _values("f", f),
            "g  candidate tanh": _values("g", g), "o  output gate σ": _values("o", o),
            "c_prev": _values("c_prev", c_prev), "c = f·c_prev + i·g": _values("c", c), "h = o·tanh(c)": _values("h", h)}
    n = len(rows["i  input gate σ"])
    if any(len(v) != n for v in rows.values()):
        raise ValueError(f"i, f, g, o, c_prev, c and h must hold the same number of units, got "
                         f"{[len(v) for v in rows.values()]}")
    title = optional_title(title)
    size, left, gap = 0.9, 4.2, 0.35
    height = len(rows) * (size + gap) + 1.2
    fig, ax = canvas(left + n * size + 3.2, height, title or f"one LSTM step, {n} units", scale=0.5)
    for r, (name, vals) in enumerate(rows.items()):
        y = height - 1.0 - (r + 1) * (size + gap) + gap
        low, high = (0.0, 1.0) if name[0] in "ifo" and name[1] == " " else (-1.0, 1.0)
        cells(ax, [[_shade(v, low, high) for v in vals]], x=left, y=y, size=size,
              labels=[[f"{v:.2f}" for v in vals]], fontsize=5.5)
        ax.text(left - 0.2, y + size / 2, name, ha="right", va="center", fontsize=8)
        mean = sum(vals) / n
        ax.text(left + n * size + 0.2, y + size / 2, f"mean {mean:+.2f}", va="center", fontsize=7)
    return fig
