"""Valid calls: the diagrams of notebooks 09 and 10 (``llmlab.diagrams.quantization``, ``llmlab.diagrams.pruning``)."""
from __future__ import annotations

from tests.fuzz import fixtures as F


def _agg():
    import matplotlib

    matplotlib.use("Agg")


def _block_on_grid():
    _agg()
    values = F.randn(32).abs() * 0.05  # zero = 0: the grid starts at 0.0
    scale = float(values.max()) / 7
    x_hat = (values / scale).round().clamp(0, 7) * scale
    return dict(values=values, scale=scale, zero=0.0, bits=3, x_hat=x_hat, title="t")


def _q4_0_layout():
    from llmlab.quant import gguf_blocks

    _agg()
    d, q = gguf_blocks.q4_0_codes(F.randn(1, 32))
    return dict(d=d, q=q, packed=gguf_blocks.pack_nibbles(q), title="t")


def _mask_patterns():
    from llmlab.prune import magnitude, nm

    _agg()
    w = F.randn(16, 32)
    return dict(masks={"row": magnitude.magnitude_mask(w, 0.5), "2:4": nm.nm_mask(w.abs(), 2, 4)}, rows=8, cols=16,
                group=4, title="t")


def _kept_heads():
    _agg()
    return dict(importance=F.randn(4, 6).abs(), keep=[[0, 4], [1, 3], [2, 5], [0, 3]], n_kv_heads=2, title="t")


VALID = {
    "llmlab.diagrams.quantization.block_on_grid": _block_on_grid,
    "llmlab.diagrams.quantization.q4_0_layout": _q4_0_layout,
    "llmlab.diagrams.pruning.mask_patterns": _mask_patterns,
    "llmlab.diagrams.pruning.kept_heads": _kept_heads,
}

SKIP: dict[str, str] = {}
