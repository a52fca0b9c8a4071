"""The demos of notebooks 09 (quantization) and 10 (pruning) run the learner's functions: the library calls the
demos make, on SmolLM2 cut to its first two blocks, give visibly other bytes, errors, masks and perplexities with a
catalogued mistake than with the reference, and ``yours`` says which implementation ran. Also: the optional
function parameters those calls use (default behaviour unchanged, bad values refused) and the two diagram modules.
"""
import copy

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from llmlab.diagrams import pruning as pdiagram  # noqa: E402
from llmlab.diagrams import quantization as qdiagram  # noqa: E402
from llmlab.grading import pruning as gprune  # noqa: E402
from llmlab.grading import quantization as gquant  # noqa: E402
from llmlab.grading.demo import yours  # noqa: E402
from llmlab.metrics.lm import model_perplexity  # noqa: E402
from llmlab.prune import magnitude, nm, structured, wanda  # noqa: E402
from llmlab.prune.apply import prune_model  # noqa: E402
from llmlab.quant import affine, apply, gguf_blocks, gptq, smooth  # noqa: E402
from tests.demos import said, stub  # noqa: E402
from tests.fuzz import fixtures as F  # noqa: E402
from tests.mutants import pruning as prune_mutants  # noqa: E402
from tests.mutants import quantization as quant_mutants  # noqa: E402


@pytest.fixture(scope="module")
def smol():
    """SmolLM2 with its first two blocks only (the embedding and head whole), 64 tokens of held-out pydoc to
    evaluate on and 2048 of training text to calibrate on (more than the 1536 inputs of w2: H is not singular)."""
    from llmlab import data
    from llmlab.models import load_smollm2
    from llmlab.tokenization.smollm2 import load_smollm2_tokenizer

    torch.set_grad_enabled(False)
    model = load_smollm2(device="cpu")
    model.layers = model.layers[:2]
    tok = load_smollm2_tokenizer()
    eval_ids = torch.tensor(tok.encode(data.pydoc_text("val")[:3000])[:64]).reshape(1, 64)
    calib_ids = torch.tensor(tok.encode(data.pydoc_text("train")[:40000])[:2048]).reshape(8, 256)
    yield model, eval_ids, calib_ids
    torch.set_grad_enabled(True)


# ------------------------------------------------------------------------------------------ 09: quantization


def test_q4_0_bytes_of_a_smollm2_tensor_come_from_the_learners_functions(smol, capsys):
    model, _, _ = smol
    w = model.layers[1].feed_forward.w2.weight[:16].detach()  # (16, 1536): 768 real blocks
    want = gguf_blocks.quantize_q4_0(w)
    codes = yours(quant_mutants.q4_positive_scale, gguf_blocks.q4_0_codes, name="q4_0_block")
    mutant = gguf_blocks.quantize_q4_0(w, codes=codes, pack=gguf_blocks.pack_nibbles)
    said(capsys, "q4_0_block", "yours")
    assert mutant.shape == want.shape and not torch.equal(mutant, want)
    err = lambda data: affine.relative_error(w, gguf_blocks.dequantize_q4_0(data))  # noqa: E731
    assert err(mutant) > 1.05 * err(want)  # the sign trick lost: the positive extremes clip at code 15
    # nibbles in another order: the same codes, other bytes, and the values come back scrambled
    swapped = gguf_blocks.quantize_q4_0(w, pack=yours(quant_mutants.pack_adjacent, gguf_blocks.pack_nibbles,
                                                      name="pack_nibbles"))
    said(capsys, "pack_nibbles", "yours")
    assert torch.equal(swapped[..., :2], want[..., :2]) and not torch.equal(swapped, want)
    assert err(swapped) > 0.5
    # a stub hands over to the reference: the bytes are gguf's
    assert torch.equal(gguf_blocks.quantize_q4_0(w, codes=yours(stub, gguf_blocks.q4_0_codes, name="q4_0_block")), want)
    said(capsys, "q4_0_block", "llmlab's reference")


def test_q8_0_perplexity_with_a_mutant_block(smol, capsys):
    model, eval_ids, _ = smol

    def ppl(codes):
        m = apply.map_weights(copy.deepcopy(model), lambda w: gguf_blocks.fake_quantize(w, "Q8_0", codes=codes))
        return model_perplexity(m, eval_ids)

    ref = ppl(gguf_blocks.q8_0_codes)
    assert ref == pytest.approx(ppl(None))
    # the fp16 scale used for the codes is a one-bit slip: invisible; dividing by 127.5 without clamping lets a
    # block's extreme overflow int8 and wrap around
    bad = ppl(yours(quant_mutants.q8_127_5, gguf_blocks.q8_0_codes, name="q8_0_block"))
    said(capsys, "q8_0_block", "yours")
    assert abs(bad - ref) > 0.01 * ref


def test_gptq_with_the_learners_update(smol, capsys):
    model, eval_ids, calib_ids = smol
    model = copy.deepcopy(model)  # its first block only: GPTQ's loop runs column by column
    model.layers = model.layers[:1]
    calibration = gptq.calibrate(model, [(calib_ids,)])
    exact = model(eval_ids)

    def error(update):
        """Relative error of the one-block model's logits after 3-bit GPTQ with ``update``."""
        m = copy.deepcopy(model)
        gptq.gptq_model(m, None, 3, group_size=64, calibration=calibration, update=update)
        return float((m(eval_ids) - exact).norm() / exact.norm())

    ref = error(None)
    assert error(yours(gptq.gptq_column_update, gptq.gptq_column_update, name="gptq_update")) == ref
    said(capsys, "gptq_update", "yours")
    # the error added instead of subtracted: every correction pushes the wrong way
    wrong = error(yours(quant_mutants.gptq_wrong_sign, gptq.gptq_column_update, name="gptq_update"))
    said(capsys, "gptq_update", "yours")
    assert wrong > 1.3 * ref
    with pytest.raises(TypeError, match="update"):
        gptq.gptq_model(copy.deepcopy(model), None, 3, calibration=calibration, update="yours")


def test_smoothquant_and_llm_int8_with_the_learners_functions(smol, capsys):
    model, eval_ids, _ = smol
    name = "layers.1.attention.wq"
    x = smooth.linear_inputs(model, [(eval_ids,)], names=[name])[name]
    W = apply.block_linears(model)[name].weight
    big = torch.tensor([7, 100, 300, 500])
    x, W = x.clone(), W.clone()
    x[:, big] *= 60
    W[:, big] /= 60
    exact = x @ W.T
    rel = lambda y: float((y - exact).norm() / exact.norm())  # noqa: E731
    ref = rel(smooth.smoothquant_linear(x, W, 0.5))
    assert rel(smooth.smoothquant_linear(x, W, 0.5, scales=smooth.smooth_scales)) == ref
    swapped = rel(smooth.smoothquant_linear(x, W, 0.5, scales=yours(quant_mutants.smooth_swapped, smooth.smooth_scales,
                                                                     name="smooth_scales")))
    said(capsys, "smooth_scales", "yours")
    assert swapped > 3 * ref
    mixed = yours(quant_mutants.mixed_all_int8, smooth.mixed_int8_linear, name="mixed_int8")
    assert rel(mixed(x, W, 6.0)) > 1.5 * rel(smooth.mixed_int8_linear(x, W, 6.0))
    said(capsys, "mixed_int8", "yours")
    for bad, error in (("s", TypeError), (lambda a, w, alpha: -a, ValueError), (lambda a, w, alpha: a[:3], ValueError)):
        with pytest.raises(error, match="scales"):
            smooth.smoothquant_linear(x, W, 0.5, scales=bad)


def test_gguf_block_parameters_refuse_bad_functions():
    x = F.randn(2, 64)
    assert torch.equal(gguf_blocks.quantize_q8_0(x, codes=gguf_blocks.q8_0_codes), gguf_blocks.quantize_q8_0(x))
    assert torch.equal(gguf_blocks.fake_quantize(x, "Q4_0", codes=gguf_blocks.q4_0_codes),
                       gguf_blocks.fake_quantize(x, "Q4_0"))
    with pytest.raises(TypeError, match="codes"):
        gguf_blocks.quantize_q4_0(x, codes=1)
    with pytest.raises(TypeError, match="pack"):
        gguf_blocks.quantize_q4_0(x, pack="nibbles")
    with pytest.raises(TypeError, match="codes must return"):
        gguf_blocks.quantize_q8_0(x, codes=lambda b: b)
    with pytest.raises(ValueError, match="codes must return"):
        gguf_blocks.quantize_q4_0(x, codes=lambda b: (b[:, :1], b))  # float codes out of [0, 15]
    with pytest.raises(ValueError, match="pack must return"):
        gguf_blocks.quantize_q4_0(x, pack=lambda q: q)
    with pytest.raises(ValueError, match="Q4_1"):
        gguf_blocks.fake_quantize(x, "Q4_1", codes=gguf_blocks.q4_0_codes)


# ------------------------------------------------------------------------------------------ 10: pruning


def test_magnitude_pruning_perplexity_with_the_learners_mask(smol, capsys):
    model, eval_ids, _ = smol

    def ppl(**kw):
        m = copy.deepcopy(model)
        masks = prune_model(m, 0.5, **kw)
        return model_perplexity(m, eval_ids), masks

    ref, ref_masks = ppl()
    same, _ = ppl(mask_fn=magnitude.prune_mask)
    assert same == ref
    bad, bad_masks = ppl(mask_fn=yours(prune_mutants.pm_largest, magnitude.prune_mask, name="prune_mask"))
    said(capsys, "prune_mask", "yours")
    assert bad > 2 * ref  # the largest weights went
    name = "layers.0.attention.wq"
    assert float((bad_masks[name] == ref_masks[name]).float().mean()) < 0.1
    stubbed, _ = ppl(mask_fn=yours(stub, magnitude.prune_mask, name="prune_mask"))
    said(capsys, "prune_mask", "llmlab's reference")
    assert stubbed == ref


def test_wanda_and_nm_masks_with_the_learners_functions(smol, capsys):
    model, _, calib_ids = smol
    norms = wanda.input_norms(model, calib_ids[:4].split(2))
    ref = prune_model(copy.deepcopy(model), 0.5, norms=norms)
    same = prune_model(copy.deepcopy(model), 0.5, norms=norms, mask_fn=magnitude.prune_mask,
                       score_fn=gprune.check_wanda_scores.reference)
    assert all(torch.equal(ref[n], same[n]) for n in ref)
    bad = prune_model(copy.deepcopy(model), 0.5, norms=norms,
                      score_fn=yours(prune_mutants.ws_no_abs, gprune.check_wanda_scores.reference, name="wanda_scores"))
    said(capsys, "wanda_scores", "yours")
    changed = sum(int((ref[n] != bad[n]).sum()) for n in ref) / sum(m.numel() for m in ref.values())
    assert changed > 0.2  # signed scores prune the large negative weights
    nm_ref = prune_model(copy.deepcopy(model), nm=(2, 4))
    nm_bad = prune_model(copy.deepcopy(model), nm=(2, 4), nm_fn=yours(prune_mutants.nm_smallest, nm.nm_mask,
                                                                    name="nm_mask"))
    said(capsys, "nm_mask", "yours")
    assert all(torch.equal(nm_bad[n], ~nm_ref[n]) for n in nm_ref)  # the complement: the smallest 2 of 4 kept
    with pytest.raises(ValueError, match="norms"):
        prune_model(copy.deepcopy(model), score_fn=gprune.check_wanda_scores.reference)
    with pytest.raises(ValueError, match="nm"):
        prune_model(copy.deepcopy(model), nm_fn=nm.nm_mask)
    with pytest.raises(TypeError, match="mask_fn"):
        prune_model(copy.deepcopy(model), mask_fn=0.5)
    with pytest.raises(TypeError, match="bool mask"):
        prune_model(copy.deepcopy(model), mask_fn=lambda s, sp: magnitude.prune_mask(s, sp).float())
    with pytest.raises(ValueError, match="weight's shape"):
        prune_model(copy.deepcopy(model), mask_fn=lambda s, sp: magnitude.prune_mask(s, sp)[:, :4])


def test_structured_pruning_with_the_learners_functions(smol, capsys):
    model, eval_ids, calib_ids = smol
    scores = structured.importances(model, calib_ids[:4].split(2))
    same = structured.importances(model, calib_ids[:4].split(2), importance_fn=structured.unit_importance)
    assert all(torch.allclose(scores[k], same[k]) for k in scores)

    def ppl(scores, **fns):
        m = structured.prune_structured(copy.deepcopy(model), scores, 2, 0.5, **fns)
        return model_perplexity(m, eval_ids), m

    ref, ref_model = ppl(scores)
    mine, mine_model = ppl(scores, select_fn=structured.select_heads, slice_heads_fn=gprune.check_slice_heads.reference,
                           slice_neurons_fn=gprune.check_slice_neurons.reference)
    assert mine == ref and torch.equal(mine_model.layers[0].attention.wq.weight, ref_model.layers[0].attention.wq.weight)
    least, _ = ppl(scores, select_fn=yours(prune_mutants.sh_least, structured.select_heads, name="select_heads"))
    said(capsys, "select_heads", "yours")
    assert least != pytest.approx(ref, rel=1e-3)
    blind = structured.importances(model, calib_ids[:4].split(2), importance_fn=yours(
        prune_mutants.ui_weights_only, structured.unit_importance, name="unit_importance"))
    said(capsys, "unit_importance", "yours")
    weights_only, _ = ppl(blind)
    assert weights_only > 1.05 * ref  # units ranked by their weights alone, blind to their inputs
    with pytest.raises(ValueError, match="slice_fn must return w3"):
        ppl(scores, slice_neurons_fn=yours(prune_mutants.sn_forget_w3, gprune.check_slice_neurons.reference,
                                           name="slice_neurons"))
    said(capsys, "slice_neurons", "yours")
    with pytest.raises(ValueError, match="slice_fn must return wo"):
        ppl(scores, slice_heads_fn=prune_mutants.sl_wo_rows)
    with pytest.raises(TypeError, match="select_fn"):
        ppl(scores, select_fn="best")
    with pytest.raises(TypeError, match="importance_fn"):
        structured.importances(model, calib_ids[:4].split(2), importance_fn=3)


# ------------------------------------------------------------------------------------------ diagrams


def test_quantization_diagrams_draw_a_real_grid_and_block():
    v = F.randn(32) * 0.05
    s, z = affine.scale_zero_point(v.min().clamp(max=0), v.max().clamp(min=0), 3)
    fig = qdiagram.block_on_grid(v, s, z, 3, x_hat=gquant.check_quantize_dequantize.reference(v, s, z, 3)[1])
    assert isinstance(fig, matplotlib.figure.Figure)
    d, q = gguf_blocks.q4_0_codes(v[None])
    fig2 = qdiagram.q4_0_layout(d, q, gguf_blocks.pack_nibbles(q))
    assert isinstance(fig2, matplotlib.figure.Figure)
    plt.close("all")
    for kwargs, error in ((dict(bits=9), ValueError), (dict(zero=2.5), ValueError), (dict(scale=0.0), ValueError),
                          (dict(values=[0.1, 0.2]), TypeError), (dict(x_hat=v[:3]), ValueError)):
        args = {**dict(values=v, scale=s, zero=z, bits=3), **kwargs}
        with pytest.raises(error, match=next(iter(kwargs))):
            qdiagram.block_on_grid(**args)
    with pytest.raises(ValueError, match="q"):
        qdiagram.q4_0_layout(d, q.to(torch.int64) + 16, gguf_blocks.pack_nibbles(q))
    with pytest.raises(TypeError, match="packed"):
        qdiagram.q4_0_layout(d, q, gguf_blocks.pack_nibbles(q).long())


def test_pruning_diagrams_draw_masks_and_heads():
    w = F.randn(16, 32)
    fig = pdiagram.mask_patterns({"row": magnitude.magnitude_mask(w, 0.5), "2:4": nm.nm_mask(w.abs(), 2, 4)}, group=4)
    assert isinstance(fig, matplotlib.figure.Figure)
    imp = torch.rand(4, 6, generator=torch.Generator().manual_seed(0))
    fig2 = pdiagram.kept_heads(imp, [structured.select_heads(imp[i], 2, 2) for i in range(4)], 2)
    assert isinstance(fig2, matplotlib.figure.Figure)
    plt.close("all")
    with pytest.raises(TypeError, match="masks"):
        pdiagram.mask_patterns({"float": w})
    with pytest.raises(ValueError, match="group"):
        pdiagram.mask_patterns({"row": w > 0}, cols=16, group=5)
    with pytest.raises(ValueError, match="keep"):
        pdiagram.kept_heads(imp, [[0]] * 3, 2)
    with pytest.raises(ValueError, match="n_kv_heads"):
        pdiagram.kept_heads(imp, [[0]] * 4, 4)
