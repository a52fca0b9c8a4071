"""Bad values for one argument, chosen by what its valid value is.

``bad_values(name, value, parameter)`` lists ``(kind, bad value)`` pairs: ``<None>`` (unless None is
allowed), a wrong type (``<str>``, ``<int>``, ``<float>``, ``<list>``), ``<empty>``, ``<nan>``, ``<inf>``,
``<-inf>``, ``<negative>``, ``<zero>``, ``<huge>`` (10**12, for ints), a tensor with an ``<extra_dim>`` or a
``<missing_dim>``, of the wrong dtype (``<int_dtype>``, ``<float_dtype>``), an ``<unknown>`` choice for a
string that names an option, and so on. Only what makes sense for the argument is generated: no NaN for a
str, no negative seed. The same inputs always give the same list, so a worker can rebuild a bad call from
its kind alone.
"""
from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Mapping
from pathlib import PurePath

import torch

HUGE = 10**12

#: Strings that name one of a few options: an unknown one is a bad value.
CHOICE_NAMES = {"split", "lang", "method", "init", "scope", "granularity", "tokenize", "smooth", "average",
                "backend", "kind", "allowed_special", "device", "zero_division", "unk", "label", "topic", "qid"}
#: Paths: a wrong type or an empty path is bad, any string could be a file.
PATH_NAMES = {"path", "folder"}


def _optional(param: inspect.Parameter | None) -> bool:
    """Whether None is a documented value of the parameter (its default, or ``| None`` in its annotation)."""
    if param is None:
        return False
    if param.default is None:
        return True
    annotation = param.annotation
    text = annotation if isinstance(annotation, str) else repr(annotation)
    return "None" in text or "Optional" in text


def _is_choice(name: str, param: inspect.Parameter | None) -> bool:
    annotation = getattr(param, "annotation", "")
    text = annotation if isinstance(annotation, str) else repr(annotation)
    return name in CHOICE_NAMES or "Literal" in text


def _int_values(name: str, value: int) -> list[tuple[str, object]]:
    out = [("<str>", str(value)), ("<float>", value + 0.5)]
    if "seed" in name:
        return out
    if value >= 0:
        out.append(("<negative>", -1))
    if value != 0:
        out.append(("<zero>", 0))
    out.append(("<huge>", HUGE))
    return out


def _float_values(value: float) -> list[tuple[str, object]]:
    out = [("<str>", str(value)), ("<nan>", math.nan), ("<inf>", math.inf), ("<-inf>", -math.inf)]
    if value >= 0:
        out.append(("<negative>", -abs(value) if value else -1.0))
    if value != 0:
        out.append(("<zero>", 0.0))
    return out


def _tensor_values(value: torch.Tensor) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    if value.ndim >= 1:
        out += [("<list>", value.tolist()), ("<empty>", value[:0].clone())]
    if value.is_floating_point() and value.numel():
        nan = value.detach().clone(memory_format=torch.contiguous_format)
        nan.view(-1)[0] = math.nan
        out.append(("<nan>", nan))
    elif value.dtype not in (torch.bool, torch.uint8) and value.numel():
        negative = value.detach().clone(memory_format=torch.contiguous_format)
        negative.view(-1)[0] = -1
        out.append(("<negative>", negative))
    out.append(("<extra_dim>", value.detach().clone().unsqueeze(0)))
    if value.ndim >= 1 and value.shape[0] >= 1:
        out.append(("<missing_dim>", value.detach()[0].clone()))
    if value.is_floating_point():
        out.append(("<int_dtype>", value.detach().to(torch.int64)))
    else:
        out.append(("<float_dtype>", value.detach().to(torch.float32)))
    return out


def _sequence_values(value) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = [("<str>", "abc"), ("<empty>", type(value)())]
    if not value:
        return out
    first = value[0]
    if isinstance(first, bool):
        return out
    if isinstance(first, numbers.Integral):
        out.append(("<negative_item>", type(value)([-1, *value[1:]])))
    elif isinstance(first, numbers.Real):
        out.append(("<nan_item>", type(value)([math.nan, *value[1:]])))
    elif isinstance(first, str):
        out.append(("<int_item>", type(value)([1, *value[1:]])))
    elif isinstance(first, (list, tuple)) and not isinstance(value, tuple):
        out.append(("<empty_item>", type(value)([type(first)(), *value[1:]])))
    return out


def bad_values(name: str, value, param: inspect.Parameter | None = None) -> list[tuple[str, object]]:
    """``[(kind, bad value), ...]`` for argument ``name`` whose valid value is ``value``."""
    out: list[tuple[str, object]] = []
    if value is None:
        return out
    if not _optional(param):
        out.append(("<None>", None))
    if isinstance(value, bool):
        out.append(("<str>", "yes"))
    elif isinstance(value, numbers.Integral):
        out += _int_values(name, int(value))
    elif isinstance(value, numbers.Real):
        out += _float_values(float(value))
    elif isinstance(value, (PurePath,)) or (isinstance(value, str) and name in PATH_NAMES):
        out += [("<int>", 3), ("<empty>", "")]
    elif isinstance(value, str):
        out.append(("<int>", 3))
        if value:
            out.append(("<empty>", ""))
        if _is_choice(name, param):
            out.append(("<unknown>", "bogus"))
    elif isinstance(value, torch.Tensor):
        out += _tensor_values(value)
    elif isinstance(value, (torch.dtype, torch.Generator, torch.device)):
        out.append(("<str>", "bogus"))
    elif isinstance(value, range):
        out += [("<str>", "abc"), ("<empty>", range(0))]
    elif isinstance(value, Mapping):
        out += [("<str>", "abc"), ("<empty>", type(value)())]
    elif isinstance(value, (list, tuple)):
        out += _sequence_values(value)
    else:  # a model, a function, a tokenizer, a config...
        out.append(("<str>", "abc"))
    return out
