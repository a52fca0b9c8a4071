"""Run a function on N local processes joined by ``torch.distributed``, from a script or a notebook.

Each process is one *rank* of a process group: the same code, told its rank r and the world size N.
``torch.distributed`` connects them through a rendezvous at MASTER_ADDR:MASTER_PORT (here the loopback
interface) and then runs collectives (all-reduce, broadcast, ...) over gloo on CPUs or NCCL on GPUs.
``torchrun --nnodes M --nproc-per-node N script.py`` sets the same variables (RANK, WORLD_SIZE,
MASTER_ADDR, MASTER_PORT) on a cluster, so a worker written for ``run`` runs there unchanged.

The processes are fresh: forked from a server process that imported torch once (``forkserver``; plain
``spawn`` where there is none), never from the caller, so they share none of its state. ``fn`` must
therefore be importable: a function defined in a module, not in a notebook cell; and a script that calls
``run`` must do so under ``if __name__ == "__main__":``, since each process imports the script again. The
server keeps the environment it started with: set variables such as OMP_NUM_THREADS before the first
``run``, or inside ``fn``. Every wait is bounded: the process
group gets ``timeout`` for each collective, and ``run`` gives up on ranks that have not answered by then
(no hung kernels).
"""
from __future__ import annotations

import datetime
import os
import pickle
import queue
import socket
import time
import traceback
from typing import Any, Callable

import torch.distributed as dist
import torch.multiprocessing as mp

from llmlab.validate import integer, positive_float, positive_int

MAX_LOCAL_RANKS = 256  # processes on one machine: far more than its cores, far fewer than it can hold


def worker_place(rank: int, world_size: int) -> tuple[int, int]:
    """``rank`` and ``world_size`` as a worker of ``launch.run`` gets them: ints with 0 <= rank < world_size,
    and, inside a process group, this process's own place in it (a worker called by hand with other numbers
    would wait for ranks that do not exist)."""
    world_size = positive_int("world_size", world_size)
    rank = integer("rank", rank, minimum=0)
    if rank >= world_size:
        raise ValueError(f"rank must be in [0, {world_size}) (world_size {world_size}), got {rank}")
    if dist.is_available() and dist.is_initialized() and (rank, world_size) != (dist.get_rank(), dist.get_world_size()):
        raise ValueError(f"rank {rank} of world_size {world_size} is not this process's place in its group "
                         f"(rank {dist.get_rank()} of {dist.get_world_size()})")
    return rank, world_size


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _check_port(port) -> int:
    port = positive_int("port", port)
    if port > 65535:
        raise ValueError(f"port must be between 1 and 65535, got {port}")
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError as e:
            raise ValueError(f"master port {port} on 127.0.0.1 is unusable ({e.strerror}): pick another, or leave "
                             "port=None for a free one") from None
    return port


def _context():
    """Where processes come from: a fork server, started once, that has already imported torch, so each
    rank starts in a fraction of a second instead of importing torch again (about 1 s per rank). Like
    spawn, it gives every rank a fresh process that shares no state with the caller; where there is no
    fork server (Windows), spawn."""
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["torch", "torch.distributed"])
    return ctx


def _worker(rank: int, world_size: int, port: int, backend: str, timeout: float, fn, args, results) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world_size))
    try:
        dist.init_process_group(backend, rank=rank, world_size=world_size,
                                timeout=datetime.timedelta(seconds=timeout))
        try:
            # pickled to bytes here: a tensor sent through a multiprocessing queue as it is would live in this
            # process's shared memory, gone once the rank exits
            results.put((rank, True, pickle.dumps(fn(rank, world_size, *args))))
        finally:
            dist.destroy_process_group()
    except BaseException as e:  # report, never hang the parent: it is waiting for one message per rank
        results.put((rank, False, f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=-3)}"))


def run(fn: Callable[..., Any], world_size: int, *args, backend: str = "gloo", timeout: float = 60.0,
        port: int | None = None) -> list[Any]:
    """Call ``fn(rank, world_size, *args)`` on ``world_size`` spawned processes in one process group;
    return their results, indexed by rank. Raises RuntimeError naming the rank if a rank fails, and
    TimeoutError if some rank has not finished within ``timeout`` seconds (plus start-up)."""
    world_size = integer("world_size", world_size, minimum=1, maximum=MAX_LOCAL_RANKS)
    timeout = positive_float("timeout", timeout)
    if not callable(fn):
        raise TypeError(f"fn must be a function, got {type(fn).__name__}")
    if getattr(fn, "__module__", "__main__") == "__main__" or "<locals>" in getattr(fn, "__qualname__", ""):
        raise TypeError(f"{getattr(fn, '__name__', fn)!r} is defined in __main__ (a notebook or script) or inside "
                        "another function: spawned processes cannot import it. Put it in a module "
                        "(e.g. llmlab.parallel.workers) and pass that function.")
    if backend not in ("gloo", "nccl"):
        raise ValueError(f"backend must be 'gloo' or 'nccl', got {backend!r}")
    port = free_port() if port is None else _check_port(port)
    ctx = _context()
    results = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(r, world_size, port, backend, timeout, fn, args, results), daemon=True)
             for r in range(world_size)]
    for p in procs:
        p.start()
    out: dict[int, Any] = {}
    deadline = time.monotonic() + timeout + 30  # 30 s for interpreters to start and import torch
    try:
        while len(out) < world_size:
            try:
                rank, ok, value = results.get(timeout=max(0.1, min(1.0, deadline - time.monotonic())))
            except queue.Empty:
                if time.monotonic() > deadline:
                    missing = sorted(set(range(world_size)) - set(out))
                    raise TimeoutError(f"ranks {missing} did not finish within {timeout:g} s") from None
                dead = [r for r, p in enumerate(procs) if r not in out and not p.is_alive() and p.exitcode not in (0, None)]
                if dead:
                    raise RuntimeError(f"rank {dead[0]} died with exit code {procs[dead[0]].exitcode}")
                continue
            if not ok:
                raise RuntimeError(f"rank {rank} of {world_size} failed: {value}")
            out[rank] = pickle.loads(value)
    finally:
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()
                p.join(timeout=5)
    return [out[r] for r in range(world_size)]
