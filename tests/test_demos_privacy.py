"""The demos of notebook 15a (privacy) run the learner's functions: with a catalogued mistake in place of the
reference, the demo's own computation gives another result (other private weights and accuracy, another ε, another
advantage, other FedAvg weights on the ranks), and ``yours`` says which implementation ran."""
from __future__ import annotations

import math

import torch

from llmlab.grading.demo import yours
from llmlab.grading.parallelism import run_yours
from llmlab.trust import accounting, dp_sgd, federated, membership
from tests.mutants import privacy as mut


def _data(n=60, d=8, k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(k, d, generator=g, dtype=torch.float64) * 2
    y = torch.randint(0, k, (n,), generator=g)
    return centres[y] + torch.randn(n, d, generator=g, dtype=torch.float64), y


def test_a_wrong_dp_sgd_step_changes_the_private_probe(capsys):
    x, y = _data()
    args = (x, y, 3, 1.0, 1.0, 0.2, 40)
    W, b = dp_sgd.train_dp_logistic(*args, lr=0.5, seed=0)
    step = yours(mut.step_actual_batch, dp_sgd.dp_sgd_step)
    W2, b2 = dp_sgd.train_dp_logistic(*args, lr=0.5, seed=0, step=step, grad_samples=yours(
        mut.grads_batch_sum, dp_sgd.linear_grad_samples))
    assert capsys.readouterr().out.count("yours") >= 1
    assert step.ran == "yours"
    assert not torch.allclose(W, W2)
    # the right functions, given as the learner's, give the reference's run exactly
    W3, _ = dp_sgd.train_dp_logistic(*args, lr=0.5, seed=0, step=yours(dp_sgd.dp_sgd_step, dp_sgd.dp_sgd_step))
    assert torch.equal(W, W3)


def test_a_wrong_conversion_changes_the_printed_epsilon():
    orders = list(range(2, 64))
    rdp = yours(mut.rdp_one_step, accounting.gaussian_rdp, quiet=True)(0.1, 1.5, 300, orders)
    eps_wrong = accounting.rdp_to_epsilon(orders, rdp, 1e-5)[0]
    eps = accounting.dp_epsilon(0.1, 1.5, 300, 1e-5)
    assert eps_wrong < eps / 5  # one step's RDP: a far too optimistic ε
    old = yours(mut.eps_mironov, accounting.rdp_to_epsilon, quiet=True)(orders, accounting.gaussian_rdp(0.1, 1.5, 300, orders), 1e-5)
    assert old[0] > eps + 0.1


def test_a_flipped_attack_changes_the_advantage():
    m, n = torch.rand(40, dtype=torch.float64) * 0.5, torch.rand(40, dtype=torch.float64) + 0.2
    right = membership.membership_advantage(m, n)
    auc = yours(mut.adv_auc, membership.membership_advantage, quiet=True)(m, n)
    assert right > 0.5 and not math.isclose(auc, right)


def test_an_unweighted_fedavg_changes_the_weights_on_the_ranks(capsys):
    x, y = _data(30, 6)
    shards = [list(range(0, 8)), list(range(8, 30))]  # unequal clients
    runs = [{"shards": shards, "local_steps": 1, "rounds": 3}]
    right = run_yours(federated.worker_fedavg, 2, x, y, runs, 0.5, fedavg=yours(federated.fedavg, federated.fedavg),
                      local_sgd=yours(federated.local_sgd, federated.local_sgd))
    wrong = run_yours(federated.worker_fedavg, 2, x, y, runs, 0.5,
                      fedavg=yours(mut.fedavg_unweighted, federated.fedavg),
                      local_sgd=yours(federated.local_sgd, federated.local_sgd))
    assert "fedavg: yours (on every rank)" in capsys.readouterr().out
    state = {"weight": torch.zeros(3, 6, dtype=torch.float64), "bias": torch.zeros(3, dtype=torch.float64)}
    for _ in range(3):
        state = federated.local_sgd(state, x, y, 0.5, 1)
    torch.testing.assert_close(right[0][0][-1]["weight"], state["weight"], rtol=1e-12, atol=1e-12)
    assert (wrong[0][0][-1]["weight"] - state["weight"]).abs().max() > 1e-3


def test_a_stub_hands_over_to_the_reference_on_the_ranks(capsys):
    def local_sgd(state, x, y, lr, steps):
        raise NotImplementedError

    x, y = _data(20, 4)
    runs = [{"shards": [list(range(10)), list(range(10, 20))], "local_steps": 2, "rounds": 1}]
    part = yours(local_sgd, federated.local_sgd)
    ranks = run_yours(federated.worker_fedavg, 2, x, y, runs, 0.5, local_sgd=part)
    assert part.ran == "reference" and "not written yet" in capsys.readouterr().out
    assert torch.isfinite(ranks[0][0][0]["weight"]).all()
