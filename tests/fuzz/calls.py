"""The table of valid calls: one per public callable, plus one method call for the important classes.

An entry maps a qualified name to a function of no arguments that returns the call's keyword arguments
(for the public object itself: a function, or a class's constructor) or a ``Call`` (a method, a
classmethod, a wrapper). ``SKIP`` gives the reason a callable has no entry on purpose; ``FIXED`` names
arguments that are passed but not fuzzed, with the reason (the checks' own settings, which the package
writes as literals: ``validate.integer("k", k, minimum=1)``).
"""
from __future__ import annotations

from tests.fuzz import calls_compress, calls_core, calls_nn, calls_text, calls_train
from tests.fuzz.api import resolve
from tests.fuzz.call import Call

VALID = {**calls_core.VALID, **calls_nn.VALID, **calls_compress.VALID, **calls_text.VALID, **calls_train.VALID}
SKIP = {**calls_core.SKIP, **calls_nn.SKIP, **calls_compress.SKIP, **calls_text.SKIP, **calls_train.SKIP}
FIXED = dict(calls_core.FIXED)
TIME_LIMITS = dict(calls_train.TIME_LIMITS)


def valid_call(qualname: str) -> Call:
    """A fresh valid call of ``qualname`` (new tensors and models every time: calls may modify them)."""
    made = VALID[qualname]()
    return made if isinstance(made, Call) else Call(resolve(qualname), made)
