"""Corpora the course trains and evaluates on, all available offline.

English: Python's own reference documentation, ``pydoc_data.topics`` (79 topics, ~465K characters),
installed with every CPython. Its text differs between Python versions, so nothing here stores
numbers measured on it: tests compare two implementations on the same text.
"""
from __future__ import annotations

import os
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from llmlab import validate

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


def _resource_path(path, name: str):
    """``path`` checked, or the file ``name`` of llmlab's resources when it is None (not when it is
    "", which is a mistake rather than a request for the default)."""
    if path is None:
        return os.path.join(os.path.dirname(__file__), "resources", name)
    return validate.path("path", path)


def chinese_sentences(path: str = FORTUNES_ZH, min_chars: int = 4) -> list[str]:
    """Sentences of the fortunes-zh quotes, in file order, de-duplicated.

    Entries are separated by ``%`` lines. Colour codes and attribution lines (``-- author``) are
    dropped; a paragraph's wrapped lines are joined (Chinese wraps without spaces), and paragraphs
    are split after 。！？. Only sentences with at least ``min_chars`` Han characters are kept.
    """
    path = validate.path("path", path)
    min_chars = validate.size("min_chars", min_chars, minimum=0)
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
    path = _resource_path(path, "zh_gold.txt")
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


# Topic classification: a small labelled set written for llmlab (``llmlab/resources/topics.tsv``),
# 320 short texts, 40 per (language, label). About 10% per language are deliberately harder
# (indirect wording, mild overlap with another topic) so that a classifier's mistakes can be discussed.
TOPIC_LABELS = ("sports", "food", "technology", "weather")
TOPIC_LANGS = ("en", "zh")
_TOPIC_HEADER = "lang\tlabel\ttext"


@dataclass(frozen=True)
class TopicItem:
    """One labelled text of the topic set."""

    text: str
    label: str  # one of TOPIC_LABELS
    lang: str  # "en" or "zh"

    def __post_init__(self):
        if not isinstance(self.text, str):
            raise TypeError(f"text must be a str, got {type(self.text).__name__}")
        if not self.text.strip():
            raise ValueError("text is empty")
        validate.choice("label", self.label, TOPIC_LABELS)
        validate.choice("lang", self.lang, TOPIC_LANGS)


def topic_set(lang: str = "all", path: str | None = None) -> list[TopicItem]:
    """The course's labelled topic set (``llmlab/resources/topics.tsv``), in file order.

    A tab-separated file with the header ``lang<TAB>label<TAB>text``: 320 original short texts,
    40 English and 40 Chinese for each of ``TOPIC_LABELS``. ``lang`` selects ``"en"``, ``"zh"`` or
    ``"all"``. Every row is checked (three fields, a known language and label, non-empty text);
    a bad row raises ValueError naming its line number.
    """
    if lang not in ("en", "zh", "all"):
        raise ValueError(f"lang must be 'en', 'zh' or 'all', got {lang!r}")
    path = _resource_path(path, "topics.tsv")
    name = os.path.basename(path)
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    if not lines or lines[0] != _TOPIC_HEADER:
        raise ValueError(f"{name} line 1: expected the header {_TOPIC_HEADER!r}")
    items = []
    for n, line in enumerate(lines[1:], 2):
        fields = line.split("\t")
        if len(fields) != 3:
            raise ValueError(f"{name} line {n}: expected 3 tab-separated fields, got {len(fields)}")
        row_lang, label, text = fields
        if row_lang not in TOPIC_LANGS:
            raise ValueError(f"{name} line {n}: unknown lang {row_lang!r} (expected one of {TOPIC_LANGS})")
        if label not in TOPIC_LABELS:
            raise ValueError(f"{name} line {n}: unknown label {label!r} (expected one of {TOPIC_LABELS})")
        if not text.strip():
            raise ValueError(f"{name} line {n}: empty text")
        if lang == "all" or row_lang == lang:
            items.append(TopicItem(text=text, label=label, lang=row_lang))
    return items


def train_test_split_items(
    items: Sequence[TopicItem], test_fraction: float = 0.25, seed: int = 0
) -> tuple[list[TopicItem], list[TopicItem]]:
    """Split ``items`` into ``(train, test)``, stratified by ``(lang, label)``, deterministically.

    Within each ``(lang, label)`` group, ``round(len(group) * test_fraction)`` items, drawn with
    ``random.Random(seed)``, go to test and the rest to train, so every group keeps its share in
    both parts. Both lists keep the input order. The same items, fraction and seed always give
    the same split.
    """
    test_fraction = validate.probability("test_fraction", test_fraction, allow_zero=False, allow_one=False)
    seed = validate.integer("seed", seed)
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
        raise TypeError(f"items must be a list of TopicItem, got {type(items).__name__}")
    for i, item in enumerate(items):
        if not isinstance(item, TopicItem):
            raise TypeError(f"items[{i}] must be a TopicItem, got {type(item).__name__}")
    rng = random.Random(seed)
    groups: dict[tuple[str, str], list[int]] = {}
    for i, item in enumerate(items):
        groups.setdefault((item.lang, item.label), []).append(i)
    test_idx: set[int] = set()
    for indices in groups.values():  # first-appearance order, so the draws are reproducible
        test_idx.update(rng.sample(indices, round(len(indices) * test_fraction)))
    train = [item for i, item in enumerate(items) if i not in test_idx]
    test = [item for i, item in enumerate(items) if i in test_idx]
    return train, test


# Fine-tuning text: a bilingual glossary of the course's own terms, written for llmlab
# (``llmlab/resources/glossary.txt``), one "term (中文): definition." per line. Every
# GLOSSARY_VAL_EVERY-th line is held out, so the held-out lines share the style but not the content.
GLOSSARY_VAL_EVERY = 5


def glossary(split: Split = "all", path: str | None = None) -> list[str]:
    """The glossary's lines; ``split`` "val" keeps every ``GLOSSARY_VAL_EVERY``-th line (from the
    first), "train" the others."""
    if split not in ("train", "val", "all"):
        raise ValueError(f"split must be 'train', 'val' or 'all', got {split!r}")
    path = _resource_path(path, "glossary.txt")
    with open(path, encoding="utf-8") as f:
        lines = [line.strip() for line in f if line.strip()]
    for n, line in enumerate(lines, 1):
        if "): " not in line:
            raise ValueError(f"glossary.txt entry {n} is not 'term (中文): definition': {line!r}")
    return [line for i, line in enumerate(lines)
            if split == "all" or (i % GLOSSARY_VAL_EVERY == 0) == (split == "val")]
