"""Data parallelism: every rank holds the whole model and a shard of each batch.

With a batch of B examples split over N ranks (B / N each), every rank computes the gradient of the
mean loss over its shard, g_r. The gradient of the mean loss over the whole batch is their average,

    g = (1 / N) Σ_r g_r,

which one all-reduce (sum over ranks, result on every rank) and a division give. Every rank then takes
the same optimizer step from the same parameters, so the replicas stay identical: after any number of
steps they equal a single process trained on the whole batches (``tests/test_parallel.py``).
``torch.nn.parallel.DistributedDataParallel`` does the same, overlapping the all-reduce of gradient
"buckets" with the rest of the backward pass.

Cost per step: an all-reduce of every gradient, ~2 (N - 1) / N × the model's bytes per rank with the
ring algorithm, whatever N. Compute shrinks as 1 / N, communication does not: the limit of the speed-up.
"""
from __future__ import annotations

import datetime

import torch
import torch.distributed as dist
import torch.nn as nn

from llmlab.parallel.launch import worker_place
from llmlab.validate import MAX_SIZE, flag, integer, positive_float, positive_int, size, tensor


def shard_range(n: int, world_size: int, rank: int) -> range:
    """The indices of the examples rank ``rank`` of ``world_size`` takes from a batch of n: a contiguous
    block of n / world_size. n must be divisible by world_size (equal shards keep the average exact)."""
    n, world_size = positive_int("n", n), positive_int("world_size", world_size)
    rank = positive_int("rank", rank, minimum=0)
    if rank >= world_size:
        raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
    if n % world_size:
        raise ValueError(f"a batch of {n} does not split into {world_size} equal shards: world_size must divide n")
    size = n // world_size
    return range(rank * size, (rank + 1) * size)


def average_gradients(model: nn.Module) -> None:
    """All-reduce every parameter's gradient and divide by the world size, in place."""
    # self-contained (no helper of this module): the grader ships this function's source to fresh ranks
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    world_size = dist.get_world_size()
    for p in model.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
            p.grad /= world_size


def make_model(seed: int = 0) -> nn.Module:
    """A small MLP regressor, the same on every rank for a given seed."""
    torch.manual_seed(integer("seed", seed))
    return nn.Sequential(nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 1))


def make_data(n: int = 64, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """n examples of the regression: x (n, 8) ~ N(0, 1), y = sum(sin(x)) (n, 1)."""
    n = integer("n", n, minimum=1, maximum=MAX_SIZE // 8)  # x holds 8 n numbers
    g = torch.Generator().manual_seed(integer("seed", seed))
    x = torch.randn(n, 8, generator=g)
    return x, x.sin().sum(1, keepdim=True)


def _function(name: str, fn, signature: str):
    """None, or a callable (``signature`` says how it is called)."""
    if fn is not None and not callable(fn):
        raise TypeError(f"{name} must be a function {signature}, or None for llmlab's, got {type(fn).__name__}")
    return fn


def _shard_rows(shard, batch_size: int, world_size: int, rank: int) -> torch.Tensor:
    """The rows of a batch that ``shard(batch_size, world_size, rank)`` gives this rank, checked: ints in
    [0, batch_size)."""
    out = shard(batch_size, world_size, rank)
    if isinstance(out, (str, bytes, torch.Tensor)) or not isinstance(out, (range, list, tuple)):
        raise TypeError(f"shard({batch_size}, {world_size}, {rank}) must return a range (or list) of example indices, "
                        f"got {type(out).__name__}")
    rows = list(out)
    if not rows or any(isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < batch_size for i in rows):
        raise ValueError(f"shard({batch_size}, {world_size}, {rank}) must return indices in [0, {batch_size}) (a "
                         f"shard of one batch), got {rows[:8]}{' ...' if len(rows) > 8 else ''}")
    return torch.tensor(rows)


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, batch_size: int,
          lr: float = 0.05, rank: int = 0, world_size: int = 1, ddp: bool = False, shard=None,
          average=None) -> nn.Module:
    """``steps`` SGD steps on consecutive batches of x, y; with world_size > 1 each rank uses its shard of
    every batch and averages gradients (by hand, or with DistributedDataParallel when ``ddp``). x (n, ...) and
    y (n, ...) hold one example per row; batch_size <= n must be divisible by world_size.

    ``shard(n, world_size, rank)`` (default ``shard_range``) gives the indices of this rank's examples in a
    batch of n, and ``average(model)`` (default ``average_gradients``; unused with ``ddp``) averages the
    gradients over the ranks in place: pass your own to run them in a real data-parallel loop."""
    flag("ddp", ddp)
    _function("shard", shard, "(n, world_size, rank) -> indices")
    _function("average", average, "(model) -> None")
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    steps = size("steps", steps, minimum=0)
    tensor("x", x, min_ndim=2, floating=True, finite=True)
    tensor("y", y, min_ndim=2, floating=True, finite=True)
    if len(x) != len(y):
        raise ValueError(f"x and y must hold the same number of examples (rows), got x {tuple(x.shape)} and "
                         f"y {tuple(y.shape)}")
    batch_size = integer("batch_size", batch_size, minimum=1, maximum=len(x))
    positive_float("lr", lr)
    world_size = positive_int("world_size", world_size)
    if batch_size % world_size:
        raise ValueError(f"batch_size must be divisible by world_size {world_size} (equal shards), got {batch_size}")
    rank = integer("rank", rank, minimum=0, maximum=world_size - 1)
    average = average_gradients if average is None else average
    net = nn.parallel.DistributedDataParallel(model) if ddp else model
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    for step in range(steps):
        start = (step * batch_size) % len(x)
        if shard is None:
            part = shard_range(batch_size, world_size, rank)
            xb, yb = x[start + part.start:start + part.stop], y[start + part.start:start + part.stop]
        else:
            rows = start + _shard_rows(shard, batch_size, world_size, rank)
            xb, yb = x[rows], y[rows]
        opt.zero_grad()
        nn.functional.mse_loss(net(xb), yb).backward()
        if world_size > 1 and not ddp:
            average(model)
        opt.step()
    return model


def worker_train(rank: int, world_size: int, steps: int, batch_size: int, ddp: bool = False, shard=None,
                 average=None) -> dict:
    """Worker for ``launch.run``: train the shared model on this rank's shards; return its final weights.
    ``shard`` and ``average`` as in ``train`` (functions that ``launch.run`` can send to the ranks)."""
    flag("ddp", ddp)
    _function("shard", shard, "(n, world_size, rank) -> indices")
    _function("average", average, "(model) -> None")
    rank, world_size = worker_place(rank, world_size)
    x, y = make_data()
    model = train(make_model(), x, y, steps, batch_size, rank=rank, world_size=world_size, ddp=ddp, shard=shard,
                  average=average)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def main() -> None:
    """The same worker as a script for ``torchrun``, which starts the processes and sets RANK, WORLD_SIZE,
    MASTER_ADDR and MASTER_PORT itself:

        torchrun --standalone --nproc-per-node 2 -m llmlab.parallel.data_parallel            (one machine)
        torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29500 \\
                 -m llmlab.parallel.data_parallel                                              (two machines)
    """
    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=60))  # reads the variables torchrun set
    try:
        rank, world_size = dist.get_rank(), dist.get_world_size()
        state = worker_train(rank, world_size, steps=5, batch_size=16)
        checksum = sum(float(v.double().sum()) for v in state.values())
        print(f"rank {rank} of {world_size}: 5 data-parallel steps, weights checksum {checksum:.6f}", flush=True)
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
