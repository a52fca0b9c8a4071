"""`python -m llmlab.course grade` over a synthetic class of 5: a complete learner, a half-done one, an
empty one with a corrupted file, one whose notebook kills its kernel, and one with an endless loop, a
sys.exit and a runaway allocation."""
import csv
import hashlib
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from llmlab.course.grade import find_submissions

ROOT = Path(__file__).resolve().parents[1]
NB01 = "01_language_models.ipynb"


def _half_done(path: Path) -> None:
    """The learner's copy of 01 with the first four exercises (5 of 10 points) solved."""
    stub = nbformat.read(ROOT / "notebooks" / NB01, as_version=4)
    solution = {c.id: c for c in nbformat.read(ROOT / "solutions" / NB01, as_version=4).cells}
    exercises = [c for c in stub.cells if "exercise" in c.metadata.get("tags", [])]
    for cell in exercises[:4]:
        lines = solution[cell.id].source.split("\n")
        cell.source = "\n".join(ln for ln in lines if ln.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION"))
    nbformat.write(stub, path)


@pytest.fixture(scope="module")
def klass(tmp_path_factory):
    root = tmp_path_factory.mktemp("class")
    for learner in ("alice", "bob", "carol", "dave"):
        (root / learner).mkdir()
    shutil.copy(ROOT / "solutions" / "00_start_here.ipynb", root / "alice")
    shutil.copy(ROOT / "solutions" / NB01, root / "alice")
    _half_done(root / "bob" / NB01)
    shutil.copy(ROOT / "notebooks" / "00_start_here.ipynb", root / "carol")
    text = (ROOT / "solutions" / NB01).read_text()
    (root / "carol" / NB01).write_text(text[: len(text) // 2])  # a truncated save
    dying = nbformat.read(ROOT / "solutions" / "00_start_here.ipynb", as_version=4)
    first = next(c for c in dying.cells if "exercise" in c.metadata.get("tags", []))
    first.source = "import os\nos._exit(1)\n" + first.source
    nbformat.write(dying, root / "dave" / "00_start_here.ipynb")
    (root / "erin").mkdir()
    _prefix_exercises(ROOT / "solutions" / "00_start_here.ipynb", root / "erin" / "00_start_here.ipynb",
                      ["while True:\n    pass\n"])
    _prefix_exercises(ROOT / "solutions" / NB01, root / "erin" / NB01,
                      ["_hog = bytearray(64 * 2**30)\n", "import sys\nsys.exit(3)\n"])
    return root


def _prefix_exercises(src: Path, dst: Path, prefixes: list[str]) -> None:
    """The solution with code put in front of its first exercise cells."""
    nb = nbformat.read(src, as_version=4)
    exercises = [c for c in nb.cells if "exercise" in c.metadata.get("tags", [])]
    for cell, prefix in zip(exercises, prefixes):
        cell.source = prefix + cell.source
    nbformat.write(nb, dst)


def _digest(folder: Path) -> dict:
    """Every path under ``folder`` (new folders count too) with its content hash."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


@pytest.fixture(scope="module")
def graded(klass, tmp_path_factory):
    before = _digest(klass)
    out = tmp_path_factory.mktemp("out") / "grades.csv"
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "llmlab.course", "grade", str(klass), "--csv", str(out), "-j", "2",
                           "--cell-timeout", "60", "--memory-gb", "4"], capture_output=True, text=True, timeout=900, cwd=ROOT)
    print(f"graded a class of 5 in {time.perf_counter() - start:.0f} s")
    print(proc.stdout, proc.stderr)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout, list(csv.DictReader(out.open(encoding="utf-8"))), before, _digest(klass)


def test_table(graded):
    table, *_ = graded
    rows = {line.split()[0]: line.split() for line in table.splitlines() if line.split() and line.split()[0] in ("learner", "alice", "bob", "carol", "dave", "erin")}
    assert rows["learner"] == ["learner", "00_start_here", "01_language_models", "total"]
    assert rows["alice"][1:] == ["2/2", "10/10", "12/12"]
    assert rows["bob"][1:] == ["0/2", "missing", "5/10", "5/12"]
    assert rows["carol"][1:] == ["0/2", "0/10", "invalid", "0/12"]
    assert rows["dave"][1:] == ["0/2", "error", "0/10", "missing", "0/12"]
    assert "carol/01_language_models: invalid: " in table and "not a valid notebook" in table
    assert "dave/00_start_here: error: the kernel died" in table
    assert rows["erin"][1:3] == ["0/2", "timeout"] and "erin/00_start_here: timeout: a cell ran for more than 60 s" in table
    erin_01 = float(rows["erin"][3].split("/")[0])
    assert 0 < erin_01 < 10  # MemoryError under the cap, then SystemExit: the first two exercises are lost, not the run


def test_csv(graded):
    _, rows, *_ = graded
    got = {(r["learner"], r["notebook"]): (r["got"], r["total"], r["status"]) for r in rows}
    assert got == {
        ("alice", "00_start_here"): ("2", "2", "ok"),
        ("alice", "01_language_models"): ("10", "10", "ok"),
        ("bob", "00_start_here"): ("0", "2", "missing"),
        ("bob", "01_language_models"): ("5", "10", "ok"),
        ("carol", "00_start_here"): ("0", "2", "ok"),
        ("carol", "01_language_models"): ("0", "10", "invalid"),
        ("dave", "00_start_here"): ("0", "2", "error"),
        ("dave", "01_language_models"): ("0", "10", "missing"),
        ("erin", "00_start_here"): ("0", "2", "timeout"),
        ("erin", "01_language_models"): (got[("erin", "01_language_models")][0], "10", "ok"),
    }


def test_grading_writes_nothing_where_it_grades(graded):
    *_, before, after = graded
    assert before == after


def test_bad_paths(tmp_path):
    with pytest.raises(FileNotFoundError):
        find_submissions([tmp_path / "nobody"])
    with pytest.raises(ValueError, match="no notebooks"):
        find_submissions([tmp_path])
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(ValueError, match="not a notebook"):
        find_submissions([tmp_path / "notes.txt"])
    proc = subprocess.run([sys.executable, "-m", "llmlab.course", "grade", str(tmp_path / "nobody")],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and "does not exist" in proc.stderr


def test_parallel_kernels_share_the_cores(monkeypatch):
    from llmlab.course.grade import thread_env

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    assert thread_env(2)["OMP_NUM_THREADS"] == "2"
    assert thread_env(8)["OMP_NUM_THREADS"] == "1"
    assert "OMP_NUM_THREADS" not in thread_env(1)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert thread_env(2)["OMP_NUM_THREADS"] == "3"  # the caller's choice wins
