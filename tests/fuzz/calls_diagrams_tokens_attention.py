"""Valid calls: the diagrams of notebooks 03 (``llmlab.diagrams.bpe``) and 04 (``llmlab.diagrams.attention``)."""
from __future__ import annotations

import torch

from tests.fuzz import fixtures as F


def _agg() -> None:
    import matplotlib

    matplotlib.use("Agg")


def _ladder():
    _agg()
    return dict(word=" lowest", tokenizer=F.bpe(), title="BPE")


def _steps():
    tok = F.bpe()
    return dict(ids=[tok.byte_ids[b] for b in b" lowest"], ranks=tok.ranks, merged=tok.merged)


def _mask_grid():
    _agg()
    am = torch.tensor([[1, 1, 1, 1], [0, 0, 1, 1]])
    mask = torch.ones(4, 4, dtype=torch.bool).tril() & am.bool()[:, None, None, :]
    return dict(attention_mask=am, tokens=[["a", "b", "c", "d"], ["<pad>", "<pad>", "e", "f"]], mask=mask, title="m")


def _gqa():
    _agg()
    return dict(n_heads=6, n_kv_heads=2, kv_of_head=[0, 0, 0, 1, 1, 1], head_dim=8, title="g")


VALID = {
    "llmlab.diagrams.bpe.merge_ladder": _ladder,
    "llmlab.diagrams.bpe.merge_steps": _steps,
    "llmlab.diagrams.attention.mask_grid": _mask_grid,
    "llmlab.diagrams.attention.gqa_heads": _gqa,
}

SKIP: dict[str, str] = {}
