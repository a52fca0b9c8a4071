"""llmlab.trust (notebook 15b) against its oracles: integrated gradients and occlusion equal Captum's on the same
model and inputs, FGSM and PGD are the sign-gradient formulas, attention rollout's rows sum to 1, WEAT and the
bootstrap equal direct computations, and the energy arithmetic (RAPL's wrap-around included)."""
import math

import numpy as np
import pytest
import torch

from llmlab.trust import adversarial, attribution, bias, energy
from tests.fuzz import fixtures as F


def small_probe_score(seed: int = 0) -> tuple[attribution.ProbeScore, torch.Tensor]:
    """ProbeScore on a tiny random Encoder (width 16) and one text of 6 tokens: (f, word embeddings (6, 16))."""
    enc = F.encoder(seed)
    g = torch.Generator().manual_seed(seed + 1)
    f = attribution.ProbeScore(enc, torch.randn(16, 3, generator=g), torch.randn(3, generator=g), target=2)
    return f, enc.word_embeddings.weight[torch.tensor([1, 7, 3, 9, 4, 2])].detach()


# ------------------------------------------------------------------------------------------ integrated gradients

@pytest.mark.parametrize("steps", [2, 16, 50])
def test_integrated_gradients_equal_captums_on_an_encoder_probe(steps):
    captum = pytest.importorskip("captum.attr")
    f, E = small_probe_score()
    base = torch.zeros_like(E)
    ours = attribution.integrated_gradients(f, E, base, steps)
    theirs = captum.IntegratedGradients(f).attribute(E[None], base[None], n_steps=steps)[0]  # 'gausslegendre'
    assert torch.allclose(ours, theirs, rtol=1e-5, atol=1e-5), (ours - theirs).abs().max()


def test_integrated_gradients_equal_captums_in_float64_with_a_baseline():
    captum = pytest.importorskip("captum.attr")
    from llmlab.grading.trust import Scorer

    f = Scorer(12, seed=3)
    x = torch.randn(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    base = 0.3 * torch.randn(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    ours = attribution.integrated_gradients(f, x, base, 24)
    theirs = captum.IntegratedGradients(f).attribute(x[None], base[None], n_steps=24)[0]
    assert ours.dtype == torch.float64
    assert torch.allclose(ours, theirs, rtol=1e-6, atol=1e-8)


def test_integrated_gradients_are_complete():
    f, E = small_probe_score(1)
    base = torch.zeros_like(E)
    ig = attribution.integrated_gradients(f, E, base, 64)
    assert math.isclose(ig.sum().item(), (f(E[None]) - f(base[None])).item(), abs_tol=1e-4)


def test_integrated_gradients_work_with_gradients_off():
    f, E = small_probe_score()
    with torch.no_grad():
        ig = attribution.integrated_gradients(f, E, torch.zeros_like(E), 8)
    assert ig.shape == E.shape and torch.isfinite(ig).all()


def test_gauss_legendre_nodes_on_the_unit_interval():
    a, w = attribution.gauss_legendre(10)
    assert a.min() > 0 and a.max() < 1 and math.isclose(w.sum().item(), 1.0, rel_tol=1e-12)
    assert math.isclose((w * a**5).sum().item(), 1 / 6, rel_tol=1e-12)  # exact for polynomials of degree < 20


# ---------------------------------------------------------------------------------------------- occlusion

def test_occlusion_equals_captums_one_token_window():
    captum = pytest.importorskip("captum.attr")
    f, E = small_probe_score(2)
    base = torch.randn(E.shape, generator=torch.Generator().manual_seed(5))
    ours = attribution.occlusion(f, E, base)
    theirs = captum.Occlusion(f).attribute(E[None], sliding_window_shapes=(1, E.shape[1]), strides=(1, E.shape[1]),
                                           baselines=base[None])[0]  # (T, D): each row constant
    assert torch.allclose(theirs, theirs[:, :1].expand_as(theirs))
    assert torch.allclose(ours, theirs[:, 0], rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------------ attention rollout

def test_rollout_rows_sum_to_one_and_match_a_direct_product():
    attn = F.probs(4, 3, 6, 6, seed=1)
    R = attribution.attention_rollout(attn)
    assert torch.allclose(R.sum(-1), torch.ones(6), atol=1e-6) and (R >= 0).all()
    A = [(a.mean(0) + torch.eye(6)) / (a.mean(0) + torch.eye(6)).sum(-1, keepdim=True) for a in attn]
    assert torch.allclose(R, A[3] @ A[2] @ A[1] @ A[0], atol=1e-6)


def test_rollout_of_causal_weights_stays_causal_and_one_layer_is_its_normalised_mean():
    s = torch.randn(3, 2, 5, 5).masked_fill(~torch.ones(5, 5, dtype=torch.bool).tril(), float("-inf"))
    R = attribution.attention_rollout(s.softmax(-1))
    assert torch.equal(R.triu(1), torch.zeros(5, 5))
    one = F.probs(1, 2, 4, 4)
    assert torch.allclose(attribution.attention_rollout(one), (one[0].mean(0) + torch.eye(4)) / 2, atol=1e-6)


def test_rollout_turns_a_zero_row_into_the_identity_row():
    attn = F.probs(2, 2, 3, 3)
    attn[:, :, 2] = 0.0
    R = attribution.attention_rollout(attn)
    assert torch.allclose(R[2], torch.tensor([0.0, 0.0, 1.0]))


def test_encoder_forward_equals_the_encoder_on_ids():
    enc = F.encoder()
    ids = F.ids(2, 6)
    mask = torch.tensor([[1] * 6, [1] * 4 + [0] * 2])
    hidden, weights = attribution.encoder_forward(enc, enc.word_embeddings(ids), mask, need_weights=True)
    assert torch.allclose(hidden, enc(ids, mask), atol=1e-5)
    assert weights.shape == (2, 2, 4, 6, 6) and torch.allclose(weights.sum(-1), torch.ones(2, 2, 4, 6), atol=1e-5)


def test_decoder_last_logits_equal_the_decoder_on_ids():
    model = F.decoder()
    ids = F.ids(2, 7)
    logits, weights = attribution.decoder_last_logits(model, model.tok_embeddings(ids), need_weights=True)
    assert torch.allclose(logits, model(ids)[:, -1], atol=1e-5)
    assert weights.shape[:2] == (model.cfg.n_layers, 2)


def test_zero_shot_score_is_the_label_log_prob_after_prefix_and_suffix():
    model = F.decoder()
    prefix, text, suffix = [1, 2, 3], [4, 5], [6]
    f = attribution.ZeroShotScore(model, prefix, suffix, label_id=7)
    want = torch.log_softmax(model(torch.tensor([prefix + text + suffix]))[0, -1], -1)[7]
    assert torch.allclose(f(model.tok_embeddings.weight[torch.tensor(text)][None]), want[None], atol=1e-5)


def test_byte_groups_merge_a_split_character():
    zh = "中".encode()
    assert attribution.byte_groups([b" a", zh[:1], zh[1:], b"!"]) == [(" a", [0]), ("中", [1, 2]), ("!", [3])]
    assert attribution.byte_groups([zh[:2]]) == [("\ufffd", [0])]


# ------------------------------------------------------------------------------------------------ attacks

def test_fgsm_is_the_sign_gradient_formula():
    x, g = F.randn(4, 5), F.randn(4, 5, seed=1)
    g[0, 0] = 0.0
    out = adversarial.fgsm(x, g, 0.1)
    assert torch.equal(out, x + 0.1 * torch.sign(g)) and out[0, 0] == x[0, 0]


def test_pgd_stays_in_the_ball_and_one_big_step_equals_fgsm_clipped():
    x0, g = F.randn(3, 4), F.randn(3, 4, seed=1)
    x = adversarial.pgd_attack(lambda z: g, x0, eps=0.05, alpha=0.02, steps=7)
    assert ((x - x0).abs() <= 0.05 + 1e-7).all()
    assert torch.allclose(x, adversarial.fgsm(x0, g, 0.05))  # a constant gradient walks to FGSM's corner
    assert torch.allclose(adversarial.pgd_step(x0, x0, g, 0.05, 1.0), adversarial.fgsm(x0, g, 0.05))


def test_probe_input_grad_equals_autograd():
    X, y, W, b = F.randn(5, 4), torch.tensor([0, 1, 2, 1, 0]), F.randn(4, 3, seed=1), F.randn(3, seed=2)
    Xg = X.clone().requires_grad_(True)
    with torch.enable_grad():
        torch.nn.functional.cross_entropy(Xg @ W + b, y, reduction="sum").backward()
    assert torch.allclose(adversarial.probe_input_grad(X, y, W, b), Xg.grad, atol=1e-6)


def test_attacks_lower_the_accuracy_and_eps_zero_changes_nothing():
    X = torch.cat([F.randn(20, 3) + 2, F.randn(20, 3, seed=1) - 2])
    y = torch.tensor([0] * 20 + [1] * 20)
    W, b = adversarial.adversarial_training(X, y, 2, eps=0.0, rounds=1, steps=30)
    clean = ((X @ W + b).argmax(-1) == y).double().mean().item()
    assert adversarial.accuracy_under_attack(X, y, W, b, 0.0) == clean
    assert adversarial.accuracy_under_attack(X, y, W, b, 3.0) < clean
    assert adversarial.accuracy_under_attack(X, y, W, b, 3.0, attack="pgd") <= clean


# --------------------------------------------------------------------------------------------------- bias

def test_weat_effect_size_equals_a_numpy_computation():
    X, Y, A, B = (F.randn(n, 6, seed=s) for n, s in ((4, 0), (6, 1), (3, 2), (5, 3)))

    def cos(u, v):
        return u @ v.T / np.outer(np.linalg.norm(u, axis=1), np.linalg.norm(v, axis=1))

    def s(w):
        return cos(w, A.numpy()).mean(1) - cos(w, B.numpy()).mean(1)

    sx, sy = s(X.numpy()), s(Y.numpy())
    want = (sx.mean() - sy.mean()) / np.concatenate([sx, sy]).std(ddof=1)
    assert math.isclose(bias.weat_effect_size(X, Y, A, B), want, rel_tol=1e-5)
    assert math.isclose(bias.weat_effect_size(Y, X, A, B), -want, rel_tol=1e-5)


def test_projecting_out_the_direction_removes_it():
    male, female = F.randn(4, 6), F.randn(4, 6, seed=1)
    u = bias.direction(male, female)
    assert math.isclose(u.norm().item(), 1.0, rel_tol=1e-6)
    assert bias.project_out(torch.cat([male, female]), u).matmul(u).abs().max() < 1e-6


def test_bootstrap_ci_is_numpys_percentile_of_the_same_resamples():
    values = F.randn(12, dtype=torch.float64)
    lo, hi = bias.bootstrap_ci(values, 500, seed=3, level=0.9).tolist()
    idx = torch.randint(0, 12, (500, 12), generator=torch.Generator().manual_seed(3)).numpy()
    means = values.numpy()[idx].mean(1)
    assert np.allclose([lo, hi], np.percentile(means, [5, 95]))
    assert lo < values.mean().item() < hi
    assert torch.equal(bias.bootstrap_ci(torch.full((5,), 2.0), 50, 0), torch.full((2,), 2.0))


# ------------------------------------------------------------------------------------------------- energy

def test_energy_and_co2_arithmetic():
    assert energy.energy_per_token(2.0, 16, 64.0) == 8.0
    assert math.isclose(energy.co2_per_token(3.6e6, 480.0), 480.0)
    assert energy.modelled_watts(65.0, cpu_seconds=3.0, wall_seconds=1.0, cores=2) == 65.0  # capped at 1
    assert energy.modelled_watts(65.0, cpu_seconds=0.5, wall_seconds=1.0, cores=2) == 16.25


def test_rapl_counters_wrap_around_and_missing_ones_are_skipped(tmp_path):
    assert energy.rapl_joules(100, 2_100_100, 10**9) == 2.1
    assert energy.rapl_joules(999_000_000, 1_000_000, 10**9) == 2.0  # wrapped once
    assert energy.rapl_zones(tmp_path / "absent") == {}
    zone = tmp_path / "intel-rapl:0"
    zone.mkdir()
    (zone / "name").write_text("package-0\n")
    (zone / "energy_uj").write_text("5000000\n")
    (zone / "max_energy_range_uj").write_text("262143328850\n")
    (tmp_path / "intel-rapl:0:0").mkdir()  # a sub-zone: not a package
    zones = energy.rapl_zones(tmp_path)
    assert list(zones) == ["package-0 (intel-rapl:0)"]
    run = energy.measure(lambda: (zone / "energy_uj").write_text("7500000\n"), zones)
    assert run["rapl_j"] == {"package-0 (intel-rapl:0)": 2.5} and run["wall_s"] >= 0
