"""Attention as pictures (notebook 04): which keys each query may see in a real padded batch, and which
key/value head each query head reads under grouped-query attention.

* ``mask_grid(attention_mask, tokens, mask)``: one grid per sequence, queries as rows and keys as columns,
  each cell coloured by what the mask does there and why (a future key, a padding key), with the tokens as
  labels. Given your own ``mask`` it draws that one, and flags the cells it gets wrong.
* ``gqa_heads(n_heads, n_kv_heads, kv_of_head)``: the query heads above, the shared key/value heads below, an
  arrow from each query head to the K/V head it reads (e.g. as your ``repeat_kv`` paired them).
"""
from __future__ import annotations

import numbers

from llmlab import validate
from llmlab.diagrams.draw import PALETTE, arrow, box, canvas, cells, legend

MAX_BATCH, MAX_LEN, MAX_HEADS = 4, 24, 64

# what a cell of the mask grid shows, and its colour
_VISIBLE, _FUTURE, _PADDING = "visible", "hidden: a future key", "hidden: a padding key"
_WRONG_OPEN, _WRONG_SHUT = "visible, but it should be hidden", "hidden, but it should be visible"
_COLOURS = {_VISIBLE: PALETTE["kept"], _FUTURE: PALETTE["empty"], _PADDING: PALETTE["stored"],
            _WRONG_OPEN: PALETTE["dropped"], _WRONG_SHUT: PALETTE["compute"]}


def _check_tokens(tokens, B: int, S: int) -> list[list[str]] | None:
    if tokens is None:
        return None
    if isinstance(tokens, str) or not isinstance(tokens, (list, tuple)):
        raise TypeError(f"tokens must be a list of B lists of S token strings, got {type(tokens).__name__}")
    if len(tokens) != B:
        raise ValueError(f"tokens must hold one list per sequence ({B}), got {len(tokens)}")
    out = []
    for b, row in enumerate(tokens):
        row = validate.strings(f"tokens[{b}]", row, "token strings")
        if len(row) != S:
            raise ValueError(f"tokens[{b}] must hold one string per position ({S}), got {len(row)}")
        out.append(row)
    return out


def _check_mask(mask, B: int, S: int):
    import torch

    if mask is None:
        return None
    validate.tensor("mask", mask)
    if mask.dtype != torch.bool:
        raise TypeError(f"mask must be a bool tensor (True = may attend), got dtype {mask.dtype}")
    shape = tuple(mask.shape)
    if shape not in ((S, S), (B, 1, S, S), (1, 1, S, S)):
        raise ValueError(f"mask must have shape (S, S) = ({S}, {S}) or (B, 1, S, S) = ({B}, 1, {S}, {S}) "
                         f"(B may be 1), got {shape}")
    return mask.expand(B, 1, S, S)[:, 0].cpu()


def _check_title(title) -> None:
    if title is not None and not isinstance(title, str):
        raise TypeError(f"title must be a str or None, got {type(title).__name__}")
    if title == "":
        raise ValueError("title is empty: pass None for the default title")


def _short(token: str, n: int = 9) -> str:
    token = token.replace("\n", "↵")
    return token if len(token) <= n else token[: n - 1] + "…"


def mask_grid(attention_mask, tokens=None, mask=None, title: str | None = None):
    """The causal + padding mask of a batch, one grid per sequence: row i is query i, column j key j.

    attention_mask: (B, S) of 1 (a real token) and 0 (padding), as a tokenizer returns it; B <= 4, S <= 24.
    tokens: optional B lists of S strings, the tokens written along the rows and columns (padding as you
        like, e.g. "<pad>").
    mask: optional bool mask (S, S) or (B, 1, S, S) (B may be 1; True = may attend), e.g. your
        ``causal_mask(S, S) & padding_mask(attention_mask)``; by default llmlab's own. Cells are coloured
        by what the mask does and why: visible, hidden because the key is in the future (j > i), hidden
        because the key is padding; a cell your mask gets wrong is flagged in its own colour. A query that
        sees no key at all is marked: its softmax row is all -inf and must give zero weights.
    Returns the matplotlib Figure.
    """
    import torch

    from llmlab.nn import attention as A

    validate.tensor("attention_mask", attention_mask, ndim=2)
    validate.zero_one_mask("attention_mask", attention_mask)
    B, S = attention_mask.shape
    if B > MAX_BATCH or S > MAX_LEN:
        raise ValueError(f"attention_mask has shape {(B, S)}: at most {MAX_BATCH} sequences of {MAX_LEN} "
                         "positions fit a readable grid")
    tokens = _check_tokens(tokens, B, S)
    given = _check_mask(mask, B, S)
    _check_title(title)

    am = attention_mask.detach().cpu().bool()
    right = (A.causal_mask(S) & A.padding_mask(am))[:, 0]  # (B, S, S)
    shown = right if given is None else given
    future = ~A.causal_mask(S)

    shown_l, right_l, future_l = shown.tolist(), right.tolist(), future.tolist()

    def kind(b: int, i: int, j: int) -> str:
        if shown_l[b][i][j] != right_l[b][i][j]:
            return _WRONG_OPEN if shown_l[b][i][j] else _WRONG_SHUT
        return _VISIBLE if shown_l[b][i][j] else _FUTURE if future_l[i][j] else _PADDING

    kinds = [[[kind(b, i, j) for j in range(S)] for i in range(S)] for b in range(B)]
    order = [_VISIBLE, _FUTURE, _PADDING, _WRONG_OPEN, _WRONG_SHUT]
    used = [k for k in order if any(k in row for grid in kinds for row in grid)]

    margin = 3.2 if tokens else 1.2
    panel = margin + S + 2.2
    bottom = 1.2 + 0.49 * len(used)
    width, height = B * panel + 0.5, S + margin + bottom + 0.8
    title = title or ("Causal + padding mask: which keys each query may attend to" if given is None
                      else "Your mask: which keys each query may attend to")
    fig, ax = canvas(width, height, title=title, scale=0.36)
    for b in range(B):
        x0, y0 = b * panel + margin, bottom
        colours = [[_COLOURS[k] for k in row] for row in kinds[b]]
        cells(ax, colours, x=x0, y=y0, size=1.0)
        for i in range(S):
            y = y0 + S - 1 - i + 0.5
            label = _short(tokens[b][i]) if tokens else str(i)
            ax.text(x0 - 0.15, y, label, ha="right", va="center", fontsize=7)
            if not bool(shown[b, i].any()):
                ax.text(x0 + S + 0.15, y, "◀ no key", ha="left", va="center", fontsize=6.5, color=PALETTE["dropped"])
        for j in range(S):
            label = _short(tokens[b][j]) if tokens else str(j)
            ax.text(x0 + j + 0.5, y0 + S + 0.15, label, ha="center", va="bottom", fontsize=7, rotation=90)
        n_pad = int((~am[b]).sum())
        ax.text(x0 + S / 2, y0 - 0.3, f"sequence {b}: {n_pad} padding position{'s' * (n_pad != 1)}",
                ha="center", va="top", fontsize=8)
        top = y0 + S + (2.2 if tokens else 0.9)
        ax.text(x0, top, "key j →", ha="left", va="bottom", fontsize=7, color="#666666")
        ax.text(x0 - 0.15, top, "query i ↓", ha="right", va="bottom", fontsize=7, color="#666666")
    legend(ax, {k: _COLOURS[k] for k in used}, x=0.3, y=bottom - 1.0, size=0.35, fontsize=7)
    if any(not bool(shown[b, i].any()) for b in range(B) for i in range(S)):
        ax.text(width - 0.3, bottom - 0.9,
                "◀ no key: the row's scores are all -inf;\nits softmax must give zeros, not NaN",
                ha="right", va="top", fontsize=7, color=PALETTE["dropped"])
    return fig


def gqa_heads(n_heads: int, n_kv_heads: int, kv_of_head=None, head_dim: int | None = None,
              title: str | None = None):
    """Grouped-query attention: which key/value head each query head reads.

    n_heads query heads (at most 64) share n_kv_heads K/V heads (a divisor of n_heads), n_rep = n_heads //
    n_kv_heads each. kv_of_head: optional list, the K/V head that each query head actually got (e.g. read off
    your ``repeat_kv``); by default h // n_rep. An arrow that differs from h // n_rep is drawn in red. With
    head_dim, the K/V cache per token and layer is written for these heads and for full multi-head attention.
    Returns the matplotlib Figure.
    """
    n_heads = validate.integer("n_heads", n_heads, 1, MAX_HEADS)
    n_kv_heads = validate.divisor("n_kv_heads", n_kv_heads, of=n_heads, what="n_heads")
    n_rep = n_heads // n_kv_heads
    if kv_of_head is None:
        kv_of_head = [h // n_rep for h in range(n_heads)]
    if isinstance(kv_of_head, str) or not isinstance(kv_of_head, (list, tuple)):
        raise TypeError("kv_of_head must be a list of ints (one K/V head per query head), "
                        f"got {type(kv_of_head).__name__}")
    if len(kv_of_head) != n_heads:
        raise ValueError(f"kv_of_head must hold one K/V head per query head ({n_heads}), got {len(kv_of_head)}")
    for h, g in enumerate(kv_of_head):
        if isinstance(g, bool) or not isinstance(g, numbers.Integral):
            raise TypeError(f"kv_of_head must hold ints, found {type(g).__name__} {g!r} at {h}")
        if not 0 <= g < n_kv_heads:
            raise ValueError(f"kv_of_head[{h}] = {g} is not a K/V head: it must be in [0, {n_kv_heads})")
    if head_dim is not None:
        head_dim = validate.size("head_dim", head_dim)
    _check_title(title)

    w, gap = 1.2, 0.25
    width = max(n_heads * (w + gap) + 2.6, 14.0)
    height = 7.0 if head_dim else 6.0
    kind = "multi-query" if n_kv_heads == 1 else "multi-head" if n_kv_heads == n_heads else "grouped-query"
    title = title or f"{kind} attention: {n_heads} query heads share {n_kv_heads} key/value head" \
                     f"{'s' * (n_kv_heads != 1)}, {n_rep} each"
    fig, ax = canvas(width, height, title=title, scale=0.5)
    left = max(2.2, (width - n_heads * (w + gap) + gap) / 2)
    q_y, kv_y = height - 2.0, height - 5.0
    q_mid = [left + h * (w + gap) + w / 2 for h in range(n_heads)]
    kv_mid = [sum(q_mid[g * n_rep:(g + 1) * n_rep]) / n_rep for g in range(n_kv_heads)]
    kv_w = max(w, n_rep * (w + gap) - gap)
    for g in range(n_kv_heads):
        box(ax, kv_mid[g] - kv_w / 2, kv_y, kv_w, 1.0, f"K/V head {g}", color=PALETTE["stored"], fontsize=8)
    wrong = 0
    for h in range(n_heads):
        box(ax, q_mid[h] - w / 2, q_y, w, 1.0, f"q{h}", color=PALETTE["compute"], fontsize=8)
        g = kv_of_head[h]
        bad = g != h // n_rep
        wrong += bad
        arrow(ax, (q_mid[h], q_y), (kv_mid[g] + (q_mid[h] - kv_mid[h // n_rep]) * 0.3, kv_y + 1.0),
              color=PALETTE["dropped"] if bad else "#555555")
    ax.text(0.3, q_y + 0.5, "query\nheads", va="center", fontsize=8)
    ax.text(0.3, kv_y + 0.5, "cached\nK/V", va="center", fontsize=8)
    lines = []
    if wrong:
        lines.append(f"{wrong} query head{'s' * (wrong != 1)} read the wrong K/V head (red): "
                     f"query head h must read K/V head h // {n_rep}")
    if head_dim:
        lines.append(f"K/V cache per token and layer: 2 × {n_kv_heads} × {head_dim} = "
                     f"{2 * n_kv_heads * head_dim:,} numbers (with {n_heads} K/V heads: {2 * n_heads * head_dim:,})")
    for k, line in enumerate(lines):
        ax.text(width / 2, kv_y - 0.6 - 0.7 * k, line, ha="center", va="top", fontsize=8,
                color=PALETTE["dropped"] if wrong and k == 0 else PALETTE["text"])
    return fig
