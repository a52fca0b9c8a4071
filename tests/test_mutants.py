"""The grader rejects every catalogued mistake with the hint meant for it, passes the reference,
and says "not implemented" for the untouched stub.

Each ``tests/mutants/<module>.py`` mirrors ``llmlab/grading/<module>.py``: ``REFERENCE`` maps every
check to a correct implementation, and each wrong implementation carries ``@mistake(check, hint, kind)``.
"""
import importlib
import json
import pkgutil

import pytest
import torch

from llmlab.grading import ExerciseFailure
from llmlab.grading.parallelism import run_on_ranks
from tests import mutants
from tests.mutants import catalogue

CATALOGUES = {
    info.name: importlib.import_module(f"tests.mutants.{info.name}") for info in pkgutil.iter_modules(mutants.__path__)
}


def _check(module: str, name: str):
    return getattr(importlib.import_module(f"llmlab.grading.{module}"), name)


def _all_checks(module: str) -> list[str]:
    mod = importlib.import_module(f"llmlab.grading.{module}")
    return sorted(n for n in dir(mod) if n.startswith("check_"))


MISTAKES = {module: catalogue(mod) for module, mod in CATALOGUES.items()}
MUTANT_CASES = [
    pytest.param(module, check, fn, hint, id=f"{module}.{check}.{fn.__name__}")
    for module, entries in MISTAKES.items()
    for check, fn, hint, _ in entries
]
REFERENCE_CASES = [(module, check) for module, mod in CATALOGUES.items() for check in mod.REFERENCE]


@pytest.mark.parametrize("module,check,mutant,hint", MUTANT_CASES)
def test_mutant_is_rejected_with_its_hint(module, check, mutant, hint):
    with pytest.raises(ExerciseFailure) as info:
        _check(module, check)(mutant)
    assert hint in str(info.value), f"wrong hint for {mutant.__name__}: {info.value}"
    assert "\n" not in str(info.value)


class _Loopback:
    """A class run's kernel inside this process: the worker's own code serves each request, after the
    request and its answer have gone through JSON and bytes as they do on the pipe."""

    def __init__(self):
        from llmlab.course.worker import Worker

        self.worker, self.failure, self.deadline = Worker(-1, -1), None, None

    def request(self, header: dict, blobs=()):
        header, blobs = json.loads(json.dumps(header)), [memoryview(bytes(b)) for b in blobs]
        reply, out = getattr(self.worker, f"op_{header['op']}")(header, blobs)
        assert "internal" not in reply, reply["internal"]
        return json.loads(json.dumps(reply)), [memoryview(bytes(b)) for b in out]


@pytest.fixture(scope="module")
def loopback():
    return _Loopback()


@pytest.mark.parametrize("module,check", REFERENCE_CASES)
def test_reference_passes(module, check, capsys, loopback):
    """Through the class run's channel (``llmlab.course.remote``): the check's arguments and the reference's
    answers cross it intact. (In the notebook itself, every solution scores full marks: test_notebooks.)"""
    from llmlab.course.remote import RemoteFunction

    loopback.worker.shell.user_ns["fn"] = CATALOGUES[module].REFERENCE[check]
    try:
        _check(module, check)(RemoteFunction(loopback, "fn"))
    finally:
        loopback.request({"op": "release"})
    assert capsys.readouterr().out.startswith("✅")


@pytest.mark.parametrize("module,check", REFERENCE_CASES)
def test_stub_fails_as_not_implemented(module, check):
    def stub(*args, **kwargs):
        raise NotImplementedError

    with pytest.raises(ExerciseFailure, match="not implemented yet"):
        _check(module, check)(stub)


def test_every_grading_module_has_a_catalogue():
    import llmlab.grading

    # core is the checks' machinery and demo runs a learner's function in a demo: neither grades an exercise
    graded = {m.name for m in pkgutil.iter_modules(llmlab.grading.__path__)} - {"core", "demo"}
    assert graded == set(CATALOGUES)


@pytest.mark.parametrize("module", list(CATALOGUES))
def test_every_check_has_a_reference_and_two_mutants(module):
    for check in _all_checks(module):
        assert check in CATALOGUES[module].REFERENCE, f"{module}.{check} has no reference"
        n = sum(1 for c, _, _, _ in MISTAKES[module] if c == check)
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


# ------------------------------------------------------------------------------------- hidden cases and kinds

def _takes_tensors(check) -> bool:
    """Whether any hidden case of ``check`` passes a tensor (then it needs an in-place and a dtype mutant)."""
    from llmlab.grading.core import Draw

    def leaves(x):
        if isinstance(x, (list, tuple)):
            return [y for item in x for y in leaves(item)]
        return list(x.values()) if isinstance(x, dict) else [x]

    return any(isinstance(a, torch.Tensor) for case in check.cases(Draw(0)) for a in leaves([case.args, case.kwargs]))


EXERCISES = [(module, name) for module in CATALOGUES for name in _all_checks(module)
             if getattr(_check(module, name), "cases", None) is not None]


@pytest.mark.parametrize("module,check", EXERCISES)
def test_the_catalogue_has_each_kind_of_mistake(module, check):
    kinds = {kind for c, _, _, kind in MISTAKES[module] if c == check}
    needed = {"overfit"} | ({"inplace", "dtype"} if _takes_tensors(_check(module, check)) else set())
    assert needed <= kinds, f"{module}.{check} lacks a mutant of kind {sorted(needed - kinds)}"


@pytest.mark.parametrize("module,check", EXERCISES)
def test_hidden_cases_pass_the_reference_for_any_seed(module, check):
    """Each check's hidden generator, run 20 times with other seeds, never fails a correct function:
    no check is flaky, whatever inputs its generator draws."""
    grader, reference = _check(module, check), CATALOGUES[module].REFERENCE[check]
    if grader.hidden_options.get("via") is run_on_ranks:
        # the check's own reference runs in this process; a learner's function on spawned ranks, ~10 s a case
        # (test_reference_passes runs the catalogue's through the ranks)
        reference = grader.reference
    for seed in range(20):
        result = grader.hidden_result(reference, seed)
        assert result.passed, f"seed {seed}: {result.line}"


# checks without hidden cases of their own, and why
NO_HIDDEN_CASES = {
    ("tokenizers", "check_bytes_to_unicode"): "the function takes no input: one table to get right",
    ("interview_bank", "check_softmax"): "it is notebook 04's softmax check, hidden cases included",
}


@pytest.mark.parametrize("module", list(CATALOGUES))
def test_every_check_is_an_exercise_with_hidden_cases(module):
    for name in _all_checks(module):
        check = _check(module, name)
        assert callable(getattr(check, "result", None)), f"{module}.{name} is not built with @exercise"
        assert check.cases is not None or (module, name) in NO_HIDDEN_CASES, f"{module}.{name} has no hidden cases"
