"""llmlab.compress: knowledge distillation, k-means weight sharing, low-rank factorisation and sizes in bits.

Oracles: ``F.kl_div`` (log_target, batchmean) and a numpy formula for the KD loss, autograd of a hand-written
loss and the closed-form gradient T (q - p) / n for its gradient, scikit-learn's Lloyd ``KMeans`` from the same
initial centroids (centroids equal after every iteration, not only at the end), brute-force argmin for the
assignment, ``torch.linalg.svd`` and Eckart–Young for the factorisation, brute force for the break-even rank."""
import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from llmlab.compress import distill, lowrank, ratio, sharing
from llmlab.compress.lowrank import LowRankLinear
from llmlab.nn.layers import SwiGLU
from llmlab.nn.model import Decoder, DecoderConfig
from tests.test_inference import _threads_per_worker  # noqa: F401 (an autouse fixture: threads per xdist worker)

TINY = DecoderConfig(vocab_size=50, dim=16, n_layers=1, n_heads=2, n_kv_heads=1, hidden_dim=32, max_seq_len=32)


def _randn(*shape, seed=0, dtype=torch.float32):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _logits(seed, shape=(2, 5, 11), scale=3.0):
    return _randn(*shape, seed=seed, dtype=torch.float64) * scale


# =============================================================================================== distillation


@pytest.mark.parametrize("T", [0.5, 1.0, 2.0, 8.0])
def test_soft_targets_is_softmax_at_temperature(T):
    z = _logits(0)
    p = distill.soft_targets(z, T)
    torch.testing.assert_close(p, torch.softmax(z / T, -1), rtol=0, atol=1e-15)
    torch.testing.assert_close(p.sum(-1), torch.ones(2, 5, dtype=torch.float64))


def test_soft_targets_flatten_towards_uniform_as_T_grows():
    z = _logits(0)
    spread = [float(distill.soft_targets(z, T).amax(-1).mean()) for T in (1, 4, 100)]
    assert spread[0] > spread[1] > spread[2] > 1 / 11
    assert spread[2] < 1 / 11 + 0.01


@pytest.mark.parametrize("T", [1.0, 2.0, 5.0])
@pytest.mark.parametrize("shape", [(7, 11), (2, 5, 11), (2, 3, 4, 11)])
def test_kd_loss_equals_kl_div_batchmean_times_T_squared(T, shape):
    s, t = _logits(1, shape), _logits(2, shape)
    V = shape[-1]
    log_q = F.log_softmax(s.reshape(-1, V) / T, -1)
    log_p = F.log_softmax(t.reshape(-1, V) / T, -1)
    expected = F.kl_div(log_q, log_p, reduction="batchmean", log_target=True) * T**2
    torch.testing.assert_close(distill.kd_loss(s, t, T), expected, rtol=1e-12, atol=1e-14)


def test_kd_loss_equals_numpy_formula():
    """sum_v p log(p / q), averaged over the 10 positions, times T²: written out in numpy."""
    T = 3.0
    s, t = _logits(3, (2, 5, 7)), _logits(4, (2, 5, 7))
    S, Tt = s.numpy().reshape(10, 7) / T, t.numpy().reshape(10, 7) / T
    p = np.exp(Tt) / np.exp(Tt).sum(1, keepdims=True)
    q = np.exp(S) / np.exp(S).sum(1, keepdims=True)
    expected = T**2 * np.mean([sum(p[i, v] * math.log(p[i, v] / q[i, v]) for v in range(7)) for i in range(10)])
    assert float(distill.kd_loss(s, t, T)) == pytest.approx(expected, rel=1e-12)


def test_kd_loss_is_zero_for_equal_logits_and_positive_otherwise():
    t = _logits(5)
    assert float(distill.kd_loss(t.clone(), t, 2.0)) == pytest.approx(0.0, abs=1e-14)
    assert float(distill.kd_loss(t + 7.0, t, 2.0)) == pytest.approx(0.0, abs=1e-12)  # softmax ignores a shift
    assert float(distill.kd_loss(_logits(6), t, 2.0)) > 0


def test_kd_loss_float32_and_bfloat16_inputs_give_float32():
    s, t = _logits(1).float(), _logits(2).float()
    assert distill.kd_loss(s, t, 2.0).dtype == torch.float32
    out = distill.kd_loss(s.bfloat16(), t.bfloat16(), 2.0)
    assert out.dtype == torch.float32
    assert float(out) == pytest.approx(float(distill.kd_loss(s, t, 2.0)), rel=0.05)


@pytest.mark.parametrize("T", [1.0, 4.0])
def test_kd_loss_gradient_matches_autograd_of_hand_formula_and_closed_form(T):
    """d kd_loss / d z_student = T² · (q - p) / T / n = T (q - p) / n, n = number of positions."""
    t = _logits(7)
    s1 = _logits(8).requires_grad_()
    distill.kd_loss(s1, t, T).backward()
    s2 = _logits(8).requires_grad_()
    p = torch.softmax(t / T, -1)
    hand = (p * (p.log() - torch.log_softmax(s2 / T, -1))).sum(-1).mean() * T**2
    hand.backward()
    torch.testing.assert_close(s1.grad, s2.grad, rtol=1e-10, atol=1e-14)
    q = torch.softmax(s1.detach() / T, -1)
    torch.testing.assert_close(s1.grad, T * (q - p) / 10, rtol=1e-10, atol=1e-14)


def test_kd_loss_sends_no_gradient_to_the_teacher():
    s, t = _logits(1).requires_grad_(), _logits(2).requires_grad_()
    distill.kd_loss(s, t, 2.0).backward()
    assert s.grad is not None and t.grad is None


def test_kd_loss_T_squared_keeps_the_gradient_size_independent_of_T():
    """Without the T² factor the gradient would shrink 4x per doubling of T; with it, it settles to a constant."""
    t, s0 = _logits(9, scale=1.0), _logits(10, scale=1.0)
    norms = []
    for T in (10.0, 20.0, 40.0, 80.0):
        s = s0.clone().requires_grad_()
        distill.kd_loss(s, t, T).backward()
        norms.append(float(s.grad.norm()))
    for a, b in zip(norms, norms[1:]):
        assert b / a == pytest.approx(1.0, abs=0.02)  # unscaled: b / a = 1/4


@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
def test_distillation_loss_mixes_kd_and_cross_entropy(alpha):
    s, t = _logits(1), _logits(2)
    y = torch.randint(0, 11, (2, 5), generator=torch.Generator().manual_seed(0))
    ce = F.cross_entropy(s.reshape(-1, 11), y.reshape(-1))
    expected = alpha * distill.kd_loss(s, t, 2.0) + (1 - alpha) * ce
    torch.testing.assert_close(distill.distillation_loss(s, t, y, 2.0, alpha), expected, rtol=1e-12, atol=1e-14)
    if alpha == 0:
        torch.testing.assert_close(distill.distillation_loss(s, t, y, 2.0, alpha), ce, rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------------------------------- top-k cache


def test_topk_logits_are_the_k_largest_in_order():
    z = _logits(11)
    values, indices = distill.topk_logits(z, 4)
    assert values.shape == indices.shape == (2, 5, 4) and indices.dtype == torch.long
    torch.testing.assert_close(values, z.gather(-1, indices), rtol=0, atol=0)
    assert bool((values[..., :-1] >= values[..., 1:]).all())
    assert bool((values[..., -1:] >= z.sort(-1, descending=True).values[..., 4:5]).all())  # nothing bigger left out


@pytest.mark.parametrize("T", [0.7, 1.0, 3.0])
def test_kd_loss_topk_with_k_equal_V_is_kd_loss(T):
    s, t = _logits(12), _logits(13)
    values, indices = distill.topk_logits(t, 11)
    torch.testing.assert_close(distill.kd_loss_topk(s, values, indices, T), distill.kd_loss(s, t, T),
                               rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("k", [1, 3, 8])
def test_kd_loss_topk_is_kd_loss_against_the_truncated_teacher(k):
    """p~ = the teacher's top k renormalised: the same as a full teacher whose other logits are -1e4 (p = 0)."""
    T = 2.0
    s, t = _logits(14), _logits(15)
    values, indices = distill.topk_logits(t, k)
    truncated = torch.full_like(t, -1e4).scatter(-1, indices, values)
    torch.testing.assert_close(distill.kd_loss_topk(s, values, indices, T), distill.kd_loss(s, truncated, T),
                               rtol=1e-12, atol=1e-14)


def test_kd_loss_topk_ignores_a_constant_shift_of_the_cached_values():
    """Log-probabilities (what teacher_topk stores) and raw logits give the same loss."""
    s, t = _logits(16), _logits(17)
    values, indices = distill.topk_logits(t, 5)
    log_probs, _ = distill.topk_logits(t.log_softmax(-1), 5)
    torch.testing.assert_close(distill.kd_loss_topk(s, log_probs, indices, 2.0),
                               distill.kd_loss_topk(s, values, indices, 2.0), rtol=1e-12, atol=1e-14)


def test_kd_loss_topk_gradient_matches_kd_loss_at_k_equal_V():
    t = _logits(18)
    values, indices = distill.topk_logits(t, 11)
    s1, s2 = _logits(19).requires_grad_(), _logits(19).requires_grad_()
    distill.kd_loss_topk(s1, values, indices, 2.0).backward()
    distill.kd_loss(s2, t, 2.0).backward()
    torch.testing.assert_close(s1.grad, s2.grad, rtol=1e-12, atol=1e-14)


def test_teacher_topk_caches_the_teachers_top_k_log_probabilities():
    torch.manual_seed(0)
    teacher = Decoder(TINY).train()
    ids = torch.randint(0, TINY.vocab_size, (5, 12), generator=torch.Generator().manual_seed(1))
    values, indices = distill.teacher_topk(teacher, ids, k=6, batch_size=2)
    assert teacher.training  # its mode is given back
    assert values.shape == indices.shape == (5, 12, 6)
    assert values.dtype == torch.float16 and indices.dtype == torch.int32
    with torch.no_grad():
        log_probs = teacher.eval()(ids).log_softmax(-1)
    exp_values, exp_indices = log_probs.topk(6, -1)
    torch.testing.assert_close(indices.long(), exp_indices, rtol=0, atol=0)
    torch.testing.assert_close(values.float(), exp_values, rtol=1e-3, atol=2e-3)  # float16 rounding
    # one batch or many: the same cache
    v1, i1 = distill.teacher_topk(teacher, ids, k=6, batch_size=16)
    assert torch.equal(v1, values) and torch.equal(i1, indices)
    # the float16 cache gives (nearly) the loss of the exact top-k
    student = _randn(5, 12, TINY.vocab_size, seed=2)
    assert float(distill.kd_loss_topk(student, values, indices, 2.0)) == pytest.approx(
        float(distill.kd_loss_topk(student, exp_values, exp_indices, 2.0)), rel=1e-3)


# ------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("T", [0, 0.0, -1.0])
def test_distill_rejects_a_non_positive_temperature(T):
    s, t = _logits(1), _logits(2)
    y = torch.zeros(2, 5, dtype=torch.long)
    values, indices = distill.topk_logits(t, 3)
    with pytest.raises(ValueError, match="temperature T must be > 0"):
        distill.soft_targets(s, T)
    with pytest.raises(ValueError, match="temperature T must be > 0"):
        distill.kd_loss(s, t, T)
    with pytest.raises(ValueError, match="temperature T must be > 0"):
        distill.kd_loss_topk(s, values, indices, T)
    with pytest.raises(ValueError, match="temperature T must be > 0"):
        distill.distillation_loss(s, t, y, T, 0.5)


@pytest.mark.parametrize("alpha", [-0.1, 1.5])
def test_distillation_loss_rejects_alpha_outside_0_1(alpha):
    with pytest.raises(ValueError, match=r"alpha must be >= 0 and <= 1"):
        distill.distillation_loss(_logits(1), _logits(2), torch.zeros(2, 5, dtype=torch.long), 2.0, alpha)


def test_distill_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"student_logits \(2, 5, 11\) and teacher_logits \(2, 5, 12\)"):
        distill.kd_loss(_logits(1), _logits(2, (2, 5, 12)), 2.0)
    with pytest.raises(ValueError, match=r"targets must have shape \(2, 5\)"):
        distill.distillation_loss(_logits(1), _logits(2), torch.zeros(2, 4, dtype=torch.long), 2.0, 0.5)
    values, indices = distill.topk_logits(_logits(2), 3)
    with pytest.raises(ValueError, match="must be"):
        distill.kd_loss_topk(_logits(1, (2, 4, 11)), values, indices, 2.0)


@pytest.mark.parametrize("k", [0, -1, 12])
def test_topk_rejects_k_outside_1_V(k):
    with pytest.raises(ValueError, match="k must be"):
        distill.topk_logits(_logits(1), k)


def test_distillation_loss_and_teacher_topk_reject_bad_targets_and_teachers():
    with pytest.raises(ValueError, match=r"targets must hold token ids in \[0, 11\)"):
        distill.distillation_loss(_logits(1), _logits(2), torch.full((2, 5), -1), 2.0, 0.5)
    with pytest.raises(TypeError, match="teacher must be an nn.Module"):
        distill.teacher_topk(None, torch.zeros(2, 3, dtype=torch.long), 4)


def test_kd_loss_topk_rejects_out_of_range_indices():
    values, indices = distill.topk_logits(_logits(2), 3)
    with pytest.raises(ValueError, match=r"token ids in \[0, 11\)"):
        distill.kd_loss_topk(_logits(1), values, indices + 11, 2.0)


def test_distill_rejects_non_tensors_and_non_floats():
    with pytest.raises(TypeError, match="student_logits must be a float torch.Tensor"):
        distill.kd_loss([[1.0, 2.0]], _logits(2), 2.0)
    with pytest.raises(TypeError, match="teacher_logits must be a float torch.Tensor"):
        distill.kd_loss(_logits(1), torch.ones(2, 5, 11, dtype=torch.long), 2.0)
    with pytest.raises(TypeError, match="logits must be a float torch.Tensor"):
        distill.soft_targets(np.ones(3), 1.0)
    with pytest.raises(TypeError, match="targets must be a tensor of token ids"):
        distill.distillation_loss(_logits(1), _logits(2), torch.zeros(2, 5), 2.0, 0.5)
    with pytest.raises(TypeError, match="temperature T must be a number"):
        distill.kd_loss(_logits(1), _logits(2), "2")
    with pytest.raises(TypeError, match="ids must be a tensor of token ids"):
        distill.teacher_topk(Decoder(TINY), torch.zeros(2, 3), 4)


# ============================================================================================ weight sharing


def test_init_codebook_linear_and_quantile():
    w = _randn(1001, seed=0)
    torch.testing.assert_close(sharing.init_codebook(w, 5), torch.linspace(float(w.min()), float(w.max()), 5))
    # 1001 weights, 11 levels: the ranks 0, 100, ..., 1000 are whole numbers, so no interpolation question
    expected = np.quantile(w.numpy(), np.linspace(0, 1, 11), method="nearest")
    np.testing.assert_array_equal(sharing.init_codebook(w.reshape(7, 143), 11, "quantile").numpy(), expected)


def _brute_force_assign(w: torch.Tensor, codebook: torch.Tensor, rows: int = 32) -> torch.Tensor:
    return torch.cat([(w[i:i + rows, :, None] - codebook).abs().argmin(-1) for i in range(0, len(w), rows)])


def test_assign_matches_brute_force_on_a_576_x_1536_matrix_with_256_centroids():
    w = _randn(576, 1536, seed=1)
    codebook = _randn(256, seed=2)  # unsorted: indices must refer to the codebook's own order
    idx = sharing.assign(w, codebook)
    assert idx.shape == w.shape and idx.dtype == torch.long
    brute = _brute_force_assign(w, codebook)
    # a weight within rounding of a midpoint may go either way: its two distances are then equal
    dist, best = (w - codebook[idx]).abs(), (w - codebook[brute]).abs()
    torch.testing.assert_close(dist, best, rtol=0, atol=1e-6)
    assert float((idx == brute).double().mean()) > 1 - 1e-5


def test_assign_edge_cases():
    w = torch.tensor([[-3.0, 0.0], [0.5, 9.0]])
    assert torch.equal(sharing.assign(w, torch.tensor([1.0])), torch.zeros(2, 2, dtype=torch.long))
    # midpoint 0.5 of (0, 1): the lower centroid; duplicated centroids: the first of them
    assert sharing.assign(w, torch.tensor([1.0, 0.0])).tolist() == [[1, 1], [1, 0]]
    assert sharing.assign(torch.tensor([2.0, -2.0]), torch.tensor([2.0, 2.0, -2.0])).tolist() == [0, 2]


def test_update_is_the_mean_and_empty_clusters_keep_their_value():
    w = torch.tensor([1.0, 2.0, 3.0, 10.0])
    idx = torch.tensor([0, 0, 0, 2])
    new = sharing.update(w, idx, torch.tensor([0.0, 5.0, 7.0]))
    assert new.tolist() == [2.0, 5.0, 10.0]


def _sklearn_kmeans(w: torch.Tensor, init: torch.Tensor, iters: int):
    KMeans = pytest.importorskip("sklearn.cluster").KMeans
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "did not converge": we stop it on purpose
        km = KMeans(len(init), init=init.numpy()[:, None], n_init=1, algorithm="lloyd", tol=0.0,
                    max_iter=iters).fit(w.numpy()[:, None])
    return torch.from_numpy(km.cluster_centers_[:, 0]), torch.from_numpy(km.labels_).long(), km.n_iter_


@pytest.mark.parametrize("init", ["linear", "quantile"])
@pytest.mark.parametrize("iters", [1, 3, 10, 300])
def test_kmeans_follows_sklearn_lloyd_iteration_by_iteration(init, iters):
    """Same initial centroids, same number of iterations: the same centroids and labels. scikit-learn moves an
    empty cluster to a far point where Han et al. keep it, so the data has none (checked)."""
    w = _randn(4000, seed=3, dtype=torch.float64)
    codebook, idx = sharing.kmeans(w, 16, iters=iters, init=init, tol=0.0)
    assert bool((torch.bincount(idx, minlength=16) > 0).all())
    theirs, labels, n_iter = _sklearn_kmeans(w, sharing.init_codebook(w, 16, init), iters)
    torch.testing.assert_close(codebook, theirs, rtol=0, atol=1e-12)
    assert torch.equal(idx, labels)
    if iters == 300:
        assert n_iter < 300  # both reached the fixed point where no weight changes cluster


def test_kmeans_error_never_increases_and_beats_its_initial_grid():
    w = _randn(64, 96, seed=4) * torch.rand(64, 96, generator=torch.Generator().manual_seed(5))  # heavy-ish tails
    init = sharing.init_codebook(w, 8)
    errors = [float((w - sharing.reconstruct(init, sharing.assign(w, init))).pow(2).sum())]
    for iters in range(1, 15):
        codebook, idx = sharing.kmeans(w, 8, iters=iters, tol=0.0)
        errors.append(float((w - sharing.reconstruct(codebook, idx)).pow(2).sum()))
    assert all(b <= a * (1 + 1e-6) for a, b in zip(errors, errors[1:]))
    assert errors[-1] < 0.7 * errors[0]


def test_kmeans_is_deterministic_and_its_idx_is_the_nearest_centroid():
    w = _randn(48, 80, seed=6)
    c1, i1 = sharing.kmeans(w, 32)
    c2, i2 = sharing.kmeans(w.clone(), 32)
    assert torch.equal(c1, c2) and torch.equal(i1, i2)
    assert i1.shape == w.shape and c1.shape == (32,) and c1.dtype == w.dtype
    assert torch.equal(i1, sharing.assign(w, c1))


def test_kmeans_recovers_k_distinct_values_exactly():
    values = torch.tensor([-1.0, 0.0, 1.2, 2.0])
    w = values[torch.randint(0, 4, (30, 20), generator=torch.Generator().manual_seed(7))]
    codebook, idx = sharing.kmeans(w, 4)
    assert codebook.tolist() == values.tolist()
    assert torch.equal(sharing.reconstruct(codebook, idx), w)


def test_codebook_bits_per_weight():
    n = 576 * 1536
    assert sharing.codebook_bits_per_weight(n, 256) == pytest.approx(8 + 256 * 32 / n)
    assert sharing.codebook_bits_per_weight(n, 16, codebook_bits=16) == pytest.approx(4 + 16 * 16 / n)
    assert sharing.codebook_bits_per_weight(100, 3) == pytest.approx(2 + 0.96)  # indices are whole bits
    assert sharing.codebook_bits_per_weight(100, 1) == pytest.approx(0.32)


def test_sharing_rejects_bad_k_nan_and_non_floats():
    w = _randn(4, 5, seed=8)
    for k in (0, 21):
        with pytest.raises(ValueError, match="k must be"):
            sharing.kmeans(w, k)
        with pytest.raises(ValueError, match="k must be"):
            sharing.init_codebook(w, k)
    with pytest.raises(ValueError, match="k must be between 1 and the number of weights 20"):
        sharing.codebook_bits_per_weight(20, 21)
    with pytest.raises(ValueError, match="NaN or inf"):
        sharing.kmeans(torch.tensor([1.0, float("nan"), 2.0]), 2)
    with pytest.raises(ValueError, match="NaN or inf"):
        sharing.assign(torch.tensor([float("inf")]), torch.tensor([0.0]))
    with pytest.raises(TypeError, match="w must be a float torch.Tensor"):
        sharing.kmeans(torch.arange(10), 2)
    with pytest.raises(TypeError, match="w must be a float torch.Tensor"):
        sharing.kmeans(np.ones(10), 2)
    codebook = torch.tensor([-1.0, 0.0, 1.0])
    with pytest.raises(ValueError, match=r"idx must hold centroid indices in \[0, 3\)"):
        sharing.reconstruct(codebook, torch.tensor([0, 3]))
    with pytest.raises(TypeError, match="idx must hold integer centroid indices"):
        sharing.reconstruct(codebook, torch.tensor([0.0, 1.0]))
    with pytest.raises(TypeError, match="codebook must be a floating-point tensor"):
        sharing.assign(w, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="codebook must be a 1-D tensor"):
        sharing.update(w, sharing.assign(w, codebook), codebook[None])
    with pytest.raises(ValueError, match="k must be between 1 and the number of weights in w 0"):
        sharing.init_codebook(torch.ones(0), 1)
    with pytest.raises(ValueError, match="init must be one of 'linear', 'quantile'"):
        sharing.kmeans(w, 4, init="random")
    with pytest.raises(ValueError, match="method must be 'linear' or 'quantile'"):
        sharing.init_codebook(w, 4, method="random")


# ============================================================================================== low rank


@pytest.mark.parametrize("shape", [(12, 20), (20, 12)])
@pytest.mark.parametrize("rank", [1, 5, 12])
def test_truncated_svd_is_the_balanced_truncated_svd(shape, rank):
    w = _randn(*shape, seed=9, dtype=torch.float64)
    A, B = lowrank.truncated_svd(w, rank)
    assert A.shape == (shape[0], rank) and B.shape == (rank, shape[1]) and A.dtype == torch.float64
    U, S, Vh = torch.linalg.svd(w, full_matrices=False)
    torch.testing.assert_close(A @ B, U[:, :rank] @ torch.diag(S[:rank]) @ Vh[:rank], rtol=0, atol=1e-12)
    # balanced: A^T A = B B^T = diag(σ_1..σ_r)
    torch.testing.assert_close(A.T @ A, torch.diag(S[:rank]), rtol=0, atol=1e-12)
    torch.testing.assert_close(B @ B.T, torch.diag(S[:rank]), rtol=0, atol=1e-12)
    if rank == min(shape):
        torch.testing.assert_close(A @ B, w, rtol=0, atol=1e-12)


def test_truncated_svd_float32():
    w = _randn(30, 40, seed=10)
    A, B = lowrank.truncated_svd(w, 30)
    assert A.dtype == B.dtype == torch.float32
    torch.testing.assert_close(A @ B, w, rtol=0, atol=1e-5)


@pytest.mark.parametrize("rank", [1, 4, 10, 16])
def test_lowrank_error_is_eckart_young(rank):
    """||W - W_r||_F / ||W||_F = sqrt(sum of the discarded σ²) / sqrt(sum of all σ²)."""
    w = _randn(16, 24, seed=11, dtype=torch.float64)
    s = torch.linalg.svdvals(w)
    expected = math.sqrt(float(s[rank:].square().sum() / s.square().sum()))
    assert lowrank.lowrank_error(w, rank) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_lowrank_error_beats_another_rank_r_approximation():
    w = _randn(16, 24, seed=12, dtype=torch.float64)
    other_a, other_b = lowrank.truncated_svd(w + 0.3 * _randn(16, 24, seed=13, dtype=torch.float64), 4)
    other = float((w - other_a @ other_b).norm() / w.norm())
    assert lowrank.lowrank_error(w, 4) < other


@pytest.mark.parametrize("energy", [0.1, 0.5, 0.9, 0.99, 1.0])
def test_rank_for_energy_is_the_smallest_rank_keeping_the_energy(energy):
    w = _randn(20, 30, seed=14, dtype=torch.float64)
    s = torch.linalg.svdvals(w)
    e = s.square().numpy()
    expected = next(r for r in range(1, 21) if e[:r].sum() >= energy * e.sum() - 1e-12)
    r = lowrank.rank_for_energy(s, energy)
    assert r == expected
    assert lowrank.lowrank_error(w, r) <= math.sqrt(1 - energy) + 1e-9
    assert lowrank.rank_for_energy(s.flip(0).float(), energy) == r  # order and dtype do not matter


def test_lowrank_params_and_breakeven_rank_by_brute_force():
    assert lowrank.lowrank_params(576, 1536, 64) == 64 * 2112
    assert lowrank.breakeven_rank(576, 1536) == 418
    for n in range(1, 13):
        for k in range(1, 13):
            saving = [r for r in range(1, min(n, k) + 1) if r * (n + k) < n * k]
            assert lowrank.breakeven_rank(n, k) == max(saving, default=0), (n, k)
    assert lowrank.breakeven_rank(2, 2) == 0  # rank 1 costs 4 = 2 x 2: not smaller


@pytest.mark.parametrize("bias", [True, False])
def test_lowrank_linear_at_full_rank_is_the_linear(bias):
    torch.manual_seed(0)
    linear = nn.Linear(12, 7, bias=bias, dtype=torch.float64)
    low = LowRankLinear.from_linear(linear, 7)
    assert (low.in_features, low.out_features, low.rank) == (12, 7, 7)
    x = _randn(3, 4, 12, seed=15, dtype=torch.float64)
    torch.testing.assert_close(low(x), linear(x), rtol=0, atol=1e-12)
    weights = low.up.weight.numel() + low.down.weight.numel()
    assert weights == lowrank.lowrank_params(7, 12, 7) == 7 * (7 + 12)
    assert sum(p.numel() for p in low.parameters()) == weights + (7 if bias else 0)


def test_lowrank_linear_below_full_rank_computes_x_Bt_At_plus_bias():
    torch.manual_seed(0)
    linear = nn.Linear(40, 24, dtype=torch.float64)
    low = LowRankLinear.from_linear(linear, 5)
    A, B = lowrank.truncated_svd(linear.weight.detach(), 5)
    x = _randn(6, 40, seed=16, dtype=torch.float64)
    torch.testing.assert_close(low(x), x @ B.T @ A.T + linear.bias, rtol=0, atol=1e-12)
    assert sum(p.numel() for p in low.parameters()) == 5 * (24 + 40) + 24


def test_lowrank_linear_replaces_a_swiglu_projection():
    """SwiGLU checks its input against ``w1.in_features``: the replacement must expose it."""
    torch.manual_seed(0)
    mlp = SwiGLU(16, 24).double()
    x = _randn(2, 3, 16, seed=17, dtype=torch.float64)
    expected = mlp(x)
    for name in ("w1", "w2", "w3"):
        layer = getattr(mlp, name)
        setattr(mlp, name, LowRankLinear.from_linear(layer, min(layer.in_features, layer.out_features)))
    torch.testing.assert_close(mlp(x), expected, rtol=0, atol=1e-12)


def test_lowrank_linear_keeps_a_bfloat16_layers_dtype():
    torch.manual_seed(0)
    linear = nn.Linear(16, 8).bfloat16()
    low = LowRankLinear.from_linear(linear, 8)
    assert low.up.weight.dtype == low.down.weight.dtype == torch.bfloat16
    x = _randn(4, 16, seed=18).bfloat16()
    torch.testing.assert_close(low(x).float(), linear(x).float(), rtol=0.05, atol=0.05)


def test_lowrank_rejects_bad_rank_shape_dtype_and_energy():
    w = _randn(3, 5, seed=19)
    for rank in (0, 4):
        with pytest.raises(ValueError, match=r"rank must be >= 1 and <= 3, got"):
            lowrank.truncated_svd(w, rank)
        with pytest.raises(ValueError, match=r"rank must be >= 1 and <= 3"):
            LowRankLinear.from_linear(nn.Linear(5, 3), rank)
    with pytest.raises(ValueError, match=r"rank must be >= 1 and <= 3"):
        lowrank.lowrank_error(w, 4)
    with pytest.raises(ValueError, match=r"w must be a 2-D weight \(N, K\)"):
        lowrank.truncated_svd(_randn(2, 3, 4), 1)
    with pytest.raises(ValueError, match=r"w must be a 2-D weight \(N, K\)"):
        lowrank.truncated_svd(_randn(6), 1)
    with pytest.raises(TypeError, match="float32 or float64"):
        lowrank.truncated_svd(w.half(), 1)
    with pytest.raises(TypeError, match="float32 or float64"):
        lowrank.truncated_svd(torch.ones(3, 5, dtype=torch.long), 1)
    with pytest.raises(ValueError, match="w is empty"):
        lowrank.truncated_svd(torch.ones(0, 5), 1)
    with pytest.raises(ValueError, match="NaN or inf"):
        lowrank.lowrank_error(torch.full((3, 5), float("nan")), 1)
    with pytest.raises(ValueError, match="device must name a device"):
        LowRankLinear(5, 3, 1, device="bogus")
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        LowRankLinear(5, 3, 1)(None)
    with pytest.raises(TypeError, match="x must be a floating-point tensor"):
        LowRankLinear(5, 3, 1)(torch.ones(2, 5, dtype=torch.long))
    with pytest.raises(TypeError, match="x must have the layer's dtype"):
        LowRankLinear(5, 3, 1)(torch.ones(2, 5, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"x must have width 5 in its last dim"):
        LowRankLinear(5, 3, 1)(torch.ones(2, 4))
    s = torch.linalg.svdvals(w)
    for energy in (0, 0.0, -0.5, 1.01):
        with pytest.raises(ValueError, match=r"energy must be > 0 and <= 1"):
            lowrank.rank_for_energy(s, energy)


# ================================================================================================= sizes


def test_compression_ratio_and_pruned_bits():
    assert ratio.compression_ratio(32, 8) == 4.0
    assert ratio.pruned_bits(1000, 0.1, 16, 16) == 100 * 32
    assert ratio.pruned_bits(1000, 0.0, 16, 16) == 0
    assert ratio.pruned_bits(1000, 1.0, 32, 0) == 1000 * 32  # no indices: the dense matrix
    # 16-bit values and indices: half the weights kept costs as much as the dense fp16 matrix
    assert ratio.pruned_bits(1000, 0.5, 16, 16) == 1000 * 16
    # the methods side by side on one 576 x 1536 fp32 matrix
    n, dense = 576 * 1536, 576 * 1536 * 32
    shared = ratio.compression_ratio(dense, n * sharing.codebook_bits_per_weight(n, 256))
    assert shared == pytest.approx(dense / (8 * n + 256 * 32)) and 3.99 < shared < 4
    assert ratio.compression_ratio(dense, lowrank.lowrank_params(576, 1536, 64) * 32) == pytest.approx(n / (64 * 2112))
    assert ratio.compression_ratio(dense, ratio.pruned_bits(n, 0.1, 32, 16)) == pytest.approx(1 / (0.1 * 1.5), rel=1e-5)


def test_sizes_reject_bad_input():
    with pytest.raises(ValueError, match=r"density must be in \[0, 1\]"):
        ratio.pruned_bits(1000, 1.5, 16, 16)
    with pytest.raises(ValueError, match="density must be >= 0"):
        ratio.pruned_bits(1000, -0.1, 16, 16)
    with pytest.raises(ValueError, match="compressed_bits must be > 0"):
        ratio.compression_ratio(32, 0)
    with pytest.raises(TypeError, match="value_bits must be an int"):
        ratio.pruned_bits(1000, 0.5, 16.0, 16)
