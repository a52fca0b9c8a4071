"""Valid calls: privacy (``llmlab.trust``'s DP-SGD, accounting, federated averaging, membership inference,
gradient leakage) and its diagrams (``llmlab.diagrams.privacy``)."""
from __future__ import annotations

import torch

from tests.fuzz import fixtures as F


def _agg():
    import matplotlib

    matplotlib.use("Agg")


def _labels(n: int, k: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, k, (n,), generator=torch.Generator().manual_seed(seed))


def _state():
    return {"weight": F.randn(3, 4), "bias": F.randn(3, seed=1)}


def _fedavg_worker():
    F.process_group()
    return dict(rank=0, world_size=1, x=F.randn(6, 4), y=_labels(6), lr=0.5,
                runs=[{"shards": [[0, 1, 2, 3, 4, 5]], "local_steps": 2, "rounds": 2}])


VALID = {
    "llmlab.trust.dp_sgd.linear_grad_samples": lambda: dict(activations=F.randn(4, 5), backprops=F.randn(4, 3, seed=1)),
    "llmlab.trust.dp_sgd.per_sample_norms": lambda: dict(grads=[F.randn(4, 3, 5), F.randn(4, 3, seed=1)]),
    "llmlab.trust.dp_sgd.clip_per_sample": lambda: dict(grads=[F.randn(4, 3, 5), F.randn(4, 3, seed=1)], max_norm=1.0),
    "llmlab.trust.dp_sgd.dp_sgd_step": lambda: dict(
        params=[F.randn(3, 5), F.randn(3, seed=1)], grad_samples=[F.randn(4, 3, 5, seed=2), F.randn(4, 3, seed=3)],
        max_norm=1.0, noise_multiplier=1.1, expected_batch_size=4, lr=0.1, generator=torch.Generator().manual_seed(0)),
    "llmlab.trust.dp_sgd.poisson_batches": lambda: dict(n=20, sample_rate=0.3, steps=3,
                                                        generator=torch.Generator().manual_seed(0)),
    "llmlab.trust.dp_sgd.train_dp_logistic": lambda: dict(
        x=F.randn(20, 4), y=_labels(20), n_classes=3, noise_multiplier=1.0, max_norm=1.0, sample_rate=0.3, steps=3,
        lr=0.5, seed=0, step=None, grad_samples=None),
    "llmlab.trust.accounting.gaussian_rdp": lambda: dict(q=0.01, noise_multiplier=1.1, steps=100, orders=[2, 4, 8, 32]),
    "llmlab.trust.accounting.rdp_to_epsilon": lambda: dict(orders=[2, 4, 8], rdp=[0.1, 0.3, 0.9], delta=1e-5),
    "llmlab.trust.accounting.dp_epsilon": lambda: dict(q=0.01, noise_multiplier=1.1, steps=100, delta=1e-5,
                                                       orders=[2, 4, 8, 32]),
    "llmlab.trust.federated.fedavg": lambda: dict(client_states=[_state(), _state()], client_sizes=[3, 5]),
    "llmlab.trust.federated.local_sgd": lambda: dict(state=_state(), x=F.randn(6, 4), y=_labels(6), lr=0.5, steps=2),
    "llmlab.trust.federated.accuracy": lambda: dict(state=_state(), x=F.randn(6, 4), y=_labels(6)),
    "llmlab.trust.federated.worker_fedavg": _fedavg_worker,
    "llmlab.trust.membership.membership_advantage": lambda: dict(member_losses=F.randn(5).abs(),
                                                                 nonmember_losses=F.randn(7, seed=1).abs()),
    "llmlab.trust.membership.dp_advantage_bound": lambda: dict(epsilon=1.0, delta=1e-5),
    "llmlab.trust.leakage.leak_input": lambda: dict(grad_weight=F.randn(3, 5), grad_bias=F.randn(3, seed=1)),
    "llmlab.diagrams.privacy.clipping_vectors": lambda: (_agg(), dict(vectors=F.randn(5, 2), max_norm=1.0,
                                                                      labels=list("abcde"), title="t"))[1],
    "llmlab.diagrams.privacy.fedavg_round": lambda: (_agg(), dict(client_sizes=[3, 5], local_steps=2,
                                                                  labels=["a", "b"], title="t"))[1],
}

SKIP: dict[str, str] = {}
