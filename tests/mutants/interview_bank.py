"""Mistakes in 13_interview_bank: each catalogued slip of the bank gets its own explanation, and an answer that only
knows the bank's own numbers fails on the hidden configurations."""
import math

import torch
import torch.nn.functional as F

from llmlab.grading import interview_bank as G
from llmlab.nn import attention
from tests.mutants import mistake

REFERENCE = {
    "check_perplexity": lambda loss: math.exp(loss),
    "check_bpe_merges": lambda vocab_size, n_special: vocab_size - 256 - n_special,
    "check_score_memory": lambda n_heads, seq_len, b: n_heads * seq_len**2 * b / 2**30,
    "check_kv_cache": lambda layers, kv_heads, head_dim, tokens, b: 2 * layers * kv_heads * head_dim * tokens * b / 2**20,
    "check_speculative_tokens": lambda k, a: k + 1.0 if a == 1 else (1 - a ** (k + 1)) / (1 - a),
    "check_int4_memory": lambda n_params, group_size: n_params * (4 + 32 / group_size) / 8 / 1e9,
    "check_pipeline_bubble": lambda p, m: (p - 1) / (m + p - 1),
    "check_megatron_all_reduce": G._tensor_parallel_mlp,
    "check_bf16": lambda e, m: (2.0 ** (2 - 2 ** (e - 1)), (2 - 2.0**-m) * 2.0 ** (2 ** (e - 1) - 1)),
    "check_softmax": attention.softmax,
}

# the bank's catalogued slips, as functions of the question's numbers
MUTANTS = [
    ("check_perplexity", lambda loss: 2**loss, "not 2^x"),
    ("check_perplexity", lambda loss: 10**loss, "natural logarithm"),
    ("check_bpe_merges", lambda vocab_size, n_special: vocab_size - 256, "special tokens take vocabulary slots"),
    ("check_bpe_merges", lambda vocab_size, n_special: vocab_size, "256 byte tokens are in the vocabulary from the start"),
    ("check_score_memory", lambda h, t, b: t * t * b / 2**30, "Every head"),
    ("check_score_memory", lambda h, t, b: h * t * t * 2 / 2**30, "4 bytes per element"),
    ("check_score_memory", lambda h, t, b: h // 3 * t * t * b / 2**30, "one T × T block per *query* head"),
    ("check_score_memory", lambda h, t, b: h * t * t * b, "check the unit"),
    ("check_kv_cache", lambda L, kv, d, t, b: L * kv * d * t * b / 2**20, "keys *and* values"),
    ("check_kv_cache", lambda L, kv, d, t, b: 2 * L * 3 * kv * d * t * b / 2**20, "Only the key/value heads"),
    ("check_kv_cache", lambda L, kv, d, t, b: 2 * L * kv * d * t * 4 / 2**20, "2 bytes per number"),
    ("check_speculative_tokens", lambda k, a: k * a, "k · a"),
    ("check_speculative_tokens", lambda k, a: (1 - a**k) / (1 - a), "the target model contributes"),
    ("check_int4_memory", lambda n, g: n * 4 / 8 / 1e9, "scale and zero point"),
    ("check_int4_memory", lambda n, g: n * 2 / 1e9, "fp16 model"),
    ("check_pipeline_bubble", lambda p, m: (p - 1) / m, "not out of m"),
    ("check_pipeline_bubble", lambda p, m: m / (m + p - 1), "busy share"),
]


# ---------------------------------------------------------------- the bank's own numbers only

@mistake("check_perplexity", "on a hidden case", kind="overfit")
def perplexity_typed(loss):
    return 9.97  # within the bank's ±0.5% of e^2.3


@mistake("check_bpe_merges", "on a hidden case", kind="overfit")
def merges_for_32k(vocab_size, n_special):
    return 31736


@mistake("check_score_memory", "on a hidden case", kind="overfit")
def score_memory_smollm2(n_heads, seq_len, bytes_per_number):
    return 9 * seq_len * seq_len * 4 / 2**30  # SmolLM2's 9 heads and float32, whatever was asked


@mistake("check_kv_cache", "on a hidden case", kind="overfit")
def kv_cache_rounded(n_layers, n_kv_heads, head_dim, tokens, bytes_per_number):
    return 2 * n_layers * n_kv_heads * head_dim * tokens * 2 / 2**20  # bfloat16 assumed, whatever was asked


@mistake("check_speculative_tokens", "every draft is accepted", kind="overfit")
def speculative_no_edge(k, a):
    return (1 - a ** (k + 1)) / (1 - a)


@mistake("check_int4_memory", "on a hidden case", kind="overfit")
def int4_group_128(n_params, group_size):
    return n_params * 4.25 / 8 / 1e9


@mistake("check_pipeline_bubble", "on a hidden case", kind="overfit")
def bubble_four_stages(p, m):
    return 3 / (m + 3)


@mistake("check_megatron_all_reduce", "on a hidden case (3 ranks)", kind="overfit")
def mlp_two_ranks(x, w1_shards, b1_shards, w2_shards, b2):
    h0, h1 = (F.gelu(x @ w.T + b) for w, b in zip(w1_shards[:2], b1_shards[:2]))
    return h0 @ w2_shards[0].T + h1 @ w2_shards[1].T + b2


@mistake("check_bf16", "on a hidden case", kind="overfit")
def range_by_name(exponent_bits, mantissa_bits):
    known = {(8, 7): torch.bfloat16, (5, 10): torch.float16}
    info = torch.finfo(known.get((exponent_bits, mantissa_bits), torch.float16))
    return info.tiny, info.max


@mistake("check_softmax", "each row's own maximum", kind="overfit")
def softmax_global_max(x, dim=-1):
    e = (x - x.max()).exp()
    s = e.sum(dim, keepdim=True)
    return e / s.masked_fill(s == 0, 1)


# ---------------------------------------------------------------- the two computed "where/why" questions

@mistake("check_megatron_all_reduce", "summed N times")
def mlp_bias_on_every_rank(x, w1_shards, b1_shards, w2_shards, b2):
    return sum(F.gelu(x @ w1.T + b1) @ w2.T + b2 for w1, b1, w2 in zip(w1_shards, b1_shards, w2_shards))


@mistake("check_megatron_all_reduce", "does not average")
def mlp_mean_reduce(x, w1_shards, b1_shards, w2_shards, b2):
    parts = [F.gelu(x @ w1.T + b1) @ w2.T for w1, b1, w2 in zip(w1_shards, b1_shards, w2_shards)]
    return sum(parts) / len(parts) + b2


@mistake("check_megatron_all_reduce", "leave the inputs as they are", kind="inplace")
def mlp_unsqueeze_bias_in_place(x, w1_shards, b1_shards, w2_shards, b2):
    parts = [F.gelu(x @ w1.T + b1.unsqueeze_(0)) @ w2.T for w1, b1, w2 in zip(w1_shards, b1_shards, w2_shards)]
    return sum(parts) + b2


@mistake("check_megatron_all_reduce", "dtype", kind="dtype")
def mlp_float32(x, w1_shards, b1_shards, w2_shards, b2):
    return G._tensor_parallel_mlp(x.float(), [w.float() for w in w1_shards], [b.float() for b in b1_shards],
                                  [w.float() for w in w2_shards], b2.float())


@mistake("check_bf16", "1 − bias")
def range_tiny_off_by_one(exponent_bits, mantissa_bits):
    bias = 2 ** (exponent_bits - 1) - 1
    return 2.0**-bias, (2 - 2.0**-mantissa_bits) * 2.0**bias


@mistake("check_bf16", "kept for inf")
def range_top_exponent(exponent_bits, mantissa_bits):
    bias = 2 ** (exponent_bits - 1) - 1
    return 2.0 ** (1 - bias), (2 - 2.0**-mantissa_bits) * 2.0 ** (bias + 1)


@mistake("check_softmax", "subtract the row maximum")
def softmax_no_max(x, dim=-1):
    e = x.exp()
    return e / e.sum(dim, keepdim=True)


@mistake("check_softmax", "attend to nothing")
def softmax_torch_nan_rows(x, dim=-1):
    return torch.softmax(x, dim)


@mistake("check_softmax", "leave the inputs as they are", kind="inplace")
def softmax_in_place(x, dim=-1):
    x -= x.amax(dim, keepdim=True).nan_to_num(0.0, 0.0, 0.0)
    e = x.exp_()
    s = e.sum(dim, keepdim=True)
    return e / s.masked_fill(s == 0, 1)


@mistake("check_softmax", "dtype", kind="dtype")
def softmax_float32(x, dim=-1):
    return attention.softmax(x.float(), dim)
