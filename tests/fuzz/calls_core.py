"""Valid calls: the package itself (``llmlab``) and its argument checks (``llmlab.validate``).

The checks are called with ``name`` equal to the argument's own name (``value``, ``x``, ``tokens``), so
that a message naming the checked value names the argument.
"""
from __future__ import annotations

import torch

from tests.fuzz import fixtures as F

VALID = {
    "llmlab.device": lambda: {},
    "llmlab.model_device": lambda: dict(model=F.decoder()),
    "llmlab.model_dtype": lambda: dict(model=F.decoder()),
    "llmlab.validate.flag": lambda: dict(name="value", value=True),
    "llmlab.validate.integer": lambda: dict(name="value", value=3, minimum=1, maximum=10),
    "llmlab.validate.bits": lambda: dict(name="value", value=4),
    "llmlab.validate.positive_int": lambda: dict(name="value", value=3, minimum=1),
    "llmlab.validate.size": lambda: dict(name="value", value=3, minimum=1),
    "llmlab.validate.divisor": lambda: dict(name="value", value=4, of=12, minimum=1, what="the width"),
    "llmlab.validate.real": lambda: dict(name="value", value=0.5, minimum=0.0, maximum=1.0, finite=True),
    "llmlab.validate.positive_float": lambda: dict(name="value", value=0.5, allow_zero=False),
    "llmlab.validate.probability": lambda: dict(name="value", value=0.5, allow_zero=True, allow_one=True),
    "llmlab.validate.choice": lambda: dict(name="value", value="a", options=["a", "b"]),
    "llmlab.validate.tensor": lambda: dict(name="x", x=F.randn(2, 3), ndim=2, min_ndim=1, floating=True, finite=True),
    "llmlab.validate.all_finite": lambda: dict(x=F.randn(2, 3)),
    "llmlab.validate.device": lambda: dict(name="value", value="cpu"),
    "llmlab.validate.decoder": lambda: dict(name="model", model=F.decoder()),
    "llmlab.validate.layered_model": lambda: dict(name="model", model=F.decoder()),
    "llmlab.validate.zero_one_mask": lambda: dict(name="mask", mask=torch.ones(2, 3, dtype=torch.long)),
    "llmlab.validate.explain_input": lambda: dict(name="x", x=F.randn(2, 3), width=3, error=RuntimeError("boom"),
                                                  dtype=None),
    "llmlab.validate.path": lambda: dict(name="value", value="folder/file.txt"),
    "llmlab.validate.strings": lambda: dict(name="value", value=["a", "b"], what="str tokens"),
    "llmlab.validate.token_ids": lambda: dict(name="tokens", tokens=[1, 2, 3], vocab_size=10, allow_empty=False),
    "llmlab.validate.token_batch": lambda: dict(name="idx", idx=F.ids(2, 5), vocab_size=F.VOCAB, max_len=8),
    "llmlab.validate.token_budget": lambda: dict(max_new_tokens=3, n_prompt=4, context=16),
}

SKIP: dict[str, str] = {}

# The checks' own settings (the name to print, the bounds, the options) are literals that the package writes
# at each call site, not input from a user: only the checked value is fuzzed.
_SETTINGS = "the check's own settings, written as literals by the package; only the checked value is fuzzed"
FIXED: dict[str, tuple[tuple[str, ...], str]] = {
    f"llmlab.validate.{name}": (settings, _SETTINGS) for name, settings in {
        "flag": ("name",),
        "integer": ("name", "minimum", "maximum"),
        "bits": ("name",),
        "positive_int": ("name", "minimum"),
        "size": ("name", "minimum"),
        "divisor": ("name", "of", "minimum", "what"),
        "real": ("name", "minimum", "maximum", "above", "below", "finite"),
        "positive_float": ("name", "allow_zero"),
        "probability": ("name", "allow_zero", "allow_one"),
        "choice": ("name", "options"),
        "tensor": ("name", "ndim", "min_ndim", "floating", "finite"),
        "device": ("name", "allow_none"),
        "decoder": ("name",),
        "layered_model": ("name",),
        "strings": ("name", "what"),
        "zero_one_mask": ("name",),
        "explain_input": ("name", "width", "error", "dtype"),
        "path": ("name",),
        "token_ids": ("name", "vocab_size", "allow_empty"),
        "token_batch": ("name", "vocab_size", "max_len"),
        "token_budget": ("n_prompt", "context"),
    }.items()
}
