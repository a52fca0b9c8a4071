"""Label noise, made on purpose: flip a known fraction of the labels to another class.

Real label sets hold a few percent of wrong labels (Northcutt et al. 2021 found 3-6% in ImageNet's and
QuickDraw's test sets). Symmetric noise as made here is the simplest model of it: ``m = round(fraction * n)``
items (Python's ``round``), chosen by ``torch.randperm(n, generator=generator)[:m]``, each moved to another class
``(y + s) % n_classes`` with ``s = torch.randint(1, n_classes, (m,), generator=generator)`` drawn after the
permutation, so that a flipped label is never its old class.
"""
from __future__ import annotations

import torch

from llmlab import validate


def flip_labels(y: torch.Tensor, fraction: float, n_classes: int,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """A copy of ``y`` (N,) with exactly round(fraction * N) labels moved to a different class, in y's dtype."""
    validate.tensor("y", y, ndim=1)
    if len(y) == 0:
        raise ValueError("y is empty: need at least one label")
    if y.dtype.is_floating_point or y.dtype.is_complex or y.dtype == torch.bool:
        raise TypeError(f"y must hold integer class ids, got {y.dtype}")
    fraction = validate.probability("fraction", fraction)
    n_classes = validate.size("n_classes", n_classes, minimum=2)
    if (int(y.min()) < 0 or int(y.max()) >= n_classes):
        raise ValueError(f"y must lie in [0, n_classes={n_classes}), got min {int(y.min())}, max {int(y.max())}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    m = round(fraction * len(y))
    idx = torch.randperm(len(y), generator=generator)[:m]
    shift = torch.randint(1, n_classes, (m,), generator=generator)
    out = y.clone()
    out[idx] = ((y[idx].long() + shift) % n_classes).to(y.dtype)
    return out
