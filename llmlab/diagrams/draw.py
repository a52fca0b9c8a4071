"""The primitives of every diagram: a canvas in data units, labelled boxes, arrows and grids of cells.

Coordinates are data units on an axis without ticks, y pointing up; a diagram function picks its own
scale (one unit per cell, per box) and returns the figure, so a notebook can ``plt.show()`` it or save it.
"""
from __future__ import annotations

from collections.abc import Sequence

from llmlab import validate

# one colour per role, used by every diagram: what is computed now, what is stored, what is thrown away
PALETTE = {
    "new": "#f4a261",       # computed this step
    "stored": "#8ecae6",    # kept from before (a cache, a weight)
    "empty": "#f1f1f1",     # allocated, not written yet
    "dropped": "#e76f51",   # rejected, pruned, evicted
    "kept": "#2a9d8f",      # accepted, kept
    "compute": "#ffd166",   # a computation (a layer, an operation)
    "comm": "#b5a8e0",      # communication between devices
    "idle": "#ffffff",      # a device waiting (a pipeline bubble)
    "text": "#222222",
}


def canvas(width: float, height: float, title: str | None = None, scale: float = 0.5):
    """(fig, ax): an axis of ``width`` x ``height`` data units without ticks or frame, ``scale`` inches per unit."""
    import matplotlib.pyplot as plt

    width, height = validate.positive_float("width", width), validate.positive_float("height", height)
    scale = validate.real("scale", scale, above=0.0, maximum=5.0)
    _text("title", title, allow_none=True)
    if width * scale > 60 or height * scale > 60:
        raise ValueError(f"the figure would be {width * scale:g} x {height * scale:g} inches: at most 60 each "
                         "(make width, height or scale smaller)")
    fig, ax = plt.subplots(figsize=(max(2.0, width * scale), max(1.0, height * scale)))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_aspect("equal")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=10)
    return fig, ax


def box(ax, x: float, y: float, w: float, h: float, text: str = "", color: str = PALETTE["compute"],
        fontsize: float = 9, edge: str = "#444444", text_color: str = PALETTE["text"], rounded: bool = True):
    """A box with its lower-left corner at (x, y) and ``text`` in its middle."""
    from matplotlib.patches import FancyBboxPatch, Rectangle

    axes(ax)
    x, y = validate.real("x", x), validate.real("y", y)
    w, h = validate.positive_float("w", w), validate.positive_float("h", h)
    _text("text", text)
    for name, value in (("color", color), ("edge", edge), ("text_color", text_color)):
        _colour(name, value)
    fontsize = validate.positive_float("fontsize", fontsize)
    validate.flag("rounded", rounded)
    if rounded:
        patch = FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0,rounding_size=0.08", facecolor=color,
                               edgecolor=edge, linewidth=0.8)
    else:
        patch = Rectangle((x, y), w, h, facecolor=color, edgecolor=edge, linewidth=0.6)
    ax.add_patch(patch)
    if text:
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=fontsize, color=text_color)
    return patch


def arrow(ax, start: tuple[float, float], end: tuple[float, float], text: str = "", color: str = "#444444",
          fontsize: float = 8, style: str = "-|>"):
    """An arrow from ``start`` to ``end``, with ``text`` beside its middle."""
    axes(ax)
    start, end = _point("start", start), _point("end", end)
    _text("text", text)
    _colour("color", color)
    fontsize = validate.positive_float("fontsize", fontsize)
    _text("style", style)
    ax.annotate("", xy=end, xytext=start, arrowprops=dict(arrowstyle=style, color=color, lw=1.0,
                                                          shrinkA=0, shrinkB=0))
    if text:
        ax.text((start[0] + end[0]) / 2 + 0.1, (start[1] + end[1]) / 2, text, fontsize=fontsize, color=color,
                va="center")


def cells(ax, colors: Sequence[Sequence[str]], x: float = 0.0, y: float = 0.0, size: float = 1.0,
          labels: Sequence[Sequence[str]] | None = None, fontsize: float = 7):
    """A grid of square cells, row 0 at the top: ``colors[r][c]`` fills the cell, ``labels[r][c]`` is written
    in it. (x, y) is the lower-left corner of the whole grid."""
    axes(ax)
    colors = _grid("colors", colors)
    if labels is not None:
        labels = _grid("labels", labels)
        if [len(r) for r in labels] != [len(r) for r in colors]:
            raise ValueError("labels must have the shape of colors (one label per cell)")
    for row in colors:
        for c in row:
            _colour("colors", c)
    x, y, size = validate.real("x", x), validate.real("y", y), validate.positive_float("size", size)
    fontsize = validate.positive_float("fontsize", fontsize)
    n_rows = len(colors)
    for r, row in enumerate(colors):
        for c, color in enumerate(row):
            label = labels[r][c] if labels is not None else ""
            box(ax, x + c * size, y + (n_rows - 1 - r) * size, size, size, label, color=color, fontsize=fontsize,
                rounded=False, edge="#999999")


def legend(ax, entries: dict[str, str], x: float, y: float, size: float = 0.5, fontsize: float = 8):
    """A key of coloured squares, one line each, top line at y: {label: colour}."""
    axes(ax)
    if not isinstance(entries, dict):
        raise TypeError(f"entries must be a dict {{label: colour}}, got {type(entries).__name__}")
    for label, color in entries.items():
        _text("entries' labels", label)
        _colour("entries' colours", color)
    x, y, size = validate.real("x", x), validate.real("y", y), validate.positive_float("size", size)
    fontsize = validate.positive_float("fontsize", fontsize)
    for i, (label, color) in enumerate(entries.items()):
        box(ax, x, y - i * size * 1.4, size, size, color=color, rounded=False, edge="#999999")
        ax.text(x + size * 1.4, y - i * size * 1.4 + size / 2, label, va="center", fontsize=fontsize)


def axes(ax):
    """``ax`` must be a matplotlib Axes (the second value ``canvas`` returns)."""
    from matplotlib.axes import Axes

    if not isinstance(ax, Axes):
        raise TypeError(f"ax must be a matplotlib Axes (fig, ax = canvas(...)), got {type(ax).__name__}")
    return ax


def _text(name: str, value, allow_none: bool = False) -> None:
    if not (isinstance(value, str) or (allow_none and value is None)):
        raise TypeError(f"{name} must be a str{' or None' if allow_none else ''}, got {type(value).__name__}")


def _colour(name: str, value) -> None:
    from matplotlib.colors import is_color_like

    _text(name, value)
    if not is_color_like(value):
        raise ValueError(f"{name} must be a matplotlib colour ('#8ecae6', 'red', ...), got {value!r}")


def _point(name: str, value) -> tuple[float, float]:
    if not isinstance(value, (tuple, list)):
        raise TypeError(f"{name} must be a point (x, y), got {type(value).__name__}")
    if len(value) != 2:
        raise ValueError(f"{name} must be a point (x, y) of two numbers, got {len(value)} values")
    return validate.real(f"{name}[0]", value[0]), validate.real(f"{name}[1]", value[1])


def _grid(name: str, value) -> list[list]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or \
            not all(isinstance(r, (list, tuple)) and not isinstance(r, str) for r in value):
        raise TypeError(f"{name} must be a list of rows (lists), got {type(value).__name__}")
    if not value or not all(value):
        raise ValueError(f"{name} must have at least one row and one cell per row")
    if sum(len(r) for r in value) > 100_000:
        raise ValueError(f"{name} has more than 100,000 cells: draw a smaller grid")
    return [list(r) for r in value]


def optional_title(title) -> str | None:
    """A diagram's ``title`` argument: a non-empty str, or None for the diagram's default title."""
    if title is not None and not isinstance(title, str):
        raise TypeError(f"title must be a str or None, got {type(title).__name__}")
    if title == "":
        raise ValueError("title is empty: give a title, or None for the default one")
    return title
