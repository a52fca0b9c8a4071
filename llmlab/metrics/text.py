"""Text-overlap metrics: BLEU (machine translation) and ROUGE (summarisation).

Both count n-grams a system output shares with human references; they differ in what they divide by.

BLEU (Papineni et al., 2002), a precision over a whole corpus, as sacrebleu computes it:

    p_n  = sum_hyps #(hyp n-grams also in a reference, clipped) / sum_hyps #(hyp n-grams),  n = 1..4
    BP   = 1 if c > r else exp(1 - r / c)     c = hypothesis tokens, r = closest reference tokens
    BLEU = 100 * BP * exp( (1/4) sum_n log p_n )

"Clipped": a hypothesis n-gram counts at most as often as it occurs in one reference (the most in
any), so "the the the the" earns nothing extra. The brevity penalty BP stands in for recall:
precision alone would reward outputs that say only what they are sure of. BLEU is a corpus metric:
counts are summed over all sentences before dividing, not averaged per sentence.

ROUGE (Lin, 2004), as Google's ``rouge-score`` computes it for one target and one prediction:

    ROUGE-N:  P = overlap / #pred n-grams,   R = overlap / #target n-grams,   F = 2PR / (P + R)
    ROUGE-L:  the same with overlap = length of the longest common subsequence (LCS) of tokens

A score is only comparable with another computed with the same tokenizer, so the tokenizers are
reproduced exactly: sacrebleu's "13a" (mteval-v13a, used by WMT) and "zh", and rouge-score's
lowercase-alphanumeric one.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import NamedTuple

from llmlab import validate

MAX_ORDER = 4  # BLEU uses 1- to 4-grams
SMOOTH_METHODS = ("exp", "none", "floor", "add-k")
FLOOR_VALUE = 0.1  # sacrebleu's defaults for "floor" and "add-k" (Chen & Cherry, 2014)
ADD_K_VALUE = 1


def _check_str(name: str, value) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    return value


def _check_counts(name: str, values, check) -> None:
    """A list of MAX_ORDER numbers, one per n-gram order, each passed to ``check(name, value)``."""
    if not isinstance(values, (list, tuple)):
        raise TypeError(f"{name} must be a list of {MAX_ORDER} numbers (n = 1..{MAX_ORDER}), "
                        f"got {type(values).__name__}")
    if len(values) != MAX_ORDER:
        raise ValueError(f"{name} must hold {MAX_ORDER} numbers (n = 1..{MAX_ORDER}), got {len(values)}")
    for i, v in enumerate(values):
        check(f"{name}[{i}]", v)


def _count(name: str, value) -> int:
    return validate.integer(name, value, minimum=0)


def _percent(name: str, value) -> float:
    return validate.real(name, value, minimum=0, maximum=100)


# ---------------------------------------------------------------------------------------------
# Tokenizers (sacrebleu's 13a and zh)
# ---------------------------------------------------------------------------------------------

# The rules of mteval-v13a's tokenizer, applied in order (sacrebleu's TokenizerRegexp):
_13A_RULES = [
    # split off ASCII punctuation and symbols, except ' , - . (handled below: they occur in words
    # and numbers). The class lists { | } ~ [ \ ] ^ _ ` space ! " # $ % & ( ) * + : ; < = > ? @ /
    (re.compile(r"([{|}~\[\\\]^_` !\"#$%&()*+:;<=>?@/])"), r" \1 "),
    # period and comma become tokens unless preceded by a digit ...
    (re.compile(r"([^0-9])([\.,])"), r"\1 \2 "),
    # ... or unless followed by a digit: "3.14" and "1,000" stay whole, "end." splits
    (re.compile(r"([\.,])([^0-9])"), r" \1 \2"),
    # a dash after a digit splits: "1990-2000" -> "1990 - 2000"
    (re.compile(r"([0-9])(-)"), r"\1 \2 "),
]


def _split_punctuation(line: str) -> str:
    """The shared second stage of the 13a and zh tokenizers: the rules above, then single spaces."""
    for pattern, replacement in _13A_RULES:
        line = pattern.sub(replacement, line)
    return " ".join(line.split())


def tokenize_13a(line: str) -> str:
    """sacrebleu's default "13a" tokenizer; returns the tokens joined by single spaces.

    First undo what the mteval XML format added: drop ``<skipped>``, join words hyphenated across a
    line break, turn newlines into spaces, unescape the four XML entities. Then split punctuation.
    """
    _check_str("line", line)
    line = line.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    if "&" in line:  # order matters: "&amp;lt;" must become "&lt;", not "<"
        line = line.replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    return _split_punctuation(f" {line} ")


# Code points sacrebleu's "zh" tokenizer treats as Chinese characters (one token each). Its table is
# copied here with two entries corrected to what its code actually does: it writes the astral ranges
# as "\u20000".."\u2a6d6" and "\u2f800".."\u2fa1d", which Python reads as two-character strings, so
# a single character c matches when U+2000 < c <= U+2A6D and U+2F80 < c <= U+2FA1. The first
# includes general punctuation (quotes, dashes, ellipsis), arrows and maths symbols; CJK Extension
# B (U+20000..) is *not* matched. Reproducing the quirk is what makes scores equal sacrebleu's.
_ZH_RANGES = [
    (0x3400, 0x4DB5),  # CJK Unified Ideographs Extension A
    (0x4E00, 0x9FA5),  # CJK Unified Ideographs
    (0x9FA6, 0x9FBB),  # CJK Unified Ideographs, release 4.1
    (0xF900, 0xFA2D),  # CJK Compatibility Ideographs
    (0xFA30, 0xFA6A),  # CJK Compatibility Ideographs, release 3.2
    (0xFA70, 0xFAD9),  # CJK Compatibility Ideographs, release 4.1
    (0x2001, 0x2A6D),  # meant: Extension B U+20000..U+2A6D6 (see above)
    (0x2F81, 0x2FA1),  # meant: Compatibility Supplement U+2F800..U+2FA1D (see above)
    (0xFF00, 0xFFEF),  # full-width ASCII and punctuation, half-width kana, Hangul
    (0x2E80, 0x2EFF),  # CJK Radicals Supplement
    (0x3000, 0x303F),  # CJK punctuation (、。「」 ...)
    (0x31C0, 0x31EF),  # CJK strokes
    (0x2F00, 0x2FDF),  # Kangxi Radicals
    (0x2FF0, 0x2FFF),  # ideographic description characters
    (0x3100, 0x312F),  # Bopomofo
    (0x31A0, 0x31BF),  # Bopomofo extended
    (0xFE10, 0xFE1F),  # vertical forms
    (0xFE30, 0xFE4F),  # CJK compatibility forms
    (0x2600, 0x26FF),  # miscellaneous symbols
    (0x2700, 0x27BF),  # dingbats
    (0x3200, 0x32FF),  # enclosed CJK letters and months
    (0x3300, 0x33FF),  # CJK compatibility
]


def is_chinese_char(char: str) -> bool:
    """Whether sacrebleu's "zh" tokenizer makes ``char`` a token of its own."""
    if len(_check_str("char", char)) != 1:
        raise ValueError(f"char must be a single character, got {char!r}")
    return _is_chinese(char)


def _is_chinese(char: str) -> bool:
    """``is_chinese_char`` without its check, for ``tokenize_zh``'s loop over the characters."""
    return any(lo <= ord(char) <= hi for lo, hi in _ZH_RANGES)


def tokenize_zh(line: str) -> str:
    """sacrebleu's "zh" tokenizer: every Chinese character is a token, the rest is split as 13a.

    Chinese is written without spaces and word segmentation is itself ambiguous, so BLEU for
    Chinese counts character n-grams. (Unlike 13a, no XML un-escaping is done.)
    """
    spaced = "".join(f" {c} " if _is_chinese(c) else c for c in _check_str("line", line).strip())
    return _split_punctuation(spaced)


TOKENIZERS = {"13a": tokenize_13a, "zh": tokenize_zh}


# ---------------------------------------------------------------------------------------------
# BLEU
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BleuScore:
    """A BLEU result. ``score`` is on sacrebleu's 0-100 scale; ``precisions`` (percent) are those
    that entered the geometric mean (after smoothing); ``counts``/``totals`` are the matched and
    total hypothesis n-grams of each order; ``bp`` the brevity penalty."""

    score: float
    precisions: list[float]
    bp: float
    hyp_len: int
    ref_len: int
    counts: list[int]
    totals: list[int]

    def __post_init__(self):
        validate.real("score", self.score, minimum=0)  # no upper bound: 100 * exp(mean log p) may round above 100
        _check_counts("precisions", self.precisions, _percent)
        validate.probability("bp", self.bp)
        _count("hyp_len", self.hyp_len)
        _count("ref_len", self.ref_len)
        _check_counts("counts", self.counts, _count)
        _check_counts("totals", self.totals, _count)


def ngram_counts(tokens: list[str], max_order: int = MAX_ORDER) -> Counter:
    """All n-grams of ``tokens`` for n = 1..max_order, as a Counter of tuples."""
    validate.strings("tokens", tokens, "str tokens")
    return _ngram_counts(tokens, validate.positive_int("max_order", max_order))


def _ngram_counts(tokens: list[str], max_order: int = MAX_ORDER) -> Counter:
    """``ngram_counts`` without its checks."""
    max_order = min(max_order, len(tokens))  # no longer n-gram fits
    return Counter(tuple(tokens[i : i + n]) for n in range(1, max_order + 1) for i in range(len(tokens) - n + 1))


def _closest_ref_len(hyp_len: int, ref_lens: list[int]) -> int:
    """The reference length nearest the hypothesis length; on a tie, the shorter (as sacrebleu)."""
    return min(ref_lens, key=lambda r: (abs(hyp_len - r), r))


def _segment_stats(hyp: list[str], refs: list[list[str]]) -> tuple[int, int, list[int], list[int]]:
    """(hyp length, closest reference length, matched n-grams per order, hyp n-grams per order)."""
    max_ref = Counter()  # each n-gram may be matched as often as it occurs in any one reference
    for ref in refs:
        max_ref |= _ngram_counts(ref)  # | keeps the maximum count of each n-gram
    correct, total = [0] * MAX_ORDER, [0] * MAX_ORDER
    for ngram, count in _ngram_counts(hyp).items():
        total[len(ngram) - 1] += count
        correct[len(ngram) - 1] += min(count, max_ref[ngram])  # clipping
    return len(hyp), _closest_ref_len(len(hyp), [len(r) for r in refs]), correct, total


def _brevity_penalty(hyp_len: int, ref_len: int) -> float:
    """1 if the output is longer than the references, else exp(1 - r/c) (0 for an empty output)."""
    if hyp_len >= ref_len:
        return 1.0
    return math.exp(1 - ref_len / hyp_len) if hyp_len > 0 else 0.0


def modified_precision(hyp: list[str], refs: list[list[str]], n: int) -> tuple[int, int]:
    """BLEU's clipped n-gram matches of one tokenised hypothesis, for one order n: ``(matched, total)``.

        matched = sum over the n-grams g of hyp of  min(count_hyp(g), max_r count_r(g))
        total   = number of n-grams of hyp (len(hyp) - n + 1, or 0)

    Summed over a corpus these are sacrebleu's ``counts[n-1]`` and ``totals[n-1]``; BLEU's p_n is
    their ratio.
    """
    n = validate.positive_int("n", n)
    validate.strings("hyp", hyp, "str tokens")
    if not isinstance(refs, (list, tuple)) or not refs or not all(isinstance(r, (list, tuple)) for r in refs):
        raise ValueError("refs must be a non-empty list of token lists (one per reference)")
    for i, ref in enumerate(refs):
        validate.strings(f"refs[{i}]", ref, "str tokens")
    max_ref = Counter()
    for ref in refs:
        max_ref |= Counter(_ngrams(list(ref), n))
    grams = Counter(_ngrams(list(hyp), n))
    return sum(min(c, max_ref[g]) for g, c in grams.items()), sum(grams.values())


def brevity_penalty(hyp_lens: list[int], ref_lens: list[list[int]]) -> float:
    """BLEU's corpus brevity penalty from token counts.

    c = sum of the hypothesis lengths, r = sum over hypotheses of the closest reference length (on
    a tie the shorter); BP = 1 if c >= r else exp(1 - r / c), and 0 for an empty output.
    """
    for name, value in (("hyp_lens", hyp_lens), ("ref_lens", ref_lens)):
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{name} must be a list, got {type(value).__name__}")
    if not hyp_lens:
        raise ValueError("hyp_lens is empty: need at least one hypothesis length")
    if len(hyp_lens) != len(ref_lens):
        raise ValueError(f"hyp_lens and ref_lens must have the same length (one list of reference lengths per "
                         f"hypothesis), got {len(hyp_lens)} and {len(ref_lens)}")
    for i, (h, refs) in enumerate(zip(hyp_lens, ref_lens)):
        _count(f"hyp_lens[{i}]", h)
        if not isinstance(refs, (list, tuple)):
            raise TypeError(f"ref_lens[{i}] must be a list of reference lengths, got {type(refs).__name__}")
        if not refs:
            raise ValueError(f"ref_lens[{i}] is empty: every hypothesis needs at least one reference length")
        for j, r in enumerate(refs):
            _count(f"ref_lens[{i}][{j}]", r)
    r = sum(_closest_ref_len(h, list(refs)) for h, refs in zip(hyp_lens, ref_lens))
    return _brevity_penalty(sum(hyp_lens), r)


def _smoothed_precisions(correct: list[int], total: list[int], smooth: str) -> list[float]:
    """n-gram precisions in percent, with sacrebleu's smoothing of zero matches (Chen & Cherry, 2014):

    "none": p_n = 0, so BLEU = 0.     "floor": p_n = 0.1 / total_n.
    "add-k": add 1 to matched and total n-grams for n >= 2.
    "exp" (default; NIST's mteval): the k-th order with no match gets p_n = 1 / (2^k total_n).
    An order with no hypothesis n-grams at all (a corpus shorter than n tokens) stops the list.
    """
    precisions, halvings = [], 1.0
    for n in range(MAX_ORDER):
        c, t = correct[n], total[n]
        if smooth == "add-k" and n > 0:
            c, t = c + ADD_K_VALUE, t + ADD_K_VALUE
        if t == 0:
            break
        if c > 0:
            precisions.append(100.0 * c / t)
        elif smooth == "exp":
            halvings *= 2
            precisions.append(100.0 / (halvings * t))
        elif smooth == "floor":
            precisions.append(100.0 * FLOOR_VALUE / t)
        else:
            precisions.append(0.0)
    return precisions


def bleu_from_stats(
    hyp_len: int, ref_len: int, correct: list[int], total: list[int], smooth: str = "exp", effective_order: bool = False
) -> BleuScore:
    """BLEU from corpus totals: 100 * BP * exp(mean_n log p_n).

    With ``effective_order`` (for single sentences) the mean runs only over the orders the
    hypothesis has n-grams of; otherwise a missing order or a zero precision makes BLEU 0.
    """
    validate.flag("effective_order", effective_order)
    hyp_len, ref_len = _count("hyp_len", hyp_len), _count("ref_len", ref_len)
    _check_counts("correct", correct, _count)
    _check_counts("total", total, _count)
    for n, (c, t) in enumerate(zip(correct, total), 1):
        if c > t:
            raise ValueError(f"correct must not exceed total: {c} matched {n}-grams out of {t}")
    validate.choice("smooth", smooth, SMOOTH_METHODS)
    bp = _brevity_penalty(hyp_len, ref_len)
    if not any(correct):  # nothing matched at all: 0, whatever the smoothing (as sacrebleu)
        return BleuScore(0.0, [0.0] * MAX_ORDER, bp, hyp_len, ref_len, list(correct), list(total))
    precisions = _smoothed_precisions(correct, total, smooth)
    order = len(precisions) if effective_order else MAX_ORDER
    if len(precisions) < order or 0.0 in precisions[:order]:
        score = 0.0  # log 0 = -inf: one order with no match zeroes the geometric mean
    else:
        score = bp * math.exp(sum(math.log(p) for p in precisions[:order]) / order)
    precisions += [0.0] * (MAX_ORDER - len(precisions))
    return BleuScore(score, precisions, bp, hyp_len, ref_len, list(correct), list(total))


def _check_corpus(hypotheses, references) -> list[list[str]]:
    """Validate the inputs; return each hypothesis's references as a list of strings."""
    if isinstance(hypotheses, str) or not isinstance(hypotheses, (list, tuple)):
        raise TypeError(f"hypotheses must be a list of strings, got {type(hypotheses).__name__}")
    if isinstance(references, str) or not isinstance(references, (list, tuple)):
        raise TypeError(f"references must be a list (one entry per hypothesis), got {type(references).__name__}")
    if not hypotheses:
        raise ValueError("hypotheses is empty (an empty corpus): need at least one hypothesis")
    if len(references) != len(hypotheses):
        raise ValueError(
            f"got {len(hypotheses)} hypotheses but {len(references)} reference entries; "
            "references[i] must hold the reference(s) of hypotheses[i]"
        )
    for i, h in enumerate(hypotheses):
        if not isinstance(h, str):
            raise TypeError(f"hypotheses[{i}] must be a str, got {type(h).__name__}")
    refs = []
    for i, r in enumerate(references):
        r = [r] if isinstance(r, str) else r
        if not isinstance(r, (list, tuple)) or not all(isinstance(x, str) for x in r):
            raise TypeError(f"references[{i}] must be a str or a list of str, got {r!r:.80}")
        if not r:
            raise ValueError(f"references[{i}] is empty: every hypothesis needs at least one reference")
        refs.append(list(r))
    return refs


def corpus_bleu(
    hypotheses: list[str],
    references: list[str] | list[list[str]],
    tokenize: str = "13a",
    smooth: str = "exp",
    effective_order: bool = False,
) -> BleuScore:
    """Corpus BLEU, equal to ``sacrebleu.corpus_bleu`` (same tokenizer and smoothing).

    ``references[i]`` is the reference of ``hypotheses[i]`` (a str) or its references (a list of
    str, any number per hypothesis). Note that sacrebleu itself takes the transpose: a list of
    reference *streams*, ``refs[k][i]`` = k-th reference of hypothesis i.
    ``tokenize``: "13a" (default) or "zh". ``smooth``: "exp" (default), "none", "floor", "add-k".
    Returns a ``BleuScore``; ``.score`` is 0-100.
    """
    validate.flag("effective_order", effective_order)
    if tokenize not in TOKENIZERS:
        raise ValueError(f"tokenize must be one of {list(TOKENIZERS)}, got {tokenize!r}")
    if smooth not in SMOOTH_METHODS:
        raise ValueError(f"smooth must be one of {SMOOTH_METHODS}, got {smooth!r}")
    refs = _check_corpus(hypotheses, references)
    split = TOKENIZERS[tokenize]
    hyp_len = ref_len = 0
    correct, total = [0] * MAX_ORDER, [0] * MAX_ORDER
    for hyp, hyp_refs in zip(hypotheses, refs):
        # sacrebleu strips trailing whitespace before tokenizing
        stats = _segment_stats(split(hyp.rstrip()).split(), [split(r.rstrip()).split() for r in hyp_refs])
        hyp_len, ref_len = hyp_len + stats[0], ref_len + stats[1]
        correct = [a + b for a, b in zip(correct, stats[2])]
        total = [a + b for a, b in zip(total, stats[3])]
    return bleu_from_stats(hyp_len, ref_len, correct, total, smooth, effective_order)


def sentence_bleu(
    hypothesis: str,
    references: str | list[str],
    tokenize: str = "13a",
    smooth: str = "exp",
    effective_order: bool = True,
) -> BleuScore:
    """BLEU of one sentence, equal to ``sacrebleu.sentence_bleu`` (effective order on by default:
    a short sentence with no 4-grams is not scored 0 for it). BLEU is meant for corpora; a single
    sentence's score is noisy."""
    validate.flag("effective_order", effective_order)
    if not isinstance(hypothesis, str):
        raise TypeError(f"hypothesis must be a str, got {type(hypothesis).__name__}")
    return corpus_bleu([hypothesis], [references], tokenize, smooth, effective_order)


# ---------------------------------------------------------------------------------------------
# ROUGE (rouge-score's defaults: no stemming)
# ---------------------------------------------------------------------------------------------


class _RougeFields(NamedTuple):
    precision: float
    recall: float
    fmeasure: float


class RougeScore(_RougeFields):
    """Precision, recall and F-measure, the fields of rouge-score's ``Score``: a named tuple of three
    numbers in [0, 1]."""

    __slots__ = ()

    def __new__(cls, precision: float, recall: float, fmeasure: float):
        for name, value in (("precision", precision), ("recall", recall), ("fmeasure", fmeasure)):
            validate.probability(name, value)
        return super().__new__(cls, precision, recall, fmeasure)


_ALNUM_RUN = re.compile(r"[a-z0-9]+")


def tokenize_rouge(text: str) -> list[str]:
    """rouge-score's tokenizer: lowercase, then the maximal runs of [a-z0-9].

    Everything else (punctuation, accents, any non-Latin script) separates tokens and is dropped,
    so ROUGE with this tokenizer is blind to Chinese. (rouge-score replaces non-alphanumeric runs
    by spaces and splits; keeping the runs is the same thing.)
    """
    return _ALNUM_RUN.findall(_check_str("text", text).lower())


def _f_measure(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def _check_texts(target, prediction) -> None:
    for name, value in (("target", target), ("prediction", prediction)):
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a str, got {type(value).__name__}")


def rouge_n(target: str, prediction: str, n: int = 1) -> RougeScore:
    """ROUGE-N: n-gram overlap, clipped (an n-gram counts at most as often as on either side).

        P = overlap / #prediction n-grams,   R = overlap / #target n-grams,   F = 2PR / (P + R)

    A side with no n-grams gives 0 (rouge-score divides by max(count, 1)).
    """
    _check_texts(target, prediction)
    n = validate.positive_int("n", n)
    target_ngrams = Counter(_ngrams(tokenize_rouge(target), n))
    pred_ngrams = Counter(_ngrams(tokenize_rouge(prediction), n))
    overlap = sum((target_ngrams & pred_ngrams).values())  # & keeps the minimum count
    precision = overlap / max(sum(pred_ngrams.values()), 1)
    recall = overlap / max(sum(target_ngrams.values()), 1)
    return RougeScore(precision, recall, _f_measure(precision, recall))


def _ngrams(tokens: list[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def lcs_length(a: list[str], b: list[str]) -> int:
    """Length of the longest common subsequence of a and b, by dynamic programming in O(|a| |b|).

    L[i][j] = LCS of a[:i] and b[:j] = L[i-1][j-1] + 1 if a[i-1] == b[j-1] else max(L[i-1][j], L[i][j-1]).
    Only the previous row is needed, so memory is O(|b|).
    """
    validate.strings("a", a, "str tokens")
    validate.strings("b", b, "str tokens")
    prev = [0] * (len(b) + 1)
    for x in a:
        row = [0]
        for j, y in enumerate(b, 1):
            row.append(prev[j - 1] + 1 if x == y else max(prev[j], row[j - 1]))
        prev = row
    return prev[-1]


def rouge_l(target: str, prediction: str) -> RougeScore:
    """ROUGE-L: overlap = LCS of the token sequences; rewards words in the same order, not
    necessarily adjacent.  P = LCS / #prediction tokens,  R = LCS / #target tokens.
    Either side empty gives 0."""
    _check_texts(target, prediction)
    target_tokens, pred_tokens = tokenize_rouge(target), tokenize_rouge(prediction)
    if not target_tokens or not pred_tokens:
        return RougeScore(0.0, 0.0, 0.0)
    lcs = lcs_length(target_tokens, pred_tokens)
    precision, recall = lcs / len(pred_tokens), lcs / len(target_tokens)
    return RougeScore(precision, recall, _f_measure(precision, recall))
