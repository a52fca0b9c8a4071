"""Common mistakes in 08_fast_inference."""
import math
import statistics

import torch

from llmlab.inference import early_exit, generation, long_context, speculative
from llmlab.metrics import speed
from llmlab.nn import attention as A
from llmlab.nn import kv_cache
from tests.mutants import mistake


def cached_attention(q, k, v):
    rep = q.shape[1] // k.shape[1]
    return A.scaled_dot_product_attention(q, A.repeat_kv(k, rep), A.repeat_kv(v, rep))[0]


def bytes_per_token(cfg, weight_bytes, context_len, kv_bytes):
    return speed.decode_bytes_per_token(weight_bytes, cfg.n_layers, cfg.n_kv_heads, cfg.head_dim, context_len, kv_bytes)


REFERENCE = {
    "check_speed_metrics": speed.speed_metrics,
    "check_choose_exit": early_exit.choose_exit,
    "check_sliding_window_mask": long_context.sliding_window_mask,
    "check_write_kv": kv_cache.write_kv,
    "check_cached_attention": cached_attention,
    "check_left_pad": generation.left_pad,
    "check_top_k_filter": generation.top_k_filter,
    "check_top_p_filter": generation.top_p_filter,
    "check_repetition_penalty": generation.repetition_penalty,
    "check_speculative_accept": speculative.speculative_accept,
    "check_expected_tokens": speculative.expected_tokens_per_round,
    "check_prompt_lookup": speculative.prompt_lookup,
    "check_bytes_per_token": bytes_per_token,
}


# speed_metrics
def _steps(token_times):
    return [b - a for a, b in zip(token_times, token_times[1:])]


@mistake("check_speed_metrics", "subtract t_0")
def speed_ttft_absolute(t_start, token_times):
    steps = _steps(token_times)
    return token_times[0], statistics.median(steps) if steps else math.nan, len(token_times) / (token_times[-1] - t_start)


@mistake("check_speed_metrics", "not over a decode step")
def speed_ttft_first_step(t_start, token_times):
    steps = _steps(token_times)
    ttft = steps[0] if steps else token_times[0] - t_start  # "the first token" read as the first decode step
    return ttft, statistics.median(steps) if steps else math.nan, len(token_times) / (token_times[-1] - t_start)


@mistake("check_speed_metrics", "n / (t_n - t_0), the prefill included")
def speed_throughput_after_first(t_start, token_times):
    ttft, latency, _ = speed.speed_metrics(t_start, token_times)
    return ttft, latency, len(token_times) / (token_times[-1] - token_times[0])


@mistake("check_speed_metrics", "not their mean")
def speed_mean_latency(t_start, token_times):
    ttft, _, throughput = speed.speed_metrics(t_start, token_times)
    steps = _steps(token_times)
    return ttft, sum(steps) / len(steps) if steps else math.nan, throughput


@mistake("check_speed_metrics", "the per-token latencies are the decode steps")
def speed_latency_with_first(t_start, token_times):
    ttft, _, throughput = speed.speed_metrics(t_start, token_times)
    return ttft, statistics.median(_steps([t_start, *token_times])), throughput


@mistake("check_speed_metrics", "float('nan')")
def speed_one_token_zero(t_start, token_times):
    ttft, latency, throughput = speed.speed_metrics(t_start, token_times)
    return ttft, 0.0 if len(token_times) == 1 else latency, throughput


@mistake("check_speed_metrics", "leave the inputs as they are", kind="inplace")
def speed_prepends_t_start(t_start, token_times):
    token_times.insert(0, t_start)  # [t_0, t_1, ..., t_n], then the formulas on one list
    steps = _steps(token_times[1:])
    return (token_times[1] - token_times[0], statistics.median(steps) if steps else math.nan,
            (len(token_times) - 1) / (token_times[-1] - token_times[0]))


# choose_exit
@mistake("check_choose_exit", "argmax over an all-False column gives 0")
def exit_no_fallback(preds, conf, threshold):
    first = (conf >= threshold).int().argmax(0)
    return first, preds.gather(0, first[None])[0]


@mistake("check_choose_exit", "conf >= threshold")
def exit_strictly_above(preds, conf, threshold):
    ok = conf > threshold
    ok[-1] = True
    first = ok.int().argmax(0)
    return first, preds.gather(0, first[None])[0]


@mistake("check_choose_exit", "not the most confident one")
def exit_most_confident(preds, conf, threshold):
    first = torch.where((conf >= threshold).any(0), conf.argmax(0), conf.shape[0] - 1)
    return first, preds.gather(0, first[None])[0]


@mistake("check_choose_exit", "not the last one")
def exit_last_confident(preds, conf, threshold):
    ok = conf >= threshold
    last = conf.shape[0] - 1 - ok.flip(0).int().argmax(0)  # the deepest confident exit
    first = torch.where(ok.any(0), last, conf.shape[0] - 1)
    return first, preds.gather(0, first[None])[0]


@mistake("check_choose_exit", "in their own dtype")
def exit_compares_in_half(preds, conf, threshold):
    return early_exit.choose_exit(preds, conf.half(), threshold)  # "16 bits are plenty for a probability"


@mistake("check_choose_exit", "from 0 to E - 1")
def exit_layer_count(preds, conf, threshold):
    first, token = early_exit.choose_exit(preds, conf, threshold)
    return first + 1, token


# sliding_window_mask
def _ij(T):
    return torch.arange(T)[:, None], torch.arange(T)[None, :]


@mistake("check_sliding_window_mask", "(not window + 1)")
def window_one_too_many(T, window, sink):
    i, j = _ij(T)
    return (j <= i) & ((i - j <= window) | (j < sink))


@mistake("check_sliding_window_mask", "stay visible to every later query")
def window_no_sinks(T, window, sink):
    i, j = _ij(T)
    return (j <= i) & (i - j < window)


@mistake("check_sliding_window_mask", "a query never sees a later key (j <= i)")
def window_not_causal(T, window, sink):
    i, j = _ij(T)
    return ((i - j).abs() < window) | (j < sink)


@mistake("check_sliding_window_mask", "the sinks included")
def window_sinks_not_causal(T, window, sink):
    mask = long_context.sliding_window_mask(T, window, 0)
    mask[:, :sink] = True
    return mask


# write_kv
@mistake("check_write_kv", "wrong position")
def kv_off_by_one(k_cache, v_cache, k, v, start):
    T = k.shape[2]
    k_cache[:, :, start + 1:start + 1 + T] = k
    v_cache[:, :, start + 1:start + 1 + T] = v
    return k_cache[:, :, :start + T], v_cache[:, :, :start + T]


@mistake("check_write_kv", "only the filled slots")
def kv_whole_cache(k_cache, v_cache, k, v, start):
    kv_cache.write_kv(k_cache, v_cache, k, v, start)
    return k_cache, v_cache


@mistake("check_write_kv", "in place")
def kv_cat_not_in_place(k_cache, v_cache, k, v, start):
    return torch.cat([k_cache[:, :, :start], k], 2), torch.cat([v_cache[:, :, :start], v], 2)


@mistake("check_write_kv", "return views")
def kv_returns_copies(k_cache, v_cache, k, v, start):
    k_all, v_all = kv_cache.write_kv(k_cache, v_cache, k, v, start)
    return k_all.clone(), v_all.clone()


# cached_attention
@mistake("check_cached_attention", "GQA grouping")
def attn_tiled_repeat(q, k, v):
    rep = q.shape[1] // k.shape[1]
    return A.scaled_dot_product_attention(q, k.repeat(1, rep, 1, 1), v.repeat(1, rep, 1, 1))[0]


@mistake("check_cached_attention", "1 / sqrt(D)")
def attn_unscaled(q, k, v):
    rep = q.shape[1] // k.shape[1]
    k, v = A.repeat_kv(k, rep), A.repeat_kv(v, rep)
    return torch.softmax(q @ k.transpose(-1, -2), -1) @ v


@mistake("check_cached_attention", "no causal mask for one query")
def attn_causal_tril(q, k, v):
    rep = q.shape[1] // k.shape[1]
    mask = torch.ones(1, k.shape[2], dtype=torch.bool).tril()
    return A.scaled_dot_product_attention(q, A.repeat_kv(k, rep), A.repeat_kv(v, rep), mask)[0]


# left_pad
@mistake("check_left_pad", "padding goes on the left")
def pad_right(prompts, pad_id):
    T = max(map(len, prompts))
    return (torch.tensor([p + [pad_id] * (T - len(p)) for p in prompts]),
            torch.tensor([[1] * len(p) + [0] * (T - len(p)) for p in prompts]))


@mistake("check_left_pad", "1 marks real tokens")
def pad_mask_inverted(prompts, pad_id):
    ids, mask = generation.left_pad(prompts, pad_id)
    return ids, 1 - mask


@mistake("check_left_pad", "int64 ones and zeros", kind="dtype")
def pad_bool_mask(prompts, pad_id):
    ids, mask = generation.left_pad(prompts, pad_id)
    return ids, mask.bool()


# top_k
@mistake("check_top_k_filter", "k + 1")
def top_k_plus_one(logits, k):
    return generation.top_k_filter(logits, k + 1)


@mistake("check_top_k_filter", "-inf")
def top_k_zero(logits, k):
    kth = logits.topk(k, -1).values[..., -1:]
    return logits.masked_fill(logits < kth, 0.0)


# top_p
@mistake("check_top_p_filter", "keep the token that crosses")
def top_p_drops_crossing(logits, p):
    s, order = logits.sort(-1, descending=True)
    drop = s.softmax(-1).cumsum(-1) > p
    return logits.masked_fill(drop.scatter(-1, order, drop), float("-inf"))


@mistake("check_top_p_filter", "scatter the keep/drop decision back")
def top_p_unsorted(logits, p):
    probs = logits.softmax(-1)
    drop = probs.cumsum(-1) - probs >= p
    return logits.masked_fill(drop, float("-inf"))


# repetition_penalty
@mistake("check_repetition_penalty", "multiplied by the penalty")
def penalty_always_divide(logits, previous, penalty):
    return logits.scatter(-1, previous, logits.gather(-1, previous) / penalty)


@mistake("check_repetition_penalty", "once")
def penalty_per_occurrence(logits, previous, penalty):
    out = logits.clone()
    for b in range(logits.shape[0]):
        for t in previous[b].tolist():
            z = out[b, t]
            out[b, t] = z / penalty if z > 0 else z * penalty
    return out


# speculative_accept
@mistake("check_speculative_accept", "the last one too")
def accept_last_unverified(p, q, draft, u, v):
    out = []
    for i, d in enumerate(draft.tolist()):
        if i == len(draft) - 1 or u[i] < min(1.0, (p[i, d] / q[i, d]).item()):
            out.append(d)
            continue
        r = (p[i] - q[i]).clamp(min=0)
        return out + [generation.sample_from_probs(r / r.sum(), v)]
    return out + [generation.sample_from_probs(p[-1], v)]


@mistake("check_speculative_accept", "residual")
def accept_resample_from_p(p, q, draft, u, v):
    out = []
    for i, d in enumerate(draft.tolist()):
        if u[i] < min(1.0, (p[i, d] / q[i, d]).item()):
            out.append(d)
            continue
        return out + [generation.sample_from_probs(p[i], v)]
    return out + [generation.sample_from_probs(p[-1], v)]


@mistake("check_speculative_accept", "bonus token")
def accept_no_bonus(p, q, draft, u, v):
    out = speculative.speculative_accept(p, q, draft, u, v)
    return out[:len(draft)] if len(out) == len(draft) + 1 else out


@mistake("check_speculative_accept", "even when p < q")
def accept_if_p_ge_q(p, q, draft, u, v):
    out = []
    for i, d in enumerate(draft.tolist()):
        if p[i, d] >= q[i, d]:
            out.append(d)
            continue
        r = (p[i] - q[i]).clamp(min=0)
        return out + [generation.sample_from_probs(r / r.sum(), v)]
    return out + [generation.sample_from_probs(p[-1], v)]


# expected_tokens
@mistake("check_expected_tokens", "α^(γ+1)")
def expected_alpha_pow_gamma(alpha, gamma):
    return (1 - alpha ** gamma) / (1 - alpha)


@mistake("check_expected_tokens", "α = 1 is a limit")
def expected_no_limit(alpha, gamma):
    return (1 - alpha ** (gamma + 1)) / (1 - alpha)


# prompt_lookup
@mistake("check_prompt_lookup", "latest")
def lookup_earliest(tokens, gamma, max_ngram):
    for n in range(min(max_ngram, len(tokens) - 1), 0, -1):
        tail = tokens[-n:]
        for s in range(len(tokens) - n):
            if tokens[s:s + n] == tail:
                return tokens[s + n:s + n + gamma]
    return []


@mistake("check_prompt_lookup", "excluding the tail itself")
def lookup_matches_itself(tokens, gamma, max_ngram):
    n = min(max_ngram, len(tokens))
    for s in range(len(tokens) - n, -1, -1):
        if tokens[s:s + n] == tokens[-n:]:
            return tokens[s + n:s + n + gamma]
    return []


@mistake("check_prompt_lookup", "longest n-gram first")
def lookup_shortest_first(tokens, gamma, max_ngram):
    for n in range(1, min(max_ngram, len(tokens) - 1) + 1):
        got = speculative.prompt_lookup(tokens, gamma, n) if n == 1 else []
        if got:
            return got
    return speculative.prompt_lookup(tokens, gamma, max_ngram)


# bytes_per_token
@mistake("check_bytes_per_token", "KV cache is read")
def bytes_no_cache(cfg, weight_bytes, context_len, kv_bytes):
    return weight_bytes


@mistake("check_bytes_per_token", "n_kv_heads")
def bytes_all_heads(cfg, weight_bytes, context_len, kv_bytes):
    return weight_bytes + 2 * cfg.n_layers * cfg.n_heads * cfg.head_dim * context_len * kv_bytes


@mistake("check_bytes_per_token", "factor 2")
def bytes_keys_only(cfg, weight_bytes, context_len, kv_bytes):
    return weight_bytes + cfg.n_layers * cfg.n_kv_heads * cfg.head_dim * context_len * kv_bytes


# ---------------------------------------------------------------- right on the example, wrong in general

@mistake("check_speed_metrics", "mean of the two middle values", kind="overfit")
def speed_upper_middle(t_start, token_times):
    ttft, _, throughput = speed.speed_metrics(t_start, token_times)
    steps = sorted(_steps(token_times))
    return ttft, steps[len(steps) // 2] if steps else math.nan, throughput  # the middle one: right for an odd count


@mistake("check_choose_exit", "row E - 1 (preds[-1])", kind="overfit")
def exit_three_exits(preds, conf, threshold):
    ok = conf >= threshold
    ok[min(2, len(ok) - 1)] = True  # the example's last exit
    first = ok.int().argmax(0)
    return first, preds.gather(0, first[None])[0]


@mistake("check_sliding_window_mask", "the queries among the sinks too", kind="overfit")
def window_sinks_from_row_sink(T, window, sink):
    mask = long_context.sliding_window_mask(T, window, 0)
    mask[sink:, :sink] = True  # right while sink <= window: the queries before the sinks' end see them anyway
    return mask


@mistake("check_write_kv", "not a loop over a fixed batch size", kind="overfit")
def kv_batch_of_two(k_cache, v_cache, k, v, start):
    end = start + k.shape[2]
    for b in range(2):  # the example's batch
        k_cache[b, :, start:end] = k[b]
        v_cache[b, :, start:end] = v[b]
    return k_cache[:, :, :end], v_cache[:, :, :end]


@mistake("check_cached_attention", "compute the ratio from the shapes", kind="overfit")
def attn_ratio_three(q, k, v):
    k, v = k.repeat_interleave(3, dim=1), v.repeat_interleave(3, dim=1)  # 6 query heads / 2 KV heads
    return torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), -1) @ v


@mistake("check_left_pad", "not from ids != pad_id", kind="overfit")
def pad_mask_from_ids(prompts, pad_id):
    T = max(map(len, prompts))
    ids = torch.tensor([[pad_id] * (T - len(p)) + p for p in prompts])
    return ids, (ids != pad_id).long()


@mistake("check_top_k_filter", "k may exceed the vocabulary size", kind="overfit")
def top_k_no_clamp(logits, k):
    kth = logits.topk(k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


@mistake("check_top_k_filter", "do not keep exactly k positions", kind="overfit")
def top_k_exactly_k(logits, k):
    idx = logits.topk(min(k, logits.shape[-1]), dim=-1).indices
    return torch.full_like(logits, float("-inf")).scatter(-1, idx, logits.gather(-1, idx))


@mistake("check_top_p_filter", "reaches p (>= p)", kind="overfit")
def top_p_strictly_above(logits, p):
    s, order = logits.sort(-1, descending=True)
    probs = s.softmax(-1)
    drop = probs.cumsum(-1) - probs > p
    return logits.masked_fill(drop.scatter(-1, order, drop), float("-inf"))


@mistake("check_top_p_filter", "along the last dim", kind="overfit")
def top_p_dim_one(logits, p):
    s, order = logits.sort(-1, descending=True)
    probs = s.softmax(-1)
    drop = probs.cumsum(-1) - probs >= p
    return logits.masked_fill(drop.scatter(1, order, drop), float("-inf"))


@mistake("check_repetition_penalty", "whatever the penalty", kind="overfit")
def penalty_always_lower(logits, previous, penalty):
    seen = logits.gather(-1, previous)
    return logits.scatter(-1, previous, torch.minimum(seen / penalty, seen * penalty))


@mistake("check_speculative_accept", "not a fixed number", kind="overfit")
def accept_bonus_row_two(p, q, draft, u, v):
    out = speculative.speculative_accept(p, q, draft, u, v)
    if len(out) == len(draft) + 1:  # all accepted: the bonus from p[2], the example's last row
        out[-1] = generation.sample_from_probs(p[2] / p[2].sum(), v)
    return out


@mistake("check_speculative_accept", "strictly", kind="overfit")
def accept_at_equality(p, q, draft, u, v):
    out = []
    for i, d in enumerate(draft.tolist()):
        if u[i] <= min(1.0, (p[i, d] / q[i, d]).item()):
            out.append(d)
            continue
        r = (p[i] - q[i]).clamp(min=0)
        return out + [generation.sample_from_probs(r / r.sum(), v)]
    return out + [generation.sample_from_probs(p[-1], v)]


def _draw_float32(probs, v):
    return int(torch.searchsorted(probs.cumsum(0), torch.tensor([v]), right=True))


@mistake("check_speculative_accept", "a hair below v", kind="overfit")
def accept_own_float32_cdf(p, q, draft, u, v):
    out = []
    for i, d in enumerate(draft.tolist()):
        if u[i] < min(1.0, (p[i, d] / q[i, d]).item()):
            out.append(d)
            continue
        r = (p[i] - q[i]).clamp(min=0)
        return out + [_draw_float32(r / r.sum(), v)]
    return out + [_draw_float32(p[-1] / p[-1].sum(), v)]


@mistake("check_expected_tokens", "α = 1 is a limit", kind="overfit")
def expected_limit_typed(alpha, gamma):
    if alpha == 1:
        return 4.0  # the γ + 1 of the example
    return (1 - alpha ** (gamma + 1)) / (1 - alpha)


@mistake("check_prompt_lookup", "overlap the tail", kind="overfit")
def lookup_no_overlap(tokens, gamma, max_ngram):
    for n in range(max_ngram, 0, -1):
        tail, text = tokens[-n:], tokens[:-n]
        for s in range(len(text) - n, -1, -1):
            if text[s:s + n] == tail:
                return tokens[s + n:s + n + gamma]
    return []


@mistake("check_bytes_per_token", "from cfg", kind="overfit")
def bytes_ratio_four(cfg, weight_bytes, context_len, kv_bytes):
    return weight_bytes + 2 * cfg.n_layers * (cfg.dim // 4) * context_len * kv_bytes  # n_kv_heads / n_heads = 2 / 8


# ---------------------------------------------------------------- changing the caller's inputs (or the cache where it should not)

@mistake("check_write_kv", "leave every other slot as it is", kind="inplace")
def kv_clears_at_zero(k_cache, v_cache, k, v, start):
    if start == 0:  # a new text: wipe the old one
        k_cache.zero_()
        v_cache.zero_()
    return kv_cache.write_kv(k_cache, v_cache, k, v, start)


@mistake("check_cached_attention", "leave the inputs as they are", kind="inplace")
def attn_scale_q_in_place(q, k, v):
    q /= math.sqrt(q.shape[-1])
    rep = q.shape[1] // k.shape[1]
    return torch.softmax(q @ A.repeat_kv(k, rep).transpose(-2, -1), -1) @ A.repeat_kv(v, rep)


@mistake("check_left_pad", "leave the inputs as they are", kind="inplace")
def pad_prompts_in_place(prompts, pad_id):
    T = max(map(len, prompts))
    mask = [[0] * (T - len(p)) + [1] * len(p) for p in prompts]
    for p in prompts:
        p[:0] = [pad_id] * (T - len(p))
    return torch.tensor(prompts), torch.tensor(mask)


@mistake("check_top_k_filter", "leave the inputs as they are", kind="inplace")
def top_k_fill_in_place(logits, k):
    kth = logits.topk(min(k, logits.shape[-1]), dim=-1).values[..., -1:]
    logits[logits < kth] = float("-inf")
    return logits


@mistake("check_top_p_filter", "leave the inputs as they are", kind="inplace")
def top_p_fill_in_place(logits, p):
    s, order = logits.sort(-1, descending=True)
    probs = s.softmax(-1)
    drop = probs.cumsum(-1) - probs >= p
    return logits.masked_fill_(drop.scatter(-1, order, drop), float("-inf"))


@mistake("check_repetition_penalty", "leave the inputs as they are", kind="inplace")
def penalty_scatter_in_place(logits, previous, penalty):
    seen = logits.gather(-1, previous)
    return logits.scatter_(-1, previous, torch.where(seen > 0, seen / penalty, seen * penalty))


@mistake("check_speculative_accept", "leave the inputs as they are", kind="inplace")
def accept_residual_in_place(p, q, draft, u, v):
    out = []
    for i, d in enumerate(draft.tolist()):
        if u[i] < min(1.0, (p[i, d] / q[i, d]).item()):
            out.append(d)
            continue
        p[i] -= q[i]
        p[i].clamp_(min=0)
        return out + [generation.sample_from_probs(p[i] / p[i].sum(), v)]
    return out + [generation.sample_from_probs(p[-1], v)]


@mistake("check_choose_exit", "leave the inputs as they are", kind="inplace")
def exit_forces_last_in_conf(preds, conf, threshold):
    conf[-1] = math.inf  # the full model always answers
    first = (conf >= threshold).int().argmax(0)
    return first, preds.gather(0, first[None])[0]


# ---------------------------------------------------------------- the input's dtype lost

@mistake("check_choose_exit", "torch.zeros(T) is float32", kind="dtype")
def exit_float_indices(preds, conf, threshold):
    E, T = conf.shape
    exits, tokens = torch.zeros(T), torch.zeros_like(preds[0])
    for t in range(T):
        e = next((e for e in range(E) if conf[e, t] >= threshold), E - 1)
        exits[t], tokens[t] = e, preds[e, t]
    return exits, tokens


@mistake("check_choose_exit", "do not build a new tensor", kind="dtype")
def exit_tokens_as_long(preds, conf, threshold):
    first, _ = early_exit.choose_exit(preds, conf, threshold)
    return first, torch.tensor([int(preds[e, t]) for t, e in enumerate(first.tolist())])


@mistake("check_sliding_window_mask", "not 1.0/0.0", kind="dtype")
def window_float_mask(T, window, sink):
    return long_context.sliding_window_mask(T, window, sink).float()


@mistake("check_write_kv", "dtype", kind="dtype")
def kv_in_the_keys_dtype(k_cache, v_cache, k, v, start):
    k_all, v_all = kv_cache.write_kv(k_cache, v_cache, k, v, start)
    return k_all.to(k.dtype), v_all.to(v.dtype)  # a view while the dtypes agree, a float32 copy of a bfloat16 cache


@mistake("check_write_kv", "copies of the cache")
def kv_cat_then_copy(k_cache, v_cache, k, v, start):
    end = start + k.shape[2]
    new_k = torch.cat([k_cache[:, :, :start], k, k_cache[:, :, end:]], 2)
    new_v = torch.cat([v_cache[:, :, :start], v, v_cache[:, :, end:]], 2)
    k_cache.copy_(new_k)
    v_cache.copy_(new_v)
    return new_k[:, :, :end], new_v[:, :, :end]


@mistake("check_cached_attention", "dtype", kind="dtype")
def attn_float32(q, k, v):
    return cached_attention(q.float(), k.float(), v.float())


@mistake("check_top_k_filter", "dtype", kind="dtype")
def top_k_float32(logits, k):
    logits = logits.float()
    kth = logits.topk(min(k, logits.shape[-1]), dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


@mistake("check_top_p_filter", "dtype", kind="dtype")
def top_p_float32(logits, p):
    return generation.top_p_filter(logits.float(), p)


@mistake("check_repetition_penalty", "dtype", kind="dtype")
def penalty_float32_factor(logits, previous, penalty):
    factor = torch.where(logits > 0, 1 / penalty, penalty)
    return logits * torch.ones(logits.shape).scatter(-1, previous, factor.gather(-1, previous))


@mistake("check_speculative_accept", "use .tolist() or int(...)", kind="dtype")
def accept_tensor_tokens(p, q, draft, u, v):
    out = []
    for i, d in enumerate(draft):  # d is a 0-d tensor
        if u[i] < min(1.0, (p[i, d] / q[i, d]).item()):
            out.append(d)
            continue
        r = (p[i] - q[i]).clamp(min=0)
        return out + [generation.sample_from_probs(r / r.sum(), v)]
    return out + [generation.sample_from_probs(p[-1], v)]


@mistake("check_speculative_accept", "not |p - q|")
def accept_abs_residual(p, q, draft, u, v):
    out = []
    for i, d in enumerate(draft.tolist()):
        if u[i] < min(1.0, (p[i, d] / q[i, d]).item()):
            out.append(d)
            continue
        residual = (p[i] - q[i]).abs()
        return out + [speculative.sample_from_probs(residual / residual.sum(), v)]
    return out + [speculative.sample_from_probs(p[len(out)], v)]


@mistake("check_left_pad", "token ids are int64")
def left_pad_int32(prompts, pad_id):
    ids, mask = generation.left_pad(prompts, pad_id)
    return ids.int(), mask
