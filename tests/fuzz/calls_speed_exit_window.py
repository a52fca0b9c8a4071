"""Valid calls: notebook 08's speed metrics from timestamps, early exit's rule and the sliding-window mask."""
from __future__ import annotations

import torch

from tests.fuzz import fixtures as F

VALID = {
    "llmlab.metrics.speed.speed_metrics": lambda: dict(t_start=1.0, token_times=[1.5, 1.6, 1.8]),
    "llmlab.inference.early_exit.choose_exit": lambda: dict(preds=torch.tensor([[1, 2, 3], [4, 5, 6]]),
                                                            conf=torch.tensor([[0.9, 0.2, 0.5], [0.95, 0.6, 0.4]]),
                                                            threshold=0.5),
    "llmlab.inference.long_context.sliding_window_mask": lambda: dict(T=8, window=3, sink=2),
    "llmlab.inference.long_context.masked_nll": lambda: dict(model=F.decoder(), ids=F.ids(12), mask=torch.ones(
        11, 11, dtype=torch.bool).tril()),
}
SKIP: dict[str, str] = {}
