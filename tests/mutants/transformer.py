"""Common mistakes in 05_transformer."""

import torch
import torch.nn.functional as F

from llmlab.grading.transformer import _functional_block, _reference_block
from llmlab.models.smollm2 import layer_from_gguf
from llmlab.nn import layers as L
from llmlab.nn.attention import causal_mask
from llmlab.nn.model import Decoder, DecoderConfig, mean_pool
from tests.mutants import mistake


def _rms(x, w, eps):
    return x / (x.pow(2).mean(-1, keepdim=True) + eps).sqrt() * w


def _forward(ids, state, cfg, final_norm=True, head=None):
    model = Decoder(cfg)
    full = dict(state)
    full["output.weight"] = full["tok_embeddings.weight"]
    model.load_state_dict(full)
    model.tie_weights()
    if not final_norm:
        model.norm.weight.data.fill_(1.0)
        model.norm.eps = 0.0
        x = model.tok_embeddings(ids)
        cos, sin = L.rope_cos_sin(ids.shape[1], cfg.head_dim, cfg.rope_theta)
        for layer in model.layers:
            x = layer(x, causal_mask(ids.shape[1]), lambda q, k: (L.apply_rope_half(q, cos, sin), L.apply_rope_half(k, cos, sin)))
        return x @ model.tok_embeddings.weight.T
    return model(ids)


def _greedy(forward, ids, max_new_tokens, eos_id):
    ids, out = list(ids), []
    for _ in range(max_new_tokens):
        t = int(forward(torch.tensor([ids]))[0, -1].argmax())
        out.append(t)
        ids.append(t)
        if t == eos_id:
            break
    return out


REFERENCE = {
    "check_rms_norm": _rms,
    "check_layer_norm": lambda x, w, b, eps: F.layer_norm(x, (x.shape[-1],), w, b, eps),
    "check_apply_rope": L.apply_rope_half,
    "check_unpermute_qk": L.permute_for_rotate_half,
    "check_swiglu": lambda x, w1, w2, w3: F.linear(F.silu(F.linear(x, w1)) * F.linear(x, w3), w2),
    "check_decoder_block": _reference_block,
    "check_load_layer": lambda tensors, i, nh, nkv: layer_from_gguf(tensors, i, DecoderConfig(n_heads=nh, n_kv_heads=nkv)),
    "check_decoder_forward": _forward,
    "check_greedy_generate": _greedy,
    "check_mean_pool": mean_pool,
}


@mistake("check_rms_norm", "eps inside the square root")
def rms_eps_outside(x, w, eps):
    return x / (x.pow(2).mean(-1, keepdim=True).sqrt() + eps) * w


@mistake("check_rms_norm", "does not subtract the mean")
def rms_subtracts_mean(x, w, eps):
    x = x - x.mean(-1, keepdim=True)
    return _rms(x, w, eps)


@mistake("check_rms_norm", "last dimension")
def rms_whole_tensor(x, w, eps):
    return x / (x.pow(2).mean() + eps).sqrt() * w


@mistake("check_layer_norm", "population variance")
def ln_unbiased(x, w, b, eps):
    return (x - x.mean(-1, keepdim=True)) / (x.var(-1, keepdim=True) + eps).sqrt() * w + b


@mistake("check_layer_norm", "subtract the mean")
def ln_no_mean(x, w, b, eps):
    return x / (x.pow(2).mean(-1, keepdim=True) + eps).sqrt() * w + b


@mistake("check_layer_norm", "eps inside the square root")
def ln_eps_outside(x, w, b, eps):
    xc = x - x.mean(-1, keepdim=True)
    return xc / (xc.pow(2).mean(-1, keepdim=True).sqrt() + eps) * w + b


@mistake("check_apply_rope", "rotate-half")
def rope_interleaved(x, cos, sin):
    return L.apply_rope_interleaved(x, cos, sin)


@mistake("check_apply_rope", "the sign")
def rope_sign(x, cos, sin):
    return x * torch.cat([cos, cos], -1) - L.rotate_half(x) * torch.cat([sin, sin], -1)


@mistake("check_unpermute_qk", "unchanged")
def unpermute_noop(w, n_heads):
    return w.clone()


@mistake("check_unpermute_qk", "inverse permutation")
def unpermute_inverse(w, n_heads):
    return L.permute_for_interleaved(w, n_heads)


@mistake("check_swiglu", "not GELU")
def swiglu_gelu(x, w1, w2, w3):
    return F.linear(F.gelu(F.linear(x, w1)) * F.linear(x, w3), w2)


@mistake("check_swiglu", "the gate is w1")
def swiglu_swapped(x, w1, w2, w3):
    return F.linear(F.silu(F.linear(x, w3)) * F.linear(x, w1), w2)


@mistake("check_swiglu", "up projection")
def swiglu_no_up(x, w1, w2, w3):
    return F.linear(F.silu(F.linear(x, w1)), w2)


@mistake("check_decoder_block", "never v (values")
def block_rope_on_v(x, layer, cos, sin, n_heads, n_kv_heads, eps):
    return _functional_block(x, layer, cos, sin, n_heads, n_kv_heads, eps, rope_v=True)


@mistake("check_decoder_block", "add each sublayer's output to its input")
def block_no_residual(x, layer, cos, sin, n_heads, n_kv_heads, eps):
    return _functional_block(x, layer, cos, sin, n_heads, n_kv_heads, eps, residual=False)


@mistake("check_decoder_block", "not the sum after it")
def block_post_norm(x, layer, cos, sin, n_heads, n_kv_heads, eps):
    return _functional_block(x, layer, cos, sin, n_heads, n_kv_heads, eps, post_norm=True)


_NAMES = {
    "attn_norm.weight": "attention_norm.weight", "attn_q.weight": "attention.wq.weight", "attn_k.weight": "attention.wk.weight",
    "attn_v.weight": "attention.wv.weight", "attn_output.weight": "attention.wo.weight", "ffn_norm.weight": "ffn_norm.weight",
    "ffn_gate.weight": "feed_forward.w1.weight", "ffn_down.weight": "feed_forward.w2.weight", "ffn_up.weight": "feed_forward.w3.weight",
}


@mistake("check_load_layer", "permuted for interleaved RoPE")
def load_no_unpermute(tensors, i, n_heads, n_kv_heads):
    return {ours: tensors[f"blk.{i}.{name}"] for name, ours in _NAMES.items()}


@mistake("check_load_layer", "ffn_gate is w1")
def load_gate_up_swapped(tensors, i, n_heads, n_kv_heads):
    out = layer_from_gguf(tensors, i, DecoderConfig(n_heads=n_heads, n_kv_heads=n_kv_heads))
    out["feed_forward.w1.weight"], out["feed_forward.w3.weight"] = out["feed_forward.w3.weight"], out["feed_forward.w1.weight"]
    return out


@mistake("check_load_layer", "k has n_kv_heads = 3")
def load_k_with_query_heads(tensors, i, n_heads, n_kv_heads):
    out = load_no_unpermute(tensors, i, n_heads, n_kv_heads)
    out["attention.wq.weight"] = L.permute_for_rotate_half(out["attention.wq.weight"], n_heads)
    out["attention.wk.weight"] = L.permute_for_rotate_half(out["attention.wk.weight"], n_heads)
    return out


@mistake("check_decoder_forward", "final RMSNorm")
def forward_no_final_norm(ids, state, cfg):
    return _forward(ids, state, cfg, final_norm=False)


@mistake("check_decoder_forward", "ties its output layer")
def forward_untied_head(ids, state, cfg):
    state["output.weight"]  # a separate LM head: SmolLM2 has none
    return _forward(ids, state, cfg)


@mistake("check_greedy_generate", "last position")
def greedy_first_position(forward, ids, max_new_tokens, eos_id):
    ids, out = list(ids), []
    for _ in range(max_new_tokens):
        t = int(forward(torch.tensor([ids]))[0, 0].argmax())
        out.append(t)
        ids.append(t)
    return out


@mistake("check_greedy_generate", "append each new token")
def greedy_not_appending(forward, ids, max_new_tokens, eos_id):
    return [int(forward(torch.tensor([ids]))[0, -1].argmax()) for _ in range(max_new_tokens)]


@mistake("check_greedy_generate", "stop right after producing eos_id")
def greedy_ignores_eos(forward, ids, max_new_tokens, eos_id):
    return _greedy(forward, ids, max_new_tokens, None)


@mistake("check_mean_pool", "only the real tokens")
def pool_with_padding(hidden, attention_mask):
    return F.normalize(hidden.mean(1), dim=-1)


@mistake("check_mean_pool", "normalise each embedding")
def pool_not_normalised(hidden, attention_mask):
    return mean_pool(hidden, attention_mask, normalize=False)
