"""Common mistakes in 13_interview_bank: each catalogued slip must get its own explanation."""
import math

import torch

from llmlab.nn import attention

REFERENCE = {
    "check_perplexity": lambda: math.exp(2.3),
    "check_bpe_merges": lambda: 32000 - 256 - 8,
    "check_score_memory": lambda: 9 * 8192 * 8192 * 4 / 2**30,
    "check_kv_cache": lambda: 2 * 30 * 3 * 64 * 8192 * 2 / 2**20,
    "check_speculative_tokens": lambda: (1 - 0.8**5) / (1 - 0.8),
    "check_int4_memory": lambda: 7e9 * (4 + 32 / 128) / 8 / 1e9,
    "check_pipeline_bubble": lambda: 3 / 15,
    "check_megatron_all_reduce": lambda: "B",
    "check_bf16": lambda: "b",
    "check_softmax": attention.softmax,
}


def softmax_no_max(x, dim=-1):
    e = x.exp()
    return e / e.sum(dim, keepdim=True)


def softmax_torch_nan_rows(x, dim=-1):
    return torch.softmax(x, dim)


MUTANTS = [
    ("check_perplexity", lambda: 2 ** 2.3, "not 2^x"),
    ("check_perplexity", lambda: 10 ** 2.3, "natural logarithm"),
    ("check_bpe_merges", lambda: 32000 - 256, "special tokens take vocabulary slots"),
    ("check_bpe_merges", lambda: 32000, "256 byte tokens are in the vocabulary from the start"),
    ("check_score_memory", lambda: 8192 * 8192 * 4 / 2**30, "Every head"),
    ("check_score_memory", lambda: 9 * 8192 * 8192 * 2 / 2**30, "4 bytes per element"),
    ("check_score_memory", lambda: 3 * 8192 * 8192 * 4 / 2**30, "one T × T block per *query* head"),
    ("check_score_memory", lambda: 9 * 8192 * 8192 * 4, "check the unit"),
    ("check_kv_cache", lambda: 30 * 3 * 64 * 8192 * 2 / 2**20, "keys *and* values"),
    ("check_kv_cache", lambda: 2 * 30 * 9 * 64 * 8192 * 2 / 2**20, "Only the key/value heads"),
    ("check_kv_cache", lambda: 2 * 30 * 3 * 64 * 8192 * 4 / 2**20, "2 bytes per number"),
    ("check_speculative_tokens", lambda: 4 * 0.8, "k · a"),
    ("check_speculative_tokens", lambda: (1 - 0.8**4) / (1 - 0.8), "the target model contributes"),
    ("check_int4_memory", lambda: 7e9 * 4 / 8 / 1e9, "scale and zero point"),
    ("check_int4_memory", lambda: 7e9 * 2 / 1e9, "fp16 model"),
    ("check_pipeline_bubble", lambda: 3 / 12, "not out of m"),
    ("check_pipeline_bubble", lambda: 12 / 15, "busy share"),
    ("check_megatron_all_reduce", lambda: "A", "GELU acts element by element"),
    ("check_megatron_all_reduce", lambda: "C", "summed N times"),
    ("check_megatron_all_reduce", lambda: "D", "first one is unnecessary"),
    ("check_megatron_all_reduce", lambda: "the second", "answer with a letter"),
    ("check_bf16", lambda: "A", "fewer"),
    ("check_bf16", lambda: 3, "Master weights"),
    ("check_softmax", softmax_no_max, "subtract the row maximum"),
    ("check_softmax", softmax_torch_nan_rows, "attend to nothing"),
]
