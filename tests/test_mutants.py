"""The grader rejects every catalogued mistake with the hint meant for it, passes the reference,
and says "not implemented" for the untouched stub."""
import importlib

import pytest

from llmlab import generation, ngram
from llmlab.grading import ExerciseFailure
from llmlab.metrics import lm
from tests.mutants import language_models as lm_mutants
from tests.mutants import start_here as sh_mutants

CATALOGUES = {"start_here": sh_mutants.MUTANTS, "language_models": lm_mutants.MUTANTS}

REFERENCE = {
    ("start_here", "check_char_and_byte_counts"): lambda t: (len(t), len(t.encode("utf-8"))),
    ("start_here", "check_normalize"): lambda c: {k: v / sum(c.values()) for k, v in c.items()},
    ("language_models", "check_count_ngrams"): ngram.count_ngrams,
    ("language_models", "check_next_token_probs"): ngram.next_token_probs,
    ("language_models", "check_sequence_log_prob"): lm.sequence_log_prob,
    ("language_models", "check_perplexity"): lm.perplexity,
    ("language_models", "check_temperature_softmax"): generation.temperature_softmax,
    ("language_models", "check_sample_from_probs"): generation.sample_from_probs,
    ("language_models", "check_finetune_counts"): ngram.finetune_counts,
}


def _check(module: str, name: str):
    return getattr(importlib.import_module(f"llmlab.grading.{module}"), name)


def _all_checks(module: str) -> list[str]:
    mod = importlib.import_module(f"llmlab.grading.{module}")
    return sorted(n for n in dir(mod) if n.startswith("check_"))


MUTANT_CASES = [
    pytest.param(module, check, fn, hint, id=f"{module}.{check}.{fn.__name__}")
    for module, catalogue in CATALOGUES.items()
    for check, fn, hint in catalogue
]


@pytest.mark.parametrize("module,check,mutant,hint", MUTANT_CASES)
def test_mutant_is_rejected_with_its_hint(module, check, mutant, hint):
    with pytest.raises(ExerciseFailure) as info:
        _check(module, check)(mutant)
    assert hint in str(info.value), f"wrong hint for {mutant.__name__}: {info.value}"
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("module,check", list(REFERENCE))
def test_reference_passes(module, check, capsys):
    _check(module, check)(REFERENCE[(module, check)])
    assert capsys.readouterr().out.startswith("✅")


@pytest.mark.parametrize("module,check", list(REFERENCE))
def test_stub_fails_as_not_implemented(module, check):
    def stub(*args, **kwargs):
        raise NotImplementedError

    with pytest.raises(ExerciseFailure, match="not implemented yet"):
        _check(module, check)(stub)


@pytest.mark.parametrize("module", list(CATALOGUES))
def test_every_check_has_a_reference_and_two_mutants(module):
    for check in _all_checks(module):
        assert (module, check) in REFERENCE, f"{module}.{check} has no reference in this test"
        n = sum(1 for c, _, _ in CATALOGUES[module] if c == check)
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
