"""The diagrams of notebooks 01 and 02 (llmlab.diagrams.ngram, llmlab.diagrams.segmentation), on real inputs:
pydoc's bytes and their n-gram counts, a 5-gram model's next-byte distribution at several temperatures, jieba's
lattice and route of real sentences. Each returns a Figure, and bad arguments are refused with a TypeError or a
ValueError that names them."""
import matplotlib

matplotlib.use("Agg")

import warnings  # noqa: E402
from functools import lru_cache  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from llmlab import ngram  # noqa: E402
from llmlab.data import pydoc_bytes  # noqa: E402
from llmlab.diagrams import ngram as N  # noqa: E402
from llmlab.diagrams import segmentation as S  # noqa: E402
from llmlab.inference.generation import temperature_softmax  # noqa: E402
from llmlab.tokenization import chinese as zh  # noqa: E402

LABELS = [N.byte_label(b) for b in range(256)]


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


@lru_cache(maxsize=1)
def _text() -> list[int]:
    return pydoc_bytes("train")[:50_000]


@lru_cache(maxsize=None)
def _counts(n: int):
    return ngram.count_ngrams(_text(), n)


@lru_cache(maxsize=1)
def _after_the() -> torch.Tensor:
    """Log-probabilities of the byte after 'the ' under a 4-gram model of 50K bytes of pydoc."""
    return ngram.NGramLM(4, k=0.01).fit(_text()).probs(list(b"the ")).log()


@lru_cache(maxsize=1)
def _dictionary():
    return zh.load_dictionary()


def _texts(fig: Figure) -> list[str]:
    return [t.get_text() for t in fig.axes[0].texts]


# ---------------------------------------------------------------------------------------------- byte_label


def test_byte_label_shows_whitespace_and_non_ascii_bytes():
    assert [N.byte_label(b) for b in b"a ~\n\t"] == ["a", "␣", "~", "⏎", "→"]
    assert N.byte_label("模".encode()[0]) == "\\xe6"
    assert N.byte_label(0) == "\\x00"


# ---------------------------------------------------------------------------------------------- counting_window


@pytest.mark.parametrize("n, start, length", [(1, 0, 5), (3, 1000, 14), (4, 20_000, 16), (5, 7, 5), (2, 0, 32)])
def test_counting_window_returns_a_figure_with_the_real_counts(n, start, length):
    text = _text()
    fig = N.counting_window(text, n, _counts(n), start=start, length=length)
    assert isinstance(fig, Figure)
    shown = _texts(fig)
    piece = text[start : start + length]
    for w in range(length - n + 1):  # every window's count, as count_ngrams gave it
        assert f"{_counts(n)[tuple(piece[w : w + n])]:,}" in shown
    assert f"{length} bytes, {n}-grams: {length - n + 1} overlapping windows (T - n + 1 = {length} - {n} + 1)" \
        == fig.axes[0].get_title()


def test_counting_window_takes_bytes_and_chinese():
    data = "语言模型 counts bytes".encode()
    counts = ngram.count_ngrams(list(data), 2)
    fig = N.counting_window(data, 2, counts, length=len(data), title="UTF-8")
    assert isinstance(fig, Figure) and fig.axes[0].get_title() == "UTF-8"
    assert "\\xe8" in _texts(fig)  # 语 is 0xe8 0xaf 0xad in UTF-8


@pytest.mark.parametrize("kwargs, error, name", [
    (dict(tokens="the text"), TypeError, "tokens"),
    (dict(tokens=[300] * 20), ValueError, "tokens"),
    (dict(tokens=[]), ValueError, "tokens"),
    (dict(n=0), ValueError, "n"),
    (dict(n=2.0), TypeError, "n"),
    (dict(counts=[1, 2]), TypeError, "counts"),
    (dict(counts={}), ValueError, "counts"),
    (dict(counts={(1, 2): 3}), ValueError, "counts"),  # bigrams given for n = 3
    (dict(start=-1), ValueError, "start"),
    (dict(start=49_990), ValueError, "start"),  # the window runs past the end
    (dict(length=2), ValueError, "length"),  # shorter than n
    (dict(length=33), ValueError, "length"),
    (dict(length=10**12), ValueError, "length"),
    (dict(title=3), TypeError, "title"),
    (dict(title=""), ValueError, "title"),
])
def test_counting_window_refuses_bad_arguments(kwargs, error, name):
    args = dict(tokens=_text(), n=3, counts=_counts(3), start=0, length=16) | kwargs
    with pytest.raises(error, match=name):
        N.counting_window(**args)


# ---------------------------------------------------------------------------------------------- inverse_cdf


@pytest.mark.parametrize("u", [0.0, 0.37, 0.999])
def test_inverse_cdf_picks_the_token_that_sampling_picks(u):
    from llmlab.inference.generation import sample_from_probs

    temps = (0.5, 1.0, 2.0)
    probs = torch.stack([temperature_softmax(_after_the(), T) for T in temps])
    fig = N.inverse_cdf(probs, u, LABELS, names=[f"T = {T}" for T in temps])
    assert isinstance(fig, Figure)
    shown = _texts(fig)
    for row in probs:
        i = sample_from_probs(row, u)
        assert f"→ {LABELS[i]}  (p = {float(row[i]):.2f})" in shown


def test_inverse_cdf_draws_one_distribution_and_greedy():
    assert isinstance(N.inverse_cdf(temperature_softmax(_after_the(), 1.0), 0.5, LABELS), Figure)
    one_hot = temperature_softmax(_after_the(), 0.0)  # T = 0: one token owns all of [0, 1)
    fig = N.inverse_cdf(one_hot.float(), 0.9, LABELS, names=["T = 0"], title="greedy")
    assert f"→ {LABELS[int(one_hot.argmax())]}  (p = 1.00)" in _texts(fig)


@pytest.mark.parametrize("kwargs, error, name", [
    (dict(probs=[0.5, 0.5]), TypeError, "probs"),
    (dict(probs=torch.tensor([1, 0])), TypeError, "probs"),
    (dict(probs=torch.tensor([0.5, float("nan")])), ValueError, "probs"),
    (dict(probs=torch.tensor([1.5, -0.5])), ValueError, "probs"),
    (dict(probs=torch.tensor([0.2, 0.2])), ValueError, "probs"),  # does not sum to 1
    (dict(probs=torch.ones(1, 1, 2) / 2), ValueError, "probs"),
    (dict(probs=torch.ones(7, 2) / 2), ValueError, "probs"),
    (dict(u=1.0), ValueError, "u"),
    (dict(u=-0.1), ValueError, "u"),
    (dict(u="0.5"), TypeError, "u"),
    (dict(labels="ab"), TypeError, "labels"),
    (dict(labels=["a"]), ValueError, "labels"),
    (dict(names=["one"]), ValueError, "names"),
    (dict(names="ab"), TypeError, "names"),
    (dict(title=""), ValueError, "title"),
])
def test_inverse_cdf_refuses_bad_arguments(kwargs, error, name):
    args = dict(probs=torch.tensor([[0.25, 0.75], [0.5, 0.5]]), u=0.5, labels=["a", "b"], names=["x", "y"]) | kwargs
    with pytest.raises(error, match=name):
        N.inverse_cdf(**args)


# ---------------------------------------------------------------------------------------------- word_lattice


@pytest.mark.parametrize("sentence", ["南京市长江大桥", "研究生命起源", "小明硕士毕业于中国科学院计算所", "我",
                                      "🙂ABC北京"])
def test_word_lattice_draws_jiebas_route(sentence):
    d = _dictionary()
    dag = zh.build_dag(sentence, d)
    route = zh.best_route(sentence, dag, d)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a missing glyph in the test's font is not the diagram's concern
        fig = S.word_lattice(sentence, dag, route)
    assert isinstance(fig, Figure)
    assert " / ".join(zh.route_words(sentence, route)) in fig.axes[0].get_title()
    shown = _texts(fig)
    assert all(f"{score:.1f}" in shown for score, _ in route[:-1])


def test_word_lattice_takes_a_route_as_a_dict():
    d = _dictionary()
    dag = zh.build_dag("研究生命起源", d)
    route = dict(enumerate(zh.best_route("研究生命起源", dag, d)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert isinstance(S.word_lattice("研究生命起源", dag, route, title="研究 / 生命 / 起源"), Figure)


DAG = {0: [1, 2], 1: [1], 2: [3], 3: [3]}
ROUTE = [(-20.0, 1), (-15.0, 1), (-9.0, 3), (-6.0, 3), (0.0, 0)]


@pytest.mark.parametrize("kwargs, error, name", [
    (dict(sentence=3), TypeError, "sentence"),
    (dict(sentence=""), ValueError, "sentence"),
    (dict(sentence="研" * 31), ValueError, "sentence"),
    (dict(dag=[[1, 2]]), TypeError, "dag"),
    (dict(dag={0: [1, 2], 1: [1], 2: [3]}), ValueError, "dag"),  # position 3 missing
    (dict(dag={0: [1, 2], 1: [], 2: [3], 3: [3]}), ValueError, "dag"),
    (dict(dag={0: [4], 1: [1], 2: [3], 3: [3]}), ValueError, "dag"),  # past the end
    (dict(dag={0: [1], 1: [0], 2: [3], 3: [3]}), ValueError, "dag"),  # before the start
    (dict(dag={**DAG, 7: [7]}), ValueError, "dag"),
    (dict(route="route"), TypeError, "route"),
    (dict(route=ROUTE[:-1]), ValueError, "route"),
    (dict(route=[(), *ROUTE[1:]]), ValueError, "route"),
    (dict(route=[(float("nan"), 1), *ROUTE[1:]]), ValueError, "route"),
    (dict(route=[(-20.0, 3), *ROUTE[1:]]), ValueError, "route"),  # 3 is not in dag[0]
    (dict(title=""), ValueError, "title"),
    (dict(title=1), TypeError, "title"),
])
def test_word_lattice_refuses_bad_arguments(kwargs, error, name):
    args = dict(sentence="研究生命", dag=DAG, route=ROUTE) | kwargs
    with pytest.raises(error, match=name):
        S.word_lattice(**args)
