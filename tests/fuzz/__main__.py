"""``python -m tests.fuzz``: fuzz llmlab's public API with bad arguments and print what happened.

    python -m tests.fuzz                      # everything: counts per outcome, worst offenders, ratchet
    python -m tests.fuzz --only llmlab.ngram  # the callables under one or more prefixes
    python -m tests.fuzz --update             # rewrite tests/fuzz/known.json from this run
    python -m tests.fuzz --show llmlab.ngram.count_ngrams   # every bad call of some callables
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict

from tests.fuzz.accepted import ACCEPTED
from tests.fuzz.calls import TIME_LIMITS
from tests.fuzz.expectations import KNOWN_FILE, improvements, known_from, load_known, problems, save_known
from tests.fuzz.runner import MEMORY_GIB, SEVERITY, TIMEOUT, Report, fuzz, select

ORDER = ["clear", "accepted-listed", "unclear", "other_error", "accepted", "hang", "crash"]


def outcome_counts(report: Report) -> dict[str, int]:
    """Counts per outcome, with the accepted calls that ``ACCEPTED`` allows counted apart."""
    counts = Counter(
        "accepted-listed" if r.outcome == "accepted" and r.case.id in ACCEPTED else r.outcome for r in report.results)
    return {k: counts.get(k, 0) for k in ORDER}


def worst(report: Report, n: int, per_callable: int = 2) -> list:
    """The ``n`` worst calls, most severe first, at most ``per_callable`` of each callable (for variety)."""
    ranked = sorted((r for r in report.results if r.outcome != "clear" and r.case.id not in ACCEPTED),
                    key=lambda r: (-SEVERITY[r.outcome], r.case))
    taken: Counter = Counter()
    out = []
    for r in ranked:
        if taken[r.case.qualname] < per_callable:
            taken[r.case.qualname] += 1
            out.append(r)
        if len(out) == n:
            break
    return out


def _line(r) -> str:
    what = f"{r.error}: {r.message}" if r.error else r.message
    return f"  {r.outcome:<11} {r.case.id}  {what}"[:220]


def print_report(report: Report, args) -> None:
    plans = report.plans
    status = Counter(p.status for p in plans.values())
    print(f"callables: {len(plans) - len(report.methods)} public + {len(report.methods)} methods; "
          f"fuzzed {status.get('ok', 0)}, skipped {status.get('skipped', 0)}, "
          f"no valid call known {status.get('no valid call known', 0)}, "
          f"broken {sum(v for k, v in status.items() if k.startswith('valid call'))}")
    print(f"bad calls: {len(report.results)} in {report.seconds:.0f} s")
    for k, v in outcome_counts(report).items():
        print(f"  {k:<16} {v:>6}")
    by_module: dict[str, Counter] = defaultdict(Counter)
    for r in report.results:
        module = r.case.qualname.rsplit(".", 1)[0]
        by_module[module]["total"] += 1
        by_module[module][r.outcome] += 1
    print("\nper module (total / clear / unclear / other_error / accepted / hang / crash):")
    for module, c in sorted(by_module.items()):
        print(f"  {module:<38} {c['total']:>5} {c['clear']:>5} {c['unclear']:>5} {c['other_error']:>5} "
              f"{c['accepted']:>5} {c['hang']:>5} {c['crash']:>5}")
    print(f"\nworst offenders ({args.worst}):")
    for r in worst(report, args.worst):
        print(_line(r))
    skipped = {q: p for q, p in plans.items() if p.status != "ok"}
    if skipped:
        print("\nnot fuzzed:")
        for q, p in skipped.items():
            print(f"  {q}: {p.status}" + (f" ({p.detail})" if p.detail else ""))
    slow = [p for p in plans.values()
            if p.status == "ok" and p.seconds > max(args.timeout, TIME_LIMITS.get(p.qualname, 0.0)) / 2]
    if slow:
        print("\nslow valid calls (a bad call near the limit may read as a hang):")
        for p in slow:
            print(f"  {p.qualname}: {p.seconds:.2f} s")
    if args.show:
        print()
        for r in report.results:
            if select([r.case.qualname], args.show):
                print(_line(r))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", metavar="PREFIX", help="fuzz only the callables under these names")
    parser.add_argument("--update", action="store_true", help=f"rewrite {KNOWN_FILE.name} from this run")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=TIMEOUT, help="seconds per call (default %(default)s)")
    parser.add_argument("--memory", type=float, default=MEMORY_GIB, help="GiB per worker (default %(default)s)")
    parser.add_argument("--sample", type=float, help="run only this share of the bad calls (0-1), always the same")
    parser.add_argument("--worst", type=int, default=30, help="how many worst offenders to list")
    parser.add_argument("--show", nargs="+", metavar="PREFIX", help="list every bad call of these callables")
    parser.add_argument("--json", metavar="PATH", help="write every result to this JSON file")
    args = parser.parse_args(argv)

    known = load_known()
    tty = sys.stderr.isatty()
    report = fuzz(only=args.only, workers=args.workers, timeout=args.timeout, memory_gib=args.memory,
                  sample=args.sample, known=known,
                  progress=(lambda done, total: print(f"\r{done}/{total}", end="", file=sys.stderr, flush=True))
                  if tty else None)
    if tty:
        print(file=sys.stderr)
    print_report(report, args)
    if args.json:
        rows = [{"id": r.case.id, "outcome": r.outcome, "error": r.error, "message": r.message,
                 "seconds": round(r.seconds, 3)} for r in report.results]
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=1, ensure_ascii=False)
    complete = not args.only and args.sample is None
    if args.update:
        if args.sample is not None:
            parser.error("--update needs every bad call: drop --sample")
        fresh = known_from(report)
        if args.only:  # keep the entries of the callables this run did not cover
            fresh |= {cid: o for cid, o in known.items() if not select([cid.split("(")[0]], args.only)}
        save_known(fresh)
        print(f"\nwrote {len(fresh)} entries to {KNOWN_FILE}")
        known = fresh
    better = improvements(report, known)
    if better:
        print(f"\nbetter than {KNOWN_FILE.name} says (run with --update to record):")
        for line in better:
            print("  " + line)
    found = problems(report, known, complete=complete)
    print(f"\nratchet: {'holds' if not found else f'{len(found)} problem(s)'}")
    for line in found:
        print("  " + line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
