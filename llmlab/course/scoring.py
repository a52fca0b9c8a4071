"""A pytest plugin that turns nbval's check cells into a score.

Loaded by the repository's ``conftest.py`` (so ``pytest --nbval-lax notebooks/X.ipynb`` scores) and
with ``-p llmlab.course.scoring`` by ``python -m llmlab.course grade``. It prints, after pytest's
own summary::

    SCORE 01_language_models: 7/10
      ❌ 01.perplexity: … Hint: …

A check cell is one whose metadata has ``grade: {id, points}``; it scores its points when it ran
without error. Failed, skipped and xfailed checks (nbval xfails the cells after a time-out) score
0, and so do expected checks that are missing from the notebook. ``--llmlab-score-json FILE``
also writes the scores as JSON for the grade CLI.
"""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from llmlab.course import notebooks

_KEY = "llmlab_grade"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_NAME = "llmlab-scoreboard"


def pytest_addoption(parser):
    parser.getgroup("llmlab").addoption(
        "--llmlab-score-json", default=None, metavar="FILE", help="write the notebooks' scores to FILE as JSON"
    )


def pytest_configure(config):
    if not config.pluginmanager.has_plugin(_NAME):
        config.pluginmanager.register(Scoreboard(config), _NAME)
        _watch_for_dead_kernels()


KERNEL_DIED = notebooks.KERNEL_DIED


def _watch_for_dead_kernels() -> None:
    """Make nbval notice a dead kernel within a second instead of at the cell time-out.

    nbval 0.11 blocks on the kernel's reply for the whole ``--nbval-cell-timeout``; a kernel that
    died never replies, so a crashed notebook would cost the full time-out and be reported as one.
    We wait in one-second slices and check that the kernel process is alive between them.
    """
    from queue import Empty

    from nbval.kernel import RunningKernel

    if getattr(RunningKernel.await_reply, "_llmlab", False):
        return

    def await_reply(self, msg_id, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = 1.0 if deadline is None else max(0.0, min(1.0, deadline - time.monotonic()))
            try:
                msg = self.get_message(stream="shell", timeout=wait)
            except Empty:
                if not self.is_alive():
                    raise RuntimeError(KERNEL_DIED) from None
                if deadline is not None and time.monotonic() >= deadline:
                    raise
                continue
            if msg["parent_header"].get("msg_id") == msg_id:
                if msg["content"]["status"] == "aborted":
                    raise RuntimeError("Kernel aborted execution request")
                return

    await_reply._llmlab = True
    RunningKernel.await_reply = await_reply


def _failure_line(report) -> str:
    """The learner-facing line of a failed report: the check's ❌ line, else the error's last line."""
    text = _ANSI.sub("", report.longreprtext or "")
    for line in text.splitlines():
        if "❌" in line:
            return line.strip()
    if hasattr(report, "wasxfail"):
        return f"not run: {report.wasxfail}"
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else "failed"


class Scoreboard:
    """Collects check-cell outcomes per notebook (also from xdist workers, via user_properties)."""

    def __init__(self, config):
        self.config = config
        self.notebooks: dict[str, dict] = {}

    def record(self, nodeid: str) -> dict:
        """The score record of the notebook a node belongs to, created with its expected checks."""
        rel = nodeid.split("::")[0]
        if rel not in self.notebooks:
            path = Path(self.config.rootpath, rel)
            try:
                expected, error = notebooks.expected_checks(path), ""
            except ValueError as e:
                expected, error = [], str(e)
            self.notebooks[rel] = {
                "path": str(path),
                "notebook": path.stem,
                "error": error,
                "seconds": 0.0,
                "checks": {ch.id: {"points": ch.points, "passed": False, "message": "check cell not found"}
                           for ch in expected},
            }
        return self.notebooks[rel]

    def pytest_collection_modifyitems(self, items):
        for item in items:
            cell = getattr(item, "cell", None)
            if cell is None:
                continue
            self.record(item.nodeid)
            meta = cell.get("metadata", {}).get("grade")
            if isinstance(meta, dict) and "id" in meta:
                item.user_properties.append((_KEY, str(meta["id"])))

    def pytest_collectreport(self, report):
        if report.failed and report.nodeid.endswith(".ipynb"):
            rec = self.record(report.nodeid)
            rec["error"] = rec["error"] or _failure_line(report)

    def pytest_runtest_logreport(self, report):
        if report.nodeid.split("::")[0].endswith(".ipynb"):
            self.record(report.nodeid)["seconds"] += report.duration
        check_id = next((v for k, v in report.user_properties if k == _KEY), None)
        if check_id is None:
            return
        checks = self.record(report.nodeid)["checks"]
        if check_id not in checks:  # a check the solution does not have: not part of the grade
            return
        if report.when == "call" and report.passed and not hasattr(report, "wasxfail"):
            checks[check_id].update(passed=True, message="")
        elif report.failed or report.skipped:
            checks[check_id].update(passed=False, message=_failure_line(report) if report.longrepr else "skipped")

    def scores(self) -> list[dict]:
        out = []
        for rec in self.notebooks.values():
            got = sum(ch["points"] for ch in rec["checks"].values() if ch["passed"])
            total = sum(ch["points"] for ch in rec["checks"].values())
            out.append({**rec, "got": got, "total": total})
        return out

    @pytest.hookimpl(hookwrapper=True, tryfirst=True)
    def pytest_terminal_summary(self, terminalreporter):
        yield  # print after pytest's own short summary, so the score is the last thing a learner reads
        results = self.scores()
        names = [r["notebook"] for r in results]
        for r in results:
            label = r["notebook"] if names.count(r["notebook"]) == 1 else r["path"]
            terminalreporter.write_line(f"SCORE {label}: {r['got']:g}/{r['total']:g} ({r['seconds']:.0f} s of cells)")
            if r["error"]:
                terminalreporter.write_line(f"  ⚠ {r['error']}")
            for check_id, ch in r["checks"].items():
                if not ch["passed"]:
                    msg = ch["message"]
                    terminalreporter.write_line(f"  {msg}" if check_id in msg else f"  ❌ {check_id}: {msg}")
        path = self.config.getoption("llmlab_score_json", None)
        if path:
            Path(path).write_text(json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8")
