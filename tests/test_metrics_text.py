"""llmlab.metrics.text against sacrebleu (BLEU, its 13a/zh tokenizers) and rouge-score (ROUGE)."""
import math
import random

import pytest

from llmlab import data
from llmlab.metrics import text as T

sacrebleu = pytest.importorskip("sacrebleu")
rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a  # noqa: E402
from sacrebleu.tokenizers.tokenizer_zh import TokenizerZh  # noqa: E402

PROPERTY = settings(max_examples=200, deadline=None, database=None)
ROUGE = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rouge3", "rougeL"], use_stemmer=False)


def _close(got: float, expected: float) -> bool:
    return got == pytest.approx(expected, rel=1e-9, abs=1e-12)


def _sacre_corpus(hyps, refs, **kwargs):
    """sacrebleu takes reference *streams*: pad to the most references with None and transpose."""
    refs = [[r] if isinstance(r, str) else list(r) for r in refs]
    width = max(map(len, refs))
    streams = [list(s) for s in zip(*[r + [None] * (width - len(r)) for r in refs])]
    return sacrebleu.corpus_bleu(hyps, streams, **kwargs)


def _assert_same_bleu(got: T.BleuScore, expected, smooth: str = "exp"):
    assert _close(got.score, expected.score), (got.score, expected.score)
    assert (got.hyp_len, got.ref_len) == (expected.sys_len, expected.ref_len)
    if smooth != "add-k":  # sacrebleu reports add-k's counts after adding k, ours are the raw counts
        assert got.counts == list(expected.counts) and got.totals == list(expected.totals)
    assert got.bp == pytest.approx(expected.bp, rel=1e-12)
    assert got.precisions == pytest.approx(list(expected.precisions), rel=1e-12)


def _perturb(words: list[str], rng: random.Random) -> list[str]:
    """A noisy "system output": drop ~15% of the words and swap a few neighbours."""
    out = [w for w in words if rng.random() > 0.15]
    for _ in range(len(out) // 6):
        i = rng.randrange(max(len(out) - 1, 1))
        out[i : i + 2] = out[i : i + 2][::-1]
    return out


def _english(n: int = 120, max_words: int = 120) -> list[str]:
    paragraphs = [" ".join(p.split()) for p in data.pydoc_text().split("\n\n")]
    return [p for p in paragraphs if 3 <= len(p.split()) <= max_words][:n]


def _chinese() -> list[list[str]]:
    """Gold sentences as word lists, joined in pairs so segments are a few dozen characters long."""
    gold = data.chinese_gold()
    return [gold[i] + gold[i + 1] for i in range(0, len(gold) - 1, 2)]


# ---------------------------------------------------------------------------------------------
# Tokenizers
# ---------------------------------------------------------------------------------------------

# pieces that exercise every 13a rule: punctuation, digits around . , -, entities, <skipped>, newlines
_PIECES = list("abcXYZ019 .,-'\"&<>;:!?()[]{}|~^_`@#$%*+=/\\\n\t") + [
    "&quot;", "&amp;", "&lt;", "&gt;", "&amp;lt;", "<skipped>", "-\n",
    "3.14", "1,000", "1990-2000", "é", "中文", "。", "—", "“",
]  # fmt: skip
# and for "zh": Han characters, CJK and full-width punctuation, the ideographic space, an em dash
_ZH_PIECES = _PIECES + list("我们的模型。，！？、（）《》：；“”…—ｶＡ１") + [" \u3000 ", "\u2014"]


@PROPERTY
@given(st.lists(st.sampled_from(_PIECES), max_size=40).map("".join))
def test_tokenize_13a_matches_sacrebleu(line):
    assert T.tokenize_13a(line) == Tokenizer13a()(line)


def test_tokenize_13a_on_every_ascii_character_and_the_corpus():
    sacre = Tokenizer13a()
    for c in map(chr, range(128)):
        for line in (c, f"a{c}b", f"1{c}2", f"{c}{c}"):
            assert T.tokenize_13a(line) == sacre(line), repr(line)
    for p in _english(400, 400):
        assert T.tokenize_13a(p) == sacre(p)
    expected = "Hello , world ! It costs $ 3.50 ( 1990 - 2000 ) ."
    assert T.tokenize_13a("Hello, world! It costs $3.50 (1990-2000).") == expected


def test_chinese_character_table_matches_sacrebleu_on_every_code_point():
    sacre = TokenizerZh._is_chinese_char
    astral = range(0x10000, 0x110000, 97)  # the table has nothing up there; sample it
    for cp in [*range(0x10000), *astral, 0x20000, 0x2A6D6, 0x2F800, 0x2FA1D]:
        c = chr(cp)
        assert T.is_chinese_char(c) == sacre(c), hex(cp)


@PROPERTY
@given(st.lists(st.sampled_from(_ZH_PIECES), max_size=40).map("".join))
def test_tokenize_zh_matches_sacrebleu(line):
    assert T.tokenize_zh(line) == TokenizerZh()(line)


def test_tokenize_zh_example():
    assert T.tokenize_zh("大模型需要GPU，3.5倍！") == "大 模 型 需 要 GPU ， 3.5 倍 ！"


@PROPERTY
@given(st.text(max_size=60))
def test_tokenize_rouge_matches_rouge_score(text):
    assert T.tokenize_rouge(text) == ROUGE._tokenizer.tokenize(text)


# ---------------------------------------------------------------------------------------------
# BLEU
# ---------------------------------------------------------------------------------------------


def test_corpus_bleu_english_one_and_several_references():
    rng = random.Random(0)
    refs = _english()
    hyps = [" ".join(_perturb(r.split(), rng)) for r in refs]
    _assert_same_bleu(T.corpus_bleu(hyps, refs), sacrebleu.corpus_bleu(hyps, [refs]))
    # 1 to 3 references per hypothesis (the extra ones are other noisy copies)
    multi = [[r] + [" ".join(_perturb(r.split(), rng)) for _ in range(rng.randrange(3))] for r in refs]
    got = T.corpus_bleu(hyps, multi)
    _assert_same_bleu(got, _sacre_corpus(hyps, multi))
    assert got.score > T.corpus_bleu(hyps, refs).score  # more references, more matches
    assert _close(T.corpus_bleu(refs, refs).score, 100.0)


def test_modified_precision_and_brevity_penalty_are_sacrebleus_statistics():
    rng = random.Random(1)
    refs = [[r] + [" ".join(_perturb(r.split(), rng)) for _ in range(rng.randrange(3))] for r in _english(60)]
    hyps = [" ".join(_perturb(r[0].split(), rng)) for r in refs]
    expected = _sacre_corpus(hyps, refs)
    split = lambda s: T.tokenize_13a(s).split()  # noqa: E731
    hyp_tokens = [split(h) for h in hyps]
    ref_tokens = [[split(r) for r in rs] for rs in refs]
    for n in range(1, 5):
        stats = [T.modified_precision(h, rs, n) for h, rs in zip(hyp_tokens, ref_tokens)]
        assert sum(m for m, _ in stats) == expected.counts[n - 1]
        assert sum(t for _, t in stats) == expected.totals[n - 1]
    bp = T.brevity_penalty([len(h) for h in hyp_tokens], [[len(r) for r in rs] for rs in ref_tokens])
    assert bp == pytest.approx(expected.bp, rel=1e-12)


def test_modified_precision_clips_and_brevity_penalty_edges():
    # "the" x7 against references with at most two "the": 2 of 7 unigrams match (Papineni et al.'s example)
    hyp = "the the the the the the the".split()
    assert T.modified_precision(hyp, ["the cat is on the mat".split(), "there is a cat on the mat".split()], 1) == (2, 7)
    assert T.modified_precision(["a"], [["a"]], 2) == (0, 0)
    assert T.brevity_penalty([10], [[8, 12]]) == 1.0  # a tie goes to the shorter reference
    assert T.brevity_penalty([0], [[5]]) == 0.0
    assert T.brevity_penalty([5], [[10]]) == pytest.approx(math.exp(-1))


@pytest.mark.parametrize("smooth", T.SMOOTH_METHODS)
def test_corpus_bleu_smoothing_and_short_segments(smooth):
    rng = random.Random(1)
    refs = [r for r in _english(400) if len(r.split()) <= 12][:60]
    hyps = [" ".join(_perturb(r.split(), rng)[:4]) for r in refs]  # short: few or no 4-gram matches
    hyps[3] = ""  # an empty output: no n-grams, counts only towards the brevity penalty
    expected = sacrebleu.corpus_bleu(hyps, [refs], smooth_method=smooth)
    _assert_same_bleu(T.corpus_bleu(hyps, refs, smooth=smooth), expected, smooth)
    for h, r in list(zip(hyps, refs))[:20]:
        for eff in (True, False):
            got = T.sentence_bleu(h, r, smooth=smooth, effective_order=eff)
            expected = sacrebleu.sentence_bleu(h, [r], smooth_method=smooth, use_effective_order=eff)
            _assert_same_bleu(got, expected, smooth)


def test_bleu_empty_hypotheses_score_zero():
    refs = ["the cat sat on the mat", "a dog"]
    got = T.corpus_bleu(["", ""], refs)
    _assert_same_bleu(got, sacrebleu.corpus_bleu(["", ""], [refs]))
    assert got.score == 0.0 and got.bp == 0.0
    _assert_same_bleu(T.corpus_bleu([""], [""]), sacrebleu.corpus_bleu([""], [[""]]))


def test_corpus_bleu_chinese():
    rng = random.Random(2)
    sentences = _chinese()
    refs = ["".join(words) for words in sentences]
    hyps = ["".join(_perturb(words, rng)) for words in sentences]
    got = T.corpus_bleu(hyps, refs, tokenize="zh")
    _assert_same_bleu(got, sacrebleu.corpus_bleu(hyps, [refs], tokenize="zh"))
    assert got.hyp_len > 5 * len(hyps)  # one token per character, not per sentence
    # a second reference per sentence, and the wrong tokenizer for comparison
    multi = [[r, "".join(_perturb(list(r), rng))] for r in refs]
    _assert_same_bleu(T.corpus_bleu(hyps, multi, tokenize="zh"), _sacre_corpus(hyps, multi, tokenize="zh"))
    _assert_same_bleu(T.corpus_bleu(hyps, refs), sacrebleu.corpus_bleu(hyps, [refs]))


_WORDS = st.sampled_from("the a cat dog sat on mat , . 1 2.5 -".split())
_SENTENCE = st.lists(_WORDS, max_size=12).map(" ".join)


@PROPERTY
@given(
    st.lists(st.tuples(_SENTENCE, st.lists(_SENTENCE, min_size=1, max_size=3)), min_size=1, max_size=4),
    st.sampled_from(T.SMOOTH_METHODS),
)
def test_corpus_bleu_random_corpora_match_sacrebleu(corpus, smooth):
    hyps, refs = [h for h, _ in corpus], [r for _, r in corpus]
    got = T.corpus_bleu(hyps, refs, smooth=smooth)
    _assert_same_bleu(got, _sacre_corpus(hyps, refs, smooth_method=smooth), smooth)


# ---------------------------------------------------------------------------------------------
# ROUGE
# ---------------------------------------------------------------------------------------------


def _assert_same_rouge(target, prediction):
    expected = ROUGE.score(target, prediction)
    got = {
        "rouge1": T.rouge_n(target, prediction, 1),
        "rouge2": T.rouge_n(target, prediction, 2),
        "rouge3": T.rouge_n(target, prediction, 3),
        "rougeL": T.rouge_l(target, prediction),
    }
    for key, score in got.items():
        assert tuple(score) == pytest.approx(tuple(expected[key]), rel=1e-12, abs=1e-15), key


def test_rouge_on_english_paragraphs():
    rng = random.Random(3)
    for target in _english(80, 100):
        prediction = " ".join(_perturb(target.split(), rng))
        _assert_same_rouge(target, prediction)
    _assert_same_rouge(target, target)
    assert T.rouge_l(target, target) == (1.0, 1.0, 1.0)


def test_rouge_edge_cases():
    for target, prediction in [("", ""), ("", "a b"), ("a b", ""), ("!!", "a"), ("a", "a"), ("中文 only", "only")]:
        _assert_same_rouge(target, prediction)
    # LCS rewards order without adjacency: "the cat sat" inside "the black cat really sat"
    assert T.rouge_l("the cat sat", "the black cat really sat") == pytest.approx((0.6, 1.0, 0.75))
    assert T.lcs_length(list("ABCBDAB"), list("BDCABA")) == 4


@PROPERTY
@given(_SENTENCE, _SENTENCE)
def test_rouge_random_texts_match_rouge_score(target, prediction):
    _assert_same_rouge(target, prediction)


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call,exc,match",
    [
        (lambda: T.corpus_bleu([], []), ValueError, "empty corpus"),
        (lambda: T.corpus_bleu("a cat", ["a cat"]), TypeError, "hypotheses must be a list"),
        (lambda: T.corpus_bleu(["a cat"], "a cat"), TypeError, "references must be a list"),
        (lambda: T.corpus_bleu(["a", "b"], ["a"]), ValueError, "2 hypotheses but 1 reference"),
        (lambda: T.corpus_bleu([["a"]], ["a"]), TypeError, r"hypotheses\[0\] must be a str"),
        (lambda: T.corpus_bleu(["a"], [[1]]), TypeError, r"references\[0\] must be a str or a list of str"),
        (lambda: T.corpus_bleu(["a"], [[]]), ValueError, r"references\[0\] is empty"),
        (lambda: T.corpus_bleu(["a"], ["a"], tokenize="intl"), ValueError, "tokenize must be"),
        (lambda: T.corpus_bleu(["a"], ["a"], smooth="add-one"), ValueError, "smooth must be"),
        (lambda: T.sentence_bleu(None, ["a"]), TypeError, "hypothesis must be a str"),
        (lambda: T.rouge_n(["a"], "a"), TypeError, "target must be a str"),
        (lambda: T.rouge_l("a", None), TypeError, "prediction must be a str"),
        (lambda: T.rouge_n("a", "a", 0), ValueError, "n must be >= 1"),
        (lambda: T.modified_precision(["a"], [], 1), ValueError, "non-empty list"),
        (lambda: T.modified_precision(["a"], [["a"]], 0), ValueError, "n must be >= 1"),
        (lambda: T.brevity_penalty([3, 4], [[3]]), ValueError, "one list of reference lengths per hypothesis"),
        (lambda: T.brevity_penalty([3], [[]]), ValueError, "at least one reference length"),
    ],
)
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
