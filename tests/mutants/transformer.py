"""Common mistakes in 05_transformer."""

import torch
import torch.nn.functional as F

from llmlab.grading import transformer as grade
from llmlab.models.minilm import mean_pool
from llmlab.models.smollm2 import layer_from_gguf
from llmlab.nn import layers as L
from llmlab.nn.attention import merge_heads, repeat_kv, split_heads
from llmlab.nn.model import DecoderConfig
from tests.mutants import mistake

_functional_block = grade.check_decoder_block.reference  # with switches for the catalogued slips
_functional_attention = grade.check_attention_sublayer.reference


def _rms(x, w, eps):
    return x / (x.pow(2).mean(-1, keepdim=True) + eps).sqrt() * w


def _attention(x, layer, cos, sin, n_heads, n_kv_heads, eps):
    """The notebook's solution of attention_sublayer."""
    h = _rms(x, layer["attention_norm.weight"], eps)
    q = split_heads(F.linear(h, layer["attention.wq.weight"]), n_heads)
    k = split_heads(F.linear(h, layer["attention.wk.weight"]), n_kv_heads)
    v = split_heads(F.linear(h, layer["attention.wv.weight"]), n_kv_heads)
    q, k = L.apply_rope_half(q, cos, sin), L.apply_rope_half(k, cos, sin)
    rep = n_heads // n_kv_heads
    a = F.scaled_dot_product_attention(q, repeat_kv(k, rep), repeat_kv(v, rep), is_causal=True)
    return F.linear(merge_heads(a), layer["attention.wo.weight"])


def _block(x, layer, cos, sin, n_heads, n_kv_heads, eps):
    """The notebook's solution of decoder_block."""
    x = x + _attention(x, layer, cos, sin, n_heads, n_kv_heads, eps)
    h = _rms(x, layer["ffn_norm.weight"], eps)
    return x + F.linear(F.silu(F.linear(h, layer["feed_forward.w1.weight"])) * F.linear(h, layer["feed_forward.w3.weight"]),
                        layer["feed_forward.w2.weight"])


def _forward(ids, state, cfg, final_norm=True, theta=None, block=_block):
    cos, sin = L.rope_cos_sin(ids.shape[1], cfg.head_dim, cfg.rope_theta if theta is None else theta)
    x = state["tok_embeddings.weight"][ids]
    for i in range(cfg.n_layers):
        layer = {k.removeprefix(f"layers.{i}."): v for k, v in state.items() if k.startswith(f"layers.{i}.")}
        x = block(x, layer, cos, sin, cfg.n_heads, cfg.n_kv_heads, cfg.norm_eps)
    if final_norm:
        x = _rms(x, state["norm.weight"], cfg.norm_eps)
    return x @ state["tok_embeddings.weight"].T


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
    "check_attention_sublayer": _attention,
    "check_decoder_block": _block,
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


@mistake("check_attention_sublayer", "before the residual add")
def attention_adds_residual(x, layer, cos, sin, n_heads, n_kv_heads, eps):
    return x + _attention(x, layer, cos, sin, n_heads, n_kv_heads, eps)


@mistake("check_attention_sublayer", "never v (values")
def attention_rope_on_v(x, layer, cos, sin, n_heads, n_kv_heads, eps):
    return _functional_attention(x, layer, cos, sin, n_heads, n_kv_heads, eps, rope_v=True)


@mistake("check_attention_sublayer", "a position attends to itself and the past only")
def attention_not_causal(x, layer, cos, sin, n_heads, n_kv_heads, eps):
    return _functional_attention(x, layer, cos, sin, n_heads, n_kv_heads, eps, causal=False)


@mistake("check_attention_sublayer", "not x itself")
def attention_without_norm(x, layer, cos, sin, n_heads, n_kv_heads, eps):
    return _functional_attention(x, layer, cos, sin, n_heads, n_kv_heads, eps, norm=False)


@mistake("check_attention_sublayer", "rotate q and k with apply_rope")
def attention_without_rope(x, layer, cos, sin, n_heads, n_kv_heads, eps):
    return _functional_attention(x, layer, cos, sin, n_heads, n_kv_heads, eps, rope=False)


@mistake("check_attention_sublayer", "use the cos and sin tables you are given")
def attention_own_rope_tables(x, layer, cos, sin, n_heads, n_kv_heads, eps):
    cos, sin = L.rope_cos_sin(x.shape[1], cos.shape[-1] * 2, 1e5)  # SmolLM2's base, whatever the model
    return _attention(x, layer, cos.to(x.dtype), sin.to(x.dtype), n_heads, n_kv_heads, eps)


@mistake("check_decoder_block", "ffn_norm.weight (attention_norm.weight is the attention's)")
def block_one_norm_weight(x, layer, cos, sin, n_heads, n_kv_heads, eps):
    return _functional_block(x, layer, cos, sin, n_heads, n_kv_heads, eps, mlp_norm="attention_norm.weight")


@mistake("check_decoder_block", "not the block's input x")
def block_parallel_mlp(x, layer, cos, sin, n_heads, n_kv_heads, eps):
    return _functional_block(x, layer, cos, sin, n_heads, n_kv_heads, eps, parallel=True)


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


@mistake("check_mean_pool", "not NaN", kind="overfit")
def pool_unclamped(hidden, attention_mask):
    m = attention_mask.to(hidden.dtype).unsqueeze(-1)
    return F.normalize((hidden * m).sum(1) / m.sum(1), dim=-1)


@mistake("check_decoder_block", "a position attends to itself and the past only")
def block_no_causal_mask(x, layer, cos, sin, n_heads, n_kv_heads, eps):
    return _functional_block(x, layer, cos, sin, n_heads, n_kv_heads, eps, causal=False)


# ---------------------------------------------------------------- right on the examples, wrong in general

@mistake("check_rms_norm", "do not divide by a fixed 16", kind="overfit")
def rms_fixed_width(x, w, eps):
    return x / (x.pow(2).sum(-1, keepdim=True) / 16 + eps).sqrt() * w


@mistake("check_layer_norm", "E[x²] - mean² loses every digit", kind="overfit")
def ln_one_pass_variance(x, w, b, eps):
    mu = x.mean(-1, keepdim=True)
    var = x.pow(2).mean(-1, keepdim=True) - mu ** 2
    return (x - mu) / (var + eps).sqrt() * w + b


@mistake("check_apply_rope", "not at a fixed channel", kind="overfit")
def rope_fixed_half(x, cos, sin):
    rotated = torch.cat([-x[..., 4:], x[..., :4]], -1)  # D = 8 in the example
    return x * torch.cat([cos, cos], -1) + rotated * torch.cat([sin, sin], -1)


@mistake("check_unpermute_qk", "use n_heads, the argument", kind="overfit")
def unpermute_three_heads(w, n_heads):
    return w.reshape(3, w.shape[0] // 6, 2, w.shape[1]).transpose(1, 2).reshape(w.shape)


@mistake("check_swiglu", "whatever the leading dims", kind="overfit")
def swiglu_assumes_batch(x, w1, w2, w3):
    B, T, C = x.shape
    h = x.reshape(B * T, C)
    return (F.silu(h @ w1.T) * (h @ w3.T) @ w2.T).reshape(B, T, C)


@mistake("check_attention_sublayer", "not 3", kind="overfit")
def attention_ratio_three(x, layer, cos, sin, n_heads, n_kv_heads, eps):
    h = _rms(x, layer["attention_norm.weight"], eps)
    q = split_heads(F.linear(h, layer["attention.wq.weight"]), n_heads)
    k = split_heads(F.linear(h, layer["attention.wk.weight"]), n_kv_heads)
    v = split_heads(F.linear(h, layer["attention.wv.weight"]), n_kv_heads)
    q, k = L.apply_rope_half(q, cos, sin), L.apply_rope_half(k, cos, sin)
    a = F.scaled_dot_product_attention(q, repeat_kv(k, 3), repeat_kv(v, 3), is_causal=True)  # SmolLM2: 9 / 3
    return F.linear(merge_heads(a), layer["attention.wo.weight"])


@mistake("check_attention_sublayer", "keep every row of the batch", kind="overfit")
def attention_batch_of_one(x, layer, cos, sin, n_heads, n_kv_heads, eps):
    return _attention(x[:1], layer, cos, sin, n_heads, n_kv_heads, eps).expand_as(x)


@mistake("check_decoder_block", "not 3", kind="overfit")
def block_ratio_three(x, layer, cos, sin, n_heads, n_kv_heads, eps):
    h = _rms(x, layer["attention_norm.weight"], eps)
    q = split_heads(F.linear(h, layer["attention.wq.weight"]), n_heads)
    k = split_heads(F.linear(h, layer["attention.wk.weight"]), n_kv_heads)
    v = split_heads(F.linear(h, layer["attention.wv.weight"]), n_kv_heads)
    q, k = L.apply_rope_half(q, cos, sin), L.apply_rope_half(k, cos, sin)
    k, v = repeat_kv(k, 3), repeat_kv(v, 3)  # SmolLM2: 9 query heads, 3 KV heads
    a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    x = x + F.linear(merge_heads(a), layer["attention.wo.weight"])
    h = _rms(x, layer["ffn_norm.weight"], eps)
    return x + F.linear(F.silu(F.linear(h, layer["feed_forward.w1.weight"])) * F.linear(h, layer["feed_forward.w3.weight"]),
                        layer["feed_forward.w2.weight"])


@mistake("check_decoder_block", "keep every row of the batch", kind="overfit")
def block_batch_of_one(x, layer, cos, sin, n_heads, n_kv_heads, eps):
    return _block(x[:1], layer, cos, sin, n_heads, n_kv_heads, eps).expand_as(x)


@mistake("check_load_layer", "blk.1 also starts blk.10", kind="overfit")
def load_prefix_without_dot(tensors, i, n_heads, n_kv_heads):
    layer = {_NAMES[k.split(".", 2)[2]]: v for k, v in tensors.items() if k.startswith(f"blk.{i}")}
    layer["attention.wq.weight"] = L.permute_for_rotate_half(layer["attention.wq.weight"], n_heads)
    layer["attention.wk.weight"] = L.permute_for_rotate_half(layer["attention.wk.weight"], n_kv_heads)
    return layer


@mistake("check_load_layer", "their ratio is not always 3", kind="overfit")
def load_k_heads_ratio_three(tensors, i, n_heads, n_kv_heads):
    out = load_no_unpermute(tensors, i, n_heads, n_kv_heads)
    out["attention.wq.weight"] = L.permute_for_rotate_half(out["attention.wq.weight"], n_heads)
    out["attention.wk.weight"] = L.permute_for_rotate_half(out["attention.wk.weight"], n_heads // 3)
    return out


@mistake("check_decoder_forward", "read every size from cfg", kind="overfit")
def forward_fixed_theta(ids, state, cfg):
    return _forward(ids, state, cfg, theta=100000.0)  # SmolLM2's RoPE base


@mistake("check_decoder_forward", "run every row of ids", kind="overfit")
def forward_first_prompt(ids, state, cfg):
    return _forward(ids[:1], state, cfg)


@mistake("check_greedy_generate", "not only the last token", kind="overfit")
def greedy_last_token_only(forward, ids, max_new_tokens, eos_id):
    last, out = ids[-1], []
    for _ in range(max_new_tokens):
        last = int(forward(torch.tensor([[last]]))[0, -1].argmax())
        out.append(last)
        if last == eos_id:
            break
    return out


@mistake("check_mean_pool", "wherever the padding is", kind="overfit")
def pool_right_padding_only(hidden, attention_mask):
    lengths = attention_mask.sum(1)
    return F.normalize(torch.stack([hidden[b, : lengths[b]].mean(0) for b in range(hidden.shape[0])]), dim=-1)


# ---------------------------------------------------------------- changing the caller's inputs

@mistake("check_rms_norm", "leave the inputs as they are", kind="inplace")
def rms_scale_in_place(x, w, eps):
    x *= torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    return x * w


@mistake("check_layer_norm", "leave the inputs as they are", kind="inplace")
def ln_center_in_place(x, w, b, eps):
    x -= x.mean(-1, keepdim=True)
    return x / (x.pow(2).mean(-1, keepdim=True) + eps).sqrt() * w + b


@mistake("check_apply_rope", "leave the inputs as they are", kind="inplace")
def rope_in_place(x, cos, sin):
    rotated = L.rotate_half(x)
    x *= torch.cat([cos, cos], -1)
    return x + rotated * torch.cat([sin, sin], -1)


@mistake("check_unpermute_qk", "leave the inputs as they are", kind="inplace")
def unpermute_into_input(w, n_heads):
    w.data = L.permute_for_rotate_half(w, n_heads)
    return w


@mistake("check_swiglu", "leave the inputs as they are", kind="inplace")
def swiglu_transposes_in_place(x, w1, w2, w3):
    return (F.silu(x @ w1.t_()) * (x @ w3.t_())) @ w2.t_()


@mistake("check_attention_sublayer", "leave the inputs as they are", kind="inplace")
def attention_normalises_in_place(x, layer, cos, sin, n_heads, n_kv_heads, eps):
    x *= torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)  # "normalise x" on the caller's tensor
    h = x * layer["attention_norm.weight"]
    q = split_heads(F.linear(h, layer["attention.wq.weight"]), n_heads)
    k = split_heads(F.linear(h, layer["attention.wk.weight"]), n_kv_heads)
    v = split_heads(F.linear(h, layer["attention.wv.weight"]), n_kv_heads)
    q, k = L.apply_rope_half(q, cos, sin), L.apply_rope_half(k, cos, sin)
    rep = n_heads // n_kv_heads
    a = F.scaled_dot_product_attention(q, repeat_kv(k, rep), repeat_kv(v, rep), is_causal=True)
    return F.linear(merge_heads(a), layer["attention.wo.weight"])


@mistake("check_decoder_block", "leave the inputs as they are", kind="inplace")
def block_residual_in_place(x, layer, cos, sin, n_heads, n_kv_heads, eps):
    out = _block(x, layer, cos, sin, n_heads, n_kv_heads, eps)
    x += out - x  # "x += attention(...)": the caller's x becomes the output
    return x


@mistake("check_load_layer", "leave the inputs as they are", kind="inplace")
def load_unpermutes_in_the_file(tensors, i, n_heads, n_kv_heads):
    for name, heads in (("attn_q.weight", n_heads), ("attn_k.weight", n_kv_heads)):
        tensors[f"blk.{i}.{name}"] = L.permute_for_rotate_half(tensors[f"blk.{i}.{name}"], heads)
    return {ours: tensors[f"blk.{i}.{name}"] for name, ours in _NAMES.items()}


@mistake("check_decoder_forward", "leave the inputs as they are", kind="inplace")
def forward_ties_in_the_dict(ids, state, cfg):
    state["output.weight"] = state["tok_embeddings.weight"]
    return _forward(ids, state, cfg)


@mistake("check_greedy_generate", "leave the inputs as they are", kind="inplace")
def greedy_appends_to_prompt(forward, ids, max_new_tokens, eos_id):
    out = []
    for _ in range(max_new_tokens):
        t = int(forward(torch.tensor([ids]))[0, -1].argmax())
        out.append(t)
        ids.append(t)
        if t == eos_id:
            break
    return out


@mistake("check_mean_pool", "leave the inputs as they are", kind="inplace")
def pool_masks_in_place(hidden, attention_mask):
    hidden *= attention_mask.unsqueeze(-1)
    return F.normalize(hidden.sum(1) / attention_mask.sum(1, keepdim=True), dim=-1)


# ---------------------------------------------------------------- another dtype than the reference's

@mistake("check_rms_norm", "cast back (.to(x.dtype))", kind="dtype")
def rms_upcast_only(x, w, eps):
    x = x.float()
    return x / (x.pow(2).mean(-1, keepdim=True) + eps).sqrt() * w


@mistake("check_layer_norm", "dtype", kind="dtype")
def ln_float32(x, w, b, eps):
    return F.layer_norm(x.float(), (x.shape[-1],), w.float(), b.float(), eps)


@mistake("check_apply_rope", "dtype", kind="dtype")
def rope_float32(x, cos, sin):
    return L.apply_rope_half(x.float(), cos.float(), sin.float())


@mistake("check_unpermute_qk", "dtype", kind="dtype")
def unpermute_into_zeros(w, n_heads):
    out, D = torch.zeros(w.shape), w.shape[0] // n_heads
    for h in range(n_heads):
        out[h * D : h * D + D // 2] = w[h * D : (h + 1) * D : 2]
        out[h * D + D // 2 : (h + 1) * D] = w[h * D + 1 : (h + 1) * D : 2]
    return out


@mistake("check_swiglu", "dtype", kind="dtype")
def swiglu_float32(x, w1, w2, w3):
    return F.linear(F.silu(F.linear(x.float(), w1.float())) * F.linear(x.float(), w3.float()), w2.float())


@mistake("check_attention_sublayer", "dtype", kind="dtype")
def attention_float32(x, layer, cos, sin, n_heads, n_kv_heads, eps):
    return _attention(x.float(), {k: v.float() for k, v in layer.items()}, cos.float(), sin.float(), n_heads, n_kv_heads, eps)


@mistake("check_decoder_block", "dtype", kind="dtype")
def block_float32(x, layer, cos, sin, n_heads, n_kv_heads, eps):
    return _block(x.float(), {k: v.float() for k, v in layer.items()}, cos, sin, n_heads, n_kv_heads, eps)


@mistake("check_load_layer", "dtype", kind="dtype")
def load_as_float32(tensors, i, n_heads, n_kv_heads):
    out = layer_from_gguf(tensors, i, DecoderConfig(n_heads=n_heads, n_kv_heads=n_kv_heads))
    return {k: v.float() for k, v in out.items()}


@mistake("check_decoder_forward", "dtype", kind="dtype")
def forward_float_logits(ids, state, cfg):
    return _forward(ids, state, cfg).float()


@mistake("check_greedy_generate", "Python ints", kind="dtype")
def greedy_tensor_tokens(forward, ids, max_new_tokens, eos_id):
    ids, out = list(ids), []
    for _ in range(max_new_tokens):
        t = forward(torch.tensor([ids]))[0, -1].argmax()
        out.append(t)
        ids.append(int(t))
        if t == eos_id:
            break
    return out


@mistake("check_mean_pool", "dtype", kind="dtype")
def pool_float_mask(hidden, attention_mask):
    m = attention_mask.float().unsqueeze(-1)
    return F.normalize((hidden * m).sum(1) / m.sum(1).clamp(min=1e-9), dim=-1)
