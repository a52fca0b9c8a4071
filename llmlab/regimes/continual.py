"""Continual learning: training on new data pulls the weights away from what the old data needed
(catastrophic forgetting, McCloskey & Cohen 1989). Replay, the simplest remedy, mixes stored old examples into
every new batch.

``replay_batch`` draws one batch of windows (rows of ``new`` and ``old``, each (N, W)): ``n_old =
round(ratio * batch_size)`` rows of ``old`` (Python's round: a half goes to the even neighbour, round(2.5) = 2)
and the rest from ``new``, by ``torch.randint``, new rows first:
``rows_new = torch.randint(len(new), (batch_size - n_old,), generator=generator)``, then ``rows_old =
torch.randint(len(old), (n_old,), generator=generator)``, and the batch is ``cat([new[rows_new], old[rows_old]])``.
"""
from __future__ import annotations

import torch

from llmlab import validate


def replay_batch(new: torch.Tensor, old: torch.Tensor, batch_size: int, ratio: float,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """(batch_size, W): batch_size - round(ratio·batch_size) random rows of new, then the rest from old."""
    validate.tensor("new", new, ndim=2)
    validate.tensor("old", old, ndim=2)
    if new.shape[1] != old.shape[1] or new.dtype != old.dtype:
        raise ValueError(f"new and old must have the same width and dtype, got {tuple(new.shape)} {new.dtype} "
                         f"and {tuple(old.shape)} {old.dtype}")
    batch_size = validate.size("batch_size", batch_size)
    ratio = validate.probability("ratio", ratio)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    n_old = round(ratio * batch_size)
    if (n_old and len(old) == 0) or (n_old < batch_size and len(new) == 0):
        raise ValueError("new and old must hold at least one row each where the batch draws from them")
    rows_new = torch.randint(len(new), (batch_size - n_old,), generator=generator)
    rows_old = torch.randint(len(old), (n_old,), generator=generator)
    return torch.cat([new[rows_new], old[rows_old]])
