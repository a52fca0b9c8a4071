"""llmlab.trust's privacy code against its oracles: Opacus (per-sample gradients, DPOptimizer's clipping, noise
and scaling, the RDP accountant), torch.func (per-sample gradients), and plain gradient descent on the pooled
data (FedAvg with one local step, on 2 gloo ranks)."""
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from llmlab.parallel import launch
from llmlab.trust import accounting, dp_sgd, federated, leakage, membership

opacus = pytest.importorskip("opacus")
pytestmark = [pytest.mark.filterwarnings("ignore:Secure RNG turned off"),
              pytest.mark.filterwarnings("ignore:Optimal order is the"),
              pytest.mark.filterwarnings("ignore:Full backward hook is firing")]


def _model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 3))


def _batch(n=8, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 6, generator=g), torch.randint(0, 3, (n,), generator=g)


def _func_grad_samples(model, x, y):
    from torch.func import functional_call, grad, vmap

    params = {k: v.detach() for k, v in model.named_parameters()}

    def loss(p, xi, yi):
        return F.cross_entropy(functional_call(model, p, (xi[None],)), yi[None])

    g = vmap(grad(loss), in_dims=(None, 0, 0))(params, x, y)
    return [g[k] for k, _ in model.named_parameters()]


def test_linear_grad_samples_equal_torch_func_and_opacus():
    from opacus import GradSampleModule

    model = _model()
    x, y = _batch()
    want = _func_grad_samples(model, x, y)
    gsm = GradSampleModule(_model(), loss_reduction="sum")
    F.cross_entropy(gsm(x), y, reduction="sum").backward()
    opacus_gs = [p.grad_sample for p in gsm.parameters()]
    # by hand: the last layer's input and the gradient at its output
    h = torch.tanh(model[0](x))
    backprops = torch.softmax(model[2](h), -1) - F.one_hot(y, 3).float()
    gw, gb = dp_sgd.linear_grad_samples(h, backprops)
    for ours, theirs, oracle in [(gw, want[2], opacus_gs[2]), (gb, want[3], opacus_gs[3])]:
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(ours, oracle, rtol=1e-5, atol=1e-6)
    for ours, theirs in zip(want, opacus_gs):
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)


def test_sequence_grad_samples_sum_over_positions():
    from opacus import GradSampleModule

    lin = nn.Linear(4, 3)
    x = torch.randn(5, 7, 4)
    gsm = GradSampleModule(lin, loss_reduction="sum")
    gsm(x).pow(2).sum().backward()
    gw, gb = dp_sgd.linear_grad_samples(x, 2 * lin(x).detach())
    torch.testing.assert_close(gw, lin.weight.grad_sample, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gb, lin.bias.grad_sample, rtol=1e-5, atol=1e-5)


def _opacus_step(model, x, y, sigma, C, lr, seed):
    """One step of Opacus's make_private on model (a batch of len(x), no Poisson sampling, loss mean)."""
    from opacus import PrivacyEngine

    data = torch.utils.data.TensorDataset(x, y)
    engine = PrivacyEngine()
    gen = torch.Generator().manual_seed(seed)
    module, opt, loader = engine.make_private(
        module=model, optimizer=torch.optim.SGD(model.parameters(), lr=lr),
        data_loader=torch.utils.data.DataLoader(data, batch_size=len(x)),
        noise_multiplier=sigma, max_grad_norm=C, poisson_sampling=False, noise_generator=gen)
    opt.zero_grad()
    F.cross_entropy(module(x), y).backward()
    grad_samples = [p.grad_sample.clone() for p in module.parameters()]
    opt.step()
    return [p.detach().clone() for p in module.parameters()], grad_samples, opt


@pytest.mark.parametrize("sigma", [0.0, 1.3])
@pytest.mark.parametrize("C", [0.05, 0.7, 100.0])
def test_dp_sgd_step_equals_opacus_make_private(sigma, C):
    x, y = _batch(8)
    before = [p.detach().clone() for p in _model().parameters()]
    after, grad_samples, opt = _opacus_step(_model(), x, y, sigma, C, lr=0.5, seed=7)
    assert opt.expected_batch_size == 8
    # the same per-sample gradients as torch.func
    for ours, theirs in zip(_func_grad_samples(_model(), x, y), grad_samples):
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
    gen = torch.Generator().manual_seed(7)
    mine = dp_sgd.dp_sgd_step(before, grad_samples, C, sigma, 8, 0.5, gen)
    for ours, theirs in zip(mine, after):
        torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-7)  # same noise, drawn in the same order


def test_clip_per_sample_equals_opacus_clipping():
    from opacus.optimizers import DPOptimizer

    x, y = _batch(8)
    model = _model()
    from opacus import GradSampleModule

    gsm = GradSampleModule(model)
    opt = DPOptimizer(torch.optim.SGD(gsm.parameters(), lr=0.1), noise_multiplier=0.0, max_grad_norm=0.3,
                      expected_batch_size=8)
    F.cross_entropy(gsm(x), y).backward()
    grad_samples = [p.grad_sample.clone() for p in gsm.parameters()]
    opt.pre_step()  # clip, accumulate, (no) noise, scale
    ours = dp_sgd.clip_per_sample(grad_samples, 0.3)
    for p, g in zip(gsm.parameters(), ours):
        torch.testing.assert_close(g.sum(0) / 8, p.grad, rtol=1e-6, atol=1e-8)
    norms = dp_sgd.per_sample_norms(ours)
    assert (norms <= 0.3 + 1e-6).all()


@pytest.mark.parametrize("q, sigma, steps", [(0.01, 1.1, 1000), (0.05, 0.8, 300), (1.0, 2.0, 10), (0.0, 1.0, 5),
                                             (0.3, 4.0, 1), (0.2, 0.0, 3)])
def test_gaussian_rdp_and_epsilon_equal_opacus(q, sigma, steps):
    from opacus.accountants.analysis import rdp as R

    orders = accounting.ORDERS
    ours = accounting.gaussian_rdp(q, sigma, steps, orders)
    theirs = R.compute_rdp(q=q, noise_multiplier=sigma, steps=steps, orders=orders)
    for a, b in zip(ours, theirs):
        assert a == b or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12), (a, b)
    for delta in (1e-5, 1e-3):
        eps, order = accounting.rdp_to_epsilon(orders, ours, delta)
        want_eps, want_order = R.get_privacy_spent(orders=orders, rdp=theirs, delta=delta)
        assert (eps == want_eps == math.inf) or math.isclose(eps, want_eps, rel_tol=1e-9), (eps, want_eps)
        if math.isfinite(eps):
            assert order == want_order


def test_dp_epsilon_equals_the_rdp_accountant_at_integer_orders():
    from opacus.accountants import RDPAccountant

    acc = RDPAccountant()
    for _ in range(200):
        acc.step(noise_multiplier=1.0, sample_rate=0.05)
    want = acc.get_epsilon(delta=1e-5, alphas=accounting.ORDERS)
    assert math.isclose(accounting.dp_epsilon(0.05, 1.0, 200, 1e-5), want, rel_tol=1e-9)


def test_membership_advantage_equals_a_brute_force_over_thresholds():
    g = torch.Generator().manual_seed(0)
    m, n = torch.randn(30, generator=g).round(decimals=1), (torch.randn(40, generator=g) + 0.7).round(decimals=1)
    best = max([0.0] + [(m <= t).double().mean().item() - (n <= t).double().mean().item() for t in torch.cat([m, n])])
    assert math.isclose(membership.membership_advantage(m, n), best, abs_tol=1e-12)
    assert membership.membership_advantage(torch.zeros(3), torch.ones(4)) == 1.0
    assert membership.membership_advantage(torch.ones(3), torch.zeros(4)) == 0.0


def test_leak_input_recovers_the_input_from_a_real_gradient():
    lin = nn.Linear(5, 4)
    x = torch.randn(5)
    F.cross_entropy(lin(x)[None], torch.tensor([2])).backward()
    torch.testing.assert_close(leakage.leak_input(lin.weight.grad, lin.bias.grad), x, rtol=1e-5, atol=1e-6)


def test_fedavg_with_one_local_step_equals_pooled_gradient_descent_on_two_ranks():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(30, 6, generator=g, dtype=torch.float64), torch.randint(0, 3, (30,), generator=g)
    shards = [list(range(0, 12)), list(range(12, 30))]  # unequal clients: the weights matter
    runs = [{"shards": shards, "local_steps": 1, "rounds": 4}, {"shards": shards, "local_steps": 5, "rounds": 4}]
    ranks = launch.run(federated.worker_fedavg, 2, x, y, runs, 0.5, timeout=60)
    state = {"weight": torch.zeros(3, 6, dtype=torch.float64), "bias": torch.zeros(3, dtype=torch.float64)}
    for r in range(4):
        state = federated.local_sgd(state, x, y, 0.5, 1)  # centralised: one step on the pooled batch
        for rank in ranks:
            for k in state:
                torch.testing.assert_close(rank[0][r][k], state[k], rtol=1e-12, atol=1e-12)
    drift = max((ranks[0][1][-1][k] - federated.local_sgd(
        {"weight": torch.zeros(3, 6, dtype=torch.float64), "bias": torch.zeros(3, dtype=torch.float64)},
        x, y, 0.5, 20)[k]).abs().max().item() for k in state)
    assert drift > 1e-4  # several local steps on unequal shards: not the centralised run


def test_local_sgd_equals_autograd():
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(9, 4, generator=g), torch.randint(0, 3, (9,), generator=g)
    lin = nn.Linear(4, 3)
    state = {k: v.detach().clone() for k, v in lin.state_dict().items()}
    opt = torch.optim.SGD(lin.parameters(), lr=0.3)
    for _ in range(3):
        opt.zero_grad()
        F.cross_entropy(lin(x), y).backward()
        opt.step()
    out = federated.local_sgd(state, x, y, 0.3, 3)
    for k, v in lin.state_dict().items():
        torch.testing.assert_close(out[k], v, rtol=1e-5, atol=1e-6)
