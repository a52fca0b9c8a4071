"""llmlab.prune: magnitude masks (per row, per tensor, global), N:M, Wanda, structured head/neuron removal.

Oracles: ``torch.nn.utils.prune`` (``l1_unstructured`` and ``global_unstructured``) for the masks, brute
force for N:M groups, the dense model with a unit's output zeroed for structured pruning (removing a head
or neuron must give exactly that model, only smaller), and the real SmolLM2 for Wanda vs magnitude."""
import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.nn.utils.prune as tprune

from llmlab.nn.model import Decoder, DecoderConfig
from llmlab.prune import magnitude, nm, structured, wanda
from llmlab.prune.apply import prune_model
from tests.test_inference import _threads_per_worker  # noqa: F401 (an autouse fixture: threads per xdist worker)

TINY = DecoderConfig(vocab_size=64, dim=48, n_layers=2, n_heads=6, n_kv_heads=2, hidden_dim=40, max_seq_len=64)


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.fixture
def tiny():
    torch.manual_seed(0)
    return Decoder(TINY).eval()


def _ids(seed=1, shape=(3, 20)):
    return torch.randint(0, TINY.vocab_size, shape, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------------------ magnitude


@pytest.mark.parametrize("sparsity", [0.0, 0.1, 0.37, 0.5, 0.9])
def test_tensor_scope_equals_torch_l1_unstructured(sparsity):
    lin = nn.Linear(30, 20)
    with torch.no_grad():
        lin.weight.copy_(_randn(20, 30, seed=2))
    tprune.l1_unstructured(lin, "weight", amount=sparsity)
    assert torch.equal(magnitude.magnitude_mask(lin.weight_orig, sparsity, "tensor"), lin.weight_mask.bool())


@pytest.mark.parametrize("sparsity", [0.25, 0.5, 0.8])
def test_row_scope_equals_l1_unstructured_on_each_row(sparsity):
    w = _randn(12, 40, seed=3)
    want = []
    for row in w:
        holder = nn.Module()
        holder.register_parameter("weight", nn.Parameter(row.clone()))
        tprune.l1_unstructured(holder, "weight", amount=sparsity)
        want.append(holder.weight_mask.bool())
    mask = magnitude.magnitude_mask(w, sparsity)
    assert torch.equal(mask, torch.stack(want))
    assert (mask.sum(1) == 40 - round(sparsity * 40)).all()  # every row keeps the same count


def test_ties_go_in_order_of_position_on_every_scope():
    s = torch.tensor([[1.0, 2, 2, 2], [3, 2, 0, 5]])  # quantized weights tie a lot
    assert magnitude.prune_mask(s, 0.5).tolist() == [[False, False, True, True], [True, False, False, True]]
    assert magnitude.prune_mask(s, 0.5, "tensor").tolist() == [[False, False, False, True], [True, True, False, True]]
    assert magnitude.global_masks({"a": s[:1], "b": s[1:]}, 0.75)["a"].tolist() == [[False] * 4]


def test_global_masks_equal_torch_global_unstructured():
    layers = [nn.Linear(16, 8), nn.Linear(8, 24), nn.Linear(24, 4)]
    with torch.no_grad():
        for i, lin in enumerate(layers):
            lin.weight.mul_(10 ** (i - 1))  # very different scales: a global threshold treats them unequally
    scores = {str(i): lin.weight.detach().abs().clone() for i, lin in enumerate(layers)}
    tprune.global_unstructured([(lin, "weight") for lin in layers], pruning_method=tprune.L1Unstructured, amount=0.6)
    masks = magnitude.global_masks(scores, 0.6)
    for i, lin in enumerate(layers):
        assert torch.equal(masks[str(i)], lin.weight_mask.bool())
    assert masks["0"].float().mean() < 0.1 < 0.8 < masks["2"].float().mean()  # the small layer loses nearly all


def test_weight_change_ratio_and_sparsity_of():
    w = torch.tensor([[3.0, -4.0], [0.0, 0.0]])
    assert magnitude.weight_change_ratio(w, torch.tensor([[True, False], [True, True]])) == pytest.approx(0.8)
    assert magnitude.sparsity_of([w, torch.ones(2)]) == pytest.approx(2 / 6)


# ------------------------------------------------------------------------------------------ N:M


def test_nm_mask_keeps_the_n_largest_of_every_group_of_m_along_k():
    s = _randn(10, 32, seed=4).abs()
    for n, m in [(2, 4), (1, 4), (4, 8), (3, 8)]:
        mask = nm.nm_mask(s, n, m)
        groups, scores = mask.reshape(10, -1, m), s.reshape(10, -1, m)
        assert (groups.sum(-1) == n).all()
        kept_min = torch.where(groups, scores, torch.inf).amin(-1)
        dropped_max = torch.where(groups, -torch.inf, scores).amax(-1)
        assert (kept_min > dropped_max).all()
        assert nm.is_nm_sparse(s * mask, n, m)
    assert not nm.is_nm_sparse(s, 2, 4)


def test_two_four_mask_matches_torch_semi_structured_layout():
    """The pattern torch's 2:4 kernels accept: groups of 4 along each row, i.e. along the reduction dim."""
    w = _randn(8, 16, seed=5) * nm.nm_mask(_randn(8, 16, seed=5).abs())
    assert ((w != 0).reshape(8, 4, 4).sum(-1) == 2).all()
    assert not ((w != 0).T.reshape(16, 2, 4).sum(-1) == 2).all()  # not along the columns


# ------------------------------------------------------------------------------------------ Wanda


def test_wanda_scores_and_input_norms(tiny):
    ids = _ids()
    norms = wanda.input_norms(tiny, [ids[:2], ids[2:]])
    from llmlab.quant.smooth import linear_inputs

    x = linear_inputs(tiny, [(ids[:2],), (ids[2:],)], ["layers.1.feed_forward.w2"])["layers.1.feed_forward.w2"]
    torch.testing.assert_close(norms["layers.1.feed_forward.w2"], x.norm(dim=0))
    w = tiny.layers[1].feed_forward.w2.weight
    torch.testing.assert_close(wanda.wanda_scores(w, x.norm(dim=0)), w.abs() * x.norm(dim=0))
    assert set(norms) == {f"layers.{i}.{n}" for i in range(2) for n in
                          ("attention.wq", "attention.wk", "attention.wv", "attention.wo",
                           "feed_forward.w1", "feed_forward.w2", "feed_forward.w3")}


def test_prune_model_reaches_the_asked_sparsity_and_only_prunes_what_it_is_told(tiny):
    norms = wanda.input_norms(tiny, [_ids()])
    a = copy.deepcopy(tiny)
    prune_model(a, 0.5, norms=norms)
    for m in a.layers.modules():
        if isinstance(m, nn.Linear):
            assert magnitude.sparsity_of(m.weight) == pytest.approx(0.5, abs=0.02)
    b = copy.deepcopy(tiny)
    masks = prune_model(b, nm=(2, 4), only="w2")
    assert set(masks) == {"layers.0.feed_forward.w2", "layers.1.feed_forward.w2"}
    assert nm.is_nm_sparse(b.layers[0].feed_forward.w2.weight)
    assert torch.equal(b.layers[0].feed_forward.w1.weight, tiny.layers[0].feed_forward.w1.weight)


# ------------------------------------------------------------------------------------------ structured


def _zero_head_outputs(model, layer, heads):
    m = copy.deepcopy(model)
    D = TINY.dim // TINY.n_heads
    with torch.no_grad():
        for h in heads:
            m.layers[layer].attention.wo.weight[:, h * D:(h + 1) * D] = 0
    return m


def test_removing_heads_equals_zeroing_their_output_and_shrinks_the_matrices(tiny):
    ids = _ids()
    small = copy.deepcopy(tiny)
    structured.prune_heads(small.layers[0].attention, [0, 2, 4, 5])  # 2 of 3 heads in each KV group
    attn = small.layers[0].attention
    assert attn.wq.weight.shape == (32, 48) and attn.wo.weight.shape == (48, 32) and attn.n_heads == 4
    assert attn.wk.weight.shape == (16, 48)  # the KV heads stay
    torch.testing.assert_close(small(ids), _zero_head_outputs(tiny, 0, [1, 3])(ids))


def test_removing_neurons_equals_zeroing_them_and_cached_generation_still_works(tiny):
    from llmlab.inference.generation import generate

    ids = _ids()
    small = copy.deepcopy(tiny)
    keep = [0, 3, 5, 7, 11, 20, 39]
    structured.prune_neurons(small.layers[1].feed_forward, keep)
    ref = copy.deepcopy(tiny)
    with torch.no_grad():
        drop = [j for j in range(TINY.hidden_dim) if j not in keep]
        ref.layers[1].feed_forward.w2.weight[:, drop] = 0
    torch.testing.assert_close(small(ids), ref(ids))
    assert small.layers[1].feed_forward.w2.weight.shape == (48, 7)
    structured.prune_heads(small.layers[1].attention, [1, 4])
    prompt = ids[0, :5].tolist()
    out = generate(small, prompt, 6)  # with the KV cache
    greedy = list(prompt)
    for _ in range(6):
        greedy.append(int(small(torch.tensor([greedy]))[0, -1].argmax()))
    assert out == greedy[5:]


def test_unit_importance_is_the_norm_of_what_the_unit_adds(tiny):
    ids = _ids()
    scores = structured.importances(tiny, [ids])
    from llmlab.quant.smooth import linear_inputs

    x = linear_inputs(tiny, [(ids,)], ["layers.1.attention.wo", "layers.1.feed_forward.w2"])
    D = TINY.dim // TINY.n_heads
    wo, w2 = tiny.layers[1].attention.wo.weight, tiny.layers[1].feed_forward.w2.weight
    heads = torch.stack([(x["layers.1.attention.wo"][:, h * D:(h + 1) * D] @ wo[:, h * D:(h + 1) * D].T).norm()
                         for h in range(TINY.n_heads)])
    torch.testing.assert_close(scores["layers.1.heads"], heads, rtol=1e-4, atol=1e-6)
    xn = x["layers.1.feed_forward.w2"]
    torch.testing.assert_close(scores["layers.1.neurons"], xn.norm(dim=0) * w2.norm(dim=0), rtol=1e-4, atol=1e-6)


def test_select_heads_keeps_the_best_of_each_kv_group():
    imp = torch.tensor([0.1, 0.9, 0.5, 3.0, 2.0, 0.2])
    assert structured.select_heads(imp, 2, 2).tolist() == [1, 2, 3, 4]
    assert structured.select_heads(imp, 3, 1).tolist() == [1, 3, 4]


def test_prune_structured_builds_a_smaller_model(tiny):
    scores = structured.importances(tiny, [_ids()])
    small = structured.prune_structured(copy.deepcopy(tiny), scores, heads_per_group=1, neuron_fraction=0.5)
    n = lambda m: sum(p.numel() for p in m.layers.parameters())
    assert n(small) < 0.6 * n(tiny)
    assert small(_ids()).shape == tiny(_ids()).shape


# ------------------------------------------------------------------------------------------ SmolLM2


def test_wanda_beats_magnitude_on_smollm2():
    pytest.importorskip("gguf")
    from llmlab import data
    from llmlab.models import load_smollm2
    from llmlab.tokenization.smollm2 import load_smollm2_tokenizer

    tok, model = load_smollm2_tokenizer(), load_smollm2(device="cpu")
    ids = torch.tensor(tok.encode(data.pydoc_text("val")[:4000])[:256])[None]
    calib = torch.tensor(tok.encode(data.pydoc_text("train")[:8000])[:512]).reshape(2, 256)

    def ppl(m):
        with torch.no_grad():
            return float(F.cross_entropy(m(ids)[0, :-1], ids[0, 1:]).exp())

    dense = ppl(model)
    norms = wanda.input_norms(model, [calib])
    pruned = {}
    for name, kw in {"magnitude": {}, "wanda": {"norms": norms}}.items():
        m = copy.deepcopy(model)
        prune_model(m, 0.5, **kw)
        pruned[name] = ppl(m)
    assert dense < pruned["wanda"] < 3 * dense < pruned["magnitude"]


# ------------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize("call,exc,msg", [
    (lambda: magnitude.magnitude_mask(torch.ones(2, 2), 1.0), ValueError, r"sparsity must be >= 0 and < 1"),
    (lambda: magnitude.magnitude_mask(torch.ones(2, 2), -0.1), ValueError, r"sparsity must be >= 0 and < 1"),
    (lambda: magnitude.magnitude_mask(torch.ones(2, 2), "half"), TypeError, "sparsity must be a number"),
    (lambda: magnitude.magnitude_mask(torch.ones(4), 0.5), ValueError, "2-D"),
    (lambda: magnitude.magnitude_mask(torch.ones(2, 2, dtype=torch.long), 0.5), TypeError, "float"),
    (lambda: magnitude.prune_mask(torch.ones(2, 2), 0.5, "column"), ValueError, "scope"),
    (lambda: magnitude.global_masks({}, 0.5), ValueError, "empty"),
    (lambda: nm.nm_mask(torch.ones(2, 8), 3, 2), ValueError, "N <= M"),
    (lambda: nm.nm_mask(torch.ones(2, 6), 2, 4), ValueError, "not divisible by m = 4"),
    (lambda: wanda.wanda_scores(torch.ones(2, 4), torch.ones(2)), ValueError, r"shape \(K,\) = \(4,\)"),
    (lambda: structured.select_heads(torch.ones(6), 2, 4), ValueError, "at most 3"),
    (lambda: structured.prune_heads(Decoder(TINY).layers[0].attention, [0, 1, 3]), ValueError, "same"),
    (lambda: structured.prune_neurons(Decoder(TINY).layers[0].feed_forward, [0, 40]), ValueError, r"\[0, 40\)"),
    (lambda: structured.prune_structured(Decoder(TINY), {}, None, 0.0), ValueError, "neuron_fraction"),
    (lambda: prune_model(Decoder(TINY), 0.5, only="w9"), ValueError, "matches"),
    (lambda: prune_model(Decoder(TINY), 0.5, norms={}), ValueError, "norms has no entry"),
    (lambda: prune_model(Decoder(TINY), 0.5, only=""), ValueError, "only is empty"),
    (lambda: prune_model(Decoder(TINY), 0.5, nm=2), TypeError, r"nm must be a pair"),
    (lambda: magnitude.lowest_k_mask(torch.ones(2, 4), "2"), TypeError, "k must be an int"),
    (lambda: magnitude.prune_mask(torch.ones(0, 4), 0.5), ValueError, "scores is empty"),
    (lambda: magnitude.global_masks("abc", 0.5), TypeError, "scores must be a dict"),
    (lambda: magnitude.weight_change_ratio(torch.ones(2, 2), torch.ones(2, 2)), TypeError, "mask must be a bool"),
    (lambda: magnitude.sparsity_of("abc"), TypeError, "tensors must be a tensor"),
    (lambda: magnitude.sparsity_of([torch.ones(2), "abc"]), TypeError, "tensors must hold torch.Tensors"),
    (lambda: nm.is_nm_sparse(torch.ones(2, 6), 2, 4), ValueError, "divisible by m = 4"),
    (lambda: nm.check_nm(5, 4), ValueError, "got n = 5, m = 4"),
    (lambda: wanda.wanda_scores(torch.ones(2, 4), torch.ones(4, dtype=torch.long)), TypeError, "x_norm"),
    (lambda: wanda.InputGrams({"a": (nn.Linear(6, 2), 4)}), ValueError, "must divide in_features 6"),
    (lambda: wanda.input_norms(Decoder(TINY), []), ValueError, "batches is empty"),
    (lambda: wanda.input_norms(Decoder(TINY), ["abc"]), TypeError, "batches must hold id tensors"),
    (lambda: structured.select_heads(torch.ones(6), 4, 1), ValueError, "n_kv_heads must divide"),
    (lambda: structured.unit_importance(torch.ones(3, 0), torch.ones(0, 2, 2)), ValueError, "gram must have shape"),
    (lambda: structured.prune_heads("attn", [0]), TypeError, "attn must be"),
    (lambda: structured.prune_neurons(Decoder(TINY).layers[0].feed_forward, None), TypeError, "keep must be"),
    (lambda: structured.prune_neurons(Decoder(TINY).layers[0].feed_forward, [0.5]), TypeError, "integer"),
    (lambda: structured.importances("model", [_ids()]), TypeError, "model must be"),
    (lambda: structured.prune_structured(Decoder(TINY), {}, None, 0.5), ValueError, "scores has no entry"),
    (lambda: structured.prune_structured(Decoder(TINY), {}, 4, 0.5), ValueError, r"heads_per_group must be <= 3"),
])
def test_bad_input_is_rejected_clearly(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()


def test_prune_structured_checks_everything_before_changing_the_model():
    """A bad score entry of the last block is found before the first block shrinks."""
    model = Decoder(TINY)
    scores = {f"layers.{i}.neurons": torch.rand(TINY.hidden_dim) for i in range(TINY.n_layers)}
    scores[f"layers.{TINY.n_layers - 1}.neurons"] = torch.rand(3)
    with pytest.raises(ValueError, match="must be a float tensor of shape"):
        structured.prune_structured(model, scores, None, 0.5)
    assert model.layers[0].feed_forward.w1.out_features == TINY.hidden_dim
