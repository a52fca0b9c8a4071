import math

import pytest
import torch
import torch.nn.functional as F

from llmlab.inference import generation
from llmlab.metrics import lm


def _table(T=10, V=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(T, V, generator=g).log_softmax(-1), torch.randint(V, (T,), generator=g)


def test_metrics_match_torch_cross_entropy():
    log_probs, targets = _table()
    ce = F.cross_entropy(log_probs, targets)
    assert torch.allclose(lm.cross_entropy(log_probs, targets), ce)
    assert torch.allclose(lm.perplexity(log_probs, targets), ce.exp())
    assert torch.allclose(lm.sequence_log_prob(log_probs, targets), -ce * len(targets))


def test_model_perplexity_is_exp_of_the_mean_next_token_cross_entropy():
    from llmlab.nn.model import Decoder, DecoderConfig

    torch.manual_seed(0)
    model = Decoder(DecoderConfig(vocab_size=50, dim=16, n_layers=1, n_heads=2, n_kv_heads=1, hidden_dim=32,
                                  max_seq_len=16)).train()
    ids = torch.randint(50, (5, 9))
    with torch.no_grad():
        want = math.exp(F.cross_entropy(model.eval()(ids[:, :-1]).flatten(0, 1), ids[:, 1:].flatten()).item())
    model.train()
    for batch_size in (1, 2, 5, 8):
        assert lm.model_perplexity(model, ids, batch_size) == pytest.approx(want, rel=1e-6)
    assert model.training  # its mode is restored
    assert lm.model_perplexity(model, ids[0]) == pytest.approx(lm.model_perplexity(model, ids[:1]), rel=1e-9)
    for bad, exc in [(ids.float(), TypeError), (ids[:, :1], ValueError), (ids[None], ValueError),
                     (ids.tolist(), TypeError)]:
        with pytest.raises(exc, match="ids"):
            lm.model_perplexity(model, bad)
    with pytest.raises(ValueError, match="batch_size"):
        lm.model_perplexity(model, ids, 0)


def test_uniform_perplexity_is_vocab_size():
    V = 13
    log_probs = torch.full((5, V), -math.log(V))
    assert lm.perplexity(log_probs, torch.zeros(5, dtype=torch.long)).item() == pytest.approx(V)


@pytest.mark.parametrize(
    "args,exc,match",
    [
        (([[0.0]], torch.tensor([0])), TypeError, "torch tensors"),
        ((torch.zeros(3), torch.tensor([0])), ValueError, r"shape \(T, V\)"),
        ((torch.zeros(2, 1), torch.tensor([0])), ValueError, r"shape \(T,\)"),
        ((torch.zeros(0, 4), torch.zeros(0, dtype=torch.long)), ValueError, "empty"),
        ((torch.zeros(2, 1), torch.tensor([0.0, 0.0])), TypeError, "integer"),
        ((torch.zeros(1, 1, dtype=torch.long), torch.tensor([0])), TypeError, "float"),
        ((torch.zeros(1, 1), torch.tensor([3])), ValueError, "targets must lie"),
        ((torch.randn(2, 5), torch.tensor([0, 1])), ValueError, "log_softmax"),
    ],
)
def test_metric_bad_input(args, exc, match):
    with pytest.raises(exc, match=match):
        lm.perplexity(*args)


def test_temperature_softmax():
    logits = torch.tensor([[1.0, 2.0, 3.0], [1000.0, 1001.0, 1002.0]])
    assert torch.allclose(generation.temperature_softmax(logits, 1.0), torch.softmax(logits, -1))
    assert torch.allclose(generation.temperature_softmax(logits, 0.5), torch.softmax(logits * 2, -1))
    assert torch.equal(generation.temperature_softmax(logits, 0), torch.tensor([[0.0, 0, 1], [0, 0, 1]]))


def test_inverse_cdf_sampling_is_exact_on_a_grid():
    probs = torch.tensor([0.25, 0.0, 0.5, 0.25])
    counts = torch.bincount(torch.tensor([generation.sample_from_probs(probs, i / 100) for i in range(100)]), minlength=4)
    assert counts.tolist() == [25, 0, 50, 25]
    assert generation.sample_from_probs(probs, 0.25) == 2  # CDF strictly greater than u


def test_sampling_frequencies_follow_probs():
    probs = torch.tensor([0.1, 0.6, 0.3])
    g = torch.Generator().manual_seed(0)
    draws = torch.tensor([generation.sample(probs, g) for _ in range(4000)])
    freq = torch.bincount(draws, minlength=3) / 4000
    assert torch.allclose(freq, probs, atol=0.03)


def test_rounding_never_picks_a_zero_probability_tail():
    probs = torch.tensor([0.3, 0.7, 0.0], dtype=torch.float32)
    assert generation.sample_from_probs(probs, 0.9999999) == 1


@pytest.mark.parametrize(
    "call,exc,match",
    [
        (lambda: generation.temperature_softmax(torch.ones(3), -1.0), ValueError, "temperature must be >= 0"),
        (lambda: generation.temperature_softmax([1.0, 2.0], 1.0), TypeError, "float tensor"),
        (lambda: generation.sample_from_probs(torch.tensor([0.5, 0.4]), 0.1), ValueError, "sum to 1"),
        (lambda: generation.sample_from_probs(torch.tensor([1.5, -0.5]), 0.1), ValueError, "non-negative"),
        (lambda: generation.sample_from_probs(torch.tensor([0.5, 0.5]), 1.0), ValueError, r"\[0, 1\)"),
        (lambda: generation.sample_from_probs(torch.ones(2, 2) / 4, 0.1), TypeError, "1-D"),
    ],
)
def test_sampling_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
