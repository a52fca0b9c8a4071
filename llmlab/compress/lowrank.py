"""Low-rank factorisation: replace a weight W (N, K) by two thin matrices, W ≈ A B, A (N, r), B (r, K).

A linear layer y = x Wᵀ then becomes two, y = (x Bᵀ) Aᵀ: r (N + K) weights and multiply-adds per
token instead of N K, a saving only when r < N K / (N + K) (``breakeven_rank``; 418 for SmolLM2's
576 x 1536 MLP matrices).

The best rank-r approximation in Frobenius (and spectral) norm is the truncated SVD (Eckart–Young):

    W = U diag(σ) Vᵀ,  σ_1 >= σ_2 >= ...      W_r = U_r diag(σ_1..σ_r) V_rᵀ
    ||W - W_r||_F² = sum_{i > r} σ_i²        relative error = sqrt(sum_{i > r} σ_i²) / sqrt(sum_i σ_i²)

so a matrix compresses well when its singular values fall fast. Trained LLM weights mostly do not:
keeping 90% of sum σ² (``rank_for_energy``) of SmolLM2's layers.10.feed_forward.w1 (1536 x 576) takes
rank 381, against a break-even of 418, and rank 64 leaves a relative error of 0.83. Low rank works
better on what a model *adds* to a weight (LoRA's updates) or with fine-tuning after the cut.

The singular values are split evenly, A = U_r diag(sqrt σ), B = diag(sqrt σ) V_rᵀ: both factors then
have the same singular values sqrt σ_i, the same Frobenius norm, and the smallest ||A||² + ||B||² of all
factorisations of W_r. Putting all of σ on one side instead would leave one factor orthonormal (entries
~ 1/sqrt N) and the other carrying the whole scale, which is worse to quantize afterwards and to
fine-tune with one learning rate.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from llmlab import validate


def _check_matrix(w) -> torch.Tensor:
    if not isinstance(w, torch.Tensor) or w.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"w must be a float32 or float64 torch.Tensor (SVD needs one), "
                        f"got {getattr(w, 'dtype', type(w).__name__)}; use w.float()")
    if w.ndim != 2:
        raise ValueError(f"w must be a 2-D weight (N, K), got shape {tuple(w.shape)}")
    if w.numel() == 0:
        raise ValueError(f"w is empty, shape {tuple(w.shape)}: it has no singular values")
    if not validate.all_finite(w):
        raise ValueError("w holds NaN or inf values: the SVD needs finite weights")
    return w.detach()


def _check_rank(rank, n: int, k: int) -> int:
    return validate.integer("rank", rank, 1, min(n, k))  # at most min(N, K)


def truncated_svd(w: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The best rank-r factors of w (N, K): A (N, r) = U_r diag(sqrt σ), B (r, K) = diag(sqrt σ) V_rᵀ,
    W ≈ A @ B; w's dtype."""
    w = _check_matrix(w)
    rank = _check_rank(rank, *w.shape)
    U, S, Vh = torch.linalg.svd(w, full_matrices=False)  # thin SVD: (N, m), (m,), (m, K), m = min(N, K)
    root = S[:rank].sqrt()
    return U[:, :rank] * root, root[:, None] * Vh[:rank]


def lowrank_error(w: torch.Tensor, rank: int) -> float:
    """||W - A B||_F / ||W||_F for the rank-r truncated SVD, measured on the reconstruction (in float64)."""
    A, B = truncated_svd(w, rank)
    w = w.detach().double()
    return float((w - A.double() @ B.double()).norm() / w.norm().clamp(min=1e-300))


def rank_for_energy(s: torch.Tensor, energy: float) -> int:
    """The smallest r whose top r singular values keep a fraction ``energy`` of sum σ²:
    min r such that sum_{i <= r} σ_i² >= energy · sum_i σ_i²; s (m,), e.g. ``torch.linalg.svdvals(w)``.
    The relative error of that rank is then at most sqrt(1 - energy)."""
    if not isinstance(s, torch.Tensor) or not s.is_floating_point() or s.ndim != 1 or s.numel() == 0:
        raise ValueError("s must be a non-empty 1-D float tensor of singular values, "
                         f"got {getattr(s, 'shape', type(s).__name__)}")
    validate.tensor("s", s, finite=True)
    energy = validate.probability("energy", energy, allow_zero=False)
    e = s.detach().double().sort(descending=True).values.square()  # svdvals is already sorted; anything else too
    kept = e.cumsum(0) / e.sum()  # (m,) fraction kept by ranks 1..m
    # the last entry may round to 0.9999999999999998: energy = 1 must still give a rank <= m
    return min(int(torch.searchsorted(kept, torch.tensor([energy], dtype=torch.float64)).item()) + 1, len(e))


def lowrank_params(n: int, k: int, rank: int) -> int:
    """Weights of a rank-r factorisation of an (N, K) matrix: r (N + K) (biases not counted)."""
    n, k = validate.positive_int("n", n), validate.positive_int("k", k)
    return _check_rank(rank, n, k) * (n + k)


def breakeven_rank(n: int, k: int) -> int:
    """The largest r with r (N + K) < N K, *strictly* fewer weights than the dense (N, K) matrix:
    floor((N K - 1) / (N + K)). 0 when no rank saves anything (e.g. 2 x 2: rank 1 already costs 4)."""
    n, k = validate.positive_int("n", n), validate.positive_int("k", k)
    return (n * k - 1) // (n + k)


class LowRankLinear(nn.Module):
    """A linear layer with a rank-r weight: x (..., K) -> (..., N) = x Bᵀ Aᵀ + bias.

    ``down``: K -> r, weight B (r, K); ``up``: r -> N, weight A (N, r), with the bias. ``in_features`` and
    ``out_features`` are those of the layer it replaces (llmlab's SwiGLU reads ``w1.in_features``)."""

    def __init__(self, in_features: int, out_features: int, rank: int, bias: bool = True,
                 device=None, dtype=None):
        super().__init__()
        validate.flag("bias", bias)
        self.in_features = validate.size("in_features", in_features)
        self.out_features = validate.size("out_features", out_features)
        self.rank = _check_rank(rank, out_features, in_features)
        if device is not None:
            device = validate.device("device", device)
        self.down = nn.Linear(in_features, rank, bias=False, device=device, dtype=dtype)
        self.up = nn.Linear(rank, out_features, bias=bias, device=device, dtype=dtype)

    @classmethod
    @torch.no_grad()
    def from_linear(cls, linear: nn.Linear, rank: int) -> LowRankLinear:
        """The rank-r truncated SVD of ``linear``'s weight (N, K); same bias, dtype and device. The SVD runs
        in float32 (float64 for a float64 layer): bfloat16 and float16 have none."""
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"linear must be an nn.Linear, got {type(linear).__name__}")
        w = linear.weight
        A, B = truncated_svd(w if w.dtype == torch.float64 else w.float(), rank)
        new = cls(linear.in_features, linear.out_features, rank, bias=linear.bias is not None,
                  device=w.device, dtype=w.dtype)
        new.up.weight.copy_(A)
        new.down.weight.copy_(B)
        if linear.bias is not None:
            new.up.bias.copy_(linear.bias)
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        try:
            return self.up(self.down(x))  # never forms A B: r (N + K) multiply-adds per token, not N K
        except (RuntimeError, TypeError) as error:  # explained after the fact: no checks on the way
            validate.explain_input("x", x, self.in_features, error, self.down.weight.dtype)
            raise

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, rank={self.rank}, "
                f"bias={self.up.bias is not None}")
