"""Speed-up and its limits: measured data-parallel step times, Amdahl's law and a communication model.

Amdahl: if a fraction f of the work parallelises perfectly and the rest does not, N workers give

    S(N) = 1 / ((1 - f) + f / N)  ≤  1 / (1 - f).

Data parallelism adds a cost that Amdahl's law leaves out: every step all-reduces the gradients,
n bytes, which with a ring takes about 2 (N - 1) α + 2 (N - 1) / N · n / β (latency α per message,
bandwidth β). With T₁ the one-process step time,

    S(N) = T₁ / (T₁ / N + 2 (N - 1) α + 2 (N - 1) / N · n / β),

which flattens (or falls) once the all-reduce costs as much as the shrinking compute: larger batches
(more compute per byte), gradient compression and overlapping the all-reduce with the backward
pass (DDP's buckets) push that point out. On one machine, running more processes than cores adds a
third limit: they take turns.
"""
from __future__ import annotations

import math
import statistics
import time

import torch
import torch.distributed as dist
import torch.nn as nn

from llmlab.validate import MAX_SIZE, flag, integer, positive_float, positive_int, probability, size
from llmlab.parallel.data_parallel import average_gradients, shard_range
from llmlab.parallel.launch import worker_place
from llmlab.parallel.tensor_parallel import ring_all_reduce_bytes


def amdahl(n: int, parallel_fraction: float) -> float:
    """Amdahl's speed-up with n workers when ``parallel_fraction`` of the work parallelises."""
    n = positive_int("n", n)
    probability("parallel_fraction", parallel_fraction)
    return 1 / ((1 - parallel_fraction) + parallel_fraction / n)


def comm_model(n: int, t1: float, nbytes: float, bandwidth: float, latency: float = 0.0) -> float:
    """Speed-up of data parallelism on n ranks: one-process step time ``t1`` (s), compute divided by n,
    plus a ring all-reduce of ``nbytes`` at ``bandwidth`` (bytes/s) with ``latency`` (s) per message."""
    n, t1 = positive_int("n", n), positive_float("t1", t1)
    bandwidth, latency = positive_float("bandwidth", bandwidth), positive_float("latency", latency, allow_zero=True)
    comm = 0.0 if n == 1 else 2 * (n - 1) * latency + ring_all_reduce_bytes(nbytes, n) / bandwidth
    return t1 / (t1 / n + comm)


MAX_WIDTH = math.isqrt(MAX_SIZE // 8)  # the MLP has 8 width² weights


def make_mlp(width: int, seed: int = 0) -> nn.Module:
    """width -> 4 width -> width, GELU in between; the same on every rank for a seed."""
    width = integer("width", width, minimum=1, maximum=MAX_WIDTH)
    torch.manual_seed(integer("seed", seed))
    return nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))


def _check_run(width: int, batch_size: int, steps: int, world_sizes: list[int]) -> int:
    """The sizes of a ``worker_step_times`` run on each of ``world_sizes``; returns steps."""
    integer("width", width, minimum=1, maximum=MAX_WIDTH)
    batch_size = size("batch_size", batch_size)
    if batch_size * width > MAX_SIZE:  # the inputs and the targets are (batch_size, width) each
        raise ValueError(f"batch_size x width must be <= {MAX_SIZE:,} (the inputs' size), got {batch_size} x {width}")
    for n in world_sizes:
        if batch_size % n:
            raise ValueError(f"batch_size must be divisible by the world size {n} (equal shards), got {batch_size}")
    return size("steps", steps)


def worker_step_times(rank: int, world_size: int, width: int = 256, batch_size: int = 512, steps: int = 20) -> dict:
    """Worker for ``launch.run``: data-parallel SGD steps of an MLP on a fixed global batch, one thread per
    rank (one core each). Returns the median step time and the median time of its gradient all-reduce (s),
    and the bytes all-reduced per step."""
    rank, world_size = worker_place(rank, world_size)
    steps = _check_run(width, batch_size, steps, [world_size])
    torch.set_num_threads(1)
    model = make_mlp(width)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(batch_size, width, generator=g), torch.randn(batch_size, width, generator=g)
    shard = shard_range(batch_size, world_size, rank)
    xb, yb = x[shard.start:shard.stop], y[shard.start:shard.stop]
    step_times, comm_times = [], []
    for step in range(steps + 3):  # 3 warm-up steps
        if world_size > 1:
            dist.barrier()
        t0 = time.perf_counter()
        opt.zero_grad()
        nn.functional.mse_loss(model(xb), yb).backward()
        t1 = time.perf_counter()
        if world_size > 1:
            average_gradients(model)
        t2 = time.perf_counter()
        opt.step()
        if step >= 3:
            step_times.append(time.perf_counter() - t0)
            comm_times.append(t2 - t1)
    nbytes = sum(p.numel() * p.element_size() for p in model.parameters())
    return {"step": statistics.median(step_times), "comm": statistics.median(comm_times), "bytes": nbytes}


def measure(world_sizes: list[int], width: int = 256, batch_size: int = 512, steps: int = 20,
            timeout: float = 120, progress: bool = True) -> list[dict]:
    """Run ``worker_step_times`` on each world size; per world size the slowest rank's figures (the step ends
    when the last rank does) and the speed-up over the first world size in the list."""
    flag("progress", progress)
    from tqdm.auto import tqdm

    from llmlab.parallel.launch import MAX_LOCAL_RANKS, run

    if isinstance(world_sizes, (str, bytes)) or not isinstance(world_sizes, (list, tuple, range)):
        raise TypeError(f"world_sizes must be a list of ints, got {type(world_sizes).__name__}")
    if not world_sizes:
        raise ValueError("world_sizes is empty: give at least one number of processes, e.g. [1, 2]")
    for i, n in enumerate(world_sizes):
        integer(f"world_sizes[{i}]", n, minimum=1, maximum=MAX_LOCAL_RANKS)
    # checked here, before any process starts: a rank's failure would arrive as "rank 0 of 1 failed: ..."
    steps = _check_run(width, batch_size, steps, world_sizes)
    positive_float("timeout", timeout)
    rows = []
    for n in tqdm(world_sizes, desc="world sizes", disable=not progress):
        ranks = run(worker_step_times, n, width, batch_size, steps, timeout=timeout)
        rows.append({"processes": n, "step": max(r["step"] for r in ranks), "comm": max(r["comm"] for r in ranks),
                     "bytes": ranks[0]["bytes"]})
    for row in rows:
        row["speedup"] = rows[0]["step"] / row["step"]
    return rows
