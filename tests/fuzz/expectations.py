"""The ratchet: what each bad call may do today, and the check of a run against it.

* ``known.json``: ``{case id: outcome}`` for every bad call that is not ``clear`` today. A run may do the
  same or better (``runner.SEVERITY``), never worse; a listed call that has become ``clear`` must be
  deleted from the file, so the list only shrinks.
* ``accepted.ACCEPTED``: ``{case id: reason}`` for bad-looking values that are in fact fine (zero where
  zero is documented as allowed, ...). Such a call must be ``accepted``.

Any other call must be ``clear``.
"""
from __future__ import annotations

import json
from pathlib import Path

from tests.fuzz.accepted import ACCEPTED
from tests.fuzz.runner import SEVERITY, Report

KNOWN_FILE = Path(__file__).with_name("known.json")


def load_known(path: Path = KNOWN_FILE) -> dict[str, str]:
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def known_from(report: Report, accepted: dict[str, str] = ACCEPTED) -> dict[str, str]:
    """The ``known.json`` that a report gives: its calls that are neither clear nor legitimately accepted."""
    return {r.case.id: r.outcome for r in report.results
            if r.outcome != "clear" and not (r.case.id in accepted and r.outcome == "accepted")}


def save_known(known: dict[str, str], path: Path = KNOWN_FILE) -> None:
    path.write_text(json.dumps(dict(sorted(known.items())), indent=0, ensure_ascii=False) + "\n", encoding="utf-8")


def problems(report: Report, known: dict[str, str], accepted: dict[str, str] = ACCEPTED,
             complete: bool = True) -> list[str]:
    """Every way ``report`` breaks the ratchet, one line each (empty: it holds).

    ``complete``: the report covers every callable and every bad call (not a sample), so an entry of
    ``known`` or ``accepted`` that no longer matches any call is stale and reported too.
    """
    out = []
    for name, plan in report.plans.items():
        if plan.status.startswith("valid call"):
            out.append(f"{name}: the {plan.status} ({plan.detail}); fix its entry in tests/fuzz/calls_*.py")
        elif plan.status == "no valid call known":
            out.append(f"{name} has no valid call: add one to tests/fuzz/calls_*.py (or a reason to SKIP)")
    for module, error in report.import_errors.items():
        out.append(f"{module} does not import: {error}")
    seen = set()
    for r in report.results:
        cid, got = r.case.id, r.outcome
        seen.add(cid)
        detail = f"{r.error}: {r.message}" if r.error else r.message
        if cid in accepted:
            if got != "accepted":
                out.append(f"{cid} is listed in ACCEPTED ({accepted[cid]}) but is now {got} ({detail}); "
                           "delete it from tests/fuzz/accepted.py")
        elif cid in known:
            if got == "clear":
                out.append(f"{cid} is clear now: delete its line from tests/fuzz/known.json")
            elif SEVERITY[got] > SEVERITY[known[cid]]:
                out.append(f"{cid} got worse: {known[cid]} -> {got} ({detail})")
        elif got != "clear":
            out.append(f"{cid} is {got} ({detail}): a bad {r.case.argument} must raise TypeError or ValueError "
                       f"naming '{r.case.argument}'")
    if complete:
        for cid in sorted(set(known) - seen):
            out.append(f"{cid} is in tests/fuzz/known.json but no longer fuzzed: delete its line")
        for cid in sorted(set(accepted) - seen):
            out.append(f"{cid} is in tests/fuzz/accepted.py but no longer fuzzed: delete it")
    return out


def improvements(report: Report, known: dict[str, str]) -> list[str]:
    """Listed calls that now do better than ``known`` says, though not yet clear (``--update`` records it)."""
    return [f"{r.case.id}: {known[r.case.id]} -> {r.outcome}" for r in report.results
            if r.case.id in known and r.outcome != "clear" and SEVERITY[r.outcome] < SEVERITY[known[r.case.id]]]
