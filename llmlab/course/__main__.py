"""``python -m llmlab.course {build,grade,doctor,clean}``: the course's command line."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _build(args) -> int:
    from llmlab.course.build import build

    results = build(Path(args.solutions), Path(args.notebooks), force=args.force, check=args.check)
    bad = [r for r in results if r.status in ("refused", "out of date", "stale")]
    for r in results:
        if r.status != "unchanged" or args.verbose:
            print(f"{r.status:12} {r.path}")
    if any(r.status == "refused" for r in bad):
        print("refused: these notebooks were edited since they were generated; "
              "rerun with --force to overwrite them (the learner's work in them is lost)", file=sys.stderr)
    elif args.check and bad:
        print("notebooks/ is out of date: run `python -m llmlab.course build`", file=sys.stderr)
    elif not bad:
        print(f"{len(results)} notebook(s) up to date")
    return 1 if bad else 0


def _grade(args) -> int:
    from llmlab.course.grade import grade, table, write_csv

    try:
        grades, box = grade(args.paths, jobs=args.jobs, cell_timeout=args.cell_timeout, timeout=args.timeout,
                            progress=lambda line: print(line, file=sys.stderr, flush=True), memory_gb=args.memory_gb,
                            sandbox_kind=args.sandbox, image=args.image)
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(table(grades, box))
    if args.csv:
        write_csv(grades, args.csv)
        print(f"wrote {args.csv}", file=sys.stderr)
    return 0


def _doctor(args) -> int:
    from llmlab.course.doctor import environment_report, format_report

    items = environment_report()
    print(format_report(items))
    return 0 if all(i.ok or not i.required for i in items) else 1


def _clean(args) -> int:
    from llmlab.course.build import clean

    paths = [p for arg in args.paths for p in (sorted(Path(arg).glob("*.ipynb")) if Path(arg).is_dir() else [Path(arg)])]
    for p in clean(paths):
        print(f"cleaned {p}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llmlab.course", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    b = sub.add_parser("build", help="generate notebooks/ from solutions/")
    b.add_argument("--solutions", default=str(ROOT / "solutions"))
    b.add_argument("--notebooks", default=str(ROOT / "notebooks"))
    b.add_argument("--force", action="store_true", help="overwrite notebooks a learner has edited")
    b.add_argument("--check", action="store_true", help="write nothing; exit 1 if notebooks/ is out of date")
    b.add_argument("-v", "--verbose", action="store_true")
    b.set_defaults(run=_build)

    g = sub.add_parser("grade", help="grade notebooks, a learner's folder, or a class of folders")
    g.add_argument("paths", nargs="+", metavar="PATH")
    g.add_argument("--csv", metavar="FILE", help="also write one row per learner and notebook to FILE")
    g.add_argument("-j", "--jobs", type=int, default=1, help="notebooks graded at once (default 1)")
    g.add_argument("--cell-timeout", type=float, default=120, help="seconds one cell may run (default 120)")
    g.add_argument("--timeout", type=float, default=900, help="seconds one notebook may run (default 900)")
    g.add_argument("--memory-gb", type=float, default=None,
                   help="memory one notebook's kernel (and what it starts) may use, in GiB (default: 12, or 80%% of "
                        "the machine shared by the -j kernels if that is less)")
    g.add_argument("--sandbox", default="auto", choices=("auto", "bwrap", "docker", "podman", "none"),
                   help="where kernels run (default auto: bubblewrap where it works, else unisolated, which the "
                        "table says)")
    g.add_argument("--image", default="llmlab-grader", help="the container image for --sandbox docker/podman")
    g.set_defaults(run=_grade)

    d = sub.add_parser("doctor", help="check Python, torch, the device and the real assets")
    d.set_defaults(run=_doctor)

    c = sub.add_parser("clean", help="clear outputs and execution counts of notebooks in place")
    c.add_argument("paths", nargs="+", metavar="PATH")
    c.set_defaults(run=_clean)

    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
