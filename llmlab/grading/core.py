"""What every check is made of.

A check works through a learner's function in a fixed order, and stops at the first problem:

1. not implemented yet (the stub still raises ``NotImplementedError``);
2. type, shape, dtype, device of the result;
3. invariants that name the likely mistake (probabilities sum to 1, ...), and known wrong answers
   recognised by value ("your result equals what you get when ...");
4. comparison with llmlab's reference implementation, with tolerances by dtype and device;
5. edge cases;
6. hidden cases: the reference and the learner's function on inputs drawn from the check's private
   generator (batch sizes, ratios, sizes that do not divide, scales, ties, other dtypes), none of them
   shown in the notebook. The learner is told which kind of input failed, never the values.

Every call also verifies that the learner's function left its arguments as they were, unless the
exercise writes in place.

A check is a function of a :class:`Check` decorated with :func:`exercise`:

>>> @exercise("01.square", reference=lambda x: x * x, cases=lambda d: [Case("negative", -d.int(1, 9))])
... def check_square(c: Check) -> None:
...     c.expect(c.call(3) == 9, "3 should give 9", "square the input")

``check_square(fn)`` prints ``✅ 01.square: 2 checks passed`` or raises :class:`ExerciseFailure` (one
line in Jupyter); ``check_square.result(fn)`` returns the :class:`Result` without printing or raising.

Randomness comes from private generators (:class:`Draw`), so a check never disturbs, nor depends on,
the learner's global seed; a check draws the same cases every time (its seed is its id's CRC32).
"""
from __future__ import annotations

import copy
import dataclasses
import functools
import math
import numbers
import random
import traceback
import zlib
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable

import torch

_PACKAGE_DIR = str(Path(__file__).resolve().parents[1])
NOT_IMPLEMENTED_HINT = "replace `raise NotImplementedError` with your code, run that cell, then this one"
HIDDEN_HINT = ("right on the examples shown, wrong in general: look for what you assumed about the inputs "
               "(a size, a batch of 1, sizes that divide evenly, a scale, the order of equal values)")
SIGNATURE_HINT = "keep the stub's signature: the check passes the arguments by the names and in the order it gives"
DTYPE_HINT = "return the dtype the input has (create new tensors with dtype=x.dtype, cast back after computing in float32)"
INPLACE_HINT = ("leave the inputs as they are: build the result in new tensors/containers "
                "(x = x * 2 or x.clone(), not x *= 2 or x.mul_(2); dict(d), list(l))")
_ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth")


class ExerciseFailure(AssertionError):
    """A failed check: one line that says what is wrong and how to look for the fix."""

    def __init__(self, exercise_id: str, what: str, hint: str = ""):
        self.exercise_id, self.what, self.hint = exercise_id, what, hint
        super().__init__(self.message)

    @property
    def message(self) -> str:
        return f"❌ {self.exercise_id}: {self.what}" + (f" … Hint: {self.hint}" if self.hint else "")

    def __str__(self) -> str:
        return self.message

    def _render_traceback_(self) -> list[str]:
        # IPython calls this instead of printing a traceback: the learner sees one line, in
        # JupyterLab and in nbval's report alike.
        return [self.message]


@dataclasses.dataclass(frozen=True)
class Result:
    """What a check concluded: passed, how many expectations held, and for a failure what and the hint."""

    exercise_id: str
    passed: bool
    checks: int = 0
    what: str = ""
    hint: str = ""

    @property
    def line(self) -> str:
        """The ✅/❌ line a learner reads."""
        if self.passed:
            return f"✅ {self.exercise_id}: {self.checks} checks passed"
        return self.failure().message

    def failure(self) -> ExerciseFailure:
        return ExerciseFailure(self.exercise_id, self.what, self.hint)


class Draw:
    """A check's private source of random inputs: one seed drives torch and Python alike."""

    def __init__(self, seed: int):
        self.seed = seed
        self.gen = torch.Generator().manual_seed(seed)
        self.rng = random.Random(seed)

    def randn(self, *shape: int, dtype: torch.dtype = torch.float32, scale: float = 1.0) -> torch.Tensor:
        return (torch.randn(*shape, generator=self.gen, dtype=torch.float64) * scale).to(dtype)

    def rand(self, *shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return torch.rand(*shape, generator=self.gen, dtype=torch.float64).to(dtype)

    def randint(self, low: int, high: int, shape: tuple[int, ...]) -> torch.Tensor:
        """int64 tensor of values in [low, high)."""
        return torch.randint(low, high, shape, generator=self.gen)

    def int(self, low: int, high: int) -> int:
        """An int in [low, high], both ends included."""
        return self.rng.randint(low, high)

    def float(self, low: float, high: float) -> float:
        return self.rng.uniform(low, high)

    def choice(self, seq):
        return self.rng.choice(list(seq))

    def sample(self, seq, k: int) -> list:
        return self.rng.sample(list(seq), k)


def randn(*shape: int, seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Standard normal values from a private generator (the learner's global seed is untouched)."""
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


class Case:
    """One hidden input: ``Case("batch of 3", x, dim=-1, hint=...)`` calls ``fn(x, dim=-1)``.

    ``kind`` is all the learner is told about the input; ``hint`` (optional) names the mistake that
    usually fails this kind of input.
    """

    def __init__(self, kind: str, *args, hint: str = "", **kwargs):
        self.kind, self.args, self.kwargs, self.hint = kind, args, kwargs, hint

    def __repr__(self) -> str:
        return f"Case({self.kind!r})"


def number(x: Any) -> float | int | None:
    """``x`` as a Python number when it is one (int, float, a numpy scalar, a one-element tensor), else None."""
    if isinstance(x, bool):
        return None
    if isinstance(x, numbers.Real):
        return x if isinstance(x, (int, float)) else float(x)
    if isinstance(x, torch.Tensor) and x.numel() == 1 and x.dtype != torch.bool and not x.is_complex():
        return x.item()
    if type(x).__module__ == "numpy" and getattr(x, "size", 0) == 1 and getattr(x, "dtype", None) is not None \
            and x.dtype.kind in "iuf":
        return x.item()
    return None


def same(actual: Any, expected: Any, rtol: float | None = None, atol: float | None = None,
         name: str = "result", reveal: bool = True) -> str | None:
    """Why ``actual`` is not ``expected`` (None when it is): tensors by type, shape, dtype and value
    (within the dtype's tolerances, NaN equal to NaN), numbers within ``rtol``/``atol``, containers
    item by item, anything else by ``==``. ``reveal=False`` keeps the values out of the reason."""
    def differ(a, e) -> str:
        return f"{name} is {a!r:.80}, expected {e!r:.80}" if reveal else f"{name} has a wrong value"

    if isinstance(expected, torch.Tensor):
        if not isinstance(actual, torch.Tensor):
            return f"{name} is a {type(actual).__name__}, expected a tensor"
        if actual.shape != expected.shape:
            return f"{name} has shape {tuple(actual.shape)}, expected {tuple(expected.shape)}"
        if actual.dtype != expected.dtype:
            return f"{name} has dtype {actual.dtype}, expected {expected.dtype}"
        a, e = actual.detach().cpu(), expected.detach().cpu()
        if not (e.is_floating_point() or e.is_complex()):
            return None if torch.equal(a, e) else f"{name} has wrong values"
        d_rtol, d_atol = tolerances(e.dtype, actual.device)
        if torch.allclose(a, e, rtol=d_rtol if rtol is None else rtol, atol=d_atol if atol is None else atol,
                          equal_nan=True):
            return None
        gap = (a.double() - e.double()).abs().nan_to_num(float("inf")).max().item()
        return f"{name} has wrong values (largest difference {gap:.3g})"
    if isinstance(expected, (bool, str, bytes)) or expected is None:
        return None if type(actual) is type(expected) and actual == expected else differ(actual, expected)
    if isinstance(expected, numbers.Real):
        a = number(actual)
        if a is None:
            return f"{name} is a {type(actual).__name__}, expected a number"
        if isinstance(expected, int):
            return None if a == expected else differ(a, expected)
        if math.isnan(expected) and math.isnan(a) or math.isclose(a, expected, rel_tol=1e-6 if rtol is None else rtol,
                                                                  abs_tol=1e-9 if atol is None else atol):
            return None
        return differ(a, expected)
    if isinstance(expected, Mapping):
        if not isinstance(actual, Mapping):
            return f"{name} is a {type(actual).__name__}, expected a dict"
        if set(actual) != set(expected):
            if len(actual) != len(expected):
                return f"{name} has {len(actual)} keys, expected {len(expected)}"
            missing = next(k for k in expected if k not in actual)
            return f"{name} lacks the key {missing!r:.40}" if reveal else f"{name} has a key that should not be there"
        return next((r for k in expected if (r := same(actual[k], expected[k], rtol, atol,
                                                       f"{name}[{k!r:.40}]" if reveal else f"an item of {name}", reveal))), None)
    if isinstance(expected, (list, tuple)):
        if not isinstance(actual, (list, tuple)):
            return f"{name} is a {type(actual).__name__}, expected a {type(expected).__name__}"
        if len(actual) != len(expected):
            return f"{name} has {len(actual)} items, expected {len(expected)}"
        return next((r for i, (a, e) in enumerate(zip(actual, expected))
                     if (r := same(a, e, rtol, atol, f"{name}[{i}]", reveal))), None)
    return None if actual == expected else differ(actual, expected)


def same_counts(actual: Any, expected: Mapping) -> str | None:
    """:func:`same` for counts (a dict or Counter), a key counted 0 being the same as a key left out; values hidden."""
    if not isinstance(actual, Mapping):
        return f"result is a {type(actual).__name__}, expected a dict or Counter"
    return same({k: v for k, v in actual.items() if v}, {k: v for k, v in expected.items() if v}, reveal=False)


def changed(before: Any, after: Any, depth: int = 0) -> str | None:
    """Where ``after`` (an argument after the call) differs from ``before`` (a copy taken before it)."""
    if before is after or depth > 6:
        return None
    if isinstance(before, torch.Tensor):
        if not isinstance(after, torch.Tensor) or before.shape != after.shape or before.dtype != after.dtype:
            return "its shape or dtype"
        b, a = before.detach(), after.detach().to(before.device)
        equal = (b == a) | (b.isnan() & a.isnan()) if b.is_floating_point() else b == a
        return None if bool(equal.all()) else "its values"
    if isinstance(before, torch.nn.Module):
        return changed(before.state_dict(), after.state_dict(), depth + 1) and "the module's weights"
    if isinstance(before, Mapping):
        if not isinstance(after, Mapping) or set(before) != set(after):
            return "its keys"
        return next((r for k in before if (r := changed(before[k], after[k], depth + 1))), None)
    if isinstance(before, (list, tuple)):
        if not isinstance(after, (list, tuple)) or len(before) != len(after):
            return "its length"
        return next((r for b, a in zip(before, after) if (r := changed(b, a, depth + 1))), None)
    if isinstance(before, (set, frozenset, str, bytes, numbers.Number)) or before is None:
        return None if before == after else "its contents"
    if dataclasses.is_dataclass(before) or hasattr(before, "__dict__"):
        return changed(vars(before), vars(after), depth + 1) if hasattr(after, "__dict__") else "its type"
    return None


def tolerances(dtype: torch.dtype, device: torch.device | str = "cpu") -> tuple[float, float]:
    """(rtol, atol) for comparing a result of ``dtype`` computed on ``device`` with the reference."""
    rtol, atol = {
        torch.float64: (1e-7, 1e-9),
        torch.float32: (1e-5, 1e-6),
        torch.bfloat16: (1.6e-2, 1e-3),
        torch.float16: (1e-3, 1e-4),
    }.get(dtype, (1e-5, 1e-6))
    if torch.device(device).type != "cpu":
        # GPU kernels reorder reductions (and may use TF32): allow an order of magnitude more.
        rtol, atol = rtol * 10, atol * 10
    return rtol, atol


def learner_frame(exc: BaseException) -> str:
    """'line N: <code>' of the innermost frame that is not llmlab's own code."""
    if getattr(exc, "llmlab_frame", None) is not None:  # raised in a class run's kernel, which found the frame there
        return exc.llmlab_frame
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not (f.filename or "").startswith(_PACKAGE_DIR)]
    if not frames:
        return ""
    f = frames[-1]
    return f"it happened at line {f.lineno}: `{(f.line or '').strip()}`"


def invoke(fn: Callable, args: tuple, kwargs: dict, hold: bool | set[int] = False, via=None):
    """``fn(*args, **kwargs)``, or ``via(fn, *args, **kwargs)``, wherever ``fn`` runs.

    In the learner's notebook ``fn`` is their function and this is a plain call. In a class run it is
    the grader's stand-in for the function in the sandboxed kernel (``llmlab.course.remote``), which
    sends the call there; ``hold`` asks it to keep the arguments there between calls (True: all of them,
    a set: those whose ``id`` is in it).
    """
    remote = getattr(fn, "llmlab_invoke", None)
    if remote is not None:
        return remote(args, kwargs, hold=hold, via=via)
    return via(fn, *args, **kwargs) if via is not None else fn(*args, **kwargs)


class Check:
    """One exercise's check. Count what passed with ``expect``; finish with ``done()``.

    >>> c = Check("01.example", fn)
    >>> out = c.call(3)                  # runs the learner's function
    >>> c.expect(out == 9, "3 should give 9", "square the input")
    >>> c.done()                         # prints ✅ 01.example: 1 checks passed

    ``c.draw`` is the check's private :class:`Draw` (seeded with ``seed``, by default the id's CRC32).
    """

    def __init__(self, exercise_id: str, fn: Callable, seed: int | None = None):
        self.id = exercise_id
        self.passed = 0
        self.draw = Draw(zlib.crc32(exercise_id.encode()) if seed is None else seed)
        if not callable(fn):
            self.fail(f"expected your function, got {type(fn).__name__}", "pass the function itself, without calling it")
        self.fn = fn

    def fail(self, what: str, hint: str = ""):
        raise ExerciseFailure(self.id, what, hint)

    def expect(self, condition: Any, what: str, hint: str = "") -> None:
        if not condition:
            self.fail(what, hint)
        self.passed += 1

    def call(self, *args, error_hints: dict[str, str] | None = None, copy_args: bool = True, inplace: bool = False,
             via=None, **kwargs):
        """Run the learner's function on copies of the arguments (so it cannot alter our data), and fail if
        it changed them: an exercise returns new values unless it says it writes in place (``inplace=True``).

        ``error_hints`` maps a fragment of an exception's message (e.g. "math domain error") to
        the hint for the mistake that usually raises it. ``copy_args=False`` passes the objects
        themselves: large read-only tables (a tokenizer's 49K merges), whose copies would cost
        seconds, and objects the function is meant to change (a cache, a model and its optimiser).
        ``via``: a module-level *harness* ``via(fn, *args, **kwargs)`` that calls the function and
        returns plain data, for what needs the live result (a backward pass through it, a run on
        spawned processes); in a class run it runs in the learner's kernel, beside the function.
        """
        hold: bool | set[int] = not copy_args
        originals = (*args, *kwargs.values())
        if copy_args:
            copied, copied_kw = copy.deepcopy(args), copy.deepcopy(kwargs)
            # what deepcopy hands back as is (an object immutable by contract, such as a dictionary) may stay put
            hold = {id(a) for a, b in zip(originals, (*copied, *copied_kw.values())) if a is b}
            args, kwargs = copied, copied_kw
        try:
            out = invoke(self.fn, args, kwargs, hold=hold, via=via)
        except NotImplementedError:
            self.fail("not implemented yet", NOT_IMPLEMENTED_HINT)
        except ExerciseFailure:
            raise
        except Exception as e:  # the learner's bug: say what and where, in one line
            hint = next((h for frag, h in (error_hints or {}).items() if frag in str(e)), None)
            if hint is None and isinstance(e, TypeError) and "argument" in str(e) and not learner_frame(e):
                hint = SIGNATURE_HINT  # raised by the call itself: the parameters differ from the stub's
            self.fail(f"your function raised {type(e).__name__}: {e}", hint or learner_frame(e))
        if copy_args and not inplace:
            names = list(kwargs)
            for i, (before, after) in enumerate(zip(originals, (*args, *kwargs.values()))):
                if (where := changed(before, after)) is not None:
                    arg = _ORDINALS[i] + " argument" if i < len(args) else f"argument {names[i - len(args)]}"
                    self.fail(f"your function changed its {arg} in place ({where})", INPLACE_HINT)
        return out

    def hidden(self, reference: Callable, cases: list[Case], *, rtol: float | None = None, atol: float | None = None,
               compare: Callable[[Any, Any], str | None] | None = None, **call_options) -> None:
        """Compare the learner's function with ``reference`` on each hidden case; ``compare(actual,
        expected)`` replaces :func:`same` (it returns why they differ, or None)."""
        via = call_options.get("via")
        for case in cases:
            args, kwargs = copy.deepcopy((case.args, case.kwargs))
            want = via(reference, *args, **kwargs) if via is not None else reference(*args, **kwargs)
            try:
                got = self.call(*case.args, **call_options, **case.kwargs)
            except ExerciseFailure as e:  # say which kind of input made it fail: the learner never saw it
                if e.what == "not implemented yet":
                    raise
                raised = e.what.startswith("your function raised")  # the case's hint says why; an in-place change keeps its own
                raise ExerciseFailure(self.id, f"on a hidden case ({case.kind}), {e.what}",
                                      case.hint if raised and case.hint else e.hint) from None
            why = compare(got, want) if compare is not None else same(got, want, rtol, atol, reveal=False)
            if why:
                self.fail(f"wrong on a hidden case ({case.kind}): {why}",
                          case.hint or (DTYPE_HINT if "dtype" in why else HIDDEN_HINT))
            self.passed += 1

    def number(self, x: Any, what: str) -> float | int:
        """``x`` as a Python number, or fail saying ``what`` should be one."""
        value = number(x)
        if value is None:
            self.fail(f"{what} should be a number, got {type(x).__name__}", "return a Python number (or a 0-d tensor)")
        return value

    def counts(self, x: Any, what: str) -> Counter:
        """``x`` as a Counter without its zero counts, or fail saying ``what`` should be a dict or Counter."""
        self.expect(isinstance(x, Mapping), f"{what} returned {type(x).__name__}, expected a dict or Counter",
                    "collections.Counter is made for counting")
        return Counter({k: v for k, v in x.items() if v})

    def diagnose(self, actual: Any, mistakes: dict[str, Any], what: str, rtol: float = 1e-6,
                 correct: Any = None) -> None:
        """Fail with the hint of the first known mistake whose result ``actual`` reproduces.

        ``mistakes`` maps a hint to the value that mistake computes on the same inputs (a tensor, a
        number, or any value compared with ``==``); a mistake that happens to give the ``correct``
        value on these inputs is not a diagnosis.
        """
        def matches(a, b) -> bool:
            if isinstance(b, torch.Tensor) or isinstance(a, torch.Tensor):
                try:
                    a, b = torch.as_tensor(a).double(), torch.as_tensor(b).double()
                except (TypeError, ValueError, RuntimeError):
                    return False
                return a.shape == b.shape and bool(torch.isfinite(b).all()) and torch.allclose(a, b, rtol=rtol, atol=1e-12)
            if number(b) is not None and not isinstance(b, int):
                x = number(a)
                return x is not None and math.isfinite(b) and math.isclose(x, b, rel_tol=rtol)
            try:
                return bool(a == b)
            except Exception:  # a value that cannot be compared is not this mistake
                return False

        for hint, value in mistakes.items():
            if matches(actual, value) and not (correct is not None and matches(correct, value)):
                self.fail(what, hint)

    def absorb(self, result: Result) -> None:
        """Count another check's result as part of this one (fail with its message when it failed)."""
        if not result.passed:
            self.fail(result.what, result.hint)
        self.passed += result.checks

    def expect_tensor(
        self,
        x: Any,
        shape: tuple[int, ...] | None = None,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
        name: str = "result",
    ) -> None:
        self.expect(isinstance(x, torch.Tensor), f"{name} should be a torch.Tensor, got {type(x).__name__}",
                    "build the result with torch operations")
        if shape is not None:
            self.expect(tuple(x.shape) == tuple(shape), f"{name} has shape {tuple(x.shape)}, expected {tuple(shape)}",
                        "check which dimension you reduced or indexed")
        if dtype is not None:
            self.expect(x.dtype == dtype, f"{name} has dtype {x.dtype}, expected {dtype}",
                        "keep the dtype of the input (avoid creating tensors with a fixed dtype)")
        if device is not None:
            self.expect(x.device.type == torch.device(device).type,
                        f"{name} is on {x.device}, expected {torch.device(device)}",
                        "create new tensors on the input's device (device=x.device)")

    def close(self, actual: torch.Tensor, expected: torch.Tensor, what: str, hint: str = "",
              rtol: float | None = None, atol: float | None = None) -> None:
        """``actual`` ≈ ``expected`` within the tolerances of the less precise of the two dtypes."""
        lower = actual if isinstance(actual, torch.Tensor) and actual.is_floating_point() and \
            torch.finfo(actual.dtype).eps > torch.finfo(expected.dtype).eps else expected
        d_rtol, d_atol = tolerances(lower.dtype, lower.device)
        try:
            torch.testing.assert_close(actual, expected, rtol=d_rtol if rtol is None else rtol,
                                       atol=d_atol if atol is None else atol, check_dtype=False,
                                       check_device=False)
        except AssertionError as e:
            detail = " ".join(str(e).split("\n")[1:3]).strip()
            self.fail(f"{what} ({detail})" if detail else what, hint)
        self.passed += 1

    def done(self) -> None:
        print(f"✅ {self.id}: {self.passed} checks passed")


def exercise(exercise_id: str, *, reference: Callable | None = None,
             cases: Callable[[Draw], list[Case]] | None = None, **hidden_options):
    """Make ``body(c: Check)`` the check of ``exercise_id``.

    The decorated ``check(fn)`` runs the body, then (when ``cases`` is given) the hidden stage:
    ``cases(draw)`` builds the hidden inputs from the check's private :class:`Draw`, and
    :meth:`Check.hidden` compares ``fn`` with ``reference`` on each (``hidden_options``: ``rtol``,
    ``atol``, ``compare`` and :meth:`Check.call`'s options). It prints the ✅ line, or raises
    :class:`ExerciseFailure`. ``check.result(fn, seed=None)`` returns the :class:`Result` instead;
    ``check.hidden_result(fn, seed)`` runs the hidden stage alone.
    """
    if cases is not None and reference is None:
        raise ValueError(f"{exercise_id}: hidden cases need a reference")

    def decorate(body: Callable[[Check], None]):
        def run(fn: Callable, seed: int | None, stages) -> Result:
            c = None
            try:
                c = Check(exercise_id, fn, seed)
                for stage in stages:
                    stage(c)
            except ExerciseFailure as e:
                return Result(exercise_id, False, c.passed if c is not None else 0, e.what, e.hint)
            return Result(exercise_id, True, c.passed)

        def hidden_stage(c: Check) -> None:
            if cases is not None:
                c.hidden(reference, cases(c.draw), **hidden_options)

        @functools.wraps(body)
        def check(fn: Callable) -> None:
            outcome = run(fn, None, (body, hidden_stage))
            if not outcome.passed:
                raise outcome.failure()
            print(outcome.line)

        check.result = lambda fn, seed=None: run(fn, seed, (body, hidden_stage))
        check.hidden_result = lambda fn, seed=None: run(fn, seed, (hidden_stage,))
        check.exercise_id, check.reference, check.cases, check.hidden_options = exercise_id, reference, cases, hidden_options
        return check

    return decorate
