"""The table of valid calls: one per public callable, plus one method call for the important classes.

An entry maps a qualified name to a function of no arguments that returns the call's keyword arguments
(for the public object itself: a function, or a class's constructor) or a ``Call`` (a method, a
classmethod, a wrapper). ``SKIP`` gives the reason a callable has no entry on purpose; ``FIXED`` names
arguments that are passed but not fuzzed, with the reason (the checks' own settings, which the package
writes as literals: ``validate.integer("k", k, minimum=1)``).
"""
from __future__ import annotations

import importlib
import pkgutil

import tests.fuzz
from tests.fuzz.api import resolve
from tests.fuzz.call import Call

# every tests/fuzz/calls_<part>.py holds VALID and SKIP, and may hold FIXED and TIME_LIMITS
_PARTS = [importlib.import_module(f"tests.fuzz.{info.name}") for info in pkgutil.iter_modules(tests.fuzz.__path__)
          if info.name.startswith("calls_")]
VALID = {name: make for part in _PARTS for name, make in part.VALID.items()}
SKIP = {name: why for part in _PARTS for name, why in part.SKIP.items()}
FIXED = {name: why for part in _PARTS for name, why in getattr(part, "FIXED", {}).items()}
TIME_LIMITS = {name: s for part in _PARTS for name, s in getattr(part, "TIME_LIMITS", {}).items()}


def valid_call(qualname: str) -> Call:
    """A fresh valid call of ``qualname`` (new tensors and models every time: calls may modify them)."""
    made = VALID[qualname]()
    return made if isinstance(made, Call) else Call(resolve(qualname), made)
