"""Checks for notebook 00_start_here (warm-up exercises)."""
from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Mapping

from llmlab.grading.core import Case, Check, Draw, exercise

TEXTS = ["hello", "你好，世界", "naïve café", "🙂 ok", "大语言模型 LLM", ""]
# one character of each UTF-8 length, at and around the boundaries (1: < U+0080, 2: < U+0800, 3: < U+10000)
_BY_LENGTH = ["a~\x7f", "éñ\x80\u07ff\u05d0", "\u0800नไ\uffef，", "🙂𠀀\U00010000\U0010ffff"]


def _counts_reference(text: str) -> tuple[int, int]:
    return len(text), len(text.encode("utf-8"))


def _counts_cases(d: Draw) -> list[Case]:
    chars = list("".join(_BY_LENGTH))
    mixed = "".join(d.sample(chars, len(chars)) + [d.choice(chars) for _ in range(d.int(0, 20))])
    return [Case("characters of every UTF-8 length, boundaries included", mixed,
                 hint="UTF-8 takes 1 byte below U+0080, 2 below U+0800, 3 below U+10000, 4 above: "
                      "len(text.encode('utf-8')) gets it right"),
            Case("a decomposed accent (e + U+0301)", unicodedata.normalize("NFD", "Crème brûlée, naïve café " * d.int(1, 3)),
                 hint="a character is a code point, as len(text) counts it: do not normalise the text first"),
            Case("Hindi, Thai and a family emoji", "हिन्दी ภาษาไทย 👨‍👩‍👧" * d.int(1, 3)),
            Case("whitespace at both ends", " \t" * d.int(1, 3) + "ok 好\n"),
            Case("one 4-byte character", d.choice("🙂😀𠀀")), Case("an empty string", "")]


@exercise("00.char_and_byte_counts", reference=_counts_reference, cases=_counts_cases)
def check_char_and_byte_counts(c: Check) -> None:
    for text in TEXTS:
        out = c.call(text)
        c.expect(isinstance(out, tuple) and len(out) == 2 and all(isinstance(v, int) for v in out),
                 f"for {text!r} you returned {out!r}, expected a tuple of two ints",
                 "return both numbers: `return n_chars, n_bytes`")
        want = _counts_reference(text)
        what = f"for {text!r} you returned {out}, expected {want}"
        c.diagnose(out, {"the order is (characters, bytes)": want[::-1],
                         "you counted characters twice: bytes are what text.encode('utf-8') gives": (len(text),) * 2,
                         "that is UTF-16: count UTF-8 bytes": (len(text), len(text.encode("utf-16-le")))}, what, correct=want)
        c.expect(out == want, what, "characters: len(text); bytes: the length of its UTF-8 encoding")


def _normalize_reference(counts: Mapping) -> dict:
    total = sum(counts.values())
    return {k: v / total for k, v in counts.items()}


def _normalize_cases(d: Draw) -> list[Case]:
    words = d.sample(["the", "a", "模型", "token", "词元", "of", "🙂", "λ", "and", "to", "语言", "in", "is"], 10)
    repeated = {w: d.choice([1, 2, 3]) for w in words}
    return [Case("several keys with the same count", repeated),
            Case("a key whose count is 0", {**{w: d.int(1, 50) for w in words[:5]}, words[5]: 0},
                 hint="keep every key, also one whose count is 0 (its probability is 0.0)"),
            Case("large counts, a Counter", Counter({w: d.int(10**9, 10**12) for w in words})),
            Case("a single key", {d.choice(words): d.int(1, 9)})]


@exercise("00.normalize", reference=_normalize_reference, cases=_normalize_cases)
def check_normalize(c: Check) -> None:
    counts = {"the": 6, "model": 3, "模型": 2, "token": 1}
    out = c.call(counts)
    c.expect(isinstance(out, Mapping), f"you returned {type(out).__name__}, expected a dict",
             "build a new dict {key: probability}")
    c.expect(set(out) == set(counts), f"keys {sorted(out)} differ from the input's {sorted(counts)}",
             "keep every key of the input, and only those")
    got = {k: c.number(out[k], f"p({k!r})") for k in counts}
    want = _normalize_reference(counts)
    c.diagnose(got, {"divide each count by the total count (you returned the counts unchanged)": counts,
                     "`//` is integer division: use `/`": {k: 0 for k in counts},
                     "divide by the total of the counts, not by the number of keys": {k: v / 4 for k, v in counts.items()}},
               f"your values sum to {sum(got.values()):g}, not 1")
    c.expect(abs(sum(got.values()) - 1) < 1e-9, f"your values sum to {sum(got.values()):g}, not 1",
             "divide each count by the sum of all counts")
    for k in counts:
        c.expect(abs(got[k] - want[k]) < 1e-12, f"p({k!r}) = {got[k]}, expected {want[k]}", "p(key) = count(key) / total")
