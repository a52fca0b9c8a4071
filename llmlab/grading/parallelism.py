"""Checks for notebook 12_parallelism.

Functions that call ``torch.distributed`` are checked where they run for real: on spawned processes
joined in a gloo group. A function defined in a notebook cell cannot be imported by those processes,
so the check sends its source code, and each rank defines it again (``_learner``) next to torch,
``dist``, ``nn``, ``F`` and ``math``. The ranks are started by :func:`run_on_ranks` where the function
lives: in the learner's kernel (in a class run, inside its sandbox), never in the grader. The checks'
own references know what every rank should return (``_expected``) and start no process.
"""
from __future__ import annotations

import ast
import inspect
import math
import textwrap

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from llmlab.grading.core import INPLACE_HINT, NOT_IMPLEMENTED_HINT, Case, Check, Draw, exercise, invoke
from llmlab.grading.core import randn as _randn
from llmlab.parallel import async_sgd, data_parallel, launch, pipeline, speedup, tensor_parallel

# --------------------------------------------------------------------------- running on several processes

_NAMES = "torch, dist (torch.distributed), nn, F and math"
_COLLECTIVES = "every rank must call every collective (all_reduce waits until all ranks have joined it)"
_RANK_HINTS = {"NameError": f"your function runs in fresh processes where only {_NAMES} are defined: "
                            "import anything else inside the function",
               "in place": INPLACE_HINT, "did not finish": _COLLECTIVES, "Timed out": _COLLECTIVES, "timeout": _COLLECTIVES}
_EXPECTED: set = set()


def _expected(fn):
    """A check's reference for :func:`run_on_ranks`: ``fn(worker, world_size, *args)`` is every rank's result,
    computed in this process."""
    _EXPECTED.add(fn)
    return fn


def run_on_ranks(fn, worker, world_size: int, *args) -> list:
    """Harness: ``worker(rank, world_size, source, name, *args)`` on ``world_size`` spawned ranks, where
    ``source`` is ``fn``'s code. It runs where ``fn`` lives: in a class run, inside the learner's sandbox.
    A rank's failure is raised as a one-line RuntimeError that names it."""
    if any(fn is e for e in _EXPECTED):
        return fn(worker, world_size, *args)
    try:
        source = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):
        raise LookupError(f"cannot read the source code of {getattr(fn, '__name__', fn)!r}") from None
    # from the `def` line on: a decorator names something the ranks do not have
    first = next((n.lineno for n in ast.parse(source).body if isinstance(n, ast.FunctionDef)), 1)
    source = "\n".join(source.split("\n")[first - 1:])
    if "raise NotImplementedError" in source:
        raise NotImplementedError
    try:
        return launch.run(worker, world_size, source, fn.__name__, *args, timeout=45)
    except RuntimeError as e:
        raise RuntimeError(str(e).split("\n")[0][:300]) from None


def _learner(source: str, name: str):
    """On a rank: define the learner's function again from its source."""
    namespace = {"torch": torch, "dist": dist, "nn": nn, "F": F, "math": math, "__name__": "learner"}
    exec(compile(source, f"<your {name}>", "exec"), namespace)
    return namespace[name]


def _on_ranks(c: Check, worker, world_size: int, *args) -> list:
    """The learner's function run on ranks (:func:`run_on_ranks`); a failure on a rank becomes one line that names it."""
    try:
        return invoke(c.fn, (worker, world_size, *args), {}, via=run_on_ranks)
    except NotImplementedError:
        c.fail("not implemented yet", NOT_IMPLEMENTED_HINT)
    except LookupError as e:
        c.fail(str(e), "define the function with `def` in a cell and run that cell: the check sends its code to other processes")
    except (RuntimeError, TimeoutError) as e:
        msg = str(e)
        if "NotImplementedError" in msg:
            c.fail("not implemented yet", NOT_IMPLEMENTED_HINT)
        c.fail(msg[:300], next((h for frag, h in _RANK_HINTS.items() if frag in msg),
                               "read the error: it happened inside your function on that rank"))


def or_value_error(fn, *args):
    """Harness: ``fn(*args)``, or the string "ValueError" when ``fn`` refuses its arguments with one."""
    try:
        return fn(*args)
    except ValueError:
        return "ValueError"


# ------------------------------------------------------------------------------------------ data parallel

_DIVIDES = "raise ValueError whenever n % world_size != 0 (any remainder, and fewer examples than ranks)"


def all_shards(fn, n: int, world_size: int):
    """Harness: every rank's shard of a batch of n, as lists, or "ValueError" when ``fn`` refuses the split."""
    try:
        return [list(fn(n, world_size, rank)) for rank in range(world_size)]
    except ValueError:
        return "ValueError"


def _shard_cases(d: Draw) -> list[Case]:
    ws, big = d.int(2, 8), d.int(4, 8)
    return [Case("another batch and world size", ws * d.int(2, 9), ws),
            Case("a remainder other than 1", big * d.int(1, 5) + d.int(2, big - 1), big, hint=_DIVIDES),
            Case("fewer examples than ranks", d.int(1, 3), d.int(4, 8), hint=_DIVIDES),
            Case("one example per rank", ws, ws)]


@exercise("12.shard_range", reference=data_parallel.shard_range, cases=_shard_cases, via=all_shards)
def check_shard_range(c: Check) -> None:
    for n, world_size in ((12, 3), (8, 2), (10, 5), (7, 1), (16, 4)):
        got = []
        for rank in range(world_size):
            out = c.call(n, world_size, rank)
            c.expect(isinstance(out, (range, list, tuple)) and all(isinstance(i, int) for i in out),
                     f"shard_range({n}, {world_size}, {rank}) returned {type(out).__name__}, expected a range of indices",
                     "return range(start, stop)")
            out = list(out)
            want = list(data_parallel.shard_range(n, world_size, rank))
            if out == list(range(rank, n, world_size)) and out != want:
                c.fail(f"shard_range({n}, {world_size}, {rank}) = {out}: every {world_size}-th example",
                       "give each rank one contiguous block of n / world_size examples (rank 0 the first)")
            c.expect(len(out) == n // world_size,
                     f"shard_range({n}, {world_size}, {rank}) has {len(out)} indices, expected {n // world_size}",
                     "each rank takes n / world_size examples")
            c.expect(out == want, f"shard_range({n}, {world_size}, {rank}) = {out}, expected {want}",
                     "rank r starts at r · n / world_size")
            got += out
        c.expect(sorted(got) == list(range(n)), f"the shards of {n} over {world_size} ranks do not tile 0 .. {n - 1}",
                 "together the ranks must cover every example exactly once")
    out = c.call(10, 3, 0, via=or_value_error, error_hints={"": "raise ValueError, not another exception"})
    c.expect(out == "ValueError", f"shard_range(10, 3, 0) returned {out!r:.60}: 10 examples do not split into 3 equal "
             "shards", "raise ValueError when n % world_size != 0: unequal shards would weight the examples unequally "
             "in the average")


def _gradients(world_size: int, rank: int | None, seed: int = 3, per_rank: int = 8) -> nn.Module:
    """The check's model after backward on rank ``rank``'s shard of the check's batch (None: the whole batch)."""
    x, y = data_parallel.make_data(per_rank * world_size, seed=seed)
    if rank is not None:
        shard = data_parallel.shard_range(len(x), world_size, rank)
        x, y = x[shard.start:shard.stop], y[shard.start:shard.stop]
    model = data_parallel.make_model(seed=2)
    F.mse_loss(model(x), y).backward()
    return model


def worker_average_gradients(rank: int, world_size: int, source: str, name: str, seed: int = 3,
                             per_rank: int = 8) -> dict:
    """On a rank: gradients of this rank's shard, then the learner's averaging."""
    fn = _learner(source, name)
    model = _gradients(world_size, rank, seed, per_rank)
    fn(model)
    return {k: None if p.grad is None else p.grad.clone() for k, p in model.named_parameters()}


@_expected
def _average_expected(worker, world_size: int, seed: int = 3, per_rank: int = 8) -> list[dict]:
    full = {k: p.grad for k, p in _gradients(world_size, None, seed, per_rank).named_parameters()}
    return [full] * world_size


def _average_cases(d: Draw) -> list[Case]:  # one case: each starts processes
    return [Case("2 ranks, another batch", worker_average_gradients, 2, d.int(10, 10**6), d.int(1, 5),
                 hint="divide by dist.get_world_size(): the number of ranks is not always 3")]


@exercise("12.average_gradients", reference=_average_expected, cases=_average_cases, via=run_on_ranks,
          error_hints=_RANK_HINTS)
def check_average_gradients(c: Check) -> None:
    world_size = 3  # not 2: a hard-coded "/ 2" must not pass
    ranks = _on_ranks(c, worker_average_gradients, world_size)
    full = {k: p.grad for k, p in _gradients(world_size, None).named_parameters()}
    shards = [{k: p.grad for k, p in _gradients(world_size, r).named_parameters()} for r in range(world_size)]
    for rank, got in enumerate(ranks):
        c.expect(set(got) == set(full) and all(got[k] is not None for k in full),
                 f"rank {rank} lost some gradients", "update p.grad in place for every parameter; do not set it to None")
        for k in full:
            g = got[k]
            ctx = f"rank {rank}'s gradient of {k}"
            c.diagnose(g, {
                "divide the sum by the world size: all_reduce sums the ranks' gradients": full[k] * world_size,
                "divide once: the all-reduced sum by dist.get_world_size(), and nothing else": full[k] / world_size,
                "the gradients were not all-reduced: each rank still has only its shard's gradient "
                "(dist.all_reduce(p.grad) for every parameter)": shards[rank][k],
                "divide by the world size (dist.get_world_size()), not a fixed number": full[k] * world_size / 2,
            }, f"{ctx} is not the average over the ranks", rtol=1e-4, correct=full[k])
            if rank > 0 and torch.allclose(ranks[0][k], full[k], atol=1e-6):
                c.close(g, full[k], ctx, "every rank needs the average: dist.all_reduce, not dist.reduce to rank 0")
            c.close(g, full[k], ctx, "all-reduce (SUM) each p.grad, then divide it by the world size")


# ---------------------------------------------------------------------------------------- tensor parallel


def _column_cases(d: Draw) -> list[Case]:
    in_f, size = d.int(2, 6), d.int(1, 4)
    return [Case("4 ranks, with a bias", d.randn(4 * size, in_f), d.randn(4 * size), 4, d.int(0, 3)),
            Case("3 ranks, no bias", d.randn(3 * size, in_f), None, 3, d.int(0, 2)),
            Case("bfloat16 weights", d.randn(2 * size, in_f, dtype=torch.bfloat16), d.randn(2 * size, dtype=torch.bfloat16),
                 2, 1),
            Case("output features that world_size does not divide", d.randn(3 * size + d.int(1, 2), in_f),
                 d.randn(3 * size + 1), 3, 0,
                 hint="raise ValueError when the output features do not divide by world_size: "
                      "slicing with // would silently drop the last rows")]


@exercise("12.column_split", reference=tensor_parallel.column_split, cases=_column_cases, via=or_value_error)
def check_column_split(c: Check) -> None:
    for out_f, in_f, world_size, with_bias in ((6, 4, 2, True), (12, 5, 3, True), (8, 3, 4, False), (4, 4, 1, True)):
        w, b = _randn(out_f, in_f, seed=out_f), (_randn(out_f, seed=in_f) if with_bias else None)
        x = _randn(2, in_f, seed=9)
        parts = []
        for rank in range(world_size):
            res = c.call(w, b, world_size, rank)
            c.expect(isinstance(res, tuple) and len(res) == 2, f"column_split returned {type(res).__name__}, expected "
                     "a tuple (weight_part, bias_part)", "return both: w_part, b_part")
            w_r, b_r = res
            want_w, want_b = tensor_parallel.column_split(w, b, world_size, rank)
            c.expect_tensor(w_r, name="weight_part")
            if tuple(w_r.shape) == (out_f, in_f // world_size) and world_size > 1:
                c.fail(f"weight_part has shape {tuple(w_r.shape)}: you split the input features (dim 1)",
                       "column parallel splits the *output* features: nn.Linear's weight is (out, in), so split dim 0")
            c.expect(tuple(w_r.shape) == tuple(want_w.shape),
                     f"weight_part has shape {tuple(w_r.shape)}, expected {tuple(want_w.shape)}",
                     "rank r keeps out / world_size rows of the weight")
            if world_size > 1 and torch.equal(w_r, w[rank::world_size]) and not torch.equal(w_r, want_w):
                c.fail("weight_part holds every world_size-th row",
                       "take a contiguous block of rows: rank r's output features are r·out/N .. (r+1)·out/N")
            c.close(w_r, want_w, f"rank {rank}'s weight_part", "rows r·out/N to (r+1)·out/N of the weight")
            if b is None:
                c.expect(b_r is None, "with bias=None the bias part should be None", "return None when there is no bias")
            else:
                c.expect_tensor(b_r, name="bias_part")
                c.expect(tuple(b_r.shape) == tuple(want_b.shape),
                         f"bias_part has shape {tuple(b_r.shape)}, expected {tuple(want_b.shape)}",
                         "split the bias like the rows: each rank adds the bias of its own output features")
                c.close(b_r, want_b, f"rank {rank}'s bias_part", "the same block of the bias as of the rows")
            parts.append(F.linear(x, w_r, b_r))
        c.close(torch.cat(parts, -1), F.linear(x, w, b), "the ranks' outputs side by side",
                "concatenated over ranks, the partial outputs must equal the dense layer's")


def worker_row_parallel(rank: int, world_size: int, source: str, name: str, problems: list) -> list:
    """On a rank: the learner's product for each (x, w, b) of ``problems``, given this rank's blocks of x and w.
    Fails (naming the argument) if the function changed one of its arguments in place."""
    fn, out = _learner(source, name), []
    for x, w, b in problems:
        cols = data_parallel.shard_range(w.shape[1], world_size, rank)
        args = (x[..., cols.start:cols.stop].clone(), w[:, cols.start:cols.stop].clone(), None if b is None else b.clone())
        kept = [None if a is None else a.clone() for a in args]
        out.append(fn(*args))
        for what, a, k in zip(("x_part", "weight_part", "bias"), args, kept):
            if a is not None and not (a.shape == k.shape and torch.equal(a, k)):
                raise RuntimeError(f"your function changed its argument {what} in place")
    return out


@_expected
def _row_expected(worker, world_size: int, problems: list) -> list:
    return [[F.linear(x, w, b) for x, w, b in problems]] * world_size


def _row_cases(d: Draw) -> list[Case]:  # one case: each starts processes
    B, T, out_f, per_rank = d.int(2, 4), d.int(2, 5), d.int(2, 6), d.int(1, 3)
    problems = [(d.randn(B, T, 3 * per_rank), d.randn(out_f, 3 * per_rank), d.randn(out_f)),
                (d.randn(B, 3 * per_rank), d.randn(out_f, 3 * per_rank), None)]
    return [Case("3 ranks, a batch of inputs, with and without a bias", worker_row_parallel, 3, problems,
                 hint="add the whole bias once, after the all-reduce (a share of it on every rank depends on the "
                      "number of ranks)")]


@exercise("12.row_parallel_linear", reference=_row_expected, cases=_row_cases, via=run_on_ranks, error_hints=_RANK_HINTS)
def check_row_parallel_linear(c: Check) -> None:
    world_size = 2
    x, w, b = _randn(2, 3, 8, seed=4), _randn(5, 8, seed=5), _randn(5, seed=6)
    x64, w64 = _randn(3, 6, seed=7, dtype=torch.float64), _randn(4, 6, seed=8, dtype=torch.float64)
    ranks = _on_ranks(c, worker_row_parallel, world_size, [(x, w, b), (x64, w64, None)])
    want = F.linear(x, w, b)
    partial = [F.linear(x[..., s.start:s.stop], w[:, s.start:s.stop])
               for s in (data_parallel.shard_range(8, world_size, r) for r in range(world_size))]
    for rank, (y, y64) in enumerate(ranks):
        c.expect_tensor(y, shape=want.shape, name=f"rank {rank}'s output")
        c.diagnose(y, {
            "add the bias after the all-reduce: added on every rank before it, it is counted world_size times":
                want + (world_size - 1) * b,
            "all-reduce the partial products: each rank has only its input features' share of x W^T":
                partial[rank] + b,
            "forgot the bias: add it once, after the all-reduce": want - b,
            "sum the partial products (ReduceOp.SUM), do not average them: each is a share of the same output":
                (want - b) / world_size + b,
        }, f"rank {rank}'s output is not x W^T + b", rtol=1e-4, correct=want)
        c.close(y, want, f"rank {rank}'s output", "y = all_reduce(x_part @ weight_part.T), then + bias")
        c.expect_tensor(y64, shape=(3, 4), dtype=torch.float64, name=f"rank {rank}'s output for float64 inputs")
        c.close(y64, F.linear(x64, w64), f"rank {rank}'s output for float64 inputs without a bias",
                "with bias=None, return the all-reduced product as it is")


# ---------------------------------------------------------------------------------------------- pipeline


def _gpipe_cases(d: Draw) -> list[Case]:
    return [Case("more micro-batches than stages", d.int(2, 5), d.int(6, 9)),
            Case("more stages than micro-batches", d.int(5, 7), d.int(1, 3)),
            Case("one stage, one micro-batch", 1, 1)]


@exercise("12.gpipe_schedule", reference=pipeline.gpipe_schedule, cases=_gpipe_cases,
          error_hints={"list index out of range": "the table has 2 (m + p - 1) rows of p slots: size it from stages "
                                                  "and micro_batches, not from the examples"})
def check_gpipe_schedule(c: Check) -> None:
    for p, m in ((2, 4), (3, 2), (4, 1), (1, 3), (3, 5)):
        out = c.call(p, m)
        what = f"gpipe_schedule({p}, {m})"
        c.expect(isinstance(out, list) and all(isinstance(r, list) for r in out),
                 f"{what} returned {type(out).__name__}, expected a list of rows (lists)", "one list per clock step")
        want = pipeline.gpipe_schedule(p, m)
        c.expect(len(out) == len(want), f"{what} has {len(out)} steps, expected {len(want)}",
                 "m + p - 1 forward steps (filling and draining the pipeline), then as many backward steps")
        c.expect(all(len(r) == p for r in out), f"{what}: every step needs one slot per stage ({p})",
                 "each row lists what every stage does at that step (None when idle)")
        slots = [tuple(s) if isinstance(s, (list, tuple)) else s for r in out for s in r]
        c.expect(all(s is None or (len(s) == 2 and s[0] in ("F", "B") and isinstance(s[1], int)) for s in slots),
                 f"{what} holds something other than ('F', j), ('B', j) or None", "a slot is ('F', j), ('B', j) or None")
        out = [[tuple(s) if s is not None else None for s in r] for r in out]
        if p > 1 and all(out[j][s] == ("F", j) for s in range(p) for j in range(m)):
            c.fail(f"{what}: every stage starts micro-batch 0 at step 0",
                   "stage s can only start micro-batch j once stage s - 1 has finished it: at step s + j")
        bad = next((t for t in range(len(want)) if out[t] != want[t]), None)
        c.expect(bad is None, f"{what}: step {bad} is {out[bad] if bad is not None else ''}, expected "
                 f"{want[bad] if bad is not None else ''}", "forward: (F, j) on stage s at step s + j; backward: after "
                 "all forward steps, the last stage first and micro-batch m - 1 first, (B, j) on stage s at step "
                 "(m + p - 1) + (p - 1 - s) + (m - 1 - j)")


def _busy(d: Draw, ranks: int, counts: list[int], shuffle: bool) -> list[list[tuple[float, float]]]:
    """Each rank's compute intervals: starting at different times, of uneven lengths, in time order unless ``shuffle``."""
    busy = []
    for r in range(ranks):
        t, intervals = d.float(0, 2) + r, []
        for _ in range(counts[r]):
            t += d.float(0.05, 0.5)
            intervals.append((t, t + d.float(0.1, 0.4)))
            t = intervals[-1][1]
        busy.append(d.sample(intervals, len(intervals)) if shuffle else intervals)
    return busy


def _bubble_cases(d: Draw) -> list[Case]:
    return [Case("intervals not in time order", _busy(d, 4, [d.int(3, 6) for _ in range(4)], True),
                 hint="take the earliest start and the latest end over every interval: a rank's list need not be "
                      "in time order"),
            Case("one interval per rank", _busy(d, 3, [1, 1, 1], False)),
            Case("5 ranks, different numbers of intervals", _busy(d, 5, [d.int(1, 6) for _ in range(5)], False))]


@exercise("12.measured_bubble", reference=pipeline.measured_bubble, cases=_bubble_cases)
def check_measured_bubble(c: Check) -> None:
    cases = []
    for p, m in ((2, 4), (3, 1), (4, 6)):  # GPipe's table with unit steps: the formula exactly
        table = pipeline.gpipe_schedule(p, m)
        busy = [[(float(t) + 10, float(t) + 11) for t in range(len(table)) if table[t][s]] for s in range(p)]
        cases.append((busy, pipeline.bubble_fraction(p, m)))
    g = torch.Generator().manual_seed(7)
    for ranks in (2, 3):  # uneven intervals, ranks starting at different times
        busy = []
        for r in range(ranks):
            starts = (torch.rand(4, generator=g) * 10 + r).sort().values.tolist()
            busy.append([(s, s + 0.1 + 0.3 * float(torch.rand(1, generator=g))) for s in starts])
        cases.append((busy, pipeline.measured_bubble(busy)))
    for busy, want in cases:
        out = c.number(c.call(busy), "measured_bubble(busy)")
        start, end = min(s for r in busy for s, _ in r), max(e for r in busy for _, e in r)
        work = sum(e - s for r in busy for s, e in r)
        c.diagnose(out, {
            "return the idle share (the bubble), 1 - busy share": work / (len(busy) * (end - start)),
            "the wall time is shared by all ranks: divide the total work by (ranks × wall time)": 1 - work / (end - start),
            "measure every rank against the same wall time (first start to last end over all ranks), "
            "not its own first-to-last span": sum(1 - sum(e - s for s, e in r) / (r[-1][1] - r[0][0]) for r in busy) / len(busy),
        }, "the bubble is wrong", correct=want)
        c.expect(-1e-9 <= out <= 1, f"the bubble is {out:.3f}, outside [0, 1]", "1 - work / (ranks × wall time)")
        c.expect(abs(out - want) < 1e-9, f"the bubble is {out:.4f}, expected {want:.4f}",
                 "1 - (sum of every interval's length) / (ranks × (last end - first start))")


# ------------------------------------------------------------------------------------------ communication


def _ring_cases(d: Draw) -> list[Case]:
    N = d.int(3, 16)
    return [Case("a size that N does not divide", N * d.int(10, 1000) + d.int(1, N - 1), N,
                 hint="a chunk is n / N bytes, not n // N: keep the fraction"),
            Case("many ranks", d.int(1, 1 << 30), 64), Case("one rank", d.int(1, 10**6), 1)]


@exercise("12.ring_all_reduce_bytes", reference=tensor_parallel.ring_all_reduce_bytes, cases=_ring_cases)
def check_ring_all_reduce_bytes(c: Check) -> None:
    for n, N in ((4096, 4), (1000, 2), (300, 3), (1 << 20, 8), (512, 1)):
        out = c.number(c.call(n, N), f"ring_all_reduce_bytes({n}, {N})")
        want = tensor_parallel.ring_all_reduce_bytes(n, N)
        c.diagnose(out, {
            "two phases, reduce-scatter then all-gather, each sending (N - 1) / N of the data": (N - 1) / N * n,
            "a ring sends chunks of n / N, not the whole buffer, at each of its 2 (N - 1) steps": 2.0 * (N - 1) * n,
            "that is sending the whole buffer to every other rank; a ring sends n / N at each step": float((N - 1) * n),
            "the ring's traffic depends on N: 2 (N - 1) steps of n / N bytes": 2.0 * n,
        }, f"ring_all_reduce_bytes({n}, {N}) = {out:g} is wrong", correct=want)
        c.expect(math.isclose(out, want, rel_tol=1e-9, abs_tol=1e-9),
                 f"ring_all_reduce_bytes({n}, {N}) = {out:g}, expected {want:g}",
                 "2 (N - 1) steps, each sending one chunk of n / N bytes")


# ------------------------------------------------------------------------------------------ asynchronous SGD

_FROM_READ = ("count from the worker's latest read, not from its previous push: a worker may read the weights "
              "later than it pushed")
_NO_READ = "a push by a worker that has not read the weights yet is an error: raise ValueError"


def _round_robin(workers: int, rounds: int) -> list[tuple[str, int]]:
    """Equal workers: all read, then each in turn pushes and reads again at once (parameter_server with jitter 0)."""
    events = [("read", k) for k in range(workers)]
    for _ in range(rounds):
        for k in range(workers):
            events += [("push", k), ("read", k)]
    return events


def _staleness_variants(events) -> dict[str, list[int]]:
    """What known mistakes give: each counts from somewhere else, or counts something else."""
    def count(start_at: str, own: bool = False) -> list[int]:
        mark, n, out = {}, 0, []
        for kind, worker in events:
            if kind == "read" and (start_at == "latest read" or worker not in mark):
                mark[worker] = n
            if kind == "push":
                out.append(n - mark.get(worker, 0) + own)
                if start_at == "previous push":
                    mark[worker] = n + 1
                n += 1
        return out

    latest, between = {}, []  # the events of any kind between a worker's latest read and its push
    for i, (kind, worker) in enumerate(events):
        if kind == "read":
            latest[worker] = i
        elif kind == "push":
            between.append(i - latest.get(worker, -1) - 1)

    others = []  # only the other workers' pushes since the read: a worker's own earlier push forgotten
    for i, (kind, worker) in enumerate(events):
        if kind == "push":
            since = max(j for j in range(i) if events[j] == ("read", worker)) if ("read", worker) in events[:i] else -1
            others.append(sum(1 for k, w in events[since + 1:i] if k == "push" and w != worker))

    return {_FROM_READ: count("previous push"),
            "count every push since the read, the worker's own earlier pushes too: a second push from the same "
            "read comes after the first": others,
            "a worker that reads again computes from its latest read, not its first": count("first read"),
            "do not count the push itself: a worker alone is never stale (τ = 0)": count("latest read", own=True),
            "count the pushes only: a read does not change the weights": between}


def _staleness_cases(d: Draw) -> list[Case]:
    names = d.sample(["ada", "bob", "cy", "dee", "eve"], 3)
    events, pending = [("read", n) for n in names], set(names)
    for _ in range(d.int(12, 30)):  # a random schedule: a worker that has read pushes, or any worker (re)reads
        if pending and d.int(0, 2):
            k = d.choice(sorted(pending))
            events.append(("push", k))
            pending.discard(k)
        else:
            k = d.choice(names)
            events.append(("read", k))
            pending.add(k)
    W = d.int(2, 9)
    again = [("read", k) for k in range(W)]  # every worker reads once, then pushes one or more gradients of it
    for _ in range(d.int(W + 2, 3 * W)):
        again.append(("push", d.int(0, W - 1)))
    return [Case("workers named by strings, a random order of reads and pushes", events,
                 hint="a worker is any hashable id (a name, say): keep each one's latest read in a dict"),
            Case("another number of equal workers", _round_robin(W, d.int(1, 4))),
            Case("workers that push several gradients of one read", again,
                 hint="a second push from the same read comes after the first: count it"),
            Case("a worker that pushes before reading", [("read", 0), ("push", 0), ("push", 1)], hint=_NO_READ),
            Case("a log with reads only", [("read", k) for k in range(d.int(1, 4))])]


@exercise("12.staleness", reference=async_sgd.staleness, cases=_staleness_cases, via=or_value_error)
def check_staleness(c: Check) -> None:
    logs = [
        ([("read", 0), ("push", 0), ("read", 0), ("push", 0)], "one worker"),
        (_round_robin(4, 3), "4 equal workers"),
        ([("read", 0), ("read", 1), ("push", 1), ("push", 0), ("read", 1), ("push", 1), ("read", 0), ("push", 0)],
         "two workers"),
        ([("read", 0), ("read", 1), ("push", 0), ("push", 1), ("read", 2), ("push", 2), ("read", 0), ("push", 0),
          ("read", 1), ("push", 1)], "a worker that reads long after it pushed"),
        ([("read", 0), ("read", 1), ("push", 1), ("read", 0), ("read", 1), ("push", 0), ("push", 1)],
         "a worker that reads twice before pushing"),
        ([("read", 0), ("read", 1), ("push", 1), ("push", 0), ("push", 0), ("push", 1)],
         "workers that push twice from one read"),
    ]
    for events, what in logs:
        out = c.call(events)
        want = async_sgd.staleness(events)
        c.expect(isinstance(out, (list, tuple)) and all(isinstance(t, int) and not isinstance(t, bool) for t in out),
                 f"for {what} you returned {type(out).__name__}, expected a list of ints", "one int per push, in order")
        out = list(out)
        c.expect(len(out) == len(want), f"for {what} you returned {len(out)} values, expected {len(want)} (one per push)",
                 "one staleness per ('push', worker) event, none for a read")
        c.diagnose(out, _staleness_variants(events), f"for {what} your staleness is {out}", correct=want)
        c.expect(out == want, f"for {what} your staleness is {out}, expected {want}",
                 "τ of a push: the number of pushes after the worker's latest read and before this push")
    c.expect(c.call([("read", 0), ("push", 1)], via=or_value_error) == "ValueError",
             "a push by worker 1, which never read the weights, did not raise ValueError", _NO_READ)


# ---------------------------------------------------------------------------------------------- speed-up


def _amdahl_cases(d: Draw) -> list[Case]:
    return [Case("a fraction with more decimals", d.int(2, 64), d.float(0.5, 0.99),
                 hint="use the fraction as it is, unrounded: S = 1 / ((1 - f) + f / n)"),
            Case("a million workers", 10**6, d.float(0.99, 0.9999)), Case("one worker", 1, d.float(0, 1))]


@exercise("12.amdahl", reference=speedup.amdahl, cases=_amdahl_cases)
def check_amdahl(c: Check) -> None:
    for n, f in ((4, 0.9), (16, 0.95), (1000, 0.99), (1, 0.5), (8, 0.0), (8, 1.0)):
        out = c.number(c.call(n, f), f"amdahl({n}, {f})")
        want = speedup.amdahl(n, f)
        c.diagnose(out, {
            "that is the run time as a fraction of one worker's; the speed-up is its inverse": (1 - f) + f / n,
            "the fraction f is the part that parallelises: it is f that is divided by N, not 1 - f": 1 / (f + (1 - f) / n),
            "the serial part does not shrink with N: only the parallel fraction is divided by N": 1 / ((1 - f) / n + f / n),
        }, f"amdahl({n}, {f}) = {out:.4g} is wrong", correct=want)
        c.expect(math.isclose(out, want, rel_tol=1e-9), f"amdahl({n}, {f}) = {out:.4g}, expected {want:.4g}",
                 "S = 1 / (time of the serial part + time of the parallel part on N workers), one worker's time being 1")


# ------------------------------------------------------------------------------------- the notebook's demos


class RankPart:
    """One wrapped function of a demo (``yours(fn, reference)``) as the ranks of ``launch.run`` receive it: the
    learner's function, carried as its source code when it was defined in a notebook cell (the ranks cannot import
    it; they define it again next to torch, dist, nn, F and math, as the checks do), and llmlab's reference,
    which takes over on the rank when the learner's raises. ``ran`` and ``why`` say afterwards what ran there."""

    def __init__(self, name: str, reference, fn=None, source: str | None = None):
        self.name, self.reference, self.fn, self.source = name, reference, fn, source
        self.ran: str | None = None if (fn is not None or source is not None) else "reference"
        self.why = "" if self.ran is None else "handed over before the run"
        self._defined = None

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_defined"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, _defined=None)

    def _learner_fn(self):
        if self._defined is None:
            self._defined = self.fn if self.fn is not None else _learner(self.source, self.name)
        return self._defined

    def __call__(self, *args, **kwargs):
        if self.ran == "reference":
            return self.reference(*args, **kwargs)
        try:
            out = self._learner_fn()(*args, **kwargs)
        except NotImplementedError:
            self.ran, self.why = "reference", "yours is not written yet"
            return self.reference(*args, **kwargs)
        except Exception as error:  # the demo goes on with the reference, as yours() does
            self.ran, self.why = "reference", f"yours raised {type(error).__name__}: {str(error)[:120]}"
            return self.reference(*args, **kwargs)
        self.ran = "yours"
        return out


def _importable(fn) -> bool:
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    return bool(module) and module != "__main__" and "<locals>" not in qualname and inspect.isfunction(fn)


def _rank_part(part) -> RankPart:
    """What the ranks get for ``part`` (a ``yours(...)`` wrapper)."""
    if part.ran == "reference":  # handed over before: the reference from now on, as yours() does
        return RankPart(part.name, part.reference)
    if _importable(part.fn):
        return RankPart(part.name, part.reference, fn=part.fn)
    try:
        source = textwrap.dedent(inspect.getsource(part.fn))
    except (OSError, TypeError):
        return RankPart(part.name, part.reference)
    first = next((n.lineno for n in ast.parse(source).body if isinstance(n, ast.FunctionDef)), 1)
    return RankPart(part.name, part.reference, source="\n".join(source.split("\n")[first - 1:]))


def _worker_with_parts(rank: int, world_size: int, worker, parts: dict, *args) -> tuple:
    """On a rank: ``worker(rank, world_size, *args, **parts)``, and what ran for each part."""
    out = worker(rank, world_size, *args, **parts)
    return out, {key: (p.ran, p.why) for key, p in parts.items()}


def _tell(part, ran: str | None, why: str) -> None:
    """Bring a ``yours(...)`` wrapper up to date with what ran on the ranks, printing as its own first call does."""
    if ran in ("yours", "reference"):
        part.record(ran, why, where="on every rank")


def run_yours(worker, world_size: int, *args, timeout: float = 60.0, **parts) -> list:
    """``launch.run(worker, world_size, *args)`` with each keyword of ``parts``, a ``yours(fn, reference)``
    wrapper, passed to ``worker`` under that name: every rank runs the learner's function (sent as source code
    when it lives in a notebook cell), or llmlab's reference where it is not written yet or raises. The run
    then prints which one ran, as ``yours`` does, and returns the ranks' results. When the learner's functions
    make the run itself fail (a rank stuck in a collective, a result the worker refuses), it runs again with the
    references and says why."""
    from llmlab.grading.demo import Yours

    if not callable(worker):
        raise TypeError(f"worker must be a function, got {type(worker).__name__}")
    for key, part in parts.items():
        if not isinstance(part, Yours):
            raise TypeError(f"{key} must be made by yours(fn, reference), got {type(part).__name__}")
    shipped = {key: _rank_part(part) for key, part in parts.items()}
    try:
        ranks = launch.run(_worker_with_parts, world_size, worker, shipped, *args, timeout=timeout)
    except (RuntimeError, TimeoutError) as error:
        if all(p.ran == "reference" for p in shipped.values()):
            raise
        why = f"the run failed with yours: {str(error).splitlines()[0][:200]}"
        for key, part in parts.items():
            if shipped[key].ran != "reference":
                _tell(part, "reference", why)
        ranks = launch.run(_worker_with_parts, world_size, worker,
                           {key: RankPart(p.name, p.reference) for key, p in parts.items()}, *args, timeout=timeout)
    for key, part in parts.items():
        reports = [report[key] for _, report in ranks]
        fallback = next((r for r in reports if r[0] == "reference"), None)
        _tell(part, *(fallback or reports[0]))
    return [out for out, _ in ranks]
