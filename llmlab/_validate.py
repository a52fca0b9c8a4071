"""Argument checks shared by the public functions: one clear ValueError/TypeError each."""
from __future__ import annotations

import math
import numbers
from collections.abc import Sequence


def positive_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def positive_float(name: str, value, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    value = float(value)
    if math.isnan(value) or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value}")
    return value


def token_ids(name: str, tokens, vocab_size: int | None = None, allow_empty: bool = False) -> list[int]:
    """A sequence of non-negative ints (or ``bytes``), returned as a list."""
    if isinstance(tokens, str):
        raise TypeError(f"{name} must be a sequence of token ids, got str; encode it first, e.g. list(text.encode())")
    if not isinstance(tokens, (Sequence, bytes, bytearray)) and not hasattr(tokens, "tolist"):
        raise TypeError(f"{name} must be a sequence of token ids, got {type(tokens).__name__}")
    ids = tokens.tolist() if hasattr(tokens, "tolist") else list(tokens)
    if not ids and not allow_empty:
        raise ValueError(f"{name} is empty: need at least one token")
    for t in ids:
        if isinstance(t, bool) or not isinstance(t, numbers.Integral):
            raise TypeError(f"{name} must hold ints, found {type(t).__name__} {t!r}")
        if t < 0 or (vocab_size is not None and t >= vocab_size):
            raise ValueError(f"{name} holds id {t}, outside [0, {vocab_size if vocab_size else 'inf'})")
    return [int(t) for t in ids]
