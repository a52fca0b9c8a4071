"""Checks for notebook 13_interview_bank: each graded item is a question of the bank (``llmlab.interview``)
turned into a function of the question's numbers, e.g. ``kv_cache(n_layers, n_kv_heads, head_dim, tokens,
bytes_per_number)``. The check first asks it the bank's own question: a wrong answer gets the explanation of that
very mistake (the catalogued numeric slip's, or the option's). Then it asks hidden configurations, so neither the
bank's stored answer nor one typed constant earns the point. The code drill is graded by the course's own check."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from llmlab import interview
from llmlab.grading.core import Case, Check, Draw, exercise
from llmlab.parallel.pipeline import bubble_fraction
from llmlab.inference.speculative import expected_tokens_per_round

_EXACT = {"rtol": 1e-9, "atol": 0.0}  # a formula, not an estimate: a rounded constant must not pass


def _ask(c: Check, qid: str, *question: float) -> None:
    """The learner's function on the numbers of bank question ``qid``, judged as the bank judges an answer."""
    q = interview.question(qid)
    value = c.number(c.call(*question), f"your answer to {qid}")
    verdict = interview.evaluate(q, value, "en")
    c.expect(verdict.correct, f"{qid}: {value!r} is not the answer", verdict.message)


def _configs(d: Draw, n: int, draw) -> list[Case]:
    return [Case("another configuration", *draw()) for _ in range(n)]


def _perplexity(loss_nats: float) -> float:
    return math.exp(loss_nats)


@exercise("13.perplexity", reference=_perplexity, **_EXACT,
          cases=lambda d: _configs(d, 3, lambda: (round(d.float(0.1, 6.0), 3),)) + [Case("a loss of 0", 0.0)])
def check_perplexity(c: Check) -> None:
    _ask(c, "lm-901", 2.3)


def _bpe_merges(vocab_size: int, n_special: int) -> int:
    return vocab_size - 256 - n_special


@exercise("13.bpe_merges", reference=_bpe_merges,
          cases=lambda d: _configs(d, 3, lambda: (d.choice([4096, 49152, 50257, 151936]), d.int(0, 20))))
def check_bpe_merges(c: Check) -> None:
    _ask(c, "tok-901", 32000, 8)


def _score_memory(n_heads: int, seq_len: int, bytes_per_number: int) -> float:
    return n_heads * seq_len * seq_len * bytes_per_number / 2**30


@exercise("13.score_memory", reference=_score_memory, **_EXACT,
          cases=lambda d: _configs(d, 3, lambda: (d.int(1, 32), d.choice([1024, 4096, 32768]), d.choice([2, 4]))))
def check_score_memory(c: Check) -> None:
    _ask(c, "attn-901", 9, 8192, 4)


def _kv_cache(n_layers: int, n_kv_heads: int, head_dim: int, tokens: int, bytes_per_number: int) -> float:
    return 2 * n_layers * n_kv_heads * head_dim * tokens * bytes_per_number / 2**20


@exercise("13.kv_cache", reference=_kv_cache, **_EXACT,
          cases=lambda d: _configs(d, 3, lambda: (d.int(2, 80), d.int(1, 8), d.choice([64, 128]),
                                                  d.choice([512, 4096, 131072]), d.choice([1, 2, 4]))))
def check_kv_cache(c: Check) -> None:
    _ask(c, "inf-901", 30, 3, 64, 8192, 2)


@exercise("13.speculative_tokens", reference=lambda k, a: expected_tokens_per_round(a, k), **_EXACT,
          cases=lambda d: _configs(d, 3, lambda: (d.int(1, 8), round(d.float(0.05, 0.95), 2))) +
          [Case("every draft accepted (a = 1)", 5, 1.0, hint="with a = 1 every draft is accepted: k + 1 tokens "
                "(the formula's 0/0 needs that case on its own)")])
def check_speculative_tokens(c: Check) -> None:
    _ask(c, "inf-902", 4, 0.8)


def _int4_memory(n_params: float, group_size: int) -> float:
    return n_params * (4 + 2 * 16 / group_size) / 8 / 1e9


@exercise("13.int4_memory", reference=_int4_memory, **_EXACT,
          cases=lambda d: _configs(d, 3, lambda: (d.choice([1.35e8, 1.3e10, 7.0e10]), d.choice([32, 64, 256]))))
def check_int4_memory(c: Check) -> None:
    _ask(c, "quant-901", 7e9, 128)


@exercise("13.pipeline_bubble", reference=bubble_fraction, **_EXACT,
          cases=lambda d: _configs(d, 3, lambda: (d.int(2, 16), d.int(1, 64))) + [Case("one stage", 1, 8)])
def check_pipeline_bubble(c: Check) -> None:
    _ask(c, "par-901", 4, 12)


# --------------------------------------------------------------------------- the two "where/why" questions, computed

def _tensor_parallel_mlp(x, w1_shards, b1_shards, w2_shards, b2) -> torch.Tensor:
    partial = [F.gelu(x @ w1.T + b1) @ w2.T for w1, b1, w2 in zip(w1_shards, b1_shards, w2_shards)]
    return torch.stack(partial).sum(0) + b2  # the all-reduce (a sum over ranks), then b2 once


def _mlp_problem(d: Draw, ranks: int, dtype=torch.float32):
    C, per_rank, B = d.int(3, 8), d.int(2, 5), d.int(1, 4)
    x, b2 = d.randn(B, C, dtype=dtype), d.randn(C, dtype=dtype)
    w1 = [d.randn(per_rank, C, dtype=dtype) for _ in range(ranks)]
    b1 = [d.randn(per_rank, dtype=dtype) for _ in range(ranks)]
    w2 = [d.randn(C, per_rank, dtype=dtype) for _ in range(ranks)]
    return x, w1, b1, w2, b2


def _why(qid: str, option: int) -> str:
    return interview.question(qid).options[option]["why"]["en"]


@exercise("13.megatron_all_reduce", reference=_tensor_parallel_mlp,
          cases=lambda d: [Case(f"{n} ranks", *_mlp_problem(d, n)) for n in (3, 4)] +
          [Case("float64 input", *_mlp_problem(d, 2, torch.float64))])
def check_megatron_all_reduce(c: Check) -> None:
    problem = x, w1, b1, w2, b2 = _mlp_problem(Draw(902), 2)
    out = c.call(*problem)
    c.expect_tensor(out, shape=(x.shape[0], b2.shape[0]), dtype=x.dtype, name="the MLP's output")
    partial = [F.gelu(x @ a.T + b) @ w.T for a, b, w in zip(w1, b1, w2)]
    c.diagnose(out, {
        _why("par-902", 2): sum(p + b2 for p in partial),
        "an all-reduce sums the partial products: it does not average them": sum(partial) / len(partial) + b2,
    }, "your output matches a misplaced or mistaken all-reduce", rtol=1e-5)
    c.close(out, _tensor_parallel_mlp(*problem), "the output differs from the unsplit MLP's",
            "each rank computes GELU(x W1_r^T + b1_r) W2_r^T; sum these partial products over the ranks, then add b2 once")


def _float_range(exponent_bits: int, mantissa_bits: int) -> tuple[float, float]:
    bias = 2 ** (exponent_bits - 1) - 1
    return 2.0 ** (1 - bias), (2 - 2.0 ** -mantissa_bits) * 2.0 ** bias


@exercise("13.bf16", reference=_float_range, **_EXACT,
          cases=lambda d: [Case("float32 (8, 23)", 8, 23), Case("float64 (11, 52)", 11, 52),
                           Case("fp8 e5m2", 5, 2), Case("another format", d.int(3, 10), d.int(1, 20))])
def check_bf16(c: Check) -> None:
    for dtype, bits in ((torch.bfloat16, (8, 7)), (torch.float16, (5, 10))):
        out = c.call(*bits)
        c.expect(isinstance(out, (tuple, list)) and len(out) == 2,
                 f"float_range{bits} returned {type(out).__name__}, expected (smallest normal, largest)",
                 "return a tuple of two numbers")
        tiny, top = (c.number(v, f"float_range{bits}") for v in out)
        bias = 2 ** (bits[0] - 1) - 1
        c.diagnose(tiny, {"the smallest normal exponent is 1 − bias: an exponent field of 0 is kept for zero and "
                          "the subnormals": 2.0 ** -bias}, f"the smallest normal {dtype} number is wrong")
        c.diagnose(top, {"the largest exponent is the bias (2^(e−1) − 1): the all-ones exponent field is kept for inf "
                         "and NaN": (2 - 2.0 ** -bits[1]) * 2.0 ** (bias + 1)}, f"the largest {dtype} number is wrong")
        info = torch.finfo(dtype)
        c.expect(tiny == info.tiny, f"the smallest normal {dtype} number is {info.tiny}, you gave {tiny}",
                 "2^(1 − bias) with bias = 2^(e−1) − 1: only the exponent bits decide the range")
        c.expect(top == info.max, f"the largest {dtype} number is {info.max}, you gave {top}",
                 "(2 − 2^−m) · 2^bias: the mantissa only refines the top value")


@exercise("13.softmax")
def check_softmax(c: Check) -> None:
    c.absorb(interview.drill_check(interview.question("attn-902")).result(c.fn))
