"""GPTQ (Frantar et al., 2022): quantize a weight one input column at a time, and push each column's
rounding error onto the columns not yet quantized, where it can still be compensated.

A linear layer's output error for inputs X (n, K) is ||X W^T - X W^^T||^2 = sum over rows w of W of
(w - w^) H (w - w^)^T with H = 2 X^T X / n (the *Hessian* of that loss; the same for every row). Rounding
column i by e = w_i - q_i and updating the later columns by

    W[:, j] -= (e / [H^-1]_ii) [H^-1]_ij       for j > i          (the OBS update)

gives the least-squares best correction. Doing it with the upper Cholesky factor U of H^-1 (H^-1 = U^T U)
makes it one row of U per column, with no matrix inverse updated along the way:

    err = (w_i - q_i) / U_ii,      W[:, i+1:] -= err U[i, i+1:]

and *lazy batching* applies the updates within blocks of 128 columns first and to the rest of the
matrix once per block (a matmul), which is what makes it fast. Damping adds 1% of the mean diagonal to
H so the Cholesky factorisation is stable; ``act_order`` quantizes the columns with the largest H_ii
(the most active inputs) first, while the most columns are left to absorb their error.

The grid (scale, zero per row, or per group of ``group_size`` columns) is fitted when the group's first
column comes up, on the weights as already updated.

Whole models: ``gptq_model`` goes block after block as the paper does; ``calibrate`` collects every
block's Hessians in one pass of the float model, for quick runs at several bit widths.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import torch
import torch.nn as nn

from llmlab import validate
from llmlab.quant.affine import affine_grid, dequantize, quantize, symmetric_scale
from llmlab.quant.apply import block_linears


def hessian(x: torch.Tensor) -> torch.Tensor:
    """H = 2 X^T X / n for inputs x (..., K) flattened to (n, K); float32 (K, K)."""
    x = x.reshape(-1, x.shape[-1]).float()
    return 2 * x.T @ x / x.shape[0]


class HessianAccumulator:
    """Running H = 2 X^T X / n over batches of inputs (..., K), the way calibration data streams in."""

    def __init__(self, k: int, device: torch.device | str = "cpu"):
        self.h = torch.zeros(k, k, device=device)
        self.n = 0

    def add(self, x: torch.Tensor) -> None:
        x = x.reshape(-1, x.shape[-1]).float()
        m = x.shape[0]
        self.h.mul_(self.n / (self.n + m)).addmm_(x.T, x, alpha=2 / (self.n + m))
        self.n += m


def gptq_column_update(W: torch.Tensor, U: torch.Tensor, i: int, q: torch.Tensor) -> torch.Tensor:
    """One GPTQ step. W (N, B) or (L, N, B): the block's weights, updated in place; U (B, B) or (L, B, B):
    upper Cholesky factor of the block's H^-1; i: the column just quantized; q (N,) or (L, N): its quantized
    (dequantized) values. A leading L stacks independent matrices solved together.

    Spreads column i's rounding error over the columns after it; returns err (..., N) = (W[:, i] - q) / U[i, i]."""
    err = (W[..., i] - q) / U[..., i, i].unsqueeze(-1)
    # W[:, i+1:] -= outer(err, U[i, i+1:]), in place: an (N, B) temporary would cost more than the arithmetic
    if W.ndim == 2:
        W[:, i + 1:].addr_(err, U[i, i + 1:], alpha=-1)
    else:
        W[..., i + 1:].baddbmm_(err.unsqueeze(-1), U[..., i:i + 1, i + 1:], alpha=-1)
    return err


@dataclass
class GPTQResult:
    """Codes and grid of a GPTQ-quantized weight (N, K), in the original column order.

    ``group_index`` (K,) says which column of ``scale``/``zero`` (N, n_groups) each input column uses
    (GPTQ's g_idx: with ``act_order`` the groups are formed in the permuted order)."""

    q: torch.Tensor
    scale: torch.Tensor
    zero: torch.Tensor
    group_index: torch.Tensor
    bits: int
    symmetric: bool

    def dequantize(self) -> torch.Tensor:
        index = self.group_index.unsqueeze(-2).expand(self.q.shape)  # (..., N, K): each weight's group
        return dequantize(self.q, self.scale.gather(-1, index), self.zero.gather(-1, index))


def _grid(w: torch.Tensor, bits: int, symmetric: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, zero), each (..., N), for the columns w (..., N, g) of one group."""
    if symmetric:
        scale = symmetric_scale(w.abs().amax(-1), bits)
        return scale, torch.zeros_like(scale)
    return affine_grid(w.amin(-1), w.amax(-1), bits)


def inverse_hessian_factor(H: torch.Tensor, damp: float = 0.01) -> torch.Tensor:
    """U, upper triangular with U^T U = (H + damp * mean(diag H) I)^-1. H (..., K, K).

    GPTQ's reference code takes cholesky(cholesky_inverse(cholesky(H)), upper=True). One factorisation is
    enough: with J the order-reversing permutation and J H J = L L^T, H = (J L J)(J L J)^T with J L J upper
    triangular, so H^-1 = U^T U for U = (J L J)^-1 = J L^-1 J."""
    # float64: H is often nearly singular (few tokens, wide layers), and float32 noise here changes the codes
    dtype, H = H.dtype, H.to(torch.float64, copy=True)
    diag = torch.diagonal(H, dim1=-2, dim2=-1)
    diag[diag == 0] = 1  # inputs that were always 0 (a view: this writes the copy H); gptq_quantize zeroes their weights
    H = H + damp * diag.mean(-1)[..., None, None] * torch.eye(H.shape[-1], device=H.device, dtype=H.dtype)
    L, info = torch.linalg.cholesky_ex(H.flip(-2, -1))
    if bool((info > 0).any()):
        raise ValueError("the damped Hessian is not positive definite; use more calibration data or a larger damp")
    eye = torch.eye(H.shape[-1], device=H.device, dtype=H.dtype).expand_as(H)
    return torch.linalg.solve_triangular(L, eye, upper=False).flip(-2, -1).to(dtype)


def _columns(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x (..., R, K) with its last dimension reordered by index (..., K)."""
    return x.gather(-1, index.unsqueeze(-2).expand(x.shape))


@torch.no_grad()
def gptq_quantize(W: torch.Tensor, H: torch.Tensor, bits: int = 4, *, group_size: int | None = None,
                  symmetric: bool = True, act_order: bool = False, block_size: int = 128, damp: float = 0.01,
                  update: Callable = gptq_column_update, factor: torch.Tensor | None = None) -> GPTQResult:
    """GPTQ of W (N, K) given the Hessian H (K, K) of its inputs. ``group_size`` None: one grid per row.
    W (L, N, K) with H (L, K, K) solves L independent layers in one loop.

    ``update`` is the per-column step (``gptq_column_update``; the notebook passes the learner's).
    ``factor``: ``inverse_hessian_factor(H, damp)`` if already computed (not with act_order, which reorders H)."""
    validate.flag("act_order", act_order)
    validate.flag("symmetric", symmetric)
    validate.tensor("W", W, floating=True, finite=True)
    validate.bits("bits", bits)
    if W.ndim not in (2, 3) or not isinstance(H, torch.Tensor) or H.shape != (*W.shape[:-2], W.shape[-1], W.shape[-1]):
        raise ValueError(f"expected W (N, K) and H (K, K), got {tuple(W.shape)} and {tuple(getattr(H, 'shape', ()))}")
    N, K = W.shape[-2:]
    g = K if group_size is None else group_size
    g = validate.divisor("group_size", g, K, what="K")
    if not 0 <= damp < 1:
        raise ValueError(f"damp must be in [0, 1), got {damp}")
    block_size = max(block_size // g, 1) * g if g < K else block_size  # a group never straddles two blocks

    W, H = W.detach().float().clone(), H.detach().float().clone()
    diag = torch.diagonal(H, dim1=-2, dim2=-1)  # a view: writing to it writes H
    dead = diag == 0  # inputs that were always 0: their weights cannot matter
    diag[dead] = 1
    W.masked_fill_(dead.unsqueeze(-2), 0)
    if act_order:  # the most active inputs first; H's rows and columns follow
        perm = torch.argsort(diag, dim=-1, descending=True)
        W, H = _columns(W, perm), _columns(_columns(H, perm).transpose(-1, -2), perm)
    else:
        perm = torch.arange(K, device=W.device).expand(diag.shape)
    if factor is not None and act_order:
        raise ValueError("a precomputed factor is for H in its own column order: it cannot be used with act_order")
    U = inverse_hessian_factor(H, damp) if factor is None else factor.float()

    Q = torch.zeros_like(W)
    scale, zero = W.new_zeros(*W.shape[:-1], K // g), W.new_zeros(*W.shape[:-1], K // g)
    for b0 in range(0, K, block_size):
        b1 = min(b0 + block_size, K)
        # the block copied column-major: every step reads one column and updates a block of whole columns
        W1, U1 = W[..., b0:b1].transpose(-1, -2).contiguous().transpose(-1, -2), U[..., b0:b1, b0:b1]
        errors = torch.zeros_like(W1)
        for i in range(b1 - b0):
            col = b0 + i
            if col % g == 0:  # a new group: fit its grid on the weights as updated so far
                scale[..., col // g], zero[..., col // g] = _grid(W1[..., i:i + g] if g < K else W, bits, symmetric)
            s, z = scale[..., col // g], zero[..., col // g]
            q = dequantize(quantize(W1[..., i], s, z, bits, symmetric), s, z)
            Q[..., col] = q
            errors[..., i] = update(W1, U1, i, q)
        W[..., b1:] -= errors @ U[..., b0:b1, b1:]  # the block's errors reach the remaining columns at once

    group_of = torch.arange(K, device=W.device) // g  # in quantization order
    codes = quantize(Q, scale[..., group_of], zero[..., group_of], bits, symmetric)
    inverse = torch.argsort(perm, dim=-1)
    return GPTQResult(_columns(codes, inverse), scale, zero, group_of[inverse], bits, symmetric)


# ------------------------------------------------------------------------------------------ whole models


class _Stop(Exception):
    pass


@torch.no_grad()
def block_inputs(model: nn.Module, batches: Iterable[tuple]) -> list[tuple[tuple, dict]]:
    """The (args, kwargs) ``model.layers[0]`` receives for each batch of ``model(*batch)``: the hidden
    states entering the first block, plus its mask / RoPE arguments."""
    captured = []

    def grab(module, args, kwargs):
        captured.append((args, kwargs))
        raise _Stop

    handle = model.layers[0].register_forward_pre_hook(grab, with_kwargs=True)
    try:
        for batch in batches:
            try:
                model(*batch)
            except _Stop:
                pass
    finally:
        handle.remove()
    return captured


class Calibration:
    """Forward pre-hooks on linear layers: accumulate each one's Hessian, and note which linears read the
    very tensor the previous one read (q/k/v; gate/up), so that they can share one Hessian."""

    def __init__(self, linears: dict[str, nn.Linear]):
        self.hessians: dict[str, HessianAccumulator] = {}  # one per group, under its first linear's name
        self.owner: dict[str, str] = {}  # linear -> the linear whose Hessian it shares
        self._factors: dict[tuple[str, float], torch.Tensor] = {}
        self.groups: list[list[str]] = []  # linears that read the same input, in call order
        self._last = None
        self._handles = [m.register_forward_pre_hook(self._hook(n)) for n, m in linears.items()]

    def _hook(self, name: str):
        def f(module, args):
            x = args[0]
            if name not in self.owner:
                if self._last is not None and x is self._last[1]:  # same input as the linear called just before
                    self.owner[name] = self.owner[self._last[0]]
                    next(grp for grp in self.groups if self._last[0] in grp).append(name)
                else:
                    self.owner[name] = name
                    self.hessians[name] = HessianAccumulator(x.shape[-1], x.device)
                    self.groups.append([name])
                self._last = (name, x)  # one reference only, so a freed tensor's address is never mistaken
            if self.owner[name] == name:
                self.hessians[name].add(x)
        return f

    def factor(self, name: str, damp: float) -> torch.Tensor:
        """``inverse_hessian_factor`` of a group's Hessian, computed once and reused (e.g. for several bit widths)."""
        if (name, damp) not in self._factors:
            self._factors[name, damp] = inverse_hessian_factor(self.hessians[name].h, damp)
        return self._factors[name, damp]

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._last = None


def _solve(linears: dict[str, nn.Linear], calibration: Calibration, bits: int, **kwargs) -> dict[str, GPTQResult]:
    """GPTQ of every group of linears sharing an input, stacked by rows (one Hessian, one loop); writes
    the dequantized weights back into the linears."""
    results = {}
    for grp in calibration.groups:
        factor = None if kwargs["act_order"] else calibration.factor(grp[0], kwargs["damp"])
        res = gptq_quantize(torch.cat([linears[n].weight for n in grp]), calibration.hessians[grp[0]].h, bits,
                            factor=factor, **kwargs)
        row = 0
        for n in grp:
            rows = slice(row, row + linears[n].weight.shape[0])
            part = GPTQResult(res.q[rows], res.scale[rows], res.zero[rows], res.group_index, bits, res.symmetric)
            linears[n].weight.copy_(part.dequantize().to(linears[n].weight.dtype))
            results[n] = part
            row = rows.stop
    return results


@torch.no_grad()
def calibrate(model: nn.Module, batches: Iterable[tuple]) -> Calibration:
    """The Hessians of every block linear of the *float* model, from one pass over ``batches``: what
    ``gptq_model(..., calibration=...)`` needs to quantize any copy of the model at any bits."""
    calibration = Calibration(block_linears(model))
    try:
        for batch in batches:
            model(*batch)
    finally:
        calibration.remove()
    return calibration


@torch.no_grad()
def gptq_model(model: nn.Module, batches: Iterable[tuple] | None, bits: int = 4, *, group_size: int | None = 128,
               symmetric: bool = True, act_order: bool = False, damp: float = 0.01,
               calibration: Calibration | None = None, progress: bool = False) -> dict[str, GPTQResult]:
    """Quantize every linear layer of ``model.layers`` with GPTQ, block after block, in place.

    ``batches``: calibration inputs, each a tuple of arguments for ``model(*batch)`` (e.g. ``(ids,)``).
    Each block sees the outputs of the blocks before it *after* their quantization, so later blocks
    compensate earlier errors. Linears that read the same tensor (q/k/v; gate/up) share one Hessian and
    are solved as one stacked matrix. Use at least as many calibration tokens as the widest layer has
    inputs (SmolLM2: 1536), or H is singular and only the damping holds it together.

    ``calibration`` (from ``calibrate`` on the float model) instead: every block uses the float model's
    Hessians, with no forward pass here. Less exact (no block sees its predecessors' errors), much faster
    when one calibration serves several settings.
    Returns {module name: GPTQResult}; the model's weights are replaced by the dequantized ones."""
    validate.flag("progress", progress)
    validate.flag("act_order", act_order)
    validate.flag("symmetric", symmetric)
    from tqdm.auto import tqdm

    options = dict(group_size=group_size, symmetric=symmetric, act_order=act_order, damp=damp)
    if calibration is not None:
        return _solve(block_linears(model), calibration, bits, **options)
    block_linears(model)  # a clear TypeError for anything but an llmlab Decoder / Encoder
    inputs = block_inputs(model, batches)
    results: dict[str, GPTQResult] = {}
    for li, block in enumerate(tqdm(model.layers, desc=f"GPTQ {bits}-bit", disable=not progress)):
        linears = {f"layers.{li}.{n}": m for n, m in block.named_modules() if isinstance(m, nn.Linear)}
        calibration = Calibration(linears)
        try:
            for args, kwargs in inputs:
                block(*args, **kwargs)
        finally:
            calibration.remove()
        results.update(_solve(linears, calibration, bits, **options))
        inputs = [((block(*args, **kwargs),) + tuple(args[1:]), kwargs) for args, kwargs in inputs]
    return results
