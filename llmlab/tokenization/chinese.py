"""Chinese word segmentation: maximum matching, jieba's DAG route, and an HMM for unknown words.

Chinese is written without spaces, so "words" must be recovered. Three classic ideas, in order:

1. **Maximum matching** with a dictionary: repeatedly take the longest dictionary word at the
   current position, scanning forward (FMM) or backward (BMM); the bidirectional rule picks between
   the two results.
2. **Maximum-probability route** (jieba): every dictionary word in the sentence is an edge of a
   directed acyclic graph (DAG) over character positions; the segmentation is the path maximising
   sum log p(w), with p(w) = freq(w) / total, found by dynamic programming from the right:

       route(i) = max_{j in DAG[i]} [ log p(s[i..j]) + route(j + 1) ],   route(N) = 0.

3. **HMM** for words the dictionary lacks (names, new words): each character gets a hidden tag,
   B(egin), M(iddle), E(nd) of a word or S(ingle); Viterbi finds the most likely tag sequence
   under start, transition and emission log-probabilities (jieba ships tables trained on a corpus):

       V_t(y) = max_{y'} [ V_{t-1}(y') + log P(y | y') ] + log P(c_t | y).

``cut`` combines 2 and 3 exactly as ``jieba.cut(s, HMM=True)`` does, so the two agree token for
token; ``tests/test_chinese.py`` checks it. Evaluation compares word *spans* with a gold segmentation.
"""
from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from llmlab import validate

MIN_LOG = -3.14e100  # jieba's stand-in for log(0): an emission or transition never seen

# jieba's block rules: runs of Han characters, ASCII letters/digits and a few symbols are segmented;
# whitespace is kept as a token; anything else (punctuation) becomes one token per character.
RE_BLOCK = re.compile(r"([\u4E00-\u9FD5a-zA-Z0-9+#&\._%\-]+)")
RE_SKIP = re.compile(r"(\r\n|\s)")
# inside the HMM: runs of Han characters are tagged; ASCII words and numbers stay whole
RE_HAN = re.compile(r"([\u4E00-\u9FD5]+)")
RE_HMM_SKIP = re.compile(r"([a-zA-Z0-9]+(?:\.\d+)?%?)")

STATES = "BMES"
# which tags may precede each tag: a word starts after a word ended, a middle follows a begin or middle
PREVIOUS = {"B": "ES", "M": "MB", "S": "SE", "E": "BM"}


# --------------------------------------------------------------------------- dictionary


@dataclass
class Dictionary:
    """Word frequencies. ``freq`` also holds every prefix of every word with count 0, so that
    scanning a sentence can stop as soon as a fragment is not the start of any word."""

    freq: dict[str, int]
    total: int
    max_len: int

    @classmethod
    def from_words(cls, words: Iterable[tuple[str, int]]) -> "Dictionary":
        freq: dict[str, int] = {}
        total = max_len = 0
        for word, count in words:
            if not isinstance(word, str) or not word:
                raise ValueError(f"dictionary words must be non-empty strings, got {word!r}")
            freq[word] = int(count)
            total += int(count)
            max_len = max(max_len, len(word))
            for i in range(1, len(word)):
                freq.setdefault(word[:i], 0)
        if total <= 0:
            raise ValueError("the dictionary is empty (no word with a positive frequency)")
        return cls(freq, total, max_len)

    def __contains__(self, word: str) -> bool:
        return self.freq.get(word, 0) > 0

    def __deepcopy__(self, memo):
        # a read-only table of 350K entries: share it rather than copy it
        return self

    def __len__(self) -> int:
        return sum(1 for c in self.freq.values() if c > 0)


def jieba_dict_path() -> str:
    import jieba

    return os.path.join(os.path.dirname(jieba.__file__), "dict.txt")


def load_dictionary(path: str | None = None) -> Dictionary:
    """Load a jieba-format dictionary (``word freq [tag]`` per line); default: jieba's ``dict.txt``."""
    path = validate.path("path", path or jieba_dict_path())
    with open(path, encoding="utf-8") as f:
        entries = []
        for n, line in enumerate(f, 1):
            parts = line.strip().split(" ")
            if not parts[0]:
                continue
            if len(parts) < 2 or not parts[1].isdigit():
                raise ValueError(f"{path}, line {n}: expected 'word frequency [tag]', got {line.strip()!r}")
            entries.append((parts[0], int(parts[1])))
    return Dictionary.from_words(entries)


def _check_text(text) -> str:
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return text


# --------------------------------------------------------------------------- maximum matching


def forward_max_match(text: str, dictionary: Dictionary, max_len: int | None = None) -> list[str]:
    """Left to right, take the longest dictionary word (at most ``max_len`` chars) at each position;
    a character that starts no word is a word by itself."""
    text = _check_text(text)
    max_len = dictionary.max_len if max_len is None else validate.positive_int("max_len", max_len)
    words, i = [], 0
    while i < len(text):
        for j in range(min(len(text), i + max_len), i, -1):
            if j == i + 1 or text[i:j] in dictionary:
                words.append(text[i:j])
                i = j
                break
    return words


def backward_max_match(text: str, dictionary: Dictionary, max_len: int | None = None) -> list[str]:
    """Right to left, take the longest dictionary word ending at each position."""
    text = _check_text(text)
    max_len = dictionary.max_len if max_len is None else validate.positive_int("max_len", max_len)
    words, j = [], len(text)
    while j > 0:
        for i in range(max(0, j - max_len), j):
            if i == j - 1 or text[i:j] in dictionary:
                words.append(text[i:j])
                j = i
                break
    return words[::-1]


def bidirectional_max_match(text: str, dictionary: Dictionary, max_len: int | None = None) -> list[str]:
    """Run FMM and BMM and keep the better result. Tie rules, in order:

    1. if both agree, that is the answer;
    2. fewer words wins (longer words are more likely right);
    3. fewer single-character words wins (single characters are where errors hide);
    4. otherwise BMM, which is right more often than FMM on Chinese text.
    """
    fmm = forward_max_match(text, dictionary, max_len)
    bmm = backward_max_match(text, dictionary, max_len)
    if fmm == bmm:
        return bmm
    if len(fmm) != len(bmm):
        return fmm if len(fmm) < len(bmm) else bmm
    singles_f = sum(len(w) == 1 for w in fmm)
    singles_b = sum(len(w) == 1 for w in bmm)
    return fmm if singles_f < singles_b else bmm


# --------------------------------------------------------------------------- DAG + route


def build_dag(sentence: str, dictionary: Dictionary) -> dict[int, list[int]]:
    """DAG[i] = the end positions j (inclusive) such that sentence[i..j] is a dictionary word;
    [i] alone when no word starts at i."""
    dag = {}
    for i in range(len(sentence)):
        ends, j, frag = [], i, sentence[i]
        while j < len(sentence) and frag in dictionary.freq:  # frag is a word or a word's prefix
            if dictionary.freq[frag]:
                ends.append(j)
            j += 1
            frag = sentence[i : j + 1]
        dag[i] = ends or [i]
    return dag


def best_route(sentence: str, dag: dict[int, list[int]], dictionary: Dictionary) -> list[tuple[float, int]]:
    """route[i] = (best log-probability of sentence[i:], end of the first word on that path).

    Unknown words count as frequency 1. Ties go to the longer first word (tuple comparison).
    """
    n = len(sentence)
    route = [(0.0, 0)] * (n + 1)
    log_total = math.log(dictionary.total)
    for i in range(n - 1, -1, -1):
        route[i] = max(
            (math.log(dictionary.freq.get(sentence[i : j + 1]) or 1) - log_total + route[j + 1][0], j)
            for j in dag[i]
        )
    return route


def route_words(sentence: str, route: Sequence[tuple[float, int]]) -> list[str]:
    """Follow the best route from position 0."""
    words, i = [], 0
    while i < len(sentence):
        j = route[i][1] + 1
        words.append(sentence[i:j])
        i = j
    return words


# --------------------------------------------------------------------------- HMM


@dataclass
class HMM:
    """B/M/E/S tagger: log-probabilities ``start[y]``, ``trans[y0][y]``, ``emit[y][char]``."""

    start: dict[str, float]
    trans: dict[str, dict[str, float]]
    emit: dict[str, dict[str, float]] = field(repr=False)

    @classmethod
    def from_jieba(cls) -> "HMM":
        """jieba's ``finalseg`` tables (trained by jieba's authors on a segmented corpus)."""
        from jieba.finalseg import prob_emit, prob_start, prob_trans

        return cls(prob_start.P, prob_trans.P, prob_emit.P)

    def __deepcopy__(self, memo):
        return self  # read-only tables: share them


def viterbi(chars: str, hmm: HMM) -> list[str]:
    """The most likely B/M/E/S tag sequence of ``chars`` (non-empty). The last tag must end a word."""
    if not chars:
        raise ValueError("viterbi needs at least one character")
    score = {y: hmm.start[y] + hmm.emit[y].get(chars[0], MIN_LOG) for y in STATES}
    paths = {y: [y] for y in STATES}
    for c in chars[1:]:
        new_score, new_paths = {}, {}
        for y in STATES:
            emit = hmm.emit[y].get(c, MIN_LOG)
            best, prev = max((score[y0] + hmm.trans[y0].get(y, MIN_LOG) + emit, y0) for y0 in PREVIOUS[y])
            new_score[y], new_paths[y] = best, paths[prev] + [y]
        score, paths = new_score, new_paths
    _, last = max((score[y], y) for y in "ES")
    return paths[last]


def tags_to_words(chars: str, tags: Sequence[str]) -> list[str]:
    """Cut ``chars`` after every E and S tag (a trailing unfinished word is kept)."""
    if len(chars) != len(tags):
        raise ValueError(f"{len(chars)} characters but {len(tags)} tags")
    words, begin = [], 0
    for i, tag in enumerate(tags):
        if tag == "B":
            begin = i
        elif tag == "E":
            words.append(chars[begin : i + 1])
            begin = i + 1
        elif tag == "S":
            words.append(chars[i])
            begin = i + 1
    if begin < len(chars):
        words.append(chars[begin:])
    return words


def hmm_cut(text: str, hmm: HMM) -> list[str]:
    """Segment with the HMM alone: Han runs are tagged, ASCII words and numbers kept whole."""
    words = []
    for block in RE_HAN.split(_check_text(text)):
        if RE_HAN.fullmatch(block):
            words += tags_to_words(block, viterbi(block, hmm))
        else:
            words += [w for w in RE_HMM_SKIP.split(block) if w]
    return words


# --------------------------------------------------------------------------- jieba's pipeline


def _cut_block(block: str, dictionary: Dictionary, hmm: HMM | None) -> list[str]:
    """Route words; runs of single characters between them go to the HMM when they do not form a
    dictionary word (that is where unknown words hide)."""
    words = route_words(block, best_route(block, build_dag(block, dictionary), dictionary))
    out, run = [], ""

    def flush():
        if len(run) > 1 and hmm is not None and run not in dictionary:
            out.extend(hmm_cut(run, hmm))
        elif hmm is None and run:
            # without the HMM, jieba still glues runs of single letters/digits into one token
            out.extend(re.findall(r"[a-zA-Z0-9]+|.", run, flags=re.S))
        else:
            out.extend(run)

    for w in words:
        if len(w) == 1:
            run += w
        else:
            flush()
            run = ""
            out.append(w)
    flush()
    return out


def cut(text: str, dictionary: Dictionary, hmm: HMM | None = None) -> list[str]:
    """Segment like ``jieba.cut(text, HMM=hmm is not None)``: blocks of Han/ASCII word characters are
    routed through the DAG (and HMM); whitespace is kept; other characters stand alone."""
    words = []
    for block in RE_BLOCK.split(_check_text(text)):
        if not block:
            continue
        if RE_BLOCK.fullmatch(block):
            words += _cut_block(block, dictionary, hmm)
        else:
            for piece in RE_SKIP.split(block):
                if RE_SKIP.fullmatch(piece):
                    words.append(piece)
                else:
                    words.extend(piece)
    return words


# --------------------------------------------------------------------------- evaluation


def word_spans(words: Sequence[str]) -> set[tuple[int, int]]:
    """{(start, end)} character offsets of each word: two segmentations agree on a word exactly when
    they share its span."""
    spans, i = set(), 0
    for w in words:
        spans.add((i, i + len(w)))
        i += len(w)
    return spans


@dataclass
class SegmentationScores:
    precision: float
    recall: float
    f1: float
    oov_recall: float  # recall on gold words absent from the dictionary (nan if there are none)


def evaluate(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]],
             dictionary: Dictionary | None = None) -> SegmentationScores:
    """Micro-averaged span precision, recall, F1 over sentences, and OOV recall.

    P = |gold ∩ pred| / |pred|,  R = |gold ∩ pred| / |gold|,  F1 = 2PR / (P + R).
    """
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold sentences but {len(predicted)} predicted")
    if not gold:
        raise ValueError("nothing to evaluate: no sentences")
    hit = n_gold = n_pred = oov = oov_hit = 0
    for g, p in zip(gold, predicted):
        if "".join(g) != "".join(p):
            raise ValueError(f"gold and predicted segment different texts: {''.join(g)!r} vs {''.join(p)!r}")
        gs, ps = word_spans(g), word_spans(p)
        hit, n_gold, n_pred = hit + len(gs & ps), n_gold + len(gs), n_pred + len(ps)
        if dictionary is not None:
            starts = {s: w for s, w in zip(sorted(gs), g)}
            unknown = {span for span, w in starts.items() if w not in dictionary}
            oov, oov_hit = oov + len(unknown), oov_hit + len(unknown & ps)
    precision = hit / n_pred if n_pred else 0.0
    recall = hit / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return SegmentationScores(precision, recall, f1, oov_hit / oov if oov else float("nan"))
