"""Every solution notebook scores full marks; every check of every generated notebook fails with
"not implemented". Runs the notebooks as a learner grades them: pytest --nbval-lax, one kernel each."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from llmlab.course.grade import thread_env
from llmlab.course.notebooks import graded_checks, read

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def scores(tmp_path_factory):
    report = tmp_path_factory.mktemp("nbval") / "scores.json"
    cmd = [sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:python", "-p", "no:cacheprovider",
           "-n", "2", "--dist", "loadscope", "-q", "--llmlab-score-json", str(report), "solutions", "notebooks"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=2400, env=thread_env(2))
    summary = [ln for ln in proc.stdout.splitlines() if ln.startswith(("SCORE", "  ❌", "  ⚠"))]
    print("\n".join(summary))
    assert report.is_file(), proc.stdout[-3000:] + proc.stderr[-3000:]
    return {Path(r["path"]).relative_to(ROOT).as_posix(): r for r in json.loads(report.read_text())}


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
