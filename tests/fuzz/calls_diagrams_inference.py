"""Valid calls: the diagrams of notebook 08 (``llmlab.diagrams.inference``)."""
from __future__ import annotations


def _agg():
    import matplotlib

    matplotlib.use("Agg")


def _filling():
    _agg()
    # a 5-token prompt, then three decode steps, as Engine.length reads after each forward pass
    return dict(lengths=[5, 6, 7, 8], tokens=["The", " K", "V", " cache", " stores", " the", " keys", " and"],
                capacity=16, slot_bytes=46080, title="t")


def _rounds():
    _agg()
    # round 1 accepts both guesses (+ bonus 9), round 2 drafts nothing (+ 5), round 3 accepts 1 of 2 (+ 8)
    return dict(drafts=([1, 2], [], [6, 7]), output=[1, 2, 9, 5, 6, 8], decode=lambda ids: f"t{ids[0]}",
                max_rounds=3, title="t")


VALID = {
    "llmlab.diagrams.inference.kv_cache_filling": _filling,
    # drafts as a tuple: a round that drafted nothing ([]) is valid, so an empty first item is no bad value
    "llmlab.diagrams.inference.replay_rounds": lambda: dict(drafts=([1, 2], [], [6, 7]), output=[1, 2, 9, 5, 6, 8]),
    "llmlab.diagrams.inference.speculative_rounds": _rounds,
}

SKIP: dict[str, str] = {}

# drawing a figure (and pyplot's first import in a fresh worker) can take a few seconds on a busy machine
TIME_LIMITS = {name: 8.0 for name in ("llmlab.diagrams.inference.kv_cache_filling",
                                       "llmlab.diagrams.inference.speculative_rounds")}
