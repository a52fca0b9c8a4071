"""Diagrams of notebook 15b (robustness, interpretability), drawn from the run's real tokens and numbers.

* ``attribution_strip``: one row per attribution method over a text's real tokens, each cell coloured by the
  sign and size of its token's score (scaled per row, so methods on different scales compare by pattern);
* ``epsilon_box``: an L-infinity ball in two coordinates of a real input, with FGSM's corner step and the path
  of PGD's projected steps inside it.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from llmlab import validate
from llmlab.diagrams.draw import PALETTE, arrow, box, canvas, cells, legend, optional_title

MAX_TOKENS = 40  # more columns than this no longer read at a glance
MAX_ROWS = 6


def _label(token: str, width: int = 9) -> str:
    shown = token.replace("\n", "↵").replace(" ", "␣")
    return shown if len(shown) <= width else shown[: width - 1] + "…"


def _number(v: float) -> str:
    """A score short enough for a cell: two decimals, or one significant digit when that would show 0.00."""
    if v == 0 or 0.005 <= abs(v) < 10:
        return f"{v:.2f}"
    return f"{v:.0f}" if abs(v) >= 10 else f"{v:.0e}"


def _blend(colour: str, t: float) -> str:
    """``colour`` at strength t in [0, 1] over white, as '#rrggbb'."""
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    mix = [round(255 + (c - 255) * t) for c in (r, g, b)]
    return "#" + "".join(f"{c:02x}" for c in mix)


def attribution_strip(tokens: Sequence[str], rows: Mapping[str, Sequence[float]], title: str | None = None):
    """``tokens`` (1 to 40 str) and ``rows`` {method name: one score per token} (1 to 6 rows) as a heat strip:
    green for a token that pushes the prediction up, red for one that pushes it down, the strength scaled by
    the row's largest |score|; each cell shows its score. Returns the Figure."""
    tokens = validate.strings("tokens", tokens, "str tokens")
    if not 1 <= len(tokens) <= MAX_TOKENS:
        raise ValueError(f"tokens must hold 1 to {MAX_TOKENS} tokens to stay readable, got {len(tokens)}")
    if not isinstance(rows, Mapping):
        raise TypeError(f"rows must be a dict {{method: scores}}, got {type(rows).__name__}")
    if not 1 <= len(rows) <= MAX_ROWS:
        raise ValueError(f"rows must hold 1 to {MAX_ROWS} methods, got {len(rows)}")
    values = {}
    for name, scores in rows.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"rows' keys must be non-empty str (method names), got {name!r}")
        if hasattr(scores, "tolist"):
            scores = scores.tolist()
        if isinstance(scores, (str, bytes)) or not isinstance(scores, Sequence):
            raise TypeError(f"rows[{name!r}] must be a list of numbers, got {type(scores).__name__}")
        if len(scores) != len(tokens):
            raise ValueError(f"rows[{name!r}] must hold one score per token ({len(tokens)}), got {len(scores)}")
        values[name] = [validate.real(f"rows[{name!r}][{i}]", v) for i, v in enumerate(scores)]
    title = optional_title(title)
    n, left, head = len(tokens), 4.6, 2.6
    fig, ax = canvas(left + n + 0.5, len(values) + head + 1.6, title or "which tokens drive the prediction", scale=0.5)
    colours, labels = [], []
    for name, scores in values.items():
        top = max(abs(v) for v in scores) or 1.0
        colours.append([_blend(PALETTE["kept"] if v >= 0 else PALETTE["dropped"], abs(v) / top) for v in scores])
        labels.append([_number(v) for v in scores])
    cells(ax, colours, x=left, y=1.2, labels=labels, fontsize=6)
    for r, name in enumerate(values):
        ax.text(left - 0.2, 1.2 + len(values) - r - 0.5, name, ha="right", va="center", fontsize=8)
    for i, tok in enumerate(tokens):
        label = _label(tok)  # a single character (中文) reads upright; a word is turned to fit its column
        ax.text(left + i + 0.5, 1.2 + len(values) + 0.15, label, rotation=0 if len(label) == 1 else 90,
                ha="center", va="bottom", fontsize=8)
    legend(ax, {"raises the score": PALETTE["kept"], "lowers it": PALETTE["dropped"]}, x=left, y=0.6, size=0.4,
           fontsize=7)
    return fig


def epsilon_box(x0: Sequence[float], eps: float, fgsm_point: Sequence[float], pgd_path: Sequence[Sequence[float]],
                names: tuple[str, str] = ("coordinate i", "coordinate j"), title: str | None = None):
    """The L-infinity ball of radius ``eps`` around ``x0`` (two coordinates of a real input), FGSM's point (a
    corner when neither gradient is zero) and PGD's path of points, each step projected back into the box.
    Returns the Figure."""
    def point(name, p):
        if isinstance(p, (str, bytes)) or not isinstance(p, Sequence) or len(p) != 2:
            raise TypeError(f"{name} must be a point (a, b) of two numbers, got {p!r:.60}")
        return validate.real(f"{name}[0]", p[0]), validate.real(f"{name}[1]", p[1])

    x0 = point("x0", x0)
    eps = validate.positive_float("eps", eps)
    fg = point("fgsm_point", fgsm_point)
    if isinstance(pgd_path, (str, bytes)) or not isinstance(pgd_path, Sequence) or not pgd_path:
        raise TypeError("pgd_path must be a non-empty list of points (a, b)")
    path = [point(f"pgd_path[{i}]", p) for i, p in enumerate(pgd_path)]
    if not (isinstance(names, tuple) and len(names) == 2 and all(isinstance(s, str) for s in names)):
        raise TypeError(f"names must be a tuple of two str, got {names!r:.60}")
    title = optional_title(title)
    # data units: the box is 6 wide, centred at (5, 5)
    s = 3.0 / eps

    def at(p):
        return 5 + (p[0] - x0[0]) * s, 5 + (p[1] - x0[1]) * s

    fig, ax = canvas(13.5, 10, title or f"an L∞ ball of radius {eps:g}: FGSM jumps to a corner, PGD walks and projects",
                     scale=0.45)
    box(ax, 2, 2, 6, 6, color=PALETTE["empty"], rounded=False)
    ax.text(5, 1.4, f"{names[0]} ± {eps:g}", ha="center", fontsize=8)
    ax.text(1.4, 5, f"{names[1]} ± {eps:g}", ha="center", va="center", rotation=90, fontsize=8)
    ax.plot(*at(x0), "o", color=PALETTE["text"])
    ax.text(at(x0)[0] + 0.2, at(x0)[1] - 0.5, "x0 (clean)", fontsize=8)
    arrow(ax, at(x0), at(fg), color=PALETTE["new"])
    ax.plot(*at(fg), "s", color=PALETTE["new"], markersize=8)
    prev = x0
    for p in path:
        arrow(ax, at(prev), at(p), color=PALETTE["kept"])
        prev = p
    ax.plot(*at(path[-1]), "D", color=PALETTE["kept"], markersize=6)
    legend(ax, {"FGSM: one step of eps·sign(grad)": PALETTE["new"], f"PGD: {len(path)} projected steps": PALETTE["kept"],
                "the allowed box": PALETTE["empty"]}, x=8.6, y=8.5, size=0.4, fontsize=7)
    return fig
