"""One valid call: what to call and with which keyword arguments."""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass
class Call:
    """``fn(**kwargs)`` succeeds. ``signature``: where to read the parameters' defaults and annotations
    when ``fn`` hides them (a ``*args, **kwargs`` wrapper); default ``fn`` itself. ``no_grad``: run under
    ``torch.no_grad()``, as the callers of an inference-only method do."""

    fn: Callable
    kwargs: dict[str, Any] = field(default_factory=dict)
    signature: Callable | None = None
    no_grad: bool = False

    def parameters(self) -> dict[str, inspect.Parameter]:
        try:
            return dict(inspect.signature(self.signature or self.fn).parameters)
        except (TypeError, ValueError):
            return {}


def method(obj, name: str, *, no_grad: bool = False, **kwargs) -> Call:
    """A call of ``obj.name(**kwargs)``: a method of an instance, or a classmethod of a class."""
    return Call(getattr(obj, name), kwargs, no_grad=no_grad)
