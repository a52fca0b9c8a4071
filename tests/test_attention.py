"""Attention against PyTorch's fused kernel (the oracle), masks, heads, GQA, bad input."""
import pytest
import torch
import torch.nn.functional as F

from llmlab.nn import attention as A


def _qkv(B=2, H=4, T=5, S=7, D=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(B, H, T, D, generator=g), torch.randn(B, H, S, D, generator=g), torch.randn(B, H, S, D, generator=g))


def test_softmax_is_stable_and_handles_fully_masked_rows():
    x = torch.tensor([[1000.0, 1001.0, 999.0], [float("-inf")] * 3])
    out = A.softmax(x)
    assert torch.allclose(out[0], torch.softmax(x[0], -1))
    assert torch.equal(out[1], torch.zeros(3))


@pytest.mark.parametrize("T,S", [(5, 5), (1, 7), (5, 7)])
def test_matches_torch_with_causal_and_padding_masks(T, S):
    q, k, v = _qkv(T=T, S=S)
    pad = torch.ones(2, S, dtype=torch.long)
    pad[1, :2] = 0  # left padding in the second sequence
    mask = A.causal_mask(T, S) & A.padding_mask(pad)
    out, weights = A.scaled_dot_product_attention(q, k, v, mask)
    # a padded query that sees no key at all gets zeros from us (PyTorch's kernel gives NaN there)
    sees = mask.expand(2, 4, T, S).any(-1)
    assert torch.allclose(out[sees], F.scaled_dot_product_attention(q, k, v, attn_mask=mask)[sees], atol=1e-6)
    assert torch.allclose(weights.sum(-1)[sees], torch.ones(int(sees.sum())))
    assert (out[~sees] == 0).all()
    assert (weights[1, :, :, :2] == 0).all() and (weights.masked_select(~mask.expand_as(weights)) == 0).all()


def test_causal_mask_with_a_cache():
    assert A.causal_mask(2, 4).tolist() == [[True, True, True, False], [True, True, True, True]]


def test_heads_round_trip_and_gqa_order():
    x = torch.randn(2, 3, 12)
    assert torch.equal(A.merge_heads(A.split_heads(x, 4)), x)
    assert torch.equal(A.split_heads(x, 4)[:, 1], x[:, :, 3:6])
    kv = torch.arange(2 * 3).float().view(1, 2, 3, 1)
    rep = A.repeat_kv(kv, 3)
    assert rep.shape == (1, 6, 3, 1)
    assert torch.equal(rep[0, :3], kv[0, :1].expand(3, 3, 1)) and torch.equal(rep[0, 3:], kv[0, 1:].expand(3, 3, 1))


def test_gqa_equals_torch_enable_gqa():
    g = torch.Generator().manual_seed(1)
    q, k, v = torch.randn(1, 6, 4, 8, generator=g), torch.randn(1, 2, 4, 8, generator=g), torch.randn(1, 2, 4, 8, generator=g)
    ours, _ = A.scaled_dot_product_attention(q, A.repeat_kv(k, 3), A.repeat_kv(v, 3), A.causal_mask(4))
    torch_out = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
    assert torch.allclose(ours, torch_out, atol=1e-6)


def test_module_explicit_and_fast_paths_agree():
    torch.manual_seed(0)
    mha = A.MultiHeadAttention(32, 8, 2, fast=False)
    x = torch.randn(2, 6, 32)
    explicit = mha(x, A.causal_mask(6))
    with_weights, weights = mha(x, A.causal_mask(6), need_weights=True)
    assert weights.shape == (2, 8, 6, 6) and torch.equal(with_weights, explicit)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 8, 6))
    assert bool((weights.triu(1) == 0).all())  # causal: no weight on a later key
    mha.fast = True
    assert torch.allclose(explicit, mha(x, A.causal_mask(6)), atol=1e-6)
    fast_out, fast_weights = mha(x, A.causal_mask(6), need_weights=True)  # weights force the explicit path
    assert torch.equal(fast_out, with_weights) and torch.equal(fast_weights, weights)


@pytest.mark.parametrize(
    "call,exc,match",
    [
        (lambda: A.split_heads(torch.zeros(2, 3, 10), 4), ValueError, "n_heads must divide the width C = 10, got 4"),
        (lambda: A.split_heads(torch.zeros(3, 10), 2), ValueError, r"\(B, T, C\)"),
        (lambda: A.merge_heads(torch.zeros(3, 10)), ValueError, r"\(B, H, T, D\)"),
        (lambda: A.scaled_dot_product_attention(torch.zeros(1, 1, 2, 4), torch.zeros(1, 1, 2, 3), torch.zeros(1, 1, 2, 3)),
         ValueError, "same head dim"),
        (lambda: A.scaled_dot_product_attention([[0.0]], torch.zeros(1), torch.zeros(1)), TypeError, "torch.Tensor"),
        (lambda: A.causal_mask(5, 3), ValueError, "S \\(keys\\) must be >= T"),
        (lambda: A.MultiHeadAttention(30, 4), ValueError, "not divisible"),
        (lambda: A.MultiHeadAttention(32, 8, 3), ValueError, "not a multiple"),
        (lambda: A.padding_mask(torch.ones(3)), ValueError, r"\(B, S\)"),
    ],
)
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_padded_positions_count_real_tokens_and_give_a_pad_the_next_ones():
    real = torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1], [1, 0, 1, 0]], dtype=torch.bool)
    assert A.padded_positions(real).tolist() == [[0, 0, 0, 1], [0, 1, 2, 3], [0, 1, 1, 2]]
    # continuing cached rows: every position shifts by what the row already holds
    assert A.padded_positions(real, torch.tensor([5, 0, 2])).tolist() == [[5, 5, 5, 6], [0, 1, 2, 3], [2, 3, 3, 4]]
