"""What a notebook's demos take from the grading side: the learner's own function wherever it is written,
llmlab's reference where it is not, and predictions compared with measurements.

* ``yours(fn, reference)`` wraps the learner's function for a demo. The demo calls the wrapper; the first
  call says which implementation ran (``▶ top_p_filter: yours``). A stub that still raises
  ``NotImplementedError`` (or a function that raises anything else) hands over to the reference, once and
  for all, and says why, so a notebook always runs from top to bottom, and runs *the learner's* code as
  soon as there is some. A function that returns wrong values is run as it is: its consequences are the
  lesson (a broken ``top_p_filter`` makes the model babble).
* ``reveal(prediction, measured, what)`` ends a "predict, then run" moment: the learner wrote a number in a
  variable before running the experiment; this prints it next to the measurement and how far off it was.
  It is not graded.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Callable


class Yours:
    """The learner's ``fn`` with ``reference`` as the fallback; call it as you would call ``fn``.

    ``ran`` is None before the first call, then ``"yours"`` or ``"reference"``; ``why`` says why the
    reference took over (``"not written yet"``, or the exception the learner's function raised).
    """

    def __init__(self, fn: Callable, reference: Callable, name: str | None = None, quiet: bool = False):
        if not callable(fn):
            raise TypeError(f"fn must be your function (a callable), got {type(fn).__name__}")
        if not callable(reference):
            raise TypeError(f"reference must be a callable, got {type(reference).__name__}")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str, got {type(name).__name__}")
        if not isinstance(quiet, bool):
            raise TypeError(f"quiet must be True or False, got {type(quiet).__name__}")
        self.fn, self.reference, self.quiet = fn, reference, quiet
        self.name = name or getattr(fn, "__name__", None) or getattr(reference, "__name__", "function")
        self.ran: str | None = None
        self.why = ""

    def __call__(self, *args, **kwargs):
        if self.ran == "reference":
            return self.reference(*args, **kwargs)
        try:
            out = self.fn(*args, **kwargs)
        except NotImplementedError:
            self._hand_over("yours is not written yet")
            return self.reference(*args, **kwargs)
        except Exception as error:  # the demo goes on; the check cell above says what is wrong
            self._hand_over(f"yours raised {type(error).__name__}: {str(error)[:120]}")
            return self.reference(*args, **kwargs)
        if self.ran is None:
            self.ran = "yours"
            self._say(f"▶ {self.name}: yours")
        return out

    def record(self, ran: str, why: str = "", where: str = "") -> None:
        """Say what ran elsewhere (in worker processes, say): ``ran`` "yours" or "reference", printed as the
        wrapper's own first call would print it, once; ``where`` is added to the line ("on every rank")."""
        if ran not in ("yours", "reference"):
            raise ValueError(f"ran must be 'yours' or 'reference', got {ran!r}")
        if ran == "yours" and self.ran is None:
            self.ran = "yours"
            self._say(f"▶ {self.name}: yours" + (f" ({where})" if where else ""))
        elif ran == "reference" and self.ran != "reference":
            self._hand_over(why or "handed over")

    def _hand_over(self, why: str) -> None:
        self.ran, self.why = "reference", why
        self._say(f"▶ {self.name}: llmlab's reference ({why})")

    def _say(self, line: str) -> None:
        if not self.quiet:
            print(line)

    def __repr__(self) -> str:
        state = {None: "not run yet", "yours": "yours", "reference": f"llmlab's reference ({self.why})"}[self.ran]
        return f"<{self.name}: {state}>"


def yours(fn: Callable, reference: Callable, name: str | None = None, quiet: bool = False) -> Yours:
    """``fn`` (the learner's function) for a demo, with ``reference`` (llmlab's) when ``fn`` is not written
    yet or raises; the first call prints which one ran (unless ``quiet``)."""
    return Yours(fn, reference, name, quiet)


def which(*parts: Yours) -> dict[str, str]:
    """{name: "yours" | "llmlab's reference" | "not run"} for the wrapped functions of a demo."""
    out = {}
    for p in parts:
        if not isinstance(p, Yours):
            raise TypeError(f"parts must be made by yours(...), got {type(p).__name__}")
        out[p.name] = {"yours": "yours", "reference": "llmlab's reference", None: "not run"}[p.ran]
    return out


def reveal(prediction: Any, measured: float, what: str, unit: str = "", close: float = 0.25) -> str:
    """Print the learner's ``prediction`` next to the ``measured`` value of ``what`` and return the verdict:
    "close" (within ``close``, relative), "too high", "too low" or "no prediction" (``prediction`` is None)."""
    if not isinstance(what, str) or not what:
        raise (ValueError if isinstance(what, str) else TypeError)(f"what must be a non-empty str, got {what!r}")
    if not isinstance(unit, str):
        raise TypeError(f"unit must be a str, got {type(unit).__name__}")
    if isinstance(measured, bool) or not isinstance(measured, numbers.Real) or not math.isfinite(measured):
        raise (TypeError if not isinstance(measured, numbers.Real) or isinstance(measured, bool) else ValueError)(
            f"measured must be a finite number, got {measured!r}")
    if isinstance(close, bool) or not isinstance(close, numbers.Real) or not 0 < close < 10:
        raise (TypeError if not isinstance(close, numbers.Real) or isinstance(close, bool) else ValueError)(
            f"close must be a number in (0, 10), got {close!r}")
    unit = f" {unit}" if unit else ""
    if prediction is None:
        print(f"🔮 {what}: measured {measured:.4g}{unit}. (No prediction: write a number in the cell above first, "
              "then run both cells: guessing before looking is what makes the result stick.)")
        return "no prediction"
    if isinstance(prediction, bool) or not isinstance(prediction, numbers.Real) or not math.isfinite(prediction):
        raise TypeError(f"prediction must be a number (or None), got {prediction!r}")
    scale = max(abs(measured), 1e-12)
    if abs(prediction - measured) <= close * scale:
        verdict = "close"
    else:
        verdict = "too high" if prediction > measured else "too low"
    ratio = f", {prediction / measured:.2g}× the measurement" if measured and verdict != "close" else ""
    mark = "✅" if verdict == "close" else "🔮"
    print(f"{mark} {what}: you predicted {prediction:.4g}{unit}, measured {measured:.4g}{unit}: {verdict}{ratio}")
    return verdict
