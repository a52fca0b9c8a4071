import math
from collections import Counter

import pytest
import torch

from llmlab import ngram
from llmlab.data import pydoc_bytes


def test_count_ngrams_small():
    assert ngram.count_ngrams([1, 2, 1, 2, 1], 2) == Counter({(1, 2): 2, (2, 1): 2})
    assert ngram.count_ngrams([1, 2], 3) == Counter()
    assert ngram.count_ngrams(b"abc", 1) == Counter({(97,): 1, (98,): 1, (99,): 1})


def test_next_token_probs_is_add_k():
    counts = ngram.count_ngrams([0, 1, 0, 1, 0, 2], 2)
    p = ngram.next_token_probs(counts, (0,), k=0.5, vocab_size=3)
    # count(0, .) = [0, 2, 1], count(0) = 3
    assert torch.allclose(p, torch.tensor([0.5, 2.5, 1.5], dtype=torch.float64) / 4.5)
    # a context never seen: add-k alone, a uniform distribution
    assert torch.allclose(ngram.next_token_probs(counts, (2,), 1.0, 3), torch.full((3,), 1 / 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="context holds id 9"):
        ngram.next_token_probs(counts, (9,), 1.0, 3)
    with pytest.raises(TypeError, match="context"):
        ngram.next_token_probs(counts, "h", 1.0, 3)


def test_model_log_probs_match_the_distributions():
    tokens = pydoc_bytes("train")[:5000]
    for n in (1, 2, 4):
        model = ngram.NGramLM(n, k=0.1).fit(tokens)
        text = pydoc_bytes("val")[:200]
        fast = model.target_log_probs(text)
        slow = torch.stack([model.probs(text[:t]).log()[x] for t, x in enumerate(text)])
        assert torch.allclose(fast, slow)
        assert model.perplexity(text) == pytest.approx(math.exp(-slow.mean().item()))


def test_uniform_model_has_perplexity_v():
    model = ngram.NGramLM(1, k=1.0).fit_counts(Counter({(v,): 5 for v in range(256)}))
    assert model.perplexity(list(b"anything at all")) == pytest.approx(256)


def test_finetune_counts_adds_weighted_domain():
    base, domain = Counter({(1,): 2, (2,): 1}), Counter({(2,): 1, (3,): 4})
    assert ngram.finetune_counts(base, domain, 2.0) == Counter({(1,): 2, (2,): 3, (3,): 8})
    assert base == Counter({(1,): 2, (2,): 1})  # inputs untouched


def test_generate_is_reproducible_and_valid():
    model = ngram.NGramLM(3, k=0.01).fit(pydoc_bytes("train")[:20000])
    a = model.generate(list(b"The "), 50, 0.8, torch.Generator().manual_seed(1))
    b = model.generate(list(b"The "), 50, 0.8, torch.Generator().manual_seed(1))
    assert a == b and len(a) == 54 and all(0 <= t < 256 for t in a)
    greedy = model.generate(list(b"The "), 20, 0.0)
    assert greedy == model.generate(list(b"The "), 20, 0.0, torch.Generator().manual_seed(7))


@pytest.mark.parametrize(
    "call,exc,match",
    [
        (lambda: ngram.count_ngrams("text", 2), TypeError, "encode it first"),
        (lambda: ngram.count_ngrams([1, 2], 0), ValueError, "n must be >= 1"),
        (lambda: ngram.count_ngrams([1, 2], 2.0), TypeError, "n must be an int"),
        (lambda: ngram.count_ngrams([1, "a"], 1), TypeError, "must hold ints"),
        (lambda: ngram.count_ngrams(None, 1), TypeError, "sequence of token ids"),
        (lambda: ngram.NGramLM(2).fit([]), ValueError, "empty"),
        (lambda: ngram.NGramLM(2).fit([300]), ValueError, "outside"),
        (lambda: ngram.NGramLM(2, k=0), ValueError, "k must be > 0"),
        (lambda: ngram.NGramLM(2, k=-1), ValueError, "k must be > 0"),
        (lambda: ngram.NGramLM(0), ValueError, "n must be >= 1"),
        (lambda: ngram.NGramLM(2).perplexity([1, 2]), ValueError, "not fitted"),
        (lambda: ngram.NGramLM(2).fit_counts(Counter()), ValueError, "empty"),
        (lambda: ngram.next_token_probs(Counter(), (), 0.0), ValueError, "k must be > 0"),
        (lambda: ngram.next_token_probs(Counter(), (), "1"), TypeError, "k must be a number"),
        (lambda: ngram.finetune_counts(Counter(), Counter(), -1), ValueError, "weight"),
        (lambda: ngram.NGramLM(1).fit([1]).generate([1], -1), ValueError, "max_new_tokens"),
    ],
)
def test_bad_input_is_a_clear_error(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
