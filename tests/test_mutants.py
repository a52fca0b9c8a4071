"""The grader rejects every catalogued mistake with the hint meant for it, passes the reference,
and says "not implemented" for the untouched stub.

Each ``tests/mutants/<module>.py`` mirrors ``llmlab/grading/<module>.py``: ``REFERENCE`` maps every
check to a correct implementation, ``MUTANTS`` lists (check, wrong implementation, hint fragment).
"""
import importlib
import pkgutil

import pytest

from llmlab.grading import ExerciseFailure
from tests import mutants

CATALOGUES = {
    info.name: importlib.import_module(f"tests.mutants.{info.name}") for info in pkgutil.iter_modules(mutants.__path__)
}


def _check(module: str, name: str):
    return getattr(importlib.import_module(f"llmlab.grading.{module}"), name)


def _all_checks(module: str) -> list[str]:
    mod = importlib.import_module(f"llmlab.grading.{module}")
    return sorted(n for n in dir(mod) if n.startswith("check_"))


MUTANT_CASES = [
    pytest.param(module, check, fn, hint, id=f"{module}.{check}.{fn.__name__}")
    for module, catalogue in CATALOGUES.items()
    for check, fn, hint in catalogue.MUTANTS
]
REFERENCE_CASES = [(module, check) for module, catalogue in CATALOGUES.items() for check in catalogue.REFERENCE]


@pytest.mark.parametrize("module,check,mutant,hint", MUTANT_CASES)
def test_mutant_is_rejected_with_its_hint(module, check, mutant, hint):
    with pytest.raises(ExerciseFailure) as info:
        _check(module, check)(mutant)
    assert hint in str(info.value), f"wrong hint for {mutant.__name__}: {info.value}"
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("module,check", REFERENCE_CASES)
def test_reference_passes(module, check, capsys):
    _check(module, check)(CATALOGUES[module].REFERENCE[check])
    assert capsys.readouterr().out.startswith("✅")


@pytest.mark.parametrize("module,check", REFERENCE_CASES)
def test_stub_fails_as_not_implemented(module, check):
    def stub(*args, **kwargs):
        raise NotImplementedError

    with pytest.raises(ExerciseFailure, match="not implemented yet"):
        _check(module, check)(stub)


def test_every_grading_module_has_a_catalogue():
    import llmlab.grading

    graded = {m.name for m in pkgutil.iter_modules(llmlab.grading.__path__)} - {"core"}
    assert graded == set(CATALOGUES)


@pytest.mark.parametrize("module", list(CATALOGUES))
def test_every_check_has_a_reference_and_two_mutants(module):
    for check in _all_checks(module):
        assert check in CATALOGUES[module].REFERENCE, f"{module}.{check} has no reference"
        n = sum(1 for c, _, _ in CATALOGUES[module].MUTANTS if c == check)
        assert n >= 2, f"{module}.{check} has {n} mutant(s); every exercise needs at least 2"


def test_learner_exception_is_reported_in_one_line_with_its_line():
    def buggy(tokens, n):
        return {}[tokens[0]]

    with pytest.raises(ExerciseFailure, match=r"raised KeyError.*line \d+") as info:
        _check("language_models", "check_count_ngrams")(buggy)
    assert info.value._render_traceback_() == [str(info.value)]


def test_not_a_function():
    with pytest.raises(ExerciseFailure, match="expected your function"):
        _check("start_here", "check_normalize")(42)
