"""Build the learners' notebooks from the solutions.

For every ``solutions/NN_topic.ipynb`` the builder writes ``notebooks/NN_topic.ipynb`` with

* each ``### BEGIN SOLUTION`` … ``### END SOLUTION`` block replaced by ``raise NotImplementedError``
  at the block's indentation (so the exercise cell still runs and defines the stub);
* outputs and execution counts cleared;
* ``metadata.llmlab.source_hash``: a hash of the generated cells' sources. A notebook whose cells no
  longer match its hash was edited by a learner, and is never overwritten without ``force``.
  Outputs are not part of the hash: a notebook that was only run can be rebuilt.
"""
from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from typing import TYPE_CHECKING

from llmlab.course import notebooks

if TYPE_CHECKING:
    import nbformat

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
STUB = ("# YOUR CODE HERE", "raise NotImplementedError")


def strip_solutions(source: str) -> str:
    """Replace every solution block of a cell's source with an indented ``raise NotImplementedError``."""
    out, inside = [], False
    for n, line in enumerate(source.split("\n"), 1):
        stripped = line.strip()
        if stripped.startswith(BEGIN):
            if inside:
                raise ValueError(f"line {n}: {BEGIN} inside another solution block")
            indent = line[: len(line) - len(line.lstrip())]
            out.extend(indent + s for s in STUB)
            inside = True
        elif stripped.startswith(END):
            if not inside:
                raise ValueError(f"line {n}: {END} without {BEGIN}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{BEGIN} is never closed by {END}")
    return "\n".join(out)


def source_hash(nb: nbformat.NotebookNode) -> str:
    cells = [[c.cell_type, c.source] for c in nb.cells]
    return hashlib.sha256(json.dumps(cells, ensure_ascii=False).encode()).hexdigest()[:16]


def clear_outputs(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cell.metadata.pop("execution", None)
    return nb


def student_notebook(solution: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    nb = clear_outputs(copy.deepcopy(solution))
    for n, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            try:
                cell.source = strip_solutions(cell.source)
            except ValueError as e:
                raise ValueError(f"{name}, cell {n}: {e}") from None
    nb.metadata["llmlab"] = {"generated_from": f"solutions/{name}", "source_hash": source_hash(nb)}
    return nb


def dumps(nb: nbformat.NotebookNode) -> str:
    import nbformat  # slow to import: only where a notebook is written

    return nbformat.writes(nb, version=4).rstrip("\n") + "\n"


def is_edited(path: Path) -> bool:
    """Whether a generated notebook was changed since the builder wrote it (or is not ours at all)."""
    try:
        nb = notebooks.read(path)
    except ValueError:
        return True
    return nb.metadata.get("llmlab", {}).get("source_hash") != source_hash(nb)


@dataclass
class Result:
    path: Path
    status: str  # "written", "unchanged", "refused", "out of date", "stale"


def build(solutions: Path, target: Path, force: bool = False, check: bool = False) -> list[Result]:
    """Generate ``target/NAME`` for every ``solutions/NAME``; with ``check``, only compare."""
    if not solutions.is_dir():
        raise FileNotFoundError(f"no solutions folder at {solutions}")
    results = []
    names = sorted(p.name for p in solutions.glob("*.ipynb"))
    for name in names:
        out = target / name
        text = dumps(student_notebook(notebooks.read(solutions / name), name))
        current = out.read_text(encoding="utf-8") if out.is_file() else None
        if current == text:
            results.append(Result(out, "unchanged"))
        elif check:
            results.append(Result(out, "out of date"))
        elif current is not None and not force and is_edited(out):
            results.append(Result(out, "refused"))
        else:
            target.mkdir(parents=True, exist_ok=True)
            out.write_text(text, encoding="utf-8")
            results.append(Result(out, "written"))
    if check:
        results += [Result(p, "stale") for p in sorted(target.glob("*.ipynb")) if p.name not in names]
    return results


def clean(paths: list[Path]) -> list[Path]:
    """Clear outputs and execution counts of solution notebooks in place; returns those changed."""
    changed = []
    for path in paths:
        before = path.read_text(encoding="utf-8")
        after = dumps(clear_outputs(notebooks.read(path)))
        if after != before:
            path.write_text(after, encoding="utf-8")
            changed.append(path)
    return changed
