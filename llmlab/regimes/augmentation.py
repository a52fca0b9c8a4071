"""Text augmentation on token ids: token dropout, which deletes random tokens and closes the gaps.

For a batch of right-padded encoder inputs ``ids (B, T)`` ([CLS] ... [SEP] then padding), each token is dropped
when ``torch.rand(ids.shape, generator=generator)`` is below ``p`` at its position, except the padding id and the
``protected`` ids ([CLS] = 101 and [SEP] = 102 for MiniLM's vocabulary), which are always kept, by id, wherever
they stand in the row (any other id is an ordinary token). The kept tokens of a row move left, in order, and
the row is filled up with ``pad_id``: the result has ids' shape and dtype, and its attention mask is
``result != pad_id``. (Wei & Zou's EDA, 2019, deletes words the same way; SimCSE's dropout noise is its
counterpart inside the network.)
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from llmlab import validate


def token_dropout(ids: torch.Tensor, p: float, generator: torch.Generator | None = None, pad_id: int = 0,
                  protected: Sequence[int] = (101, 102)) -> torch.Tensor:
    """ids (B, T) -> (B, T): each token not pad_id nor in protected deleted with probability p, gaps closed."""
    validate.tensor("ids", ids, ndim=2)
    if ids.dtype.is_floating_point or ids.dtype.is_complex or ids.dtype == torch.bool:
        raise TypeError(f"ids must hold integer token ids, got {ids.dtype}")
    if 0 in ids.shape or int(ids.min()) < 0:
        raise ValueError(f"ids must hold token ids >= 0 in at least one row and column, got shape {tuple(ids.shape)}")
    p = validate.probability("p", p, allow_one=False)
    pad_id = validate.integer("pad_id", pad_id, 0, validate.MAX_SIZE)
    if isinstance(protected, (str, bytes)) or not isinstance(protected, Sequence):
        raise TypeError(f"protected must be a list or tuple of token ids, got {type(protected).__name__}")
    protected = [validate.integer("protected's ids", t, 0, validate.MAX_SIZE) for t in protected]
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    r = torch.rand(ids.shape, generator=generator)
    keep = (r >= p) | (ids == pad_id) | torch.isin(ids, torch.tensor(protected, dtype=ids.dtype))
    out = torch.full_like(ids, pad_id)
    for b in range(ids.shape[0]):
        kept = ids[b][keep[b]]
        out[b, : len(kept)] = kept
    return out
