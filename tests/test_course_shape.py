"""What every notebook of the course is made of, besides its graded exercises: a header cell (objectives,
prerequisites, a learner's time, a difficulty per exercise), diagrams, "predict, then run" moments, a closing
"test yourself" cell, markdown cells short enough to read, and from 08 on demos driven by the learner's own
functions. The README's curriculum table shows the headers' times and difficulties."""
import ast
import re
from pathlib import Path

import pytest

from llmlab import interview
from llmlab.course.notebooks import read

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
TAUGHT = [p for p in SOLUTIONS if 1 <= int(p.name[:2]) <= 12 or int(p.name[:2]) >= 15]  # the topic notebooks
ENGINE = [p for p in SOLUTIONS if int(p.name[:2]) >= 8 and not p.name.startswith("13")]
MAX_WORDS = 250
STARS = re.compile(r"^★{1,3}$")


def label(path: Path) -> str:
    """The notebook's label, its name before the first underscore: "05", or "07a" for a topic taught in parts."""
    return path.name.split("_", 1)[0]


def _tags(cell) -> set[str]:
    return set(cell.metadata.get("tags", []))


def _exercise_names(nb) -> list[str]:
    names = []
    for cell in nb.cells:
        if "exercise" in _tags(cell):
            tree = ast.parse(cell.source)
            names += [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
    return names


def header(path: Path) -> dict:
    """The header cell's fields: objectives (list), prerequisites (str), hours (float), exercises {name: stars}."""
    text = read(path).cells[0].source
    objectives = re.search(r"^\*\*Objectives\.\*\*.*?\n((?:\s*[-*] .+\n?)+)", text, re.M)
    prerequisites = re.search(r"^\*\*Prerequisites\.\*\*\s*(.+)$", text, re.M)
    time = re.search(r"^\*\*Time\.\*\*\s*about\s+([\d.]+)\s*(h|min)\b", text, re.M)
    rows = re.findall(r"^\|\s*[^|]*\|\s*`(\w+)`\s*\|\s*(★+)\s*\|", text, re.M)
    return {
        "objectives": re.findall(r"^\s*[-*] (.+)$", objectives.group(1), re.M) if objectives else [],
        "prerequisites": prerequisites.group(1).strip() if prerequisites else "",
        "hours": (float(time.group(1)) / (60 if time.group(2) == "min" else 1)) if time else None,
        "exercises": dict(rows),
    }


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_header_cell(path):
    h, nb = header(path), read(path)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith(f"# {label(path)} ·")
    assert len(h["objectives"]) >= 2, "**Objectives.** followed by at least two bullets"
    assert h["prerequisites"], "**Prerequisites.** the notebooks to have done first (or none)"
    assert h["hours"] and 0.2 <= h["hours"] <= 8, "**Time.** about N h (or N min): a learner's time"
    names = _exercise_names(nb)
    assert list(h["exercises"]) == names, "the header's table lists every exercise, in order"
    assert all(STARS.match(s) for s in h["exercises"].values())


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_diagrams_predictions_and_test_yourself(path):
    nb = read(path)
    cells = nb.cells
    diagrams = [c for c in cells if "diagram" in _tags(c)]
    assert diagrams and all("diagrams" in c.source for c in diagrams), "a cell tagged diagram draws with llmlab.diagrams"
    predictions = [i for i, c in enumerate(cells) if "predict" in _tags(c)]
    assert len(predictions) >= 2, "at least two 'predict, then run' moments"
    for i in predictions:
        guess = re.search(r"^(\w+)\s*=\s*None\b", cells[i].source, re.M)
        assert guess, f"cell {i}: a predict cell sets a variable to None for the learner's number"
        after = next(c for c in cells[i + 1:] if c.cell_type == "code")
        assert "reveal(" in after.source and guess.group(1) in after.source, f"cell {i}: the next cell reveals it"
    last = [c for c in cells if c.cell_type == "code"][-1]
    assert "test-yourself" in _tags(last), "the last code cell is the test-yourself cell"
    ids = re.findall(r"['\"]([a-z]+-\d{3})['\"]", last.source)
    assert 3 <= len(ids) <= 5 and "test_yourself(" in last.source
    for qid in ids:
        link = interview.question(qid).link  # refuses an unknown id
        if path in TAUGHT:  # 00, 13 and 14 ask about what they use from the topic notebooks
            assert link.split("#")[0] == path.stem, f"{qid} is taught in another notebook"


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_markdown_cells_are_short(path):
    for i, cell in enumerate(read(path).cells):
        if cell.cell_type == "markdown":
            prose = [ln for ln in cell.source.splitlines() if not ln.lstrip().startswith("|")]
            words = len(" ".join(prose).split())
            assert words <= MAX_WORDS, f"markdown cell {i} has {words} words (at most {MAX_WORDS})"


@pytest.mark.parametrize("path", ENGINE, ids=lambda p: p.stem)
def test_demos_run_the_learners_functions(path):
    """From 08 on, demos call the learner's functions through ``yours(fn, reference)``: most exercises drive one."""
    nb = read(path)
    names = _exercise_names(nb)
    demo = "\n".join(c.source for c in nb.cells if c.cell_type == "code" and not {"exercise", "check"} & _tags(c))
    driven = [n for n in names if re.search(rf"yours\(\s*{n}\b", demo)]
    assert len(driven) * 2 >= len(names), f"only {driven} of {names} drive a demo"


def test_readme_curriculum_shows_time_and_difficulty():
    table = (ROOT / "README.md").read_text()
    for path in SOLUTIONS:
        h = header(path)
        row = re.search(rf"^\| {label(path)} \|.*$", table, re.M)
        assert row, f"no README row for {path.stem}"
        hours = f"{h['hours']:g} h"
        assert hours in row.group(0), f"README row {label(path)} should say {hours}"
        counts = [sum(len(s) == n for s in h["exercises"].values()) for n in (1, 2, 3)]
        marks = " ".join(f"{'★' * n}×{k}" for n, k in zip((1, 2, 3), counts) if k)
        assert marks in row.group(0), f"README row {label(path)} should say {marks}"
