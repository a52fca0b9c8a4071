"""Multi-task learning: one shared network, one head per task, one loss that weighs the tasks.

With a main task a and an auxiliary task b, the training loss is ``CE(logits_a, y_a) + weight * CE(logits_b,
y_b)``, each cross-entropy the mean over the batch. The weight sets how much the shared layers serve task b;
``weight = 0`` trains task a alone (its head and the shared layers), and a large weight lets b dominate them.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from llmlab import validate


def _check_task(name: str, logits: torch.Tensor, y: torch.Tensor) -> None:
    validate.tensor(f"logits_{name}", logits, ndim=2, floating=True)
    validate.tensor(f"y_{name}", y, ndim=1)
    if y.dtype.is_floating_point or y.dtype.is_complex or y.dtype == torch.bool:
        raise TypeError(f"y_{name} must hold integer class ids, got {y.dtype}")
    if len(y) != len(logits) or len(y) == 0:
        raise ValueError(f"y_{name} must have shape ({len(logits)},) matching logits_{name} "
                         f"{tuple(logits.shape)}, and not be empty; got {tuple(y.shape)}")
    if int(y.min()) < 0 or int(y.max()) >= logits.shape[1]:
        raise ValueError(f"y_{name} must lie in [0, {logits.shape[1]}), got min {int(y.min())}, max {int(y.max())}")


def multitask_loss(logits_a: torch.Tensor, y_a: torch.Tensor, logits_b: torch.Tensor, y_b: torch.Tensor,
                   weight: float) -> torch.Tensor:
    """CE(logits_a (N, Ka), y_a (N,)) + weight · CE(logits_b (N, Kb), y_b (N,)): a 0-d tensor in the logits' dtype."""
    _check_task("a", logits_a, y_a)
    _check_task("b", logits_b, y_b)
    weight = validate.real("weight", weight, minimum=0.0)
    return F.cross_entropy(logits_a, y_a.long()) + weight * F.cross_entropy(logits_b, y_b.long())
