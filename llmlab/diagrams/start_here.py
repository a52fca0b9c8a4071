"""Diagram of notebook 00 (start here): how UTF-8 stores a real sentence.

* ``utf8_bytes``: each character of a text above the bytes UTF-8 writes for it, one cell per byte, coloured by
  how many bytes the character takes (1 for ASCII, 2 for accented Latin, 3 for most Chinese, 4 for emoji).

Chinese characters need a font that has them: call ``llmlab.plotting.use_cjk_font()`` first.
"""
from __future__ import annotations

from llmlab import validate
from llmlab.diagrams.draw import PALETTE, canvas, cells, legend, optional_title

MAX_BYTES = 48  # more byte cells than this no longer fit one readable row
WIDTH_COLOURS = {1: PALETTE["stored"], 2: PALETTE["new"], 3: PALETTE["kept"], 4: PALETTE["dropped"]}


def utf8_bytes(text: str, title: str | None = None):
    """``text`` (1 to 48 UTF-8 bytes) drawn as its characters, each above its UTF-8 bytes in hex.

    A character's cells span its bytes, so a Chinese character sits over three cells and an ASCII letter over
    one: the row of bytes is what a byte-level model or tokenizer reads. Returns the Figure.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    data = text.encode("utf-8")
    if not 1 <= len(data) <= MAX_BYTES:
        raise ValueError(f"text must take 1 to {MAX_BYTES} bytes in UTF-8, got {len(data)} bytes")
    title = optional_title(title)
    n = len(data)
    fig, ax = canvas(max(n, 14) + 0.5, 5.4, title or f"{len(text)} characters, {n} bytes in UTF-8", scale=0.42)
    x = 0.0
    for ch in text:
        width = len(ch.encode("utf-8"))
        colour = WIDTH_COLOURS[width]
        cells(ax, [[colour] * width], x=x, y=2.8, labels=[[f"{b:02x}" for b in ch.encode("utf-8")]], fontsize=7)
        shown = {" ": "␣", "\n": "⏎", "\t": "→"}.get(ch, ch)
        ax.text(x + width / 2, 4.35, shown, ha="center", va="center", fontsize=12)
        ax.plot([x + 0.08, x + width - 0.08], [3.9, 3.9], color="#777777", lw=0.8)
        x += width
    legend(ax, {"1 byte (ASCII)": WIDTH_COLOURS[1], "2 bytes": WIDTH_COLOURS[2],
                "3 bytes (most Chinese)": WIDTH_COLOURS[3], "4 bytes (emoji)": WIDTH_COLOURS[4]},
           x=0.0, y=2.0, size=0.35, fontsize=7)
    return fig
