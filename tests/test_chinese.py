"""Chinese segmentation: exact agreement with jieba (the oracle), the matching rules, the metrics."""
import math
import os

import pytest

from llmlab.data import FORTUNES_ZH, chinese_gold, chinese_sentences
from llmlab.tokenization import chinese as zh

jieba = pytest.importorskip("jieba")
jieba.setLogLevel(60)


@pytest.fixture(scope="module")
def dictionary():
    return zh.load_dictionary()


@pytest.fixture(scope="module")
def hmm():
    return zh.HMM.from_jieba()


def _fortunes():
    if not os.path.isfile(FORTUNES_ZH):
        if os.environ.get("LLMLAB_REQUIRE_FORTUNES"):
            pytest.fail(f"{FORTUNES_ZH} is missing but CI requires it (apt-get install fortunes-zh)")
        pytest.skip("Debian's fortunes-zh is not installed (apt-get install fortunes-zh)")
    return chinese_sentences()


EDGE_CASES = [
    "", " ", "我来到北京清华大学", "他来到了网易杭研大厦", "GPU上跑SmolLM2只要3.5秒，价格是120元！",
    "  空格  和\t制表符\r\n换行", "欧阳娜娜在2024年第三季度发布了新歌", "这是一个C++和C#的例子-测试_下划线。",
    "🙂表情符号和ｆｕｌｌｗｉｄｔｈ全角字母", "結合成分子時", "ABC", "１２３", "的的的的的",
]


@pytest.mark.parametrize("text", EDGE_CASES)
@pytest.mark.parametrize("use_hmm", [True, False])
def test_cut_equals_jieba_on_edge_cases(text, use_hmm, dictionary, hmm):
    assert zh.cut(text, dictionary, hmm if use_hmm else None) == list(jieba.cut(text, HMM=use_hmm))


def test_cut_equals_jieba_on_every_fortunes_sentence(dictionary, hmm):
    sentences = _fortunes()
    assert len(sentences) >= 2000
    for use_hmm in (True, False):
        model = hmm if use_hmm else None
        bad = [s for s in sentences if zh.cut(s, dictionary, model) != list(jieba.cut(s, HMM=use_hmm))]
        assert not bad, f"HMM={use_hmm}: {len(bad)} of {len(sentences)} differ, e.g. {bad[:3]}"


def test_cut_equals_jieba_on_the_gold_set(dictionary, hmm):
    gold = chinese_gold()
    assert len(gold) >= 200
    for use_hmm in (True, False):
        texts = ["".join(words) for words in gold]
        bad = [t for t in texts if zh.cut(t, dictionary, hmm if use_hmm else None) != list(jieba.cut(t, HMM=use_hmm))]
        assert not bad, f"HMM={use_hmm}: {bad[:3]}"


def test_gold_set_format():
    for words in chinese_gold():
        assert all(w and " " not in w for w in words)
        assert len("".join(words)) >= 4


def test_viterbi_equals_jieba_finalseg(hmm):
    from jieba import finalseg

    for text in ["小明硕士毕业于中国科学院计算所", "杭研大厦", "欧阳娜娜", "我", "生活就像一盒巧克力"]:
        _, tags = finalseg.viterbi(text, "BMES", finalseg.start_P, finalseg.trans_P, finalseg.emit_P)
        assert zh.viterbi(text, hmm) == tags
        assert zh.hmm_cut(text, hmm) == list(finalseg.cut(text))


def test_max_matching_directions(dictionary):
    # the textbook ambiguity: 研究生/命 (forward) vs 研究/生命 (backward)
    assert zh.forward_max_match("研究生命起源", dictionary) == ["研究生", "命", "起源"]
    assert zh.backward_max_match("研究生命起源", dictionary) == ["研究", "生命", "起源"]
    assert zh.bidirectional_max_match("研究生命起源", dictionary) == ["研究", "生命", "起源"]
    assert zh.forward_max_match("", dictionary) == []
    assert zh.forward_max_match("研究生命", dictionary, max_len=1) == list("研究生命")


def test_bidirectional_rules():
    d = zh.Dictionary.from_words([("ab", 1), ("bc", 1), ("abc", 1), ("cd", 1), ("d", 1)])
    # FMM: abc/d (2 words), BMM: ab/cd (2 words): same count, FMM has 1 single, BMM none -> BMM
    assert zh.forward_max_match("abcd", d) == ["abc", "d"]
    assert zh.backward_max_match("abcd", d) == ["ab", "cd"]
    assert zh.bidirectional_max_match("abcd", d) == ["ab", "cd"]
    d2 = zh.Dictionary.from_words([("abc", 1), ("de", 1), ("cde", 1)])
    # FMM: abc/de (2), BMM: a/b/cde (3): fewer words wins
    assert zh.bidirectional_max_match("abcde", d2) == ["abc", "de"]


def test_dag_and_route(dictionary):
    dag = zh.build_dag("去北京大学玩", dictionary)
    assert dag[1] == [1, 2, 4] and dag[5] == [5]  # 北, 北京, 北京大学; 玩
    words = zh.route_words("去北京大学玩", zh.best_route("去北京大学玩", dag, dictionary))
    assert words == ["去", "北京大学", "玩"]


def test_evaluate_spans():
    gold = [["我们", "喜欢", "火锅"], ["的", "的"]]
    pred = [["我们", "喜", "欢", "火锅"], ["的的"]]
    s = zh.evaluate(gold, pred)
    assert (s.precision, s.recall) == (2 / 5, 2 / 5)
    assert s.f1 == pytest.approx(0.4)
    assert math.isnan(s.oov_recall)
    d = zh.Dictionary.from_words([("我们", 5), ("喜欢", 3)])
    # gold words absent from d: 火锅, 的, 的 -> only 火锅 recovered
    assert zh.evaluate(gold, pred, d).oov_recall == pytest.approx(1 / 3)
    assert zh.word_spans(["的", "的"]) == {(0, 1), (1, 2)}


@pytest.mark.parametrize(
    "call,exc,match",
    [
        (lambda d: zh.cut(b"bytes", d), TypeError, "must be a str"),
        (lambda d: zh.forward_max_match(None, d), TypeError, "must be a str"),
        (lambda d: zh.Dictionary.from_words([]), ValueError, "empty"),
        (lambda d: zh.Dictionary.from_words([("a", 0)]), ValueError, "empty"),
        (lambda d: zh.Dictionary.from_words([("", 3)]), ValueError, "non-empty"),
        (lambda d: zh.evaluate([["a"]], []), ValueError, "1 gold sentences but 0"),
        (lambda d: zh.evaluate([], []), ValueError, "gold is empty"),
        (lambda d: zh.evaluate([["ab"]], [["a", "c"]]), ValueError, "different texts"),
        (lambda d: zh.viterbi("", zh.HMM.from_jieba()), ValueError, "at least one"),
        (lambda d: zh.tags_to_words("ab", "B"), ValueError, "got 2 characters and 1 tags"),
    ],
)
def test_bad_input(call, exc, match, dictionary):
    with pytest.raises(exc, match=match):
        call(dictionary)


def test_bad_dictionary_file(tmp_path):
    p = tmp_path / "dict.txt"
    p.write_text("词 12 n\n坏行没有频率\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 2"):
        zh.load_dictionary(str(p))
    p.write_text("", encoding="utf-8")
    with pytest.raises(ValueError, match="empty"):
        zh.load_dictionary(str(p))
