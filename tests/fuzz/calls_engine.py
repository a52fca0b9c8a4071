"""Valid calls: the swappable-parts engine (``llmlab.inference.engine``), the diagrams' primitives
(``llmlab.diagrams.draw``) and the test-yourself cell (``llmlab.interview.test_yourself``)."""
from __future__ import annotations

from tests.fuzz import fixtures as F
from tests.fuzz.call import Call, method


def _engine():
    from llmlab.inference.engine import Engine

    return Engine(F.decoder(), max_len=32)


def _ax():
    import matplotlib

    matplotlib.use("Agg")
    from llmlab.diagrams.draw import canvas

    return canvas(6, 4)[1]


VALID = {
    "llmlab.inference.engine.cached_attention": lambda: dict(q=F.randn(2, 4, 1, 8), k=F.randn(2, 2, 5, 8, seed=1),
                                                            v=F.randn(2, 2, 5, 8, seed=2)),
    "llmlab.inference.engine.Parts": lambda: dict(),
    "llmlab.inference.engine.Engine": lambda: dict(model=F.decoder(), max_len=32),
    "llmlab.inference.engine.Engine.forward": lambda: method(_engine(), "forward", ids=[1, 2, 3]),
    "llmlab.inference.engine.Engine.generate": lambda: method(_engine(), "generate", ids=[1, 2, 3], max_new_tokens=4),
    "llmlab.inference.engine.Engine.speculative_generate": lambda: method(
        _engine(), "speculative_generate", ids=[1, 2, 1, 2, 1], max_new_tokens=4, gamma=2),
    "llmlab.inference.engine.Engine.tokens_per_s": lambda: method(_engine(), "tokens_per_s", ids=[1, 2],
                                                                  max_new_tokens=2),
    "llmlab.diagrams.draw.canvas": lambda: dict(width=6, height=4, title="t", scale=0.5),
    "llmlab.diagrams.draw.box": lambda: dict(ax=_ax(), x=1, y=1, w=2, h=1, text="x"),
    "llmlab.diagrams.draw.arrow": lambda: dict(ax=_ax(), start=(0, 0), end=(1, 1), text="a"),
    "llmlab.diagrams.draw.cells": lambda: dict(ax=_ax(), colors=[["#fff", "#000"]], labels=[["a", "b"]]),
    "llmlab.diagrams.draw.legend": lambda: dict(ax=_ax(), entries={"new": "#f4a261"}, x=1, y=3),
    "llmlab.diagrams.draw.axes": lambda: dict(ax=_ax()),
    "llmlab.interview.test_yourself": lambda: dict(qids=["lm-001"], lang="en"),
}

SKIP: dict[str, str] = {}
VALID["llmlab.diagrams.draw.optional_title"] = lambda: dict(title="a title")
