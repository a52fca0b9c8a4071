"""The notebook a class run grades: the solution's, with the learner's code in its exercise cells.

Nothing of a submission but the *code of its exercise cells* is used: markdown, setup and demo cells,
check cells, every cell's metadata and id, the points and the order all come from ``solutions/``. A
learner who edits a check cell, tags it ``raises-exception``, adds a cell with a grade id, or deletes
a check changes nothing. Exercise cells are matched to the solution's by cell id (the learner's copy is
generated from the solution, ids included), else by their order among the cells tagged ``exercise``;
an exercise with no match keeps the stub, which raises ``NotImplementedError``.

Check cells are read, not run: each is ``<module>.check_<name>(<function>)``, whose module is found among
the notebook's imports of ``llmlab.grading``. The grader calls that check itself, in its own process.

This module also says when an exercise *uses the reference* instead of implementing it: its cell
imports the llmlab function of the same name (or reaches it through a module imported anywhere in the
notebook).
"""
from __future__ import annotations

import ast
import functools
from dataclasses import dataclass, field
from pathlib import Path

from llmlab.course.build import strip_solutions
from llmlab.course.notebooks import graded_checks

_PACKAGE = Path(__file__).resolve().parents[1]


@dataclass
class Step:
    """One code cell of the graded notebook, in order."""

    kind: str                   # "code" (the course's own), "exercise" (the learner's code), "check"
    source: str                 # what runs in the kernel (for a check: its statements other than the call)
    cell: int                   # index of the cell in the solution
    check_id: str = ""
    points: float = 0.0
    module: str = ""            # llmlab.grading.<topic>
    function: str = ""          # check_<name>
    names: list[str] = field(default_factory=list)  # the notebook names the check is given
    matched: str = ""           # for an exercise: "id", "order" or "stub"


def _tags(cell) -> list:
    tags = cell.get("metadata", {}).get("tags", [])
    return tags if isinstance(tags, list) else []


def _grading_aliases(tree: ast.AST, aliases: dict) -> None:
    """Record the names a cell binds to ``llmlab.grading`` modules and check functions."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:
                if node.module == "llmlab.grading":
                    aliases[a.asname or a.name] = (f"llmlab.grading.{a.name}", None)
                elif node.module.startswith("llmlab.grading."):
                    aliases[a.asname or a.name] = (node.module, a.name)
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("llmlab.grading.") and a.asname:
                    aliases[a.asname] = (a.name, None)


def parse_check(source: str, aliases: dict) -> tuple[str, str, list[str], str]:
    """(module, check function, argument names, the rest of the cell) of a check cell of a solution."""
    tree = ast.parse(source)
    _grading_aliases(tree, aliases)
    calls, rest = [], []
    for stmt in tree.body:
        call = stmt.value if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call) else None
        target = None
        if call is not None and isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Name):
            mod = aliases.get(call.func.value.id)
            if mod and mod[1] is None and call.func.attr.startswith("check_"):
                target = (mod[0], call.func.attr)
        elif call is not None and isinstance(call.func, ast.Name) and call.func.id in aliases:
            mod, fn = aliases[call.func.id]
            if fn and fn.startswith("check_"):
                target = (mod, fn)
        if target and not call.keywords and all(isinstance(a, ast.Name) for a in call.args):
            calls.append((*target, [a.id for a in call.args]))
        else:
            rest.append(stmt)
    if len(calls) != 1:
        raise ValueError(f"a check cell must call one llmlab.grading check on notebook names, found {len(calls)}:\n{source}")
    return (*calls[0], ast.unparse(ast.Module(body=rest, type_ignores=[])))


def plan(solution: dict, submission: dict | None) -> list[Step]:
    """The steps of the graded notebook (``submission`` None: the untouched stub). Both are notebooks as
    :func:`llmlab.course.notebooks.load` reads them."""
    checks = {c.id: c.points for c in graded_checks(solution)}
    theirs = [c for c in (submission["cells"] if submission is not None else []) if c.get("cell_type") == "code"]
    by_id = {c.get("id"): c for c in theirs if c.get("id")}
    tagged = [c for c in theirs if "exercise" in _tags(c)]
    ours = [c for c in solution["cells"] if c.get("cell_type") == "code" and "exercise" in _tags(c)]
    by_order = dict(zip((c.get("id") for c in ours), tagged)) if len(tagged) == len(ours) else {}
    steps, aliases = [], {}
    for i, cell in enumerate(solution["cells"]):
        if cell.get("cell_type") != "code":
            continue
        source = cell["source"]
        meta = cell.get("metadata", {}).get("grade")
        if isinstance(meta, dict) and "id" in meta:
            module, function, names, rest = parse_check(source, aliases)
            check_id = str(meta["id"])
            steps.append(Step("check", rest, i, check_id, checks[check_id], module, function, names))
        elif "exercise" in _tags(cell):
            if cell.get("id") in by_id:
                code, how = _source(by_id[cell["id"]]), "id"
            elif cell.get("id") in by_order:
                code, how = _source(by_order[cell["id"]]), "order"
            else:
                code, how = strip_solutions(source), "stub"
            steps.append(Step("exercise", code, i, matched=how))
        else:
            if _parses(source):
                _grading_aliases(ast.parse(source), aliases)
            steps.append(Step("code", source, i))
    return steps


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(map(str, src)) if isinstance(src, list) else str(src)


def defining_exercise(steps: list[Step], check: Step, name: str) -> Step | None:
    """The exercise cell before ``check`` that defines ``name`` (else the nearest exercise before it)."""
    before = [s for s in steps[:steps.index(check)] if s.kind == "exercise"]
    for s in reversed(before):
        if _parses(s.source) and any(
                isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n.name == name
                or isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Store)
                or isinstance(n, ast.alias) and (n.asname or n.name) == name
                for n in ast.walk(ast.parse(s.source))):
            return s
    return before[-1] if before else None


def _parses(source: str) -> bool:
    try:
        ast.parse(source)
        return True
    except SyntaxError:  # a cell with IPython magics
        return False


# ---------------------------------------------------------------------------------- using the reference


@functools.lru_cache(maxsize=1)
def reference_index() -> dict[str, frozenset[str]]:
    """{function name: the llmlab modules that define it}, read from the package's source (reference code
    only: not the grader, not the course tools)."""
    index: dict[str, set[str]] = {}
    for path in sorted(_PACKAGE.rglob("*.py")):
        rel = path.relative_to(_PACKAGE.parent).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        if parts[1:2] in (("grading",), ("course",)):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                index.setdefault(node.name, set()).add(".".join(parts))
    return {k: frozenset(v) for k, v in index.items()}


def _module_bindings(sources: list[str]) -> dict[str, str]:
    """{name: dotted llmlab module} for every ``import llmlab...`` / ``from llmlab... import module`` in the cells."""
    out = {}
    for src in sources:
        if not _parses(src):
            continue
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name == "llmlab" or a.name.startswith("llmlab."):
                        out[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and \
                    (node.module == "llmlab" or node.module.startswith("llmlab.")):
                for a in node.names:
                    out[a.asname or a.name] = f"{node.module}.{a.name}"
    return out


def _dotted(node: ast.AST, bindings: dict[str, str]) -> str | None:
    if isinstance(node, ast.Name):
        return bindings.get(node.id)
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value, bindings)
        return f"{base}.{node.attr}" if base else None
    return None


def uses_reference(exercise_source: str, name: str, notebook_sources: list[str]) -> str:
    """Why the exercise cell defining ``name`` uses llmlab's own ``name`` ('' when it does not)."""
    homes = reference_index().get(name, frozenset())
    if not homes or not _parses(exercise_source):
        return ""
    bindings = _module_bindings([*notebook_sources, exercise_source])
    for node in ast.walk(ast.parse(exercise_source)):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module in homes:
            if any(a.name in (name, "*") for a in node.names):
                return f"the exercise cell imports {name} from {node.module}"
        if isinstance(node, ast.Attribute) and node.attr == name:
            base = _dotted(node.value, bindings)
            if base in homes:
                return f"the exercise cell uses {base}.{name}"
    return ""
