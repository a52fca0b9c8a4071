"""The labelled topic set (llmlab/resources/topics.tsv): its shape, its limits, and the stratified split."""
import re
from collections import Counter

import pytest

from llmlab.data import TOPIC_LABELS, TopicItem, topic_set, train_test_split_items

HAN = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def items():
    return topic_set()


def _strata(items):
    return Counter((it.lang, it.label) for it in items)


def test_size_and_balance(items):
    assert len(items) == 320
    assert TOPIC_LABELS == ("sports", "food", "technology", "weather")
    assert _strata(items) == {(lang, label): 40 for lang in ("en", "zh") for label in TOPIC_LABELS}
    assert all(isinstance(it, TopicItem) for it in items)


def test_file_order_is_grouped(items):
    order = [(lang, label) for lang in ("en", "zh") for label in TOPIC_LABELS]
    keys = [(it.lang, it.label) for it in items]
    assert keys == [key for key in order for _ in range(40)]


def test_lang_filter(items):
    en, zh = topic_set("en"), topic_set("zh")
    assert len(en) == len(zh) == 160
    assert {it.lang for it in en} == {"en"} and {it.lang for it in zh} == {"zh"}
    assert en + zh == items


def test_no_duplicates(items):
    texts = [it.text for it in items]
    assert len(set(texts)) == len(texts)
    assert len({t.strip().lower() for t in texts}) == len(texts)


def test_text_limits_and_script(items):
    for it in items:
        assert it.text == it.text.strip() and "\t" not in it.text and "\n" not in it.text
        han = len(HAN.findall(it.text))
        if it.lang == "en":
            assert han == 0, it.text
            assert 6 <= len(it.text.split()) <= 25, it.text
        else:
            assert 8 <= han <= 40, it.text


def test_file_format():
    from importlib import resources

    raw = (resources.files("llmlab") / "resources" / "topics.tsv").read_bytes()
    assert b"\r" not in raw and raw.endswith(b"\n")
    assert raw.decode("utf-8").splitlines()[0] == "lang\tlabel\ttext"


@pytest.mark.parametrize("fraction", [0.25, 0.5, 0.1])
def test_split_is_stratified_disjoint_and_complete(items, fraction):
    train, test = train_test_split_items(items, test_fraction=fraction, seed=0)
    assert len(train) + len(test) == len(items)
    assert not {it.text for it in train} & {it.text for it in test}
    assert sorted(it.text for it in train + test) == sorted(it.text for it in items)
    n_test = round(40 * fraction)
    assert _strata(test) == {key: n_test for key in _strata(items)}
    assert _strata(train) == {key: 40 - n_test for key in _strata(items)}
    # Both parts keep the input order.
    position = {it: i for i, it in enumerate(items)}
    assert [position[it] for it in train] == sorted(position[it] for it in train)
    assert [position[it] for it in test] == sorted(position[it] for it in test)


def test_split_is_deterministic(items):
    assert train_test_split_items(items, seed=0) == train_test_split_items(items, seed=0)
    assert train_test_split_items(items, seed=3) == train_test_split_items(list(items), seed=3)
    assert train_test_split_items(items, seed=0)[1] != train_test_split_items(items, seed=1)[1]


def test_split_default_is_a_quarter(items):
    train, test = train_test_split_items(items)
    assert (len(train), len(test)) == (240, 80)


@pytest.mark.parametrize("lang", ["EN", "cn", "", None, "both"])
def test_bad_lang(lang):
    with pytest.raises(ValueError, match="lang"):
        topic_set(lang)


@pytest.mark.parametrize("fraction", [0, 1, -0.1, 1.5, float("nan"), True, "0.25"])
def test_bad_fraction(items, fraction):
    with pytest.raises(TypeError if isinstance(fraction, (bool, str)) else ValueError, match="test_fraction"):
        train_test_split_items(items, test_fraction=fraction)


@pytest.mark.parametrize(
    "body, line, what",
    [
        ("en\tsports\tA perfectly fine sentence about a football match.\nen\tpolitics\tVotes were counted.\n", 3, "label"),
        ("fr\tfood\tLe pain est bon.\n", 2, "lang"),
        ("zh\tweather\t   \n", 2, "empty"),
        ("en\tfood\ttoo\tmany fields\n", 2, "fields"),
    ],
)
def test_bad_rows_name_their_line(tmp_path, body, line, what):
    path = tmp_path / "topics.tsv"
    path.write_text("lang\tlabel\ttext\n" + body, encoding="utf-8")
    with pytest.raises(ValueError, match=rf"line {line}\b.*{what}"):
        topic_set(path=str(path))


def test_bad_header(tmp_path):
    path = tmp_path / "topics.tsv"
    path.write_text("label\ttext\nfood\tSoup.\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 1"):
        topic_set(path=str(path))
