"""The student-notebook builder: stubs, edit protection, --check, and the committed notebooks."""
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from llmlab.course import build
from llmlab.course.notebooks import graded_checks, read

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))


def test_strip_solutions_keeps_signature_and_indents_the_stub():
    src = 'def f(x):\n    """Doc."""\n    ### BEGIN SOLUTION\n    y = x + 1\n    return y\n    ### END SOLUTION\n\nz = 1'
    assert build.strip_solutions(src) == 'def f(x):\n    """Doc."""\n    # YOUR CODE HERE\n    raise NotImplementedError\n\nz = 1'


@pytest.mark.parametrize("src,match", [
    ("### BEGIN SOLUTION\nx = 1", "never closed"),
    ("x = 1\n### END SOLUTION", "without"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", "inside another"),
])
def test_strip_solutions_rejects_broken_markers(src, match):
    with pytest.raises(ValueError, match=match):
        build.strip_solutions(src)


def _solutions_copy(tmp_path: Path) -> tuple[Path, Path]:
    sol, out = tmp_path / "solutions", tmp_path / "notebooks"
    sol.mkdir()
    for p in SOLUTIONS:
        shutil.copy(p, sol / p.name)
    return sol, out


def test_build_refuses_to_overwrite_edited_notebooks(tmp_path):
    sol, out = _solutions_copy(tmp_path)
    assert {r.status for r in build.build(sol, out)} == {"written"}
    assert {r.status for r in build.build(sol, out)} == {"unchanged"}

    target = out / SOLUTIONS[0].name
    nb = nbformat.read(target, as_version=4)
    exercise = next(c for c in nb.cells if "exercise" in c.metadata.get("tags", []))
    exercise.source = exercise.source.replace("raise NotImplementedError", "return 42  # my answer")
    nbformat.write(nb, target)
    learner_work = target.read_text()

    # the solution changes: the edited notebook is not overwritten without --force
    solution = nbformat.read(sol / SOLUTIONS[0].name, as_version=4)
    solution.cells[0].source += "\n\nA new sentence."
    nbformat.write(solution, sol / SOLUTIONS[0].name)
    statuses = {r.path.name: r.status for r in build.build(sol, out)}
    assert statuses[SOLUTIONS[0].name] == "refused"
    assert target.read_text() == learner_work
    assert [r.status for r in build.build(sol, out, check=True)].count("out of date") == 1
    assert {r.path.name: r.status for r in build.build(sol, out, force=True)}[SOLUTIONS[0].name] == "written"
    assert "A new sentence." in target.read_text()


def test_a_notebook_that_was_only_run_can_be_rebuilt(tmp_path):
    sol, out = _solutions_copy(tmp_path)
    build.build(sol, out)
    target = out / SOLUTIONS[0].name
    nb = nbformat.read(target, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.execution_count = 1
            cell.outputs = [nbformat.v4.new_output("stream", text="ran\n")]
    nbformat.write(nb, target)
    assert not build.is_edited(target)
    assert {r.path.name: r.status for r in build.build(sol, out)}[target.name] == "written"


def test_check_reports_stale_notebooks(tmp_path):
    sol, out = _solutions_copy(tmp_path)
    build.build(sol, out)
    shutil.copy(out / SOLUTIONS[0].name, out / "99_orphan.ipynb")
    assert ("99_orphan.ipynb", "stale") in {(r.path.name, r.status) for r in build.build(sol, out, check=True)}


def test_cli_check_passes_on_the_repository():
    proc = subprocess.run([sys.executable, "-m", "llmlab.course", "build", "--check"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_solution_notebook_conventions(path):
    nb = read(path)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert nb.metadata["kernelspec"]["display_name"] == "Python 3 (ipykernel)"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, "commit solutions with outputs cleared"
    prefix = path.name[:2]  # the check ids' prefix: "07" for each of 07a, 07b, 07c
    checks = graded_checks(nb)
    assert len({c.id for c in checks}) == len(checks), "check ids must be unique"
    cells = nb.cells
    for i, cell in enumerate(cells):
        meta = cell.metadata.get("grade")
        if not meta:
            continue
        assert "check" in cell.metadata.get("tags", [])
        name = meta["id"].split(".", 1)[1]
        assert meta["id"].startswith(prefix + "."), meta["id"]
        assert f"check_{name}(" in cell.source, f"check cell {meta['id']} must call check_{name}"
        assert "exercise" in cells[i - 1].metadata.get("tags", []), f"{meta['id']}: the exercise cell must come right before its check"
        assert "### BEGIN SOLUTION" in cells[i - 1].source


def test_exercise_ids_match_what_the_checks_print():
    import importlib

    for path in SOLUTIONS:
        code = "\n".join(c.source for c in read(path).cells if c.cell_type == "code")
        name = re.search(r"^from llmlab\.grading import (\w+)", code, re.M)  # the module the notebook grades with
        module = importlib.import_module(f"llmlab.grading.{name.group(1) if name else path.stem[3:]}")
        source = Path(module.__file__).read_text()
        for check in graded_checks(read(path)):
            assert f'"{check.id}"' in source, f"{check.id}: no check in {module.__name__} reports this id"


def test_min_exercise_counts():
    counts = {p.stem: len(graded_checks(read(p))) for p in SOLUTIONS}
    assert counts["01_language_models"] >= 6
    assert counts["00_start_here"] >= 1
    for name, at_least in [("02_chinese_segmentation", 14), ("03_tokenizers", 10), ("04_attention", 8), ("05_transformer", 8), ("06_training", 11), ("07a_perplexity", 3), ("07b_classification_metrics", 5), ("07c_generation_metrics", 3), ("08_fast_inference", 13), ("09_quantization", 10), ("10_pruning", 8), ("11_compression", 6), ("12_parallelism", 9), ("13_interview_bank", 10), ("14_your_engine", 5), ("16_learning_regimes", 8), ("15a_privacy", 8), ("15b_robustness_interpretability", 8)]:
        if name in counts:
            assert counts[name] >= at_least, name
