"""Byte-level BPE as pictures (notebook 03): the merges a real tokenizer applies to one word, step by step.

``merge_ladder(word, tokenizer)`` starts from the word's byte tokens and replays the tokenizer's own merge
table (lowest rank first, as encoding does), one row per merge: each token is a box as wide as its bytes,
so the rows line up like the rungs of a ladder, and the token each merge made is coloured.
"""
from __future__ import annotations

from llmlab import validate
from llmlab.diagrams.draw import PALETTE, box, canvas, legend

MAX_BYTES = 32  # a wider word would not fit a readable figure


_SHOW = {" ": "␣", "\n": "↵", "\t": "⇥"}


def _label(token: bytes) -> str:
    """A token's bytes as text: whole UTF-8 characters as themselves (a space as '␣', a newline as '↵'), each
    byte of a character that the token cuts in hex ("e5"), hex and text separated by spaces."""
    parts: list[str] = []  # text runs and hex bytes, in order
    i, run = 0, ""
    while i < len(token):
        for j in range(min(len(token), i + 4), i, -1):
            try:
                ch = token[i:j].decode("utf-8")
            except UnicodeDecodeError:
                continue
            run += "".join(_SHOW.get(c, c if c.isprintable() else f"{ord(c):02x}") for c in ch)
            i = j
            break
        else:
            parts += [run, f"{token[i]:02x}"] if run else [f"{token[i]:02x}"]
            run, i = "", i + 1
    return " ".join(parts + [run] if run else parts)


def _whole_characters(token: bytes) -> bool:
    try:
        token.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def merge_steps(ids: list[int], ranks: dict, merged: dict
                ) -> list[tuple[list[int], tuple[int, int] | None, int | None]]:
    """The rows of the ladder: ``[(ids, pair, rank), ...]``, first the byte ids (pair and rank None), then the
    ids after each merge, with the pair merged and its rank (the lowest rank among the adjacent pairs, as
    ``bpe.apply_merges`` does). ``ids``: one pre-token's byte ids; ``ranks``/``merged``: pair -> rank / new id."""
    from llmlab.tokenization import bpe

    ids = validate.token_ids("ids", ids)
    for name, table in (("ranks", ranks), ("merged", merged)):
        if not isinstance(table, dict):
            raise TypeError(f"{name} must be a dict of pair -> int, got {type(table).__name__}")
        if not table:
            raise ValueError(f"{name} is empty: a ladder needs the tokenizer's merge table")
    rows: list[tuple[list[int], tuple[int, int] | None, int | None]] = [(list(ids), None, None)]
    while len(ids) > 1:
        known = [p for p in zip(ids, ids[1:]) if p in ranks]
        if not known:
            break
        pair = min(known, key=ranks.__getitem__)
        if pair not in merged:
            raise ValueError(f"merged has no entry for the pair {pair} of ranks: every ranked pair needs its merged id")
        ids = bpe.merge_pair(ids, pair, merged[pair])
        rows.append((ids, pair, ranks[pair]))  # each merge shortens ids: at most len(ids) - 1 rows follow
    return rows


def merge_ladder(word: str, tokenizer, title: str | None = None):
    """The merges ``tokenizer`` (a ``ByteBPE``: SmolLM2's, or one you trained) applies to ``word``, one row each.

    word: one pre-token (a str the tokenizer's regex does not cut, such as " tokenization" with its leading
        space), at most 32 UTF-8 bytes. Row 0 holds its byte tokens; each later row the tokens after the
        next merge, the lowest-rank pair first; the new token is coloured, and the merge's rank is written on
        the right.
    title: None for one that says how many bytes became how many tokens.
    Returns the matplotlib Figure.
    """
    from llmlab.tokenization import bpe

    if not isinstance(word, str):
        raise TypeError(f"word must be a str, got {type(word).__name__}")
    if not isinstance(tokenizer, bpe.ByteBPE):
        raise TypeError("tokenizer must be a llmlab ByteBPE (e.g. load_smollm2_tokenizer()), "
                        f"got {type(tokenizer).__name__}")
    if title is not None and not isinstance(title, str):
        raise TypeError(f"title must be a str or None, got {type(title).__name__}")
    if title == "":
        raise ValueError("title is empty: pass None for the default title")
    data = word.encode("utf-8", errors="surrogatepass")
    if not data:
        raise ValueError("word is empty: give one pre-token, such as ' tokenization'")
    if len(data) > MAX_BYTES:
        raise ValueError(f"word has {len(data)} UTF-8 bytes: at most {MAX_BYTES} fit a readable ladder")
    pieces = bpe.pretokenize(word, tokenizer.pattern)
    if pieces != [word]:
        raise ValueError(f"word must be one pre-token (BPE never merges across pre-tokens), but the tokenizer's "
                         f"regex cuts {word!r} into {pieces}")
    ids = [tokenizer.byte_ids[b] for b in data]
    if None in ids:
        raise ValueError(f"byte 0x{data[ids.index(None)]:02X} of word has no token in this tokenizer's vocabulary")
    rows = merge_steps(ids, tokenizer.ranks, tokenizer.merged)
    vocab = tokenizer.vocab

    n, row_h, gap, note_w = len(data), 0.8, 0.35, 7.5
    width, height = 1.6 + n + note_w, len(rows) * (row_h + gap) + 2.8
    final = rows[-1][0]
    title = title or (f"BPE on {word!r}: {n} bytes → {len(final)} token{'s' * (len(final) != 1)} "
                      f"in {len(rows) - 1} merges, lowest rank first")
    fig, ax = canvas(width, height, title=title, scale=0.42)
    for r, (row_ids, pair, rank) in enumerate(rows):
        y = height - 1.0 - (r + 1) * (row_h + gap)
        new_id = tokenizer.merged[pair] if pair is not None else None
        ax.text(1.4, y + row_h / 2, "bytes" if r == 0 else f"{r}", ha="right", va="center", fontsize=8)
        x = 1.6
        for i in row_ids:
            w = len(vocab[i])
            colour = PALETTE["new"] if i == new_id else (PALETTE["kept"] if r == len(rows) - 1 else PALETTE["stored"])
            box(ax, x + 0.04, y, w - 0.08, row_h, _label(vocab[i]), color=colour, fontsize=8)
            x += w
        if pair is not None:
            a, b = (_label(vocab[t]) for t in pair)
            ax.text(1.8 + n, y + row_h / 2, f"rank {rank:,}: {a} + {b}", va="center", fontsize=8)
    legend(ax, {"made by this row's merge": PALETTE["new"], "carried down": PALETTE["stored"],
                "the final tokens": PALETTE["kept"]}, x=1.6, y=1.3, size=0.35, fontsize=7)
    if any(not _whole_characters(vocab[i]) for row_ids, _, _ in rows for i in row_ids):
        ax.text(1.6 + n, 1.3, "e5, a4, ...: bytes (hex) of a character\nthat is split across tokens", fontsize=7,
                va="top", ha="right")
    return fig
