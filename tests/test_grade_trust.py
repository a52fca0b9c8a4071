"""A red-team class: one learner per way of getting a grade without the work, or of harming the run,
graded by `python -m llmlab.course grade -j 2` beside honest learners.

Every attacker scores 0 on what they attacked (or gets the status that names what they did); every honest
learner keeps exactly their score; nothing on disk outside the run's scratch space changes; no process a
kernel started survives; and the command line refuses nonsense limits and ambiguous folders.
"""
import csv
import hashlib
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nbformat
import pytest

from llmlab.course import sandbox

ROOT = Path(__file__).resolve().parents[1]
NB00, NB13 = "00_start_here.ipynb", "13_interview_bank.ipynb"
MARKER = "llmlab-redteam-survivor"

pytestmark = pytest.mark.skipif(sandbox.choose("auto").kind != "bwrap" and not os.environ.get("LLMLAB_REQUIRE_SANDBOX"),
                                reason="the red-team class needs bubblewrap (apt-get install bubblewrap)")


def _stub(name: str = NB00) -> nbformat.NotebookNode:
    return nbformat.read(ROOT / "notebooks" / name, as_version=4)


def _cells(nb, tag: str) -> list:
    return [c for c in nb.cells if tag in c.metadata.get("tags", [])]


def _solved(nb, k: int, name: str = NB00) -> None:
    """Put the solution's code into the k-th exercise cell of ``nb``."""
    solution = {c.id: c for c in nbformat.read(ROOT / "solutions" / name, as_version=4).cells}
    cell = _cells(nb, "exercise")[k]
    cell.source = "\n".join(ln for ln in solution[cell.id].source.split("\n")
                            if ln.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION"))


def _prefix(nb, code: str, k: int = 0) -> None:
    """Put ``code`` in front of the k-th exercise cell (the stub below it still raises NotImplementedError)."""
    cell = _cells(nb, "exercise")[k]
    cell.source = textwrap.dedent(code).strip() + "\n\n" + cell.source


def _suffix(nb, code: str, k: int = 0) -> None:
    """Put ``code`` after the k-th exercise cell's stub, so that what it defines replaces the stub."""
    cell = _cells(nb, "exercise")[k]
    cell.source = cell.source + "\n\n" + textwrap.dedent(code).strip() + "\n"


def _write(folder: Path, nb, name: str = NB00) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / name)


# ------------------------------------------------------------------------------------------- the class


def _attackers(klass: Path) -> dict[str, object]:
    """{learner: notebook} for every attack on notebook 00 (each an untouched stub besides its attack)."""
    honest = klass / "honest_full" / NB00
    out = {}

    nb = _stub()
    for c in _cells(nb, "check"):
        c.source = "pass"
    out["check_pass"] = nb

    nb = _stub()
    for c in _cells(nb, "check"):
        c.source = f'print("✅ {c.metadata["grade"]["id"]}: 5 checks passed")'
    out["check_print"] = nb

    nb = _stub()
    for c in _cells(nb, "check"):
        c.source = "try:\n" + textwrap.indent(c.source, "    ") + "\nexcept BaseException:\n    pass"
    out["check_try"] = nb

    nb = _stub()
    for c in _cells(nb, "check"):
        c.metadata["tags"] = ["check", "raises-exception"]
        c.source = "# NBVAL_RAISES_EXCEPTION\n" + c.source
    out["nbval_markers"] = nb

    nb = _stub()
    _prefix(nb, "get_ipython().set_custom_exc((BaseException,), lambda *args, **kwargs: None)")
    out["custom_exc"] = nb

    nb = _stub()
    _prefix(nb, """
        import llmlab.grading.core as core
        import llmlab.grading.start_here as sh
        sh.check_char_and_byte_counts = sh.check_normalize = lambda fn: print("✅ 00: 9 checks passed")
        core.Check.expect = core.Check.fail = core.Check.close = lambda *args, **kwargs: None
    """)
    out["patch_checks"] = nb

    nb = _stub()
    _prefix(nb, """
        class _Pass:
            def __getattr__(self, name):
                return lambda *args, **kwargs: print("✅ all checks passed")
        start_here = _Pass()
    """, k=1)
    out["rebind_grade"] = nb

    nb = _stub()
    for c in list(_cells(nb, "check")):
        extra = nbformat.v4.new_code_cell(f'print("✅ {c.metadata["grade"]["id"]}: 5 checks passed")')
        extra.metadata["grade"] = dict(c.metadata["grade"])            # a later cell with the same id
        one = nbformat.v4.new_code_cell("1")
        one.metadata["grade"] = dict(c.metadata.pop("grade"))          # the id moved to a cell that is just 1
        i = nb.cells.index(c)
        nb.cells[i + 1:i + 1] = [one, extra]
    out["grade_ids"] = nb

    nb = _stub()
    _cells(nb, "exercise")[0].source = textwrap.dedent("""
        class Always(tuple):
            def __eq__(self, other):
                return True
            def __ne__(self, other):
                return False
            __hash__ = tuple.__hash__

        def char_and_byte_counts(text):
            return Always((0, 0))
    """)
    out["always_equal"] = nb

    nb = _stub()
    _suffix(nb, f"""
        import json
        for path in [{str(honest)!r}, {str(ROOT / "solutions" / NB00)!r}]:
            for cell in json.load(open(path))["cells"]:
                if "exercise" in cell["metadata"].get("tags", []):
                    exec("".join(cell["source"]))
    """)
    out["exec_classmate"] = nb

    nb = _stub()
    _suffix(nb, f"""
        import subprocess, sys
        sys.path.insert(0, {str(ROOT)!r})
        try:
            from tests.mutants.start_here import REFERENCE
            char_and_byte_counts = REFERENCE["check_char_and_byte_counts"]
        except ImportError:
            pass
        source = subprocess.run(["git", "-C", {str(ROOT)!r}, "show", "HEAD:solutions/{NB00}"],
                                capture_output=True, text=True).stdout
        assert source, "no history to read"
    """)
    out["read_solutions"] = nb

    nb = _stub()
    _prefix(nb, f"""
        import glob, json, os
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    parts = open(f"/proc/{{pid}}/cmdline", "rb").read().split(b"\\0")
                except OSError:
                    continue
                for part in parts:
                    if part.endswith(b".json"):
                        try:
                            open(part, "w").write(json.dumps({{"got": 999, "total": 2}}))
                        except OSError:
                            pass
        for path in glob.glob("/tmp/**/*.json", recursive=True) + glob.glob({str(klass)!r} + "/**/*.ipynb", recursive=True):
            try:
                open(path, "w").write("{{}}")
            except OSError:
                pass
    """)
    out["rewrite_scores"] = nb

    nb = _stub()
    _prefix(nb, f"""
        import llmlab.grading.core as core
        for path in [core.__file__, {str(ROOT / "solutions" / NB00)!r}]:
            try:
                with open(path, "a") as f:
                    f.write("\\nCheck.expect = lambda *a, **k: None\\n")
            except OSError:
                pass
    """)
    out["append_core"] = nb

    nb = _stub()
    _prefix(nb, """
        import os, signal
        for pid in os.listdir("/proc"):
            if pid.isdigit() and int(pid) != os.getpid():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except OSError:
                    pass
        try:
            os.kill(-1, signal.SIGKILL)
        except OSError:
            pass
    """)
    out["kill_grader"] = nb

    nb = _stub()
    _prefix(nb, """
        written = 0
        try:
            with open("/dev/shm/hog", "wb") as f:
                for _ in range(5 * 1024):  # 5 GiB, 1 MiB at a time
                    f.write(b"\\0" * 2**20)
                    written += 1
        except OSError:
            pass
        print(f"wrote {written} MiB to /dev/shm")
    """)
    out["fill_shm"] = nb

    nb = _stub()
    _prefix(nb, f"""
        import subprocess, sys
        code = "import os, time\\nif os.fork() == 0:\\n    os.setsid()\\n    time.sleep(600)"
        subprocess.Popen([sys.executable, "-c", code, {MARKER!r}], start_new_session=True)
    """)
    out["detached"] = nb
    return out


def _attackers13() -> dict[str, object]:
    """Attacks on notebook 13: the interview bank's answers, and the reference instead of one's own code."""
    out = {}
    nb = _stub(NB13)
    ids = {"perplexity": "lm-901", "bpe_merges": "tok-901", "score_memory": "attn-901", "kv_cache": "inf-901",
           "speculative_tokens": "inf-902", "int4_memory": "quant-901", "pipeline_bubble": "par-901"}
    for cell in _cells(nb, "exercise"):
        name = cell.source.split("def ")[1].split("(")[0]
        if name in ids:
            cell.source = f"def {name}():\n    from llmlab import interview\n    return interview.question({ids[name]!r}).answer\n"
        elif name in ("megatron_all_reduce", "bf16"):
            qid = "par-902" if name == "megatron_all_reduce" else "mp-901"
            cell.source = (f"def {name}():\n    from llmlab import interview\n"
                           f"    q = interview.question({qid!r})\n"
                           f"    return 'ABCDEF'[[o['correct'] for o in q.options].index(True)]\n")
    out["bank_answers"] = nb

    nb = _stub(NB13)
    cell = next(c for c in _cells(nb, "exercise") if "def softmax" in c.source)
    cell.source = "from llmlab.nn.attention import softmax\n"
    out["imports_reference"] = nb

    nb = _stub(NB13)
    cell = next(c for c in _cells(nb, "exercise") if "def softmax" in c.source)
    cell.source = 'import importlib\nsoftmax = getattr(importlib.import_module("llmlab.nn." + "attention"), "soft" + "max")\n'
    out["reference_object"] = nb
    return out


def make_class(root: Path) -> Path:
    """The red-team class under ``root``: classA (honest learners and one attacker per attack) and classB."""
    a, b = root / "classA", root / "classB"
    shutil.copy(ROOT / "solutions" / NB00, _mk(a / "honest_full"))
    shutil.copy(ROOT / "solutions" / NB13, a / "honest_full")
    half = _stub()
    _solved(half, 0)
    _write(a / "honest_half", half)
    for learner, nb in _attackers(a).items():
        _write(a / learner, nb)
    for learner, nb in _attackers13().items():
        _write(a / learner, nb, NB13)
    # Files that are not course notebooks of the learner: a bonus notebook worth 1000, symbolic links.
    bonus = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("pass")])
    bonus.cells[0].metadata["grade"] = {"id": "99.bonus", "points": 1000}
    _write(a / "bonus", _stub())
    nbformat.write(bonus, a / "bonus" / "99_bonus.ipynb")
    _mk(a / "link_classmate")
    os.symlink(a / "honest_full" / NB00, a / "link_classmate" / NB00)
    _mk(a / "link_solutions")
    os.symlink(ROOT / "solutions" / NB00, a / "link_solutions" / NB00)
    # Another class with a learner of the same name, half done: a row of its own.
    _write(b / "honest_full", half)
    return root


@pytest.fixture(scope="module")
def klass(tmp_path_factory):
    return make_class(tmp_path_factory.mktemp("redteam"))


def _mk(d: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    return d


def _digest(*folders: Path) -> dict:
    skip = {".git", ".venv", "__pycache__", ".pytest_cache", ".hypothesis", ".ipynb_checkpoints"}
    out = {}
    for folder in folders:
        for p in sorted(folder.rglob("*")):
            if skip & set(p.relative_to(folder).parts):
                continue
            out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
    return out


def _survivors() -> list[str]:
    found = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if MARKER.encode() in (p / "cmdline").read_bytes():
                    found.append(p.name)
            except OSError:
                pass
    return found


def _shm() -> set:
    return {p.name for p in Path("/dev/shm").iterdir()} if Path("/dev/shm").is_dir() else set()


@pytest.fixture(scope="module")
def graded(klass, tmp_path_factory):
    course = [ROOT / "llmlab", ROOT / "solutions", ROOT / "notebooks", ROOT / "tests"]
    before, shm_before = _digest(*course, klass), _shm()
    out = tmp_path_factory.mktemp("out") / "grades.csv"
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "llmlab.course", "grade", str(klass / "classA"), str(klass / "classB"),
                           "--csv", str(out), "-j", "2", "--cell-timeout", "60", "--memory-gb", "4"],
                          capture_output=True, text=True, timeout=1500, cwd=ROOT)
    print(f"graded the red-team class in {time.perf_counter() - start:.0f} s")
    print(proc.stdout, proc.stderr)
    time.sleep(1)
    after = _digest(*course, klass)
    return {"proc": proc, "rows": list(csv.DictReader(out.open(encoding="utf-8"))) if out.is_file() else [],
            "changed": {k for k in set(before) | set(after) if before.get(k) != after.get(k)},
            "shm": _shm() - shm_before, "survivors": _survivors()}


def _grade(graded, learner: str, notebook: str = "00_start_here") -> tuple[float, str]:
    row = next(r for r in graded["rows"] if r["learner"] == learner and r["notebook"] == notebook)
    return float(row["got"]), row["status"]


def test_the_run_finishes_with_a_table(graded):
    proc = graded["proc"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "classA/honest_full" in proc.stdout and "classB/honest_full" in proc.stdout
    assert "not isolated" not in proc.stdout


def test_honest_learners_keep_their_scores(graded):
    assert _grade(graded, "classA/honest_full") == (2, "ok")
    assert _grade(graded, "classA/honest_full", "13_interview_bank") == (11, "ok")
    assert _grade(graded, "classA/honest_half") == (1, "ok")
    assert _grade(graded, "classB/honest_full") == (1, "ok")  # same folder name, another class: its own row


@pytest.mark.parametrize("learner", ["check_pass", "check_print", "check_try", "nbval_markers", "custom_exc",
                                     "patch_checks", "rebind_grade", "grade_ids", "always_equal", "exec_classmate",
                                     "read_solutions", "rewrite_scores", "append_core", "kill_grader", "fill_shm",
                                     "detached", "bonus"])
def test_attacks_on_notebook_00_score_nothing(graded, learner):
    got, status = _grade(graded, f"classA/{learner}")
    assert got == 0, (learner, status)


def test_attacks_on_notebook_13(graded):
    assert _grade(graded, "classA/bank_answers", "13_interview_bank")[0] == 0
    for learner in ("imports_reference", "reference_object"):
        got, status = _grade(graded, f"classA/{learner}", "13_interview_bank")
        assert (got, status) == (0, "uses the reference"), learner


def test_files_that_are_not_course_notebooks_are_named_not_scored(graded):
    statuses = {(r["learner"], r["notebook"]): r["status"] for r in graded["rows"]}
    assert statuses[("classA/bonus", "99_bonus")] == "not a course notebook"
    assert statuses[("classA/link_classmate", "00_start_here")] == "symlink refused"
    assert statuses[("classA/link_solutions", "00_start_here")] == "symlink refused"
    assert all(float(r["got"]) == 0 for r in graded["rows"] if r["learner"].startswith("classA/link_"))
    assert "99_bonus" not in graded["proc"].stdout.splitlines()[0]  # never a column of the table


def test_nothing_changed_on_disk_and_nothing_survived(graded):
    assert graded["changed"] == set()
    assert graded["shm"] == set()
    assert graded["survivors"] == []


@pytest.mark.parametrize("args,message", [
    (["--memory-gb", "-1"], "--memory-gb must be a positive number"),
    (["--memory-gb", "0"], "--memory-gb must be a positive number"),
    (["--timeout", "-1"], "--timeout must be a positive number"),
    (["--cell-timeout", "0"], "--cell-timeout must be a positive number"),
    (["-j", "0"], "-j/--jobs must be"),
    (["--memory-gb", "100000"], "is more than this machine's"),
])
def test_nonsense_limits_are_refused(tmp_path, args, message):
    (tmp_path / "alice").mkdir()
    shutil.copy(ROOT / "notebooks" / NB00, tmp_path / "alice")
    proc = subprocess.run([sys.executable, "-m", "llmlab.course", "grade", str(tmp_path), *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr


def test_the_default_memory_fits_the_jobs():
    from llmlab.course.grade import check_limits, default_memory_gb, machine_memory

    for jobs in (1, 2, 4, 8):
        check_limits(jobs, 120, 900, default_memory_gb(jobs))
        assert default_memory_gb(jobs) * jobs <= machine_memory() / 2**30


def test_a_notebook_beside_learner_folders_is_refused(tmp_path):
    (tmp_path / "alice").mkdir()
    shutil.copy(ROOT / "notebooks" / NB00, tmp_path / "alice")
    shutil.copy(ROOT / "notebooks" / NB00, tmp_path)  # a stray notebook beside the learner folders
    proc = subprocess.run([sys.executable, "-m", "llmlab.course", "grade", str(tmp_path)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2 and "holds notebooks and learner folders" in proc.stderr, proc.stderr
