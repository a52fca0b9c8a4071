"""Valid calls: the diagrams of notebooks 00 and 13 (``llmlab.diagrams.start_here``, ``llmlab.diagrams.interview``)."""
from __future__ import annotations


def _agg():
    import matplotlib

    matplotlib.use("Agg")


def _utf8_bytes():
    _agg()
    return dict(text="Hi 你好", title="t")


def _bank_map():
    _agg()
    return dict(links={"quantization": {"09": 3, "13": 1}, "pruning": {"10": 2}}, title="t")


VALID = {
    "llmlab.diagrams.start_here.utf8_bytes": _utf8_bytes,
    "llmlab.diagrams.interview.bank_map": _bank_map,
}

SKIP: dict[str, str] = {}
