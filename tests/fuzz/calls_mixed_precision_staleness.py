"""Valid calls: mixed precision (``llmlab.mixed_precision``) and the parameter server's staleness."""
from __future__ import annotations


def _rounding_error():
    import torch

    return dict(w=torch.randn(4, 8) * 0.02, dtype=torch.float16)


def _scaled_step():
    import torch

    params = [torch.randn(4, 3) * 1e-4, torch.randn(5) * 1e-4]
    grads = [(torch.randn(4, 3) * 1e-6 * 1024).half(), (torch.randn(5) * 1e-6 * 1024).half()]
    return dict(params=params, grads=grads, lr=1.0, scale=1024.0, growth_tracker=1, growth_factor=2.0,
                backoff_factor=0.5, growth_interval=3)


VALID = {
    "llmlab.mixed_precision.rounding_error": _rounding_error,
    "llmlab.mixed_precision.scaled_step": _scaled_step,
    "llmlab.parallel.async_sgd.staleness": lambda: dict(events=[("read", 0), ("read", 1), ("push", 1), ("push", 0)]),
}

SKIP: dict[str, str] = {}
