"""N:M (semi-structured) sparsity: in every group of M consecutive weights along the input dimension,
at most N are non-zero. 2:4 is the pattern NVIDIA's sparse tensor cores (A100 onwards) run at up to
twice the dense speed: the matrix is stored as the 2 kept values of each group of 4 plus a 2-bit index
each (``torch.sparse.to_sparse_semi_structured`` on CUDA).

Groups run along K, the dimension a matmul y = x Wᵀ reduces over, because the hardware takes the group
of 4 from the operand it multiplies term by term: for W (N, K) that is 4 neighbours within a row. N:M
is stricter than 50% unstructured sparsity (every group, not just every row, loses exactly half), so
its quality sits between unstructured and structured pruning.
"""
from __future__ import annotations

import torch

from llmlab import validate
from llmlab.validate import positive_int
from llmlab.prune.magnitude import check_scores


def check_nm(n: int, m: int) -> tuple[int, int]:
    """An N:M pattern: ints 0 <= n <= m, m >= 1 (n = 0 prunes everything)."""
    n, m = positive_int("n", n, minimum=0), positive_int("m", m)
    if n > m:
        raise ValueError(f"N:M keeps N of every M weights, so N <= M is needed; got n = {n}, m = {m}")
    return n, m


def nm_mask(scores: torch.Tensor, n: int = 2, m: int = 4) -> torch.Tensor:
    """scores (N, K), K divisible by m -> bool mask (N, K) keeping the n highest scores of every m
    consecutive entries of each row."""
    check_scores("scores", scores)
    n, m = check_nm(n, m)
    rows, cols = scores.shape
    if cols % m:
        raise ValueError(f"the input dimension K = {cols} of scores is not divisible by m = {m}")
    groups = scores.reshape(rows, cols // m, m)
    mask = torch.zeros_like(groups, dtype=torch.bool)
    mask.scatter_(2, groups.topk(n, dim=2).indices, True)
    return mask.reshape(rows, cols)


def is_nm_sparse(w: torch.Tensor, n: int = 2, m: int = 4) -> bool:
    """Whether every group of m consecutive entries of each row of w (N, K) has at most n non-zeros."""
    validate.tensor("w", w, ndim=2)
    n, m = check_nm(n, m)
    if w.numel() == 0:
        raise ValueError(f"w is empty, shape {tuple(w.shape)}: there is no pattern to check")
    if w.shape[1] % m:
        raise ValueError(f"w must be (N, K) with K divisible by m = {m}, got shape {tuple(w.shape)}")
    return bool(((w != 0).reshape(w.shape[0], -1, m).sum(-1) <= n).all())
