"""What every check is made of.

A check works through a learner's function in a fixed order, and stops at the first problem:

1. not implemented yet (the stub still raises ``NotImplementedError``);
2. type, shape, dtype, device of the result;
3. invariants that name the likely mistake (probabilities sum to 1, ...), and known wrong answers
   recognised by value ("your result equals what you get when ...");
4. comparison with llmlab's reference implementation, with tolerances by dtype and device;
5. edge cases.

Randomness comes from private ``torch.Generator``s, so a check never disturbs, nor depends on, the
learner's global seed.
"""
from __future__ import annotations

import copy
import traceback
from pathlib import Path
from typing import Any, Callable

import torch

_PACKAGE_DIR = str(Path(__file__).resolve().parents[1])
NOT_IMPLEMENTED_HINT = "replace `raise NotImplementedError` with your code, run that cell, then this one"


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
    """

    def __init__(self, exercise_id: str, fn: Callable):
        self.id = exercise_id
        self.passed = 0
        if not callable(fn):
            self.fail(f"expected your function, got {type(fn).__name__}", "pass the function itself, without calling it")
        self.fn = fn

    def fail(self, what: str, hint: str = ""):
        raise ExerciseFailure(self.id, what, hint)

    def expect(self, condition: Any, what: str, hint: str = "") -> None:
        if not condition:
            self.fail(what, hint)
        self.passed += 1

    def call(self, *args, error_hints: dict[str, str] | None = None, copy_args: bool = True, via=None, **kwargs):
        """Run the learner's function on copies of the arguments (so it cannot alter our data).

        ``error_hints`` maps a fragment of an exception's message (e.g. "math domain error") to
        the hint for the mistake that usually raises it. ``copy_args=False`` passes the objects
        themselves: large read-only tables (a tokenizer's 49K merges), whose copies would cost
        seconds, and objects the function is meant to change (a cache, a model and its optimiser).
        ``via``: a module-level *harness* ``via(fn, *args, **kwargs)`` that calls the function and
        returns plain data, for what needs the live result (a backward pass through it, a run on
        spawned processes); in a class run it runs in the learner's kernel, beside the function.
        """
        hold: bool | set[int] = not copy_args
        if copy_args:
            copied, copied_kw = copy.deepcopy(args), copy.deepcopy(kwargs)
            # what deepcopy hands back as is (an object immutable by contract, such as a dictionary) may stay put
            hold = {id(a) for a, b in zip((*args, *kwargs.values()), (*copied, *copied_kw.values())) if a is b}
            args, kwargs = copied, copied_kw
        try:
            return invoke(self.fn, args, kwargs, hold=hold, via=via)
        except NotImplementedError:
            self.fail("not implemented yet", NOT_IMPLEMENTED_HINT)
        except ExerciseFailure:
            raise
        except Exception as e:  # the learner's bug: say what and where, in one line
            hint = next((h for frag, h in (error_hints or {}).items() if frag in str(e)), None)
            self.fail(f"your function raised {type(e).__name__}: {e}", hint or learner_frame(e))

    def diagnose(self, actual: torch.Tensor, mistakes: dict[str, torch.Tensor], what: str, rtol: float = 1e-6,
                 correct: torch.Tensor | None = None) -> None:
        """Fail with the hint of the first known mistake whose result ``actual`` reproduces.

        ``mistakes`` maps a hint to the value that mistake computes on the same inputs; a mistake
        that happens to give the ``correct`` value on these inputs is not a diagnosis.
        """
        def same(a, b) -> bool:
            a, b = torch.as_tensor(a).double(), torch.as_tensor(b).double()
            return a.shape == b.shape and bool(torch.isfinite(b).all()) and torch.allclose(a, b, rtol=rtol, atol=1e-12)

        for hint, value in mistakes.items():
            if same(actual, value) and not (correct is not None and same(correct, value)):
                self.fail(what, hint)

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
