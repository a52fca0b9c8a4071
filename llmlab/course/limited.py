"""``python -m llmlab.course.limited [--as BYTES] [--cpu SECONDS] [--nproc N] [--cgroup FILE]... -- COMMAND...``

Runs COMMAND with limits that everything it starts inherits (a notebook's kernel, the processes a
notebook spawns): its address space (``RLIMIT_AS``: a runaway allocation raises ``MemoryError`` in the
notebook instead of swapping the teacher's machine to a halt), CPU seconds per process
(``RLIMIT_CPU``), the number of processes of its user (``RLIMIT_NPROC``, which the kernel does not
enforce for root), and membership of cgroups (each FILE a group's ``cgroup.procs``). They are set in
this fresh process, which then becomes COMMAND (``os.execv``): nothing is set in the grader itself,
whose threads start many notebooks at once.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog="python -m llmlab.course.limited")
    p.add_argument("--as", dest="address_space", type=int, metavar="BYTES")
    p.add_argument("--cpu", type=int, metavar="SECONDS")
    p.add_argument("--nproc", type=int, metavar="N")
    p.add_argument("--cgroup", action="append", default=[], metavar="FILE")
    p.add_argument("command", nargs=argparse.REMAINDER)
    args = p.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        p.error("no COMMAND")
    for procs in args.cgroup:
        with open(procs, "w") as f:
            f.write(str(os.getpid()))
    if args.address_space:
        resource.setrlimit(resource.RLIMIT_AS, (args.address_space, args.address_space))
    if args.cpu:
        resource.setrlimit(resource.RLIMIT_CPU, (args.cpu, args.cpu + 5))
    if args.nproc:
        resource.setrlimit(resource.RLIMIT_NPROC, (args.nproc, args.nproc))
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
