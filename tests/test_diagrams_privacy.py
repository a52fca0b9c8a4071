"""The diagrams of notebook 15a (llmlab.diagrams.privacy): each returns a Figure drawn from its arguments, and bad
arguments are refused with a TypeError or a ValueError that names them."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from llmlab.diagrams import privacy as D  # noqa: E402

VECTORS = torch.tensor([[3.0, 0.0], [0.2, 0.1], [-1.0, 2.0], [0.0, -0.5]])


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_clipping_vectors_counts_the_gradients_that_shrink():
    fig = D.clipping_vectors(VECTORS, 1.0, labels=["a", "b", "c", "d"])
    assert isinstance(fig, Figure)
    assert "2 shrink" in fig.axes[0].get_title()  # norms 3 and √5 are above 1
    assert {"a", "b", "c", "d"} <= {t.get_text() for t in fig.axes[0].texts}
    assert isinstance(D.clipping_vectors(VECTORS * 1e-3, 1e-4), Figure)  # tiny gradients and C
    assert isinstance(D.clipping_vectors(VECTORS * 1e3, 50.0), Figure)


def test_fedavg_round_writes_each_clients_share():
    fig = D.fedavg_round([10, 30], 5, labels=["sports", "weather"])
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert "× 0.25" in texts and "× 0.75" in texts
    assert isinstance(D.fedavg_round([7], 1), Figure)


@pytest.mark.parametrize("kwargs, error", [
    (dict(vectors=[[1.0, 2.0]]), TypeError),
    (dict(vectors=torch.ones(3, 3)), ValueError),
    (dict(vectors=torch.ones(65, 2)), ValueError),
    (dict(vectors=torch.tensor([[float("nan"), 1.0]])), ValueError),
    (dict(max_norm=0.0), ValueError),
    (dict(max_norm="1"), TypeError),
    (dict(labels=["a"]), ValueError),
    (dict(labels="abcd"), TypeError),
    (dict(title=""), ValueError),
])
def test_clipping_vectors_refuses_bad_arguments(kwargs, error):
    args = dict(vectors=VECTORS, max_norm=1.0) | kwargs
    with pytest.raises(error):
        D.clipping_vectors(**args)


@pytest.mark.parametrize("kwargs, error", [
    (dict(client_sizes=10), TypeError),
    (dict(client_sizes=[]), ValueError),
    (dict(client_sizes=[1] * 9), ValueError),
    (dict(client_sizes=[0, 3]), ValueError),
    (dict(client_sizes=[1.5, 3]), TypeError),
    (dict(local_steps=0), ValueError),
    (dict(labels=["a"]), ValueError),
    (dict(title=3), TypeError),
])
def test_fedavg_round_refuses_bad_arguments(kwargs, error):
    args = dict(client_sizes=[10, 30], local_steps=2) | kwargs
    with pytest.raises(error):
        D.fedavg_round(**args)
