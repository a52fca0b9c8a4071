"""Norms, MLPs and RoPE against PyTorch / transformers (the oracles), the two RoPE conventions, bad input."""
import math

import pytest
import torch
import torch.nn.functional as F

from llmlab.nn import layers as L


def _randn(*shape, seed=0, dtype=torch.float32):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)).to(dtype)


# ------------------------------------------------------------------------------------------ norms


def test_rmsnorm_matches_torch_and_transformers():
    x = _randn(2, 5, 16) * 3
    norm = L.RMSNorm(16, eps=1e-5)
    with torch.no_grad():
        norm.weight.copy_(_randn(16, seed=1))
    expected = x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * norm.weight
    torch.testing.assert_close(norm(x), expected)
    ref = torch.nn.RMSNorm(16, eps=1e-5)
    with torch.no_grad():
        ref.weight.copy_(norm.weight)
    torch.testing.assert_close(norm(x), ref(x))
    modeling_llama = pytest.importorskip("transformers.models.llama.modeling_llama")
    hf = modeling_llama.LlamaRMSNorm(16, eps=1e-5)
    with torch.no_grad():
        hf.weight.copy_(norm.weight)
    torch.testing.assert_close(norm(x), hf(x))
    # bf16 in, bf16 out, statistic computed in float32 as LlamaRMSNorm does
    xb = x.bfloat16()
    assert norm.to(torch.bfloat16)(xb).dtype == torch.bfloat16
    torch.testing.assert_close(norm(xb), hf.to(torch.bfloat16)(xb))


def test_rmsnorm_eps_is_inside_the_sqrt():
    x = torch.zeros(1, 1, 4)
    x[..., 0] = 1e-3
    out = L.RMSNorm(4, eps=1.0)(x)
    assert math.isclose(out[0, 0, 0].item(), 1e-3 / math.sqrt(1e-6 / 4 + 1.0), rel_tol=1e-6)


@pytest.mark.parametrize("eps", [1e-5, 1e-12])
def test_layernorm_matches_torch(eps):
    x = _randn(3, 7, 24) * 5 + 2
    ours, ref = L.LayerNorm(24, eps), torch.nn.LayerNorm(24, eps)
    with torch.no_grad():
        ours.weight.copy_(_randn(24, seed=1))
        ours.bias.copy_(_randn(24, seed=2))
    ref.load_state_dict(ours.state_dict())  # same parameter names as nn.LayerNorm
    torch.testing.assert_close(ours(x), ref(x))


# ------------------------------------------------------------------------------------------- MLPs


def test_gelu_is_the_exact_erf_form():
    x = torch.linspace(-6, 6, 101)
    torch.testing.assert_close(L.gelu(x), F.gelu(x))
    assert not torch.allclose(L.gelu(x), F.gelu(x, approximate="tanh"), atol=1e-5, rtol=0)


def test_mlp_shapes_and_formulas():
    x = _randn(2, 3, 8)
    swiglu = L.SwiGLU(8, 20)
    assert swiglu(x).shape == (2, 3, 8)
    assert swiglu.w1.weight.shape == swiglu.w3.weight.shape == (20, 8) and swiglu.w2.weight.shape == (8, 20)
    assert swiglu.w1.bias is None
    expected = (F.silu(x @ swiglu.w1.weight.T) * (x @ swiglu.w3.weight.T)) @ swiglu.w2.weight.T
    torch.testing.assert_close(swiglu(x), expected)
    mlp = L.GELUMLP(8, 32)
    assert mlp(x).shape == (2, 3, 8)
    torch.testing.assert_close(mlp(x), mlp.w2(F.gelu(mlp.w1(x))))


# -------------------------------------------------------------------------------------- positions


def test_sinusoidal_positions():
    pe = L.sinusoidal_positions(50, 16)
    assert pe.shape == (50, 16)
    assert torch.equal(pe[0], torch.tensor([0.0, 1.0] * 8))
    m, i = 7, 3
    assert math.isclose(pe[m, 2 * i].item(), math.sin(m / 10000 ** (2 * i / 16)), abs_tol=1e-6)
    assert math.isclose(pe[m, 2 * i + 1].item(), math.cos(m / 10000 ** (2 * i / 16)), abs_tol=1e-6)


def test_rope_frequencies_and_tables():
    inv = L.rope_frequencies(64, 1e5)
    assert inv.shape == (32,) and inv[0] == 1.0
    torch.testing.assert_close(inv, torch.tensor([1e5 ** (-2 * i / 64) for i in range(32)]))
    cos, sin = L.rope_cos_sin(10, 64, 1e5)
    assert cos.shape == sin.shape == (10, 32)
    torch.testing.assert_close(cos**2 + sin**2, torch.ones(10, 32))
    cos5, _ = L.rope_cos_sin(torch.tensor([5]), 64, 1e5)
    torch.testing.assert_close(cos5[0], cos[5])


def test_rope_half_matches_transformers():
    modeling_llama = pytest.importorskip("transformers.models.llama.modeling_llama")
    q, k = _randn(2, 4, 6, 16), _randn(2, 2, 6, 16, seed=1)
    cos, sin = L.rope_cos_sin(6, 16, 1e4)
    ref_q, ref_k = modeling_llama.apply_rotary_pos_emb(q, k, torch.cat([cos, cos], -1)[None], torch.cat([sin, sin], -1)[None])
    torch.testing.assert_close(L.apply_rope_half(q, cos, sin), ref_q)
    torch.testing.assert_close(L.apply_rope_half(k, cos, sin), ref_k)


def test_rope_interleaved_is_complex_multiplication():
    """Meta's reference: view channel pairs as complex numbers and multiply by e^{i m theta}."""
    x = _randn(2, 3, 6, 16)
    cos, sin = L.rope_cos_sin(6, 16)
    rot = torch.polar(torch.ones_like(cos), torch.atan2(sin, cos))
    ref = torch.view_as_real(torch.view_as_complex(x.reshape(2, 3, 6, 8, 2)) * rot).flatten(-2)
    torch.testing.assert_close(L.apply_rope_interleaved(x, cos, sin), ref)


@pytest.mark.parametrize("apply", [L.apply_rope_half, L.apply_rope_interleaved])
def test_rope_keeps_norms_and_scores_depend_on_distance_only(apply):
    q, k = _randn(1, 2, 5, 32), _randn(1, 2, 5, 32, seed=1)
    cos, sin = L.rope_cos_sin(torch.arange(5), 32)
    cos9, sin9 = L.rope_cos_sin(torch.arange(9, 14), 32)  # the same sequence shifted by 9 positions
    torch.testing.assert_close(apply(q, cos, sin).norm(dim=-1), q.norm(dim=-1))
    scores = apply(q, cos, sin) @ apply(k, cos, sin).transpose(-1, -2)
    shifted = apply(q, cos9, sin9) @ apply(k, cos9, sin9).transpose(-1, -2)
    torch.testing.assert_close(scores, shifted, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(apply(q, cos, sin)[..., 0, :], q[..., 0, :])  # position 0: no rotation


def test_rope_conventions_agree_under_the_gguf_permutation():
    """Weights stored for interleaved RoPE (GGUF) + interleaved RoPE == un-permuted weights + rotate-half RoPE."""
    H, D, C, T = 3, 8, 20, 7
    w = _randn(H * D, C)  # rows in the interleaved (GGUF) order
    w_half = L.permute_for_rotate_half(w, H)
    # GGUF's q/k permutation: each head's (D/2, 2) interleaved pairs become (2, D/2) halves
    assert torch.equal(w_half, w.reshape(H, D // 2, 2, C).swapaxes(1, 2).reshape(H * D, C))
    assert torch.equal(L.permute_for_interleaved(w_half, H), w)
    x = _randn(2, T, C, seed=1)
    cos, sin = L.rope_cos_sin(T, D, 1e5)

    def heads(y):
        return y.view(2, T, H, D).transpose(1, 2)

    q_int = L.apply_rope_interleaved(heads(x @ w.T), cos, sin)
    q_half = L.apply_rope_half(heads(x @ w_half.T), cos, sin)
    order = L.interleaved_to_half_order(D)
    assert order.tolist() == [0, 2, 4, 6, 1, 3, 5, 7]
    torch.testing.assert_close(q_half, q_int[..., order])
    k_int = L.apply_rope_interleaved(heads(x @ w.T * 0.5 + 1), cos, sin)
    k_half = L.apply_rope_half(heads(x @ w_half.T * 0.5 + 1), cos, sin)
    torch.testing.assert_close(q_half @ k_half.transpose(-1, -2), q_int @ k_int.transpose(-1, -2))
    # without the permutation the two conventions disagree
    assert not torch.allclose(L.apply_rope_half(heads(x @ w.T), cos, sin), q_int[..., order], atol=1e-3)


@pytest.mark.parametrize(
    "call,exc,match",
    [
        (lambda: L.RMSNorm(8)(torch.zeros(2, 3, 6)), ValueError, r"width 8 in its last dim, got shape \(2, 3, 6\)"),
        (lambda: L.LayerNorm(8)([[0.0] * 8]), TypeError, "torch.Tensor"),
        (lambda: L.SwiGLU(8, 16)(torch.zeros(2, 3, 5)), ValueError, "must have width 8"),
        (lambda: L.apply_rope_half(torch.zeros(16), *L.rope_cos_sin(1, 16)), ValueError, "x must have at least 2 dimensions"),
        (lambda: L.apply_rope_half(torch.zeros(1, 1, 4, 16), *L.rope_cos_sin(5, 16)), ValueError, r"\(T, D/2\)"),
        (lambda: L.apply_rope_interleaved(torch.zeros(1, 4, 15), *L.rope_cos_sin(4, 14)), ValueError, "even head dim"),
        (lambda: L.rope_frequencies(15), ValueError, "even head dim"),
        (lambda: L.sinusoidal_positions(4, 7), ValueError, "even"),
        (lambda: L.permute_for_rotate_half(torch.zeros(18, 4), 4), ValueError, "4 heads"),
    ],
)
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
