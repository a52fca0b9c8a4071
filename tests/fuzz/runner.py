"""Runs the fuzz: plans every public callable, then runs every bad call, on a pool of worker processes.

Outcomes of a bad call, best first (``SEVERITY``):

* ``clear``: TypeError or ValueError whose message names the argument;
* ``unclear``: TypeError or ValueError that does not name it;
* ``other_error``: any other exception (RuntimeError, IndexError, ZeroDivisionError, ... from deep inside);
* ``accepted``: the call returned normally;
* ``hang``: still running after the time limit (the worker interrupted it, or was killed);
* ``crash``: the worker died (a segfault, the kernel's OOM killer, ``os._exit``).

A hang and a crash are equally bad (a deadlock in a collective with a bad rank may end either way, from one
run to the next), so neither counts as better than the other.
"""
from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import tempfile
import time
import zlib
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import wait

SEVERITY = {"clear": 0, "unclear": 1, "other_error": 2, "accepted": 3, "hang": 4, "crash": 4}
TIMEOUT = 2.0  # seconds per call
MEMORY_GIB = 3.0  # address space a worker may add to what it holds after start-up
GRACE = 2.0  # seconds on top of a call's limit before its worker is killed (arguments are built outside it)
START_TIMEOUT = 180.0  # seconds for a worker to import everything and warm up
PLAN_FACTOR = 3.0  # the valid call gets this many times a bad call's limit (first calls pay one-off costs)
RETRY_FACTOR = 5.0  # a hang that known.json says finishes is run again with this many times the limit


@dataclass(frozen=True, order=True)
class Case:
    """One bad call: argument ``argument`` of ``qualname`` replaced by a bad value of kind ``kind``."""

    qualname: str
    argument: str
    kind: str

    @property
    def id(self) -> str:
        return f"{self.qualname}({self.argument}={self.kind})"


@dataclass
class Result:
    case: Case
    outcome: str
    error: str  # the exception's type, "" if none
    message: str
    seconds: float


@dataclass
class Plan:
    """What became of a callable's valid call: ``status`` "ok" (with its bad ``cases``), "skipped" (``detail``
    says why), "no valid call known", or "valid call fails" / "hangs" / "crashes"."""

    qualname: str
    status: str
    detail: str = ""
    seconds: float = 0.0
    cases: list[Case] = field(default_factory=list)


@dataclass
class Report:
    """``plans`` of the public callables and of the method entries (``methods``), the bad calls' results."""

    plans: dict[str, Plan]
    results: list[Result]
    import_errors: dict[str, str]
    seconds: float
    methods: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out = {k: 0 for k in SEVERITY}
        for r in self.results:
            out[r.outcome] += 1
        return out


def _worker_entry(conn, memory_bytes: int, folder: str) -> None:
    """Target of a worker process: one thread for torch (the workers share the machine's cores), then the loop."""
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"
    from tests.fuzz import worker

    worker.main(conn, memory_bytes, folder)


class _Slot:
    """One worker process and the task it is running."""

    def __init__(self, ctx, memory_bytes: int, folder: str):
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker_entry, args=(child, memory_bytes, folder), name="llmlab-fuzz-worker")
        self.process.start()
        child.close()
        self.ready = False
        self.started = time.monotonic()
        self.task: tuple | None = None
        self.sent = self.deadline = 0.0

    def stop(self, kill: bool = False) -> None:
        """End the worker and every process it started (it leads its own process group)."""
        if not kill and self.ready:
            try:
                self.conn.send(None)
            except OSError:
                pass
            self.process.join(timeout=5)
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError, AttributeError):
            pass
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)
        self.conn.close()


class WorkerPool:
    """``workers`` worker processes, replaced when they hang or die. ``run(tasks)`` yields ``(task, answer)``
    as answers come.

    Workers come from a fork server that has imported everything (``preload``), so a replacement starts in
    a fraction of a second; they share no state with the caller. Where there is no fork server, spawn."""

    def __init__(self, workers: int = 2, memory_gib: float = MEMORY_GIB, grace: float = GRACE):
        self.n, self.memory_bytes, self.grace = workers, int(memory_gib * 2**30), grace
        self.forkserver = "forkserver" in multiprocessing.get_all_start_methods()
        self.ctx = multiprocessing.get_context("forkserver" if self.forkserver else "spawn")
        self.folder = ""
        self.slots: list[_Slot] = []
        self.restarts = 0
        self._server_state = None

    def __enter__(self) -> "WorkerPool":
        if self.forkserver:
            self._start_server()
        self.folder = tempfile.mkdtemp(prefix="llmlab-fuzz-")
        self.slots = [self._new() for _ in range(self.n)]
        return self

    def __exit__(self, *exc) -> None:
        for slot in self.slots:
            slot.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
        if self._server_state is not None:
            self._stop_server()

    def _start_server(self) -> None:
        """Our own fork server, preloaded with ``tests.fuzz.preload`` (unless the caller already runs one:
        then its workers import what they need themselves)."""
        from multiprocessing import forkserver

        server = forkserver._forkserver
        if getattr(server, "_forkserver_pid", 0) is None:  # none running: ours, stopped again at the end
            self._server_state = getattr(server, "_preload_modules", ["__main__"])
            self.ctx.set_forkserver_preload(["tests.fuzz.preload"])

    def _stop_server(self) -> None:
        """Stop our fork server and restore the preload list, so that later users start their own."""
        from multiprocessing import forkserver

        server = forkserver._forkserver
        try:
            server._stop()
        except (AttributeError, OSError, ChildProcessError):
            pass
        server._preload_modules = self._server_state

    def _new(self) -> _Slot:
        return _Slot(self.ctx, self.memory_bytes, self.folder)

    def _replace(self, i: int) -> None:
        self.slots[i].stop(kill=True)
        self.slots[i] = self._new()
        self.restarts += 1

    def run(self, tasks):
        pending = deque(tasks)
        while pending or any(s.task is not None for s in self.slots):
            for slot in self.slots:
                if slot.ready and slot.task is None and pending:
                    slot.task = pending.popleft()
                    slot.sent = time.monotonic()
                    slot.deadline = slot.sent + slot.task[-1] + self.grace
                    slot.conn.send(slot.task)
            wait([s.conn for s in self.slots] + [s.process.sentinel for s in self.slots], timeout=0.5)
            for i, slot in enumerate(self.slots):
                yield from self._collect(i, slot)

    def _collect(self, i: int, slot: _Slot):
        now = time.monotonic()
        try:
            message = slot.conn.recv() if slot.conn.poll() else None
        except (EOFError, OSError):
            message = None
        if message is not None:
            if not slot.ready:
                slot.ready = True
                return
            task, slot.task = slot.task, None
            yield task, message
            return
        if not slot.ready:
            if not slot.process.is_alive() or now - slot.started > START_TIMEOUT:
                code = slot.process.exitcode
                slot.stop(kill=True)
                raise RuntimeError(f"a fuzz worker failed to start (exit code {code}); run python -m tests.fuzz "
                                   "to see more")
            return
        if slot.task is None:
            return
        if not slot.process.is_alive():
            task, code = slot.task, slot.process.exitcode
            self._replace(i)
            yield task, _lost(task, "crash", f"the worker died (exit code {code})", now - slot.sent)
        elif now > slot.deadline:
            task = slot.task
            self._replace(i)
            yield task, _lost(task, "hang", f"killed after {task[-1] + self.grace:g} s", now - slot.sent)


def _lost(task: tuple, outcome: str, detail: str, seconds: float) -> tuple:
    """The answer a worker could not give: it hung in C code, or died."""
    if task[0] == "plan":
        return ("valid call hangs" if outcome == "hang" else "valid call crashes"), detail, [], seconds
    return outcome, "", detail, seconds


def _case_order(cases: list[Case], known: dict[str, str]) -> list[Case]:
    """Slow cases (known to hang) first, so that they do not all land at the end on one worker."""
    return sorted(cases, key=lambda c: known.get(c.id) != "hang")


def select(qualnames: list[str], prefixes: list[str] | None) -> list[str]:
    """The names equal to one of ``prefixes`` or under it (``llmlab.nn`` selects ``llmlab.nn.layers.gelu``)."""
    if not prefixes:
        return qualnames
    return [q for q in qualnames if any(q == p or q.startswith(p + ".") for p in prefixes)]


def fuzz(only: list[str] | None = None, workers: int = 2, timeout: float = TIMEOUT, memory_gib: float = MEMORY_GIB,
         sample: float | None = None, known: dict[str, str] | None = None, progress=None) -> Report:
    """Plan and run the bad calls of every public callable (or those under the ``only`` prefixes).

    ``sample`` (0 < sample < 1): run only that share of the bad calls, the same ones every time (chosen by a
    hash of their id). ``progress(done, total)`` is called as results come in.
    """
    from tests.fuzz.api import public_callables
    from tests.fuzz.calls import TIME_LIMITS, VALID

    start = time.monotonic()
    found, import_errors = public_callables()
    methods = [q for q in VALID if q not in found and q.rsplit(".", 1)[0] in found]
    names = select(sorted([*found, *methods]), only)
    limits = {q: max(timeout, TIME_LIMITS.get(q, 0.0)) for q in names}
    plans: dict[str, Plan] = {}
    results: list[Result] = []
    with WorkerPool(workers, memory_gib) as pool:
        for task, (status, detail, cases, seconds) in pool.run([("plan", q, limits[q] * PLAN_FACTOR) for q in names]):
            qualname = task[1]
            plans[qualname] = Plan(qualname, status, detail, seconds, [Case(qualname, a, k) for a, k in cases])
        todo = [c for q in names for c in plans[q].cases]
        if sample is not None:
            todo = [c for c in todo if _hash_fraction(c.id) < sample]
        todo = _case_order(todo, known or {})
        for task, (outcome, error, message, seconds) in pool.run(
                [("call", c.qualname, c.argument, c.kind, limits[c.qualname]) for c in todo]):
            results.append(Result(Case(*task[1:4]), outcome, error, message, seconds))
            if progress is not None:
                progress(len(results), len(todo))
        # A slow call that usually finishes may hang on a busy machine: before calling that a regression,
        # give the hangs that ``known`` says finish a longer limit.
        slow = {r.case: i for i, r in enumerate(results) if r.outcome == "hang"
                and known and known.get(r.case.id, "hang") not in ("hang", "crash")}
        for task, (outcome, error, message, seconds) in pool.run(
                [("call", c.qualname, c.argument, c.kind, limits[c.qualname] * RETRY_FACTOR) for c in slow]):
            case = Case(*task[1:4])
            if outcome != "hang":
                results[slow[case]] = Result(case, outcome, error, message, seconds)
    results.sort(key=lambda r: r.case)
    return Report(dict(sorted(plans.items())), results, import_errors, time.monotonic() - start,
                  [q for q in names if q in methods])


def _hash_fraction(text: str) -> float:
    return zlib.crc32(text.encode()) / 2**32
