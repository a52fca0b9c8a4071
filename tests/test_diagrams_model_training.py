"""The diagrams of notebooks 05 and 06 (llmlab.diagrams.transformer, llmlab.diagrams.training): SmolLM2's block
drawn from its real config, a training step's loop, and the learning-rate schedule that ``lr_at`` gives a run.
Each returns a Figure, and bad arguments are refused with a TypeError or a ValueError that names them."""
import matplotlib

matplotlib.use("Agg")

import math  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from llmlab.diagrams import training as TR  # noqa: E402
from llmlab.diagrams import transformer as TF  # noqa: E402
from llmlab.nn.model import DecoderConfig  # noqa: E402
from llmlab.train import lr_at  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def _texts(fig: Figure) -> str:
    return "\n".join(t.get_text() for ax in fig.axes for t in ax.texts) + "\n".join(ax.get_title() for ax in fig.axes)


def test_block_diagram_shows_smollm2_sizes_from_its_gguf_config():
    from llmlab.models import smollm2_gguf_path
    from llmlab.models.gguf import open_gguf, read_metadata
    from llmlab.models.smollm2 import config_from_metadata

    cfg = config_from_metadata(read_metadata(open_gguf(smollm2_gguf_path())))
    fig = TF.block_diagram(cfg)
    assert isinstance(fig, Figure)
    text = _texts(fig)
    for label in ("576→576", "576→192", "576→1536", "1536→576", "9 heads × 64", "3 KV heads × 64", "× 30",
                  "serves 3", "49152 × 576"):
        assert label in text, label


def test_block_diagram_follows_another_config():
    cfg = DecoderConfig(vocab_size=100, dim=64, n_layers=2, n_heads=8, n_kv_heads=2, hidden_dim=96, tie_embeddings=False)
    text = _texts(TF.block_diagram(cfg))
    assert "64→16" in text and "serves 4" in text and "64→96" in text and "tied" not in text


@pytest.mark.parametrize("bad,error", [(None, TypeError), ("smollm2", TypeError), ({"dim": 576}, TypeError)])
def test_block_diagram_refuses_what_is_not_a_config(bad, error):
    with pytest.raises(error, match="cfg"):
        TF.block_diagram(bad)


def test_training_loop_is_labelled_with_the_run():
    fig = TR.training_loop(16, 64, 1024, max_norm=1.0, betas=(0.9, 0.95), weight_decay=0.1)
    assert isinstance(fig, Figure)
    text = _texts(fig)
    assert "(16, 64, 1024)" in text and "≤ 1" in text and "(0.9, 0.95)" in text and "1,024 predictions" in text


@pytest.mark.parametrize("kwargs,error,name", [
    (dict(batch_size=0), ValueError, "batch_size"), (dict(block_size="64"), TypeError, "block_size"),
    (dict(vocab_size=1.5), TypeError, "vocab_size"), (dict(max_norm=-1.0), ValueError, "max_norm"),
    (dict(max_norm=math.nan), ValueError, "max_norm"), (dict(betas=(0.9,)), TypeError, "betas"),
    (dict(betas=(0.9, 1.0)), ValueError, "betas"), (dict(weight_decay=-0.1), ValueError, "weight_decay"),
])
def test_training_loop_refuses_bad_settings(kwargs, error, name):
    args = {**dict(batch_size=16, block_size=64, vocab_size=1024), **kwargs}
    with pytest.raises(error, match=name):
        TR.training_loop(**args)


def test_lr_schedule_draws_the_rates_lr_at_gives():
    lrs = [lr_at(s, 3e-3, 20, 200, 3e-4) for s in range(200)]
    fig = TR.lr_schedule(lrs, 20, losses=[7.0 - s / 100 for s in range(200)])
    assert isinstance(fig, Figure) and len(fig.axes) == 2  # the rate, and the loss on a second axis
    line = fig.axes[0].lines[0]
    assert list(line.get_ydata()) == lrs
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "warm-up (20 steps)" in legend and "cosine decay (180 steps)" in legend
    assert len(TR.lr_schedule(lrs, 0).axes) == 1  # no warm-up, no losses


@pytest.mark.parametrize("args,error,name", [
    (("0.1", 1), TypeError, "lrs"), (([], 0), ValueError, "lrs"), (([0.1, math.nan], 1), ValueError, r"lrs\[1\]"),
    (([0.1, -0.1], 1), ValueError, r"lrs\[1\]"), (([0.1, 0.2], 3), ValueError, "warmup_steps"),
    (([0.1, 0.2], 1.0), TypeError, "warmup_steps"), (([0.1, 0.2], 1, [1.0]), ValueError, "losses"),
    (([0.1, 0.2], 1, [1.0, "x"]), TypeError, r"losses\[1\]"),
])
def test_lr_schedule_refuses_bad_arguments(args, error, name):
    with pytest.raises(error, match=name):
        TR.lr_schedule(*args)
