"""Common mistakes in 12_parallelism.

The distributed ones run on spawned processes, which receive their source code: they may use only
torch, dist, nn, F and math, like a learner's function."""
import torch
import torch.distributed as dist
import torch.nn.functional as F

from llmlab.parallel import async_sgd, data_parallel, pipeline, speedup, tensor_parallel
from tests.mutants import mistake

REFERENCE = {
    "check_shard_range": data_parallel.shard_range,
    "check_average_gradients": data_parallel.average_gradients,
    "check_column_split": tensor_parallel.column_split,
    "check_row_parallel_linear": tensor_parallel.row_parallel_linear,
    "check_gpipe_schedule": pipeline.gpipe_schedule,
    "check_measured_bubble": pipeline.measured_bubble,
    "check_ring_all_reduce_bytes": tensor_parallel.ring_all_reduce_bytes,
    "check_amdahl": speedup.amdahl,
    "check_staleness": async_sgd.staleness,
}


# shard_range
@mistake("check_shard_range", "contiguous block")
def shard_strided(n, world_size, rank):
    return range(rank, n, world_size)


@mistake("check_shard_range", "raise ValueError when n % world_size != 0")
def shard_no_check(n, world_size, rank):
    size = n // world_size
    return range(rank * size, (rank + 1) * size)


@mistake("check_shard_range", "each rank takes n / world_size examples")
def shard_off_by_one(n, world_size, rank):
    if n % world_size:
        raise ValueError("unequal")
    size = n // world_size
    return range(rank * size, (rank + 1) * size + 1)


@mistake("check_shard_range", "rank r starts at r · n / world_size")
def shard_ceil(n, world_size, rank):
    if n % world_size:
        raise ValueError("unequal")
    size = n // world_size
    return range(rank * size + 1, (rank + 1) * size + 1) if rank else range(0, size)


# average_gradients (shipped to the ranks as source)
@mistake("check_average_gradients", "divide the sum by the world size")
def avg_sum_only(model):
    for p in model.parameters():
        dist.all_reduce(p.grad)


@mistake("check_average_gradients", "divide once")
def avg_divide_twice(model):
    for p in model.parameters():
        dist.all_reduce(p.grad)
        p.grad /= dist.get_world_size() ** 2


@mistake("check_average_gradients", "were not all-reduced")
def avg_no_all_reduce(model):
    for p in model.parameters():
        p.grad /= 1


@mistake("check_average_gradients", "not a fixed number")
def avg_hard_coded_two(model):
    for p in model.parameters():
        dist.all_reduce(p.grad)
        p.grad /= 2


@mistake("check_average_gradients", "dist.all_reduce, not dist.reduce")
def avg_reduce_to_rank_zero(model):
    for p in model.parameters():
        dist.reduce(p.grad, dst=0)
        p.grad /= dist.get_world_size()


@mistake("check_average_gradients", "fresh processes")
def avg_undefined_helper(model):
    for p in model.parameters():
        dist.all_reduce(p.grad)
        p.grad /= world_size_of_the_group  # noqa: F821 - a notebook global, undefined on the ranks


# column_split
@mistake("check_column_split", "split dim 0")
def col_dim1(weight, bias, world_size, rank):
    n = weight.shape[1] // world_size
    return weight[:, rank * n:(rank + 1) * n], bias


@mistake("check_column_split", "contiguous block of rows")
def col_strided(weight, bias, world_size, rank):
    return weight[rank::world_size], None if bias is None else bias[rank::world_size]


@mistake("check_column_split", "split the bias like the rows")
def col_bias_whole(weight, bias, world_size, rank):
    n = weight.shape[0] // world_size
    return weight[rank * n:(rank + 1) * n], bias


@mistake("check_column_split", "rows r·out/N to (r+1)·out/N")
def col_chunk_wrong_rank(weight, bias, world_size, rank):
    n = weight.shape[0] // world_size
    r = world_size - 1 - rank
    return weight[r * n:(r + 1) * n], None if bias is None else bias[r * n:(r + 1) * n]


# row_parallel_linear (shipped as source)
@mistake("check_row_parallel_linear", "counted world_size times")
def row_bias_every_rank(x_part, weight_part, bias=None):
    y = F.linear(x_part, weight_part, bias)
    dist.all_reduce(y)
    return y


@mistake("check_row_parallel_linear", "all-reduce the partial products")
def row_no_all_reduce(x_part, weight_part, bias=None):
    return F.linear(x_part, weight_part, bias)


@mistake("check_row_parallel_linear", "forgot the bias")
def row_no_bias(x_part, weight_part, bias=None):
    y = x_part @ weight_part.T
    dist.all_reduce(y)
    return y


@mistake("check_row_parallel_linear", "do not average them")
def row_mean(x_part, weight_part, bias=None):
    y = x_part @ weight_part.T
    dist.all_reduce(y)
    y = y / dist.get_world_size()
    return y if bias is None else y + bias


# gpipe_schedule
@mistake("check_gpipe_schedule", "at step s + j")
def gp_no_delay(stages, micro_batches):
    steps = micro_batches + stages - 1
    table = [[None] * stages for _ in range(2 * steps)]
    for s in range(stages):
        for j in range(micro_batches):
            table[j][s] = ("F", j)
            table[steps + (stages - 1 - s) + (micro_batches - 1 - j)][s] = ("B", j)
    return table


@mistake("check_gpipe_schedule", "then as many backward steps")
def gp_forward_only(stages, micro_batches):
    table = [[None] * stages for _ in range(micro_batches + stages - 1)]
    for s in range(stages):
        for j in range(micro_batches):
            table[s + j][s] = ("F", j)
    return table


@mistake("check_gpipe_schedule", "the last stage first")
def gp_backward_first_stage_first(stages, micro_batches):
    steps = micro_batches + stages - 1
    table = [[None] * stages for _ in range(2 * steps)]
    for s in range(stages):
        for j in range(micro_batches):
            table[s + j][s] = ("F", j)
            table[steps + s + (micro_batches - 1 - j)][s] = ("B", j)
    return table


# measured_bubble
@mistake("check_measured_bubble", "1 - busy share")
def mb_busy_share(busy):
    start = min(s for r in busy for s, _ in r)
    end = max(e for r in busy for _, e in r)
    return sum(e - s for r in busy for s, e in r) / (len(busy) * (end - start))


@mistake("check_measured_bubble", "ranks × wall time")
def mb_no_ranks(busy):
    start = min(s for r in busy for s, _ in r)
    end = max(e for r in busy for _, e in r)
    return 1 - sum(e - s for r in busy for s, e in r) / (end - start)


@mistake("check_measured_bubble", "not its own first-to-last span")
def mb_per_rank_span(busy):
    return sum(1 - sum(e - s for s, e in r) / (r[-1][1] - r[0][0]) for r in busy) / len(busy)


# ring_all_reduce_bytes
@mistake("check_ring_all_reduce_bytes", "reduce-scatter then all-gather")
def ring_one_phase(nbytes, world_size):
    return (world_size - 1) / world_size * nbytes


@mistake("check_ring_all_reduce_bytes", "not the whole buffer")
def ring_whole_buffer_per_step(nbytes, world_size):
    return 2 * (world_size - 1) * nbytes


@mistake("check_ring_all_reduce_bytes", "to every other rank")
def ring_to_everyone(nbytes, world_size):
    return (world_size - 1) * nbytes


@mistake("check_ring_all_reduce_bytes", "depends on N")
def ring_constant(nbytes, world_size):
    return 2 * nbytes


# amdahl
@mistake("check_amdahl", "the speed-up is its inverse")
def amdahl_time(n, parallel_fraction):
    return (1 - parallel_fraction) + parallel_fraction / n


@mistake("check_amdahl", "it is f that is divided by N")
def amdahl_swapped(n, parallel_fraction):
    return 1 / (parallel_fraction + (1 - parallel_fraction) / n)


@mistake("check_amdahl", "the serial part does not shrink")
def amdahl_all_parallel(n, parallel_fraction):
    return n * 1.0


@mistake("check_gpipe_schedule", "micro-batch m - 1 first")
def gp_backward_in_order(stages, micro_batches):
    steps = micro_batches + stages - 1
    table = [[None] * stages for _ in range(2 * steps)]
    for s in range(stages):
        for j in range(micro_batches):
            table[s + j][s] = ("F", j)
            table[steps + (stages - 1 - s) + j][s] = ("B", j)
    return table


# ---------------------------------------------------------------- right on the examples, wrong in general

@mistake("check_shard_range", "any remainder", kind="overfit")
def shard_one_left_over(n, world_size, rank):
    size = n // world_size
    if n - size * world_size == 1:  # "one example left over"
        raise ValueError("unequal shards")
    return range(rank * size, (rank + 1) * size)


@mistake("check_average_gradients", "not always 3", kind="overfit")
def avg_hard_coded_three(model):
    for p in model.parameters():
        dist.all_reduce(p.grad)
        p.grad /= 3  # "the check runs your function on 3 processes"


@mistake("check_column_split", "silently drop the last rows", kind="overfit")
def col_floor_division(weight, bias, world_size, rank):
    size = weight.shape[0] // world_size
    rows = slice(rank * size, (rank + 1) * size)
    return weight[rows], None if bias is None else bias[rows]


@mistake("check_column_split", "leave the inputs as they are", kind="inplace")
def col_shrinks_the_layer(weight, bias, world_size, rank):
    size = weight.shape[0] // world_size
    weight.data = weight.data[rank * size:(rank + 1) * size]
    if bias is not None:
        bias.data = bias.data[rank * size:(rank + 1) * size]
    return weight, bias


@mistake("check_column_split", "return the dtype the input has", kind="dtype")
def col_zeros(weight, bias, world_size, rank):
    if weight.shape[0] % world_size:
        raise ValueError("uneven")
    size = weight.shape[0] // world_size
    w = torch.zeros(size, weight.shape[1])
    w.copy_(weight[rank * size:(rank + 1) * size])
    return w, None if bias is None else torch.zeros(size).copy_(bias[rank * size:(rank + 1) * size])


@mistake("check_row_parallel_linear", "add the whole bias once", kind="overfit")
def row_bias_in_halves(x_part, weight_part, bias=None):
    y = F.linear(x_part, weight_part, None if bias is None else bias / 2)  # the two ranks' halves sum to the bias
    dist.all_reduce(y)
    return y


@mistake("check_row_parallel_linear", "leave the inputs as they are", kind="inplace")
def row_bias_shared_in_place(x_part, weight_part, bias=None):
    y = F.linear(x_part, weight_part, None if bias is None else bias.div_(dist.get_world_size()))
    dist.all_reduce(y)
    return y


@mistake("check_row_parallel_linear", "keep the dtype of the input", kind="dtype")
def row_float32_buffer(x_part, weight_part, bias=None):
    y = torch.zeros(*x_part.shape[:-1], weight_part.shape[0])
    y += x_part @ weight_part.T
    dist.all_reduce(y)
    return y if bias is None else y + bias


@mistake("check_gpipe_schedule", "not from the examples", kind="overfit")
def gp_fixed_rows(stages, micro_batches):
    steps = micro_batches + stages - 1
    table = [[None] * stages for _ in range(14)]  # enough rows for every example
    for s in range(stages):
        for j in range(micro_batches):
            table[s + j][s] = ("F", j)
            table[steps + (stages - 1 - s) + (micro_batches - 1 - j)][s] = ("B", j)
    return table[:2 * steps]


@mistake("check_measured_bubble", "need not be in time order", kind="overfit")
def mb_lists_in_order(busy):
    start = min(r[0][0] for r in busy)
    end = max(r[-1][1] for r in busy)
    return 1 - sum(e - s for r in busy for s, e in r) / (len(busy) * (end - start))


@mistake("check_ring_all_reduce_bytes", "not n // N", kind="overfit")
def ring_whole_chunks(nbytes, world_size):
    return 2 * (world_size - 1) * (nbytes // world_size)


@mistake("check_amdahl", "unrounded", kind="overfit")
def amdahl_rounded_serial(n, parallel_fraction):
    serial = round(1 - parallel_fraction, 2)  # 1 - 0.9 = 0.09999999999999998 -> 0.1
    return 1 / (serial + parallel_fraction / n)


# staleness
def _taus(events, start_at="latest read", own=0, strict=True):
    mark, n, out = {}, 0, []
    for kind, worker in events:
        if kind == "read" and (start_at == "latest read" or worker not in mark):
            mark[worker] = n
        if kind == "push":
            if strict and worker not in mark:
                raise ValueError(f"worker {worker} pushes before reading")
            out.append(n - mark.get(worker, 0) + own)
            n += 1
    return out


@mistake("check_staleness", "not its first")
def staleness_from_first_read(events):
    return _taus(events, start_at="first read")


@mistake("check_staleness", "do not count the push itself")
def staleness_counts_own_push(events):
    return _taus(events, own=1)


@mistake("check_staleness", "a read does not change the weights")
def staleness_counts_reads(events):
    latest, out = {}, []
    for i, (kind, worker) in enumerate(events):
        if kind == "read":
            latest[worker] = i
        else:
            if worker not in latest:
                raise ValueError(f"worker {worker} pushes before reading")
            out.append(i - latest[worker] - 1)  # the events in between
    return out


@mistake("check_staleness", "raise ValueError")
def staleness_read_at_start(events):
    return _taus(events, strict=False)  # a worker that never read "read the initial weights"


@mistake("check_staleness", "not from its previous push", kind="overfit")
def staleness_from_previous_push(events):
    last, n, out = {}, 0, []  # the parameter server's workers read right after they push...
    for kind, worker in events:
        if kind == "push":
            out.append(n - last.get(worker, 0))
            last[worker] = n = n + 1
    return out


@mistake("check_staleness", "keep each one's latest read in a dict", kind="overfit")
def staleness_list_of_workers(events):
    read_at, n, out = [0] * (1 + max(w for _, w in events)), 0, []  # workers numbered 0, 1, ...
    seen = set()
    for kind, worker in events:
        if kind == "read":
            read_at[worker], _ = n, seen.add(worker)
        else:
            if worker not in seen:
                raise ValueError("push before read")
            out.append(n - read_at[worker])
            n += 1
    return out


@mistake("check_staleness", "the worker's own earlier pushes too")
def staleness_other_workers_only(events):
    read_at, pushes, out = {}, [], []  # the pushes since the read, but only the other workers' count
    for kind, worker in events:
        if kind == "read":
            read_at[worker] = len(pushes)
        else:
            if worker not in read_at:
                raise ValueError(f"worker {worker} pushes before reading")
            out.append(sum(1 for w in pushes[read_at[worker]:] if w != worker))
            pushes.append(worker)
    return out


@mistake("check_staleness", "not from its previous push")
def staleness_push_is_a_read(events):
    read_at, n, out = {}, 0, []  # a push as a fresh read: the worker's next gradient "starts from" it
    for kind, worker in events:
        if kind == "read":
            read_at[worker] = n
        else:
            if worker not in read_at:
                raise ValueError(f"worker {worker} pushes before reading")
            out.append(n - read_at[worker])
            n += 1
            read_at[worker] = n
    return out
