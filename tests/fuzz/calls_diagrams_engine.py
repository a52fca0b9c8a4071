"""Valid calls: the diagram of notebook 14 (``llmlab.diagrams.engine``)."""
from __future__ import annotations


def _step():
    import matplotlib

    matplotlib.use("Agg")
    return dict(parts={"write_kv": "yours", "top_p_filter": "llmlab's reference", "greedy_accept": "not run"},
                n_layers=4)


VALID = {
    "llmlab.diagrams.engine.engine_step": _step,
}

SKIP: dict[str, str] = {}
