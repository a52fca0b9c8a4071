"""llmlab.parallel: the local launcher, data, tensor and pipeline parallelism over torch.distributed
(gloo, 2 processes), the asynchronous SGD simulation and the speed-up models.

Oracles: one process computing the same thing densely (data parallel: the same weights; tensor
parallel: the same outputs and gradients; pipeline: the same gradients). Every wait is bounded, so a
broken collective fails the test instead of hanging CI."""
import subprocess
import sys
import time

import pytest
import torch
import torch.nn.functional as F

from llmlab.nn.model import Decoder, DecoderConfig
from llmlab.parallel import async_sgd, data_parallel, launch, pipeline, speedup, tensor_parallel, workers


def test_run_returns_each_ranks_result():
    assert launch.run(workers.rank_and_sum, 2, timeout=30) == [(0, 1.0), (1, 1.0)]


def test_a_failing_rank_is_named():
    with pytest.raises(RuntimeError, match="rank 1 of 2 failed: ValueError: rank 1 fails on purpose"):
        launch.run(workers.fail_on_rank, 2, 1, timeout=30)


def test_a_rank_that_never_joins_a_collective_times_out_instead_of_hanging():
    t0 = time.monotonic()
    with pytest.raises((RuntimeError, TimeoutError)):
        launch.run(workers.rank_one_skips_the_collective, 2, timeout=5)
    assert time.monotonic() - t0 < 60


@pytest.mark.parametrize("ddp", [False, True])
def test_data_parallel_equals_one_process_on_the_whole_batch(ddp):
    x, y = data_parallel.make_data()
    single = data_parallel.train(data_parallel.make_model(), x, y, steps=5, batch_size=16).state_dict()
    ranks = launch.run(data_parallel.worker_train, 2, 5, 16, ddp, timeout=60)
    for state in ranks:
        for k in single:
            torch.testing.assert_close(state[k], single[k], rtol=1e-5, atol=1e-6)


def test_shard_ranges_tile_the_batch():
    assert [data_parallel.shard_range(12, 3, r) for r in range(3)] == [range(0, 4), range(4, 8), range(8, 12)]


@pytest.mark.parametrize("call,exc,msg", [
    (lambda: launch.run(workers.rank_and_sum, 0), ValueError, "world_size must be >= 1"),
    (lambda: launch.run(workers.rank_and_sum, 2.0), TypeError, "world_size must be an int"),
    (lambda: launch.run(lambda r, w: r, 2), TypeError, "cannot import"),
    (lambda: launch.run(workers.rank_and_sum, 2, port=70000), ValueError, "between 1 and 65535"),
    (lambda: launch.run(workers.rank_and_sum, 2, backend="mpi"), ValueError, "backend"),
    (lambda: data_parallel.shard_range(10, 3, 0), ValueError, "does not split into 3 equal shards"),
    (lambda: data_parallel.shard_range(12, 3, 3), ValueError, r"rank must be in \[0, 3\)"),
    (lambda: tensor_parallel.column_split(torch.ones(6, 4), None, 4, 0), ValueError, "output features"),
    (lambda: tensor_parallel.row_split(torch.ones(6, 5), 2, 0), ValueError, "input features"),
    (lambda: tensor_parallel.shard_attention(Decoder(DecoderConfig(vocab_size=8, dim=36, n_layers=1, n_heads=3, n_kv_heads=1,
                                                                    hidden_dim=8)).layers[0].attention, 2, 0),
     ValueError, "do not split over 2 ranks"),
    (lambda: pipeline.split_layers(2, 3), ValueError, "at least 3 layers"),
    (lambda: pipeline.gpipe_schedule(0, 4), ValueError, "stages must be >= 1"),
    (lambda: pipeline.measured_bubble([]), ValueError, "non-empty"),
    (lambda: async_sgd.parameter_server(0, 10), ValueError, "workers must be >= 1"),
    (lambda: speedup.amdahl(4, 1.5), ValueError, "parallel_fraction"),
    (lambda: speedup.comm_model(2, 1.0, -5, 1e9), ValueError, "nbytes must be >= 0"),
    (lambda: speedup.comm_model(2, 1.0, 1e6, 0), ValueError, "bandwidth must be > 0"),
    (lambda: tensor_parallel.ring_all_reduce_bytes(1000, 0), ValueError, "world_size must be >= 1"),
    (lambda: tensor_parallel.ring_all_reduce_bytes("1000", 2), TypeError, "nbytes must be a number"),
    (lambda: pipeline.gpipe_step(None, torch.zeros(10, 4, dtype=torch.long), 3, 0, 2), ValueError,
     "does not split into 3 equal micro-batches"),
    # an empty config would build SmolLM2-135M on every rank (seconds each): refused at once
    (lambda: pipeline.worker_gpipe(0, 1, {}, torch.zeros(2, 4, dtype=torch.long), 1), ValueError,
     "cfg_kwargs is empty"),
    (lambda: tensor_parallel.worker_decoder(0, 1, {}, torch.zeros(2, 4, dtype=torch.long)), ValueError,
     "cfg_kwargs is empty"),
    (lambda: pipeline.worker_gpipe(0, 1, dict(n_layer=2), torch.zeros(2, 4, dtype=torch.long), 1), ValueError,
     r"cfg_kwargs has unknown fields \['n_layer'\]"),
    (lambda: pipeline.worker_gpipe_sweep(0, 1, dict(n_layers=2), torch.zeros(4, 4, dtype=torch.long), [1, 3]),
     ValueError, r"micro_batch_counts\[1\] must divide"),
    (lambda: pipeline.lm_loss(torch.zeros(2, 5, 8), torch.full((2, 5), 8)), ValueError,
     r"ids holds ids outside \[0, 8\)"),
    (lambda: data_parallel.train(data_parallel.make_model(), *data_parallel.make_data(16), 1, 32), ValueError,
     "batch_size must be >= 1 and <= 16"),
    (lambda: data_parallel.make_data(0), ValueError, "n must be >= 1"),
    (lambda: tensor_parallel.column_split(torch.ones(4, 2), torch.ones(3), 2, 0), ValueError,
     r"bias must have shape \(4,\)"),
    (lambda: tensor_parallel.row_split(torch.ones(4, 6), 0, 0), ValueError, "world_size must be >= 1"),
    (lambda: speedup.measure([], progress=False), ValueError, "world_sizes is empty"),
    (lambda: speedup.measure([2], batch_size=7, progress=False), ValueError, "batch_size must be divisible"),
    (lambda: speedup.amdahl(4, None), TypeError, "parallel_fraction must be a number"),
])
def test_bad_input_is_rejected_clearly(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()


def test_parallelize_checks_every_layer_before_sharding_any():
    model = Decoder(DecoderConfig(vocab_size=8, dim=16, n_layers=2, n_heads=2, n_kv_heads=2, hidden_dim=9))
    with pytest.raises(ValueError, match="hidden units .9. does not split into 2 equal shards"):
        tensor_parallel.parallelize(model, 2, 0)  # the heads split, the MLP's 9 hidden units do not
    assert not any(isinstance(m, tensor_parallel.TensorParallel) for m in model.modules())


def test_a_busy_master_port_is_refused_before_launching():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        with pytest.raises(ValueError, match="unusable"):
            launch.run(workers.rank_and_sum, 2, port=s.getsockname()[1])


TINY = dict(vocab_size=64, dim=64, n_layers=2, n_heads=4, n_kv_heads=2, hidden_dim=96, max_seq_len=32)


def _dense_decoder(cfg: dict, ids: torch.Tensor, seed: int = 0) -> Decoder:
    torch.manual_seed(seed)
    model = Decoder(DecoderConfig(**cfg))
    pipeline.lm_loss(model(ids), ids).backward()
    return model


def test_tensor_parallel_minilm_embeds_like_the_dense_model():
    from llmlab.models.minilm import embed, load_minilm
    from llmlab.tokenization.wordpiece import load_minilm_tokenizer

    texts = ["Tensor parallelism splits every weight matrix.", "张量并行把每个矩阵切开。"]
    ranks = launch.run(tensor_parallel.worker_minilm, 2, texts, timeout=60)
    dense = embed(load_minilm(device="cpu"), load_minilm_tokenizer(), texts)
    n_params = sum(p.numel() for p in load_minilm(device="cpu").parameters())
    for r in ranks:
        torch.testing.assert_close(r["embeddings"], dense, rtol=1e-5, atol=1e-6)
        assert r["parameters"] < n_params  # each rank holds a share of the block weights
    # two all-reduces per layer of (B, T, C) float32: B T = the tokens of the padded batch
    T = max(len(load_minilm_tokenizer().encode(t)) for t in texts)
    assert ranks[0]["bytes"] == 6 * 2 * 2 * T * 384 * 4


def test_tensor_parallel_decoder_equals_dense_logits_and_gradients():
    ids = torch.randint(0, 64, (2, 12), generator=torch.Generator().manual_seed(0))
    dense = _dense_decoder(TINY, ids)
    ranks = launch.run(tensor_parallel.worker_decoder, 2, TINY, ids, timeout=60)
    logits = dense(ids)
    grads = {k: p.grad for k, p in dense.named_parameters()}
    for rank, r in enumerate(ranks):
        torch.testing.assert_close(r["logits"], logits, rtol=1e-5, atol=1e-5)
        assert r["bytes"] == 2 * 2 * ids.numel() * 64 * 4  # wo and w2 of 2 layers, (B, T, C) float32
        for name, g in r["grads"].items():
            full = grads[name.replace(".module.", ".")]
            if name.endswith(("wq.weight", "wk.weight", "wv.weight", "w1.weight", "w3.weight")):
                full = tensor_parallel.column_split(full, None, 2, rank)[0]
            elif name.endswith(("wo.weight", "w2.weight")):
                full = tensor_parallel.row_split(full, 2, rank)
            torch.testing.assert_close(g, full, rtol=1e-4, atol=1e-6, msg=name)


def test_pipeline_gradients_equal_one_process_on_the_whole_batch():
    cfg = dict(TINY, n_layers=3, tie_embeddings=False)
    ids = torch.randint(0, 64, (8, 12), generator=torch.Generator().manual_seed(1))
    dense = _dense_decoder(cfg, ids)
    ranks = launch.run(pipeline.worker_gpipe, 2, cfg, ids, 4, timeout=60)
    grads = {k: p.grad for k, p in dense.named_parameters()}
    assert sorted(k for r in ranks for k in r["grads"]) == sorted(grads)  # every parameter on exactly one stage
    for r in ranks:
        for k, g in r["grads"].items():
            torch.testing.assert_close(g, grads[k], rtol=1e-4, atol=1e-7, msg=k)
    assert ranks[0]["loss"] is None
    with torch.no_grad():
        assert ranks[1]["loss"] == pytest.approx(float(pipeline.lm_loss(dense(ids), ids)), rel=1e-5)
    assert len(ranks[0]["busy"]) == len(ranks[1]["busy"]) == 8  # 4 forward, 4 backward
    assert 0 < pipeline.measured_bubble([r["busy"] for r in ranks]) < 1


@pytest.mark.parametrize("p,m", [(1, 3), (2, 4), (4, 2), (3, 7)])
def test_gpipe_schedule_bubble_is_the_formula(p, m):
    table = pipeline.gpipe_schedule(p, m)
    assert len(table) == 2 * (m + p - 1)
    for s in range(p):  # every pass once per stage, each after the one it depends on
        column = [row[s] for row in table]
        assert sorted(x for x in column if x) == sorted([("B", j) for j in range(m)] + [("F", j) for j in range(m)])
        for t, slot in enumerate(column):
            if slot and slot[0] == "F" and s > 0:
                assert table.index(next(r for r in table if r[s - 1] == slot)) < t
    busy = [[(t, t + 1) for t, row in enumerate(table) if row[s]] for s in range(p)]
    assert pipeline.measured_bubble(busy) == pytest.approx(pipeline.bubble_fraction(p, m))


def test_split_layers_is_balanced_and_contiguous():
    assert pipeline.split_layers(30, 4) == [range(0, 8), range(8, 16), range(16, 23), range(23, 30)]


def test_async_sgd_one_worker_is_plain_sgd_and_staleness_grows_with_workers():
    one = async_sgd.parameter_server(1, 30)
    assert set(one["staleness"]) == {0}
    model = data_parallel.make_model(0)
    x, y = data_parallel.make_data(512, seed=1)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    for step in range(30):
        idx = torch.arange(step * 16, (step + 1) * 16) % 512
        opt.zero_grad()
        F.mse_loss(model(x[idx]), y[idx]).backward()
        opt.step()
    assert one["loss"][-1] == pytest.approx(float(F.mse_loss(model(x), y).detach()), rel=1e-5)
    four = async_sgd.parameter_server(4, 30)
    assert four["staleness"][:4] == [0, 1, 2, 3] and set(four["staleness"][3:]) == {3}  # equal workers: W - 1
    jitter = async_sgd.parameter_server(4, 200, jitter=1.0)
    assert max(jitter["staleness"]) > 3


def test_speedup_models():
    assert speedup.amdahl(1, 0.9) == 1 and speedup.amdahl(10**9, 0.9) == pytest.approx(10)
    assert speedup.comm_model(1, 1.0, 1e6, 1e9) == 1
    assert speedup.comm_model(2, 1.0, 0.0, 1e9) == pytest.approx(2)
    assert speedup.comm_model(4, 1.0, 1e9, 1e9) == pytest.approx(1 / (0.25 + 1.5))
    assert tensor_parallel.ring_all_reduce_bytes(1000, 4) == 1500


def test_measured_speedup_runs_one_and_two_processes():
    rows = speedup.measure([1, 2], width=32, batch_size=64, steps=2, timeout=60)
    assert [r["processes"] for r in rows] == [1, 2] and rows[0]["speedup"] == 1
    assert rows[0]["bytes"] == rows[1]["bytes"] > 0 and rows[1]["comm"] > 0


def test_the_same_worker_runs_under_torchrun():
    out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                          "-m", "llmlab.parallel.data_parallel"], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    import re

    found = sorted(re.findall(r"rank (\d) of 2: .*?checksum (-?\d+\.\d{6})", out.stdout))  # lines may interleave
    assert [r for r, _ in found] == ["0", "1"] and found[0][1] == found[1][1]
