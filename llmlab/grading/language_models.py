"""Checks for notebook 01_language_models."""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping

import torch
import torch.nn.functional as F

from llmlab import ngram
from llmlab.inference import generation
from llmlab.data import pydoc_bytes
from llmlab.grading.core import Case, Check, Draw, exercise, randn, same, same_counts
from llmlab.metrics import lm


def _slice(n_bytes: int = 3000, offset: int = 0) -> list[int]:
    return pydoc_bytes("train")[offset : offset + n_bytes]


def _as_counter(c: Check, out, what: str) -> Counter:
    counts = c.counts(out, what)
    bad = next((key for key in out if not isinstance(key, tuple)), None)
    c.expect(bad is None, f"{what} has the key {bad!r}, expected tuples of token ids",
             "use tuple(tokens[i:i + n]) as the key: lists cannot be dict keys and ints are not n-grams")
    return counts


def _bpe_tokens(d: Draw, length: int, vocab: int = 49152) -> list[int]:
    """Repetitive token ids (so that n-grams repeat), most of them above 255."""
    pool = [d.int(0, vocab - 1) for _ in range(d.int(3, 6))]
    return [d.choice(pool) for _ in range(length)]


def _count_cases(d: Draw) -> list[Case]:
    return [
        Case("token ids above 255 (a BPE vocabulary)", _bpe_tokens(d, d.int(20, 40)), d.int(2, 4),
             hint="a token id can be any int (SmolLM2's vocabulary has 49,152): key on tuple(tokens[i:i + n]), "
                  "do not pack ids into bytes"),
        Case("one token repeated", [d.int(0, 255)] * d.int(5, 9), d.int(1, 4)),
        Case("an empty sequence", [], d.int(1, 3)),
    ]


@exercise("01.count_ngrams", reference=ngram.count_ngrams, cases=_count_cases, compare=same_counts)
def check_count_ngrams(c: Check) -> None:
    toy = [1, 2, 1, 2, 1]
    raw = c.call(toy, 2)
    out = _as_counter(c, raw, "count_ngrams([1, 2, 1, 2, 1], 2)")
    total, want_total = sum(out.values()), len(toy) - 2 + 1
    if total < want_total:
        c.fail(f"you found {total} bigrams in 5 tokens, expected {want_total}",
               "a sequence of length T has T - n + 1 n-grams: your loop stops one window early" if total == want_total - 1
               else "n-grams overlap: slide the window one token at a time, not n")
    c.expect(out == Counter({(1, 2): 2, (2, 1): 2}), f"count_ngrams([1, 2, 1, 2, 1], 2) gave {dict(out)}",
             "expected {(1, 2): 2, (2, 1): 2}: count each window tokens[i:i+n]")
    try:
        missing = raw[(9, 9)]
    except KeyError:
        missing = "KeyError"
    c.expect(missing == 0, f"count_ngrams([1, 2, 1, 2, 1], 2)[(9, 9)] gave {missing}: an n-gram never seen should count 0",
             "return a Counter, as the exercise asks (Counter(...), or Counter() then +=): a plain dict has no 0 "
             "for a missing key")
    text = _slice()
    for n in (1, 2, 3, 5):
        got = _as_counter(c, c.call(text, n), f"count_ngrams(text, {n})")
        c.expect(got == ngram.count_ngrams(text, n), f"the {n}-gram counts of a pydoc slice differ from the reference",
                 "count every window tokens[i:i+n] for i from 0 to len(tokens) - n")
    c.expect(_as_counter(c, c.call(toy, 5), "n = len(tokens)") == Counter({tuple(toy): 1}),
             "with n = len(tokens) there is exactly one n-gram", "the last window starts at len(tokens) - n")
    c.expect(not _as_counter(c, c.call(toy, 6), "n > len(tokens)"),
             "with n > len(tokens) there is no n-gram at all", "a range that is empty when len(tokens) < n does it")


def _float_probs(actual, expected) -> str | None:
    """Probabilities in any float dtype, within that dtype's precision."""
    if isinstance(actual, torch.Tensor) and actual.is_floating_point() and actual.dtype != expected.dtype:
        return same(actual.double(), expected, rtol=1e-5, atol=1e-7, reveal=False)
    return same(actual, expected, reveal=False)


def _probs_cases(d: Draw) -> list[Case]:
    V, n = d.int(300, 1200), d.int(2, 3)
    tokens = _bpe_tokens(d, 60, V)
    counts = ngram.count_ngrams(tokens, n)
    small = [d.int(0, 39) for _ in range(80)]
    domain = ngram.count_ngrams(small, 2)
    return [
        Case(f"vocab_size {V}, token ids above 255", counts, tuple(tokens[:n - 1]), d.choice([0.05, 0.5, 2.0]), V,
             hint="V is vocab_size, the argument: use it for the length of the result and in k·V (not 256)"),
        Case("a vocabulary of 40", domain, (small[0],), 0.3, 40,
             hint="V is vocab_size, the argument: use it for the length of the result and in k·V (not 256)"),
        Case("fine-tuned counts (fractional)", ngram.finetune_counts(domain, ngram.count_ngrams(small[::-1], 2), 0.37),
             (small[1],), 0.1, 40, hint="counts may be fractional (after fine-tuning): do not round them to ints"),
        Case("a context never seen (uniform)", counts, (next(t for t in range(V) if t not in tokens),) * (n - 1), 1.0, V),
    ]


@exercise("01.next_token_probs", reference=ngram.next_token_probs, cases=_probs_cases, compare=_float_probs)
def check_next_token_probs(c: Check) -> None:
    counts = ngram.count_ngrams(_slice(), 3)
    V = ngram.BYTE_VOCAB
    ctx = tuple(b"th")
    out = c.call(counts, ctx, 1.0, V)
    c.expect_tensor(out, shape=(V,), name="next_token_probs(counts, b'th', k=1)")
    c.expect(out.is_floating_point(), f"the result has dtype {out.dtype}", "probabilities are floats")
    out = out.double()
    seen = torch.tensor([counts.get(ctx + (v,), 0) for v in range(V)], dtype=torch.float64)
    C, k = seen.sum(), 1.0
    c.diagnose(out, {
        "unseen tokens get probability 0: add k to every count, seen or not": seen / C,
        "k is added once per token, so the denominator grows by k·V, not k": (seen + k) / (C + k),
        "V is the whole vocabulary (vocab_size), not the number of distinct continuations seen":
            (seen + k) / (C + k * (seen > 0).sum()),
    }, "your distribution matches a known mistake")
    c.expect(abs(out.sum().item() - 1) < 1e-6, f"your probabilities sum to {out.sum().item():.6f}, not 1",
             "the denominator must be count(context) + k·V so that the V smoothed counts sum to it")
    for context, k in [(ctx, 1.0), (ctx, 0.01), (tuple(b"e "), 0.5), (tuple(b"\x01\x02"), 0.1)]:
        got = c.call(counts, context, k, V)
        c.expect_tensor(got, shape=(V,))
        c.close(got, ngram.next_token_probs(counts, context, k, V),
                f"p(. | {bytes(context)!r}) with k={k} differs from (count(c, v) + k) / (count(c) + k·V)",
                "count(c) is the number of n-grams that start with the context")
    unigram = ngram.count_ngrams(_slice(), 1)
    c.close(c.call(unigram, (), 0.5, V), ngram.next_token_probs(unigram, (), 0.5, V),
            "a unigram model (empty context) gives the wrong distribution", "the empty tuple is a valid context")


def _random_log_probs(T: int, V: int, seed: int, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    log_probs = torch.randn(T, V, generator=g, dtype=torch.float64).mul(2).log_softmax(-1).to(dtype)
    return log_probs, torch.randint(V, (T,), generator=g)


def _table_cases(d: Draw) -> list[Case]:
    """(T, V) tables of log-probabilities: other sizes, tokens of probability zero."""
    def table(T, V, dtype, holes=False):
        scores, targets = d.randn(T, V, scale=2.0), d.randint(0, V, (T,))
        if holes:  # tokens of probability 0 (log p = -inf), never the target
            scores = scores.masked_fill((d.rand(T, V) < 0.5) & (torch.arange(V) != targets[:, None]), float("-inf"))
        return scores.log_softmax(-1).to(dtype), targets
    T = d.int(1500, 3000)
    return [
        Case(f"{T} steps of a uniform model over 10 tokens, float64", torch.full((T, 10), math.log(0.1), dtype=torch.float64),
             d.randint(0, 10, (T,)), hint=f"stay in log space: a product of {T} probabilities (0.1 ** {T}) underflows to 0"),
        Case("another length and vocabulary, float64", *table(d.int(2, 30), d.int(3, 60), torch.float64)),
        Case("tokens of probability 0 (-inf log-probabilities)", *table(d.int(4, 12), d.int(5, 20), torch.float32, True),
             hint="pick log_probs[t, targets[t]] (gather or indexing): a one-hot product turns -inf · 0 into NaN"),
    ]


@exercise("01.sequence_log_prob", reference=lm.sequence_log_prob, cases=_table_cases)
def check_sequence_log_prob(c: Check) -> None:
    log_probs, targets = _random_log_probs(12, 7, seed=0)
    out = c.call(log_probs, targets)
    c.expect_tensor(out, shape=(), name="sequence_log_prob(log_probs, targets)")
    picked = log_probs[torch.arange(12), targets]
    c.diagnose(out, {
        "that is the mean: the sequence log-probability is the sum over steps": picked.mean(),
        "add log-probabilities, not probabilities": picked.exp().sum(),
        "that sums whole rows: pick only log_probs[t, targets[t]] at each step": log_probs.sum(),
        "log_probs[:, targets] pairs every step with every target: index with (torch.arange(T), targets)":
            log_probs[:, targets].sum(),
        "log-probabilities are already logs: do not take the log again": picked.neg().log().sum(),
    }, f"you returned {out.item():.4f}, expected {picked.sum().item():.4f}", rtol=1e-5)
    c.expect(out.item() <= 0, f"you returned {out.item():.4f}, but a log-probability is never positive",
             "sum log_probs[t, targets[t]] over t")
    c.close(out, lm.sequence_log_prob(log_probs, targets), "the sum of log p(x_t | x_<t) is wrong",
            "gather log_probs[t, targets[t]] for every t and add them up")
    c.expect(out.dtype == log_probs.dtype, f"float32 input gave {out.dtype}", "keep the input's dtype")
    lp64, t64 = _random_log_probs(1, 5, seed=1, dtype=torch.float64)
    c.close(c.call(lp64, t64), lm.sequence_log_prob(lp64, t64), "a single step (T = 1) is wrong", "")
    model = ngram.NGramLM(2, k=0.1).fit(_slice())
    text = _slice(400, offset=5000)
    table = torch.stack([model.probs(text[:t]).log() for t in range(len(text))])
    c.close(c.call(table, torch.tensor(text)), model.target_log_probs(text).sum(),
            "on a real bigram model's table (400 steps) the log-likelihood differs from the model's",
            "add log-probabilities: a product of 400 probabilities underflows to 0")


def _perplexity_mistakes(log_probs: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
    nll = -log_probs[torch.arange(len(targets)), targets].double()
    return {
        "average over tokens before exponentiating: exp(mean), not exp(sum)": nll.sum().exp(),
        "perplexity is exp of the *negative* mean log-probability": (-nll).mean().exp(),
        "cross-entropy here is in nats (natural log): use exp, not 2 **": 2 ** nll.mean(),
        "that is the cross-entropy itself: perplexity is its exponential": nll.mean(),
        "exponentiate the mean log-probability, not the mean probability": 1 / (-nll).exp().mean(),
    }


@exercise("01.perplexity", reference=lm.perplexity, cases=_table_cases)
def check_perplexity(c: Check) -> None:
    V = 50
    uniform = torch.full((8, V), -math.log(V), dtype=torch.float64)
    targets = torch.arange(8)
    out = c.call(uniform, targets)
    c.expect_tensor(out, shape=(), name="perplexity(log_probs, targets)")
    c.expect(out.dtype == uniform.dtype, f"float64 log_probs gave a perplexity of dtype {out.dtype}",
             "keep log_probs' dtype: float64 input gives a float64 perplexity (no .float(), no torch.tensor(math.exp(...)))")
    c.diagnose(out, _perplexity_mistakes(uniform, targets), f"a uniform model over {V} tokens gave {out.item():.4g}, expected {V}",
               correct=torch.tensor(float(V)))
    c.expect(abs(out.item() - V) < 1e-6, f"a uniform model over {V} tokens gave {out.item():.4g}, expected {V}",
             "perplexity is exp(mean negative log-likelihood): a uniform guess over V tokens scores V")
    log_probs, targets = _random_log_probs(20, 11, seed=2, dtype=torch.float64)
    out = c.call(log_probs, targets)
    want = lm.perplexity(log_probs, targets).item()
    c.diagnose(out, _perplexity_mistakes(log_probs, targets), f"you returned {out.item():.4f}, expected {want:.4f}",
               correct=torch.tensor(want))
    c.close(out, lm.perplexity(log_probs, targets), "perplexity differs from exp(cross-entropy)",
            "exp(-(1/T) sum_t log p(x_t | x_<t))")
    c.close(out, F.cross_entropy(log_probs, targets).exp(), "perplexity differs from exp(F.cross_entropy)", "")
    lp32, t32 = _random_log_probs(6, 9, seed=3)
    c.close(c.call(lp32, t32), lm.perplexity(lp32, t32), "float32 input gives a wrong perplexity", "")


def _temperature_cases(d: Draw) -> list[Case]:
    rows = d.randn(d.int(3, 5), d.int(5, 9))
    offsets = torch.tensor([(-1) ** i * 10.0 ** d.int(3, 4) for i in range(rows.shape[0])])[:, None]
    ties = d.randint(0, 3, (d.int(4, 6), 6)).float()
    ties[0, 1] = ties[0, 4] = 3.0  # at least one row whose largest logit appears twice
    return [
        Case("2-D logits (batch, V)", d.randn(d.int(2, 5), d.int(3, 40)), d.choice([0.7, 1.3]),
             hint="softmax over the last dimension (dim=-1), whatever the number of dims"),
        Case("1-D logits (V,)", d.randn(d.int(3, 40)), 1.0,
             hint="softmax over the last dimension (dim=-1), whatever the number of dims"),
        Case("rows on very different scales", rows + offsets, 0.5,
             hint="subtract each row's own largest logit (amax(-1, keepdim=True)), not one maximum for the whole tensor"),
        Case("T = 0 on float32 logits", d.randn(2, d.int(2, 4), 7), 0.0,
             hint="at T = 0 return a one-hot with logits.shape[-1] entries, in the logits' dtype "
                  "(F.one_hot gives int64: add .to(logits.dtype))"),
        Case("T = 0 with tied largest logits", ties, 0.0,
             hint="on ties, T = 0 puts all the mass on the first largest logit (the index argmax returns)"),
        Case("bfloat16 logits", d.randn(3, d.int(5, 30), dtype=torch.bfloat16), 0.8),
        Case("float64 logits, T = 0.05", d.randn(2, 3, 9, dtype=torch.float64, scale=3.0), 0.05),
    ]


@exercise("01.temperature_softmax", reference=generation.temperature_softmax, cases=_temperature_cases)
def check_temperature_softmax(c: Check) -> None:
    logits = randn(2, 3, 10, seed=4)
    out = c.call(logits, 1.0)
    c.expect_tensor(out, shape=logits.shape, dtype=logits.dtype, name="temperature_softmax(logits, 1.0)")
    if torch.allclose(out.sum(0), torch.ones(3, 10), atol=1e-5) or torch.allclose(out.sum(1), torch.ones(2, 10), atol=1e-5):
        c.fail("your probabilities sum to 1 over the wrong dimension", "normalise over the last dimension (dim=-1)")
    c.expect(torch.allclose(out.sum(-1), torch.ones(2, 3), atol=1e-5), "rows do not sum to 1",
             "divide exp(z) by its sum over the last dimension")
    c.close(out, torch.softmax(logits, -1), "at T = 1 the result should equal softmax(logits)", "")
    for T in (0.5, 2.0):
        got = c.call(logits, T)
        c.expect_tensor(got, shape=logits.shape)
        c.diagnose(got, {"divide by T: T < 1 must sharpen the distribution": torch.softmax(logits * T, -1)},
                   f"at T = {T} you computed softmax(logits * T)")
        c.close(got, torch.softmax(logits / T, -1), f"at T = {T} the result is wrong", "softmax(logits / T)")
    big = torch.tensor([[1000.0, 1001.0, 999.0]])
    got = c.call(big, 1.0)
    c.expect(torch.isfinite(got).all(), "logits of ~1000 gave NaN or inf",
             "exp(1000) overflows: subtract the largest logit first (softmax does not change)")
    c.close(got, torch.softmax(big, -1), "large logits give a wrong distribution", "")
    greedy = c.call(logits, 0.0)
    c.expect(isinstance(greedy, torch.Tensor) and torch.isfinite(greedy).all(), "T = 0 gave NaN or inf (0 division)",
             "T = 0 is greedy decoding: handle it separately with argmax")
    want = F.one_hot(logits.argmax(-1), 10).to(logits.dtype)
    c.close(greedy, want, "T = 0 should give a one-hot vector at the argmax", "T → 0 concentrates all mass on the argmax")


def _sample_cases(d: Draw) -> list[Case]:
    p = torch.softmax(d.randn(1000, dtype=torch.float64, scale=2.0), -1)
    cdf, i = p.cumsum(0), d.choice(p.argsort(descending=True)[:50].tolist())  # a token with a wide interval
    short = torch.softmax(d.randn(d.int(20, 60), dtype=torch.float64), -1)
    short[-d.int(1, 4):] = 0.0
    short = (short / short.sum()).float()
    short[short.argmax()] -= 1e-5  # float32 rounding: the CDF now ends a hair below 1
    a, eps = d.choice([0.25, 0.5, 0.75]), d.choice([1e-9, 2e-9, 3e-9])
    below = "if rounding leaves the CDF's last value below u, return the last token with non-zero probability"
    return [
        Case("a float32 distribution over 1,000 tokens", p.float(), (cdf[i] - p[i] / 2).item()),
        Case("u exactly on a CDF value, before a token of probability 0",
             torch.tensor([0.25, 0.25, 0.0, 0.5], dtype=torch.float64), 0.5,
             hint="strictly greater: the first i with CDF[i] > u (a token with probability 0 is never drawn)"),
        Case("leading tokens of probability 0, u = 0", torch.tensor([0.0, 0.0, 0.375, 0.625]), 0.0,
             hint="strictly greater: the first i with CDF[i] > u (a token with probability 0 is never drawn)"),
        Case("a float32 CDF that ends below u", short, 1 - 1e-9, hint=below),
        Case("float64 probabilities, a token narrower than float32 can resolve",
             torch.tensor([a, eps, 1 - a - eps], dtype=torch.float64), a + eps / 2,
             hint="compute the CDF in float64 (probs.double().cumsum(0)): in float32, a + 1e-9 rounds to a and the "
                  "narrow token's interval vanishes"),
    ]


def _as_index(c: Check, out) -> int:
    if isinstance(out, bool) or not isinstance(out, int):
        c.fail(f"you returned {out!r} ({type(out).__name__}), expected a Python int index",
               "return a Python int, as the exercise asks: int(i), not a tensor")
    return out


@exercise("01.sample_from_probs", reference=generation.sample_from_probs, cases=_sample_cases)
def check_sample_from_probs(c: Check) -> None:
    probs = torch.tensor([0.125, 0.25, 0.5, 0.125], dtype=torch.float64)
    draw = lambda p, u: _as_index(c, c.call(p, u))  # noqa: E731
    got = draw(probs, 0.3)
    c.expect(got == 1, f"u = 0.3 gave index {got}, expected 1 (CDF = [0.125, 0.375, 0.875, 1.0])",
             "return the first index whose cumulative probability exceeds u")
    got = draw(probs, 0.125)
    c.expect(got == 1, f"u = 0.125 (exactly CDF[0]) gave index {got}, expected 1",
             "the CDF must be strictly greater than u (use >, not >=), or zero-probability tokens can be drawn")
    got = draw(torch.tensor([0.5, 0.0, 0.5], dtype=torch.float64), 0.5)
    c.expect(got == 2, f"a token with probability 0 was drawn (index {got})", "pick the first i with CDF[i] > u, strictly")
    c.expect(draw(probs, 0.0) == 0, "u = 0 should give the first token with probability > 0", "")
    c.expect(draw(probs, 0.999) == 3, "u = 0.999 should give the last index", "")
    hist = Counter(draw(probs, i / 1000) for i in range(1000))
    want = {i: int(p * 1000) for i, p in enumerate(probs.tolist())}
    c.expect(dict(hist) == want, f"1000 evenly spaced u gave counts {dict(sorted(hist.items()))}, expected {want}",
             "each token i must own an interval of u of length probs[i]")
    p32 = torch.softmax(randn(100, seed=5), -1)
    for u in (0.01, 0.5, 0.77, 0.99):
        c.expect(draw(p32, u) == generation.sample_from_probs(p32, u), f"on 100 tokens, u = {u} picked the wrong index",
                 "compute the CDF with torch.cumsum and find the first index above u")


def _finetune_cases(d: Draw) -> list[Case]:
    base, domain = (ngram.count_ngrams([d.int(0, 9) for _ in range(d.int(30, 60))], 2) for _ in range(2))
    weight = d.choice([0.25, 0.5, 1.5, 2.75])
    return [
        Case("a fractional weight", base, domain, weight,
             hint="weight may be fractional: add weight * count as it is (no int(), no rounding)"),
        Case("a small weight, n-grams on either side only", base, ngram.count_ngrams([d.int(5, 30) for _ in range(40)], 2), 0.1,
             hint="weight may be fractional: add weight * count as it is (no int(), no rounding)"),
        Case("an empty base", Counter(), domain, weight),
    ]


@exercise("01.finetune_counts", reference=ngram.finetune_counts, cases=_finetune_cases, compare=same_counts)
def check_finetune_counts(c: Check) -> None:
    base = ngram.count_ngrams(_slice(2000), 2)
    domain = ngram.count_ngrams(list("预训练和微调改变了语言模型。".encode()), 2)
    weight = 3.0
    out = c.call(base, domain, weight)
    c.expect(isinstance(out, Mapping), f"you returned {type(out).__name__}, expected a dict or Counter", "")
    out = Counter({k: v for k, v in out.items() if v})
    c.diagnose(out, {
        "catastrophic forgetting: you dropped the pre-training counts; add the domain counts to them":
            Counter({k: weight * v for k, v in domain.items()}),
        "the domain counts should be multiplied by weight": base + domain,
        "weight scales the domain counts, not the pre-training ones":
            Counter({k: weight * base.get(k, 0) + domain.get(k, 0) for k in set(base) | set(domain)}),
    }, "your fine-tuned counts match a known mistake")
    c.expect(not same_counts(out, ngram.finetune_counts(base, domain, weight)),
             "the fine-tuned counts differ from base + weight · domain",
             "start from a copy of base and add weight * count for each domain n-gram")
    c.expect(not same_counts(c.call(base, Counter(), 2.0), base),
             "with no domain data the counts must stay the pre-trained ones", "")
