"""Checks for notebook 05_transformer."""
from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F

from llmlab.grading.core import Check
from llmlab.nn import layers as L
from llmlab.nn.attention import causal_mask
from llmlab.nn.model import DecoderBlock, mean_pool


def _randn(*shape, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@lru_cache(maxsize=1)
def _smollm2():
    from llmlab.models import load_smollm2

    return load_smollm2(device="cpu").eval()  # checks compare on the CPU, whatever the learner uses


@lru_cache(maxsize=1)
def _gguf_tensors() -> dict[str, torch.Tensor]:
    from llmlab.models import smollm2_gguf_path
    from llmlab.models.gguf import open_gguf, read_tensors

    return read_tensors(open_gguf(smollm2_gguf_path()))


def _layer0() -> dict[str, torch.Tensor]:
    state = _smollm2().state_dict()
    return {k.removeprefix("layers.0."): v for k, v in state.items() if k.startswith("layers.0.")}


def check_rms_norm(fn) -> None:
    c = Check("05.rms_norm", fn)
    x, w = _randn(2, 3, 16), _randn(16, seed=1)
    out = c.call(x, w, 1e-5)
    c.expect_tensor(out, shape=x.shape, dtype=x.dtype, name="rms_norm(x, weight, eps)")
    ms = x.pow(2).mean(-1, keepdim=True)
    ref = L.RMSNorm(16, 1e-5)
    ref.weight.data = w.clone()
    want = ref(x).detach()
    c.diagnose(out, {
        "eps goes inside the square root: x / sqrt(mean(x²) + eps)": x / (ms.sqrt() + 1e-5) * w,
        "RMSNorm does not subtract the mean (that is LayerNorm)": (x - x.mean(-1, keepdim=True)) / ((x - x.mean(-1, keepdim=True)).pow(2).mean(-1, keepdim=True) + 1e-5).sqrt() * w,
        "average the squares over the last dimension (the channels) only": x / (x.pow(2).mean() + 1e-5).sqrt() * w,
        "multiply by the weight after normalising": x / (ms + 1e-5).sqrt(),
    }, "your normalisation matches a known mistake", rtol=1e-4, correct=want)
    c.close(out, want, "rms_norm differs from x / sqrt(mean(x²) + eps) * weight", "")
    tiny = torch.full((1, 4), 1e-4)
    c.close(c.call(tiny, torch.ones(4), 1e-2), tiny / math.sqrt(1e-8 + 1e-2), "with tiny inputs eps matters and your result is off",
            "eps inside the square root")
    c.done()


def check_layer_norm(fn) -> None:
    c = Check("05.layer_norm", fn)
    x, w, b = _randn(2, 3, 16), _randn(16, seed=1), _randn(16, seed=2)
    out = c.call(x, w, b, 1e-5)
    c.expect_tensor(out, shape=x.shape, name="layer_norm(x, weight, bias, eps)")
    mu = x.mean(-1, keepdim=True)
    c.diagnose(out, {
        "use the population variance (divide by C, torch.var(..., unbiased=False)), as LayerNorm does":
            (x - mu) / (x.var(-1, keepdim=True) + 1e-5).sqrt() * w + b,
        "eps goes inside the square root": (x - mu) / ((x - mu).pow(2).mean(-1, keepdim=True).sqrt() + 1e-5) * w + b,
        "subtract the mean first": x / (x.pow(2).mean(-1, keepdim=True) + 1e-5).sqrt() * w + b,
    }, "your normalisation matches a known mistake", rtol=1e-4, correct=F.layer_norm(x, (16,), w, b, 1e-5))
    tiny = torch.full((1, 4), 1e-4) + torch.tensor([[0.0, 1e-4, 2e-4, 3e-4]])
    c.close(c.call(tiny, torch.ones(4), torch.zeros(4), 1e-2), F.layer_norm(tiny, (4,), eps=1e-2),
            "with tiny inputs eps matters and your result is off", "eps inside the square root: sqrt(var + eps)")
    c.close(out, F.layer_norm(x, (16,), w, b, 1e-5), "layer_norm differs from F.layer_norm", "(x - mean) / sqrt(var + eps) * weight + bias")
    c.done()


def check_apply_rope(fn) -> None:
    c = Check("05.apply_rope", fn)
    x = _randn(1, 2, 5, 8)
    cos, sin = L.rope_cos_sin(5, 8, 10000.0)
    out = c.call(x, cos, sin)
    c.expect_tensor(out, shape=x.shape, name="apply_rope(x, cos, sin)")
    c.diagnose(out, {
        "this model pairs channel i with i + D/2 (rotate-half); you paired neighbours 2i, 2i+1 (interleaved)":
            L.apply_rope_interleaved(x, cos, sin),
        "the sign is on the first half: rotate_half(x) = cat(-x2, x1)": x * torch.cat([cos, cos], -1) - L.rotate_half(x) * torch.cat([sin, sin], -1),
    }, "your rotation matches a known mistake", rtol=1e-5, correct=L.apply_rope_half(x, cos, sin))
    c.close(out, L.apply_rope_half(x, cos, sin), "RoPE output differs", "x * cos + rotate_half(x) * sin, with cos and sin repeated twice")
    c.close(out[..., 0, :], x[..., 0, :], "position 0 must be left unchanged (angle 0)", "")
    q, k = _randn(1, 1, 6, 8, seed=3)[..., 2:3, :], _randn(1, 1, 6, 8, seed=4)[..., 4:5, :]
    def score(m: int, n: int) -> float:
        cm, sm = L.rope_cos_sin(torch.tensor([m]), 8, 10000.0)
        cn, sn = L.rope_cos_sin(torch.tensor([n]), 8, 10000.0)
        return (c.call(q, cm, sm) * c.call(k, cn, sn)).sum().item()
    c.expect(abs(score(3, 1) - score(10, 8)) < 1e-4, "q·k after RoPE should depend only on the distance m - n",
             "rotate each pair by position × frequency; the same rotation for q and k")
    c.done()


def check_unpermute_qk(fn) -> None:
    c = Check("05.unpermute_qk", fn)
    w = torch.arange(3 * 8 * 2, dtype=torch.float32).view(24, 2)
    out = c.call(w, 3)
    c.expect_tensor(out, shape=w.shape, name="unpermute_qk(w (24, 2), 3)")
    if torch.equal(out, w):
        c.fail("you returned the weights unchanged",
               "GGUF stores q/k rows in interleaved-RoPE order; reorder them so rotate-half RoPE sees the same pairs")
    if torch.equal(out, L.permute_for_interleaved(w, 3)):
        c.fail("you applied the inverse permutation", "reshape to (H, D/2, 2, in), swap axes 1 and 2, reshape back")
    c.expect(torch.equal(out, L.permute_for_rotate_half(w, 3)), "rows end up in the wrong order",
             "within each head, row 2i moves to i and row 2i+1 to i + D/2")
    real = _gguf_tensors()["blk.0.attn_k.weight"]
    c.expect(torch.equal(c.call(real, 3), L.permute_for_rotate_half(real, 3)), "SmolLM2's real attn_k (3 KV heads) is reordered wrongly", "")
    c.done()


def check_swiglu(fn) -> None:
    c = Check("05.swiglu", fn)
    x, w1, w2, w3 = _randn(2, 3, 8), _randn(12, 8, seed=1), _randn(8, 12, seed=2), _randn(12, 8, seed=3)
    out = c.call(x, w1, w2, w3)
    c.expect_tensor(out, shape=x.shape, name="swiglu(x, w1, w2, w3)")
    g, u = x @ w1.T, x @ w3.T
    want = F.linear(F.silu(g) * u, w2)
    c.diagnose(out, {
        "SwiGLU uses SiLU (x·sigmoid(x)), not GELU": (F.gelu(g) * u) @ w2.T,
        "the gate is w1: silu(w1 x) * (w3 x), not silu(w3 x) * (w1 x)": (F.silu(u) * g) @ w2.T,
        "multiply the gate by the up projection w3 x": F.silu(g) @ w2.T,
    }, "your MLP matches a known mistake", rtol=1e-5, correct=want)
    c.close(out, F.linear(F.silu(F.linear(x, w1)) * F.linear(x, w3), w2), "SwiGLU output differs", "w2(silu(w1 x) * w3 x)")
    c.done()


def _reference_block(x, layer, cos, sin, n_heads, n_kv_heads, eps):
    from llmlab.nn.model import DecoderConfig

    cfg = DecoderConfig(vocab_size=8, dim=x.shape[-1], n_layers=1, n_heads=n_heads, n_kv_heads=n_kv_heads,
                        hidden_dim=layer["feed_forward.w1.weight"].shape[0], norm_eps=eps)
    block = DecoderBlock(cfg)
    block.load_state_dict(layer)
    rotary = lambda q, k: (L.apply_rope_half(q, cos, sin), L.apply_rope_half(k, cos, sin))  # noqa: E731
    return block(x, causal_mask(x.shape[1]), rotary)


def _functional_block(x, layer, cos, sin, n_heads, n_kv_heads, eps, rope_v=False, residual=True, post_norm=False):
    """A decoder block written out step by step, with switches for three classic mistakes."""
    from llmlab.nn.attention import merge_heads, repeat_kv, split_heads

    def norm(h, name):
        return h / (h.pow(2).mean(-1, keepdim=True) + eps).sqrt() * layer[name]

    def lin(h, name):
        return h @ layer[name].T

    h = x if post_norm else norm(x, "attention_norm.weight")
    q, k, v = (split_heads(lin(h, f"attention.w{n}.weight"), nh) for n, nh in (("q", n_heads), ("k", n_kv_heads), ("v", n_kv_heads)))
    q, k = L.apply_rope_half(q, cos, sin), L.apply_rope_half(k, cos, sin)
    if rope_v:
        v = L.apply_rope_half(v, cos, sin)
    rep = n_heads // n_kv_heads
    a = lin(merge_heads(F.scaled_dot_product_attention(q, repeat_kv(k, rep), repeat_kv(v, rep), is_causal=True)), "attention.wo.weight")
    x = x + a if residual else a
    if post_norm:
        x = norm(x, "attention_norm.weight")
    h = x if post_norm else norm(x, "ffn_norm.weight")
    m = lin(F.silu(lin(h, "feed_forward.w1.weight")) * lin(h, "feed_forward.w3.weight"), "feed_forward.w2.weight")
    x = x + m if residual else m
    return norm(x, "ffn_norm.weight") if post_norm else x


def check_decoder_block(fn) -> None:
    c = Check("05.decoder_block", fn)
    layer = _layer0()
    x = _randn(1, 6, 576) * 0.1
    cos, sin = L.rope_cos_sin(6, 64, 1e5)
    out = c.call(x, layer, cos, sin, 9, 3, 1e-5, copy_args=False)
    c.expect_tensor(out, shape=x.shape, name="decoder_block(x, SmolLM2 layer 0, ...)")
    with torch.no_grad():
        want = _reference_block(x, layer, cos, sin, 9, 3, 1e-5)
        args = (x, layer, cos, sin, 9, 3, 1e-5)
        c.diagnose(out, {
            "RoPE rotates q and k only, never v (values carry content, not position)": _functional_block(*args, rope_v=True),
            "add each sublayer's output to its input: x = x + attention(norm(x)); x = x + mlp(norm(x))":
                _functional_block(*args, residual=False),
            "pre-norm: normalise the input of each sublayer (Llama), not the sum after it (the original Transformer)":
                _functional_block(*args, post_norm=True),
        }, "your block matches a known mistake", rtol=1e-4, correct=want)
    # The learner's fused attention and the reference's explicit one sum in different orders: with one
    # CPU thread, 1 of the 3,456 outputs fell just outside float32's default tolerances.
    c.close(out, want, "SmolLM2's layer 0 gives a different output from the reference block",
            "pre-norm: RMSNorm before attention and before the MLP; RoPE on q and k only (never v); repeat KV heads for GQA",
            rtol=1e-4, atol=1e-5)
    c.done()


def check_load_layer(fn) -> None:
    c = Check("05.load_layer", fn)
    from llmlab.models.smollm2 import layer_from_gguf

    tensors, cfg = _gguf_tensors(), _smollm2().cfg
    hints = {"blk.": "GGUF names are blk.{i}.attn_q.weight, blk.{i}.ffn_gate.weight, ... (see the table above)",
             "cannot be split": "q has n_heads = 9 heads, k has n_kv_heads = 3"}
    for i in (0, 17):
        out = c.call(tensors, i, 9, 3, error_hints=hints, copy_args=False)
        want = layer_from_gguf(tensors, i, cfg)
        c.expect(isinstance(out, dict) and set(out) == set(want), f"layer {i}: keys {sorted(out)[:4]}..., expected {sorted(want)}",
                 "return a dict with the nine DecoderBlock names, e.g. 'attention.wq.weight', 'feed_forward.w1.weight'")
        for name in want:
            if torch.equal(out[name], want[name]):
                continue
            gguf_name = {"attention.wq.weight": "attn_q.weight", "attention.wk.weight": "attn_k.weight"}.get(name)
            if gguf_name and torch.equal(out[name], tensors[f"blk.{i}.{gguf_name}"]):
                c.fail(f"layer {i}: {name} is in GGUF's row order",
                       "GGUF's q and k are permuted for interleaved RoPE: un-permute them (your unpermute_qk), with 9 heads for q and 3 for k")
            if any(torch.equal(out[name], want[other]) for other in want if other != name):
                c.fail(f"layer {i}: {name} holds another tensor",
                       "ffn_gate is w1 (the gate), ffn_up is w3, ffn_down is w2; attn_output is wo")
            c.fail(f"layer {i}: {name} differs from the expected weights", "only q and k are re-ordered; every other tensor is copied as it is")
        c.passed += len(want)
    c.done()


def check_decoder_forward(fn) -> None:
    c = Check("05.decoder_forward", fn)
    model = _smollm2()
    state = {k: v for k, v in model.state_dict().items() if k != "output.weight"}  # tied: no separate head
    ids = torch.tensor([[504, 3458, 282, 4649, 314, 7042, 30]])
    hints = {"output.weight": "SmolLM2 ties its output layer to the embedding: logits = x @ tok_embeddings.weight.T"}
    with torch.no_grad():
        out = c.call(ids, state, model.cfg, error_hints=hints, copy_args=False)
        want = model(ids)
    c.expect_tensor(out, shape=want.shape, name="decoder_forward(ids, weights, cfg)")
    x = model.tok_embeddings(ids)
    with torch.no_grad():
        cos, sin = L.rope_cos_sin(ids.shape[1], 64, model.cfg.rope_theta)
        rotary = lambda q, k: (L.apply_rope_half(q, cos, sin), L.apply_rope_half(k, cos, sin))  # noqa: E731
        for layer in model.layers:
            x = layer(x, causal_mask(ids.shape[1]), rotary)
        no_final_norm = x @ model.tok_embeddings.weight.T
    if torch.allclose(out, no_final_norm, atol=1e-3):
        c.fail("your logits skip the final RMSNorm", "apply norm.weight (RMSNorm) to the last hidden state before the head")
    c.close(out, want, "logits differ from the reference SmolLM2", "embed, run the 30 blocks, final RMSNorm, tied head", atol=1e-3, rtol=1e-4)
    c.expect(torch.equal(out.argmax(-1), want.argmax(-1)), "the predicted tokens differ", "")
    c.done()


class ToyForward:
    """A model for greedy decoding: next token = (7 * token + 3) % V at every position, as logits (1, T, V).
    A module-level class, so that a class run can send it to the learner's kernel."""

    def __init__(self, vocab_size: int):
        self.V = vocab_size

    def __call__(self, ids: torch.Tensor) -> torch.Tensor:
        return F.one_hot((7 * ids + 3) % self.V, self.V).float()


def check_greedy_generate(fn) -> None:
    c = Check("05.greedy_generate", fn)
    V = 11
    toy_forward = ToyForward(V)
    out = c.call(toy_forward, [1, 2], 4, None)
    want = [(7 * 2 + 3) % V]
    for _ in range(3):
        want.append((7 * want[-1] + 3) % V)
    c.expect(isinstance(out, list) and all(isinstance(t, int) for t in out), f"you returned {out!r}, expected a list of ints",
             "return the new token ids as Python ints (int(logits[0, -1].argmax()))")
    if out == [(7 * 1 + 3) % V] * 4 or (out and out[0] == (7 * 1 + 3) % V):
        c.fail(f"you generated {out}, expected {want}", "predict from the logits at the last position, logits[0, -1]")
    if out == [want[0]] * 4:
        c.fail(f"you generated {out}, expected {want}", "append each new token to the input before the next step")
    c.expect(out == want, f"you generated {out}, expected {want}", "")
    stop = c.call(toy_forward, [1, 2], 10, want[1])
    c.expect(stop == want[:2], f"with eos_id={want[1]} you generated {stop}, expected {want[:2]}",
             "stop right after producing eos_id (keep the eos token itself)")
    c.expect(c.call(toy_forward, [1, 2], 0, None) == [], "max_new_tokens=0 should give []", "")
    c.done()


def check_mean_pool(fn) -> None:
    c = Check("05.mean_pool", fn)
    h = _randn(2, 5, 6)
    am = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    out = c.call(h, am)
    c.expect_tensor(out, shape=(2, 6), name="mean_pool(hidden, attention_mask)")
    c.diagnose(out, {
        "average only the real tokens: padding positions must not count": F.normalize(h.mean(1), dim=-1),
        "normalise each embedding to length 1 (F.normalize), so a dot product is a cosine": mean_pool(h, am, normalize=False),
    }, "your embeddings match a known mistake", rtol=1e-5, correct=mean_pool(h, am))
    c.close(out, mean_pool(h, am), "sentence embeddings differ", "sum(h * mask) / sum(mask), then divide by the L2 norm")
    c.done()
