"""Checks for notebook 01_language_models."""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping

import torch

from llmlab import generation, ngram
from llmlab.data import pydoc_bytes
from llmlab.grading.core import Check
from llmlab.metrics import lm


def _slice(n_bytes: int = 3000, offset: int = 0) -> list[int]:
    return pydoc_bytes("train")[offset : offset + n_bytes]


def _as_counter(c: Check, out, what: str) -> Counter:
    c.expect(isinstance(out, Mapping), f"{what} returned {type(out).__name__}, expected a dict or Counter",
             "collections.Counter is made for counting")
    bad = next((key for key in out if not isinstance(key, tuple)), None)
    c.expect(bad is None, f"{what} has the key {bad!r}, expected tuples of token ids",
             "use tuple(tokens[i:i + n]) as the key: lists cannot be dict keys and ints are not n-grams")
    return Counter({key: v for key, v in out.items() if v})


def check_count_ngrams(fn) -> None:
    c = Check("01.count_ngrams", fn)
    toy = [1, 2, 1, 2, 1]
    out = _as_counter(c, c.call(toy, 2), "count_ngrams([1, 2, 1, 2, 1], 2)")
    total, want_total = sum(out.values()), len(toy) - 2 + 1
    if total == want_total - 1:
        c.fail(f"you found {total} bigrams in 5 tokens, expected {want_total}",
               "a sequence of length T has T - n + 1 n-grams: your loop stops one window early")
    if total < want_total - 1:
        c.fail(f"you found {total} bigrams in 5 tokens, expected {want_total}",
               "n-grams overlap: slide the window one token at a time, not n")
    c.expect(out == Counter({(1, 2): 2, (2, 1): 2}), f"count_ngrams([1, 2, 1, 2, 1], 2) gave {dict(out)}",
             "expected {(1, 2): 2, (2, 1): 2}: count each window tokens[i:i+n]")
    text = _slice()
    for n in (1, 2, 3, 5):
        got = _as_counter(c, c.call(text, n), f"count_ngrams(text, {n})")
        c.expect(got == ngram.count_ngrams(text, n), f"the {n}-gram counts of a pydoc slice differ from the reference",
                 "count every window tokens[i:i+n] for i from 0 to len(tokens) - n")
    c.expect(_as_counter(c, c.call(toy, 5), "n = len(tokens)") == Counter({tuple(toy): 1}),
             "with n = len(tokens) there is exactly one n-gram", "the last window starts at len(tokens) - n")
    c.expect(not _as_counter(c, c.call(toy, 6), "n > len(tokens)"),
             "with n > len(tokens) there is no n-gram at all", "a range that is empty when len(tokens) < n does it")
    c.done()


def check_next_token_probs(fn) -> None:
    c = Check("01.next_token_probs", fn)
    counts = ngram.count_ngrams(_slice(), 3)
    V = ngram.BYTE_VOCAB
    ctx = tuple(b"th")
    out = c.call(counts, ctx, 1.0, V)
    c.expect_tensor(out, shape=(V,), name="next_token_probs(counts, b'th', k=1)")
    c.expect(out.is_floating_point(), f"the result has dtype {out.dtype}", "probabilities are floats")
    out = out.double()
    seen = torch.tensor([counts.get(ctx + (v,), 0) for v in range(V)], dtype=torch.float64)
    C, k = seen.sum(), 1.0
    wrong = {
        "unseen tokens get probability 0: add k to every count, seen or not": seen / C,
        "k is added once per token, so the denominator grows by k·V, not k": (seen + k) / (C + k),
        "V is the whole vocabulary (vocab_size), not the number of distinct continuations seen":
            (seen + k) / (C + k * (seen > 0).sum()),
    }
    c.diagnose(out, wrong, "your distribution matches a known mistake")
    c.expect(abs(out.sum().item() - 1) < 1e-6, f"your probabilities sum to {out.sum().item():.6f}, not 1",
             "the denominator must be count(context) + k·V so that the V smoothed counts sum to it")
    for context, k in [(ctx, 1.0), (ctx, 0.01), (tuple(b"e "), 0.5), (tuple(b"\x01\x02"), 0.1)]:
        got = c.call(counts, context, k, V)
        c.expect_tensor(got, shape=(V,))
        c.close(got.double(), ngram.next_token_probs(counts, context, k, V),
                f"p(. | {bytes(context)!r}) with k={k} differs from (count(c, v) + k) / (count(c) + k·V)",
                "count(c) is the number of n-grams that start with the context")
    unigram = ngram.count_ngrams(_slice(), 1)
    c.close(c.call(unigram, (), 0.5, V).double(), ngram.next_token_probs(unigram, (), 0.5, V),
            "a unigram model (empty context) gives the wrong distribution", "the empty tuple is a valid context")
    c.done()


def _random_log_probs(T: int, V: int, seed: int, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    log_probs = torch.randn(T, V, generator=g, dtype=torch.float64).mul(2).log_softmax(-1).to(dtype)
    return log_probs, torch.randint(V, (T,), generator=g)


def check_sequence_log_prob(fn) -> None:
    c = Check("01.sequence_log_prob", fn)
    log_probs, targets = _random_log_probs(12, 7, seed=0)
    out = c.call(log_probs, targets)
    c.expect_tensor(out, shape=(), name="sequence_log_prob(log_probs, targets)")
    picked = log_probs[torch.arange(12), targets]
    wrong = {
        "that is the mean: the sequence log-probability is the sum over steps": picked.mean(),
        "add log-probabilities, not probabilities": picked.exp().sum(),
        "that sums whole rows: pick only log_probs[t, targets[t]] at each step": log_probs.sum(),
        "log_probs[:, targets] pairs every step with every target: index with (torch.arange(T), targets)":
            log_probs[:, targets].sum(),
        "log-probabilities are already logs: do not take the log again": picked.neg().log().sum(),
    }
    c.diagnose(out, wrong, f"you returned {out.item():.4f}, expected {picked.sum().item():.4f}", rtol=1e-5)
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
            "on a real bigram model's table the log-likelihood differs from the model's", "")
    c.done()


def _perplexity_mistakes(log_probs: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
    nll = -log_probs[torch.arange(len(targets)), targets].double()
    return {
        "average over tokens before exponentiating: exp(mean), not exp(sum)": nll.sum().exp(),
        "perplexity is exp of the *negative* mean log-probability": (-nll).mean().exp(),
        "cross-entropy here is in nats (natural log): use exp, not 2 **": 2 ** nll.mean(),
        "that is the cross-entropy itself: perplexity is its exponential": nll.mean(),
        "exponentiate the mean log-probability, not the mean probability": 1 / (-nll).exp().mean(),
    }


def check_perplexity(fn) -> None:
    c = Check("01.perplexity", fn)
    V = 50
    uniform = torch.full((8, V), -math.log(V), dtype=torch.float64)
    targets = torch.arange(8)
    out = c.call(uniform, targets)
    c.expect_tensor(out, shape=(), name="perplexity(log_probs, targets)")
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
    c.close(out, torch.nn.functional.cross_entropy(log_probs, targets).exp(),
            "perplexity differs from exp(F.cross_entropy)", "")
    lp32, t32 = _random_log_probs(6, 9, seed=3)
    c.close(c.call(lp32, t32), lm.perplexity(lp32, t32), "float32 input gives a wrong perplexity", "")
    c.done()


def check_temperature_softmax(fn) -> None:
    c = Check("01.temperature_softmax", fn)
    g = torch.Generator().manual_seed(4)
    logits = torch.randn(2, 3, 10, generator=g)
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
        if torch.allclose(got, torch.softmax(logits * T, -1), atol=1e-6):
            c.fail(f"at T = {T} you computed softmax(logits * T)", "divide by T: T < 1 must sharpen the distribution")
        c.close(got, torch.softmax(logits / T, -1), f"at T = {T} the result is wrong", "softmax(logits / T)")
    sharp = c.call(logits, 0.5).amax(-1)
    c.expect((sharp >= torch.softmax(logits, -1).amax(-1) - 1e-6).all(),
             "a lower temperature should raise the top probability", "divide the logits by T before the softmax")
    big = torch.tensor([[1000.0, 1001.0, 999.0]])
    got = c.call(big, 1.0)
    c.expect(torch.isfinite(got).all(), "logits of ~1000 gave NaN or inf",
             "exp(1000) overflows: subtract the largest logit first (softmax does not change)")
    c.close(got, torch.softmax(big, -1), "large logits give a wrong distribution", "")
    greedy = c.call(logits, 0.0)
    c.expect(isinstance(greedy, torch.Tensor) and torch.isfinite(greedy).all(), "T = 0 gave NaN or inf (0 division)",
             "T = 0 is greedy decoding: handle it separately with argmax")
    want = torch.nn.functional.one_hot(logits.argmax(-1), 10).to(logits.dtype)
    c.close(greedy, want, "T = 0 should give a one-hot vector at the argmax", "T → 0 concentrates all mass on the argmax")
    c.close(c.call(logits.double(), 0.7), generation.temperature_softmax(logits.double(), 0.7),
            "float64 logits give a wrong result", "keep the input's dtype")
    c.done()


def check_sample_from_probs(fn) -> None:
    c = Check("01.sample_from_probs", fn)
    probs = torch.tensor([0.125, 0.25, 0.5, 0.125], dtype=torch.float64)

    def draw(p, u):
        out = c.call(p, u)
        if isinstance(out, torch.Tensor) and out.numel() == 1 and not out.is_floating_point():
            out = int(out.item())
        if not isinstance(out, int):
            c.fail(f"you returned {out!r} ({type(out).__name__}), expected an int index",
                   "return a Python int, e.g. int(i)")
        return out

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
    g = torch.Generator().manual_seed(5)
    p32 = torch.softmax(torch.randn(100, generator=g), -1)
    for u in (0.01, 0.5, 0.77, 0.99):
        c.expect(draw(p32, u) == generation.sample_from_probs(p32, u), f"on 100 tokens, u = {u} picked the wrong index",
                 "compute the CDF with torch.cumsum and find the first index above u")
    c.done()


def check_finetune_counts(fn) -> None:
    c = Check("01.finetune_counts", fn)
    base = ngram.count_ngrams(_slice(2000), 2)
    domain = ngram.count_ngrams(list("预训练和微调改变了语言模型。".encode()), 2)
    weight = 3.0
    out = c.call(base, domain, weight)
    c.expect(isinstance(out, Mapping), f"you returned {type(out).__name__}, expected a dict or Counter", "")
    out = {k: v for k, v in out.items() if v}
    want = ngram.finetune_counts(base, domain, weight)

    def same(a: Mapping, b: Mapping) -> bool:
        return set(a) == {k for k, v in b.items() if v} and all(abs(a[k] - b[k]) < 1e-9 for k in a)

    wrong = {
        "catastrophic forgetting: you dropped the pre-training counts; add the domain counts to them":
            Counter({k: weight * v for k, v in domain.items()}),
        "the domain counts should be multiplied by weight": base + domain,
        "weight scales the domain counts, not the pre-training ones":
            Counter({k: weight * base.get(k, 0) + domain.get(k, 0) for k in set(base) | set(domain)}),
    }
    for hint, value in wrong.items():
        if same(out, value):
            c.fail("your fine-tuned counts match a known mistake", hint)
    c.expect(same(out, want), "the fine-tuned counts differ from base + weight · domain",
             "start from a copy of base and add weight * count for each domain n-gram")
    c.expect(same(c.call(base, Counter(), 2.0), base), "with no domain data the counts must stay the pre-trained ones", "")
    c.done()
