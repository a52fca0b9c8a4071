"""Common mistakes in 12_parallelism.

The distributed ones run on spawned processes, which receive their source code: they may use only
torch, dist, nn, F and math, like a learner's function."""
import torch
import torch.distributed as dist
import torch.nn.functional as F

from llmlab.parallel import data_parallel, pipeline, speedup, tensor_parallel

REFERENCE = {
    "check_shard_range": data_parallel.shard_range,
    "check_average_gradients": data_parallel.average_gradients,
    "check_column_split": tensor_parallel.column_split,
    "check_row_parallel_linear": tensor_parallel.row_parallel_linear,
    "check_gpipe_schedule": pipeline.gpipe_schedule,
    "check_measured_bubble": pipeline.measured_bubble,
    "check_ring_all_reduce_bytes": tensor_parallel.ring_all_reduce_bytes,
    "check_amdahl": speedup.amdahl,
}


# shard_range
def shard_strided(n, world_size, rank):
    return range(rank, n, world_size)


def shard_no_check(n, world_size, rank):
    size = n // world_size
    return range(rank * size, (rank + 1) * size)


def shard_off_by_one(n, world_size, rank):
    if n % world_size:
        raise ValueError("unequal")
    size = n // world_size
    return range(rank * size, (rank + 1) * size + 1)


def shard_ceil(n, world_size, rank):
    if n % world_size:
        raise ValueError("unequal")
    size = n // world_size
    return range(rank * size + 1, (rank + 1) * size + 1) if rank else range(0, size)


# average_gradients (shipped to the ranks as source)
def avg_sum_only(model):
    for p in model.parameters():
        dist.all_reduce(p.grad)


def avg_divide_twice(model):
    for p in model.parameters():
        dist.all_reduce(p.grad)
        p.grad /= dist.get_world_size() ** 2


def avg_no_all_reduce(model):
    for p in model.parameters():
        p.grad /= 1


def avg_hard_coded_two(model):
    for p in model.parameters():
        dist.all_reduce(p.grad)
        p.grad /= 2


def avg_reduce_to_rank_zero(model):
    for p in model.parameters():
        dist.reduce(p.grad, dst=0)
        p.grad /= dist.get_world_size()


def avg_undefined_helper(model):
    for p in model.parameters():
        dist.all_reduce(p.grad)
        p.grad /= world_size_of_the_group  # noqa: F821 - a notebook global, undefined on the ranks


# column_split
def col_dim1(weight, bias, world_size, rank):
    n = weight.shape[1] // world_size
    return weight[:, rank * n:(rank + 1) * n], bias


def col_strided(weight, bias, world_size, rank):
    return weight[rank::world_size], None if bias is None else bias[rank::world_size]


def col_bias_whole(weight, bias, world_size, rank):
    n = weight.shape[0] // world_size
    return weight[rank * n:(rank + 1) * n], bias


def col_chunk_wrong_rank(weight, bias, world_size, rank):
    n = weight.shape[0] // world_size
    r = world_size - 1 - rank
    return weight[r * n:(r + 1) * n], None if bias is None else bias[r * n:(r + 1) * n]


# row_parallel_linear (shipped as source)
def row_bias_every_rank(x_part, weight_part, bias=None):
    y = F.linear(x_part, weight_part, bias)
    dist.all_reduce(y)
    return y


def row_no_all_reduce(x_part, weight_part, bias=None):
    return F.linear(x_part, weight_part, bias)


def row_no_bias(x_part, weight_part, bias=None):
    y = x_part @ weight_part.T
    dist.all_reduce(y)
    return y


def row_mean(x_part, weight_part, bias=None):
    y = x_part @ weight_part.T
    dist.all_reduce(y)
    return y / dist.get_world_size() + bias


# gpipe_schedule
def gp_no_delay(stages, micro_batches):
    steps = micro_batches + stages - 1
    table = [[None] * stages for _ in range(2 * steps)]
    for s in range(stages):
        for j in range(micro_batches):
            table[j][s] = ("F", j)
            table[steps + (stages - 1 - s) + (micro_batches - 1 - j)][s] = ("B", j)
    return table


def gp_forward_only(stages, micro_batches):
    table = [[None] * stages for _ in range(micro_batches + stages - 1)]
    for s in range(stages):
        for j in range(micro_batches):
            table[s + j][s] = ("F", j)
    return table


def gp_backward_first_stage_first(stages, micro_batches):
    steps = micro_batches + stages - 1
    table = [[None] * stages for _ in range(2 * steps)]
    for s in range(stages):
        for j in range(micro_batches):
            table[s + j][s] = ("F", j)
            table[steps + s + (micro_batches - 1 - j)][s] = ("B", j)
    return table


# measured_bubble
def mb_busy_share(busy):
    start = min(s for r in busy for s, _ in r)
    end = max(e for r in busy for _, e in r)
    return sum(e - s for r in busy for s, e in r) / (len(busy) * (end - start))


def mb_no_ranks(busy):
    start = min(s for r in busy for s, _ in r)
    end = max(e for r in busy for _, e in r)
    return 1 - sum(e - s for r in busy for s, e in r) / (end - start)


def mb_per_rank_span(busy):
    return sum(1 - sum(e - s for s, e in r) / (r[-1][1] - r[0][0]) for r in busy) / len(busy)


# ring_all_reduce_bytes
def ring_one_phase(nbytes, world_size):
    return (world_size - 1) / world_size * nbytes


def ring_whole_buffer_per_step(nbytes, world_size):
    return 2 * (world_size - 1) * nbytes


def ring_to_everyone(nbytes, world_size):
    return (world_size - 1) * nbytes


def ring_constant(nbytes, world_size):
    return 2 * nbytes


# amdahl
def amdahl_time(n, parallel_fraction):
    return (1 - parallel_fraction) + parallel_fraction / n


def amdahl_swapped(n, parallel_fraction):
    return 1 / (parallel_fraction + (1 - parallel_fraction) / n)


def amdahl_all_parallel(n, parallel_fraction):
    return n * 1.0


MUTANTS = [
    ("check_shard_range", shard_strided, "contiguous block"),
    ("check_shard_range", shard_no_check, "raise ValueError when n % world_size != 0"),
    ("check_shard_range", shard_off_by_one, "each rank takes n / world_size examples"),
    ("check_shard_range", shard_ceil, "rank r starts at r · n / world_size"),
    ("check_average_gradients", avg_sum_only, "divide the sum by the world size"),
    ("check_average_gradients", avg_divide_twice, "divide once"),
    ("check_average_gradients", avg_no_all_reduce, "were not all-reduced"),
    ("check_average_gradients", avg_hard_coded_two, "not a fixed number"),
    ("check_average_gradients", avg_reduce_to_rank_zero, "dist.all_reduce, not dist.reduce"),
    ("check_average_gradients", avg_undefined_helper, "fresh processes"),
    ("check_column_split", col_dim1, "split dim 0"),
    ("check_column_split", col_strided, "contiguous block of rows"),
    ("check_column_split", col_bias_whole, "split the bias like the rows"),
    ("check_column_split", col_chunk_wrong_rank, "rows r·out/N to (r+1)·out/N"),
    ("check_row_parallel_linear", row_bias_every_rank, "counted world_size times"),
    ("check_row_parallel_linear", row_no_all_reduce, "all-reduce the partial products"),
    ("check_row_parallel_linear", row_no_bias, "forgot the bias"),
    ("check_row_parallel_linear", row_mean, "do not average them"),
    ("check_gpipe_schedule", gp_no_delay, "at step s + j"),
    ("check_gpipe_schedule", gp_forward_only, "then as many backward steps"),
    ("check_gpipe_schedule", gp_backward_first_stage_first, "the last stage first"),
    ("check_measured_bubble", mb_busy_share, "1 - busy share"),
    ("check_measured_bubble", mb_no_ranks, "ranks × wall time"),
    ("check_measured_bubble", mb_per_rank_span, "not its own first-to-last span"),
    ("check_ring_all_reduce_bytes", ring_one_phase, "reduce-scatter then all-gather"),
    ("check_ring_all_reduce_bytes", ring_whole_buffer_per_step, "not the whole buffer"),
    ("check_ring_all_reduce_bytes", ring_to_everyone, "to every other rank"),
    ("check_ring_all_reduce_bytes", ring_constant, "depends on N"),
    ("check_amdahl", amdahl_time, "the speed-up is its inverse"),
    ("check_amdahl", amdahl_swapped, "it is f that is divided by N"),
    ("check_amdahl", amdahl_all_parallel, "the serial part does not shrink"),
]
