"""The demos of notebook 08 (fast inference) run the learner's functions: SmolLM2 decoded by an ``Engine`` whose
parts are catalogued mistakes gives visibly other tokens (or, for speculative decoding, the same tokens with other
acceptance statistics) than with the reference parts, and ``yours`` says which implementation ran. Also: the optional
function parameters the demos use (``generate_batch(pad=)``, ``speculative_generate(accept=)``,
``PromptLookupDraft(lookup=)``: default behaviour unchanged, bad values refused) and the diagrams of
``llmlab.diagrams.inference``.
"""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from llmlab.diagrams import inference as diagram  # noqa: E402
from llmlab.grading.demo import yours  # noqa: E402
from llmlab.inference import early_exit, engine, generation, long_context, speculative  # noqa: E402
from llmlab.inference.engine import Engine, Parts  # noqa: E402
from llmlab.inference.generation import Sampling, generate, generate_batch  # noqa: E402
from llmlab.nn import kv_cache  # noqa: E402
from llmlab.nn.kv_cache import SlidingWindowCache  # noqa: E402
from tests.demos import said, stub  # noqa: E402
from tests.fuzz import fixtures as F  # noqa: E402
from tests.mutants import fast_inference as mutants  # noqa: E402

CODE = "def area(w, h):\n    return w * h\n\ndef perimeter(w, h):\n    return 2 * (w + h)\n\ndef area(w"


@pytest.fixture(scope="module")
def smol():
    """SmolLM2-135M (all 30 blocks), its tokenizer, and one Engine whose parts each test swaps (``weight`` and
    ``linear`` act when an engine is built; the others are read at every forward pass)."""
    from llmlab.models import load_smollm2
    from llmlab.tokenization.smollm2 import load_smollm2_tokenizer

    torch.set_grad_enabled(False)
    model = load_smollm2(device="cpu")
    eng = Engine(model, max_len=128)
    yield model, load_smollm2_tokenizer(), eng
    torch.set_grad_enabled(True)


def run(eng: Engine, parts: Parts, *args, method: str = "generate", **kwargs):
    eng.parts = parts
    try:
        return getattr(eng, method)(*args, **kwargs)
    finally:
        eng.parts = Parts()


# ------------------------------------------------------------------------------------------ the engine's parts


def test_a_kv_cache_written_one_slot_off_changes_the_tokens(smol, capsys):
    model, tok, eng = smol
    ids = tok.encode("The capital of France is")
    want = run(eng, Parts(), ids, 6)
    assert want == generate(model, ids, 6)  # the engine with the reference parts is llmlab's generate
    mine = run(eng, Parts(write_kv=yours(mutants.kv_off_by_one, kv_cache.write_kv, name="write_kv")), ids, 6)
    said(capsys, "write_kv", "yours")
    assert mine != want
    # a stub hands over to the reference: the tokens are llmlab's
    assert run(eng, Parts(write_kv=yours(stub, kv_cache.write_kv, name="write_kv")), ids, 6) == want
    said(capsys, "write_kv", "llmlab's reference")


def test_tiled_gqa_heads_in_cached_attention_change_the_tokens(smol, capsys):
    _, tok, eng = smol
    ids = tok.encode("The capital of France is")
    want = run(eng, Parts(), ids, 6)
    mine = run(eng, Parts(cached_attention=yours(mutants.attn_tiled_repeat, engine.cached_attention,
                                                 name="cached_attention")), ids, 6)
    said(capsys, "cached_attention", "yours")
    assert sum(a != b for a, b in zip(mine, want)) >= 2


def test_an_unsorted_top_p_makes_the_sampled_text_another(smol, capsys):
    _, tok, eng = smol
    ids = tok.encode("Once upon a time,")
    s = Sampling(temperature=0.8, top_p=0.5, seed=0)
    want = run(eng, Parts(), ids, 8, s)
    assert want == generate(smol[0], ids, 8, s)  # the seeded engine samples what generate samples
    mine = run(eng, Parts(top_p_filter=yours(mutants.top_p_unsorted, generation.top_p_filter, name="top_p_filter")),
               ids, 8, s)
    said(capsys, "top_p_filter", "yours")
    # the nucleus taken in vocabulary order keeps the first ids: BPE numbers its tokens roughly by frequency, so at
    # p = 0.9 that is often nearly right; at p = 0.5 it is another story
    assert sum(a != b for a, b in zip(mine, want)) >= 4, (tok.decode(want), tok.decode(mine))


def test_a_prompt_lookup_that_matches_the_tail_itself_drafts_nothing(smol, capsys):
    """Speculative decoding is exact: a worse draft gives the same tokens, in more forward passes."""
    _, tok, eng = smol
    ids = tok.encode(CODE)
    plain = run(eng, Parts(), ids, 12)
    want, ref = run(eng, Parts(), ids, 12, method="speculative_generate", gamma=4)
    lookup = yours(mutants.lookup_matches_itself, speculative.prompt_lookup, name="prompt_lookup")
    mine, st = run(eng, Parts(prompt_lookup=lookup), ids, 12, method="speculative_generate", gamma=4)
    said(capsys, "prompt_lookup", "yours")
    assert want == plain and mine == plain
    assert ref.accepted >= 4 and ref.rounds <= 8
    assert (st.proposed, st.accepted, st.rounds) == (0, 0, 12)  # the tail always matches itself: nothing follows it


# ------------------------------------------------------------------------------------------ batching: pad=


def test_generate_batch_pads_with_the_learners_left_pad(smol, capsys):
    model, tok, _ = smol
    prompts = [tok.encode(t) for t in ("The capital of France is", "Hello", "def fibonacci(n):\n    return")]
    want = generate_batch(model, prompts, 4)
    assert generate_batch(model, prompts, 4, pad=yours(generation.left_pad, generation.left_pad)) == want
    said(capsys, "left_pad", "yours")
    right = generate_batch(model, prompts, 4, pad=yours(mutants.pad_right, generation.left_pad, name="left_pad"))
    said(capsys, "left_pad", "yours")
    longest = max(range(3), key=lambda i: len(prompts[i]))
    assert right[longest] == want[longest]  # the longest prompt has no padding
    assert all(right[i] != want[i] for i in range(3) if i != longest)  # the others read their next token off a pad
    # a bool mask (a dtype slip) is read as 0/1: the same tokens
    assert generate_batch(model, prompts, 4, pad=mutants.pad_bool_mask) == want


def test_generate_batch_refuses_a_bad_pad():
    model = F.decoder()
    prompts = [[1, 2, 3], [4, 5]]
    with pytest.raises(TypeError, match="pad"):
        generate_batch(model, prompts, 2, pad="left")
    with pytest.raises(TypeError, match="pad"):
        generate_batch(model, prompts, 2, pad=lambda p, i: [[0]])
    with pytest.raises(ValueError, match="pad"):  # one row short
        generate_batch(model, prompts, 2, pad=lambda p, i: generation.left_pad(p[:1], i))
    with pytest.raises(ValueError, match="pad"):  # cut to the shortest prompt
        generate_batch(model, prompts, 2, pad=lambda p, i: tuple(t[:, -2:] for t in generation.left_pad(p, i)))
    with pytest.raises(TypeError, match="pad"):
        generate_batch(model, prompts, 2, pad=lambda p, i: tuple(t.float() for t in generation.left_pad(p, i)))
    with pytest.raises(TypeError, match="pad"):
        list(generation.stream_batch(model, prompts, 2, pad=3))


def test_generate_batch_pad_gets_a_copy_and_defaults_to_left_pad():
    model = F.decoder()
    prompts = [[1, 2, 3], [4, 5]]

    def pad_and_spoil(p, pad_id):
        out = generation.left_pad(p, pad_id)
        p[0].append(7)
        return out

    assert generate_batch(model, prompts, 3, pad=pad_and_spoil) == generate_batch(model, prompts, 3)
    assert prompts == [[1, 2, 3], [4, 5]]


# -------------------------------------------------------------------------------------- speculative: accept=, lookup=


def _draft_model(model):
    return speculative.ModelDraft(speculative.layer_draft(model, 4))  # cheap, and a draft with its own q


def test_sampled_speculative_decoding_with_the_learners_accept(smol, capsys):
    model, tok, _ = smol
    ids = tok.encode(CODE)
    kw = dict(gamma=3, temperature=0.8, seed=1)
    want, ref = speculative.speculative_generate(model, _draft_model(model), ids, 8, **kw)
    same, st = speculative.speculative_generate(model, _draft_model(model), ids, 8, accept=yours(
        speculative.speculative_accept, speculative.speculative_accept), **kw)
    said(capsys, "speculative_accept", "yours")
    assert (same, st) == (want, ref)  # the reference through accept= is the default, draw for draw
    # prompt lookup's draft is one-hot (q(d) = 1): a verdict that accepts only when p >= q rejects every guess
    draft = speculative.PromptLookupDraft(3)
    want, ref = speculative.speculative_generate(model, draft, ids, 8, **kw)
    mine, bad = speculative.speculative_generate(model, draft, ids, 8, accept=yours(
        mutants.accept_if_p_ge_q, speculative.speculative_accept, name="speculative_accept"), **kw)
    said(capsys, "speculative_accept", "yours")
    assert ref.accepted >= 2 and bad.accepted == 0 and bad.rounds == 8


def test_speculative_generate_refuses_a_bad_accept():
    model = F.decoder()
    ids = [1, 2, 1, 2, 1]
    draft = speculative.PromptLookupDraft(2)
    with pytest.raises(TypeError, match="accept"):
        speculative.speculative_generate(model, draft, ids, 3, gamma=2, temperature=1.0, seed=0, accept="yes")
    with pytest.raises(ValueError, match="accept"):  # nothing returned: the round would never end
        speculative.speculative_generate(model, draft, ids, 3, gamma=2, temperature=1.0, seed=0,
                                         accept=lambda p, q, d, u, v: [])
    with pytest.raises(ValueError, match="accept"):  # more than the drafts and one token
        speculative.speculative_generate(model, draft, ids, 3, gamma=2, temperature=1.0, seed=0,
                                         accept=lambda p, q, d, u, v: [1] * (len(d) + 2))
    with pytest.raises(TypeError, match="accept"):
        speculative.speculative_generate(model, draft, ids, 3, gamma=2, temperature=1.0, seed=0,
                                         accept=lambda p, q, d, u, v: [0.5])
    # a tensor of ids is read as a list; greedy rounds never call accept
    out = speculative.speculative_generate(model, draft, ids, 3, gamma=2, temperature=1.0, seed=0,
                                           accept=lambda *a: torch.tensor(speculative.speculative_accept(*a)))
    assert out == speculative.speculative_generate(model, draft, ids, 3, gamma=2, temperature=1.0, seed=0)
    assert speculative.speculative_generate(model, draft, ids, 3, gamma=2, accept=stub) == \
        speculative.speculative_generate(model, draft, ids, 3, gamma=2)


def test_prompt_lookup_draft_with_the_learners_lookup():
    tokens = [1, 2, 3, 9, 1, 2, 3, 4, 5, 6, 1, 2, 3]
    assert speculative.PromptLookupDraft(3).propose(list(tokens), 3) == ([4, 5, 6], None)
    mine = speculative.PromptLookupDraft(3, lookup=mutants.lookup_earliest)
    assert mine.propose(list(tokens), 3) == ([9, 1, 2], None)
    # at most γ ids are proposed, a tensor is read as a list, and the lookup gets a copy of the tokens
    seen = []

    def greedy_lookup(t, gamma, n):
        seen.append(t)
        t.append(0)
        return torch.tensor([7, 7, 7, 7, 7])

    given = list(tokens)
    assert speculative.PromptLookupDraft(3, lookup=greedy_lookup).propose(given, 2) == ([7, 7], None)
    assert given == tokens and seen[0] is not given
    with pytest.raises(TypeError, match="lookup"):
        speculative.PromptLookupDraft(3, lookup=[1, 2])
    with pytest.raises(TypeError, match="lookup"):
        speculative.PromptLookupDraft(3, lookup=lambda t, g, n: "4 5").propose(tokens, 2)
    model = F.decoder()
    ids = [1, 2, 1, 2, 1, 2, 1]
    assert speculative.speculative_generate(model, speculative.PromptLookupDraft(2, lookup=speculative.prompt_lookup),
                                            ids, 4, gamma=2) == \
        speculative.speculative_generate(model, speculative.PromptLookupDraft(2), ids, 4, gamma=2)


# ------------------------------------------------------------------------------------------ early exit, long inputs


def test_an_exit_rule_without_the_last_exit_fallback_changes_the_tradeoff(smol, capsys):
    model, tok, _ = smol
    ids = torch.tensor([tok.encode("The function returns a list of the lines of the file, without their newlines.")])
    exits, taus = [5, 10, 15, 20, 25, 30], [0.4, 0.9, 0.99]
    preds, conf = early_exit.exit_predictions(model, ids, exits)
    want = early_exit.exit_tradeoff(preds, conf, exits, 30, taus)
    mine = early_exit.exit_tradeoff(preds, conf, exits, 30, taus, choose=yours(
        mutants.exit_no_fallback, early_exit.choose_exit, name="choose_exit"))
    said(capsys, "choose_exit", "yours")
    # positions that no exit is sure of leave after 5 blocks instead of 30: less compute, lower agreement
    assert mine[-1].layers_fraction < want[-1].layers_fraction and mine[-1].agreement < want[-1].agreement
    assert early_exit.exit_tradeoff(preds, conf, exits, 30, taus, choose=yours(
        stub, early_exit.choose_exit, name="choose_exit")) == want
    said(capsys, "choose_exit", "llmlab's reference")


def test_a_window_one_key_too_wide_no_longer_matches_the_window_cache(smol, capsys):
    model, tok, _ = smol
    ids = tok.encode(CODE * 2)[:41]
    cache = SlidingWindowCache.for_model(model, 1, window=8, sink=2)
    by_token = long_context.chunked_nll(model, ids, chunk=1, cache=cache)
    mask = yours(mutants.window_one_too_many, long_context.sliding_window_mask, name="sliding_window_mask")
    mine = long_context.masked_nll(model, ids, mask(40, 8, 2))
    said(capsys, "sliding_window_mask", "yours")
    want = long_context.masked_nll(model, ids, long_context.sliding_window_mask(40, 8, 2))
    assert float((want - by_token).abs().max()) < 1e-3  # the demo's line: one pass = the cache, token by token
    assert float((mine - by_token).abs().max()) > 1e-2  # with one key too many it is not


# ------------------------------------------------------------------------------------------ diagrams


def test_kv_cache_filling_draws_a_real_generation(smol):
    _, tok, eng = smol
    ids = tok.encode("The KV cache stores")
    eng.length = 0
    logits, lengths, fed = eng(ids)[-1], [eng.length], list(ids)
    for _ in range(3):
        fed.append(int(logits.argmax()))
        logits = eng(fed[-1:])[-1]
        lengths.append(eng.length)
    assert lengths == [len(ids) + i for i in range(4)]
    fig = diagram.kv_cache_filling(lengths, [tok.decode([t]) for t in fed], capacity=eng.max_len,
                                   slot_bytes=2 * eng.k_cache[:, :, :, :1].nbytes)
    assert isinstance(fig, plt.Figure)
    text = " ".join(t.get_text() for t in fig.axes[0].texts)
    assert "46,080 bytes per slot" in text and "up to\nslot 127" in text and "prefill (5 tokens)" in text
    plt.close(fig)
    fig = diagram.kv_cache_filling([4, 9, 6])  # a rollback (speculative decoding) shows its own colour
    assert any("rolled back" in t.get_text() for t in fig.axes[0].texts)
    plt.close(fig)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(lengths=[]), ValueError, "lengths"),
    (dict(lengths="123"), TypeError, "lengths"),
    (dict(lengths=[3, -1]), ValueError, "lengths"),
    (dict(lengths=[3, 4.0]), TypeError, "lengths"),
    (dict(lengths=[60]), ValueError, "lengths"),
    (dict(lengths=list(range(1, 30))), ValueError, "lengths"),
    (dict(lengths=[3, 4], tokens=["a", "b"]), ValueError, "tokens"),
    (dict(lengths=[3, 4], tokens="abcd"), TypeError, "tokens"),
    (dict(lengths=[3, 4], capacity=3), ValueError, "capacity"),
    (dict(lengths=[3, 4], slot_bytes=0), ValueError, "slot_bytes"),
    (dict(lengths=[3, 4], title=3), TypeError, "title"),
    (dict(lengths=[3, 4], title=""), ValueError, "title"),
    (dict(lengths=[3, 4], capacity=10**12), ValueError, "capacity"),
])
def test_kv_cache_filling_refuses_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        diagram.kv_cache_filling(**kwargs)


def test_replay_rounds_splits_a_run_into_its_rounds():
    # round 1 accepts all 3 (+ bonus 9), round 2 drafts nothing (+ 5), round 3 accepts 1 of 3 (+ correction 8)
    drafts = [[1, 2, 3], [], [6, 7, 7]]
    output = [1, 2, 3, 9, 5, 6, 8]
    assert diagram.replay_rounds(drafts, output) == [([1, 2, 3], 3, 9), ([], 0, 5), ([6, 7, 7], 1, 8)]
    assert diagram.replay_rounds(drafts + [[1]], output) == diagram.replay_rounds(drafts, output)  # past the end
    assert diagram.replay_rounds([[1, 2, 3]], [1, 2]) == [([1, 2, 3], 2, -1)]  # cut off by max_new_tokens
    with pytest.raises(TypeError, match="drafts"):
        diagram.replay_rounds("123", output)
    with pytest.raises(TypeError, match="output"):
        diagram.replay_rounds(drafts, [1.0])


def test_speculative_rounds_draws_a_real_run(smol, capsys):
    _, tok, eng = smol
    drafts = []

    def recorded(tokens, gamma, max_ngram):
        d = speculative.prompt_lookup(tokens, gamma, max_ngram)
        drafts.append(d)
        return d

    out, st = run(eng, Parts(prompt_lookup=recorded), tok.encode(CODE), 12, method="speculative_generate", gamma=4)
    rounds = diagram.replay_rounds(drafts, out)
    # the last round may be cut by max_new_tokens: the output cannot show the guesses accepted past its end
    assert len(rounds) == st.rounds and sum(n for _, n, _ in rounds) <= st.accepted
    assert sum(n for _, n, _ in rounds[:-1]) + len(rounds) - 1 <= 12
    fig = diagram.speculative_rounds(drafts, out, tok.decode)
    assert isinstance(fig, plt.Figure) and f"12 tokens in {st.rounds} passes" in fig.axes[0].get_title()
    plt.close(fig)
    for kwargs, error in [(dict(decode="tok"), TypeError), (dict(max_rounds=0), ValueError),
                          (dict(title=1), TypeError)]:
        with pytest.raises(error, match=next(iter(kwargs))):
            diagram.speculative_rounds(drafts, out, **kwargs)
    with pytest.raises(ValueError, match="output"):
        diagram.speculative_rounds(drafts, [])
    with pytest.raises(ValueError, match="drafts"):
        diagram.speculative_rounds([], out)
    with pytest.raises(ValueError, match="drafts"):
        diagram.speculative_rounds([[1] * 9], [1] * 10)
