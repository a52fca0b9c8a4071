"""A byte-level n-gram language model with add-k smoothing.

An autoregressive LM factorises a sequence's probability as

    p(x_1..x_T) = prod_t p(x_t | x_<t)

and an n-gram model approximates each factor with the last n-1 tokens only, estimated by counting:

    p(v | c) = (count(c, v) + k) / (count(c) + k * V)

Add-k ("Laplace" for k=1) keeps unseen continuations possible; small k trusts the counts more.
Tokens are UTF-8 bytes (V = 256), so any text, Chinese included, has no out-of-vocabulary symbol.
The start of a text is padded with byte 0 (NUL, never found in text) as a start-of-text marker,
so every token is scored whatever n is, and perplexities of different orders compare fairly.
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch

from llmlab import validate

BOS = 0
BYTE_VOCAB = 256

Ngram = tuple[int, ...]


def count_ngrams(tokens: Sequence[int], n: int) -> Counter[Ngram]:
    """Counts of every (overlapping) n-gram of ``tokens``: a length-T sequence has T-n+1 of them."""
    tokens = validate.token_ids("tokens", tokens, allow_empty=True)
    n = validate.positive_int("n", n)
    if n > len(tokens):
        return Counter()  # no n-gram fits (and n shifted copies of the tokens would be n slices to make)
    return Counter(zip(*(tokens[i:] for i in range(n))))


def _check_counts(name: str, counts) -> None:
    if not isinstance(counts, Mapping):
        raise TypeError(f"{name} must be a Counter of n-gram tuples (count_ngrams), got {type(counts).__name__}")


def context_counts(ngram_counts: Counter[Ngram]) -> Counter[Ngram]:
    """count(c) for every context c: the n-gram counts summed over their last token."""
    _check_counts("ngram_counts", ngram_counts)
    ctx: Counter[Ngram] = Counter()
    for gram, c in ngram_counts.items():
        ctx[gram[:-1]] += c
    return ctx


def next_token_probs(
    ngram_counts: Counter[Ngram], context: Sequence[int], k: float, vocab_size: int = BYTE_VOCAB
) -> torch.Tensor:
    """Add-k smoothed p(. | context): a float64 tensor of shape (vocab_size,) that sums to 1.

    ``context`` is the n-1 previous tokens (empty for a unigram model).
    """
    _check_counts("ngram_counts", ngram_counts)
    k = validate.positive_float("k", k)
    vocab_size = validate.size("vocab_size", vocab_size)
    context = tuple(validate.token_ids("context", context, vocab_size, allow_empty=True))
    counts = torch.tensor([ngram_counts.get(context + (v,), 0) for v in range(vocab_size)], dtype=torch.float64)
    return (counts + k) / (counts.sum() + k * vocab_size)


def finetune_counts(base: Counter[Ngram], domain: Counter[Ngram], weight: float) -> Counter[Ngram]:
    """"Fine-tune" a count model: keep the pre-training counts and add ``weight`` times the domain's.

    The pre-trained counts stay (that is what keeps general ability); the weight decides how far
    the model moves toward the domain. Replacing them instead is catastrophic forgetting.
    """
    _check_counts("base", base)
    _check_counts("domain", domain)
    weight = validate.positive_float("weight", weight)
    out: Counter[Ngram] = Counter(base)
    for gram, c in domain.items():
        out[gram] += weight * c
    return out


@dataclass
class NGramLM:
    """Byte-level n-gram LM with add-k smoothing. ``fit`` counts; ``target_log_probs`` scores."""

    n: int
    k: float = 1.0
    vocab_size: int = BYTE_VOCAB
    counts: Counter = field(default_factory=Counter, repr=False)
    ctx_counts: Counter = field(default_factory=Counter, repr=False)

    def __post_init__(self):
        self.n = validate.size("n", self.n)  # the n - 1 BOS tokens of pad() are allocated
        self.k = validate.positive_float("k", self.k)
        self.vocab_size = validate.size("vocab_size", self.vocab_size)  # each prediction is a (V,) tensor

    def pad(self, tokens: Sequence[int]) -> list[int]:
        return [BOS] * (self.n - 1) + list(tokens)

    def fit(self, tokens: Sequence[int]) -> "NGramLM":
        tokens = validate.token_ids("tokens", tokens, self.vocab_size)
        return self.fit_counts(count_ngrams(self.pad(tokens), self.n))

    def fit_counts(self, counts: Counter[Ngram]) -> "NGramLM":
        """Use given n-gram counts (e.g. from ``finetune_counts``)."""
        if not counts:
            raise ValueError("no n-grams to fit: the corpus is empty")
        self.counts = counts
        self.ctx_counts = context_counts(counts)
        return self

    def probs(self, context: Sequence[int]) -> torch.Tensor:
        """p(. | last n-1 tokens of context), shape (V,). Short contexts are padded with BOS."""
        return self._probs(validate.token_ids("context", context, self.vocab_size, allow_empty=True))

    def _probs(self, context: list[int]) -> torch.Tensor:
        """``probs`` without its check, for ``generate``, whose tokens are checked."""
        last = self.pad(context)[len(context) :] if self.n > 1 else []
        return next_token_probs(self.counts, last, self.k, self.vocab_size)

    def target_log_probs(self, tokens: Sequence[int]) -> torch.Tensor:
        """log p(x_t | x_<t) for every token of ``tokens``, shape (T,), float64.

        Computed straight from the counts (no (T, V) table), so scoring 400K bytes takes well under a second.
        """
        if not self.counts:
            raise ValueError("the model is not fitted yet: call fit() first")
        tokens = validate.token_ids("tokens", tokens, self.vocab_size)
        padded = self.pad(tokens)
        kv = self.k * self.vocab_size
        grams = zip(*(padded[i:] for i in range(self.n)))
        get, cget = self.counts.get, self.ctx_counts.get
        out = [math.log((get(g, 0) + self.k) / (cget(g[:-1], 0) + kv)) for g in grams]
        return torch.tensor(out, dtype=torch.float64)

    def perplexity(self, tokens: Sequence[int]) -> float:
        """exp(mean negative log-likelihood per byte) of ``tokens``."""
        return math.exp(-self.target_log_probs(tokens).mean().item())

    def generate(
        self,
        prompt: Sequence[int],
        max_new_tokens: int,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> list[int]:
        """Sample ``max_new_tokens`` bytes after ``prompt``; returns prompt + new tokens."""
        from llmlab.inference.generation import sample, temperature_softmax

        max_new_tokens = validate.size("max_new_tokens", max_new_tokens, minimum=0)
        out = validate.token_ids("prompt", prompt, self.vocab_size, allow_empty=True)
        for _ in range(max_new_tokens):
            probs = temperature_softmax(self._probs(out).log(), temperature)
            out.append(sample(probs, generator))
        return out
