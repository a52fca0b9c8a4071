"""Valid calls: the diagrams of notebooks 05 and 06 (``llmlab.diagrams.transformer``, ``llmlab.diagrams.training``)."""
from __future__ import annotations


def _agg():
    import matplotlib

    matplotlib.use("Agg")


def _block():
    from llmlab.nn.model import DecoderConfig

    _agg()
    return dict(cfg=DecoderConfig())


def _loop():
    _agg()
    # weight_decay=0.0 (no decay) is valid: the fuzzer then tries -1.0, NaN, inf and "0.0"
    return dict(batch_size=16, block_size=64, vocab_size=1024, max_norm=1.0, betas=(0.9, 0.95), weight_decay=0.0)


def _schedule():
    _agg()
    # warmup_steps=0 (no warm-up) is valid: the fuzzer then tries -1, 0.5, "0" and 10**12
    return dict(lrs=[3e-3, 2.5e-3, 2e-3, 1e-3, 5e-4], warmup_steps=0, losses=[7.0, 6.5, 6.0, 5.8, 5.7])


VALID = {
    "llmlab.diagrams.transformer.block_diagram": _block,
    "llmlab.diagrams.training.training_loop": _loop,
    "llmlab.diagrams.training.lr_schedule": _schedule,
}
SKIP: dict[str, str] = {}
