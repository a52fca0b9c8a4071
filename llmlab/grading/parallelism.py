"""Checks for notebook 12_parallelism.

Functions that call ``torch.distributed`` are checked where they run for real: on spawned processes
joined in a gloo group. A function defined in a notebook cell cannot be imported by those processes,
so the check sends its source code, and each rank defines it again (``_learner``) next to torch,
``dist``, ``nn``, ``F`` and ``math``. The ranks are started by :func:`run_on_ranks` where the function
lives: in the learner's kernel (in a class run, inside its sandbox), never in the grader.
"""
from __future__ import annotations

import ast
import inspect
import math
import numbers
import textwrap

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from llmlab.grading.core import NOT_IMPLEMENTED_HINT, Check, invoke
from llmlab.parallel import data_parallel, launch, pipeline, speedup, tensor_parallel


def _randn(*shape, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _number(c: Check, out, what: str) -> float:
    ok = (isinstance(out, numbers.Real) and not isinstance(out, bool)) or \
        (isinstance(out, torch.Tensor) and out.numel() == 1)
    c.expect(ok, f"{what} returned {type(out).__name__}, expected a number", "return a float")
    return float(out)


# --------------------------------------------------------------------------- running on several processes

_NAMES = "torch, dist (torch.distributed), nn, F and math"


def run_on_ranks(fn, worker, world_size: int, *args) -> list:
    """Harness: ``worker(rank, world_size, source, name, *args)`` on ``world_size`` spawned ranks, where
    ``source`` is ``fn``'s code. It runs where ``fn`` lives: in a class run, inside the learner's sandbox."""
    try:
        source = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):
        raise LookupError(f"cannot read the source code of {getattr(fn, '__name__', fn)!r}") from None
    # from the `def` line on: a decorator names something the ranks do not have
    first = next((n.lineno for n in ast.parse(source).body if isinstance(n, ast.FunctionDef)), 1)
    source = "\n".join(source.split("\n")[first - 1:])
    if "raise NotImplementedError" in source:
        raise NotImplementedError
    return launch.run(worker, world_size, source, fn.__name__, *args, timeout=45)


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
    except TimeoutError:
        c.fail(f"the {world_size} processes did not finish within 45 s",
               "every rank must call every collective (all_reduce waits until all ranks have joined it)")
    except RuntimeError as e:
        msg = str(e)
        if "NotImplementedError" in msg:
            c.fail("not implemented yet", NOT_IMPLEMENTED_HINT)
        head = msg.split("\n")[0]
        if "NameError" in head:
            c.fail(head, f"your function runs in fresh processes where only {_NAMES} are defined: "
                         "import anything else inside the function")
        if "Timed out" in msg or "timeout" in msg.lower():
            c.fail(f"a collective timed out ({head[:120]})",
                   "every rank must call every collective (all_reduce waits until all ranks have joined it)")
        c.fail(head[:300], "read the error: it happened inside your function on that rank")


# ------------------------------------------------------------------------------------------ data parallel


def check_shard_range(fn) -> None:
    c = Check("12.shard_range", fn)
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
    try:
        out = c.fn(10, 3, 0)
    except ValueError:
        c.passed += 1
    except NotImplementedError:
        c.fail("not implemented yet", NOT_IMPLEMENTED_HINT)
    except Exception as e:
        c.fail(f"shard_range(10, 3, 0) raised {type(e).__name__}, expected ValueError",
               "raise ValueError with a message when n is not divisible by world_size")
    else:
        c.fail(f"shard_range(10, 3, 0) returned {list(out)}: 10 examples do not split into 3 equal shards",
               "raise ValueError when n % world_size != 0: unequal shards would weight the examples unequally in the average")
    c.done()


def _gradients(world_size: int, rank: int | None) -> nn.Module:
    """The check's model after backward on rank ``rank``'s shard of the check's batch (None: the whole batch)."""
    x, y = data_parallel.make_data(8 * world_size, seed=3)
    if rank is not None:
        shard = data_parallel.shard_range(len(x), world_size, rank)
        x, y = x[shard.start:shard.stop], y[shard.start:shard.stop]
    model = data_parallel.make_model(seed=2)
    F.mse_loss(model(x), y).backward()
    return model


def worker_average_gradients(rank: int, world_size: int, source: str, name: str) -> dict:
    """On a rank: gradients of this rank's shard, then the learner's averaging."""
    fn = _learner(source, name)
    model = _gradients(world_size, rank)
    fn(model)
    return {k: p.grad.clone() for k, p in model.named_parameters()}


def _shard_grads(world_size: int) -> tuple[dict, list[dict]]:
    """The whole batch's gradients and each shard's, in this process."""
    def grads(rank):
        return {k: p.grad for k, p in _gradients(world_size, rank).named_parameters()}
    return grads(None), [grads(r) for r in range(world_size)]


def check_average_gradients(fn) -> None:
    c = Check("12.average_gradients", fn)
    world_size = 3  # not 2: a hard-coded "/ 2" must not pass
    ranks = _on_ranks(c, worker_average_gradients, world_size)
    full, shards = _shard_grads(world_size)
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
    c.done()


# ---------------------------------------------------------------------------------------- tensor parallel


def check_column_split(fn) -> None:
    c = Check("12.column_split", fn)
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
    c.done()


def worker_row_parallel(rank: int, world_size: int, source: str, name: str, x, w, b) -> torch.Tensor:
    fn = _learner(source, name)
    cols = data_parallel.shard_range(w.shape[1], world_size, rank)
    return fn(x[..., cols.start:cols.stop].clone(), w[:, cols.start:cols.stop].clone(), b)


def check_row_parallel_linear(fn) -> None:
    c = Check("12.row_parallel_linear", fn)
    world_size = 2
    x, w, b = _randn(2, 3, 8, seed=4), _randn(5, 8, seed=5), _randn(5, seed=6)
    ranks = _on_ranks(c, worker_row_parallel, world_size, x, w, b)
    want = F.linear(x, w, b)
    partial = [F.linear(x[..., s.start:s.stop], w[:, s.start:s.stop])
               for s in (data_parallel.shard_range(8, world_size, r) for r in range(world_size))]
    for rank, y in enumerate(ranks):
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
    c.done()


# ---------------------------------------------------------------------------------------------- pipeline


def _reverse_backward(table: list[list]) -> list[list]:
    """The same GPipe table with the backward passes in micro-batch order instead of reversed."""
    m = 1 + max(slot[1] for row in table for slot in row if slot)
    return [[("B", m - 1 - slot[1]) if slot and slot[0] == "B" else slot for slot in row] for row in table]


def check_gpipe_schedule(fn) -> None:
    c = Check("12.gpipe_schedule", fn)
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
        if out != want and out != _reverse_backward(want):
            bad = next(t for t in range(len(want)) if out[t] != want[t] and out[t] != _reverse_backward(want)[t])
            c.fail(f"{what}: step {bad} is {out[bad]}, expected {want[bad]}",
                   "forward: (F, j) on stage s at step s + j; backward: after all forward steps, the last stage first")
        c.passed += 1
    c.done()


def check_measured_bubble(fn) -> None:
    c = Check("12.measured_bubble", fn)
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
        out = _number(c, c.call(busy), "measured_bubble(busy)")
        start, end = min(s for r in busy for s, _ in r), max(e for r in busy for _, e in r)
        work = sum(e - s for r in busy for s, e in r)
        per_rank = sum(1 - sum(e - s for s, e in r) / (r[-1][1] - r[0][0]) for r in busy) / len(busy)
        c.diagnose(torch.tensor(out), {
            "return the idle share (the bubble), 1 - busy share": torch.tensor(work / (len(busy) * (end - start))),
            "the wall time is shared by all ranks: divide the total work by (ranks × wall time)":
                torch.tensor(1 - work / (end - start)),
            "measure every rank against the same wall time (first start to last end over all ranks), "
            "not its own first-to-last span": torch.tensor(per_rank),
        }, "the bubble is wrong", correct=torch.tensor(want))
        c.expect(-1e-9 <= out <= 1, f"the bubble is {out:.3f}, outside [0, 1]", "1 - work / (ranks × wall time)")
        c.expect(abs(out - want) < 1e-9, f"the bubble is {out:.4f}, expected {want:.4f}",
                 "1 - (sum of every interval's length) / (ranks × (last end - first start))")
    c.done()


# ------------------------------------------------------------------------------------------ communication


def check_ring_all_reduce_bytes(fn) -> None:
    c = Check("12.ring_all_reduce_bytes", fn)
    for n, N in ((4096, 4), (1000, 2), (300, 3), (1 << 20, 8), (512, 1)):
        out = _number(c, c.call(n, N), f"ring_all_reduce_bytes({n}, {N})")
        want = tensor_parallel.ring_all_reduce_bytes(n, N)
        c.diagnose(torch.tensor(out), {
            "two phases, reduce-scatter then all-gather, each sending (N - 1) / N of the data": torch.tensor((N - 1) / N * n),
            "a ring sends chunks of n / N, not the whole buffer, at each of its 2 (N - 1) steps":
                torch.tensor(2.0 * (N - 1) * n),
            "that is sending the whole buffer to every other rank; a ring sends n / N at each step":
                torch.tensor(float((N - 1) * n)),
            "the ring's traffic depends on N: 2 (N - 1) steps of n / N bytes": torch.tensor(2.0 * n),
        }, f"ring_all_reduce_bytes({n}, {N}) = {out:g} is wrong", correct=torch.tensor(want))
        c.expect(math.isclose(out, want, rel_tol=1e-9, abs_tol=1e-9),
                 f"ring_all_reduce_bytes({n}, {N}) = {out:g}, expected {want:g}",
                 "2 (N - 1) steps, each sending one chunk of n / N bytes")
    c.done()


# ---------------------------------------------------------------------------------------------- speed-up


def check_amdahl(fn) -> None:
    c = Check("12.amdahl", fn)
    for n, f in ((4, 0.9), (16, 0.95), (1000, 0.99), (1, 0.5), (8, 0.0), (8, 1.0)):
        out = _number(c, c.call(n, f), f"amdahl({n}, {f})")
        want = speedup.amdahl(n, f)
        c.diagnose(torch.tensor(out), {
            "that is the run time as a fraction of one worker's; the speed-up is its inverse":
                torch.tensor((1 - f) + f / n),
            "the fraction f is the part that parallelises: it is f that is divided by N, not 1 - f":
                torch.tensor(1 / (f + (1 - f) / n)),
            "the serial part does not shrink with N: only the parallel fraction is divided by N":
                torch.tensor(1 / ((1 - f) / n + f / n)),
        }, f"amdahl({n}, {f}) = {out:.4g} is wrong", correct=torch.tensor(want))
        c.expect(math.isclose(out, want, rel_tol=1e-9), f"amdahl({n}, {f}) = {out:.4g}, expected {want:.4g}",
                 "S = 1 / (time of the serial part + time of the parallel part on N workers), one worker's time being 1")
    c.done()
