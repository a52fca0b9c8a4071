"""Reading notebooks and the facts the course keeps in them (check cells, their ids and points)."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

SOLUTIONS_ENV = "LLMLAB_SOLUTIONS"
KERNEL_DIED = "the kernel died (the code crashed it, ran out of memory, or called os._exit/sys.exit)"


@dataclass(frozen=True)
class GradedCheck:
    id: str
    points: float


def read(path: str | Path):
    """Read a notebook (nbformat 4, validated); raises ``ValueError`` with the reason if it is not a valid one."""
    import nbformat  # 2 s to import (its JSON-schema validator): only where a notebook is validated

    try:
        nb = nbformat.read(str(path), as_version=4)
        nbformat.validate(nb)
    except Exception as e:  # JSON errors, schema errors, unreadable file
        raise ValueError(f"{path} is not a valid notebook: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from e
    return nb


def load(path: str | Path) -> dict:
    """A notebook read as plain JSON, each cell's source joined into one string (no validation: for
    notebooks that :func:`read` has already accepted)."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    for cell in nb.get("cells", []):
        if isinstance(cell.get("source"), list):
            cell["source"] = "".join(cell["source"])
    return nb


def graded_checks(nb: dict) -> list[GradedCheck]:
    """The check cells of a notebook, in order: cells whose metadata has ``grade: {id, points}``."""
    out = []
    for cell in nb["cells"]:
        meta = cell.get("metadata", {}).get("grade")
        if cell.get("cell_type") == "code" and isinstance(meta, dict) and "id" in meta:
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
