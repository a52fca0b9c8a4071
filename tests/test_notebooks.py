"""Every solution notebook scores full marks; every check of every generated notebook fails with
"not implemented". Runs the notebooks as a learner grades them: pytest --nbval-lax, one kernel each.

A generated notebook runs without its demo cells (its first code cell, the imports, then its exercise and
check cells): the scores only read the check cells, and the demos, which fall back on llmlab's reference
when an exercise is not done, already run in the solution (they would double the time of this test)."""
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from llmlab.course.grade import thread_env
from llmlab.course.notebooks import graded_checks, read

ROOT = Path(__file__).resolve().parents[1]


def _exercises_only(stub: Path, folder: Path) -> None:
    """``stub`` without its demo cells, written to ``folder``."""
    nb = read(stub)
    code = [c for c in nb.cells if c.cell_type == "code"]
    keep = [code[0]] + [c for c in code[1:] if {"exercise", "check"} & set(c.metadata.get("tags", []))]
    nb.cells = [c for c in nb.cells if any(c is k for k in keep)]
    nbformat.write(nb, folder / stub.name)


@pytest.fixture(scope="module")
def scores(tmp_path_factory):
    report = tmp_path_factory.mktemp("nbval") / "scores.json"
    stubs = tmp_path_factory.mktemp("notebooks")
    for stub in sorted((ROOT / "notebooks").glob("*.ipynb")):
        _exercises_only(stub, stubs)
    cmd = [sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:python", "-p", "no:cacheprovider",
           "-n", "2", "--dist", "loadscope", "-q", "--llmlab-score-json", str(report), "solutions", str(stubs)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=2400, env=thread_env(2))
    summary = [ln for ln in proc.stdout.splitlines() if ln.startswith(("SCORE", "  ❌", "  ⚠"))]
    print("\n".join(summary))
    assert report.is_file(), proc.stdout[-3000:] + proc.stderr[-3000:]
    out = {}
    for r in json.loads(report.read_text()):  # the solutions, then the stubs (their path names no folder we can trust)
        path = Path(r["path"])
        out[f"{'solutions' if path.parent == ROOT / 'solutions' else 'notebooks'}/{path.name}"] = r
    return out


@pytest.mark.parametrize("path", sorted(p.name for p in (ROOT / "solutions").glob("*.ipynb")))
def test_solution_scores_full_marks(scores, path):
    rec = scores[f"solutions/{path}"]
    assert rec["total"] > 0 and not rec["error"]
    failed = {i: ch["message"] for i, ch in rec["checks"].items() if not ch["passed"]}
    assert rec["got"] == rec["total"], failed
    print(f"{path}: {rec['got']:g}/{rec['total']:g} in {rec['seconds']:.1f} s of cell time")


@pytest.mark.parametrize("path", sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb")))
def test_every_stub_check_fails_as_not_implemented(scores, path):
    rec = scores[f"notebooks/{path}"]
    assert rec["got"] == 0
    expected = {c.id for c in graded_checks(read(ROOT / "solutions" / path))}
    assert set(rec["checks"]) == expected
    for check_id, ch in rec["checks"].items():
        assert "not implemented yet" in ch["message"], (check_id, ch["message"])
