"""Reading notebooks and the facts the course keeps in them (check cells, their ids and points)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import nbformat

SOLUTIONS_ENV = "LLMLAB_SOLUTIONS"


@dataclass(frozen=True)
class GradedCheck:
    id: str
    points: float


def read(path: str | Path) -> nbformat.NotebookNode:
    """Read a notebook (nbformat 4); raises ``ValueError`` with the reason if it is not a valid one."""
    try:
        nb = nbformat.read(str(path), as_version=4)
        nbformat.validate(nb)
    except Exception as e:  # JSON errors, schema errors, unreadable file
        raise ValueError(f"{path} is not a valid notebook: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from e
    return nb


def graded_checks(nb: nbformat.NotebookNode) -> list[GradedCheck]:
    """The check cells of a notebook, in order: cells whose metadata has ``grade: {id, points}``."""
    out = []
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("grade")
        if cell.cell_type == "code" and isinstance(meta, dict) and "id" in meta:
            out.append(GradedCheck(str(meta["id"]), float(meta.get("points", 1))))
    return out


def solutions_dir() -> Path:
    """Where the solution notebooks live: ``$LLMLAB_SOLUTIONS``, else ``solutions/`` beside the package."""
    env = os.environ.get(SOLUTIONS_ENV)
    return Path(env) if env else Path(__file__).resolve().parents[2] / "solutions"


def expected_checks(notebook: str | Path) -> list[GradedCheck]:
    """The checks a notebook is graded on: those of the solution with the same file name.

    Taking them from the solution means a learner who deletes a check cell still scores 0 for it.
    A notebook with no solution (an extra one) is graded on its own check cells.
    """
    solution = solutions_dir() / Path(notebook).name
    if solution.is_file():
        return graded_checks(read(solution))
    return graded_checks(read(notebook))
