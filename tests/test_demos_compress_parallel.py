"""The demos of notebooks 11 (compression) and 12 (parallelism) run the learner's functions: with a catalogued
mistake in place of the reference, the demo's own computation gives another result (another loss curve, other sizes,
other weights on the ranks, another timetable), and ``yours`` says which implementation ran. Also the optional
parameters that let the library run a learner's function (``train(shard=, average=)``, ``parallelize(split=,
product=)``, ``gpipe_step(schedule=)``) and the diagrams' argument checks."""
from __future__ import annotations

import copy

import matplotlib
import pytest
import torch
import torch.nn.functional as F

from llmlab import train
from llmlab.compress import distill, sharing
from llmlab.diagrams.parallelism import gpipe_timetable
from llmlab.grading import compression as grade11
from llmlab.grading import parallelism as grade12
from llmlab.grading.demo import yours
from llmlab.nn.model import Decoder
from llmlab.parallel import async_sgd, data_parallel, pipeline, tensor_parallel
from tests.fuzz import fixtures
from tests.mutants import compression as mut11
from tests.mutants import parallelism as mut12

matplotlib.use("Agg")

# ------------------------------------------------------------------------------------------ 11 compression

WINDOW, K_TOP = 12, 5


def dense_teacher(values: torch.Tensor, indices: torch.Tensor, V: int) -> torch.Tensor:
    """The notebook's helper: the cached top k spread back into full rows of logits, -10^4 elsewhere."""
    rows = torch.full((*values.shape[:-1], V), -1e4, dtype=torch.float32, device=values.device)
    return rows.scatter_(-1, indices.long(), values.float())


def _distil(mixed, steps: int = 6) -> list[float]:
    """The notebook's distillation run, small: a tiny student trained on a tiny teacher's cached top k with
    ``mixed`` (a ``yours(distillation_loss, ...)``) as its loss; returns the training losses."""
    torch.manual_seed(0)
    teacher = Decoder(fixtures.decoder_config())
    windows = fixtures.ids(4, WINDOW)
    values, indices = distill.teacher_topk(teacher, windows, K_TOP)
    torch.manual_seed(1)
    student = Decoder(fixtures.decoder_config(dim=8, n_layers=1, n_heads=2, n_kv_heads=1, hidden_dim=16))
    cfg = train.TrainConfig(steps=steps, batch_size=2, block_size=WINDOW - 1, max_lr=1e-2, min_lr=1e-3,
                            warmup_steps=1, eval_every=steps, eval_batches=1, seed=0)

    def sample(g):
        b = torch.randint(len(windows), (2,), generator=g)
        x = windows[b]
        return x[:, :-1], (x[:, 1:], values[b, :-1], indices[b, :-1])

    def loss_fn(model, x, y):
        targets, v, i = y
        logits = model(x)
        return mixed(logits, dense_teacher(v, i, logits.shape[-1]), targets, 1.0, 0.5)

    return train.train(copy.deepcopy(student), windows.flatten(), windows.flatten(), cfg, progress=False,
                       loss_fn=loss_fn, sample=sample).train_loss


def test_the_dense_teacher_row_gives_the_top_k_loss():
    """Spreading the cache into rows of -10^4 makes the learner's full-vocabulary loss the top-k loss exactly."""
    logits = fixtures.randn(2, 3, fixtures.VOCAB) * 3
    values, indices = distill.topk_logits(fixtures.randn(2, 3, fixtures.VOCAB, seed=1).log_softmax(-1), K_TOP)
    for T in (1.0, 2.0):
        dense = distill.kd_loss(logits, dense_teacher(values, indices, fixtures.VOCAB), T)
        assert torch.allclose(dense, distill.kd_loss_topk(logits, values, indices, T), atol=1e-5)


def test_distillation_demo_trains_with_your_loss(capsys):
    reference = _distil(yours(distill.distillation_loss, distill.distillation_loss))
    capsys.readouterr()
    plain_sum = yours(mut11.dl_plain_sum, distill.distillation_loss)  # (at the demo's alpha = 0.5, swapping is harmless)
    wrong = _distil(plain_sum)
    assert "▶ dl_plain_sum: yours" in capsys.readouterr().out
    assert plain_sum.ran == "yours"
    assert abs(wrong[-1] - reference[-1]) > 1e-2, (wrong, reference)


def test_distillation_demo_falls_back_on_the_reference_for_a_stub(capsys):
    def distillation_loss(student_logits, teacher_logits, targets, T, alpha):
        raise NotImplementedError

    stub = yours(distillation_loss, distill.distillation_loss)
    assert _distil(stub, steps=2) == _distil(yours(distill.distillation_loss, distill.distillation_loss), steps=2)
    assert "▶ distillation_loss: llmlab's reference (yours is not written yet)" in capsys.readouterr().out


def _lloyd(assign_step, update_step, iters: int = 5) -> list[float]:
    """The notebook's Lloyd loop (k = 16, linear start) on a weight-like matrix; the relative error per iteration."""
    w = fixtures.randn(96, 48) * 0.05
    codebook, errors = sharing.init_codebook(w, 16, "linear"), []
    for _ in range(iters):
        idx = assign_step(w, codebook)
        errors.append(float((codebook[idx] - w).norm() / w.norm()))
        codebook = update_step(w, idx, codebook)
    return errors


def test_kmeans_demo_runs_your_steps(capsys):
    reference = _lloyd(sharing.assign, sharing.update)
    mine = yours(mut11.up_median, sharing.update)
    errors = _lloyd(yours(sharing.assign, sharing.assign, quiet=True), mine)
    assert "▶ up_median: yours" in capsys.readouterr().out
    assert errors != reference and max(abs(a - b) for a, b in zip(errors, reference)) > 1e-4


def test_table_sizes_come_from_your_ratios(capsys):
    sizes = [885_000, 331_776]

    def sharing_bits(ratio_fn):
        return sum(32 * n / ratio_fn(n, 256, 32, 32) for n in sizes)

    def sparse_bits(ratio_fn):
        return sum(32 * n / ratio_fn(n, 0.5, 32, 16) for n in sizes)

    assert sharing_bits(grade11.sharing_ratio_reference) == pytest.approx(sum(8 * n + 256 * 32 for n in sizes))
    assert sparse_bits(grade11.sparse_ratio_reference) == pytest.approx(sum(round(0.5 * n) * 48 for n in sizes))
    inverted = yours(mut11.sr_inverted, grade11.sharing_ratio_reference)
    assert sharing_bits(inverted) > 10 * sharing_bits(grade11.sharing_ratio_reference)
    no_index = yours(mut11.sp_no_index, grade11.sparse_ratio_reference)
    assert sparse_bits(no_index) < sparse_bits(grade11.sparse_ratio_reference)
    out = capsys.readouterr().out
    assert "▶ sr_inverted: yours" in out and "▶ sp_no_index: yours" in out


# ------------------------------------------------------------------------------------------ 12 parallelism


def _gap(ranks: list[dict]) -> float:
    x, y = data_parallel.make_data()
    single = data_parallel.train(data_parallel.make_model(), x, y, steps=5, batch_size=16).state_dict()
    return max(float((state[k] - single[k]).abs().max()) for state in ranks for k in single)


def test_data_parallel_demo_runs_your_functions_on_the_ranks(capsys):
    def average_gradients(model):  # defined here, as in a notebook cell: sent to the ranks as source code
        world_size = dist.get_world_size()  # noqa: F821 - the ranks define dist
        for p in model.parameters():
            dist.all_reduce(p.grad)  # noqa: F821
            p.grad /= world_size

    shard = yours(data_parallel.shard_range, data_parallel.shard_range, name="shard_range")
    right = grade12.run_yours(data_parallel.worker_train, 2, 5, 16, False, shard=shard,
                              average=yours(average_gradients, data_parallel.average_gradients))
    assert "▶ average_gradients: yours (on every rank)" in capsys.readouterr().out
    assert _gap(right) < 1e-5
    summed = yours(mut12.avg_sum_only, data_parallel.average_gradients)
    wrong = grade12.run_yours(data_parallel.worker_train, 2, 5, 16, False, average=summed)
    assert "▶ avg_sum_only: yours (on every rank)" in capsys.readouterr().out
    assert summed.ran == "yours" and _gap(wrong) > 1e-3


def test_data_parallel_demo_falls_back_for_a_stub_and_for_a_run_your_function_breaks(capsys):
    def average_gradients(model):
        raise NotImplementedError

    stub = yours(average_gradients, data_parallel.average_gradients)
    assert _gap(grade12.run_yours(data_parallel.worker_train, 2, 5, 16, False, average=stub)) < 1e-5
    assert "▶ average_gradients: llmlab's reference (yours is not written yet)" in capsys.readouterr().out
    assert stub.ran == "reference"
    off = yours(mut12.shard_off_by_one, data_parallel.shard_range)  # indices beyond the batch: the worker refuses
    assert _gap(grade12.run_yours(data_parallel.worker_train, 2, 5, 16, False, shard=off)) < 1e-5
    out = capsys.readouterr().out
    assert "▶ shard_off_by_one: llmlab's reference (the run failed with yours" in out and "shard(" in out


def test_tensor_parallel_demo_runs_your_product(capsys):
    texts = ["The cat sat on the mat."]
    right = grade12.run_yours(tensor_parallel.worker_minilm, 2, texts,
                              split=yours(tensor_parallel.column_split, tensor_parallel.column_split),
                              product=yours(tensor_parallel.row_parallel_linear, tensor_parallel.row_parallel_linear))
    wrong = grade12.run_yours(tensor_parallel.worker_minilm, 2, texts,
                              product=yours(mut12.row_bias_every_rank, tensor_parallel.row_parallel_linear))
    assert "▶ row_bias_every_rank: yours (on every rank)" in capsys.readouterr().out
    assert float((wrong[0]["embeddings"] - right[0]["embeddings"]).abs().max()) > 1e-2
    assert right[0]["bytes"] == wrong[0]["bytes"] > 0


def test_pipeline_demo_draws_and_runs_your_timetable(capsys):
    mine = yours(mut12.gp_no_delay, pipeline.gpipe_schedule)
    table = mine(2, 4)
    assert "▶ gp_no_delay: yours" in capsys.readouterr().out
    assert table != pipeline.gpipe_schedule(2, 4) and table[0] == [("F", 0), ("F", 0)]  # both stages start at once
    fig = gpipe_timetable(table)
    assert [t.get_text() for t in fig.axes[0].texts].count("F0") == 2
    cfg = dict(vocab_size=64, dim=16, n_layers=2, n_heads=2, n_kv_heads=1, hidden_dim=32, max_seq_len=8,
               tie_embeddings=False)
    ids = fixtures.ids(4, 8, vocab=64)
    from llmlab.parallel import launch

    reversed_order = mut12.gp_backward_in_order(2, 2)  # another order of the backward passes: same gradients
    a = launch.run(pipeline.worker_gpipe, 2, cfg, ids, 2)
    b = launch.run(pipeline.worker_gpipe, 2, cfg, ids, 2, 0, 1, reversed_order)
    for r in range(2):
        assert all(torch.allclose(a[r]["grads"][k], b[r]["grads"][k], atol=1e-6) for k in a[r]["grads"])
    with pytest.raises(RuntimeError, match="schedule: stage 0 runs"):
        launch.run(pipeline.worker_gpipe, 2, cfg, ids, 2, 0, 1, mut12.gp_forward_only(2, 2))


# ------------------------------------------------------------------------------- the optional parameters


def test_train_checks_shard_and_average():
    x, y = data_parallel.make_data(16)
    model = data_parallel.make_model()
    with pytest.raises(TypeError, match="shard must be a function"):
        data_parallel.train(model, x, y, 1, 8, shard="contiguous")
    with pytest.raises(TypeError, match="average must be a function"):
        data_parallel.train(model, x, y, 1, 8, average=3)
    with pytest.raises(ValueError, match=r"shard\(8, 1, 0\) must return indices in \[0, 8\)"):
        data_parallel.train(model, x, y, 1, 8, shard=lambda n, ws, r: range(n + 1))
    with pytest.raises(TypeError, match="must return a range"):
        data_parallel.train(model, x, y, 1, 8, shard=lambda n, ws, r: torch.arange(n))
    with pytest.raises(TypeError, match="average must be a function"):
        data_parallel.worker_train(0, 1, 1, 8, average="mean")
    reference = data_parallel.train(data_parallel.make_model(), x, y, 2, 8).state_dict()
    listed = data_parallel.train(data_parallel.make_model(), x, y, 2, 8, shard=lambda n, ws, r: list(range(n)))
    assert all(torch.equal(reference[k], v) for k, v in listed.state_dict().items())


def test_parallelize_checks_split_and_product():
    from llmlab.nn.layers import SwiGLU

    with pytest.raises(TypeError, match="split must be a function"):
        tensor_parallel.parallelize(fixtures.decoder(), 2, 0, split="rows")
    with pytest.raises(TypeError, match="product must be a function"):
        tensor_parallel.shard_mlp(SwiGLU(8, 16), 2, 0, product=1)
    with pytest.raises(ValueError, match="split returned a weight_part of shape"):
        tensor_parallel.shard_mlp(SwiGLU(8, 16), 2, 0, split=lambda w, b, n, r: (w[:, : w.shape[1] // n], b))
    with pytest.raises(TypeError, match=r"split must return \(weight_part, bias_part\)"):
        tensor_parallel.shard_mlp(SwiGLU(8, 16), 2, 0, split=lambda w, b, n, r: w)
    with pytest.raises(TypeError, match="product must be a function"):
        tensor_parallel.RowParallelLinear(torch.nn.Linear(4, 2), 1, 0, product=[])
    # a product runs the forward pass and counts its bytes
    layer = tensor_parallel.RowParallelLinear(torch.nn.Linear(4, 2), 1, 0, product=lambda x, w, b: F.linear(x, w, b))
    x = fixtures.randn(3, 4)
    assert torch.allclose(layer(x), F.linear(x, layer.weight, layer.bias)) and layer.communicated == 3 * 2 * 4


@pytest.fixture
def one_process_group():
    """A one-process group for this test only: one left behind would make every later worker call in this
    process compare its rank with it."""
    import torch.distributed as dist

    fixtures.process_group()
    yield
    dist.destroy_process_group()


def test_gpipe_step_checks_the_schedule(one_process_group):
    stage = pipeline.Stage(fixtures.decoder(tie_embeddings=False), range(0, 2), first=True, last=True)
    ids = fixtures.ids(4, 5)
    good = pipeline.gpipe_step(stage, ids, 2, 0, 1, schedule=pipeline.gpipe_schedule(1, 2))
    assert len(good["busy"]) == 4
    with pytest.raises(TypeError, match="schedule must be a list of rows"):
        pipeline.gpipe_step(stage, ids, 2, 0, 1, schedule="GPipe")
    with pytest.raises(ValueError, match=r"schedule\[0\] must be a list of 1 slots"):
        pipeline.gpipe_step(stage, ids, 2, 0, 1, schedule=[[None, None]])
    with pytest.raises(ValueError, match=r"schedule\[0\]\[0\] must be None"):
        pipeline.gpipe_step(stage, ids, 2, 0, 1, schedule=[[("F", 5)]])
    with pytest.raises(ValueError, match="backward pass of micro-batch 0 before its forward pass"):
        pipeline.gpipe_step(stage, ids, 2, 0, 1, schedule=[[("B", 0)], [("F", 0)], [("F", 1)], [("B", 1)]])
    with pytest.raises(TypeError, match="schedules must be a dict"):
        pipeline.worker_gpipe_sweep(0, 1, dict(vocab_size=50, dim=16, n_layers=1, n_heads=2, n_kv_heads=1,
                                               hidden_dim=32, max_seq_len=8), ids, [2], schedules=[1])
    with pytest.raises(ValueError, match="no timetable for the micro-batch counts"):
        pipeline.worker_gpipe_sweep(0, 1, dict(vocab_size=50, dim=16, n_layers=1, n_heads=2, n_kv_heads=1,
                                               hidden_dim=32, max_seq_len=8), ids, [2], schedules={1: [[("F", 0)]]})


def test_run_yours_checks_its_arguments():
    with pytest.raises(TypeError, match="worker must be a function"):
        grade12.run_yours("worker_train", 2)
    with pytest.raises(TypeError, match="average must be made by yours"):
        grade12.run_yours(data_parallel.worker_train, 2, 5, 16, average=data_parallel.average_gradients)


# ------------------------------------------------------------------------------------------------ diagrams


def test_the_diagrams_return_figures_and_check_their_arguments():
    from matplotlib.figure import Figure

    from llmlab.diagrams import compression as dc
    from llmlab.diagrams import parallelism as dp

    w = fixtures.randn(40)
    codebook, idx = sharing.kmeans(w, 4)
    figs = [dc.shared_weights(w, codebook, idx), dc.low_rank_factors(1536, 576, 64, error=0.83),
            dp.gpipe_timetable(pipeline.gpipe_schedule(4, 4)), dp.megatron_mlp(384, 1536, 2)]
    assert all(isinstance(f, Figure) for f in figs)
    with pytest.raises(ValueError, match="idx must hold indices in"):
        dc.shared_weights(w, codebook, idx + 4)
    with pytest.raises(TypeError, match="idx must hold integer"):
        dc.shared_weights(w, codebook, idx.float())
    with pytest.raises(ValueError, match="rank must be"):
        dc.low_rank_factors(10, 4, 5)
    with pytest.raises(ValueError, match=r"schedule\[0\]\[1\] must be None"):
        dp.gpipe_timetable([[("F", 0), ("X", 1)]])
    with pytest.raises(ValueError, match="hidden must be divisible by world_size"):
        dp.megatron_mlp(384, 1537, 2)
    matplotlib.pyplot.close("all")


def test_async_demo_reads_the_staleness_with_your_function(capsys):
    run = async_sgd.parameter_server(8, 60, jitter=0.5)
    mine = yours(async_sgd.staleness, async_sgd.staleness, name="staleness")
    assert mine(run["events"]) == run["staleness"] and max(run["staleness"]) > 7  # uneven workers: some τ > W - 1
    assert "staleness: yours" in capsys.readouterr().out
    assert yours(mut12.staleness_counts_own_push, async_sgd.staleness)(run["events"]) == [t + 1 for t in run["staleness"]]

    def stub(events):
        raise NotImplementedError

    assert yours(stub, async_sgd.staleness)(run["events"]) == run["staleness"]
