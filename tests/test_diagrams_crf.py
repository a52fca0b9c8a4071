"""The CRF lattice of notebook 02 (llmlab.diagrams.segmentation.crf_lattice), on a CRF trained on the gold set: it
returns a Figure that shows the real emission and transition scores and the words of the best path, and bad
arguments are refused with a TypeError or a ValueError that names them."""
import matplotlib

matplotlib.use("Agg")

import warnings  # noqa: E402
from functools import lru_cache  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from llmlab.data import chinese_gold  # noqa: E402
from llmlab.diagrams import segmentation as S  # noqa: E402
from llmlab.tokenization import crf  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


@lru_cache(maxsize=1)
def _model() -> crf.CharCRF:
    gold = chinese_gold()
    return crf.train_crf(gold[: len(gold) * 2 // 3], crf.CRFConfig(epochs=3))[0]


def _scores(text: str):
    model = _model()
    with torch.no_grad():
        e = model(crf.encode(text, model.vocab))
    return e[0], model.transitions.detach(), crf.crf_viterbi(e, *model.crf())[0]


def _draw(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a missing glyph in the test's font is not the diagram's concern
        return S.crf_lattice(*args, **kwargs)


@pytest.mark.parametrize("text", ["欧阳娜娜在第三季度发布了新歌", "我", "他来到了网易杭研大厦", "🙂ABC北京"])
def test_crf_lattice_shows_the_real_scores_and_the_best_path(text):
    e, tr, path = _scores(text)
    fig = _draw(text, e, tr, path)
    assert isinstance(fig, Figure)
    assert " / ".join(crf.crf_segment(text, _model())) in fig.axes[0].get_title()
    shown = [t.get_text() for t in fig.axes[0].texts]
    assert all(f"{v:.1f}" in shown for v in e.flatten().tolist())  # every node's emission score
    assert all(f"{v:+.1f}" in shown for v in tr.flatten().tolist())  # the transition matrix
    assert all(ch in shown for ch in text)


def test_crf_lattice_takes_another_k_and_a_title():
    fig = _draw("你好", torch.tensor([[0.0, 1.0, 2.0], [1.5, -1.0, 0.5]]), torch.tensor([[0.0, 1.0, -1.0]] * 3),
                [2, 0], tags="XYZ", title="三个标签")
    assert fig.axes[0].get_title() == "三个标签"


TR = torch.zeros(4, 4)


@pytest.mark.parametrize("kwargs, error, name", [
    (dict(sentence=3), TypeError, "sentence"),
    (dict(sentence=""), ValueError, "sentence"),
    (dict(emissions="x"), TypeError, "emissions"),
    (dict(emissions=[[0.0] * 4] * 2), TypeError, "emissions"),
    (dict(emissions=torch.zeros(2, 4, dtype=torch.long)), TypeError, "emissions"),
    (dict(emissions=torch.zeros(3, 4)), ValueError, "emissions"),
    (dict(emissions=torch.full((2, 4), float("nan"))), ValueError, "emissions"),
    (dict(transitions=torch.zeros(4, 3)), ValueError, "transitions"),
    (dict(path=[0]), ValueError, "path"),
    (dict(path=[0, 4]), ValueError, "path"),
    (dict(path="BE"), TypeError, "path"),
    (dict(tags="BB"), ValueError, "tags"),
    (dict(title=""), ValueError, "title"),
])
def test_crf_lattice_refuses_bad_arguments(kwargs, error, name):
    args = dict(sentence="你好", emissions=torch.zeros(2, 4), transitions=TR, path=[0, 2]) | kwargs
    with pytest.raises(error, match=name):
        _draw(**args)
