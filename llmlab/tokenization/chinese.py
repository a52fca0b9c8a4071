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
import operator
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
_TAGS = frozenset(STATES)
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

    def __post_init__(self):
        # the table itself is not scanned (350K entries): from_words built it
        if not isinstance(self.freq, dict):
            raise TypeError(f"freq must be a dict of word -> count, got {type(self.freq).__name__}")
        if not self.freq:
            raise ValueError("freq is empty: a dictionary needs at least one word")
        self.total = validate.positive_int("total", self.total)
        self.max_len = validate.positive_int("max_len", self.max_len)

    @classmethod
    def from_words(cls, words: Iterable[tuple[str, int]]) -> "Dictionary":
        if isinstance(words, (str, bytes)) or not isinstance(words, Iterable):
            raise TypeError(f"words must be an iterable of (word, count) pairs, got {type(words).__name__}")
        freq: dict[str, int] = {}
        total = max_len = 0
        for entry in words:
            if not isinstance(entry, (tuple, list)) or len(entry) != 2:
                raise TypeError(f"words must hold (word, count) pairs, got {entry!r:.60}")
            word, count = entry
            if not isinstance(word, str) or not word:
                raise ValueError(f"dictionary words must be non-empty strings, got {word!r}")
            freq[word] = int(count)
            total += int(count)
            max_len = max(max_len, len(word))
            for i in range(1, len(word)):
                freq.setdefault(word[:i], 0)
        if total <= 0:
            raise ValueError("the dictionary is empty: words has no word with a positive frequency")
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
    path = validate.path("path", jieba_dict_path() if path is None else path)
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


def _check_text(text, name: str = "text") -> str:
    if not isinstance(text, str):
        raise TypeError(f"{name} must be a str, got {type(text).__name__}")
    return text


def _check_dictionary(dictionary) -> "Dictionary":
    if not isinstance(dictionary, Dictionary):
        raise TypeError(f"dictionary must be a Dictionary (load_dictionary(), Dictionary.from_words(...)), "
                        f"got {type(dictionary).__name__}")
    return dictionary


def _check_hmm(hmm) -> "HMM":
    if not isinstance(hmm, HMM):
        raise TypeError(f"hmm must be an HMM (HMM.from_jieba()), got {type(hmm).__name__}")
    return hmm


# --------------------------------------------------------------------------- maximum matching


def forward_max_match(text: str, dictionary: Dictionary, max_len: int | None = None) -> list[str]:
    """Left to right, take the longest dictionary word (at most ``max_len`` chars) at each position;
    a character that starts no word is a word by itself."""
    text, dictionary = _check_text(text), _check_dictionary(dictionary)
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
    text, dictionary = _check_text(text), _check_dictionary(dictionary)
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
    _check_text(sentence, "sentence")
    _check_dictionary(dictionary)
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
    n = len(_check_text(sentence, "sentence"))
    _check_dictionary(dictionary)
    if isinstance(dag, str) or not hasattr(dag, "__getitem__"):
        raise TypeError(f"dag must be a dict of position -> word ends (build_dag), got {type(dag).__name__}")
    route = [(0.0, 0)] * (n + 1)
    log_total = math.log(dictionary.total)
    try:
        for i in range(n - 1, -1, -1):
            route[i] = max(
                (math.log(dictionary.freq.get(sentence[i : j + 1]) or 1) - log_total + route[j + 1][0], j)
                for j in dag[i]
            )
    except (KeyError, IndexError, TypeError, ValueError) as e:  # explained after the fact
        raise ValueError(f"dag must map every position i < {n} to a non-empty list of word ends j, i <= j < {n} "
                         f"(build_dag(sentence, dictionary)); position {i} has {_entry(dag, i)}") from e
    return route


def _entry(table, i) -> str:
    try:
        return repr(table[i])
    except (KeyError, IndexError, TypeError):
        return "none"


def route_words(sentence: str, route: Sequence[tuple[float, int]]) -> list[str]:
    """Follow the best route from position 0."""
    _check_text(sentence, "sentence")
    words, i = [], 0
    while i < len(sentence):
        try:
            j = operator.index(route[i][1]) + 1
            if j <= i:  # the route must move forward (or this loop never ends)
                raise ValueError
        except (IndexError, KeyError, TypeError, ValueError) as e:
            raise ValueError(f"route must hold a (score, end) pair with end >= i for every position "
                             f"i < {len(sentence)} (best_route), got {_entry(route, i)} at {i}") from e
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

    def __post_init__(self):
        if not isinstance(self.start, dict) or any(y not in self.start for y in STATES):
            raise ValueError(f"start must be a dict of the log-probability of each tag {', '.join(STATES)}, "
                             f"got {self.start!r:.80}")
        for name in ("trans", "emit"):
            table = getattr(self, name)
            if not isinstance(table, dict) or any(not isinstance(table.get(y), dict) for y in STATES):
                raise ValueError(f"{name} must be a dict with a dict of log-probabilities for each tag "
                                 f"{', '.join(STATES)}, got {table!r:.80}")

    @classmethod
    def from_jieba(cls) -> "HMM":
        """jieba's ``finalseg`` tables (trained by jieba's authors on a segmented corpus)."""
        from jieba.finalseg import prob_emit, prob_start, prob_trans

        return cls(prob_start.P, prob_trans.P, prob_emit.P)

    def __deepcopy__(self, memo):
        return self  # read-only tables: share them


def viterbi(chars: str, hmm: HMM) -> list[str]:
    """The most likely B/M/E/S tag sequence of ``chars`` (non-empty). The last tag must end a word."""
    if not _check_text(chars, "chars"):
        raise ValueError("chars is empty: viterbi needs at least one character")
    _check_hmm(hmm)
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


def _word_tags(word: str) -> str:
    """B/M/E/S tags of one word's characters: 'S' for one character, else 'B' + 'M' * (n - 2) + 'E'."""
    return "S" if len(word) == 1 else "B" + "M" * (len(word) - 2) + "E"


def train_hmm(gold: Sequence[Sequence[str]], alpha: float = 1.0
              ) -> tuple[dict[str, float], dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """Estimate the HMM's tables from segmented sentences by counting, with add-``alpha`` smoothing.

    Returns ``(start, trans, emit)`` log-probabilities in jieba's format (``HMM(*train_hmm(gold))``):

    * ``start[y] = log((n_first(y) + alpha) / (n_sentences + 2 alpha))`` for y in B, S; M and E are ``MIN_LOG``;
    * ``trans[y0][y] = log((n(y0 -> y) + alpha) / (n(y0 -> any) + 2 alpha))`` over the two tags allowed after
      y0, counted inside sentences only; impossible transitions are absent, as in jieba;
    * ``emit[y][c] = log((n(y, c) + alpha) / (n(y) + alpha |V|))`` for every character c of V, the characters
      of ``gold``; a character outside V is absent (``viterbi`` counts it ``MIN_LOG``).
    """
    if not isinstance(gold, (list, tuple)):
        raise TypeError(f"gold must be a list of segmented sentences (lists of words), got {type(gold).__name__}")
    if not gold:
        raise ValueError("gold is empty: need at least one segmented sentence")
    for k, words in enumerate(gold):
        validate.strings(f"gold[{k}]", words, "str words")
        if not words or not all(words):
            raise ValueError(f"gold[{k}] must be a non-empty list of non-empty words, got {list(words)!r:.80}")
    alpha = validate.positive_float("alpha", alpha)
    first = dict.fromkeys(STATES, 0)
    pairs = {y0: dict.fromkeys(STATES, 0) for y0 in STATES}
    emitted = {y: {} for y in STATES}
    for words in gold:
        chars, tags = "".join(words), "".join(map(_word_tags, words))
        first[tags[0]] += 1
        for y0, y in zip(tags, tags[1:]):  # within the sentence: no transition into the next one
            pairs[y0][y] += 1
        for c, y in zip(chars, tags):
            emitted[y][c] = emitted[y].get(c, 0) + 1
    vocab = sorted({c for words in gold for w in words for c in w})
    start = {y: math.log((first[y] + alpha) / (len(gold) + 2 * alpha)) if y in "BS" else MIN_LOG for y in STATES}
    trans = {}
    for y0 in STATES:
        allowed = [y for y in STATES if y0 in PREVIOUS[y]]
        total = sum(pairs[y0][y] for y in allowed)
        trans[y0] = {y: math.log((pairs[y0][y] + alpha) / (total + len(allowed) * alpha)) for y in allowed}
    emit = {}
    for y in STATES:
        total = sum(emitted[y].values()) + alpha * len(vocab)
        emit[y] = {c: math.log((emitted[y].get(c, 0) + alpha) / total) for c in vocab}
    return start, trans, emit


def tags_to_words(chars: str, tags: Sequence[str]) -> list[str]:
    """Cut ``chars`` after every E and S tag (a trailing unfinished word is kept)."""
    _check_text(chars, "chars")
    if not isinstance(tags, (str, list, tuple)):
        raise TypeError(f"tags must be a str or a list of tags, got {type(tags).__name__}")
    if len(chars) != len(tags):
        raise ValueError(f"chars and tags must have the same length, got {len(chars)} characters and {len(tags)} tags")
    for tag in tags:
        if tag not in _TAGS:
            raise ValueError(f"tags must hold 'B', 'M', 'E' or 'S', found {tag!r}")
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
    _check_hmm(hmm)
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
    _check_dictionary(dictionary)
    if hmm is not None:
        _check_hmm(hmm)
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
    validate.strings("words", words, "str words")
    return _word_spans(words)


def _word_spans(words: Sequence[str]) -> set[tuple[int, int]]:
    """``word_spans`` without its check."""
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

    def __post_init__(self):
        for name in ("precision", "recall", "f1"):
            validate.probability(name, getattr(self, name))
        if not (isinstance(self.oov_recall, float) and math.isnan(self.oov_recall)):
            validate.probability("oov_recall", self.oov_recall)


def evaluate(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]],
             dictionary: Dictionary | None = None) -> SegmentationScores:
    """Micro-averaged span precision, recall, F1 over sentences, and OOV recall.

    P = |gold ∩ pred| / |pred|,  R = |gold ∩ pred| / |gold|,  F1 = 2PR / (P + R).
    """
    for name, sentences in (("gold", gold), ("predicted", predicted)):
        if not isinstance(sentences, (list, tuple)):
            raise TypeError(f"{name} must be a list of segmented sentences (lists of words), "
                            f"got {type(sentences).__name__}")
        for k, words in enumerate(sentences):
            validate.strings(f"{name}[{k}]", words, "str words")
    if len(gold) != len(predicted):
        raise ValueError(f"gold and predicted must have the same length, got {len(gold)} gold sentences but "
                         f"{len(predicted)} predicted")
    if not gold:
        raise ValueError("gold is empty: nothing to evaluate")
    if dictionary is not None:
        _check_dictionary(dictionary)
    hit = n_gold = n_pred = oov = oov_hit = 0
    for g, p in zip(gold, predicted):
        if "".join(g) != "".join(p):
            raise ValueError(f"gold and predicted segment different texts: {''.join(g)!r} vs {''.join(p)!r}")
        gs, ps = _word_spans(g), _word_spans(p)
        hit, n_gold, n_pred = hit + len(gs & ps), n_gold + len(gs), n_pred + len(ps)
        if dictionary is not None:
            starts = {s: w for s, w in zip(sorted(gs), g)}
            unknown = {span for span, w in starts.items() if w not in dictionary}
            oov, oov_hit = oov + len(unknown), oov_hit + len(unknown & ps)
    precision = hit / n_pred if n_pred else 0.0
    recall = hit / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return SegmentationScores(precision, recall, f1, oov_hit / oov if oov else float("nan"))
