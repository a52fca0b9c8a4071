"""llmlab.parallel: the local launcher and data parallelism over torch.distributed (gloo, 2 processes).

Oracle: a single process trained on the whole batches; data parallelism must give the same weights.
Every wait is bounded, so a broken collective fails the test instead of hanging CI."""
import time

import pytest
import torch

from llmlab.parallel import data_parallel, launch, workers


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
])
def test_bad_input_is_rejected_clearly(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()


def test_a_busy_master_port_is_refused_before_launching():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        with pytest.raises(ValueError, match="unusable"):
            launch.run(workers.rank_and_sum, 2, port=s.getsockname()[1])
