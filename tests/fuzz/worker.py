"""The worker process: plans and runs the calls, one at a time, under a time and a memory limit.

A worker receives tasks on a pipe and answers each with one message:

* ``("plan", qualname, limit)``: run the valid call; answer ``(status, detail, cases, seconds)``, where
  ``cases`` lists the ``(argument, kind)`` of every bad call of ``qualname``;
* ``("call", qualname, argument, kind, limit)``: rebuild the valid call, replace the argument by that bad
  value, run it; answer ``(outcome, exception type, message, seconds)``.

Each call runs under ``signal.setitimer``: past its time limit a ``CallTimeout`` interrupts it (Python code
only; the parent kills a worker stuck in C code). ``RLIMIT_AS`` caps the worker's address space, so a
huge allocation fails with an error instead of taking the machine's memory.
"""
from __future__ import annotations

import contextlib
import os
import re
import resource
import signal
import sys
import time
import types
import warnings

STATUS_OK = "ok"


class CallTimeout(BaseException):
    """Raised in the worker when a call runs past its time limit (a BaseException: ``except Exception``
    in the code under test does not swallow it)."""


def _on_alarm(signum, frame):
    raise CallTimeout()


def _quiet() -> None:
    """Output of the code under test (progress bars, prints) goes nowhere; input() meets end of file."""
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    sys.stdout = open(os.devnull, "w")
    sys.stderr = open(os.devnull, "w")
    sys.stdin = open(os.devnull)


def _address_space() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _limit_memory(extra_bytes: int) -> None:
    """Cap the address space at its current size plus ``extra_bytes`` (Linux only)."""
    try:
        limit = _address_space() + extra_bytes
    except OSError:
        return
    if limit > extra_bytes:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def names_argument(message: str, argument: str) -> bool:
    """Whether ``message`` names ``argument`` as a word (``n must be >= 1`` names ``n``; ``an int`` does
    not). The English word "a" counts only next to a quote or an ``=``, ``:`` or ``must``."""
    if argument == "a":
        return re.search(r"([`'\"]a\b|\ba[`'\"=:]|\ba must\b)", message) is not None
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(argument)}(?![A-Za-z0-9_])", message) is not None


def classify(exc: BaseException, argument: str) -> tuple[str, str, str]:
    """``(outcome, exception type, first line of its message)`` of a bad call that raised ``exc``."""
    message = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
    kind = type(exc).__name__
    if isinstance(exc, (TypeError, ValueError)):
        return ("clear" if names_argument(str(exc), argument) else "unclear"), kind, message
    return "other_error", kind, message


def _invoke(call, kwargs: dict, limit: float):
    """``call.fn(**kwargs)`` within ``limit`` seconds; a generator it returns is run to the end."""
    import torch

    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        with torch.no_grad() if call.no_grad else contextlib.nullcontext():
            result = call.fn(**kwargs)
            if isinstance(result, types.GeneratorType):
                for _ in result:
                    pass
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return result


def _reset_state() -> None:
    """Undo what an earlier call may have changed in process-wide state, so that no outcome depends on
    which calls a worker ran before. The one-process gloo group always exists (some calls need it, and
    others, such as DistributedDataParallel, behave differently with it)."""
    import random

    import numpy as np
    import torch

    from tests.fuzz import fixtures

    fixtures.process_group()
    torch.manual_seed(0)
    random.seed(0)
    np.random.seed(0)
    torch.set_num_threads(1)
    torch.set_grad_enabled(True)
    try:
        import llmlab.interview

        llmlab.interview.set_language("en")
    except Exception:  # noqa: BLE001 - the module may be broken; its own calls will say so
        pass


def plan(qualname: str, limit: float) -> tuple[str, str, list[tuple[str, str]]]:
    from tests.fuzz.bad import bad_values
    from tests.fuzz.calls import FIXED, SKIP, VALID, valid_call

    if qualname in SKIP:
        return "skipped", SKIP[qualname], []
    if qualname not in VALID:
        return "no valid call known", "", []
    try:
        call = valid_call(qualname)
        params = call.parameters()
        fixed = FIXED.get(qualname, ((), ""))[0]
        cases = [(arg, kind) for arg, value in call.kwargs.items() if arg not in fixed
                 for kind, _ in bad_values(arg, value, params.get(arg))]
    except Exception as e:  # noqa: BLE001 - reported
        return "valid call cannot be built", f"{type(e).__name__}: {str(e).strip()[:300]}", []
    try:
        _invoke(call, dict(call.kwargs), limit)
    except CallTimeout:
        return "valid call hangs", f"more than {limit:g} s", []
    except BaseException as e:  # noqa: BLE001 - reported
        return "valid call fails", f"{type(e).__name__}: {str(e).strip()[:300]}", []
    return STATUS_OK, "", cases


def run_bad(qualname: str, argument: str, kind: str, limit: float) -> tuple[str, str, str]:
    from tests.fuzz.bad import bad_values
    from tests.fuzz.calls import valid_call

    call = valid_call(qualname)
    value = dict(bad_values(argument, call.kwargs[argument], call.parameters().get(argument)))[kind]
    kwargs = {**call.kwargs, argument: value}
    try:
        _invoke(call, kwargs, limit)
    except CallTimeout:
        return "hang", "", f"still running after {limit:g} s"
    except MemoryError as e:
        return "other_error", "MemoryError", str(e)[:300]
    except BaseException as e:  # noqa: BLE001 - that is the point
        return classify(e, argument)
    return "accepted", "", ""


def warm_up() -> None:
    """Pay the one-off costs (imports, first use of the meta device, the fixture files) before any timing."""
    import torch

    from tests.fuzz import calls, fixtures

    with torch.device("meta"):
        fixtures.decoder()
    for name in ("llmlab.models.smollm2.load_smollm2", "llmlab.models.minilm.load_minilm",
                 "llmlab.tokenization.smollm2.load_smollm2_tokenizer"):
        try:
            call = calls.valid_call(name)
            call.fn(**call.kwargs)
        except Exception:  # noqa: BLE001 - the plan reports it
            pass


def _own_temp_folder(folder: str) -> None:
    """Temporary files and folders (multiprocessing's ``pymp-*`` too) go under the runner's folder, which is
    removed at the end even when this worker is killed."""
    import multiprocessing
    import tempfile

    os.environ["TMPDIR"] = folder
    tempfile.tempdir = folder
    multiprocessing.current_process()._config.pop("tempdir", None)


def _own_resource_tracker() -> None:
    """Semaphores that the code under test creates (``launch.run``'s queues) are tracked by a tracker of
    this worker's own, which ends with it, instead of the runner's (which would warn about the leaks of
    every killed worker)."""
    from multiprocessing import resource_tracker

    tracker = resource_tracker.ResourceTracker()
    resource_tracker._resource_tracker = tracker
    for name in ("ensure_running", "register", "unregister", "getfd"):
        setattr(resource_tracker, name, getattr(tracker, name))


def main(conn, memory_bytes: int, folder: str) -> None:
    """The worker's loop: ``ready`` once set up, then one answer per task until ``None``. A task's last
    item is its time limit in seconds."""
    if hasattr(os, "setsid"):
        os.setsid()  # a process group of its own: the runner can end it with everything it started
    os.environ["LLMLAB_FUZZ_TMP"] = folder
    _own_temp_folder(folder)
    _own_resource_tracker()
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.chdir(folder)
    _quiet()
    warnings.simplefilter("ignore")
    signal.signal(signal.SIGALRM, _on_alarm)
    _reset_state()
    warm_up()
    _limit_memory(memory_bytes)
    conn.send(("ready", os.getpid()))
    while True:
        task = conn.recv()
        if task is None:
            return
        _reset_state()
        start = time.perf_counter()
        try:
            answer = plan(*task[1:]) if task[0] == "plan" else run_bad(*task[1:])
        except Exception as e:  # noqa: BLE001 - a fault of the fuzz itself, reported rather than fatal
            detail = f"the fuzz could not run this call: {type(e).__name__}: {e}"
            answer = ("valid call cannot be built", detail, []) if task[0] == "plan" else ("crash", "", detail)
        conn.send((*answer, time.perf_counter() - start))
