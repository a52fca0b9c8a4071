"""The arguments' checks of every public function: one vocabulary, one kind of message.

A wrong *type* raises TypeError, a wrong *value* ValueError, and every message names the argument and
says what was expected: ``k must be >= 1, got 0``. Numbers must be finite unless a check says
otherwise, and sizes have an upper bound (``MAX_SIZE``) so that a typo such as 10**12 fails at once
instead of allocating until the machine runs out of memory. Public functions call these at their
boundary, once per call; hot loops (a layer's forward, a decode step) trust what was checked above them.
"""
from __future__ import annotations

import math
import numbers
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

MAX_SIZE = 10**8  # counts and lengths that allocate: more than any model here needs, far less than RAM


def _type_name(value) -> str:
    return type(value).__name__


def flag(name: str, value) -> bool:
    """A switch: True or False (not 0/1, None or a string, which would read as a different choice)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {_type_name(value)}")
    return value


def integer(name: str, value, minimum: int | None = None, maximum: int | None = None) -> int:
    """An int (not a bool) in [minimum, maximum]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {_type_name(value)}")
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        bounds = [f"{op} {b}" for op, b in ((">=", minimum), ("<=", maximum)) if b is not None]
        raise ValueError(f"{name} must be {' and '.join(bounds)}, got {value}")
    return value


def bits(name: str, value) -> int:
    """A code width in bits that the quantizers here handle: an int from 2 to 8."""
    return integer(name, value, 2, 8)


def positive_int(name: str, value, minimum: int = 1) -> int:
    """A count: an int >= ``minimum`` (1 unless told)."""
    return integer(name, value, minimum)


def size(name: str, value, minimum: int = 1) -> int:
    """A count that something is allocated or looped over by: an int >= ``minimum``, at most ``MAX_SIZE``."""
    return integer(name, value, minimum, MAX_SIZE)


def divisor(name: str, value, of: int, minimum: int = 1, what: str = "") -> int:
    """An int >= ``minimum`` that divides ``of`` (a group size of a width, say; ``what`` names ``of``)."""
    value = integer(name, value, minimum)
    if of % value:
        raise ValueError(f"{name} must divide {what or 'the size'} {of}, got {value}")
    return value


def real(name: str, value, minimum: float | None = None, maximum: float | None = None,
         above: float | None = None, below: float | None = None, finite: bool = True) -> float:
    """A number (int or float, not a bool) as a float: >= ``minimum``, > ``above``, <= ``maximum``,
    < ``below``; NaN is never accepted, ±inf only with ``finite=False``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {_type_name(value)}")
    value = float(value)
    bounds = " and ".join(f"{op} {b:g}" for op, b in ((">=", minimum), (">", above), ("<=", maximum), ("<", below))
                          if b is not None)
    if math.isnan(value) or (finite and math.isinf(value)):
        raise ValueError(f"{name} must be a finite number{' ' + bounds if bounds else ''}, got {value}")
    if ((minimum is not None and value < minimum) or (above is not None and value <= above)
            or (maximum is not None and value > maximum) or (below is not None and value >= below)):
        raise ValueError(f"{name} must be {bounds}, got {value}")
    return value


def positive_float(name: str, value, allow_zero: bool = False) -> float:
    """A finite number > 0 (>= 0 with ``allow_zero``)."""
    return real(name, value, minimum=0.0) if allow_zero else real(name, value, above=0.0)


def probability(name: str, value, allow_zero: bool = True, allow_one: bool = True) -> float:
    """A number in [0, 1]; ``allow_zero``/``allow_one`` False exclude that end."""
    return real(name, value, **({"minimum": 0.0} if allow_zero else {"above": 0.0}),
                **({"maximum": 1.0} if allow_one else {"below": 1.0}))


def choice(name: str, value, options: Sequence):
    """One of ``options`` (compared with ==)."""
    if value not in options:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}; got {value!r}")
    return value


def tensor(name: str, x, ndim: int | None = None, min_ndim: int = 0, floating: bool = False,
           finite: bool = False) -> torch.Tensor:
    """A torch.Tensor with ``ndim`` dimensions (or at least ``min_ndim``), of a floating dtype if
    ``floating``, without NaN or inf if ``finite``."""
    import torch  # here, not at the top: light modules (file paths, the course tools) use this one too

    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {_type_name(x)}")
    if floating and not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if (ndim is not None and x.ndim != ndim) or x.ndim < min_ndim:
        want = f"{ndim}" if ndim is not None else f"at least {min_ndim}"
        raise ValueError(f"{name} must have {want} dimensions, got shape {tuple(x.shape)}")
    if finite and x.is_floating_point() and not all_finite(x):
        raise ValueError(f"{name} holds NaN or inf values")
    return x


def all_finite(x) -> bool:
    """Whether a tensor holds no NaN and no inf. For the common float dtypes this reads the smallest and largest
    value (one reduction that propagates NaN), 25x faster on a CPU than ``torch.isfinite(x).all()``, which
    writes a bool per element first; a weight matrix is checked in microseconds instead of milliseconds."""
    import torch

    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {_type_name(x)}")
    if not x.is_floating_point() or x.numel() == 0:
        return True
    if x.dtype not in (torch.float32, torch.float64, torch.float16, torch.bfloat16):  # float8: no aminmax, no isfinite
        return bool(torch.isfinite(x.float()).all())
    lo, hi = torch.aminmax(x.detach())
    return bool(torch.isfinite(lo) & torch.isfinite(hi))  # one read back, not two: on a GPU, one sync


def device(name: str, value, allow_none: bool = False):
    """A torch device given as a torch.device or a str such as 'cpu' or 'cuda:0', one this machine has
    (None too with ``allow_none``: where the default device, or the inputs' own, is meant)."""
    import torch

    if value is None and allow_none:
        return None

    if not isinstance(value, (str, torch.device)):
        raise TypeError(f"{name} must be a torch.device or a str such as 'cpu', got {_type_name(value)}")
    try:
        dev = torch.device(value)
    except RuntimeError:
        raise ValueError(f"{name} must name a device such as 'cpu' or 'cuda:0', got {value!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{name} is {value!r} but CUDA is not available on this machine")
    return dev


def decoder(name: str, model):
    """A model a decoding loop can drive: callable on token ids, with a ``cfg`` (an llmlab ``Decoder`` or
    ``FastDecoder``), whose sizes the loop reads."""
    if not callable(model) or not hasattr(model, "cfg"):
        raise TypeError(f"{name} must be an llmlab Decoder or FastDecoder, got {_type_name(model)}")
    return model


def layered_model(name: str, model):
    """An llmlab ``Decoder`` or ``Encoder``: an nn.Module whose blocks are in ``model.layers`` (an nn.ModuleList),
    which the quantizers, pruners and calibration hooks walk."""
    import torch.nn as nn

    if not isinstance(model, nn.Module) or not isinstance(getattr(model, "layers", None), nn.ModuleList):
        raise TypeError(f"{name} must be an llmlab Decoder or Encoder (a model with .layers), got {_type_name(model)}")
    return model


def zero_one_mask(name: str, mask):
    """An attention mask: a bool or integer tensor of 1 (a real token) and 0 (padding), not empty."""
    import torch

    tensor(name, mask)
    if mask.dtype.is_floating_point or mask.dtype.is_complex:
        raise TypeError(f"{name} must hold 0/1 integers or bools, got dtype {mask.dtype}")
    if mask.numel() == 0:
        raise ValueError(f"{name} is empty, shape {tuple(mask.shape)}: need at least one token")
    if mask.dtype != torch.bool and bool(((mask != 0) & (mask != 1)).any()):
        raise ValueError(f"{name} must hold 1 (real token) or 0 (padding) only, got values {mask.unique().tolist()}")
    return mask


def explain_input(name: str, x, width: int, error: Exception, dtype=None) -> None:
    """For a hot ``forward`` that checks nothing on success: called when its computation on ``x`` (..., width)
    failed, raise a TypeError or ValueError naming ``name`` if ``x`` was the cause (not a tensor, not floating,
    not the layer's ``dtype`` outside autocast, or the wrong width); return if it was not, so that the caller
    re-raises the original error."""
    import torch

    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {_type_name(x)}") from error
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}") from error
    if dtype is not None and x.dtype != dtype and not torch.is_autocast_enabled(x.device.type):
        raise TypeError(f"{name} must have the layer's dtype {dtype}, got {x.dtype}") from error
    if x.ndim == 0 or x.shape[-1] != width:
        raise ValueError(f"{name} must have width {width} in its last dim, got shape {tuple(x.shape)}") from error


def path(name: str, value) -> Path:
    """A file's path: a str or os.PathLike, not an int (which open() would take as a file descriptor)."""
    if isinstance(value, bool) or not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path (str or pathlib.Path), got {_type_name(value)}")
    if not str(value):
        raise ValueError(f"{name} is an empty path")
    return Path(value)


def strings(name: str, value, what: str = "str items") -> list[str]:
    """A list (or tuple) of str, such as tokens or words, not a str (whose characters would pass for them)."""
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"{name} must be a list of {what}, got {_type_name(value)}")
    for item in value:
        if not isinstance(item, str):
            raise TypeError(f"{name} must hold {what}, found {_type_name(item)} {item!r}")
    return list(value)


def token_ids(name: str, tokens, vocab_size: int | None = None, allow_empty: bool = False) -> list[int]:
    """A sequence of non-negative ints (or ``bytes``), each below ``vocab_size`` if given, as a list."""
    if isinstance(tokens, str):
        raise TypeError(f"{name} must be a sequence of token ids, got str; encode it first, e.g. list(text.encode())")
    if not isinstance(tokens, (Sequence, bytes, bytearray)) and not hasattr(tokens, "tolist"):
        raise TypeError(f"{name} must be a sequence of token ids, got {_type_name(tokens)}")
    ids = tokens.tolist() if hasattr(tokens, "tolist") else list(tokens)
    if not isinstance(ids, list):
        raise TypeError(f"{name} must be a sequence of token ids, got a single {_type_name(ids)}")
    if not ids and not allow_empty:
        raise ValueError(f"{name} is empty: need at least one token")
    if all(type(t) is int for t in ids):  # the common case, ~5x faster than the checks below (a corpus of bytes)
        if ids and (min(ids) < 0 or (vocab_size is not None and max(ids) >= vocab_size)):
            bad = next(t for t in ids if t < 0 or (vocab_size is not None and t >= vocab_size))
            raise ValueError(f"{name} holds id {bad}, outside [0, {vocab_size if vocab_size else 'inf'})")
        return ids  # a new list: list(tokens) or tokens.tolist()
    for t in ids:
        if isinstance(t, bool) or not isinstance(t, numbers.Integral):
            raise TypeError(f"{name} must hold ints, found {_type_name(t)} {t!r}")
        if t < 0 or (vocab_size is not None and t >= vocab_size):
            raise ValueError(f"{name} holds id {t}, outside [0, {vocab_size if vocab_size else 'inf'})")
    return [int(t) for t in ids]


def token_batch(name: str, idx, vocab_size: int, max_len: int) -> torch.Tensor:
    """A model's input: an integer tensor (B, T) with 1 <= T <= max_len and every id in [0, vocab_size)."""
    import torch

    if not isinstance(idx, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of token ids, got {_type_name(idx)}")
    if idx.dtype.is_floating_point or idx.dtype.is_complex or idx.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer token ids (torch.long), got dtype {idx.dtype}")
    if idx.ndim != 2:
        raise ValueError(f"{name} must have shape (B, T) (2 dims), got {tuple(idx.shape)}; for one sequence use ids[None]")
    if idx.numel() == 0:
        raise ValueError(f"{name} is empty, shape {tuple(idx.shape)}: need at least one sequence of one token")
    if idx.shape[1] > max_len:
        raise ValueError(f"sequence of {idx.shape[1]} tokens is longer than max_seq_len={max_len}")
    lo, hi = int(idx.min()), int(idx.max())
    if lo < 0 or hi >= vocab_size:
        raise ValueError(f"{name} holds ids outside [0, {vocab_size}): min {lo}, max {hi}")
    return idx


def token_budget(max_new_tokens, n_prompt: int, context: int) -> int:
    """``max_new_tokens``: an int >= 0 such that the prompt's ``n_prompt`` tokens plus the new ones fit the
    model's ``context``."""
    max_new_tokens = integer("max_new_tokens", max_new_tokens, minimum=0)
    if n_prompt > context:
        raise ValueError(f"the prompt has {n_prompt} tokens, longer than the model's context of {context}")
    if n_prompt + max_new_tokens > context:
        raise ValueError(f"prompt ({n_prompt}) + max_new_tokens ({max_new_tokens}) exceed the context of {context}")
    return max_new_tokens
