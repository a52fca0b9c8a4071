"""Notebook 16's reference code against the libraries that define what it computes: the LSTM step and sequence
against torch.nn.LSTM, k-fold against scikit-learn's KFold, the power-law fit against scipy's curve_fit; and the
stated conventions of label noise, token dropout, the multi-task loss and replay."""
import math

import pytest
import torch
import torch.nn.functional as F

from llmlab.nn import lstm
from llmlab.regimes import augmentation, continual, cross_validation, multitask, noisy_labels, scaling


def _torch_lstm(I, H, seed, dtype=torch.float64):
    torch.manual_seed(seed)
    m = torch.nn.LSTM(I, H, batch_first=True).to(dtype)
    return m, [p.detach() for p in (m.weight_ih_l0, m.weight_hh_l0, m.bias_ih_l0, m.bias_hh_l0)]


@pytest.mark.parametrize("B, T, I, H, dtype", [(1, 1, 3, 4, torch.float64), (3, 7, 5, 2, torch.float64),
                                               (2, 12, 8, 8, torch.float32), (4, 3, 1, 6, torch.float32)])
def test_lstm_equals_torch_nn_lstm(B, T, I, H, dtype):
    m, W = _torch_lstm(I, H, seed=B * 100 + T, dtype=dtype)
    x, h0, c0 = torch.randn(B, T, I, dtype=dtype), torch.randn(B, H, dtype=dtype), torch.randn(B, H, dtype=dtype)
    with torch.no_grad():
        want, (h_w, c_w) = m(x, (h0[None], c0[None]))
        step_h, step_c = m(x[:, :1], (h0[None], c0[None]))[1]
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-6)
    h1, c1 = lstm.lstm_cell(x[:, 0], h0, c0, *W)
    torch.testing.assert_close(h1, step_h[0], **tol)
    torch.testing.assert_close(c1, step_c[0], **tol)
    for forward in (lstm.lstm_forward, lstm.lstm_forward_fused):
        out, (h, c) = forward(x, h0, c0, *W)
        assert out.dtype == dtype and out.shape == (B, T, H)
        torch.testing.assert_close(out, want, **tol)
        torch.testing.assert_close(h, h_w[0], **tol)
        torch.testing.assert_close(c, c_w[0], **tol)


def test_lstm_gradients_equal_torch_nn_lstm():
    m, _ = _torch_lstm(3, 4, seed=0)
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    zeros = torch.zeros(2, 4, dtype=torch.float64)
    m(x, (zeros[None], zeros[None]))[0].sum().backward()
    want = [p.grad.clone() for p in (m.weight_ih_l0, m.weight_hh_l0, m.bias_ih_l0, m.bias_hh_l0)]
    W = [p.detach().clone().requires_grad_() for p in (m.weight_ih_l0, m.weight_hh_l0, m.bias_ih_l0, m.bias_hh_l0)]
    lstm.lstm_forward(x, zeros, zeros, *W)[0].sum().backward()
    for w, g in zip(W, want):
        torch.testing.assert_close(w.grad, g)


def test_lstm_lm_trains_with_either_forward():
    torch.manual_seed(0)
    idx = torch.randint(0, 20, (3, 9))
    a = lstm.LSTMLM(20, 8, 6)
    b = lstm.LSTMLM(20, 8, 6, forward_fn=lstm.lstm_forward_fused)
    b.load_state_dict(a.state_dict())
    la, lb = a(idx), b(idx)
    assert la.shape == (3, 9, 20)
    torch.testing.assert_close(la, lb, rtol=1e-5, atol=1e-6)
    F.cross_entropy(la.flatten(0, 1), idx.flatten()).backward()
    assert a.W_hh.grad is not None and a.W_hh.grad.abs().sum() > 0


@pytest.mark.parametrize("n, k", [(10, 2), (11, 3), (320, 5), (7, 7), (23, 5)])
def test_kfold_is_sklearn_kfold_of_the_permutation(n, k):
    sklearn = pytest.importorskip("sklearn.model_selection")
    seed = n + k
    folds = cross_validation.kfold_indices(n, k, seed)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    # scikit-learn's KFold without shuffling, applied to our permutation: the same folds, item for item
    for (tr, te), (s_tr, s_te) in zip(folds, sklearn.KFold(k).split(range(n))):
        assert te.tolist() == perm[s_te].tolist()
        assert tr.tolist() == perm[s_tr].tolist()
    assert sorted(torch.cat([te for _, te in folds]).tolist()) == list(range(n))
    assert max(map(len, (te for _, te in folds))) - min(map(len, (te for _, te in folds))) <= 1


def test_power_law_fit_agrees_with_scipy_curve_fit():
    optimize = pytest.importorskip("scipy.optimize")
    import numpy as np

    N = [1000 * 2.5**i for i in range(8)]
    L = [30 * n**-0.4 + 1.3 + 0.003 * math.sin(3 * i) for i, n in enumerate(N)]
    a, alpha, c = scaling.fit_power_law(N, L, grid=2000)
    (sa, salpha, sc), _ = optimize.curve_fit(lambda n, a, al, c: a * n**-al + c, np.array(N), np.array(L),
                                             p0=(10, 0.3, 1.0), maxfev=20000)
    assert abs(alpha - salpha) < 0.02 and abs(c - sc) < 0.02
    pred = scaling.power_law(1e7, a, alpha, c)
    assert abs(pred - (sa * 1e7**-salpha + sc)) < 0.01
    sse = sum((a * n**-alpha + c - y) ** 2 for n, y in zip(N, L))
    assert sse < 1e-3


def test_power_law_fit_recovers_an_exact_law_without_a_floor():
    N = [1e3, 1e4, 1e5, 1e6]
    a, alpha, c = scaling.fit_power_law(N, [5 * n**-0.25 for n in N])
    assert c == 0.0 and math.isclose(alpha, 0.25, rel_tol=1e-9) and math.isclose(a, 5, rel_tol=1e-9)


@pytest.mark.parametrize("n, fraction, K", [(40, 0.25, 4), (13, 0.5, 2), (10, 0.37, 3), (7, 1.0, 5)])
def test_flip_labels_flips_exactly_round_fraction_n_to_other_classes(n, fraction, K):
    y = torch.randint(0, K, (n,), generator=torch.Generator().manual_seed(n)).int()
    out = noisy_labels.flip_labels(y, fraction, K, torch.Generator().manual_seed(1))
    assert out.dtype == y.dtype and int((out != y).sum()) == round(fraction * n)
    assert int(out.min()) >= 0 and int(out.max()) < K


def test_token_dropout_keeps_specials_and_closes_gaps():
    ids = torch.tensor([[101, 5, 6, 7, 8, 102, 0, 0], [101, 9, 10, 102, 0, 0, 0, 0]])
    out = augmentation.token_dropout(ids, 0.5, torch.Generator().manual_seed(0))
    for row, new in zip(ids.tolist(), out.tolist()):
        real = [t for t in new if t != 0]
        assert new == real + [0] * (len(new) - len(real))
        assert real[0] == 101 and real[-1] == 102
        it = iter(row)
        assert all(t in it for t in real)  # a subsequence: order kept
    assert torch.equal(augmentation.token_dropout(ids, 0.0), ids)


def test_multitask_loss_is_the_weighted_sum():
    la, lb = torch.randn(5, 4), torch.randn(5, 2)
    ya, yb = torch.tensor([0, 1, 2, 3, 0]), torch.tensor([1, 0, 1, 1, 0])
    want = F.cross_entropy(la, ya) + 0.3 * F.cross_entropy(lb, yb)
    torch.testing.assert_close(multitask.multitask_loss(la, ya, lb, yb, 0.3), want)


def test_replay_batch_takes_round_ratio_batch_rows_from_old_after_the_new_ones():
    new, old = torch.arange(1, 31).view(10, 3), -torch.arange(1, 16).view(5, 3)
    out = continual.replay_batch(new, old, 10, 0.26, torch.Generator().manual_seed(0))
    assert (out[:7, 0] > 0).all() and (out[7:, 0] < 0).all()


@pytest.mark.parametrize("call, exc, msg", [
    (lambda: cross_validation.kfold_indices(5, 6), ValueError, "k"),
    (lambda: cross_validation.kfold_indices(5, 1), ValueError, "k"),
    (lambda: noisy_labels.flip_labels(torch.tensor([0, 5]), 0.5, 4), ValueError, "y"),
    (lambda: noisy_labels.flip_labels(torch.tensor([0.0, 1.0]), 0.5, 4), TypeError, "y"),
    (lambda: augmentation.token_dropout(torch.tensor([[101, 5]]), 1.0), ValueError, "p"),
    (lambda: multitask.multitask_loss(torch.randn(3, 4), torch.tensor([0, 1]), torch.randn(3, 2),
                                      torch.tensor([0, 1, 1]), 1.0), ValueError, "y_a"),
    (lambda: continual.replay_batch(torch.zeros(3, 4), torch.zeros(3, 5), 4, 0.5), ValueError, "width"),
    (lambda: scaling.fit_power_law([1, 2], [3, 2]), ValueError, "3 points"),
    (lambda: lstm.lstm_cell(torch.randn(2, 3), torch.randn(2, 4), torch.randn(2, 4), torch.randn(12, 3),
                            torch.randn(16, 4), torch.randn(16), torch.randn(16)), ValueError, "W_ih"),
])
def test_bad_arguments_are_named(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()
