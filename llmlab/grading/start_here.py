"""Checks for notebook 00_start_here (warm-up exercises)."""
from __future__ import annotations

from collections.abc import Mapping

from llmlab.grading.core import Check

TEXTS = ["hello", "你好，世界", "naïve café", "🙂 ok", "大语言模型 LLM", ""]


def check_char_and_byte_counts(fn) -> None:
    c = Check("00.char_and_byte_counts", fn)
    for text in TEXTS:
        out = c.call(text)
        c.expect(isinstance(out, tuple) and len(out) == 2 and all(isinstance(v, int) for v in out),
                 f"for {text!r} you returned {out!r}, expected a tuple of two ints",
                 "return both numbers: `return n_chars, n_bytes`")
        want = (len(text), len(text.encode("utf-8")))
        if out == want:
            c.passed += 1
            continue
        if out == want[::-1]:
            c.fail(f"for {text!r} you returned {out}, expected {want}", "the order is (characters, bytes)")
        if out[1] == len(text):
            c.fail(f"for {text!r} you returned {out}, expected {want}",
                   "you counted characters twice: bytes are what text.encode('utf-8') gives")
        if out[1] in (len(text.encode("utf-16")), len(text.encode("utf-16-le"))):
            c.fail(f"for {text!r} you returned {out}, expected {want}", "that is UTF-16: count UTF-8 bytes")
        c.fail(f"for {text!r} you returned {out}, expected {want}",
               "characters: len(text); bytes: the length of its UTF-8 encoding")
    c.done()


def check_normalize(fn) -> None:
    c = Check("00.normalize", fn)
    counts = {"the": 6, "model": 3, "模型": 2, "token": 1}
    total = sum(counts.values())
    out = c.call(counts)
    c.expect(isinstance(out, Mapping), f"you returned {type(out).__name__}, expected a dict",
             "build a new dict {key: probability}")
    c.expect(set(out) == set(counts), f"keys {sorted(out)} differ from the input's {sorted(counts)}",
             "keep every key of the input, and only those")
    if all(out[k] == counts[k] for k in counts):
        c.fail("you returned the counts unchanged", "divide each count by the total count")
    if all(out[k] == 0 for k in counts):
        c.fail("every probability is 0", "`//` is integer division: use `/`")
    if all(abs(out[k] - counts[k] / len(counts)) < 1e-12 for k in counts):
        c.fail("your values sum to %g, not 1" % sum(out.values()),
               "divide by the total of the counts, not by the number of keys")
    c.expect(abs(sum(out.values()) - 1) < 1e-9, f"your values sum to {sum(out.values()):g}, not 1",
             "divide each count by the sum of all counts")
    for k in counts:
        c.expect(abs(out[k] - counts[k] / total) < 1e-12, f"p({k!r}) = {out[k]}, expected {counts[k] / total}",
                 "p(key) = count(key) / total")
    one = c.call({"only": 7})
    c.expect(one == {"only": 1.0}, f"{{'only': 7}} gave {one}, expected {{'only': 1.0}}",
             "a single key gets all the probability")
    c.done()
