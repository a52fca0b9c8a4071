"""Catalogued mistakes, one module per notebook.

Each module mirrors ``llmlab/grading/<module>.py``: ``REFERENCE`` maps every check to a correct
implementation, and each wrong implementation carries its catalogue entry on its ``def``:

    @mistake("check_softmax", "subtract the row maximum")
    def softmax_no_max(x, dim=-1): ...

The check named must reject it with a message containing the hint fragment: the hint meant for that
mistake, not just any failure. ``kind`` says what sort of mistake it is:

- ``common``: an ordinary wrong answer;
- ``overfit``: right on the inputs the notebook shows, wrong in general (the hidden cases catch it);
- ``inplace``: changes the caller's inputs (or, for an exercise that writes in place, writes where it should not);
- ``dtype``: returns another dtype than the input's where the reference keeps it.

A module may also keep a ``MUTANTS`` list of ``(check, function, hint)`` for answers too short to be
worth a ``def`` (notebook 13's numbers).
"""
from __future__ import annotations

import types
from typing import Callable

KINDS = ("common", "overfit", "inplace", "dtype")


def mistake(check: str, hint: str, kind: str = "common") -> Callable:
    """Catalogue the decorated function as a wrong answer to ``check``, rejected with ``hint`` in the message."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")

    def tag(fn: Callable) -> Callable:
        fn.mistakes = [(check, hint, kind), *getattr(fn, "mistakes", [])]
        return fn

    return tag


def catalogue(module: types.ModuleType) -> list[tuple[str, Callable, str, str]]:
    """``(check, function, hint, kind)`` for every mistake of ``module``, in source order."""
    tagged = sorted((fn for fn in vars(module).values()
                     if callable(fn) and getattr(fn, "__module__", None) == module.__name__ and hasattr(fn, "mistakes")),
                    key=lambda fn: fn.__code__.co_firstlineno)
    return [(check, fn, hint, kind) for fn in tagged for check, hint, kind in fn.mistakes] + \
        [(check, fn, hint, "common") for check, fn, hint in getattr(module, "MUTANTS", [])]
