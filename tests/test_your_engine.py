"""Notebook 14 (your engine): the hidden prompts of its engine check, its diagram, and its demos driven by a
learner's functions (the reference and a catalogued mistake give visibly different results)."""
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from llmlab.diagrams import engine as D  # noqa: E402
from llmlab.grading import your_engine as G  # noqa: E402
from llmlab.grading.demo import which, yours  # noqa: E402
from llmlab.inference import generation, speculative  # noqa: E402
from llmlab.inference.engine import Engine, Parts  # noqa: E402
from llmlab.quant.linear import Int4WeightOnlyLinear  # noqa: E402
from tests.mutants import your_engine as M  # noqa: E402

MARGIN = 0.05


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


# ------------------------------------------------------------------------------------------ the engine check's prompts


def test_prompt_ids_are_the_tokens_of_their_texts():
    from llmlab.tokenization.smollm2 import chat_template, load_smollm2_tokenizer

    tok = load_smollm2_tokenizer()
    for kind, pool in G.PROMPTS.items():
        for text, ids in pool:
            if kind == "long":
                text = chat_template([{"role": "user", "content": text}])
                assert 35 <= len(ids) <= 50, "the long case's name says 35 to 50 tokens"
            else:
                assert len(ids) + G._N_VISIBLE <= 32, "a cache of 32 slots holds the short prompts (the overfit mutant)"
            assert tok.encode(text) == ids, text


def test_stored_greedy_tokens_are_generates():
    """The check's stored reference (GREEDY) is what llmlab's generate gives, for every prompt and every n it asks."""
    model = G._smollm2()
    assert set(G.GREEDY) == {text for pool in G.PROMPTS.values() for text, _ in pool}
    for kind, pool in G.PROMPTS.items():
        for text, ids in pool:
            n = 2 if kind == "long" else G._N_VISIBLE
            assert G.GREEDY[text] == generation.generate(model, ids, n), text
            assert all(G.reference_engine_generate(ids, k) == G.GREEDY[text][:k] for k in range(n + 1))
    assert G.reference_engine_generate([504, 3575], 2) == generation.generate(model, [504, 3575], 2)  # not stored


@pytest.mark.parametrize("kind", ["en", "zh", "long"])
def test_prompts_are_decided_by_a_clear_margin_and_per_token_attention_agrees(kind):
    """At each of the tokens the check asks for, SmolLM2's two best logits are >= MARGIN apart, and the notebook's
    solution (one cached attention call per new token, its own RMSNorm and matmuls) gives generate's tokens."""
    model = G._smollm2()
    n = 2 if kind == "long" else 4
    for text, ids in G.PROMPTS[kind]:
        want = G.reference_engine_generate(ids, n)
        with torch.no_grad():
            logits = model(torch.tensor([ids + want]))[0, len(ids) - 1:len(ids) - 1 + n]
        top = logits.topk(2, -1).values
        assert float((top[:, 0] - top[:, 1]).min()) >= MARGIN, text
        assert M.engine_solution(ids, n) == want, text


# ------------------------------------------------------------------------------------------ the diagram


def test_engine_step_colours_each_part_by_who_ran_it():
    fig = D.engine_step({"write_kv": "yours", "top_p_filter": "llmlab's reference"}, n_layers=30)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    texts = {t.get_text() for t in ax.texts}
    assert {"write_kv", "top_p_filter", "greedy_accept", "30 layers\n(the row below)"} <= texts
    colour = {t.get_text(): t for t in ax.texts}

    def face(label):  # the box under a label: the last drawn of those around it (the frames come first)
        x, y = colour[label].get_position()
        return [p.get_facecolor() for p in ax.patches if p.contains_point(ax.transData.transform((x, y)))][-1]

    to_rgba = matplotlib.colors.to_rgba
    assert face("write_kv") == to_rgba(D.STATES["yours"])
    assert face("top_p_filter") == to_rgba(D.STATES["llmlab's reference"])
    assert face("greedy_accept") == to_rgba(D.STATES["not run"])


def test_engine_step_draws_what_which_reports():
    ran = yours(lambda x: x, lambda x: x, name="write_kv", quiet=True)
    ran(1)
    assert isinstance(D.engine_step(which(ran, yours(len, len, name="greedy_accept", quiet=True))), Figure)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(parts=[("write_kv", "yours")]), TypeError, "parts"),
    (dict(parts={"write_kv": 1}), TypeError, "parts"),
    (dict(parts={"softmax": "yours"}), ValueError, "parts"),
    (dict(parts={"write_kv": "mine"}), ValueError, "parts"),
    (dict(parts={}), ValueError, "parts"),
    (dict(n_layers=0), ValueError, "n_layers"),
    (dict(n_layers=10**12), ValueError, "n_layers"),
    (dict(n_layers=2.5), TypeError, "n_layers"),
])
def test_engine_step_refuses_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        D.engine_step(**({"parts": {"write_kv": "yours"}} | kwargs))


# ------------------------------------------------------------------------------------------ the demos


@pytest.fixture(scope="module")
def small():
    """SmolLM2's first 2 layers (with its final norm and head): the demos' computations in a second."""
    return speculative.layer_draft(G._smollm2(), 2)


def _ids():
    return [ids for _, ids in G.PROMPTS["en"]][:3]


def test_int4_demo_perplexity_shows_a_wrong_minimum(small, capsys):
    """Section 3: the int4 engine's perplexity, with the reference storage and with a minimum of +8 s."""
    text = sum(_ids(), [])

    def cross_entropy(storage):
        def make(w):
            codes, scale, minimum = storage(w, 0.2, 32)
            return Int4WeightOnlyLinear(codes, scale.float(), minimum.float(), 32)
        eng = Engine(small, Parts(linear=make, head=make), max_len=64)
        logits = eng(text)
        return F.cross_entropy(logits[:-1], torch.tensor(text[1:])).item()  # the log of the perplexity

    good = cross_entropy(yours(G.reference_int4_storage, G.reference_int4_storage, name="int4_storage"))
    bad = cross_entropy(yours(M.int4_positive_minimum, G.reference_int4_storage, name="int4_storage"))
    assert "▶ int4_storage: yours" in capsys.readouterr().out
    assert bad > good + math.log(10)  # ten times the perplexity, at least


def test_speculative_demo_shows_a_wrong_verdict(small, capsys):
    """Section 4: the speculative round with prompt lookup; a verdict that adds the bonus token after a rejection
    gives other tokens than greedy decoding."""
    eng = Engine(small, max_len=128)
    prompt = [5, 6, 7, 8, 9, 5, 6, 7, 8, 9, 5, 6, 7]

    def run(accept, n=12, gamma=4):
        tokens = list(prompt)
        eng.length = 0
        eng(tokens[:-1])
        while len(tokens) - len(prompt) < n:
            draft = speculative.prompt_lookup(tokens, gamma, 3)[:gamma]
            start = eng.length
            new = accept(eng(tokens[-1:] + draft).argmax(-1).tolist(), draft)
            eng.length = start + len(new)
            tokens += new
        return tokens[len(prompt):len(prompt) + n]

    greedy = eng.generate(prompt, 12)
    assert run(yours(speculative.greedy_accept, speculative.greedy_accept, name="greedy_accept")) == greedy
    assert run(yours(M.greedy_last_target, speculative.greedy_accept, name="greedy_accept")) != greedy
    assert capsys.readouterr().out.count("▶ greedy_accept: yours") == 2


def test_engine_demo_shows_wrong_decode_positions(capsys):
    """Section 5: the engine's tokens against llmlab's, with RoPE positions that restart at every decode step."""
    model = G._smollm2()
    ids = G.PROMPTS["zh"][0][1]
    mine = yours(M.engine_positions_restart, lambda i, n: generation.generate(model, i, n), name="engine_generate")
    assert mine(ids, 4) != generation.generate(model, ids, 4)
    assert "▶ engine_generate: yours" in capsys.readouterr().out
