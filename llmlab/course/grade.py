"""Grade notebooks, one learner or a whole class: ``python -m llmlab.course grade PATH... [--csv FILE]``.

PATH is a notebook, a learner's folder of notebooks, or a class folder holding one folder per learner.
Learners are named by their folder's path relative to what the PATHs have in common, so two learners
called ``alice`` in two class folders stay two rows.

Each notebook is graded by its own driver process (:mod:`llmlab.course.driver`), which rebuilds it from
the solution (only the code of the exercise cells comes from the submission), runs its cells in a
sandboxed kernel (:mod:`llmlab.course.sandbox`) and runs the checks itself, outside the kernel. A notebook
that is not valid JSON, a kernel that dies, ``sys.exit``, an endless loop or a runaway allocation costs
that learner that notebook, never the run. Nothing is written next to what is graded. The trust model is
in ``docs/grading.md``.
"""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from llmlab.course import notebooks, sandbox
from llmlab.course.driver import KERNEL_DIED, Job

NOT_COURSE = "not a course notebook"
SYMLINK = "symlink refused"
STRAY = "stray file"


@dataclass
class Grade:
    learner: str
    notebook: str
    got: float = 0.0
    total: float = 0.0
    status: str = "ok"  # ok | invalid | timeout | error | missing | uses the reference | not a course notebook | …
    detail: str = ""
    failed: list[str] = field(default_factory=list)

    @property
    def cell(self) -> str:
        score = f"{self.got:g}/{self.total:g}"
        return score if self.status == "ok" else f"{score} {self.status}"


@dataclass
class Learner:
    name: str
    folder: Path
    notebooks: list[Path] = field(default_factory=list)   # course notebooks to grade
    refused: list[Grade] = field(default_factory=list)    # everything else in the folder, with the reason


def _course_names() -> set[str]:
    return {p.name for p in notebooks.solutions_dir().glob("*.ipynb")}


def _learner_folder(folder: Path, name: str, only: list[Path] | None = None) -> Learner:
    """A learner's folder: its course notebooks, and a refusal for every other file in it."""
    course = _course_names()
    learner = Learner(name, folder)
    if folder.is_symlink():
        learner.refused.append(Grade(name, folder.name, status=SYMLINK, detail=f"{folder} is a symbolic link"))
        return learner
    entries = only if only is not None else sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    real = folder.resolve()
    for p in entries:
        if p.is_dir() and not p.is_symlink():
            continue  # sub-folders (data, checkpoints) are not graded
        stem = p.stem if p.suffix == ".ipynb" else p.name
        if p.is_symlink():
            learner.refused.append(Grade(name, stem, status=SYMLINK, detail=f"{p.name} is a symbolic link"))
        elif p.resolve().parent != real:
            learner.refused.append(Grade(name, stem, status=SYMLINK, detail=f"{p.name} lies outside the learner's folder"))
        elif p.suffix != ".ipynb":
            learner.refused.append(Grade(name, stem, status=STRAY, detail=f"{p.name} is not a notebook: not graded"))
        elif p.name not in course:
            learner.refused.append(Grade(name, stem, status=NOT_COURSE,
                                         detail=f"{p.name} has no solution in the course: not graded"))
        else:
            learner.notebooks.append(p)
    return learner


def _has_notebooks(d: Path) -> bool:
    return any(p.suffix == ".ipynb" for p in d.iterdir() if not p.name.startswith("."))


def find_submissions(paths: list[str | Path]) -> list[Learner]:
    """The learners under ``paths``. A file is one notebook of the learner named by its folder; a folder
    with notebooks is a learner; a folder of folders is a class. A folder that holds notebooks *and*
    learner folders is ambiguous: ``ValueError``."""
    paths = [Path(p) for p in paths]
    for p in paths:
        if not p.exists() and not p.is_symlink():
            raise FileNotFoundError(f"{p} does not exist")
        if p.is_file() and p.suffix != ".ipynb":
            raise ValueError(f"{p} is not a notebook (.ipynb)")
    folders: list[tuple[Path, list[Path] | None]] = []
    for p in paths:
        if p.is_file() or p.suffix == ".ipynb":
            folders.append((p.parent, [p]))
        elif _has_notebooks(p):
            subs = [d for d in sorted(p.iterdir()) if d.is_dir() and not d.name.startswith(".") and _has_notebooks(d)]
            if subs:
                raise ValueError(f"{p} holds notebooks and learner folders ({', '.join(d.name for d in subs[:3])}): "
                                 "grade a class folder (one folder per learner) or one learner's folder, not both")
            folders.append((p, None))
        else:
            folders += [(d, None) for d in sorted(p.iterdir()) if d.is_dir() and not d.name.startswith(".")]
    if not folders:
        raise ValueError(f"no notebooks found in {', '.join(map(str, paths))}")
    absolute = [Path(os.path.abspath(f)) for f, _ in folders]
    common = Path(os.path.commonpath(absolute)) if len(absolute) > 1 else absolute[0].parent
    learners: dict[str, Learner] = {}
    for (folder, only), absf in zip(folders, absolute):
        name = absf.relative_to(common).as_posix() if absf != common else absf.name
        found = _learner_folder(folder, name, only)
        if name in learners:  # the same folder named twice (a file and its folder): merge, never twice a notebook
            have = {p.resolve() for p in learners[name].notebooks}
            learners[name].notebooks += [p for p in found.notebooks if p.resolve() not in have]
            learners[name].refused += found.refused
        else:
            learners[name] = found
    if not any(lr.notebooks or lr.refused for lr in learners.values()):
        raise ValueError(f"no notebooks found in {', '.join(map(str, paths))}")
    return list(learners.values())


# ------------------------------------------------------------------------------------------------ limits


def machine_memory() -> int:
    """Bytes of memory on this machine."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 16 * 2**30


def default_memory_gb(jobs: int) -> float:
    """12 GiB per notebook, or less when ``jobs`` notebooks at once would not fit: each gets its share of 80%
    of the machine (the rest is for the grader and the system)."""
    return round(min(12.0, 0.8 * machine_memory() / 2**30 / max(1, jobs)), 1)


def check_limits(jobs: int, cell_timeout: float, timeout: float, memory_gb: float) -> None:
    """``ValueError`` for limits that cannot work: not positive, or more memory than the machine has."""
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"-j/--jobs must be a whole number >= 1, got {jobs!r}")
    for flag, value in (("--cell-timeout", cell_timeout), ("--timeout", timeout), ("--memory-gb", memory_gb)):
        if not value > 0 or value == float("inf"):
            raise ValueError(f"{flag} must be a positive number, got {value!r}")
    total = machine_memory() / 2**30
    if memory_gb * jobs > total:
        raise ValueError(f"--memory-gb {memory_gb:g} × -j {jobs} = {memory_gb * jobs:g} GiB is more than this machine's "
                         f"{total:.1f} GiB: lower --memory-gb (at most {total / jobs:.1f}) or -j")


def thread_env(jobs: int) -> dict[str, str]:
    """The environment for one of ``jobs`` notebooks graded side by side: each kernel gets its share of
    the cores (OMP_NUM_THREADS), unless the caller set it. PyTorch's OpenMP threads spin while they wait
    for each other, so two kernels with one thread per core each fight over every core; on 2 cores
    that made notebook 06's 200-step training loop up to 8x slower (19 s alone, 153 s beside another)."""
    env = dict(os.environ)
    if jobs > 1 and "OMP_NUM_THREADS" not in env:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // jobs))
    return env


# ----------------------------------------------------------------------------------------------- grading


def grade_notebook(path: Path | None, learner: str, name: str, box: sandbox.Sandbox, cell_timeout: float = 120,
                   timeout: float = 900, jobs: int = 1, memory_gb: float = 12) -> Grade:
    """Grade one notebook (``path`` None: the learner has none, graded 'missing') in a driver process."""
    solution = notebooks.solutions_dir() / f"{name}.ipynb"
    total = sum(c.points for c in notebooks.graded_checks(notebooks.read(solution)))
    g = Grade(learner, name, total=total)
    if path is None:
        g.status, g.detail = "missing", "no such notebook"
        return g
    try:
        notebooks.read(path)
    except ValueError as e:
        g.status, g.detail = "invalid", str(e)
        return g
    env = thread_env(jobs)
    threads = int(env["OMP_NUM_THREADS"]) if "OMP_NUM_THREADS" in env else None
    job = Job(solution=str(solution), submission=str(path.resolve()), cell_timeout=cell_timeout, timeout=timeout,
              memory_bytes=int(memory_gb * 2**30), cpu_seconds=int(timeout * max(1, threads or os.cpu_count() or 1)) + 60,
              threads=threads, sandbox=box.kind, hidden=box.hidden, image=box.image, jobs=jobs)
    with tempfile.TemporaryDirectory(prefix="llmlab-grade-") as tmp:
        os.chmod(tmp, 0o700)
        job_file, result_file = Path(tmp, "job.json"), Path(tmp, "result.json")
        job_file.write_text(json.dumps(asdict(job)), encoding="utf-8")
        cmd = [sys.executable, "-m", "llmlab.course.driver", str(job_file), str(result_file)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 120, cwd=tmp, env=env)
        except subprocess.TimeoutExpired:
            g.status, g.detail = "timeout", f"the notebook ran for more than {timeout:g} s"
            return g
        if not result_file.is_file():
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
            g.status, g.detail = "error", "the grader failed: " + (" | ".join(tail) or f"exit code {proc.returncode}")
            return g
        rec = json.loads(result_file.read_text(encoding="utf-8"))
    g.got, g.total, g.status, g.detail = rec["got"], rec["total"], rec["status"], rec["detail"]
    g.failed = [ch["message"] for ch in rec["checks"].values() if not ch["passed"]]
    return g


def grade(paths: list[str | Path], jobs: int = 1, cell_timeout: float = 120, timeout: float = 900,
          progress=None, memory_gb: float | None = None, sandbox_kind: str = "auto",
          image: str = "llmlab-grader") -> tuple[list[Grade], sandbox.Sandbox]:
    """Grade every course notebook of every learner; a course notebook some learners lack is 'missing'.
    Returns the grades and the sandbox the kernels ran in."""
    memory_gb = default_memory_gb(jobs) if memory_gb is None else memory_gb
    check_limits(jobs, cell_timeout, timeout, memory_gb)
    learners = find_submissions(paths)
    hidden = {str(Path(p).resolve()) for p in paths}
    hidden |= {str(lr.folder.resolve().parent) for lr in learners} | {str(lr.folder.resolve()) for lr in learners}
    box = sandbox.choose(sandbox_kind, sorted(hidden), image)
    names = sorted({p.stem for lr in learners for p in lr.notebooks})
    work = [(lr, name, next((p for p in lr.notebooks if p.stem == name), None)) for lr in learners for name in names]

    def one(item):
        lr, name, path = item
        start = time.perf_counter()
        g = grade_notebook(path, lr.name, name, box, cell_timeout, timeout, jobs, memory_gb)
        if progress and path is not None:
            progress(f"{lr.name}/{name}.ipynb: {g.cell} ({time.perf_counter() - start:.0f} s)")
        return g

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        grades = list(pool.map(one, work))
    grades += [g for lr in learners for g in lr.refused]
    return sorted(grades, key=lambda g: (g.learner, g.notebook)), box


def table(grades: list[Grade], box: sandbox.Sandbox | None = None) -> str:
    """A learner × notebook table with a total column, as aligned text; below it, every problem."""
    scored = [g for g in grades if g.status not in (NOT_COURSE, SYMLINK, STRAY)]
    learners = list(dict.fromkeys(g.learner for g in grades))
    names = sorted({g.notebook for g in scored})
    by = {(g.learner, g.notebook): g for g in scored}
    rows = [["learner", *names, "total"]]
    for learner in learners:
        mine = [by.get((learner, n)) for n in names]
        got, total = sum(g.got for g in mine if g), sum(g.total for g in mine if g)
        rows.append([learner, *(g.cell if g else "-" for g in mine), f"{got:g}/{total:g}"])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    problems = [f"{g.learner}/{g.notebook}: {g.status}: {g.detail}" for g in grades
                if g.status not in ("ok", "missing")]  # a missing notebook says so in its cell
    if box is not None and not box.isolated:
        problems.append(f"⚠ kernels were not isolated ({box.note}): a submission could read or change files, "
                        "or reach the network")
    return "\n".join(lines + ([""] + problems if problems else []))


def write_csv(grades: list[Grade], path: str | Path) -> None:
    """One row per learner and notebook: learner, notebook, got, total, status, detail."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["learner", "notebook", "got", "total", "status", "detail"])
        for g in grades:
            w.writerow([g.learner, g.notebook, f"{g.got:g}", f"{g.total:g}", g.status, g.detail])


__all__ = ["Grade", "Learner", "find_submissions", "grade", "grade_notebook", "table", "write_csv", "KERNEL_DIED"]
