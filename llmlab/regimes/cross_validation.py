"""K-fold cross-validation: every item is tested exactly once, by a model that never trained on it.

The n items are shuffled once, by ``torch.randperm(n, generator=torch.Generator().manual_seed(seed))`` (a generator
of its own: torch's global one is left as it was), and the permutation is cut into k consecutive folds; the
first ``n % k`` folds hold ``n // k + 1`` items and the others ``n // k`` (scikit-learn's ``KFold`` convention),
so fold sizes differ by at most one. Fold j is the test set of round j and the other folds, in permutation
order, its training set. The mean of the k test scores estimates the score of a model trained on (k-1)/k of
the data; their spread shows how much one split's score can be trusted.
"""
from __future__ import annotations

import torch

from llmlab import validate


def fold_sizes(n: int, k: int) -> list[int]:
    """The k fold sizes: the first n % k folds get one item more."""
    n = validate.size("n", n, minimum=2)
    k = validate.integer("k", k, 2, n)
    return [n // k + (1 if j < n % k else 0) for j in range(k)]


def kfold_indices(n: int, k: int, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """[(train_idx, test_idx)] for the k rounds: int64 index tensors, test_idx the j-th slice of the permutation,
    train_idx the rest of the permutation in order (length n - len(test_idx))."""
    sizes = fold_sizes(n, k)
    seed = validate.integer("seed", seed)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    folds, start = [], 0
    for size in sizes:
        end = start + size
        folds.append((torch.cat([perm[:start], perm[end:]]), perm[start:end]))
        start = end
    return folds
