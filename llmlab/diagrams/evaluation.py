"""Diagrams of the evaluation notebooks (07a-07c), drawn from the run's real tokens, texts and counts.

* ``sliding_windows``: the windows of a strided perplexity over a text's real tokens, which tokens each window
  scores and which it only reads as context;
* ``confusion_grid``: a confusion matrix as a grid of counts, correct answers on the diagonal, with each class's
  support, recall, precision and F1 beside it;
* ``bleu_matches``: BLEU's clipped n-gram matches of one hypothesis against its references, order by order.
"""
from __future__ import annotations

from collections import Counter

from llmlab import validate
from llmlab.diagrams.draw import PALETTE, box, canvas, cells, legend, optional_title

MAX_TOKENS = 64  # more columns than this no longer read at a glance


def _label(token: str, width: int = 10) -> str:
    """A token as it can be printed in a cell: spaces and newlines made visible, long pieces cut."""
    shown = token.replace("\n", "↵").replace("\t", "→").replace(" ", "␣")
    return shown if len(shown) <= width else shown[: width - 1] + "…"


def _tokens(name: str, tokens, maximum: int = MAX_TOKENS) -> list[str]:
    tokens = validate.strings(name, tokens, "str tokens")
    if not tokens:
        raise ValueError(f"{name} is empty: need at least one token")
    if len(tokens) > maximum:
        raise ValueError(f"{name} must hold at most {maximum} tokens to stay readable, got {len(tokens)}")
    return tokens


def sliding_windows(tokens: list[str], window: int, stride: int, title: str | None = None):
    """The windows of a strided perplexity over ``tokens`` (the text's token pieces, 1 to 64 of them).

    One row per window of ``llmlab.metrics.lm.strided_windows(len(tokens), window, stride)``: the tokens it
    scores (its last ``trg_len``), the tokens it reads as context only, and, in the first window, the first
    token, which nothing predicts. Each row ends with its ``(begin, end, trg_len)``. Returns the Figure.
    """
    from llmlab.metrics.lm import strided_windows

    tokens = _tokens("tokens", tokens)
    window = validate.size("window", window, minimum=2)
    stride = validate.positive_int("stride", stride)
    if stride > window:
        raise ValueError(f"stride must be <= window ({window}), got {stride}: a larger stride skips tokens")
    title = optional_title(title)
    wins = strided_windows(len(tokens), window, stride)
    n, rows = len(tokens), len(wins)
    head = 3.2  # room for the tokens, written upright above the grid
    fig, ax = canvas(n + 7.5, rows + head + 1.2, title or f"{n} tokens, window {window}, stride {stride}: "
                     f"{rows} forward passes", scale=0.42)
    for i, tok in enumerate(tokens):
        ax.text(i + 0.5, rows + 1.2 + 0.1, _label(tok), rotation=90, ha="center", va="bottom", fontsize=7,
                family="monospace")
    colours, labels = [], []
    for w, (begin, end, trg_len) in enumerate(wins):
        row = [PALETTE["idle"]] * n
        for t in range(begin, end):
            row[t] = PALETTE["new"] if t >= end - trg_len else PALETTE["stored"]
        label = [""] * n
        if w == 0:
            row[0], label[0] = PALETTE["empty"], "×"
        colours.append(row)
        labels.append(label)
        ax.text(n + 0.3, rows - w - 0.5 + 1.2, f"({begin}, {end}, {trg_len})", va="center", fontsize=8,
                family="monospace")
    cells(ax, colours, x=0, y=1.2, labels=labels, fontsize=8)
    scored = sum(t for _, _, t in wins) - 1
    ax.text(0, 0.45, f"every token but the first is scored once ({scored} predictions for {n} tokens); "
            f"{sum(e - b for b, e, _ in wins)} tokens run through the model", fontsize=8, va="center")
    legend(ax, {"scored (new in this window)": PALETTE["new"], "context only": PALETTE["stored"],
                "first token: nothing predicts it": PALETTE["empty"]}, x=n + 0.3, y=rows + head - 0.2, size=0.45,
           fontsize=7)
    return fig


MAX_CLASSES = 12


def confusion_grid(cm, labels: list[str], title: str | None = None):
    """The confusion matrix ``cm`` (an integer tensor (K, K) of counts, rows the true class, columns the
    predicted one, 2 <= K <= 12) of the classes named by ``labels`` (K str).

    One cell per count: the diagonal's correct answers, the errors off it, and the empty pairs. Each row ends
    with the class's support (its row sum), recall and F1, each column with how often the class was predicted
    (its column sum) and its precision; a 0/0 ratio is written as 0, as ``zero_division=0``. Returns the Figure.
    """
    import torch

    cm = validate.tensor("cm", cm, ndim=2)
    if cm.is_floating_point() or cm.is_complex() or cm.dtype == torch.bool:
        raise TypeError(f"cm must be an integer tensor of counts, got dtype {cm.dtype}")
    K = cm.shape[0]
    if cm.shape != (K, K) or not 2 <= K <= MAX_CLASSES:
        raise ValueError(f"cm must be square (K, K) with 2 <= K <= {MAX_CLASSES}, got shape {tuple(cm.shape)}")
    if bool((cm < 0).any()):
        raise ValueError("cm holds negative values: a confusion matrix counts examples")
    labels = validate.strings("labels", labels, "class names (str)")
    if len(labels) != K:
        raise ValueError(f"labels must name the {K} classes of cm, got {len(labels)} names")
    title = optional_title(title)
    counts = cm.long().tolist()
    support = [sum(row) for row in counts]
    predicted = [sum(row[j] for row in counts) for j in range(K)]
    total, correct = sum(support), sum(counts[k][k] for k in range(K))

    def ratio(a: int, b: int) -> float:
        return a / b if b else 0.0

    left, head, below = 4.4, 3.2, 2.6  # room for the row names, the column names, the column sums
    width, height = left + K + 7, below + K + head
    fig, ax = canvas(width, height, title or f"confusion matrix: {correct} of {total} correct "
                     f"(accuracy {ratio(correct, total):.2f})", scale=0.42)
    colours = [[PALETTE["empty"] if counts[i][j] == 0 else PALETTE["kept"] if i == j else PALETTE["dropped"]
                for j in range(K)] for i in range(K)]
    cells(ax, colours, x=left, y=below, labels=[[str(v) for v in row] for row in counts], fontsize=8)
    for k, name in enumerate(labels):
        y = below + K - k - 0.5
        ax.text(left - 0.2, y, _label(name, 12), ha="right", va="center", fontsize=8)
        ax.text(left + k + 0.5, below + K + 0.15, _label(name, 12), rotation=90, ha="center", va="bottom", fontsize=8)
        f1 = ratio(2 * counts[k][k], support[k] + predicted[k])
        ax.text(left + K + 0.3, y, f"{support[k]:4}  R {ratio(counts[k][k], support[k]):.2f}  F1 {f1:.2f}",
                va="center", fontsize=8, family="monospace")
        ax.text(left + k + 0.5, below - 0.45, str(predicted[k]), ha="center", va="center", fontsize=8,
                family="monospace")
        ax.text(left + k + 0.5, below - 1.5, f"{ratio(counts[k][k], predicted[k]):.2f}", ha="center", va="center",
                fontsize=7, family="monospace")
    ax.text(left + K + 0.3, below + K + 0.4, "support, recall, F1", fontsize=8, va="bottom")
    ax.text(left - 0.2, below - 0.45, "predicted", ha="right", va="center", fontsize=8)
    ax.text(left - 0.2, below - 1.5, "precision", ha="right", va="center", fontsize=8)
    ax.text(left - 0.2, below + K + 0.4, "true ↓  predicted →", ha="right", fontsize=8, va="bottom")
    legend(ax, {"correct (diagonal)": PALETTE["kept"], "error": PALETTE["dropped"], "no example": PALETTE["empty"]},
           x=left + K + 0.3, y=below - 0.6, size=0.45, fontsize=7)
    return fig


def _grams(tokens: list[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def bleu_matches(hyp: list[str], refs: list[list[str]], max_n: int = 4, title: str | None = None):
    """BLEU's clipped matches of the tokenised hypothesis ``hyp`` (1 to 40 tokens) against ``refs`` (a list of
    token lists, 1 to 4 of them), for the orders 1 … ``max_n`` (1 to 6).

    The references are drawn on top, then the hypothesis, then one row per order n with one cell per n-gram
    of ``hyp`` (at the position where it starts): matched, matched but over its clip (its count in the
    reference that has it most; the later copies are the ones cut), or in no reference. Each row ends with
    ``p_n = matched / total``, the numbers of ``llmlab.metrics.text.modified_precision``. Returns the Figure.
    """
    hyp = _tokens("hyp", hyp, maximum=40)
    if not isinstance(refs, (list, tuple)):
        raise TypeError(f"refs must be a list of token lists, got {type(refs).__name__}")
    if not 1 <= len(refs) <= 4:
        raise ValueError(f"refs must hold 1 to 4 references, got {len(refs)}")
    refs = [_tokens(f"refs[{i}]", r, maximum=40) for i, r in enumerate(refs)]
    max_n = validate.integer("max_n", max_n, 1, 6)
    title = optional_title(title)
    w = 1.9  # one token's width
    width = w * max(len(hyp), *(len(r) for r in refs)) + 9
    height = 1.2 * (len(refs) + 1 + max_n) + 2.6
    fig, ax = canvas(width, height, title or "BLEU's clipped n-gram matches", scale=0.38)
    y = height - 1.6
    for k, ref in enumerate(refs):
        ax.text(0, y + 0.4, f"reference {k + 1}" if len(refs) > 1 else "reference", fontsize=8, va="center")
        for i, tok in enumerate(ref):
            box(ax, 4.2 + i * w, y, w - 0.1, 0.8, _label(tok, 9), color=PALETTE["stored"], fontsize=7, rounded=False)
        y -= 1.2
    ax.text(0, y + 0.4, "hypothesis", fontsize=8, va="center", weight="bold")
    for i, tok in enumerate(hyp):
        box(ax, 4.2 + i * w, y, w - 0.1, 0.8, _label(tok, 9), color=PALETTE["compute"], fontsize=7, rounded=False)
    for n in range(1, max_n + 1):
        y -= 1.2
        clip = Counter()
        for ref in refs:
            clip |= Counter(_grams(ref, n))  # | keeps the larger count: the reference that has it most
        seen, matched = Counter(), 0
        grams = _grams(hyp, n)
        for i, g in enumerate(grams):
            seen[g] += 1
            if seen[g] <= clip[g]:
                colour, matched = PALETTE["kept"], matched + 1
            else:
                colour = PALETTE["dropped"] if clip[g] else PALETTE["empty"]
            box(ax, 4.2 + i * w, y, w - 0.1, 0.8, "", color=colour, rounded=False,
                edge="#999999")
        ax.text(0, y + 0.4, f"{n}-grams", fontsize=8, va="center")
        ax.text(4.2 + len(hyp) * w + 0.3, y + 0.4, f"p{n} = {matched}/{len(grams)}" if grams else f"p{n}: no {n}-gram",
                fontsize=8, va="center", family="monospace")
    legend(ax, {"n-gram found in a reference": PALETTE["kept"], "found, but over its clip": PALETTE["dropped"],
                "in no reference": PALETTE["empty"]}, x=4.2, y=y - 1.0, size=0.5, fontsize=7)
    ax.set_ylim(y - 2.4 if y - 2.4 < 0 else 0, height)
    return fig
