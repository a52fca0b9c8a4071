"""Valid calls: the compiled decode step (llmlab.inference.compiled_step) and the K-major fp32 layout it is
benchmarked with (fast_decoder.TransposedLinear). Nothing here compiles: a
CompiledDecoder compiles at its first one-token step, and package_step is skipped (a minute per call)."""
from __future__ import annotations

from tests.fuzz import fixtures as F
from tests.fuzz.call import method


def _fast():
    from llmlab.inference.fast_decoder import FastDecoder

    return FastDecoder(F.decoder())


def _transposed():
    from llmlab.inference.fast_decoder import TransposedLinear

    return TransposedLinear


VALID = {
    "llmlab.inference.fast_decoder.TransposedLinear": lambda: dict(weight_t=F.randn(8, 4)),
    "llmlab.inference.fast_decoder.TransposedLinear.from_float": lambda: method(_transposed(), "from_float",
                                                                                weight=F.randn(4, 8)),
    "llmlab.inference.fast_decoder.TransposedLinear.forward": lambda: method(
        _transposed().from_float(F.randn(4, 8)), "forward", x=F.randn(3, 8)),
    "llmlab.inference.compiled_step.compiler_available": lambda: dict(),
    "llmlab.inference.compiled_step.default_package_dir": lambda: dict(),
    "llmlab.inference.compiled_step.fingerprint": lambda: dict(fast=_fast()),
    "llmlab.inference.compiled_step.StaticStep": lambda: dict(fast=_fast()),
    "llmlab.inference.compiled_step.step_inputs": lambda: dict(fast=_fast(), batch_size=2, max_len=8),
    "llmlab.inference.compiled_step.CompiledDecoder": lambda: dict(fast=_fast(), mode="jit", package_dir="/nonexistent",
                                                                   autotune=True,
                                                                   verbose=False),
}
SKIP = {
    "llmlab.inference.compiled_step.package_step": "compiles for a minute per call; tests/test_compiled_step.py "
                                                   "checks that its arguments are refused by name",
}
