"""Corpora the course trains and evaluates on, all available offline.

English: Python's own reference documentation, ``pydoc_data.topics`` (79 topics, ~465K characters),
installed with every CPython. Its text differs between Python versions, so nothing here stores
numbers measured on it: tests compare two implementations on the same text.
"""
from __future__ import annotations

import os
import re
from typing import Literal

Split = Literal["train", "val", "all"]

# One topic in VAL_EVERY (in sorted order, from VAL_OFFSET) is held out: whole topics, so validation
# text is about subjects the model did not see, the honest kind of held-out set. This choice holds
# out 10 of 79 topics, about 10% of the characters.
VAL_EVERY = 8
VAL_OFFSET = 2


def pydoc_topics() -> dict[str, str]:
    """All pydoc topics as ``{name: text}``, sorted by name."""
    from pydoc_data.topics import topics

    return {name: topics[name] for name in sorted(topics)}


def pydoc_text(split: Split = "all") -> str:
    """The pydoc corpus as one string; ``split`` selects the train or validation topics.

    Topics are joined with a blank line. The split is by topic: validation holds every
    ``VAL_EVERY``-th topic in sorted order (10 of 79, ~10% of the text), train the rest.
    """
    if split not in ("train", "val", "all"):
        raise ValueError(f"split must be 'train', 'val' or 'all', got {split!r}")
    topics = pydoc_topics()
    keep = [
        text
        for i, text in enumerate(topics.values())
        if split == "all" or (i % VAL_EVERY == VAL_OFFSET) == (split == "val")
    ]
    return "\n\n".join(keep)


def pydoc_bytes(split: Split = "all") -> list[int]:
    """``pydoc_text(split)`` as UTF-8 byte values (0..255), the tokens of a byte-level model."""
    return list(pydoc_text(split).encode("utf-8"))


# Chinese: Debian's fortunes-zh package (`apt-get install fortunes-zh`), modern Chinese quotes and
# notes, ~5,000 entries. Read from where it is installed, like the pydoc corpus.
FORTUNES_ZH = "/usr/share/games/fortunes/chinese"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_SENTENCE_END = re.compile(r"(?<=[。！？!?])")
_HAN = re.compile(r"[\u4e00-\u9fff]")


def chinese_sentences(path: str = FORTUNES_ZH, min_chars: int = 4) -> list[str]:
    """Sentences of the fortunes-zh quotes, in file order, de-duplicated.

    Entries are separated by ``%`` lines. Colour codes and attribution lines (``-- author``) are
    dropped; a paragraph's wrapped lines are joined (Chinese wraps without spaces), and paragraphs
    are split after 。！？. Only sentences with at least ``min_chars`` Han characters are kept.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} not found: install Debian's fortunes-zh (apt-get install fortunes-zh)")
    with open(path, encoding="utf-8") as f:
        text = _ANSI.sub("", f.read()).replace("\x1b", "")
    seen, out = set(), []
    for paragraph in re.split(r"\n\s*\n|\n%\n", text):
        lines = [ln.strip() for ln in paragraph.splitlines()]
        body = "".join(ln for ln in lines if ln and ln != "%" and not ln.startswith("--"))
        for sentence in _SENTENCE_END.split(body):
            sentence = sentence.strip()
            if len(_HAN.findall(sentence)) >= min_chars and sentence not in seen:
                seen.add(sentence)
                out.append(sentence)
    return out



def chinese_gold(path: str | None = None) -> list[list[str]]:
    """The course's hand-segmented gold set: one sentence per line, words separated by spaces.

    Written for llmlab (``llmlab/resources/zh_gold.txt``; its header states the segmentation
    guideline). Returns a list of sentences, each a list of words.
    """
    path = path or os.path.join(os.path.dirname(__file__), "resources", "zh_gold.txt")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    sentences = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        words = line.split(" ")
        if any(not w for w in words):
            raise ValueError(f"zh_gold.txt line {n}: words must be separated by single spaces")
        sentences.append(words)
    return sentences
