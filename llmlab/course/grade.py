"""Grade notebooks, one learner or a whole class: ``python -m llmlab.course grade PATH... [--csv FILE]``.

PATH is a notebook, a learner's folder of notebooks, or a class folder holding one folder per
learner. Every notebook runs in its own pytest + nbval process (its own kernel, a per-cell time
limit, a time limit for the whole notebook and a memory cap), so a notebook that is not valid JSON,
a kernel that dies, ``sys.exit``, a learner's endless loop or runaway allocation costs that learner
that notebook, never the run. Nothing is
written next to what is graded: no cache, no outputs.
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
from dataclasses import dataclass, field
from pathlib import Path

from llmlab.course import notebooks
from llmlab.course.scoring import KERNEL_DIED


@dataclass
class Grade:
    learner: str
    notebook: str
    got: float = 0.0
    total: float = 0.0
    status: str = "ok"  # ok | invalid | timeout | error | missing
    detail: str = ""
    failed: list[str] = field(default_factory=list)

    @property
    def cell(self) -> str:
        score = f"{self.got:g}/{self.total:g}"
        return score if self.status == "ok" else f"{score} {self.status}"


def find_submissions(paths: list[str | Path]) -> dict[str, list[Path]]:
    """{learner: notebooks}. A file's learner is its folder; a folder of folders is a class."""
    found: dict[str, list[Path]] = {}
    for p in map(Path, paths):
        if p.is_file():
            if p.suffix != ".ipynb":
                raise ValueError(f"{p} is not a notebook (.ipynb)")
            found.setdefault(p.resolve().parent.name, []).append(p)
        elif p.is_dir():
            own = sorted(p.glob("*.ipynb"))
            if own:
                found.setdefault(p.resolve().name, []).extend(own)
            else:
                for sub in sorted(d for d in p.iterdir() if d.is_dir() and not d.name.startswith(".")):
                    found.setdefault(sub.name, []).extend(sorted(sub.glob("*.ipynb")))
        else:
            raise FileNotFoundError(f"{p} does not exist")
    if not any(found.values()):
        raise ValueError(f"no notebooks found in {', '.join(map(str, paths))}")
    return found


def _expected_total(path: Path) -> float:
    try:
        return sum(ch.points for ch in notebooks.expected_checks(path))
    except ValueError:
        return 0.0


def thread_env(jobs: int) -> dict[str, str]:
    """The environment for one of ``jobs`` notebooks graded side by side: each kernel gets its share of
    the cores (OMP_NUM_THREADS), unless the caller set it. PyTorch's OpenMP threads spin while they wait
    for each other, so two kernels with one thread per core each fight over every core; on 2 cores
    that made notebook 06's 200-step training loop up to 8x slower (19 s alone, 153 s beside another)."""
    env = dict(os.environ)
    if jobs > 1 and "OMP_NUM_THREADS" not in env:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // jobs))
    return env


def grade_notebook(path: Path, learner: str, cell_timeout: float = 120, timeout: float = 900,
                   jobs: int = 1, memory_gb: float = 12) -> Grade:
    """Run one notebook under pytest --nbval-lax with the scoring plugin, in a fresh process (one of
    ``jobs`` running at once) whose address space, kernel included, is capped at ``memory_gb`` (0: no cap)."""
    g = Grade(learner, path.stem, total=_expected_total(path))
    try:
        notebooks.read(path)
    except ValueError as e:
        g.status, g.detail = "invalid", str(e)
        return g
    with tempfile.TemporaryDirectory(prefix="llmlab-grade-") as tmp:
        ini, report = Path(tmp, "pytest.ini"), Path(tmp, "score.json")
        ini.write_text("[pytest]\n")
        cmd = [
            sys.executable, "-m", "pytest", str(path.resolve()),
            "-c", str(ini), "--rootdir", str(path.resolve().parent), "--noconftest",
            "-p", "no:python", "-p", "no:cacheprovider", "-p", "llmlab.course.scoring",
            "--nbval-lax", "--nbval-current-env", f"--nbval-cell-timeout={cell_timeout}",
            "--llmlab-score-json", str(report), "-q", "--color=no",
        ]
        if memory_gb:
            cmd = [sys.executable, "-m", "llmlab.course.limited", str(int(memory_gb * 2**30)), *cmd]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=tmp, env=thread_env(jobs))
        except subprocess.TimeoutExpired:
            g.status, g.detail = "timeout", f"the notebook ran for more than {timeout:g} s"
            return g
        if not report.is_file():
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
            g.status, g.detail = "error", " | ".join(tail) or f"pytest exited with {proc.returncode}"
            return g
        (rec,) = json.loads(report.read_text(encoding="utf-8"))
    g.got, g.total = rec["got"], rec["total"]
    g.failed = [ch["message"] for ch in rec["checks"].values() if not ch["passed"]]
    if rec["error"]:
        g.status, g.detail = "error", rec["error"]
    elif any(KERNEL_DIED in m or "Kernel dead" in m for m in g.failed):
        g.status, g.detail = "error", KERNEL_DIED
    elif any("Timeout" in m or "timed out" in m for m in g.failed):
        g.status, g.detail = "timeout", f"a cell ran for more than {cell_timeout:g} s"
    return g


def grade(paths: list[str | Path], jobs: int = 1, cell_timeout: float = 120, timeout: float = 900,
          progress=None, memory_gb: float = 12) -> list[Grade]:
    """Grade every notebook of every learner; a notebook some learners lack is graded 'missing'."""
    subs = find_submissions(paths)
    work = [(learner, nb) for learner, nbs in subs.items() for nb in nbs]

    def one(item):
        learner, nb = item
        start = time.perf_counter()
        g = grade_notebook(nb, learner, cell_timeout, timeout, jobs, memory_gb)
        if progress:
            progress(f"{learner}/{nb.name}: {g.cell} ({time.perf_counter() - start:.0f} s)")
        return g

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        grades = list(pool.map(one, work))
    names = sorted({g.notebook for g in grades})
    for learner in subs:
        have = {g.notebook for g in grades if g.learner == learner}
        for name in names:
            if name not in have:
                total = _expected_total(notebooks.solutions_dir() / f"{name}.ipynb")
                grades.append(Grade(learner, name, total=total, status="missing", detail="no such notebook"))
    return sorted(grades, key=lambda g: (g.learner, g.notebook))


def table(grades: list[Grade]) -> str:
    """A learner × notebook table with a total column, as aligned text."""
    learners = list(dict.fromkeys(g.learner for g in grades))
    names = sorted({g.notebook for g in grades})
    by = {(g.learner, g.notebook): g for g in grades}
    rows = [["learner", *names, "total"]]
    for learner in learners:
        mine = [by[(learner, n)] for n in names]
        got, total = sum(g.got for g in mine), sum(g.total for g in mine)
        rows.append([learner, *(g.cell for g in mine), f"{got:g}/{total:g}"])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    problems = [f"{g.learner}/{g.notebook}: {g.status}: {g.detail}" for g in grades if g.status != "ok"]
    return "\n".join(lines + ([""] + problems if problems else []))


def write_csv(grades: list[Grade], path: str | Path) -> None:
    """One row per learner and notebook: learner, notebook, got, total, status, detail."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["learner", "notebook", "got", "total", "status", "detail"])
        for g in grades:
            w.writerow([g.learner, g.notebook, f"{g.got:g}", f"{g.total:g}", g.status, g.detail])
