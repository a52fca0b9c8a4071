"""Valid calls: notebook 16's learning regimes (``llmlab.regimes``), the LSTM (``llmlab.nn.lstm``) and their
diagrams (``llmlab.diagrams.regimes``)."""
from __future__ import annotations

import torch

from tests.fuzz import fixtures as F
from tests.fuzz.call import method


def _gen():
    return torch.Generator().manual_seed(0)


def _lstm(B=2, T=3, I=3, H=4):
    return dict(W_ih=F.randn(4 * H, I), W_hh=F.randn(4 * H, H, seed=1), b_ih=F.randn(4 * H, seed=2),
                b_hh=F.randn(4 * H, seed=3))


def _cell():
    return dict(x=F.randn(2, 3, seed=4), h=F.randn(2, 4, seed=5), c=F.randn(2, 4, seed=6), **_lstm())


def _sequence():
    return dict(x=F.randn(2, 5, 3, seed=4), h0=F.randn(2, 4, seed=5), c0=F.randn(2, 4, seed=6), **_lstm())


def _lm():
    from llmlab.nn.lstm import LSTMLM

    return LSTMLM(F.VOCAB, 8, 6)


def _agg():
    import matplotlib

    matplotlib.use("Agg")


def _kfold_grid():
    _agg()
    return dict(fold_of=[0, 1, 2, 0, 1, 2, 0], n_cols=4, row_labels=["a", "b"], scores=[0.5, 0.6, 0.7], title="t")


def _gates():
    _agg()
    v = [0.1, 0.5, 0.9]
    return dict(i=v, f=v, g=[-0.5, 0.0, 0.5], o=v, c_prev=v, c=v, h=v, title="t")


VALID = {
    "llmlab.regimes.cross_validation.fold_sizes": lambda: dict(n=11, k=3),
    "llmlab.regimes.cross_validation.kfold_indices": lambda: dict(n=11, k=3, seed=0),
    "llmlab.regimes.noisy_labels.flip_labels": lambda: dict(y=torch.tensor([0, 1, 2, 3, 1, 0]), fraction=0.5,
                                                            n_classes=4, generator=_gen()),
    "llmlab.regimes.augmentation.token_dropout": lambda: dict(ids=torch.tensor([[101, 7, 8, 9, 102, 0]]), p=0.5,
                                                              generator=_gen(), pad_id=0, protected=(101, 102)),
    "llmlab.regimes.multitask.multitask_loss": lambda: dict(logits_a=F.randn(3, 4), y_a=torch.tensor([0, 1, 3]),
                                                            logits_b=F.randn(3, 2, seed=1), y_b=torch.tensor([1, 0, 1]),
                                                            weight=0.5),
    "llmlab.regimes.continual.replay_batch": lambda: dict(new=torch.arange(12).view(4, 3),
                                                          old=-torch.arange(9).view(3, 3), batch_size=5, ratio=0.4,
                                                          generator=_gen()),
    "llmlab.regimes.scaling.power_law": lambda: dict(N=1000.0, a=10.0, alpha=0.3, c=1.0),
    "llmlab.regimes.scaling.fit_power_law": lambda: dict(N=[1e3, 1e4, 1e5, 1e6], L=[3.0, 2.2, 1.8, 1.6], grid=50),
    "llmlab.nn.lstm.lstm_cell": _cell,
    "llmlab.nn.lstm.lstm_forward": _sequence,
    "llmlab.nn.lstm.lstm_forward_fused": _sequence,
    "llmlab.nn.lstm.LSTMLM": lambda: dict(vocab_size=32, embed_dim=8, hidden=6),
    "llmlab.nn.lstm.LSTMLM.forward": lambda: method(_lm(), "forward", idx=F.ids(2, 5)),
    "llmlab.diagrams.regimes.kfold_grid": _kfold_grid,
    "llmlab.diagrams.regimes.lstm_gates": _gates,
}

SKIP: dict[str, str] = {}
