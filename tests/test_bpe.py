"""Byte-level BPE: unit tests, and oracle tests against HF ``tokenizers`` (a test-only dependency).

The SmolLM2 oracle is built with ``tokenizers`` from the GGUF's own vocabulary and merges, with the
pre-tokeniser SmolLM2 was trained with (Digits(individual_digits=True) then ByteLevel), the
ByteLevel decoder and the 17 special tokens. Only the raw GGUF fields are shared with llmlab (read
once by ``gguf.GGUFReader``, ~3 s); how llmlab interprets them is what is being tested.
"""
import os
import random
import unicodedata

import pytest

from llmlab.data import FORTUNES_ZH, chinese_sentences, pydoc_text, pydoc_topics
from llmlab.models import smollm2_gguf_path
from llmlab.tokenization import bpe
from llmlab.tokenization.smollm2 import SMOLLM2_PATTERN, gguf_tokenizer_fields, chat_template, load_smollm2_tokenizer

tokenizers = pytest.importorskip("tokenizers")
from tokenizers import pre_tokenizers  # noqa: E402

from tests.oracles import hf_smollm2_tokenizer, hf_train_bpe  # noqa: E402

# A dozen sentences of our own, so that Chinese is tested even where fortunes-zh is not installed.
CHINESE = [
    "今天天气很好，我们去公园散步吧。",
    "自然语言处理是人工智能的一个重要分支。",
    "大型语言模型通过预测下一个词来学习语言。",
    "他说：“这个分词器能处理中文吗？”",
    "北京大学和清华大学都在北京市海淀区。",
    "请把温度调到二十五度，谢谢！",
    "2024年3月15日，会议在上海举行。",
    "我爱吃苹果、香蕉和葡萄。",
    "量子计算机可能会改变密码学的未来。",
    "《红楼梦》是中国古典小说的巅峰之作。",
    "这本书一共有１２３页，价格是４５．６元。",
    "学习Python编程很有意思，especially 用 GPU 训练模型。",
    "繁體中文與简体中文混合的句子也應該正確處理。",
]


def fortune_sentences(limit: int = 1500) -> list[str]:
    """The first ``limit`` sentences of Debian's fortunes-zh, or [] where it is not installed.

    Tests run on ``CHINESE`` + these, then call ``skip_without_fortunes()``: our own sentences are
    always checked, the big sample only where the file exists (CI sets LLMLAB_REQUIRE_FORTUNES).
    """
    if not os.path.isfile(FORTUNES_ZH):
        if os.environ.get("LLMLAB_REQUIRE_FORTUNES"):
            pytest.fail(f"{FORTUNES_ZH} is missing but CI requires it (apt-get install fortunes-zh)")
        return []
    return chinese_sentences()[:limit]


def skip_without_fortunes() -> None:
    if not os.path.isfile(FORTUNES_ZH):
        pytest.skip(f"{FORTUNES_ZH} not found: only the test's own Chinese sentences were checked")


EDGE_CASES = [
    "",
    " ",
    "   leading and trailing spaces   ",
    "\n\n\n",
    "\ttabs\tand\t\ttabs\t",
    "1234567",
    "x = 1234567 + 89",
    "runs of spaces before digits:     42 and\t\t7",
    "3.14159, 1e-10, 0xFF, ２０２４年, ①②③, ²³",
    "<|im_start|>user\n你好<|im_end|>",
    "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|><|endoftext|>",
    "text<|im_end|>more text<|im_start|>",
    "emoji 😀👍🏽🇨🇳 and 👨‍👩‍👧‍👦 family",
    "I'm sure they'll say it's John's, we've, you're, I'd",
    "CAPITALS'S and 'quotes' and \"double\"",
    "mixed 中文 English 混合 text",
    "Café naïve Ångström résumé",
    "def f(x):\n    return x ** 2  # comment\n",
    "\r\n windows\r\nline endings\r\n",
    "a \n1",
    "\u00a0non-breaking\u3000ideographic space",
    "e\u0301 combining marks",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𐍈 𠀀",
]


# ---------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def gguf_fields():
    try:
        path = smollm2_gguf_path()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    return gguf_tokenizer_fields(str(path))


@pytest.fixture(scope="module")
def smollm2(gguf_fields):
    return load_smollm2_tokenizer()


@pytest.fixture(scope="module")
def oracle(gguf_fields):
    return hf_smollm2_tokenizer(gguf_fields)


def old_characters() -> list[str]:
    """Characters assigned in Unicode 3.2 whose general category has not changed since.

    Python's ``unicodedata``, the ``regex`` module and HF's Rust crates each carry their own Unicode
    version; on characters this old they agree, on recent additions they may not.
    """
    old, new = unicodedata.ucd_3_2_0, unicodedata
    return [
        ch
        for ch in map(chr, range(0x30000))
        if not "\ud800" <= ch <= "\udfff" and old.category(ch) != "Cn" and old.category(ch) == new.category(ch)
    ]


def hf_pieces(pre_tokenizer, text: str) -> list[str]:
    """HF's pre-tokens of ``text``, back from the printable byte spelling to text."""
    return [bpe.unicode_to_bytes(p).decode("utf-8") for p, _ in pre_tokenizer.pre_tokenize_str(text)]


# ---------------------------------------------------------------------------------------- pieces


def test_bytes_to_unicode_is_gpt2s_map():
    table = bpe.bytes_to_unicode()
    assert sorted(table) == list(range(256)) and len(set(table.values())) == 256
    assert table[ord(" ")] == "Ġ" and table[ord("\n")] == "Ċ" and table[ord("A")] == "A"
    assert set(table.values()) == set(pre_tokenizers.ByteLevel.alphabet())
    assert bpe.unicode_to_bytes("Ġhello") == b" hello"
    with pytest.raises(ValueError, match="stands for no byte"):
        bpe.unicode_to_bytes("Ġ€")


def test_merge_pair_left_to_right():
    assert bpe.merge_pair([1, 2, 3, 1, 2], (1, 2), 9) == [9, 3, 9]
    assert bpe.merge_pair([5, 5, 5], (5, 5), 7) == [7, 5]
    assert bpe.merge_pair([5, 5, 5, 5], (5, 5), 7) == [7, 7]
    assert bpe.merge_pair([], (1, 2), 9) == [] and bpe.merge_pair([1], (1, 2), 9) == [1]


def test_gpt2_pattern_equals_hf_bytelevel():
    hf = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    text = pydoc_text()[:60_000] + "\n".join(EDGE_CASES + CHINESE)
    assert bpe.pretokenize(text) == hf_pieces(hf, text)


def test_smollm2_pattern_equals_hf_digits_then_bytelevel():
    """One regex does what HF does in two steps; checked on text and on every old-enough character.

    The character sweep uses characters assigned in Unicode 3.2 whose category has not changed
    since: the `regex` module and HF's Rust regex engine carry different Unicode versions, and
    characters added recently (e.g. U+0897, Unicode 14) are letters for one and not the other.
    """
    hf = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    text = pydoc_text()[:60_000] + "\n".join(EDGE_CASES + CHINESE)
    assert bpe.pretokenize(text, SMOLLM2_PATTERN) == hf_pieces(hf, text)
    sweep = "".join(f"a{c}{c}b {c}1  {c} 2" for c in old_characters()[::3])
    assert bpe.pretokenize(sweep, SMOLLM2_PATTERN) == hf_pieces(hf, sweep)


# ---------------------------------------------------------------------------------------- training


def test_incremental_training_equals_naive():
    text = pydoc_text("train")[:20_000]
    fast = bpe.train_bpe(text, 600, special_tokens=["<|endoftext|>"])
    slow = bpe.train_bpe_naive(text, 600, special_tokens=["<|endoftext|>"])
    assert fast == slow
    merges, vocab = fast
    assert len(merges) == 600 - 256 - 1 and len(vocab) == 600 and vocab[599] == b"<|endoftext|>"
    assert all(vocab[256 + r] == vocab[a] + vocab[b] for r, (a, b) in enumerate(merges))


def test_training_cuts_out_special_tokens():
    merges, vocab = bpe.train_bpe("<|sep|>" * 50 + "ab ab", 300, special_tokens=["<|sep|>"])
    # Without cutting them out, "<|sep|>" would be the most frequent text. Words: "ab", " ab".
    assert [vocab[256 + r] for r in range(len(merges))] == [b"ab", b" ab"]
    assert len(vocab) == 256 + 2 + 1 and vocab[258] == b"<|sep|>"  # no pair left: training stops early


@pytest.mark.parametrize("corpus", ["pydoc", "chinese"])
def test_training_equals_hf_bpe_trainer(corpus):
    """Same merges, in the same order, as HF's BpeTrainer with a ByteLevel pre-tokeniser.

    Both pick the pair with the highest count and break ties toward the smaller pair of ids. HF
    numbers bytes in the order of their printable stand-ins (its alphabet is sorted by character)
    and merged tokens in order of creation; llmlab's ``_tie_key`` uses the same order, so the
    semantics coincide and the comparison can be exact. The Chinese corpus is the harder case:
    most pairs there have counts of 1 or 2, so most merges are decided by the tie-break.
    """
    text = pydoc_text("train")[:150_000] if corpus == "pydoc" else "\n".join(CHINESE + fortune_sentences(1500))
    merges, vocab = bpe.train_bpe(text, 1500)
    assert [(vocab[a], vocab[b]) for a, b in merges] == hf_train_bpe(text, 1500)
    if corpus == "chinese":
        skip_without_fortunes()


@pytest.mark.parametrize(
    "call,exc,match",
    [
        (lambda: bpe.train_bpe("abc", 255), ValueError, "vocab_size must be >= 256"),
        (lambda: bpe.train_bpe("abc", 256, special_tokens=["<s>"]), ValueError, "257"),
        (lambda: bpe.train_bpe("abc", 300.0), TypeError, "vocab_size must be an int"),
        (lambda: bpe.train_bpe(b"abc", 300), TypeError, "text must be a str"),
        (lambda: bpe.train_bpe("abc", 300, special_tokens="<s>"), TypeError, "wrap it"),
        (lambda: bpe.train_bpe("abc", 300, special_tokens=["<s>", "<s>"]), ValueError, "distinct"),
        (lambda: bpe.train_bpe("abc", 300, special_tokens=[""]), TypeError, "non-empty"),
        (lambda: bpe.train_bpe_naive("abc", 10), ValueError, "vocab_size must be >= 256"),
        (lambda: bpe.train_bpe("a\ud800", 300), ValueError, "lone surrogate"),
    ],
)
def test_training_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# ---------------------------------------------------------------------------------------- tokenizer


@pytest.fixture(scope="module")
def trained():
    return bpe.ByteBPE.train(pydoc_text("train")[:50_000], 600, special_tokens=["<|endoftext|>", "<|sep|>"])


def _random_strings(n: int, seed: int = 0) -> list[str]:
    """Random strings mixing ASCII, Latin-1, CJK, emoji, controls and any valid code point."""
    rng = random.Random(seed)
    pools = [range(0, 128), range(128, 0x800), range(0x4E00, 0xA000), range(0x1F300, 0x1FAFF), range(0xE000, 0x110000)]
    out = []
    for _ in range(n):
        chars = [chr(rng.choice(rng.choice(pools))) for _ in range(rng.randint(0, 30))]
        out.append("".join(chars))
    return out


def test_trained_tokenizer_round_trips_any_string(trained):
    tricky = EDGE_CASES + CHINESE + ["\x00\x01\x7f\x80", "".join(map(chr, range(256))), "\U0010ffff\ufeff\u200d"]
    for s in tricky + _random_strings(300):
        ids = trained.encode(s)
        assert trained.decode(ids) == s
        assert trained.decode_bytes(ids) == s.encode("utf-8")
    text = pydoc_text("val")[:20_000]
    ids = trained.encode(text)
    assert trained.decode(ids) == text and len(ids) < len(text.encode()) / 2  # it does compress


def test_special_tokens(trained):
    eot, sep = trained.special_tokens["<|endoftext|>"], trained.special_tokens["<|sep|>"]
    text = "a<|endoftext|>b<|sep|>"
    assert trained.encode(text) == [*trained.encode("a"), eot, *trained.encode("b"), sep]
    assert trained.encode(text, allowed_special={"<|sep|>"}) == [*trained.encode_ordinary("a<|endoftext|>b"), sep]
    plain = trained.encode(text, allowed_special="none")
    assert plain == trained.encode_ordinary(text) and eot not in plain and sep not in plain
    assert trained.encode(text, allowed_special=()) == plain
    assert trained.decode(trained.encode(text)) == text == trained.decode(plain)


def test_decode_of_partial_utf8(trained):
    ids = trained.encode("你")  # 3 bytes, no merge learnt from English: 3 tokens
    assert trained.decode_bytes(ids[:2]) == "你".encode()[:2]
    assert trained.decode(ids[:2]) == "\ufffd"
    assert trained.decode(ids[:2]) + trained.decode(ids[2:]) != "你"  # decode per token loses it...
    assert trained.decode_bytes(ids[:2]) + trained.decode_bytes(ids[2:]) == "你".encode()  # ...bytes do not


@pytest.mark.parametrize(
    "call,exc,match",
    [
        (lambda t: t.encode(b"bytes"), TypeError, "text must be a str"),
        (lambda t: t.encode(None), TypeError, "text must be a str"),
        (lambda t: t.encode_ordinary(3), TypeError, "text must be a str"),
        (lambda t: t.encode("x", allowed_special={"<|nope|>"}), ValueError, "unknown special token"),
        (lambda t: t.encode("x", allowed_special="<|sep|>"), ValueError, "collection of names"),
        (lambda t: t.encode("x", allowed_special=5), TypeError, "collection of names"),
        (lambda t: t.encode("ok \ud83d ok"), ValueError, "lone surrogate U\\+D83D at index 3"),
        (lambda t: t.decode([1, 100_000]), ValueError, "not in the vocabulary"),
        (lambda t: t.decode([1, "a"]), TypeError, "must hold ints"),
        (lambda t: t.decode("abc"), TypeError, "sequence of token ids"),
        (lambda t: bpe.ByteBPE([(1, 2)], {1: b"a"}), ValueError, "not in the vocabulary"),
        (lambda t: bpe.ByteBPE([], {1: "a"}), TypeError, "int id -> bytes"),
        (lambda t: bpe.ByteBPE([], {0: b"x"}, {"<s>": 0}), ValueError, "special token"),
        (lambda t: bpe.pretokenize(42), TypeError, "text must be a str"),
    ],
)
def test_tokenizer_bad_input(trained, call, exc, match):
    with pytest.raises(exc, match=match):
        call(trained)


# ---------------------------------------------------------------------------------------- SmolLM2


def test_smollm2_loads_the_gguf_vocabulary(smollm2):
    assert smollm2.vocab_size == 49_152 and len(smollm2.merges) == 48_900
    assert smollm2.special_tokens["<|endoftext|>"] == 0
    assert smollm2.special_tokens["<|im_start|>"] == 1 and smollm2.special_tokens["<|im_end|>"] == 2
    assert len(smollm2.special_tokens) == 17
    assert smollm2.vocab[smollm2.encode(" the")[0]] == b" the"


def test_smollm2_equals_hf_on_pydoc(smollm2, oracle):
    topics = list(pydoc_topics().values())
    assert [smollm2.encode(t) for t in topics] == [e.ids for e in oracle.encode_batch(topics)]
    assert smollm2.decode(oracle.encode(topics[0]).ids) == topics[0]


def test_smollm2_equals_hf_on_chinese(smollm2, oracle):
    sentences = CHINESE + fortune_sentences(1500)
    assert [smollm2.encode(s) for s in sentences] == [e.ids for e in oracle.encode_batch(sentences)]
    assert all(smollm2.decode(smollm2.encode(s)) == s for s in sentences)
    skip_without_fortunes()
    assert len(sentences) >= 1000


def test_smollm2_equals_hf_on_edge_cases(smollm2, oracle):
    for s in EDGE_CASES:
        ids = smollm2.encode(s)
        assert ids == oracle.encode(s).ids, s
        assert smollm2.decode(ids) == s == oracle.decode(ids, skip_special_tokens=False)
    assert smollm2.encode("") == [] and smollm2.encode("<|im_end|>") == [2]
    assert smollm2.encode("x = 1234567") == smollm2.encode("x = ") + [smollm2.encode(d)[0] for d in "1234567"]


def test_smollm2_missing_byte_is_an_error(smollm2, oracle):
    """SmolLM2 has no token for 21 bytes (e.g. 0x04); HF silently drops them, we refuse."""
    assert oracle.decode(oracle.encode("a\x04b").ids) == "ab"
    with pytest.raises(ValueError, match="byte 0x04"):
        smollm2.encode("a\x04b")


def test_chat_template_matches_the_gguf_template(gguf_fields, smollm2, oracle):
    jinja2 = pytest.importorskip("jinja2")
    template = jinja2.Template(gguf_fields["tokenizer.chat_template"])
    conversations = [
        [{"role": "user", "content": "你好！What is 2+2?"}],
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello! How can I help?"},
            {"role": "user", "content": "Tell me a joke."},
        ],
        [],
    ]
    for messages in conversations:
        for gen in (True, False):
            text = chat_template(messages, add_generation_prompt=gen)
            assert text == template.render(messages=messages, add_generation_prompt=gen)
            assert smollm2.encode(text) == oracle.encode(text).ids
    first = smollm2.encode(chat_template([{"role": "user", "content": "Hi"}]))
    assert first[0] == 1 and first.count(2) == 2  # <|im_start|> first; system and user turns closed
    with pytest.raises(TypeError, match="list of"):
        chat_template("Hi")
    with pytest.raises(TypeError, match="message 0"):
        chat_template([{"role": "user"}])
