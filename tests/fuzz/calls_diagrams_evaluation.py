"""Valid calls: the diagrams of notebook 07 (``llmlab.diagrams.evaluation``)."""
from __future__ import annotations


def _agg():
    import matplotlib

    matplotlib.use("Agg")


def _windows():
    _agg()
    return dict(tokens=["a", " b", "c", "\n", "d", "e"], window=4, stride=2, title="t")


def _bleu():
    _agg()
    return dict(hyp="the cat the cat on the mat".split(), refs=["the cat is on the mat".split()], max_n=3, title="t")


VALID = {
    "llmlab.diagrams.evaluation.sliding_windows": _windows,
    "llmlab.diagrams.evaluation.bleu_matches": _bleu,
}

SKIP: dict[str, str] = {}
