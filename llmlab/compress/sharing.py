"""Weight sharing with a k-means codebook (Han, Mao & Dally, "Deep Compression", 2016).

All the weights of a matrix W are clustered into k groups; each weight is then stored as the index of
its group (log2 k bits) and the k centroids once, as a small float codebook:

    c = argmin_c  sum_i (w_i - c[idx_i])²,     idx_i = argmin_j |w_i - c_j|,     W^ = c[idx]

Unlike a uniform quantization grid, the k levels go where the weights are: a bell-shaped weight
distribution gets many levels near 0 and few in the tails. Storage, n weights of b bits:

    bits per weight = log2 k + k b / n,     compression = b / (log2 k + k b / n)       (~4x for k = 256, b = 32)

Lloyd's algorithm finds a (local) minimum by alternating the two conditions above: ``assign`` each
weight to its nearest centroid, then ``update`` each centroid to the mean of its weights; neither step
can increase the squared error, so it converges. The weights are 1-D numbers, so the nearest centroid
is a binary search among the midpoints between sorted centroids (see ``assign``).

Initialisation matters (Han et al., Fig. 4): "linear" (k evenly spaced values between min and max) keeps
centroids on the rare large weights, which matter most, and worked best; "quantile" (their "density-based":
equal numbers of weights per level) crowds the centroids where the weights are dense, near 0, and
leaves the large weights to share a few. Both are deterministic, so ``kmeans``
is too. Han et al. then fine-tune the shared values (the gradients of all weights in a group are summed
into their centroid); here the codebook is only fitted.
"""
from __future__ import annotations

import math
from typing import Literal

import torch

from llmlab import validate


def _check_weight(w) -> torch.Tensor:
    if not isinstance(w, torch.Tensor) or not w.is_floating_point():
        raise TypeError(f"w must be a float torch.Tensor, got {getattr(w, 'dtype', type(w).__name__)}")
    if not validate.all_finite(w):
        raise ValueError("w holds NaN or inf values: k-means needs finite weights")
    return w.detach()


def _check_k(k, n_weights: int, of: str = "") -> int:
    k = validate.positive_int("k", k)
    if k > n_weights:
        raise ValueError(f"k must be between 1 and the number of weights{of} {n_weights}, got {k}")
    return k


def _check_codebook(codebook) -> torch.Tensor:
    """k >= 1 centroids: a 1-D float tensor without NaN or inf."""
    validate.tensor("codebook", codebook, floating=True, finite=True)
    if codebook.ndim != 1 or codebook.numel() == 0:
        raise ValueError(f"codebook must be a 1-D tensor of k >= 1 centroids, got shape {tuple(codebook.shape)}")
    return codebook


def _check_idx(idx, k: int) -> torch.Tensor:
    """Centroid indices: an integer tensor with values in [0, k)."""
    validate.tensor("idx", idx)
    if idx.is_floating_point() or idx.is_complex() or idx.dtype == torch.bool:
        raise TypeError(f"idx must hold integer centroid indices, got dtype {idx.dtype}")
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= k):
        raise ValueError(f"idx must hold centroid indices in [0, {k}) (the codebook's k), got "
                         f"{int(idx.min())} to {int(idx.max())}")
    return idx


def init_codebook(w: torch.Tensor, k: int, method: Literal["linear", "quantile"] = "linear") -> torch.Tensor:
    """k initial centroids (k,), w's dtype, sorted ascending; w of any shape (its values are clustered).

    "linear": evenly spaced from min(w) to max(w). "quantile": the weights at evenly spaced ranks
    (0, 1/(k-1), ..., 1) of the sorted weights ('nearest' quantiles; computed by sorting, since
    ``torch.quantile`` refuses tensors of more than 16M elements, such as an embedding matrix)."""
    w = _check_weight(w).flatten()
    k = _check_k(k, w.numel(), " in w")
    return _init_codebook(w, k, method)


def _init_codebook(w: torch.Tensor, k: int, method: str) -> torch.Tensor:
    if method == "linear":
        return torch.linspace(float(w.min()), float(w.max()), k, dtype=w.dtype, device=w.device)
    if method == "quantile":
        ranks = torch.linspace(0, w.numel() - 1, k, dtype=torch.float64, device=w.device).round().long()
        return w.sort().values[ranks]
    raise ValueError(f"method must be 'linear' or 'quantile', got {method!r}")


def assign(w: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """Index of the nearest centroid of each weight: w (any shape), codebook (k,) -> idx (w's shape) long.

    Brute force, argmin_j |w_i - c_j|, builds an (n, k) table: 576 x 1536 weights x 256 centroids is
    226M floats, 0.9 GB. In 1-D it is not needed: with the centroids sorted, the nearest one changes
    exactly at the midpoints between neighbours, so a binary search of w among the k - 1 midpoints
    (``searchsorted``) gives the answer in O(n log k) time and O(n) memory. A weight exactly on a midpoint
    goes to the lower centroid.
    """
    return _assign(_check_weight(w), _check_codebook(codebook))


def _assign(w: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    sorted_c, order = codebook.to(w.dtype).sort()
    midpoints = (sorted_c[1:] + sorted_c[:-1]) / 2  # (k - 1,) decision boundaries
    rank = torch.searchsorted(midpoints, w.flatten())  # position among the sorted centroids
    return order[rank].reshape(w.shape)  # back to the codebook's own numbering


def update(w: torch.Tensor, idx: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """New centroids (k,): the mean of the weights assigned to each; a centroid with none keeps its value.

    w and idx the same shape; codebook (k,). The sums are taken in float64: a million float32
    additions into one accumulator would drift in the last digits and stop Lloyd converging exactly."""
    w = _check_weight(w)
    if not isinstance(idx, torch.Tensor) or idx.shape != w.shape:
        raise ValueError(f"idx must have w's shape {tuple(w.shape)}, got {getattr(idx, 'shape', type(idx).__name__)}")
    _check_idx(idx, _check_codebook(codebook).numel())
    return _update(w, idx, codebook)


def _update(w: torch.Tensor, idx: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    k = codebook.numel()
    idx = idx.flatten()
    sums = torch.zeros(k, dtype=torch.float64, device=w.device).index_add_(0, idx, w.flatten().double())
    counts = torch.bincount(idx, minlength=k)
    means = (sums / counts.clamp(min=1)).to(codebook.dtype)
    return torch.where(counts > 0, means, codebook)


def kmeans(w: torch.Tensor, k: int, iters: int = 20, init: Literal["linear", "quantile"] = "linear",
           tol: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's algorithm on the weights of w (any shape): (codebook (k,), idx (w's shape) long).

    At most ``iters`` rounds of assign + update; stops early once no centroid moves by more than
    ``tol`` x (max(w) - min(w)) (tol = 0: only when the assignment no longer changes, a fixed point).
    The returned idx is the nearest-centroid assignment for the returned codebook. Deterministic
    (on CUDA, ``index_add_``'s atomic additions may reorder the float64 sums' last bits)."""
    w = _check_weight(w)
    k = _check_k(k, w.numel(), " in w")
    iters = validate.size("iters", iters, minimum=0)
    tol = validate.positive_float("tol", tol, allow_zero=True)
    init = validate.choice("init", init, ("linear", "quantile"))
    codebook = _init_codebook(w.flatten(), k, init)
    span = float(w.max() - w.min())
    for _ in range(iters):  # the checks were done once above: the steps run unchecked
        new = _update(w, _assign(w, codebook), codebook)
        shift = float((new - codebook).abs().max())
        codebook = new
        if shift <= tol * span:
            break
    return codebook, _assign(w, codebook)  # one last assignment, so idx matches the final centroids


def reconstruct(codebook: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """W^ = codebook[idx]: the shared weights, idx's shape, codebook's dtype. codebook (k,) float;
    idx: integer centroid indices in [0, k), any shape."""
    return _check_codebook(codebook)[_check_idx(idx, codebook.numel())]


def codebook_bits_per_weight(n_weights: int, k: int, codebook_bits: int = 32) -> float:
    """Storage per weight of a shared matrix: ceil(log2 k) bits of index + k · codebook_bits / n_weights for
    the codebook (stored once, amortised over the n weights). Indices have a fixed width, so k = 2^b
    wastes nothing; Huffman-coding them (Deep Compression's third stage) would go lower."""
    n_weights = validate.positive_int("n_weights", n_weights)
    k = _check_k(k, n_weights)
    codebook_bits = validate.positive_int("codebook_bits", codebook_bits)
    return math.ceil(math.log2(k)) + k * codebook_bits / n_weights
