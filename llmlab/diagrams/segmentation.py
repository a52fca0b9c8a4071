"""Diagrams of notebook 02 (Chinese word segmentation), drawn from the run's own lattice and route.

* ``word_lattice``: jieba's DAG of a sentence, its characters as nodes and every dictionary word as an arc from
  its first character to its last, with the maximum-probability route that ``best_route`` found highlighted and
  the score ``route[i]`` of the best segmentation of the rest of the sentence under each character.
* ``crf_lattice``: the Viterbi lattice of a linear-chain CRF on a sentence, one node per (character, tag) with its
  emission score, the best path in bold with the transition scores along it, and the transition matrix beside it.

Chinese characters need a font that has them: call ``llmlab.plotting.use_cjk_font()`` first.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence

from llmlab.diagrams.draw import PALETTE, box, canvas, cells, optional_title

MAX_CHARS = 30  # more characters than this no longer read at a glance


def _check_sentence(sentence) -> str:
    if not isinstance(sentence, str):
        raise TypeError(f"sentence must be a str, got {type(sentence).__name__}")
    if not sentence:
        raise ValueError("sentence is empty: need at least one character")
    if len(sentence) > MAX_CHARS:
        raise ValueError(f"sentence must have at most {MAX_CHARS} characters to stay readable, got {len(sentence)}")
    return sentence


def _check_dag(dag, n: int) -> dict[int, list[int]]:
    """dag as {i: sorted ends} for i < n, each end j with i <= j < n (the build_dag format)."""
    if not isinstance(dag, Mapping):
        raise TypeError(f"dag must be a dict {{i: [j, ...]}} (build_dag), got {type(dag).__name__}")
    out = {}
    for i in range(n):
        ends = dag.get(i)
        if isinstance(ends, (str, bytes)) or not isinstance(ends, Sequence) or not ends:
            raise ValueError(f"dag must map every position i < {n} to a non-empty list of word ends, "
                             f"position {i} has {ends!r}")
        for j in ends:
            if isinstance(j, bool) or not isinstance(j, numbers.Integral) or not i <= j < n:
                raise ValueError(f"dag[{i}] must hold ends j with {i} <= j < {n}, found {j!r}")
        out[i] = sorted(int(j) for j in ends)
    extra = [k for k in dag if k not in out]
    if extra:
        raise ValueError(f"dag has entries for positions outside 0..{n - 1}: {extra[:5]}")
    return out


def _check_route(route, dag: dict[int, list[int]], n: int) -> list[tuple[float, int]]:
    """route as a list of n + 1 (score, end) pairs, each end one of dag[i]'s (the best_route format)."""
    if isinstance(route, (str, bytes)) or not isinstance(route, (Sequence, Mapping)):
        raise TypeError(f"route must be a list of (score, j) pairs (best_route), got {type(route).__name__}")
    out = []
    for i in range(n + 1):
        try:
            entry = route[i]
        except (KeyError, IndexError):
            raise ValueError(f"route must hold a (score, j) pair for every position 0..{n}, "
                             f"it has none for {i}") from None
        try:
            score, j = entry
        except (TypeError, ValueError):
            raise ValueError(f"route[{i}] must be a (score, j) pair, got {entry!r}") from None
        if isinstance(score, bool) or not isinstance(score, numbers.Real) or not math.isfinite(score):
            raise ValueError(f"route[{i}] must start with a finite score, got {score!r}")
        if i < n and j not in dag[i]:
            raise ValueError(f"route[{i}] ends its word at {j!r}, which is not one of dag[{i}] = {dag[i]}")
        out.append((float(score), j))
    return out


def word_lattice(sentence: str, dag: dict[int, list[int]], route: list[tuple[float, int]],
                 title: str | None = None):
    """jieba's word lattice of ``sentence`` (1 to 30 characters): one node per character, one arc per dictionary
    word, from its first character i to its last j, for every j in ``dag[i]`` (``build_dag``'s result; a
    one-character word is the node itself). The maximum-probability route (``best_route``'s result, a list of
    N + 1 ``(score, j)`` pairs) is highlighted: its arcs and its one-character words; under each character i
    is ``route[i][0]``, the log-probability of the best segmentation of ``sentence[i:]``. Returns the Figure.
    """
    sentence = _check_sentence(sentence)
    n = len(sentence)
    dag = _check_dag(dag, n)
    route = _check_route(route, dag, n)
    if title is not None and not isinstance(title, str):
        raise TypeError(f"title must be a str or None, got {type(title).__name__}")
    if title == "":
        raise ValueError("title is empty: pass None for the default title")
    best, i = set(), 0
    while i < n:
        best.add((i, route[i][1]))
        i = route[i][1] + 1
    words = [sentence[i : j + 1] for i, j in sorted(best)]
    step, size = 1.7, 1.0  # from one character's node to the next; a node's side
    longest = max(j - i for i, ends in dag.items() for j in ends)
    base = 2.6  # the nodes' lower edge: room for the scores and the result underneath
    height = base + size + 0.9 + 0.55 * max(longest, 1) + 0.8
    width = 3.0 + step * n + 1.2
    arcs = sum(j > i for i, ends in dag.items() for j in ends)
    fig, ax = canvas(width, height, title or f"{n} characters, {arcs} dictionary words of 2+ characters; "
                     f"the best route: {' / '.join(words)}", scale=0.45)
    x0 = 3.0
    centre = lambda k: x0 + step * k + size / 2  # noqa: E731
    for i, ends in dag.items():
        for j in ends:
            if j == i:
                continue
            on = (i, j) in best
            top = base + size
            h = 0.5 + 0.55 * (j - i)
            xs = [centre(i) + (centre(j) - centre(i)) * t / 40 for t in range(41)]
            ys = [top + h * 4 * (t / 40) * (1 - t / 40) for t in range(41)]
            ax.plot(xs, ys, color=PALETTE["kept"] if on else "#9a9a9a", lw=2.6 if on else 1.0, zorder=3 if on else 2)
            ax.text((centre(i) + centre(j)) / 2, top + h + 0.12, sentence[i : j + 1], ha="center", va="bottom",
                    fontsize=9 if on else 7, color=PALETTE["kept"] if on else "#777777",
                    weight="bold" if on else "normal", zorder=4,
                    bbox=dict(facecolor="white", edgecolor="none", pad=0.3, alpha=0.85))
    for k, ch in enumerate(sentence):
        single = (k, k) in best
        box(ax, x0 + step * k, base, size, size, ch, color=PALETTE["kept"] if single else PALETTE["stored"],
            fontsize=12)
        ax.text(centre(k), base - 0.3, str(k), ha="center", va="center", fontsize=7, color="#777777")
        ax.text(centre(k), base - 0.8, f"{route[k][0]:.1f}", ha="center", va="center", fontsize=7,
                family="monospace")
    ax.text(x0 - 0.2, base - 0.3, "i", ha="right", va="center", fontsize=7, color="#777777")
    ax.text(x0 - 0.2, base - 0.8, "route[i][0]", ha="right", va="center", fontsize=7)
    ax.text(x0 + step * n - 0.3, base - 0.8, f"  route[{n}] = 0", ha="left", va="center", fontsize=7,
            family="monospace")
    ax.plot([x0, x0 + 0.6], [1.25, 1.25], color=PALETTE["kept"], lw=2.6)
    ax.text(x0 + 0.8, 1.25, "a word on the best route (an arc from its first to its last character, or the "
            "character itself)", va="center", fontsize=7)
    ax.plot([x0, x0 + 0.6], [0.7, 0.7], color="#9a9a9a", lw=1.0)
    ax.text(x0 + 0.8, 0.7, "another dictionary word", va="center", fontsize=7)
    ax.text(x0, 0.2, "route[i][0]: log-probability of the best segmentation of sentence[i:], filled from the right",
            va="center", fontsize=7)
    return fig


def _blend(colour: str, t: float) -> str:
    """``colour`` (#rrggbb) mixed with white: t = 0 white, t = 1 the colour itself."""
    t = min(max(t, 0.0), 1.0)
    rgb = [int(colour[i : i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(255 + (c - 255) * t):02x}" for c in rgb)


def _scores(name: str, x, shape: tuple[int, ...]) -> list[list[float]]:
    """A finite floating-point tensor of ``shape`` as lists of floats (2-D)."""
    import torch

    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a tensor of scores, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor of scores, got dtype {x.dtype}")
    if tuple(x.shape) != shape:
        raise ValueError(f"{name} must have shape {shape}, got {tuple(x.shape)}")
    x = x.detach().double().cpu()
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} holds NaN or inf values")
    return x.tolist()


def crf_lattice(sentence: str, emissions, transitions, path: Sequence[int], tags: str = "BMES",
                title: str | None = None):
    """The Viterbi lattice of a linear-chain CRF on ``sentence`` (1 to 30 characters): a column per character, a
    row per tag (``tags``, one letter each, K of them), each node showing its emission score (``emissions``, (T, K)),
    shaded by it; thin lines are all K x K transitions between neighbours, the best path (``path``, T tag indices,
    as ``crf_viterbi`` returns them) is drawn bold with the transition score ``transitions[i, j]`` (K, K) of each of
    its steps. Beside the lattice, the transition matrix, row = from, column = to. Returns the Figure."""
    from matplotlib.patches import Rectangle

    sentence = _check_sentence(sentence)
    if not isinstance(tags, str):
        raise TypeError(f"tags must be a str of tag letters such as 'BMES', got {type(tags).__name__}")
    if not tags or len(set(tags)) != len(tags):
        raise ValueError(f"tags must be a str of distinct tag letters, got {tags!r}")
    T, K = len(sentence), len(tags)
    emit = _scores("emissions", emissions, (T, K))
    trans = _scores("transitions", transitions, (K, K))
    if isinstance(path, (str, bytes)) or not isinstance(path, Sequence) and not hasattr(path, "tolist"):
        raise TypeError(f"path must be a list (or tensor) of tag indices, got {type(path).__name__}")
    path = path.tolist() if hasattr(path, "tolist") else list(path)
    if len(path) != T or any(isinstance(y, bool) or not isinstance(y, numbers.Integral) or not 0 <= y < K
                             for y in path):
        raise ValueError(f"path must hold {T} tag indices in 0 .. {K - 1}, got {path!r:.80}")
    title = optional_title(title)
    cuts = [0] + [t for t in range(1, T) if tags[path[t]] in "BS" or tags[path[t - 1]] in "ES"] + [T]
    words = [sentence[a:b] for a, b in zip(cuts, cuts[1:])]
    step, size, row = 1.7, 0.95, 1.2  # from one column to the next; a node's side; from one row to the next
    x0, top = 1.2, 1.2 + row * (K - 1)  # the first column's left edge; the top row's lower edge
    mx = max(abs(v) for r in trans for v in r) or 1.0
    matrix_x = x0 + step * T + 1.0
    width = matrix_x + 0.7 * K + 0.6
    height = top + size + 1.4
    fig, ax = canvas(width, max(height, 0.7 * K + 2.4), title or f"the CRF's best path: {' / '.join(words)}",
                     scale=0.45)
    lo, hi = min(min(r) for r in emit), max(max(r) for r in emit)
    y_of = lambda k: top - row * k  # noqa: E731
    for t in range(T - 1):
        for i in range(K):
            for j in range(K):
                on = path[t] == i and path[t + 1] == j
                ax.plot([x0 + step * t + size, x0 + step * (t + 1)], [y_of(i) + size / 2, y_of(j) + size / 2],
                        color=PALETTE["kept"] if on else "#c8c8c8", lw=2.8 if on else 0.5, zorder=3 if on else 1)
        i, j = path[t], path[t + 1]
        ax.text(x0 + step * t + size + (step - size) / 2, (y_of(i) + y_of(j)) / 2 + size / 2 + 0.18,
                f"{trans[i][j]:+.1f}", ha="center", va="bottom", fontsize=6, color=PALETTE["kept"], zorder=4,
                bbox=dict(facecolor="white", edgecolor="none", pad=0.2, alpha=0.8))
    for t, ch in enumerate(sentence):
        ax.text(x0 + step * t + size / 2, top + size + 0.35, ch, ha="center", va="center", fontsize=12)
        for k in range(K):
            on = path[t] == k
            shade = _blend(PALETTE["stored"], (emit[t][k] - lo) / (hi - lo) if hi > lo else 0.5)
            box(ax, x0 + step * t, y_of(k), size, size, f"{emit[t][k]:.1f}", color=shade, fontsize=6,
                edge=PALETTE["kept"] if on else "#999999")
            if on:  # the path's node, outlined thick
                ax.add_patch(Rectangle((x0 + step * t, y_of(k)), size, size, fill=False, edgecolor=PALETTE["kept"],
                                       lw=2.8, zorder=5))
    for k, tag in enumerate(tags):
        ax.text(x0 - 0.25, y_of(k) + size / 2, tag, ha="right", va="center", fontsize=10, weight="bold")
    colours = [[_blend(PALETTE["kept"] if v >= 0 else PALETTE["dropped"], abs(v) / mx) for v in r] for r in trans]
    labels = [[f"{v:+.1f}" for v in r] for r in trans]
    mtop = top + size  # the matrix's upper edge, level with the lattice's
    cells(ax, colours, x=matrix_x, y=mtop - 0.7 * K, size=0.7, labels=labels, fontsize=6)
    for k, tag in enumerate(tags):
        ax.text(matrix_x - 0.15, mtop - 0.7 * k - 0.35, tag, ha="right", va="center", fontsize=8)
        ax.text(matrix_x + 0.7 * k + 0.35, mtop + 0.2, tag, ha="center", va="bottom", fontsize=8)
    ax.text(matrix_x + 0.35 * K, mtop + 0.75, "transitions (from row to column)", ha="center", va="bottom", fontsize=7)
    ax.text(x0, 0.35, "node: emission score of the tag at that character (darker = higher); bold: the best path, "
            "with the transition score of each step", fontsize=7, va="center")
    return fig
