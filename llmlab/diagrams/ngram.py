"""Diagrams of notebook 01 (language models), drawn from the run's real bytes, counts and distributions.

* ``counting_window``: the n-byte window sliding over a stretch of real text, one row per position, each
  n-gram with the count it has in the whole corpus (the ``count_ngrams`` result);
* ``inverse_cdf``: sampling by inverse CDF: [0, 1) cut into one interval per token, as long as its probability,
  and the token a given u falls in; one strip per distribution (before and after temperature, say).
"""
from __future__ import annotations

import numbers
from collections.abc import Mapping

from llmlab import validate
from llmlab.diagrams.draw import PALETTE, arrow, box, canvas, cells, legend, optional_title

MAX_LENGTH = 32  # more byte columns than this no longer read at a glance
MAX_ROWS = 6  # distributions drawn by inverse_cdf


def byte_label(byte: int) -> str:
    """A byte value (0 to 255) as it can be written in a cell: printable ASCII as itself, a space as ``␣``, a
    newline as ``⏎``, a tab as ``→``, any other byte (UTF-8 pieces of a wider character) as hex ``\\xe6``."""
    byte = validate.integer("byte", byte, 0, 255)
    special = {32: "␣", 10: "⏎", 9: "→"}
    if byte in special:
        return special[byte]
    return chr(byte) if 33 <= byte <= 126 else f"\\x{byte:02x}"


def counting_window(tokens, n: int, counts: Mapping, start: int = 0, length: int = 16, title: str | None = None):
    """The n-gram window sliding over ``tokens[start:start + length]`` (byte values 0-255, a list or ``bytes``).

    The bytes are drawn on top; below, one row per window position (``length - n + 1`` of them, they overlap),
    the n bytes it covers and, at the right, the count of that n-gram in ``counts`` (a Counter of n-tuples,
    ``count_ngrams(corpus, n)``, in which an n-gram that is missing counts 0). ``length`` is 2 to 32 and at
    least ``n``. Returns the Figure.
    """
    tokens = validate.token_ids("tokens", tokens, vocab_size=256)
    n = validate.integer("n", n, 1, MAX_LENGTH)
    if not isinstance(counts, Mapping):
        raise TypeError(f"counts must be a Counter of n-gram tuples (count_ngrams), got {type(counts).__name__}")
    if not counts:
        raise ValueError("counts is empty: pass count_ngrams(corpus, n), the counts of the whole corpus")
    key = next(iter(counts))
    if not isinstance(key, tuple) or len(key) != n:
        raise ValueError(f"counts must be keyed by tuples of n = {n} token ids, found the key {key!r}")
    length = validate.integer("length", length, max(2, n), MAX_LENGTH)
    start = validate.integer("start", start, 0)
    if start + length > len(tokens):
        raise ValueError(f"start must be <= len(tokens) - length = {len(tokens) - length}, got {start}")
    title = optional_title(title)
    piece = tokens[start : start + length]
    windows = length - n + 1
    top = windows + 1.6  # the row of bytes
    width = length + 7.5
    fig, ax = canvas(width, top + 2.2, title or f"{length} bytes, {n}-grams: {windows} overlapping windows "
                     f"(T - n + 1 = {length} - {n} + 1)", scale=0.42)
    for i in range(length):
        ax.text(i + 0.5, top + 1.35, str(i), ha="center", va="center", fontsize=7, color="#777777")
    cells(ax, [[PALETTE["stored"]] * length], x=0, y=top, labels=[[byte_label(b) for b in piece]], fontsize=8)
    ax.text(length + 0.3, top + 0.5, "count in the corpus", va="center", fontsize=8, weight="bold")
    for w in range(windows):
        gram = tuple(piece[w : w + n])
        y = top - 1.15 - w
        box(ax, w + 0.05, y + 0.1, n - 0.1, 0.8, "".join(byte_label(b) for b in gram), color=PALETTE["new"],
            fontsize=7)
        ax.text(length + 0.3, y + 0.5, f"{counts.get(gram, 0):,}", va="center", fontsize=8, family="monospace")
    ax.text(0, 0.3, f"bytes {start:,} to {start + length - 1:,} of the text.   ␣ space   ⏎ newline   "
            "\\xNN a byte of a multi-byte character", fontsize=7, color="#555555")
    return fig


def _probability_rows(probs):
    """probs as a float64 tensor (R, V) of rows that each sum to 1."""
    import torch

    probs = validate.tensor("probs", probs, floating=True, finite=True)
    if probs.ndim not in (1, 2):
        raise ValueError(f"probs must have shape (V,) or (R, V), got {tuple(probs.shape)}")
    rows = probs.detach().double().reshape(-1, probs.shape[-1]).cpu()
    if rows.shape[-1] < 2 or rows.shape[0] == 0:
        raise ValueError(f"probs must hold at least 2 probabilities per row, got shape {tuple(probs.shape)}")
    if rows.shape[0] > MAX_ROWS:
        raise ValueError(f"probs must have at most {MAX_ROWS} rows to stay readable, got {rows.shape[0]}")
    if bool((rows < 0).any()):
        raise ValueError("probs holds negative values: pass probabilities (temperature_softmax), not logits")
    sums = rows.sum(-1)
    if not bool(torch.allclose(sums, torch.ones_like(sums), atol=1e-3)):
        raise ValueError(f"each row of probs must sum to 1, got sums {[round(s, 4) for s in sums.tolist()]}")
    return rows


def inverse_cdf(probs, u: float, labels: list[str], names: list[str] | None = None, title: str | None = None):
    """Inverse-CDF sampling drawn on [0, 1): each token owns an interval as long as its probability, in
    vocabulary order, and ``u`` (in [0, 1)) picks the first token whose cumulative probability exceeds it.

    ``probs`` is one distribution (V,) or several (R, V), R <= 6 (the same context at several temperatures,
    say), each summing to 1; ``labels`` names the V tokens (``byte_label`` for bytes); ``names`` names the R
    strips. Intervals too narrow to write in are drawn unlabelled. Returns the Figure.
    """
    rows = _probability_rows(probs)
    if isinstance(u, bool) or not isinstance(u, numbers.Real):
        raise TypeError(f"u must be a number, got {type(u).__name__}")
    u = validate.real("u", u, minimum=0.0, below=1.0)
    labels = validate.strings("labels", labels, "str token labels")
    V = rows.shape[-1]
    if len(labels) != V:
        raise ValueError(f"labels must name the {V} tokens of probs, got {len(labels)} labels")
    if names is None:
        names = [f"row {r}" for r in range(rows.shape[0])] if rows.shape[0] > 1 else [""]
    names = validate.strings("names", names, "str names")
    if len(names) != rows.shape[0]:
        raise ValueError(f"names must name the {rows.shape[0]} rows of probs, got {len(names)}")
    title = optional_title(title)
    W, left, gap, bottom = 24.0, 3.2, 2.0, 2.9  # the strip's width, room for names, one strip's height, the key
    R = rows.shape[0]
    height = bottom + R * gap + 0.4
    fig, ax = canvas(left + W + 6.0, height, title or f"inverse-CDF sampling: u = {u:g} picks the first token "
                     "whose cumulative probability exceeds it", scale=0.42)
    for r in range(R):
        p = rows[r]
        cdf = p.cumsum(0)
        pick = min(int((cdf <= u).sum()), int(p.nonzero().max()))
        y = bottom + (R - 1 - r) * gap
        ax.text(left - 0.3, y + 0.5, names[r], ha="right", va="center", fontsize=8)
        begin, small = 0.0, None  # small: where the current run of unlabelled narrow intervals began
        for i in range(V):
            end = float(cdf[i]) if i < V - 1 else 1.0
            w = (end - begin) * W
            if i == pick or w >= 0.55:
                if small is not None:
                    box(ax, left + small * W, y, (begin - small) * W, 1.0, color=PALETTE["empty"], rounded=False,
                        edge="#bbbbbb")
                    small = None
                if w > 0:
                    box(ax, left + begin * W, y, w, 1.0, labels[i] if w >= 0.55 else "", rounded=False,
                        color=PALETTE["kept"] if i == pick else PALETTE["stored"], fontsize=7, edge="#666666")
            elif w > 0 and small is None:
                small = begin
            begin = end
        if small is not None:
            box(ax, left + small * W, y, (1.0 - small) * W, 1.0, color=PALETTE["empty"], rounded=False,
                edge="#bbbbbb")
        arrow(ax, (left + u * W, y + 1.6), (left + u * W, y + 1.0), color=PALETTE["dropped"])
        ax.text(left + u * W + 0.15, y + 1.45, f"u = {u:g}", fontsize=7, color=PALETTE["dropped"], va="center")
        ax.text(left + W + 0.3, y + 0.5, f"→ {labels[pick]}  (p = {float(p[pick]):.2f})", va="center", fontsize=8)
    for x in (0.0, 0.25, 0.5, 0.75, 1.0):
        ax.text(left + x * W, bottom - 0.35, f"{x:g}", ha="center", va="center", fontsize=7, color="#555555")
    legend(ax, {"the token u falls in": PALETTE["kept"], "another token, in vocabulary order": PALETTE["stored"],
                "tokens too narrow to label": PALETTE["empty"]}, x=left, y=bottom - 1.2, size=0.4, fontsize=7)
    return fig
