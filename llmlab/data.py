"""Corpora the course trains and evaluates on, all available offline.

English: Python's own reference documentation, ``pydoc_data.topics`` (79 topics, ~465K characters),
installed with every CPython. Its text differs between Python versions, so nothing here stores
numbers measured on it: tests compare two implementations on the same text.
"""
from __future__ import annotations

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
