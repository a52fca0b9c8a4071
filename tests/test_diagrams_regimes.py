"""The diagrams of notebook 16 (llmlab.diagrams.regimes): each returns a Figure drawn from the numbers given, and
bad arguments are refused with a TypeError or a ValueError that names them."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from llmlab.diagrams import regimes as D  # noqa: E402
from llmlab.regimes.cross_validation import kfold_indices  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def _fold_of(n, k):
    fold_of = [0] * n
    for j, (_, te) in enumerate(kfold_indices(n, k, 0)):
        for i in te.tolist():
            fold_of[i] = j
    return fold_of


def test_kfold_grid_shows_each_folds_size_and_score():
    fold_of = _fold_of(23, 5)
    fig = D.kfold_grid(fold_of, 8, ["a", "b", "c"], [0.5, 0.6, 0.7, 0.8, 0.9])
    assert isinstance(fig, Figure)
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert "fold 0: 5 items, score 0.500" in texts and "fold 4: 4 items, score 0.900" in texts
    assert isinstance(D.kfold_grid(_fold_of(320, 5), 40), Figure)


def test_lstm_gates_writes_every_units_value():
    v = torch.linspace(0, 1, 5)
    fig = D.lstm_gates(v, v, v * 2 - 1, v, v, v, v, title="t")
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert {"0.00", "0.25", "-1.00", "1.00"} <= texts and "mean +0.50" in texts


@pytest.mark.parametrize("kwargs, error", [
    (dict(fold_of="012"), TypeError), (dict(fold_of=[]), ValueError), (dict(fold_of=[0, 7]), ValueError),
    (dict(fold_of=[0, 1.5]), TypeError), (dict(n_cols=0), ValueError), (dict(n_cols=2.0), TypeError),
    (dict(row_labels=["a", "b"]), ValueError), (dict(scores=[0.5]), ValueError), (dict(scores="ab"), TypeError),
    (dict(title=""), ValueError), (dict(fold_of=[0] * 100, n_cols=1), ValueError),
])
def test_kfold_grid_refuses_bad_arguments(kwargs, error):
    args = dict(fold_of=[0, 1, 0, 1], n_cols=4, row_labels=None, scores=None, title=None) | kwargs
    with pytest.raises(error):
        D.kfold_grid(**args)


@pytest.mark.parametrize("kwargs, error", [
    (dict(i="abc"), TypeError), (dict(i=[]), ValueError), (dict(i=[0.1] * 30), ValueError),
    (dict(h=[0.1, 0.2]), ValueError), (dict(g=[float("nan"), 0, 0]), ValueError), (dict(title=3), TypeError),
])
def test_lstm_gates_refuses_bad_arguments(kwargs, error):
    v = [0.1, 0.5, 0.9]
    args = dict(i=v, f=v, g=v, o=v, c_prev=v, c=v, h=v) | kwargs
    with pytest.raises(error):
        D.lstm_gates(**args)
