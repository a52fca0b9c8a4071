"""Small worker functions for ``launch.run``: importable by spawned processes (tests and notebook 12)."""
from __future__ import annotations

import time

import torch
import torch.distributed as dist

from llmlab.parallel.launch import worker_place
from llmlab.validate import integer


def rank_and_sum(rank: int, world_size: int) -> tuple[int, float]:
    """(rank, the all-reduced sum of one 1/world_size from each rank): (rank, 1.0) on every rank."""
    rank, world_size = worker_place(rank, world_size)
    t = torch.tensor([1.0 / world_size])
    dist.all_reduce(t)
    return rank, round(float(t), 6)


def fail_on_rank(rank: int, world_size: int, bad: int) -> int:
    """Raise a ValueError on rank ``bad`` (any int: one outside [0, world_size) names no rank, and none
    fails); return the rank on the others."""
    rank, world_size = worker_place(rank, world_size)
    if rank == integer("bad", bad):
        raise ValueError(f"rank {rank} fails on purpose (bad={bad})")
    return rank


def rank_one_skips_the_collective(rank: int, world_size: int) -> int:
    """Rank 0 waits in an all-reduce that rank 1 never joins: only the group's timeout ends it."""
    rank, world_size = worker_place(rank, world_size)
    if rank != 1:
        dist.all_reduce(torch.ones(1))
    else:
        time.sleep(30)
    return rank
