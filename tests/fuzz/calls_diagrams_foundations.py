"""Valid calls: the diagrams of notebooks 01 and 02 (``llmlab.diagrams.ngram``, ``llmlab.diagrams.segmentation``)."""
from __future__ import annotations


def _agg():
    import matplotlib

    matplotlib.use("Agg")


def _window():
    from collections import Counter

    _agg()
    tokens = list(b"the cat the hat")
    counts = Counter(tuple(tokens[i : i + 3]) for i in range(len(tokens) - 2))
    return dict(tokens=tokens, n=3, counts=counts, start=0, length=8, title="t")


def _cdf():
    import torch

    _agg()
    probs = torch.tensor([[0.1, 0.0, 0.6, 0.3], [0.25, 0.25, 0.25, 0.25]])
    return dict(probs=probs, u=0.0, labels=["a", "b", "c", "d"], names=["T = 0.5", "T = 1"], title="t")


def _lattice():
    _agg()
    # 研究生命 with the words 研究, 研究生, 生命: DAG and route as build_dag / best_route give them
    dag = {0: [1, 2], 1: [1], 2: [3], 3: [3]}
    route = [(-20.0, 1), (-15.0, 1), (-9.0, 3), (-6.0, 3), (0.0, 0)]
    return dict(sentence="研究生命", dag=dag, route=route, title="t")


VALID = {
    "llmlab.diagrams.ngram.byte_label": lambda: dict(byte=0),
    "llmlab.diagrams.ngram.counting_window": _window,
    "llmlab.diagrams.ngram.inverse_cdf": _cdf,
    "llmlab.diagrams.segmentation.word_lattice": _lattice,
}

SKIP: dict[str, str] = {}

# drawing a figure (and pyplot's first import in a fresh worker) can take a few seconds on a busy machine
TIME_LIMITS = {name: 8.0 for name in ("llmlab.diagrams.ngram.counting_window", "llmlab.diagrams.ngram.inverse_cdf",
                                       "llmlab.diagrams.segmentation.word_lattice")}
