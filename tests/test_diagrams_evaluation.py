"""The diagrams of notebook 07 (llmlab.diagrams.evaluation): each returns a Figure, and bad arguments are
refused with a TypeError or a ValueError that names them."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from llmlab.diagrams import evaluation as D  # noqa: E402

TOKENS = ["Execution", " of", " Python", " cor", "out", "ines", " can", " be", "\n", " suspended", " and", " resumed"]
HYP = "the cat the cat on the mat".split()
REFS = ["the cat is on the mat".split(), "there is a cat on the mat".split()]


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


@pytest.mark.parametrize("window, stride", [(4, 2), (4, 4), (8, 3), (20, 5), (2, 1)])
def test_sliding_windows_returns_a_figure(window, stride):
    assert isinstance(D.sliding_windows(TOKENS, window, stride), Figure)


def test_sliding_windows_draws_one_row_label_per_window():
    from llmlab.metrics.lm import strided_windows

    fig = D.sliding_windows(TOKENS, 4, 2, title="t")
    texts = {t.get_text() for t in fig.axes[0].texts}
    for w in strided_windows(len(TOKENS), 4, 2):
        assert f"({w[0]}, {w[1]}, {w[2]})" in texts


def test_bleu_matches_returns_a_figure_with_the_clipped_precisions():
    from llmlab.metrics.text import modified_precision

    fig = D.bleu_matches(HYP, REFS, max_n=3)
    assert isinstance(fig, Figure)
    texts = {t.get_text() for t in fig.axes[0].texts}
    for n in (1, 2, 3):
        matched, total = modified_precision(HYP, REFS, n)
        assert f"p{n} = {matched}/{total}" in texts
    assert isinstance(D.bleu_matches(["a"], [["a", "b"]]), Figure)  # no 2-gram at all


@pytest.mark.parametrize("kwargs, error", [
    (dict(tokens="abc"), TypeError),
    (dict(tokens=[1, 2]), TypeError),
    (dict(tokens=[]), ValueError),
    (dict(tokens=["a"] * 65), ValueError),
    (dict(window=1), ValueError),
    (dict(window=4.0), TypeError),
    (dict(window=10**12), ValueError),
    (dict(stride=0), ValueError),
    (dict(stride=5), ValueError),  # stride > window
    (dict(title=3), TypeError),
    (dict(title=""), ValueError),
])
def test_sliding_windows_refuses_bad_arguments(kwargs, error):
    args = dict(tokens=TOKENS, window=4, stride=2) | kwargs
    with pytest.raises(error, match=next(iter(kwargs))):
        D.sliding_windows(**args)


@pytest.mark.parametrize("kwargs, error", [
    (dict(hyp="the cat"), TypeError),
    (dict(hyp=[]), ValueError),
    (dict(refs="the cat"), TypeError),
    (dict(refs=[]), ValueError),
    (dict(refs=[[]]), ValueError),
    (dict(refs=[["a", 2]]), TypeError),
    (dict(refs=[["a"]] * 5), ValueError),
    (dict(max_n=0), ValueError),
    (dict(max_n=7), ValueError),
    (dict(max_n="4"), TypeError),
    (dict(title=""), ValueError),
])
def test_bleu_matches_refuses_bad_arguments(kwargs, error):
    args = dict(hyp=HYP, refs=REFS, max_n=4) | kwargs
    with pytest.raises(error, match=next(iter(kwargs))):
        D.bleu_matches(**args)


CM = [[17, 1, 2, 0], [0, 19, 1, 0], [3, 0, 15, 2], [0, 0, 0, 0]]  # the last class never occurs
TOPICS = ["sports", "food", "technology", "weather"]


def test_confusion_grid_writes_every_count_and_the_per_class_numbers():
    fig = D.confusion_grid(torch.tensor(CM), TOPICS)
    assert isinstance(fig, Figure)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts.count("19") == 1 and texts.count("0") >= 7  # one cell per count
    assert "  20  R 0.75  F1 0.79" in texts  # technology: 15 of 20, predicted 18 times: F1 = 30 / 38
    assert "   0  R 0.00  F1 0.00" in texts  # an absent class: 0/0 is 0
    assert "51 of 60 correct" in fig.axes[0].get_title()
    assert isinstance(D.confusion_grid(torch.tensor(CM[:2])[:, :2].to(torch.uint8), ["a", "b"], title="t"), Figure)


@pytest.mark.parametrize("kwargs, error", [
    (dict(cm=CM), TypeError),
    (dict(cm="cm"), TypeError),
    (dict(cm=1.0 * torch.tensor(CM)), TypeError),
    (dict(cm=torch.tensor(CM).bool()), TypeError),
    (dict(cm=torch.tensor(CM)[:, :3]), ValueError),
    (dict(cm=torch.tensor([[1]])), ValueError),
    (dict(cm=torch.zeros(13, 13, dtype=torch.long)), ValueError),
    (dict(cm=torch.tensor(CM) - 1), ValueError),
    (dict(cm=torch.tensor([1, 2])), ValueError),
    (dict(labels="abcd"), TypeError),
    (dict(labels=["a", "b", "c", 4]), TypeError),
    (dict(labels=["a", "b", "c"]), ValueError),
    (dict(title=""), ValueError),
    (dict(title=3), TypeError),
])
def test_confusion_grid_refuses_bad_arguments(kwargs, error):
    args = dict(cm=torch.tensor(CM), labels=TOPICS) | kwargs
    with pytest.raises(error, match=next(iter(kwargs))):
        D.confusion_grid(**args)
