"""Timing helper shared by the benchmark scripts."""
from __future__ import annotations

import sys
import time
from pathlib import Path

# The benchmarks time llmlab against the tests' oracles (tests/oracles.py): make the repository importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def best_time(fn, repeat: int):
    """(best wall time over ``repeat`` calls, the last result)."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out
