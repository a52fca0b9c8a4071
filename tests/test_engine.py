"""The engine of swappable parts (llmlab.inference.engine) and the demos' helpers (llmlab.grading.demo):
with llmlab's parts the engine decodes exactly as ``generate``; a wrong part changes what it says; ``yours``
runs the learner's function, hands over to the reference when it is not written, and says which ran."""
import pytest
import torch

from llmlab.grading.demo import reveal, which, yours
from llmlab.inference import generation
from llmlab.inference.engine import Engine, Parts, cached_attention
from llmlab.inference.generation import Sampling, generate
from llmlab.nn import attention as A
from llmlab.nn.model import Decoder, DecoderConfig



@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    cfg = DecoderConfig(vocab_size=64, dim=32, n_layers=2, n_heads=4, n_kv_heads=2, hidden_dim=64, max_seq_len=128)
    return Decoder(cfg).eval()


PROMPT = [3, 17, 5, 9, 3, 17, 5]


def test_greedy_and_sampled_tokens_equal_generate(model):
    engine = Engine(model, max_len=64)
    assert engine.generate(PROMPT, 12) == generate(model, PROMPT, 12)
    s = Sampling(temperature=0.9, top_k=20, top_p=0.8, repetition_penalty=1.2, seed=4)
    assert engine.generate(PROMPT, 12, s) == generate(model, PROMPT, 12, s)


def test_speculative_tokens_equal_greedy(model):
    engine = Engine(model, max_len=64)
    out, stats = engine.speculative_generate(PROMPT, 12, gamma=3)
    assert out == generate(model, PROMPT, 12)
    assert stats.rounds <= 12 and stats.accepted + stats.rounds >= 12


def test_cached_attention_is_attention_over_the_cache():
    q, k, v = torch.randn(2, 4, 1, 8), torch.randn(2, 2, 5, 8), torch.randn(2, 2, 5, 8)
    want = A.scaled_dot_product_attention(q, A.repeat_kv(k, 2), A.repeat_kv(v, 2))[0]
    torch.testing.assert_close(cached_attention(q, k, v), want)
    with pytest.raises(ValueError, match="q must hold one query"):
        cached_attention(torch.randn(2, 4, 2, 8), k, v)


def test_a_wrong_part_changes_what_the_engine_says(model):
    def no_scale(q, k, v):  # forgets 1/sqrt(D)
        rep = q.shape[1] // k.shape[1]
        return torch.softmax(q @ A.repeat_kv(k, rep).transpose(-2, -1), -1) @ A.repeat_kv(v, rep)

    right = Engine(model, max_len=64)(PROMPT)  # logits (T, V): a random tiny model's tokens barely move
    wrong = Engine(model, Parts(cached_attention=no_scale), max_len=64)(PROMPT)
    assert (wrong - right).abs().max() > 1e-3
    pruned = Engine(model, Parts(weight=lambda w: w * (w.abs() > w.abs().median())), max_len=64)(PROMPT)
    assert (pruned - right).abs().max() > 1e-3


def test_parts_and_engine_refuse_bad_arguments(model):
    with pytest.raises(TypeError, match="write_kv must be a function"):
        Parts(write_kv=3)
    with pytest.raises(TypeError, match="parts must be a Parts"):
        Engine(model, parts={})
    with pytest.raises(ValueError, match="max_len"):
        Engine(model, max_len=10**6)
    with pytest.raises(ValueError, match="exceed"):
        Engine(model, max_len=8).generate(PROMPT, 4)


def test_yours_runs_the_learners_function_then_says_which_ran(capsys):
    def stub(logits, k):
        raise NotImplementedError

    def broken(logits, k):
        raise IndexError("oops")

    mine = yours(generation.top_k_filter, generation.top_k_filter, name="top_k_filter")
    x = torch.randn(2, 10)
    torch.testing.assert_close(mine(x, 3), generation.top_k_filter(x, 3))
    fallback, failing = yours(stub, generation.top_k_filter), yours(broken, generation.top_k_filter)
    torch.testing.assert_close(fallback(x, 3), generation.top_k_filter(x, 3))
    torch.testing.assert_close(failing(x, 3), generation.top_k_filter(x, 3))
    failing(x, 3)  # says it once
    out = capsys.readouterr().out.splitlines()
    assert out == ["▶ top_k_filter: yours", "▶ stub: llmlab's reference (yours is not written yet)",
                   "▶ broken: llmlab's reference (yours raised IndexError: oops)"]
    assert which(mine, fallback) == {"top_k_filter": "yours", "stub": "llmlab's reference"}
    with pytest.raises(TypeError, match="fn must be your function"):
        yours(None, generation.top_k_filter)


def test_reveal_compares_a_prediction_with_the_measurement(capsys):
    assert reveal(None, 3.0, "speed-up") == "no prediction"
    assert reveal(2.9, 3.0, "speed-up", "×") == "close"
    assert reveal(10, 3.0, "speed-up") == "too high"
    assert reveal(1, 3.0, "speed-up") == "too low"
    assert "you predicted 10, measured 3" in capsys.readouterr().out
    with pytest.raises(TypeError, match="prediction must be a number"):
        reveal("3", 3.0, "speed-up")
    with pytest.raises(ValueError, match="measured must be a finite number"):
        reveal(1, float("nan"), "speed-up")
