"""``python -m llmlab.course.limited BYTES COMMAND...``: run COMMAND with its address space capped at BYTES.

The cap (``RLIMIT_AS``) is inherited by everything COMMAND starts (pytest's kernel, the processes a
notebook spawns), so a learner's runaway allocation raises ``MemoryError`` in their notebook instead of
swapping the teacher's machine to a halt. It is set in this fresh process, which then becomes COMMAND
(``os.execv``): nothing is set in the grader itself, whose threads start many notebooks at once.
"""
from __future__ import annotations

import os
import resource
import sys


def main(argv: list[str]) -> None:
    if len(argv) < 2 or not argv[0].isdigit():
        sys.exit("usage: python -m llmlab.course.limited BYTES COMMAND...")
    limit = int(argv[0])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    os.execv(argv[1], argv[1:])


if __name__ == "__main__":
    main(sys.argv[1:])
