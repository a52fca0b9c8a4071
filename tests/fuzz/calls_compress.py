"""Valid calls: compression, pruning and quantization (``llmlab.compress``, ``llmlab.prune``, ``llmlab.quant``)."""
from __future__ import annotations

import torch

from tests.fuzz import fixtures as F
from tests.fuzz.call import method


def _topk(k: int = 3):
    values, indices = torch.topk(F.randn(2, 3, 8, seed=1), k, dim=-1)
    return dict(top_values=values, top_indices=indices)


def _codebook():
    return torch.tensor([-1.0, 0.0, 1.0])


def _assigned():
    from llmlab.compress.sharing import assign

    w = F.randn(4, 8)
    return dict(w=w, idx=assign(w, _codebook()), codebook=_codebook())


def _nm_sparse():
    from llmlab.prune.nm import nm_mask

    w = F.randn(4, 8)
    return w * nm_mask(w.abs(), 2, 4)


def _gram(units: int, d: int):
    x = F.randn(units, 10, d)
    return x.transpose(1, 2) @ x


def _importances():
    from llmlab.prune.structured import importances

    return importances(F.decoder(), [F.ids(2, 5)])


def _norms():
    from llmlab.prune.wanda import input_norms

    return input_norms(F.decoder(), [F.ids(2, 5)])


def _input_norms_call():
    model = F.decoder()
    return dict(model=model, batches=[F.ids(2, 5)], linears={"layers.0.attention.wq": model.layers[0].attention.wq})


def _qt(**kw):
    from llmlab.quant.affine import quantize_weight

    return quantize_weight(F.randn(4, 8), **{"bits": 4, "symmetric": False, "granularity": "group",
                                             "group_size": 4, **kw})


def _qt_fields():
    qt = _qt()
    return dict(q=qt.q, scale=qt.scale, zero=qt.zero, bits=qt.bits, symmetric=qt.symmetric, group_size=qt.group_size)


def _hessian(k: int = 8):
    x = F.randn(32, k, seed=5)
    return 2 * x.T @ x / 32


def _factor():
    from llmlab.quant.gptq import inverse_hessian_factor

    return inverse_hessian_factor(_hessian())


def _column_update():
    W = F.randn(4, 8)
    return dict(W=W, U=_factor(), i=0, q=W[:, 0].round())


def _gptq_result():
    from llmlab.quant.gptq import gptq_quantize

    r = gptq_quantize(F.randn(4, 8), _hessian(), 4, group_size=4)
    return dict(q=r.q, scale=r.scale, zero=r.zero, group_index=r.group_index, bits=r.bits, symmetric=r.symmetric)


def _codes(kind: str):
    from llmlab.quant import gguf_blocks as G

    blocks = F.randn(2, 32)
    if kind == "q8_0":
        d, q = G.q8_0_codes(blocks)
        return dict(d=d, q=q)
    if kind == "q4_0":
        d, q = G.q4_0_codes(blocks)
        return dict(d=d, q=q)
    d, m, q = G.q4_1_codes(blocks)
    return dict(d=d, m=m, q=q)


def _packed(kind: str):
    from llmlab.quant import gguf_blocks as G

    return dict(data=G.QUANTIZE[kind](F.randn(2, 64)))


def _int8_fields():
    from llmlab.quant.linear import Int8WeightOnlyLinear

    layer = Int8WeightOnlyLinear.from_float(F.randn(4, 8))
    return dict(q=layer.q, scale=layer.scale)


def _int4_fields(rows: int = 4):
    w = F.randn(rows, 64)
    g = 32
    groups = w.reshape(rows, 2, g)
    lo, hi = groups.amin(-1), groups.amax(-1)
    scale = (hi - lo) / 15
    q = ((groups - lo[..., None]) / scale[..., None]).round().clamp(0, 15).reshape(rows, 64).to(torch.uint8)
    return dict(q=q, scale=scale, minimum=lo, group_size=g)


def _model(module: str):
    import importlib

    return importlib.import_module(module)


VALID = {
    # ------------------------------------------------------------------------ compress.distill
    "llmlab.compress.distill.soft_targets": lambda: dict(logits=F.randn(2, 3, 8), T=2.0),
    "llmlab.compress.distill.kd_loss": lambda: dict(student_logits=F.randn(2, 3, 8),
                                                    teacher_logits=F.randn(2, 3, 8, seed=1), T=2.0),
    "llmlab.compress.distill.distillation_loss": lambda: dict(
        student_logits=F.randn(2, 3, 8), teacher_logits=F.randn(2, 3, 8, seed=1), targets=F.ids(2, 3, vocab=8),
        T=2.0, alpha=0.5),
    "llmlab.compress.distill.topk_logits": lambda: dict(logits=F.randn(2, 3, 8), k=3),
    "llmlab.compress.distill.kd_loss_topk": lambda: dict(student_logits=F.randn(2, 3, 8), **_topk(), T=2.0),
    "llmlab.compress.distill.teacher_topk": lambda: dict(teacher=F.decoder(), ids=F.ids(2, 5), k=3, batch_size=1,
                                                         progress=False),
    # ------------------------------------------------------------------------ compress.lowrank
    "llmlab.compress.lowrank.truncated_svd": lambda: dict(w=F.randn(6, 4), rank=2),
    "llmlab.compress.lowrank.lowrank_error": lambda: dict(w=F.randn(6, 4), rank=2),
    "llmlab.compress.lowrank.rank_for_energy": lambda: dict(s=torch.linalg.svdvals(F.randn(6, 4)), energy=0.9),
    "llmlab.compress.lowrank.lowrank_params": lambda: dict(n=6, k=4, rank=2),
    "llmlab.compress.lowrank.breakeven_rank": lambda: dict(n=6, k=4),
    "llmlab.compress.lowrank.LowRankLinear": lambda: dict(in_features=8, out_features=4, rank=2, bias=True,
                                                          device="cpu", dtype=torch.float32),
    "llmlab.compress.lowrank.LowRankLinear.from_linear": lambda: method(
        _model("llmlab.compress.lowrank").LowRankLinear, "from_linear", linear=F.linear(), rank=2),
    "llmlab.compress.lowrank.LowRankLinear.forward": lambda: method(
        _model("llmlab.compress.lowrank").LowRankLinear(8, 4, 2), "forward", x=F.randn(3, 8)),
    # -------------------------------------------------------------------------- compress.ratio
    "llmlab.compress.ratio.compression_ratio": lambda: dict(original_bits=32.0, compressed_bits=4.0),
    "llmlab.compress.ratio.pruned_bits": lambda: dict(n_weights=100, density=0.5, value_bits=16, index_bits=8),
    # ------------------------------------------------------------------------ compress.sharing
    "llmlab.compress.sharing.init_codebook": lambda: dict(w=F.randn(4, 8), k=4, method="quantile"),
    "llmlab.compress.sharing.assign": lambda: dict(w=F.randn(4, 8), codebook=_codebook()),
    "llmlab.compress.sharing.update": _assigned,
    "llmlab.compress.sharing.kmeans": lambda: dict(w=F.randn(4, 8), k=3, iters=5, init="linear", tol=1e-6),
    "llmlab.compress.sharing.reconstruct": lambda: dict(codebook=_codebook(), idx=torch.tensor([[0, 1], [2, 1]])),
    "llmlab.compress.sharing.codebook_bits_per_weight": lambda: dict(n_weights=1000, k=16, codebook_bits=32),
    # ---------------------------------------------------------------------------- prune.apply
    "llmlab.prune.apply.prune_model": lambda: dict(model=F.decoder(), sparsity=0.5, norms=_norms(), only="w2"),
    # ------------------------------------------------------------------------ prune.magnitude
    "llmlab.prune.magnitude.check_sparsity": lambda: dict(sparsity=0.5),
    "llmlab.prune.magnitude.check_scores": lambda: dict(name="s", s=F.randn(4, 8).abs()),
    "llmlab.prune.magnitude.n_pruned": lambda: dict(n=10, sparsity=0.5),
    "llmlab.prune.magnitude.lowest_k_mask": lambda: dict(scores=F.randn(4, 8).abs(), k=3),
    "llmlab.prune.magnitude.prune_mask": lambda: dict(scores=F.randn(4, 8).abs(), sparsity=0.5, scope="row"),
    "llmlab.prune.magnitude.magnitude_mask": lambda: dict(w=F.randn(4, 8), sparsity=0.5, scope="tensor"),
    "llmlab.prune.magnitude.global_masks": lambda: dict(scores={"a": F.randn(4, 8).abs(), "b": F.randn(2, 8).abs()},
                                                        sparsity=0.5),
    "llmlab.prune.magnitude.weight_change_ratio": lambda: dict(w=F.randn(4, 8), mask=F.randn(4, 8, seed=1) > 0),
    "llmlab.prune.magnitude.sparsity_of": lambda: dict(tensors=[_nm_sparse(), F.randn(3)]),
    # ------------------------------------------------------------------------------- prune.nm
    "llmlab.prune.nm.check_nm": lambda: dict(n=2, m=4),
    "llmlab.prune.nm.nm_mask": lambda: dict(scores=F.randn(4, 8).abs(), n=2, m=4),
    "llmlab.prune.nm.is_nm_sparse": lambda: dict(w=_nm_sparse(), n=2, m=4),
    # ----------------------------------------------------------------------- prune.structured
    "llmlab.prune.structured.unit_importance": lambda: dict(w_out=F.randn(16, 16), gram=_gram(4, 4)),
    "llmlab.prune.structured.importances": lambda: dict(model=F.decoder(), batches=[F.ids(2, 5)]),
    "llmlab.prune.structured.select_heads": lambda: dict(importance=F.randn(4).abs(), n_kv_heads=2, keep_per_group=1),
    "llmlab.prune.structured.prune_heads": lambda: dict(attn=F.attention(), keep=[0, 2]),
    "llmlab.prune.structured.prune_neurons": lambda: dict(mlp=F.mlp(), keep=list(range(0, 32, 2))),
    "llmlab.prune.structured.prune_structured": lambda: dict(model=F.decoder(), scores=_importances(),
                                                             heads_per_group=1, neuron_fraction=0.5),
    # ---------------------------------------------------------------------------- prune.wanda
    "llmlab.prune.wanda.wanda_scores": lambda: dict(w=F.randn(4, 8), x_norm=F.randn(8, seed=1).abs()),
    "llmlab.prune.wanda.InputGrams": lambda: dict(linears={"a": (F.linear(), 1), "b": (F.linear(8, 8), 2)}),
    "llmlab.prune.wanda.input_norms": _input_norms_call,
    # ---------------------------------------------------------------------------- quant.affine
    "llmlab.quant.affine.qrange": lambda: dict(bits=8, symmetric=True),
    "llmlab.quant.affine.round_half_away": lambda: dict(x=F.randn(5) * 3),
    "llmlab.quant.affine.symmetric_scale": lambda: dict(absmax=F.randn(4).abs() + 0.1, bits=8),
    "llmlab.quant.affine.scale_zero_point": lambda: dict(lo=-F.randn(4).abs() - 0.1, hi=F.randn(4, seed=1).abs() + 0.1,
                                                         bits=8),
    "llmlab.quant.affine.affine_grid": lambda: dict(lo=-F.randn(4).abs() - 0.1, hi=F.randn(4, seed=1).abs() + 0.1,
                                                    bits=4),
    "llmlab.quant.affine.quantize": lambda: dict(x=F.randn(4, 8), scale=torch.full((4, 1), 0.05),
                                                 zero=torch.full((4, 1), 3.0), bits=4, symmetric=False),
    "llmlab.quant.affine.dequantize": lambda: dict(q=torch.randint(0, 16, (4, 8)).float(),
                                                   scale=torch.full((4, 1), 0.05), zero=torch.full((4, 1), 3.0)),
    "llmlab.quant.affine.QuantizedTensor": _qt_fields,
    "llmlab.quant.affine.quantize_weight": lambda: dict(w=F.randn(4, 8), bits=4, symmetric=False, granularity="group",
                                                        group_size=4),
    "llmlab.quant.affine.fake_quantize": lambda: dict(w=F.randn(4, 8), bits=4),
    "llmlab.quant.affine.mse": lambda: dict(x=F.randn(4, 8), x_hat=F.randn(4, 8, seed=1)),
    "llmlab.quant.affine.sqnr_db": lambda: dict(x=F.randn(4, 8), x_hat=F.randn(4, 8, seed=1)),
    "llmlab.quant.affine.relative_error": lambda: dict(x=F.randn(4, 8), x_hat=F.randn(4, 8, seed=1)),
    # ----------------------------------------------------------------------------- quant.apply
    "llmlab.quant.apply.calibration_batches": lambda: dict(batches=[(F.ids(1, 4),)], tensors=False),
    "llmlab.quant.apply.block_linears": lambda: dict(model=F.decoder()),
    "llmlab.quant.apply.map_weights": lambda: dict(model=F.decoder(), fn=lambda w: w * 0.5),
    "llmlab.quant.apply.replace_linears": lambda: dict(model=F.decoder(), make=lambda name, linear: linear),
    "llmlab.quant.apply.linear_weight_bytes": lambda: dict(model=F.decoder()),
    # ----------------------------------------------------------------------- quant.gguf_blocks
    "llmlab.quant.gguf_blocks.to_blocks": lambda: dict(x=F.randn(2, 64)),
    "llmlab.quant.gguf_blocks.pack_nibbles": lambda: dict(q=torch.randint(0, 16, (2, 32), dtype=torch.uint8)),
    "llmlab.quant.gguf_blocks.unpack_nibbles": lambda: dict(packed=torch.randint(0, 256, (2, 16), dtype=torch.uint8)),
    "llmlab.quant.gguf_blocks.q8_0_codes": lambda: dict(blocks=F.randn(2, 32)),
    "llmlab.quant.gguf_blocks.q4_0_codes": lambda: dict(blocks=F.randn(2, 32)),
    "llmlab.quant.gguf_blocks.q4_1_codes": lambda: dict(blocks=F.randn(2, 32)),
    "llmlab.quant.gguf_blocks.quantize_q8_0": lambda: dict(x=F.randn(2, 64)),
    "llmlab.quant.gguf_blocks.quantize_q4_0": lambda: dict(x=F.randn(2, 64)),
    "llmlab.quant.gguf_blocks.quantize_q4_1": lambda: dict(x=F.randn(2, 64)),
    "llmlab.quant.gguf_blocks.q8_0_values": lambda: _codes("q8_0"),
    "llmlab.quant.gguf_blocks.q4_0_values": lambda: _codes("q4_0"),
    "llmlab.quant.gguf_blocks.q4_1_values": lambda: _codes("q4_1"),
    "llmlab.quant.gguf_blocks.dequantize_q8_0": lambda: _packed("Q8_0"),
    "llmlab.quant.gguf_blocks.dequantize_q4_0": lambda: _packed("Q4_0"),
    "llmlab.quant.gguf_blocks.dequantize_q4_1": lambda: _packed("Q4_1"),
    "llmlab.quant.gguf_blocks.fake_quantize": lambda: dict(x=F.randn(2, 64), kind="Q4_1"),
    # ------------------------------------------------------------------------------ quant.gptq
    "llmlab.quant.gptq.hessian": lambda: dict(x=F.randn(10, 8)),
    "llmlab.quant.gptq.HessianAccumulator": lambda: dict(k=8, device="cpu"),
    "llmlab.quant.gptq.HessianAccumulator.add": lambda: method(_model("llmlab.quant.gptq").HessianAccumulator(8), "add",
                                                               x=F.randn(10, 8)),
    "llmlab.quant.gptq.gptq_column_update": _column_update,
    "llmlab.quant.gptq.GPTQResult": _gptq_result,
    "llmlab.quant.gptq.inverse_hessian_factor": lambda: dict(H=_hessian(), damp=0.01),
    "llmlab.quant.gptq.gptq_quantize": lambda: dict(W=F.randn(4, 8), H=_hessian(), bits=4, group_size=4, symmetric=True,
                                                    act_order=True, block_size=4, damp=0.01),
    "llmlab.quant.gptq.block_inputs": lambda: dict(model=F.decoder(), batches=[(F.ids(1, 5),)]),
    "llmlab.quant.gptq.Calibration": lambda: dict(linears=_model("llmlab.quant.apply").block_linears(F.decoder())),
    "llmlab.quant.gptq.calibrate": lambda: dict(model=F.decoder(), batches=[(F.ids(2, 5),)]),
    "llmlab.quant.gptq.gptq_model": lambda: dict(model=F.decoder(), batches=[(F.ids(2, 8),)], bits=4, group_size=8,
                                                 symmetric=True, act_order=False, damp=0.01, calibration=None,
                                                 progress=False),
    # ---------------------------------------------------------------------------- quant.linear
    "llmlab.quant.linear.Int8WeightOnlyLinear": _int8_fields,
    "llmlab.quant.linear.Int8WeightOnlyLinear.from_float": lambda: method(
        _model("llmlab.quant.linear").Int8WeightOnlyLinear, "from_float", weight=F.randn(4, 8)),
    "llmlab.quant.linear.Int8WeightOnlyLinear.forward": lambda: method(
        _model("llmlab.quant.linear").Int8WeightOnlyLinear.from_float(F.randn(4, 8)), "forward", x=F.randn(3, 8)),
    "llmlab.quant.linear.Int4WeightOnlyLinear": _int4_fields,
    "llmlab.quant.linear.Int4WeightOnlyLinear.from_float": lambda: method(
        _model("llmlab.quant.linear").Int4WeightOnlyLinear, "from_float", weight=F.randn(16, 64), group_size=32),
    "llmlab.quant.linear.Int4WeightOnlyLinear.from_quantized": lambda: method(
        _model("llmlab.quant.linear").Int4WeightOnlyLinear, "from_quantized", qt=_qt(group_size=4)),
    "llmlab.quant.linear.Int4WeightOnlyLinear.forward": lambda: method(
        _model("llmlab.quant.linear").Int4WeightOnlyLinear.from_float(F.randn(16, 64), 32), "forward",
        x=F.randn(3, 64)),
    "llmlab.quant.linear.min_max_codes": lambda: dict(weight=F.randn(4, 64), group_size=32),
    # ------------------------------------------------------------------------------ quant.w4a8
    "llmlab.quant.w4a8.kernel_isa": lambda: {},
    "llmlab.quant.w4a8.W4A8Linear": lambda: {k: v for k, v in _int4_fields(16).items() if k != "group_size"},
    "llmlab.quant.w4a8.W4A8Linear.from_float": lambda: method(
        _model("llmlab.quant.w4a8").W4A8Linear, "from_float", weight=F.randn(16, 64)),
    "llmlab.quant.w4a8.W4A8Linear.forward": lambda: method(
        _model("llmlab.quant.w4a8").W4A8Linear.from_float(F.randn(16, 64)), "forward", x=F.randn(3, 64)),
    # ---------------------------------------------------------------------------- quant.smooth
    "llmlab.quant.smooth.absmax_fake_quantize": lambda: dict(x=F.randn(3, 8), dim=-1, bits=8),
    "llmlab.quant.smooth.w8a8_linear": lambda: dict(x=F.randn(3, 8), weight=F.randn(4, 8, seed=1), bits=8),
    "llmlab.quant.smooth.outlier_columns": lambda: dict(x=F.randn(3, 8) * 4, threshold=6.0),
    "llmlab.quant.smooth.mixed_int8_linear": lambda: dict(x=F.randn(3, 8) * 4, weight=F.randn(4, 8, seed=1),
                                                          threshold=6.0),
    "llmlab.quant.smooth.smooth_scales": lambda: dict(act_absmax=F.randn(8).abs() + 0.1,
                                                      weight_absmax=F.randn(8, seed=1).abs() + 0.1, alpha=0.5),
    "llmlab.quant.smooth.smoothquant_linear": lambda: dict(x=F.randn(3, 8), weight=F.randn(4, 8, seed=1), alpha=0.5,
                                                           act_absmax=F.randn(8, seed=2).abs() + 0.1),
    "llmlab.quant.smooth.linear_inputs": lambda: dict(model=F.decoder(), batches=[(F.ids(1, 5),)],
                                                      names=["layers.0.attention.wq"]),
    "llmlab.quant.smooth.FakeQuantLinear": lambda: dict(weight=F.randn(4, 8), bias=F.randn(4, seed=1),
                                                        smooth=F.randn(8, seed=2).abs() + 0.5, outlier_threshold=6.0,
                                                        bits=8),
    "llmlab.quant.smooth.FakeQuantLinear.forward": lambda: method(
        _model("llmlab.quant.smooth").FakeQuantLinear(F.randn(4, 8)), "forward", x=F.randn(3, 8)),
}

SKIP: dict[str, str] = {
    "llmlab.quant.affine.affine_grid_unchecked": "the arithmetic of the checked function of the same name without _unchecked, for loops that checked once",
    "llmlab.quant.affine.dequantize_unchecked": "the arithmetic of the checked function of the same name without _unchecked, for loops that checked once",
    "llmlab.quant.affine.quantize_unchecked": "the arithmetic of the checked function of the same name without _unchecked, for loops that checked once",
    "llmlab.quant.affine.round_half_away_unchecked": "the arithmetic of the checked function of the same name without _unchecked, for loops that checked once",
    "llmlab.quant.affine.symmetric_scale_unchecked": "the arithmetic of the checked function of the same name without _unchecked, for loops that checked once",
}
