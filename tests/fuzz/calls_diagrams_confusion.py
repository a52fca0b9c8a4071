"""Valid calls: the confusion-matrix diagram of notebook 07b (``llmlab.diagrams.evaluation.confusion_grid``)."""
from __future__ import annotations


def _confusion_grid():
    import matplotlib
    import torch

    matplotlib.use("Agg")
    return dict(cm=torch.tensor([[5, 1, 0], [2, 6, 1], [0, 0, 3]]), labels=["a", "b", "c"], title="t")


VALID = {
    "llmlab.diagrams.evaluation.confusion_grid": _confusion_grid,
}

SKIP: dict[str, str] = {}
