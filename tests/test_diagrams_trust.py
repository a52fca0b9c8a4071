"""The diagrams of notebook 15b (llmlab.diagrams.trust): each returns a Figure drawn from the numbers given, and bad
arguments are refused with a TypeError or a ValueError that names them."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from llmlab.diagrams import trust as D  # noqa: E402

TOKENS = ["[CLS]", "did", "you", "see", "that", "penalty", "kick", "?", "[SEP]"]
ROWS = {"integrated gradients": [0.0, 0.03, 0.01, 0.03, 0.02, 0.13, 0.05, 0.01, 0.0],
        "occlusion": [0.0, -0.01, -0.01, 0.0, -0.01, -0.06, -0.02, -0.01, 0.0],
        "rollout": torch.tensor([0.6, 0.02, 0.01, 0.01, 0.02, 0.02, 0.02, 0.03, 0.08])}


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_attribution_strip_writes_every_score_and_token():
    fig = D.attribution_strip(TOKENS, ROWS, title="t")
    assert isinstance(fig, Figure)
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert {"0.13", "-0.06", "0.60", "did", "penalty", "rollout", "occlusion"} <= texts
    tiny = D.attribution_strip(["中", "文"], {"rollout": [0.003, 0.0]})
    assert "3e-03" in {t.get_text() for t in tiny.axes[0].texts}


def test_epsilon_box_draws_fgsm_and_the_pgd_path():
    fig = D.epsilon_box([0.1, 0.2], 0.02, [0.12, 0.18], [[0.105, 0.195], [0.11, 0.19], [0.12, 0.18]], title="t")
    assert isinstance(fig, Figure)
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert "PGD: 3 projected steps" in texts and "x0 (clean)" in texts


@pytest.mark.parametrize("kwargs, error", [
    (dict(tokens="abc"), TypeError),
    (dict(tokens=[]), ValueError),
    (dict(tokens=["a"] * 41), ValueError),
    (dict(rows=[1, 2]), TypeError),
    (dict(rows={}), ValueError),
    (dict(rows={"a": [1.0]}), ValueError),
    (dict(rows={"a": [float("nan")] * 9}), ValueError),
    (dict(rows={"a": "x" * 9}), TypeError),
    (dict(rows={1: [0.0] * 9}), TypeError),
    (dict(title=""), ValueError),
])
def test_attribution_strip_refuses_bad_arguments(kwargs, error):
    args = dict(tokens=TOKENS, rows=ROWS) | kwargs
    with pytest.raises(error):
        D.attribution_strip(**args)


@pytest.mark.parametrize("kwargs, error", [
    (dict(x0=[0.1]), TypeError),
    (dict(eps=0.0), ValueError),
    (dict(eps="a"), TypeError),
    (dict(pgd_path=[]), TypeError),
    (dict(pgd_path=[[0.1, float("inf")]]), ValueError),
    (dict(names=("a",)), TypeError),
])
def test_epsilon_box_refuses_bad_arguments(kwargs, error):
    args = dict(x0=[0.1, 0.2], eps=0.02, fgsm_point=[0.12, 0.18], pgd_path=[[0.11, 0.19]]) | kwargs
    with pytest.raises(error):
        D.epsilon_box(**args)
