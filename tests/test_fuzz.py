"""Bad arguments to llmlab's public API: rejected with a clear TypeError/ValueError, or no worse than recorded.

``test_the_public_api_rejects_bad_arguments`` runs every bad call of ``tests/fuzz`` (about 5,600, in worker
processes, 75 to 100 s on two cores) and holds the ratchet of ``tests/fuzz/expectations.py``: a call is
clear, or legitimately accepted (``tests/fuzz/accepted.py``), or listed in ``tests/fuzz/known.json`` with
an outcome at least as bad as today's. Fixing a function makes its lines stale: the test then asks for them
to be deleted (``python -m tests.fuzz --update`` rewrites the file), so the list only shrinks.
"""
import math

import torch

from tests.fuzz.api import public_callables
from tests.fuzz.bad import HUGE, bad_values
from tests.fuzz.calls import SKIP, VALID
from tests.fuzz.expectations import load_known, problems
from tests.fuzz.runner import Case, Plan, Report, Result, fuzz
from tests.fuzz.worker import classify, names_argument


def test_every_public_callable_has_a_valid_call_or_a_reason_to_skip():
    found, import_errors = public_callables()
    assert not import_errors
    assert len(found) >= 200
    missing = sorted(set(found) - set(VALID) - set(SKIP))
    assert not missing, f"add a valid call to tests/fuzz/calls_*.py (or a reason to SKIP) for: {missing}"
    stale = sorted(q for q in [*VALID, *SKIP] if q not in found and q.rsplit(".", 1)[0] not in found)
    assert not stale, f"tests/fuzz/calls_*.py has entries for what is no longer public: {stale}"


def test_a_message_names_an_argument_only_as_a_word():
    assert names_argument("n must be >= 1, got 0", "n")
    assert names_argument("expected `T` to be positive", "T")
    assert not names_argument("expected an int, got str", "n")
    assert not names_argument("n_tokens must be >= 1", "n")
    assert not names_argument("expected a list", "a") and names_argument("'a' must be a list", "a")
    assert classify(ValueError("k must be >= 1"), "k")[0] == "clear"
    assert classify(TypeError("'NoneType' object is not iterable"), "tokens")[0] == "unclear"
    assert classify(IndexError("index out of range"), "k")[0] == "other_error"


def test_bad_values_fit_the_argument():
    kinds = lambda name, value: [k for k, _ in bad_values(name, value)]  # noqa: E731
    assert kinds("n", 3) == ["<None>", "<str>", "<float>", "<negative>", "<zero>", "<huge>"]
    assert dict(bad_values("n", 3))["<huge>"] == HUGE
    assert kinds("seed", 0) == ["<None>", "<str>", "<float>"]
    assert "<nan>" in kinds("p", 0.5) and "<nan>" not in kinds("text", "hello")
    assert "<unknown>" in kinds("split", "val") and "<unknown>" not in kinds("text", "hello")
    x = dict(bad_values("x", torch.ones(2, 3)))
    assert x["<extra_dim>"].shape == (1, 2, 3) and x["<missing_dim>"].shape == (3,)
    assert x["<empty>"].shape == (0, 3) and x["<int_dtype>"].dtype == torch.int64 and math.isnan(x["<nan>"][0, 0])
    assert dict(bad_values("ids", torch.ones(4, dtype=torch.long)))["<negative>"][0] == -1


def test_the_ratchet_only_lets_the_known_list_shrink():
    def report(**outcomes):
        results = [Result(Case("m.f", arg, "<None>"), o, "", "", 0.0) for arg, o in outcomes.items()]
        return Report({"m.f": Plan("m.f", "ok")}, results, {}, 0.0)

    known = {"m.f(a=<None>)": "hang", "m.f(b=<None>)": "unclear"}
    accepted = {"m.f(c=<None>)": "None is the default"}
    assert problems(report(a="other_error", b="unclear", c="accepted", d="clear"), known, accepted) == []
    found = problems(report(a="crash", b="clear", c="unclear", d="accepted"), known, accepted)
    assert len(found) == 3 and "b=<None>) is clear now: delete its line" in found[0]
    assert "in ACCEPTED" in found[1] and "d=<None>) is accepted" in found[2]  # crash counts as bad as a hang
    assert "no longer fuzzed" in problems(report(b="unclear", c="accepted"), known, accepted)[0]


def test_the_public_api_rejects_bad_arguments():
    known = load_known()
    report = fuzz(known=known)
    found = problems(report, known)
    assert not found, (
        f"{len(found)} problem(s); see them all with: python -m tests.fuzz\n  " + "\n  ".join(found[:60])
        + ("\n  ..." if len(found) > 60 else "")
        + "\nAfter fixing a function, python -m tests.fuzz --update rewrites tests/fuzz/known.json.")
