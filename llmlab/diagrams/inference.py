"""Fast inference as pictures (notebook 08): the KV cache of a real generation filling slot by slot, and the
rounds of a real speculative decoding run, what each draft proposed and what the model kept.

* ``kv_cache_filling(lengths, tokens, capacity)``: one row per forward pass (the prefill, then each decode
  step), one column per slot of the preallocated cache, each slot coloured by when it was written: before
  this pass, by this pass, not yet. A length that goes down (speculative decoding rolls the cache back)
  shows the slots given up.
* ``speculative_rounds(drafts, output, decode)``: one row per round, the drafted tokens coloured accepted
  or rejected, then the target's own token (the correction, or the bonus when every guess passed).
"""
from __future__ import annotations

import numbers

from llmlab import validate
from llmlab.diagrams.draw import PALETTE, box, canvas, cells, legend, optional_title

MAX_STEPS, MAX_SLOTS, MAX_ROUNDS, MAX_GAMMA = 24, 48, 16, 8

_BEFORE, _NOW, _EMPTY, _ROLLED = "written before this pass", "written by this pass", "empty (allocated)", \
    "rolled back (written over later)"
_KV_COLOURS = {_BEFORE: PALETTE["stored"], _NOW: PALETTE["new"], _EMPTY: PALETTE["empty"], _ROLLED: PALETTE["dropped"]}
_ACCEPTED, _REJECTED, _UNCHECKED, _TARGET = "draft accepted", "draft rejected", "draft discarded (after a rejection)", \
    "the model's own token"
_SPEC_COLOURS = {_ACCEPTED: PALETTE["kept"], _REJECTED: PALETTE["dropped"], _UNCHECKED: PALETTE["empty"],
                 _TARGET: PALETTE["new"]}


def _short(token: str, n: int = 8) -> str:
    token = token.replace("\n", "↵").replace("\t", "⇥")
    if not token.strip():
        token = token.replace(" ", "␣")  # a token of spaces (indentation) stays visible
    return token if len(token) <= n else token[: n - 1] + "…"


def _int_list(name: str, value, minimum: int = 0) -> list[int]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise TypeError(f"{name} must be a list of ints, got {type(value).__name__}")
    out = []
    for i, v in enumerate(value):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise TypeError(f"{name} must hold ints, found {type(v).__name__} {v!r} at {i}")
        if v < minimum:
            raise ValueError(f"{name}[{i}] must be >= {minimum}, got {v}")
        out.append(int(v))
    return out


def kv_cache_filling(lengths, tokens=None, capacity: int | None = None, slot_bytes: int | None = None,
                     title: str | None = None):
    """The preallocated KV cache of a real generation, pass by pass.

    lengths: the cache's filled length (``Engine.length``, ``KVCache.length``) after each forward pass, in
        order: the prefill first, then one entry per decode step (at most 24 passes, at most 48 slots). Row r
        shows the slots: written before pass r, written by pass r (from the previous length up to this one),
        empty, and, when the length went down, rolled back (speculative decoding's rejected guesses).
    tokens: optional strings, the token held in each slot (at least max(lengths) of them), written above
        the columns.
    capacity: the slots allocated (``Engine.max_len``), at least max(lengths); None: the slots drawn.
    slot_bytes: optional bytes of one slot (K and V of every layer and KV head), written in the caption.
    Returns the matplotlib Figure.
    """
    lengths = _int_list("lengths", lengths)
    if not lengths:
        raise ValueError("lengths must hold at least one length (the prefill's)")
    if len(lengths) > MAX_STEPS:
        raise ValueError(f"lengths holds {len(lengths)} passes: at most {MAX_STEPS} fit a readable picture")
    top = max(lengths)
    if top > MAX_SLOTS:
        raise ValueError(f"lengths reach {top} slots: at most {MAX_SLOTS} fit a readable picture")
    if tokens is not None:
        tokens = validate.strings("tokens", tokens, "token strings")
        if len(tokens) < top:
            raise ValueError(f"tokens must hold a string for each of the {top} filled slots, got {len(tokens)}")
    if capacity is not None:
        capacity = validate.integer("capacity", capacity, minimum=max(top, 1), maximum=validate.MAX_SIZE)
    if slot_bytes is not None:
        slot_bytes = validate.size("slot_bytes", slot_bytes)
    optional_title(title)

    shown = min(top + 2, capacity) if capacity is not None else top + 2
    kinds, previous = [], 0
    for n in lengths:
        kinds.append([_BEFORE if s < min(n, previous) else _NOW if previous <= s < n else
                      _ROLLED if n <= s < previous else _EMPTY for s in range(shown)])
        previous = n
    order = [_BEFORE, _NOW, _EMPTY, _ROLLED]
    used = [k for k in order if any(k in row for row in kinds)]

    left, head = 4.2, (2.6 if tokens else 1.0)
    rows = len(lengths)
    bottom = 2.4 + 0.5 * len(used)
    width = left + shown + (3.6 if capacity is not None and capacity > shown else 2.2)
    height = bottom + rows + head + 0.6
    title = title or "The KV cache of a real generation: one slot per token, written once"
    fig, ax = canvas(max(width, 12.0), height, title=title, scale=0.36)
    cells(ax, [[_KV_COLOURS[k] for k in row] for row in kinds], x=left, y=bottom, size=1.0)
    previous = 0
    for r, n in enumerate(lengths):
        y = bottom + rows - 1 - r + 0.5
        name = f"prefill ({n} tokens)" if r == 0 else f"decode step {r}"
        ax.text(left - 0.2, y, name, ha="right", va="center", fontsize=7)
        ax.text(left + shown + 0.2, y, f"length {n}", ha="left", va="center", fontsize=6.5, color="#555555")
        previous = n
    for s in range(shown):
        label = _short(tokens[s]) if tokens is not None and s < len(tokens) else ""
        if label:
            ax.text(left + s + 0.5, bottom + rows + 0.15, label, ha="center", va="bottom", fontsize=6.5, rotation=90)
    ax.text(left, bottom - 0.25, "slot 0", ha="left", va="top", fontsize=6.5, color="#555555")
    if capacity is not None and capacity > shown:
        ax.text(left + shown + 2.2, bottom + rows / 2, f"… up to\nslot {capacity - 1}", ha="left", va="center",
                fontsize=7, color="#555555")
    caption = "each cell: the keys and values of one token in every layer (the cache is (L, B, Hkv, slots, D), twice)"
    if slot_bytes:
        caption += f",\n{slot_bytes:,} bytes per slot: {slot_bytes * top / 2**20:.2f} MiB for these {top} tokens"
    ax.text(left, bottom - 0.9, caption, ha="left", va="top", fontsize=7)
    legend(ax, {k: _KV_COLOURS[k] for k in used}, x=0.3, y=bottom - 2.4, size=0.35, fontsize=7)
    return fig


def replay_rounds(drafts, output) -> list[tuple[list[int], int, int]]:
    """The rounds of a speculative run, from what each round drafted and the tokens that came out.

    drafts: one list of drafted ids per round, in order (what the draft proposed each round, [] when nothing);
        at least one round.
    output: the new tokens the run returned, at least one. A round keeps the longest prefix of its draft that the output
        continues with, then the output's next token (the model's own). Exact for greedy decoding and for
        a deterministic draft (prompt lookup), whose rejected guess the residual never draws again.
    Returns [(draft, n_accepted, own token)] per round, for the rounds that the output covers.
    """
    if isinstance(drafts, str) or not isinstance(drafts, (list, tuple)):
        raise TypeError(f"drafts must be a list of lists of token ids, one per round, got {type(drafts).__name__}")
    drafts = [_int_list(f"drafts[{i}]", d) for i, d in enumerate(drafts)]
    if not drafts:
        raise ValueError("drafts must hold at least one round (a round that drafted nothing is an empty list)")
    output = _int_list("output", output)
    if not output:
        raise ValueError("output must hold at least one token: the run's new tokens")
    rounds, pos = [], 0
    for d in drafts:
        if pos >= len(output):
            break
        n = 0
        while n < len(d) and pos + n < len(output) and d[n] == output[pos + n]:
            n += 1
        if pos + n >= len(output):  # the output was cut off (max_new_tokens) inside this round
            rounds.append((d, n, -1))
            break
        rounds.append((d, n, output[pos + n]))
        pos += n + 1
    return rounds


def speculative_rounds(drafts, output, decode=None, max_rounds: int = 16, title: str | None = None):
    """The rounds of a real speculative decoding run, one row each.

    drafts: one list of drafted ids per round, in order (up to 8 ids each); output: the new tokens the run
        returned (see ``replay_rounds``, which splits them into rounds). Each row shows the drafted tokens,
        accepted (the model agreed), rejected (the first disagreement) or discarded (after it), then the
        model's own token: the correction after a rejection, the bonus when every guess passed.
    decode: optional function from a list of ids to text (``tokenizer.decode``) to label the tokens; None:
        the ids. max_rounds: the first rounds drawn (1 to 16). A last round cut short by ``max_new_tokens``
        shows only the guesses the output kept.
    Returns the matplotlib Figure.
    """
    rounds = replay_rounds(drafts, output)
    if decode is not None and not callable(decode):
        raise TypeError(f"decode must be a function from token ids to text (tokenizer.decode), or None, "
                        f"got {type(decode).__name__}")
    max_rounds = validate.integer("max_rounds", max_rounds, 1, MAX_ROUNDS)
    if any(len(d) > MAX_GAMMA for d, _, _ in rounds[:max_rounds]):
        raise ValueError(f"drafts hold more than {MAX_GAMMA} tokens in a round: too wide for a readable picture")
    optional_title(title)

    def label(t: int) -> str:
        if t < 0:
            return "(cut)"
        return repr(_short(decode([t]), 7))[1:-1] if decode is not None else str(t)

    shown = rounds[:max_rounds]
    gamma = max([len(d) for d, _, _ in shown] + [1])
    w = 2.0  # one token cell, wide enough for a short word
    left, rows = 2.6, len(shown)
    more = len(rounds) > rows
    bottom = 3.4 + 0.8 * more
    width = left + (gamma + 1) * w + 1.4 + 3.4
    height = bottom + rows * 1.2 + 1.6
    made = sum(n + (t >= 0) for _, n, t in rounds)
    title = title or f"Speculative decoding: {made} tokens in {len(rounds)} passes of the model"
    fig, ax = canvas(width, height, title=title, scale=0.42)
    ax.text(left, bottom + rows * 1.2 + 0.4, "drafted tokens →", fontsize=7, color="#555555")
    ax.text(left + gamma * w + 1.4, bottom + rows * 1.2 + 0.4, "model's token", fontsize=7, color="#555555")
    for r, (d, n, own) in enumerate(shown):
        y = bottom + (rows - 1 - r) * 1.2
        ax.text(left - 0.2, y + 0.5, f"round {r + 1}", ha="right", va="center", fontsize=7)
        if not d:
            ax.text(left + 0.1, y + 0.5, "no match: nothing drafted", va="center", fontsize=7, color="#555555")
        for i, t in enumerate(d):
            kind = _ACCEPTED if i < n else _REJECTED if i == n else _UNCHECKED
            box(ax, left + i * w, y, w - 0.1, 1.0, label(t), color=_SPEC_COLOURS[kind], fontsize=7, rounded=False)
        x = left + gamma * w + 1.4
        ax.annotate("", xy=(x - 0.1, y + 0.5), xytext=(left + gamma * w + 0.1, y + 0.5),
                    arrowprops=dict(arrowstyle="-|>", color="#444444", lw=0.8))
        box(ax, x, y, w - 0.1, 1.0, label(own), color=_SPEC_COLOURS[_TARGET] if own >= 0 else PALETTE["empty"],
            fontsize=7, rounded=False)
        gained = n + (own >= 0)
        why = "cut: max_new_tokens" if own < 0 else "bonus" if n == len(d) and d else "correction" if d else \
            "plain step"
        ax.text(x + w + 0.1, y + 0.5, f"+{gained} ({why})", va="center", fontsize=7)
    if more:
        ax.text(left, bottom - 0.3, f"… {len(rounds) - rows} more rounds", va="top", fontsize=7, color="#555555")
    legend(ax, _SPEC_COLOURS, x=0.3, y=bottom - 0.9 - 0.8 * more, size=0.35, fontsize=7)
    return fig
