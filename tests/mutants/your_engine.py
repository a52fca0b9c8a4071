"""Common mistakes in 14_your_engine."""
import torch
import torch.nn.functional as F

from llmlab.grading import your_engine as G
from llmlab.inference import generation, speculative
from llmlab.nn import kv_cache
from llmlab.nn.layers import rope_cos_sin, rotate_half
from llmlab.prune import magnitude
from tests.mutants import mistake

REFERENCE = {
    "check_attention_layer": G.reference_attention_layer,
    "check_next_token": G.reference_next_token,
    "check_int4_storage": G.reference_int4_storage,
    "check_greedy_accept": speculative.greedy_accept,
    "check_engine_generate": G.reference_engine_generate,
}


# attention_layer
def _layer(x, w, k_cache, v_cache, start, cos, sin, eps, **switches):
    return G._layer(x, w, k_cache, v_cache, start, cos, sin, eps, **switches)


@mistake("check_attention_layer", "add the input back")
def layer_no_residual(x, w, k_cache, v_cache, start, cos, sin, eps):
    return _layer(x, w, k_cache, v_cache, start, cos, sin, eps, residual=False)


@mistake("check_attention_layer", "sees slots 0 .. start+t only")
def layer_no_causal_mask(x, w, k_cache, v_cache, start, cos, sin, eps):
    return _layer(x, w, k_cache, v_cache, start, cos, sin, eps, causal=False)


@mistake("check_attention_layer", "filled slots only")
def layer_whole_cache(x, w, k_cache, v_cache, start, cos, sin, eps):
    return _layer(x, w, k_cache, v_cache, start, cos, sin, eps, filled=False)


@mistake("check_attention_layer", "rotate k as well as q")
def layer_k_not_rotated(x, w, k_cache, v_cache, start, cos, sin, eps):
    return _layer(x, w, k_cache, v_cache, start, cos, sin, eps, rope_k=False)


@mistake("check_attention_layer", "rotate-half order")
def layer_interleaved_rope(x, w, k_cache, v_cache, start, cos, sin, eps):
    return _layer(x, w, k_cache, v_cache, start, cos, sin, eps, rotate=G._interleaved)


@mistake("check_attention_layer", "normalise first")
def layer_no_norm(x, w, k_cache, v_cache, start, cos, sin, eps):
    return _layer(x, w, k_cache, v_cache, start, cos, sin, eps, norm=False)


@mistake("check_attention_layer", "the caches are unchanged")
def layer_cache_copies(x, w, k_cache, v_cache, start, cos, sin, eps):
    return _layer(x, w, k_cache.clone(), v_cache.clone(), start, cos, sin, eps)


@mistake("check_attention_layer", "keep B from x.shape", kind="overfit")
def layer_batch_of_one(x, w, k_cache, v_cache, start, cos, sin, eps):
    T, D = x.shape[1], cos.shape[-1]
    H, Hkv = w["wq"].shape[0] // D, k_cache.shape[1]
    h = G._rms(x, w["norm"], eps)[0]  # (T, C): the notebook's batch of 1
    q = (h @ w["wq"].T).view(T, H, D).transpose(0, 1)[None]
    k = (h @ w["wk"].T).view(T, Hkv, D).transpose(0, 1)[None]
    v = (h @ w["wv"].T).view(T, Hkv, D).transpose(0, 1)[None]
    q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
    K, V = kv_cache.write_kv(k_cache[:1], v_cache[:1], k, v, start)
    out = torch.cat([G._cached_attention(q[:, :, t:t + 1], K[:, :, :start + t + 1], V[:, :, :start + t + 1])
                     for t in range(T)], 2)
    return x + (out.transpose(1, 2).reshape(1, T, H * D) @ w["wo"].T)


@mistake("check_attention_layer", "leave the inputs as they are", kind="inplace")
def layer_adds_into_x(x, w, k_cache, v_cache, start, cos, sin, eps):
    out = _layer(x, w, k_cache, v_cache, start, cos, sin, eps, residual=False)
    x += out
    return x


@mistake("check_attention_layer", "return the dtype the input has", kind="dtype")
def layer_in_float32(x, w, k_cache, v_cache, start, cos, sin, eps):
    w32 = {k: t.float() for k, t in w.items()}
    kc, vc = k_cache.float(), v_cache.float()
    out = _layer(x.float(), w32, kc, vc, start, cos.float(), sin.float(), eps)
    k_cache.copy_(kc)
    v_cache.copy_(vc)
    return out


# next_token
def _tokens(logits, previous, temperature, top_k, top_p, penalty, u, order=("pen", "k", "t", "p")):
    z = logits.float()[None]
    seen = torch.tensor([list(previous)], dtype=torch.long)
    steps = {"pen": lambda z: generation.repetition_penalty(z, seen, penalty),
             "k": lambda z: z if top_k is None else generation.top_k_filter(z, top_k),
             "t": lambda z: z / temperature, "p": lambda z: generation.top_p_filter(z, top_p)}
    if temperature == 0:
        return int(steps["pen"](z).argmax(-1))
    for step in order:
        z = steps[step](z)
    return generation.sample_from_probs(z.softmax(-1)[0], u)


@mistake("check_next_token", "divide by the temperature before top_p")
def next_top_p_untempered(logits, previous, temperature, top_k, top_p, penalty, u):
    return _tokens(logits, previous, temperature, top_k, top_p, penalty, u, ("pen", "k", "p", "t"))


@mistake("check_next_token", "top-k first, then top-p")
def next_top_p_then_top_k(logits, previous, temperature, top_k, top_p, penalty, u):
    return _tokens(logits, previous, temperature, top_k, top_p, penalty, u, ("pen", "t", "p", "k"))


@mistake("check_next_token", "apply the repetition penalty first, greedy included")
def next_greedy_unpenalised(logits, previous, temperature, top_k, top_p, penalty, u):
    if temperature == 0:
        return int(logits.argmax())
    return _tokens(logits, previous, temperature, top_k, top_p, penalty, u)


@mistake("check_next_token", "penalty when sampling too")
def next_sampling_unpenalised(logits, previous, temperature, top_k, top_p, penalty, u):
    return _tokens(logits, previous, temperature, top_k, top_p, penalty, u, ("k", "t", "p"))


@mistake("check_next_token", "top_k None means no top-k filter", kind="overfit")
def next_top_k_required(logits, previous, temperature, top_k, top_p, penalty, u):
    if temperature == 0:
        return _tokens(logits, previous, temperature, top_k, top_p, penalty, u)
    z = generation.repetition_penalty(logits.float()[None], torch.tensor([list(previous)], dtype=torch.long), penalty)
    z = generation.top_p_filter(generation.top_k_filter(z, top_k) / temperature, top_p)
    return generation.sample_from_probs(z.softmax(-1)[0], u)


@mistake("check_next_token", "leave the inputs as they are", kind="inplace")
def next_divides_in_place(logits, previous, temperature, top_k, top_p, penalty, u):
    if temperature:
        logits /= temperature
    return _tokens(logits, previous, 1.0 if temperature else 0.0, top_k, top_p, penalty, u)


@mistake("check_next_token", "work in float32", kind="dtype")
def next_in_bfloat16(logits, previous, temperature, top_k, top_p, penalty, u):
    z = generation.repetition_penalty(logits[None], torch.tensor([list(previous)], dtype=torch.long), penalty)
    if temperature == 0:
        return int(z.argmax(-1))
    if top_k is not None:
        z = generation.top_k_filter(z, top_k)
    z = generation.top_p_filter(z / temperature, top_p)
    return generation.sample_from_probs(z.softmax(-1)[0], u)


# int4_storage
@mistake("check_int4_storage", "store q + 8")
def int4_unshifted(w, sparsity, group_size):
    codes, scale, minimum = G.reference_int4_storage(w, sparsity, group_size)
    return (codes.to(torch.int16) - 8).to(torch.uint8), scale, minimum


@mistake("check_int4_storage", "minimum = -8 * scale")
def int4_positive_minimum(w, sparsity, group_size):
    codes, scale, _ = G.reference_int4_storage(w, sparsity, group_size)
    return codes, scale, 8 * scale


@mistake("check_int4_storage", "the minimum is not 0")
def int4_zero_minimum(w, sparsity, group_size):
    codes, scale, _ = G.reference_int4_storage(w, sparsity, group_size)
    return codes, scale, torch.zeros_like(scale)


@mistake("check_int4_storage", "rank |w|")
def int4_signed_pruning(w, sparsity, group_size):
    return G._int4_codes(w * magnitude.prune_mask(w, sparsity), group_size)


@mistake("check_int4_storage", "a group that pruning emptied")
def int4_quantize_then_prune(w, sparsity, group_size):
    codes, scale, minimum = G._int4_codes(w, group_size)
    return codes.masked_fill(~magnitude.prune_mask(w.abs(), sparsity), 8), scale, minimum


@mistake("check_int4_storage", "use group_size", kind="overfit")
def int4_groups_of_16_or_32(w, sparsity, group_size):
    """The notebook's group sizes work; any other is taken as 16."""
    if group_size in (16, 32):
        return G.reference_int4_storage(w, sparsity, group_size)
    codes, scale, minimum = G.reference_int4_storage(w, sparsity, 16)
    n = w.shape[1] // group_size
    return codes, scale[:, :n], minimum[:, :n]


@mistake("check_int4_storage", "leave the inputs as they are", kind="inplace")
def int4_prunes_in_place(w, sparsity, group_size):
    w.mul_(magnitude.prune_mask(w.abs(), sparsity))
    return G._int4_codes(w, group_size)


@mistake("check_int4_storage", "return the dtype the input has", kind="dtype")
def int4_scales_in_float32(w, sparsity, group_size):
    return G.reference_int4_storage(w.float(), sparsity, group_size)


# greedy_accept
@mistake("check_greedy_accept", "add the target's own token")
def greedy_no_correction(target, draft):
    return speculative.greedy_accept(target, draft)[:-1] or speculative.greedy_accept(target, draft)


@mistake("check_greedy_accept", "stop at the first disagreement")
def greedy_counts_agreements(target, draft):
    n = sum(d == t for d, t in zip(draft, target))  # how many agree, wherever they are
    return draft[:n] + [target[n]]


@mistake("check_greedy_accept", "is target[n]")
def greedy_last_target(target, draft):
    out = speculative.greedy_accept(target, draft)
    return out[:-1] + [target[-1]]


@mistake("check_greedy_accept", "target[γ]", kind="overfit")
def greedy_three_guesses(target, draft):
    n = 0
    while n < min(len(draft), 3) and draft[n] == target[n]:  # the notebook's examples have at most 3 guesses
        n += 1
    return draft[:n] + [target[n]]


# engine_generate
def _engine(prompt_ids, n, final_norm=True, decode_positions=True, slots=None):
    """A decode loop as the notebook's solution writes it, and (by its switches) the mistakes the check recognises."""
    model = G._smollm2()
    cfg = model.cfg
    S = slots or len(prompt_ids) + n
    caches = [(torch.zeros(1, cfg.n_kv_heads, S, cfg.head_dim), torch.zeros(1, cfg.n_kv_heads, S, cfg.head_dim))
              for _ in model.layers]
    new, start, out = list(prompt_ids), 0, []
    with torch.no_grad():
        for _ in range(n):
            x = model.tok_embeddings.weight[torch.tensor([new])]
            at = start if decode_positions or start == 0 else 0
            cos, sin = rope_cos_sin(torch.arange(at, at + len(new)), cfg.head_dim, cfg.rope_theta)
            cos, sin = torch.cat([cos, cos], -1), torch.cat([sin, sin], -1)
            for layer, (kc, vc) in zip(model.layers, caches):
                a = layer.attention
                w = {"norm": layer.attention_norm.weight, "wq": a.wq.weight, "wk": a.wk.weight, "wv": a.wv.weight,
                     "wo": a.wo.weight}
                x = G.reference_attention_layer(x, w, kc, vc, start, cos, sin, cfg.norm_eps)
                h, f = G._rms(x, layer.ffn_norm.weight, cfg.norm_eps), layer.feed_forward
                x = x + (F.silu(h @ f.w1.weight.T) * (h @ f.w3.weight.T)) @ f.w2.weight.T
            h = G._rms(x[0, -1], model.norm.weight, cfg.norm_eps) if final_norm else x[0, -1]
            nxt = int((h @ model.output.weight.T).argmax())
            start += len(new)
            out.append(nxt)
            new = [nxt]
    return out


def engine_solution(prompt_ids, n):
    """The notebook's solution (per-token cached attention): tests/test_your_engine.py compares it with generate."""
    return _engine(prompt_ids, n)


@mistake("check_engine_generate", "the first token comes from the prefill")
def engine_no_final_norm(prompt_ids, n):
    return _engine(prompt_ids, n, final_norm=False)


@mistake("check_engine_generate", "a decode step is not")
def engine_positions_restart(prompt_ids, n):
    return _engine(prompt_ids, n, decode_positions=False)


@mistake("check_engine_generate", "return only the n new tokens")
def engine_returns_prompt(prompt_ids, n):
    return list(prompt_ids) + G.reference_engine_generate(prompt_ids, n)


@mistake("check_engine_generate", "size each layer's cache", kind="overfit")
def engine_fixed_cache(prompt_ids, n):
    return _engine(prompt_ids, n, slots=32)  # room for the notebook's prompts, not for a long chat
