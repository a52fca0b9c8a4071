"""Valid calls: the diagrams of notebooks 11 and 12 (``llmlab.diagrams.compression``, ``llmlab.diagrams.parallelism``)."""
from __future__ import annotations

from tests.fuzz import fixtures as F


def _agg():
    import matplotlib

    matplotlib.use("Agg")


def _shared():
    import torch

    _agg()
    return dict(values=F.randn(12), codebook=torch.tensor([0.5, -1.0, 0.0, 1.2]),
                idx=torch.tensor([0, 1, 2, 3, 0, 1, 2, 3, 2, 2, 1, 0]), title="t")


def _low_rank():
    _agg()
    return dict(n=12, k=8, rank=3, error=0.0, title="t")  # error 0: an exact factorisation, a valid extreme


def _timetable():
    from llmlab.parallel.pipeline import gpipe_schedule

    _agg()
    return dict(schedule=gpipe_schedule(2, 3), title="t")


def _megatron():
    _agg()
    return dict(dim=8, hidden=16, world_size=2, title="t")


VALID = {
    "llmlab.diagrams.compression.shared_weights": _shared,
    "llmlab.diagrams.compression.low_rank_factors": _low_rank,
    "llmlab.diagrams.parallelism.gpipe_timetable": _timetable,
    "llmlab.diagrams.parallelism.megatron_mlp": _megatron,
}

SKIP: dict[str, str] = {}
