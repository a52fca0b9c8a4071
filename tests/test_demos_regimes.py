"""The demos of notebook 16 run the learner's functions: with a catalogued mistake in place of the reference, the
demo's own computation shows another result (cross-validation that tests unseen classes, another language model,
another extrapolation), and ``yours`` says which implementation ran."""
from __future__ import annotations

import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F

from llmlab import train
from llmlab.data import pydoc_bytes
from llmlab.grading.demo import yours
from llmlab.nn import lstm
from llmlab.regimes import cross_validation, scaling
from tests.mutants import learning_regimes as mut

LADDER = Path(__file__).resolve().parents[1] / "llmlab" / "resources" / "scaling_ladder.json"


def _sorted_classes(n_per_class: int = 20, k: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """Features of k classes, the items sorted by class as the topic set is (by language and label)."""
    g = torch.Generator().manual_seed(0)
    means = torch.randn(k, 16, generator=g, dtype=torch.float64) * 2
    y = torch.arange(k).repeat_interleave(n_per_class)
    return means[y] + torch.randn(len(y), 16, generator=g, dtype=torch.float64), y


def _cv_accuracy(kfold, X, y, k=4) -> float:
    """The notebook's cross-validation of a closed-form probe (ridge on one-hot targets)."""
    accs = []
    for tr, te in kfold(len(y), k, 0):
        Xb = torch.cat([X[tr], torch.ones(len(tr), 1, dtype=X.dtype)], 1)
        W = torch.linalg.solve(Xb.T @ Xb + torch.eye(Xb.shape[1], dtype=X.dtype), Xb.T @ F.one_hot(y[tr], 4).double())
        pred = (torch.cat([X[te], torch.ones(len(te), 1, dtype=X.dtype)], 1) @ W).argmax(-1)
        accs.append((pred == y[te]).double().mean().item())
    return sum(accs) / len(accs)


def test_cross_validation_demo_runs_your_folds(capsys):
    X, y = _sorted_classes()
    right = _cv_accuracy(yours(cross_validation.kfold_indices, cross_validation.kfold_indices), X, y)
    capsys.readouterr()
    wrong = _cv_accuracy(yours(mut.kfold_no_shuffle, cross_validation.kfold_indices), X, y)
    assert "▶ kfold_no_shuffle: yours" in capsys.readouterr().out
    assert right > 0.9 and wrong < 0.1  # unshuffled folds each test a class the probe never saw


def _lm_losses(forward_fn, steps: int = 8) -> list[float]:
    torch.manual_seed(0)
    model = lstm.LSTMLM(256, 16, 24, forward_fn=forward_fn)
    data = torch.tensor(pydoc_bytes("train")[:20_000])
    cfg = train.TrainConfig(steps=steps, batch_size=4, block_size=16, max_lr=1e-2, min_lr=1e-3, warmup_steps=1,
                            eval_every=steps, eval_batches=1)
    return train.train(model, data, data, cfg, progress=False).train_loss


def test_lstm_language_model_trains_with_your_forward(capsys):
    right = _lm_losses(yours(lstm.lstm_forward, lstm.lstm_forward))
    capsys.readouterr()
    wrong = _lm_losses(yours(mut.forward_resets_c, lstm.lstm_forward))
    assert "▶ forward_resets_c: yours" in capsys.readouterr().out
    assert right[0] != wrong[0] and max(abs(a - b) for a, b in zip(right, wrong)) > 1e-3


def test_scaling_demo_extrapolates_with_your_fit(capsys):
    ladder = json.loads(LADDER.read_text(encoding="utf-8"))
    N = [float(r["non_embedding_params"]) for r in ladder["rungs"]]
    L = [sum(r["val_loss"]) / len(r["val_loss"]) for r in ladder["rungs"]]
    target = 10 * max(N)
    a, alpha, c = yours(scaling.fit_power_law, scaling.fit_power_law)(N, L)
    capsys.readouterr()
    wa, walpha, wc = yours(mut.fit_without_floor, scaling.fit_power_law)(N, L)
    assert "▶ fit_without_floor: yours" in capsys.readouterr().out
    assert wc == 0.0 and c > 0
    assert abs((a * target**-alpha + c) - (wa * target**-walpha + wc)) > 0.01
    assert math.isfinite(alpha) and alpha > 0


def test_the_ladder_file_is_what_the_notebook_reads():
    ladder = json.loads(LADDER.read_text(encoding="utf-8"))
    rungs = ladder["rungs"]
    assert len(rungs) >= 5 and all(len(r["val_loss"]) == ladder["seeds"] for r in rungs)
    sizes = [r["non_embedding_params"] for r in rungs]
    assert sizes == sorted(sizes) and sizes[-1] / sizes[0] > 100
