"""WordPiece: unit tests, and oracle tests against HF ``tokenizers`` loading MiniLM's tokenizer.json."""
import pytest

from llmlab.data import pydoc_topics
from llmlab.models import minilm_dir
from llmlab.tokenization import wordpiece as wp
from tests.test_bpe import CHINESE, fortune_sentences, old_characters, skip_without_fortunes

tokenizers = pytest.importorskip("tokenizers")

ACCENTED = [
    "Café naïve Ångström résumé",
    "ÉCOLE Über façade jalapeño Øresund Đorđe Łódź",
    "İstanbul ΟΔΟΣ Σ ß ﬁ ligature ² ½ №",
    "Zürich 的 Müller 先生 说：“Guten Tag！”",
    "東京タワー and 서울 in one line, 中文English混合",
    "e\u0301 combining, a\u0308 and \u00e4 compared",
]
EDGE_CASES = [
    "",
    "   ",
    "hello, world! (it's) [x] {y} <z> a+b=c $5 ^_^ `code` a|b ~tilde",
    "[CLS] hi [MASK] [cls] [SEP][SEP]",
    "tabs\tnew\nlines\r\nand\u2028separators\u3000here",
    "control\x00chars\x01removed\ufffd\u200bzero-width",
    "x" * 100 + " " + "y" * 101,
    "unaffable antidisestablishmentarianism",
    "emoji 😀 and symbols € © ×",
    "— dashes – and “quotes” ‘single’ «guillemets» …",
]


@pytest.fixture(scope="module")
def minilm():
    try:
        return wp.load_minilm_tokenizer()
    except FileNotFoundError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def oracle(minilm):
    tok = tokenizers.Tokenizer.from_file(str(minilm_dir() / "tokenizer.json"))
    tok.no_padding()  # padding and truncation to 128 are baked into MiniLM's tokenizer.json
    tok.no_truncation()
    return tok


def test_basic_tokenize_steps():
    assert wp.clean_text("a\x00b\tc\u200bd\ufffd\x7f e\u3000f") == "ab cd e f"
    assert wp.pad_cjk("我爱NLP") == " 我  爱 NLP"
    assert wp.strip_accents("Café naïve") == "Cafe naive"
    assert wp.basic_tokenize("Hello, WORLD! Café  你好") == ["hello", ",", "world", "!", "cafe", "你", "好"]
    assert wp.basic_tokenize("Hello, WORLD!", do_lower_case=False) == ["Hello", ",", "WORLD", "!"]
    assert wp.basic_tokenize("a$b^c€d") == ["a", "$", "b", "^", "c€d"]  # ASCII symbols split, € does not


def test_wordpiece_greedy_longest_match():
    vocab = {"un": 0, "##aff": 1, "##able": 2, "##a": 3, "a": 4, "[UNK]": 5, "##ff": 6}
    assert wp.wordpiece("unaffable", vocab) == ["un", "##aff", "##able"]
    assert wp.wordpiece("a", vocab) == ["a"]
    assert wp.wordpiece("unx", vocab) == ["[UNK]"]  # one unmatched part makes the whole word unknown
    assert wp.wordpiece("a" * 5, vocab, max_chars=4) == ["[UNK]"]


def test_minilm_encode_adds_cls_and_sep(minilm):
    ids = minilm.encode("Hello world")
    assert ids[0] == minilm.vocab["[CLS]"] == 101 and ids[-1] == minilm.vocab["[SEP]"] == 102
    assert ids[1:-1] == minilm.encode("Hello world", add_special_tokens=False)
    # Greedy: "##ffa" is the longest match after "una", so "##able" never gets its chance.
    assert minilm.tokenize("unaffable tokenization") == ["una", "##ffa", "##ble", "token", "##ization"]
    assert minilm.decode(minilm.encode("Hello, Tokenization!")) == "hello , tokenization !"


def test_minilm_equals_hf_on_pydoc(minilm, oracle):
    paragraphs = [p for text in pydoc_topics().values() for p in text.split("\n\n")]
    assert [minilm.encode(p) for p in paragraphs] == [e.ids for e in oracle.encode_batch(paragraphs)]


def test_minilm_equals_hf_on_chinese(minilm, oracle):
    sentences = CHINESE + fortune_sentences(1500)
    assert [minilm.encode(s) for s in sentences] == [e.ids for e in oracle.encode_batch(sentences)]
    skip_without_fortunes()
    assert len(sentences) >= 1000


def test_minilm_equals_hf_on_accents_and_edge_cases(minilm, oracle):
    for s in ACCENTED + EDGE_CASES:
        assert minilm.tokenize(s) == oracle.encode(s, add_special_tokens=False).tokens, s
        assert minilm.encode(s) == oracle.encode(s).ids, s


def test_minilm_equals_hf_on_every_old_character(minilm, oracle):
    """Every character assigned in Unicode 3.2 (whose category has not changed since), in context.

    Newer characters can differ: HF's Rust tables and Python's ``unicodedata``/``regex`` carry
    different Unicode versions (e.g. U+0898, added in Unicode 14, is a non-spacing mark for us,
    unassigned and so [UNK] for HF).
    """
    texts = [f"a{c}b {c}{c.upper()}" for c in old_characters()[::2]]
    expected = [e.tokens for e in oracle.encode_batch(texts, add_special_tokens=False)]
    assert [minilm.tokenize(t) for t in texts] == expected


@pytest.mark.parametrize(
    "call,exc,match",
    [
        (lambda t: t.encode(b"bytes"), TypeError, "text must be a str"),
        (lambda t: t.tokenize(None), TypeError, "text must be a str"),
        (lambda t: wp.basic_tokenize(3), TypeError, "text must be a str"),
        (lambda t: t.decode([101, 10**6]), ValueError, "not in the vocabulary"),
        (lambda t: t.decode([101, 1.0]), TypeError, "must hold ints"),
        (lambda t: wp.WordPiece({"a": 0}), ValueError, "lacks the special tokens"),
        (lambda t: wp.WordPiece({"a": "0"}), TypeError, "str piece -> int id"),
    ],
)
def test_bad_input(minilm, call, exc, match):
    with pytest.raises(exc, match=match):
        call(minilm)
