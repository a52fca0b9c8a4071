"""Speculative decoding: the acceptance rule (exact cases and a Monte-Carlo check that the output follows the
target), the drafts (prompt lookup, a model with its own cache, the first layers of the target) on small random
decoders, and on the real SmolLM2 the identity that makes it safe: greedy speculative output == ``generate``."""
import pytest
import torch

from llmlab.inference.early_exit import exit_predictions
from llmlab.inference.fast_decoder import FastDecoder
from llmlab.inference.generation import generate, sample_from_probs
from llmlab.quant.linear import Int4WeightOnlyLinear, Int8WeightOnlyLinear
from llmlab.inference.speculative import (ModelDraft, PromptLookupDraft, expected_tokens_per_round, greedy_accept, layer_draft,
                                prompt_lookup, speculative_accept, speculative_generate)
from tests.test_inference import V, _ids, _threads_per_worker, _tiny  # noqa: F401 (an autouse fixture)


@pytest.fixture(scope="module")
def target():
    return _tiny(seed=0, n_layers=3)


# ------------------------------------------------------------------------------------------ the rule


def test_expected_tokens_per_round():
    assert expected_tokens_per_round(0.5, 3) == pytest.approx((1 - 0.5 ** 4) / 0.5)  # 1.875
    assert expected_tokens_per_round(0.8, 4) == pytest.approx(1 + 0.8 + 0.8 ** 2 + 0.8 ** 3 + 0.8 ** 4)
    assert expected_tokens_per_round(1, 4) == 5.0  # every guess accepted, plus the bonus token
    assert expected_tokens_per_round(0, 4) == 1.0  # nothing accepted: one token per target pass, as without a draft
    assert expected_tokens_per_round(0.7, 0) == 1.0
    values = [expected_tokens_per_round(a, 4) for a in (0, 0.2, 0.5, 0.9, 0.999, 1)]
    assert values == sorted(values) and values[-2] == pytest.approx(5, abs=0.01)
    for alpha in (-0.1, 1.1, float("nan")):
        with pytest.raises(ValueError, match="alpha"):
            expected_tokens_per_round(alpha, 3)
    with pytest.raises(TypeError, match="alpha"):
        expected_tokens_per_round(True, 3)
    with pytest.raises(ValueError, match="gamma"):
        expected_tokens_per_round(0.5, -1)
    with pytest.raises(TypeError, match="gamma"):
        expected_tokens_per_round(0.5, 1.5)


def test_greedy_accept():
    assert greedy_accept([5, 6, 7, 8], [5, 6, 9]) == [5, 6, 7]  # the target's token replaces the first miss
    assert greedy_accept([5, 6, 7, 8], [5, 6, 7]) == [5, 6, 7, 8]  # all accepted, plus the bonus
    assert greedy_accept([5, 6, 7, 8], [1, 6, 7]) == [5]
    assert greedy_accept([4], []) == [4]


def _dists(rows, vocab, seed):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(rows, vocab, generator=g) * 1.5).softmax(-1)


def test_speculative_accept_exact_cases():
    p = _dists(4, 6, seed=0)
    draft = torch.tensor([1, 4, 2])
    g = torch.Generator().manual_seed(1)
    for _ in range(20):  # q == p: the ratio is 1, so every draft passes, whatever the uniforms
        u, v = torch.rand(3, generator=g), float(torch.rand((), generator=g))
        assert speculative_accept(p, p[:3], draft, u, v) == [1, 4, 2, sample_from_probs(p[3], v)]
    # the target gives the draft token no mass: always rejected, and the residual never proposes it
    p2 = torch.tensor([[0.0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])
    q2 = torch.tensor([[0.5, 0.25, 0.25]])
    for v in (0.0, 0.3, 0.7, 0.999):
        out = speculative_accept(p2, q2, torch.tensor([0]), torch.tensor([0.0]), v)
        assert len(out) == 1 and out[0] in (1, 2)
    # accepted exactly when u < p/q
    p3, q3 = torch.tensor([[0.2, 0.8], [0.5, 0.5]]), torch.tensor([[0.4, 0.6]])
    assert speculative_accept(p3, q3, torch.tensor([0]), torch.tensor([0.49]), 0.0) == [0, 0]
    assert speculative_accept(p3, q3, torch.tensor([0]), torch.tensor([0.51]), 0.0) == [1]  # residual = [0, 1]


@pytest.mark.parametrize("draft_kind", ["sampled", "deterministic"])
def test_speculative_accept_emits_the_target_distribution(draft_kind):
    """Whatever the draft, the first emitted token is distributed as the target's p[0] (Leviathan et al.,
    Theorem 1). A deterministic draft (prompt lookup) is q = one-hot on its guess."""
    gamma, vocab, n = 2, 5, 4000
    p = _dists(gamma + 1, vocab, seed=2)
    q = _dists(gamma, vocab, seed=3)
    if draft_kind == "deterministic":
        q = torch.nn.functional.one_hot(torch.tensor([3, 0]), vocab).float()
    g = torch.Generator().manual_seed(4)
    drafts = torch.stack([torch.multinomial(q[i], n, replacement=True, generator=g) for i in range(gamma)], 1)
    us, vs = torch.rand(n, gamma, generator=g), torch.rand(n, generator=g).tolist()
    counts = torch.zeros(vocab)
    lengths = []
    for i in range(n):
        out = speculative_accept(p, q, drafts[i], us[i], vs[i])
        counts[out[0]] += 1
        lengths.append(len(out))
    tv = 0.5 * (counts / n - p[0]).abs().sum().item()
    assert tv < 0.05, f"total variation {tv:.3f} between the first emitted token and p[0]"
    assert set(lengths) <= set(range(1, gamma + 2)) and max(lengths) == gamma + 1
    # the acceptance rate of the first guess is sum_x min(p, q) (the overlap of the two distributions)
    accepted = sum(length > 1 for length in lengths) / n
    assert accepted == pytest.approx(float(torch.minimum(p[0], q[0]).sum()), abs=0.03)


# ------------------------------------------------------------------------------------------ drafts


def test_prompt_lookup():
    assert prompt_lookup([1, 2, 3, 4, 1, 2], gamma=3) == [3, 4, 1]
    assert prompt_lookup([1, 2, 9, 1, 2, 8, 1, 2], gamma=1) == [8]  # the latest earlier match wins
    # the longest n-gram first: the 3-gram [5, 1, 2] points to 7, the 2-gram [1, 2] would point to 6
    text = [5, 1, 2, 7, 3, 1, 2, 6, 5, 1, 2]
    assert prompt_lookup(text, gamma=2, max_ngram=3) == [7, 3]
    assert prompt_lookup(text, gamma=2, max_ngram=2) == [6, 5]
    assert prompt_lookup([1, 2, 1, 2], gamma=5) == [1, 2]  # as many as there are
    assert prompt_lookup([1, 2, 3], gamma=4) == []  # no match
    assert prompt_lookup([7], gamma=4) == []
    assert prompt_lookup([7, 7], gamma=4) == [7]
    assert PromptLookupDraft(max_ngram=2).propose([1, 2, 3, 1, 2], 2) == ([3, 1], None)
    with pytest.raises(ValueError, match="max_ngram"):
        PromptLookupDraft(max_ngram=0)


@torch.no_grad()
def test_layer_draft_is_the_first_layers_sharing_weights(target):
    draft = layer_draft(target, 2)
    assert draft.cfg.n_layers == 2 and len(draft.layers) == 2 and draft.layers[1] is target.layers[1]
    assert target.cfg.n_layers == 3 and len(target.layers) == 3  # the target is untouched
    assert draft.tok_embeddings is target.tok_embeddings and draft.output is target.output
    idx = torch.tensor([_ids(9, seed=20)])
    preds, _ = exit_predictions(target, idx, [2, 3])
    assert torch.equal(draft(idx)[0].argmax(-1), preds[0])  # early exit after 2 blocks
    with pytest.raises(ValueError, match="3 layers"):
        layer_draft(target, 4)
    with pytest.raises(ValueError):
        layer_draft(target, 0)


# ------------------------------------------------------------------------------------------ small models


@pytest.mark.parametrize("gamma", [1, 3, 6])
def test_greedy_speculative_equals_generate_on_small_models(target, gamma):
    prompt = _ids(5, seed=21)
    ref = generate(target, prompt, 14)
    drafts = {"lookup": PromptLookupDraft(), "layers": ModelDraft(layer_draft(target, 1)),
              "other model": ModelDraft(_tiny(seed=5)), "itself": ModelDraft(target)}
    for name, draft in drafts.items():
        out, stats = speculative_generate(target, draft, prompt, 14, gamma=gamma)
        assert out == ref, name
        assert stats.rounds <= 14 and stats.accepted <= stats.proposed
        assert stats.accepted + stats.rounds >= 14  # every round yields its accepted guesses and one more
    # a draft reused on another prompt must drop what it cached for the last one (or its guesses go wrong)
    other = _ids(7, seed=24)
    out, stats = speculative_generate(target, drafts["itself"], other, 14, gamma=gamma)
    assert out == generate(target, other, 14) and stats.acceptance_rate == 1.0
    assert stats.rounds == -(-14 // (gamma + 1))  # gamma + 1 tokens per target pass
    assert stats.tokens_per_round == gamma + 1 == expected_tokens_per_round(1.0, gamma)


def test_speculative_eos_empty_and_one_token_prompt(target):
    prompt = _ids(4, seed=22)
    ref = generate(target, prompt, 12)
    eos = ref[4]
    out, _ = speculative_generate(target, ModelDraft(target), prompt, 12, gamma=3, eos_id=eos)
    assert out == generate(target, prompt, 12, eos_id=eos) == ref[:ref.index(eos) + 1]
    assert speculative_generate(target, PromptLookupDraft(), prompt, 0)[0] == []
    assert speculative_generate(target, ModelDraft(target), [3], 6, gamma=2)[0] == generate(target, [3], 6)


def test_speculative_sampling_is_reproducible(target):
    prompt = _ids(4, seed=23)
    a, stats = speculative_generate(target, ModelDraft(target), prompt, 10, gamma=3, temperature=1.0, seed=3)
    assert len(a) == 10 and all(0 <= t < V for t in a)
    b, _ = speculative_generate(target, ModelDraft(target), prompt, 10, gamma=3, temperature=1.0, seed=3)
    assert a == b
    assert stats.acceptance_rate > 0.95  # a draft that is the target: p/q = 1 up to rounding
    c, _ = speculative_generate(target, PromptLookupDraft(), prompt, 10, gamma=3, temperature=0.7, seed=3)
    assert len(c) == 10 and c == speculative_generate(target, PromptLookupDraft(), prompt, 10, gamma=3,
                                                      temperature=0.7, seed=3)[0]


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        (dict(gamma=0), ValueError, "gamma"),
        (dict(gamma=-1), ValueError, "gamma"),
        (dict(gamma=1.5), TypeError, "gamma"),
        (dict(gamma="4"), TypeError, "gamma"),
        (dict(max_new_tokens=-1), ValueError, "max_new_tokens"),
        (dict(max_new_tokens=1.5), TypeError, "max_new_tokens"),
        (dict(temperature=-1.0), ValueError, "temperature"),
        (dict(ids=list(range(17))), ValueError, "context of 16"),
        (dict(ids=list(range(10)), max_new_tokens=7), ValueError, "exceed the context"),
        (dict(ids=list(range(10)), max_new_tokens=4, gamma=3), ValueError, r"\+ gamma \(3\) exceed"),
        (dict(ids=[]), ValueError, "empty"),
    ],
)
def test_speculative_bad_input(kwargs, exc, match):
    model = _tiny(max_seq_len=16)
    args = {**dict(ids=[1, 2, 3], max_new_tokens=4, gamma=2), **kwargs}
    with pytest.raises(exc, match=match):
        speculative_generate(model, PromptLookupDraft(), **args)


# ------------------------------------------------------------------------------------------ SmolLM2


@pytest.fixture(scope="module")
def smollm2():
    pytest.importorskip("gguf")
    from llmlab.models import load_smollm2

    return load_smollm2(device="cpu")


@pytest.fixture(scope="module")
def repetitive(smollm2):
    from llmlab.tokenization.smollm2 import load_smollm2_tokenizer

    ids = load_smollm2_tokenizer().encode("Numbers: 1, 2, 3, 4, 5, 1, 2, 3, 4, 5, 1, 2,")
    return ids, generate(smollm2, ids, 8)


def test_smollm2_prompt_lookup_speculative_equals_generate(smollm2, repetitive):
    ids, ref = repetitive
    out, stats = speculative_generate(smollm2, PromptLookupDraft(), ids, 8, gamma=4)
    assert out == ref
    assert stats.accepted > 0 and stats.rounds < 8  # the text repeats the prompt: fewer target passes


def test_smollm2_self_speculative_equals_generate(smollm2, repetitive):
    ids, ref = repetitive
    out, stats = speculative_generate(smollm2, ModelDraft(layer_draft(smollm2, 6)), ids, 8, gamma=2)
    assert out == ref
    assert len(smollm2.layers) == 30  # the draft did not cut the target


def test_smollm2_int4_draft_speculative_equals_generate(smollm2, repetitive):
    ids, ref = repetitive
    draft = FastDecoder(smollm2, linear=Int4WeightOnlyLinear.from_float, head=Int8WeightOnlyLinear.from_float)
    out, stats = speculative_generate(smollm2, ModelDraft(draft), ids, 8, gamma=4)
    assert out == ref
    assert stats.accepted > 0  # int4 SmolLM2 mostly agrees with SmolLM2
