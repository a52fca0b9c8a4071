"""Grade one notebook of one learner: ``python -m llmlab.course.driver JOB.json RESULT.json``.

The grader (``llmlab.course.grade``) starts one driver per notebook. The driver is trusted: it never runs
the learner's code. It rebuilds the notebook from the solution (:mod:`llmlab.course.rebuild`), starts a
kernel in the sandbox (:mod:`llmlab.course.sandbox`, :mod:`llmlab.course.worker`), sends it the cells one
by one, and at each check cell runs the check itself, here, with a :class:`~llmlab.course.remote.RemoteFunction`
in place of the learner's function. The score is added up here and written where the kernel cannot
reach (the result file lies in the grader's private temporary folder, hidden from the sandbox).
"""
from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from llmlab import interview
from llmlab.course import notebooks, rebuild, sandbox, wire
from llmlab.course.remote import Kernel, RemoteFunction

KERNEL_DIED = notebooks.KERNEL_DIED
USES_REFERENCE = "uses the reference"
# The largest answer the driver reads from a kernel: far above any check's (SmolLM2's weights changed in
# place are 0.5 GB), far below what would let a kernel exhaust the grader's memory.
MAX_REPLY_BYTES = 2**30


@dataclass
class Job:
    solution: str
    submission: str | None          # None: grade the stub (the learner handed in nothing for it)
    cell_timeout: float = 120
    timeout: float = 900
    memory_bytes: int = 12 * 2**30
    cpu_seconds: int = 3600
    processes: int = 256
    threads: int | None = None
    sandbox: str = "none"           # the kind the grader chose (it checked that it works)
    hidden: list[str] = field(default_factory=list)
    image: str = "llmlab-grader"
    jobs: int = 1


@dataclass
class Result:
    got: float = 0.0
    total: float = 0.0
    status: str = "ok"              # ok | timeout | error | uses the reference
    detail: str = ""
    checks: dict = field(default_factory=dict)   # id -> {points, passed, message}
    seconds: float = 0.0
    peak_memory: int | None = None


def _kernel_argv(job: Job, limits: sandbox.Limits, box: sandbox.Sandbox, cgroup: sandbox.CGroup, scratch: str) -> tuple[list, dict, str]:
    """(argv, env, cwd) that start the worker with its limits, in its sandbox."""
    worker = [sys.executable, "-m", "llmlab.course.worker"]
    if box.kind == "bwrap" and os.geteuid() == 0:
        worker += ["--uid", str(sandbox.NOBODY), "--nproc", str(limits.processes * max(1, job.jobs))]
    limited = [sys.executable, "-m", "llmlab.course.limited", "--cpu", str(limits.cpu_seconds)]
    if not sandbox.has_gpu():  # CUDA reserves far more address space than it uses: there the cgroup caps memory
        limited += ["--as", str(limits.memory_bytes)]
    for f in cgroup.procs_files:
        limited += ["--cgroup", f]
    # The graded interview items, with their answers withheld: the kernel sees this copy instead.
    withheld = Path(scratch, "interview_withheld.json")
    withheld.write_text(json.dumps(interview.withhold(json.loads(interview.GRADED_FILE.read_text(encoding="utf-8"))),
                                   ensure_ascii=False), encoding="utf-8")
    overlays = [(str(withheld), str(interview.GRADED_FILE.resolve()))]
    if box.kind == "bwrap":
        env = sandbox.kernel_env(limits, inside=True)
        return [*limited, "--", *sandbox.bwrap_command(box, limits, env, worker, overlays)], None, scratch
    if box.kind in ("docker", "podman"):
        env = sandbox.kernel_env(limits, inside=True)
        argv = sandbox.container_command(box, limits, env, ["python", "-m", "llmlab.course.worker"])
        return argv, None, scratch
    env = sandbox.kernel_env(limits, inside=False)
    env.update(HOME=scratch, TMPDIR=scratch, MPLCONFIGDIR=str(Path(scratch, ".matplotlib")))
    return [*limited, "--", *worker], env, scratch


def grade(job: Job) -> Result:
    res = Result()
    start = time.monotonic()
    solution = notebooks.load(job.solution)
    res.total = sum(c.points for c in notebooks.graded_checks(solution))
    submission = notebooks.load(job.submission) if job.submission else None  # the grader validated it
    steps = rebuild.plan(solution, submission)
    for s in steps:
        if s.kind == "check":
            res.checks[s.check_id] = {"points": s.points, "passed": False, "message": "not run"}
    sources = [s.source for s in steps if s.kind != "exercise"]  # the course's own cells: trusted imports
    borrowed = {}
    limits = sandbox.Limits(memory_bytes=job.memory_bytes, cpu_seconds=job.cpu_seconds, processes=job.processes,
                            threads=job.threads)
    box = sandbox.Sandbox(job.sandbox, job.hidden, job.image)
    cgroup = sandbox.CGroup(limits, enabled=box.kind in ("bwrap", "none"))  # a container engine has its own
    notebook_deadline = start + job.timeout
    with tempfile.TemporaryDirectory(prefix="llmlab-kernel-") as scratch:
        os.chmod(scratch, 0o700)
        argv, env, cwd = _kernel_argv(job, limits, box, cgroup, scratch)
        kernel = Kernel(argv, env=env, cwd=cwd, max_reply_bytes=MAX_REPLY_BYTES)
        try:
            kernel.deadline = min(time.monotonic() + max(60.0, job.cell_timeout), notebook_deadline)
            try:
                kernel.request({"op": "hello"})
            except wire.KernelFailure as e:
                res.status, res.detail = "error", f"the kernel did not start: {e} {kernel.stderr_tail()}".strip()
                return res
            for s in steps:
                if time.monotonic() >= notebook_deadline:
                    res.status, res.detail = "timeout", f"the notebook ran for more than {job.timeout:g} s"
                    break
                kernel.deadline = min(time.monotonic() + job.cell_timeout, notebook_deadline)
                try:
                    if s.kind == "check":
                        if s.source.strip():
                            kernel.request({"op": "run", "code": s.source})
                        res.checks[s.check_id], why = _run_check(kernel, s, steps, sources)
                        if why:
                            borrowed[s.check_id] = why
                    else:
                        kernel.request({"op": "run", "code": s.source})
                except wire.KernelTimeout:
                    overall = time.monotonic() >= notebook_deadline - 0.5
                    res.status = "timeout"
                    res.detail = (f"the notebook ran for more than {job.timeout:g} s" if overall
                                  else f"a cell ran for more than {job.cell_timeout:g} s")
                    break
                except wire.KernelGone:
                    res.status, res.detail = "error", KERNEL_DIED
                    break
                except wire.ProtocolError as e:
                    res.status, res.detail = "error", f"the kernel broke the grading protocol: {e}"
                    break
        finally:
            kernel.close()
            res.peak_memory = cgroup.peak_bytes() if cgroup.dirs else None
            cgroup.kill()
    res.got = sum(c["points"] for c in res.checks.values() if c["passed"])
    if res.status == "ok" and borrowed:
        res.status, res.detail = USES_REFERENCE, "; ".join(f"{k}: {v}" for k, v in borrowed.items())
    res.seconds = time.monotonic() - start
    return res


def _borrowed(kernel: Kernel, info: dict, name: str, step: rebuild.Step, steps: list, sources: list[str]) -> str:
    """Why the learner's ``name`` is llmlab's reference rather than their own code ('' when it is theirs)."""
    if info.get("in_package"):  # the very function object of the package (however it was reached)
        return f"{name} is llmlab's own {info.get('module')}.{info.get('qualname')}"
    exercise = rebuild.defining_exercise(steps, step, name)
    return rebuild.uses_reference(exercise.source, name, sources) if exercise is not None else ""


def _run_check(kernel: Kernel, step: rebuild.Step, steps: list[rebuild.Step], sources: list[str]) -> tuple[dict, str]:
    """Run one check here, with stand-ins for the learner's functions: its record, and why it used the
    reference ('' when it did not)."""
    from llmlab.grading.core import ExerciseFailure

    record = {"points": step.points, "passed": False, "message": ""}
    fns = []
    for name in step.names:
        info, _ = kernel.request({"op": "describe", "name": name})
        if not info.get("exists"):
            record["message"] = f"❌ {step.check_id}: name '{name}' is not defined … Hint: run the exercise cell that defines it"
            return record, ""
        why = _borrowed(kernel, info, name, step, steps, sources)
        if why:
            record["message"] = f"❌ {step.check_id}: {USES_REFERENCE}: {why}"
            return record, why
        fns.append(RemoteFunction(kernel, name) if info.get("callable") else wire.unsendable(str(info.get("type")), ""))
    check = getattr(importlib.import_module(step.module), step.function)
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the ✅ line: the record says it
            check(*fns)
    except ExerciseFailure as e:
        record["message"] = str(e)
    except wire.KernelFailure:
        raise
    except Exception as e:  # the check could not use what came back (a malformed result): the learner's loss
        record["message"] = f"❌ {step.check_id}: the check could not use your function's result ({type(e).__name__}: {e})"[:600]
    else:
        record["passed"] = True
    if kernel.failure is not None:  # a check that caught the channel's failure must not decide anything
        raise kernel.failure
    kernel.request({"op": "release"})  # the kernel forgets what it held for this check
    return record, ""


def main(argv: list[str]) -> int:
    job_path, result_path = argv
    job = Job(**json.loads(Path(job_path).read_text(encoding="utf-8")))
    result = grade(job)
    Path(result_path).write_text(json.dumps(asdict(result), ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
