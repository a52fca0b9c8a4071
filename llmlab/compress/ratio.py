"""Sizes in bits, to put every compression method of the course side by side.

    dense matrix           n · b                               (b = 32 float32, 16 bf16, 4 int4 ...)
    pruned (CSR-like)      nnz · (value_bits + index_bits),    nnz = density · n
    weight sharing         n · log2 k + k · b                  (``sharing.codebook_bits_per_weight``)
    low rank               r (N + K) · b                       (``lowrank.lowrank_params``)
    distillation           the student's parameters · b

    compression ratio = original bits / compressed bits

Pruning is not free: each kept value needs its position too. With 16-bit values and 16-bit indices a
matrix must lose more than half its weights before the sparse form is any smaller than the dense one.
"""
from __future__ import annotations

from llmlab import validate


def compression_ratio(original_bits: float, compressed_bits: float) -> float:
    """original / compressed: 4.0 means four times smaller."""
    original_bits = validate.positive_float("original_bits", original_bits)
    return original_bits / validate.positive_float("compressed_bits", compressed_bits)


def pruned_bits(n_weights: int, density: float, value_bits: int, index_bits: int) -> int:
    """Bits of a pruned matrix stored as its nonzeros only: nnz · (value_bits + index_bits), with
    nnz = round(density · n_weights), each nonzero keeping its value and its column index (CSR's ``values``
    and ``col_indices``). CSR's row pointers, one integer per row, are left out: for an (N, K) matrix
    they are N numbers against nnz, negligible unless almost everything is pruned."""
    n_weights = validate.positive_int("n_weights", n_weights)
    density = validate.positive_float("density", density, allow_zero=True)
    if density > 1:
        raise ValueError(f"density must be in [0, 1], got {density}")
    value_bits = validate.positive_int("value_bits", value_bits)
    index_bits = validate.positive_int("index_bits", index_bits, minimum=0)
    return round(density * n_weights) * (value_bits + index_bits)
