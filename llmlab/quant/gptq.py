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

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Callable, Iterable

import torch
import torch.nn as nn

from llmlab import validate
from llmlab.quant.affine import (affine_grid_unchecked, dequantize_unchecked, qrange, quantize_unchecked,
                                 symmetric_scale_unchecked)
from llmlab.quant.apply import block_linears, calibration_batches


def _check_inputs(x) -> torch.Tensor:
    """Inputs of a linear layer: a float tensor (..., K) without NaN or inf, K >= 1."""
    validate.tensor("x", x, min_ndim=1, floating=True, finite=True)
    if x.shape[-1] == 0:
        raise ValueError(f"x must have shape (..., K) with K >= 1 input features, got {tuple(x.shape)}")
    return x


def hessian(x: torch.Tensor) -> torch.Tensor:
    """H = 2 X^T X / n for inputs x (..., K) flattened to (n, K); float32 (K, K)."""
    _check_inputs(x)
    if x.numel() == 0:
        raise ValueError(f"x holds no inputs, shape {tuple(x.shape)}: H needs at least one row")
    x = x.reshape(-1, x.shape[-1]).float()
    return 2 * x.T @ x / x.shape[0]


class HessianAccumulator:
    """Running H = 2 X^T X / n over batches of inputs (..., K), the way calibration data streams in."""

    def __init__(self, k: int, device: torch.device | str = "cpu"):
        k = validate.size("k", k)
        self.h = torch.zeros(k, k, device=validate.device("device", device))
        self.n = 0

    def add(self, x: torch.Tensor) -> None:
        """Adds a batch of inputs x (..., K); a batch of no rows adds nothing."""
        _check_inputs(x)
        if x.shape[-1] != self.h.shape[0]:
            raise ValueError(f"x must have K = {self.h.shape[0]} features in its last dim, got shape {tuple(x.shape)}")
        self._add(x)

    def _add(self, x: torch.Tensor) -> None:
        x = x.reshape(-1, x.shape[-1]).float()
        m = x.shape[0]
        if m == 0:
            return
        self.h.mul_(self.n / (self.n + m)).addmm_(x.T, x, alpha=2 / (self.n + m))
        self.n += m


def gptq_column_update(W: torch.Tensor, U: torch.Tensor, i: int, q: torch.Tensor) -> torch.Tensor:
    """One GPTQ step. W (N, B) or (L, N, B): the block's weights, updated in place; U (B, B) or (L, B, B):
    upper Cholesky factor of the block's H^-1; i: the column just quantized; q (N,) or (L, N): its quantized
    (dequantized) values. A leading L stacks independent matrices solved together.

    Spreads column i's rounding error over the columns after it; returns err (..., N) = (W[:, i] - q) / U[i, i]."""
    validate.tensor("W", W, floating=True, finite=True)
    if W.ndim not in (2, 3) or W.shape[-1] == 0:
        raise ValueError(f"W must have shape (N, B) or (L, N, B) with B >= 1, got {tuple(W.shape)}")
    B = W.shape[-1]
    validate.tensor("U", U, floating=True, finite=True)
    if U.shape != (*W.shape[:-2], B, B):
        raise ValueError(f"U must have shape {(*W.shape[:-2], B, B)} (W's leading L, then (B, B)), "
                         f"got {tuple(U.shape)}")
    i = validate.integer("i", i, 0, B - 1)
    validate.tensor("q", q, floating=True, finite=True)
    if q.shape != W.shape[:-1]:
        raise ValueError(f"q must have shape {tuple(W.shape[:-1])} (one value per row of W), got {tuple(q.shape)}")
    return _column_update(W, U, i, q)


def _column_update(W: torch.Tensor, U: torch.Tensor, i: int, q: torch.Tensor) -> torch.Tensor:
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
    (GPTQ's g_idx: with ``act_order`` the groups are formed in the permuted order). A leading L (q (L, N, K),
    scale and zero (L, N, n_groups), group_index (L, K)) stacks layers solved together."""

    q: torch.Tensor
    scale: torch.Tensor
    zero: torch.Tensor
    group_index: torch.Tensor
    bits: int
    symmetric: bool

    def __post_init__(self) -> None:
        validate.tensor("q", self.q, floating=True, finite=True)
        if self.q.ndim not in (2, 3) or self.q.numel() == 0:
            raise ValueError(f"q must have shape (N, K) or (L, N, K), not empty, got {tuple(self.q.shape)}")
        lead, K = self.q.shape[:-1], self.q.shape[-1]
        validate.tensor("scale", self.scale, floating=True, finite=True)
        if self.scale.shape[:-1] != lead or self.scale.shape[-1] == 0:
            raise ValueError(f"scale must have shape {(*lead, 'n_groups')} (q's rows, then one per group), "
                             f"got {tuple(self.scale.shape)}")
        validate.tensor("zero", self.zero, floating=True, finite=True)
        if self.zero.shape != self.scale.shape:
            raise ValueError(f"zero must have scale's shape {tuple(self.scale.shape)}, got {tuple(self.zero.shape)}")
        index = validate.tensor("group_index", self.group_index)
        if index.is_floating_point() or index.is_complex() or index.dtype == torch.bool:
            raise TypeError(f"group_index must hold integer group numbers, got dtype {index.dtype}")
        if self.group_index.shape != (*self.q.shape[:-2], K):
            raise ValueError(f"group_index must have shape {(*self.q.shape[:-2], K)} (one group per input column "
                             f"of q), got {tuple(self.group_index.shape)}")
        n_groups = self.scale.shape[-1]
        if int(self.group_index.min()) < 0 or int(self.group_index.max()) >= n_groups:
            raise ValueError(f"group_index must hold group numbers in [0, {n_groups}) (scale's last dim), got "
                             f"{int(self.group_index.min())} to {int(self.group_index.max())}")
        validate.bits("bits", self.bits)
        validate.flag("symmetric", self.symmetric)

    def dequantize(self) -> torch.Tensor:
        index = self.group_index.unsqueeze(-2).expand(self.q.shape)  # (..., N, K): each weight's group
        return dequantize_unchecked(self.q, self.scale.gather(-1, index), self.zero.gather(-1, index))


def _grid(w: torch.Tensor, bits: int, symmetric: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, zero), each (..., N), for the columns w (..., N, g) of one group."""
    if symmetric:
        scale = symmetric_scale_unchecked(w.abs().amax(-1), bits)
        return scale, torch.zeros_like(scale)
    return affine_grid_unchecked(w.amin(-1), w.amax(-1), bits)


def inverse_hessian_factor(H: torch.Tensor, damp: float = 0.01) -> torch.Tensor:
    """U, upper triangular with U^T U = (H + damp * mean(diag H) I)^-1. H (..., K, K); damp >= 0 (0: none).

    GPTQ's reference code takes cholesky(cholesky_inverse(cholesky(H)), upper=True). One factorisation is
    enough: with J the order-reversing permutation and J H J = L L^T, H = (J L J)(J L J)^T with J L J upper
    triangular, so H^-1 = U^T U for U = (J L J)^-1 = J L^-1 J."""
    validate.tensor("H", H, min_ndim=2, floating=True, finite=True)
    if H.shape[-1] != H.shape[-2] or H.shape[-1] == 0:
        raise ValueError(f"H must have shape (..., K, K) with K >= 1, got {tuple(H.shape)}")
    damp = validate.positive_float("damp", damp, allow_zero=True)
    return _inverse_hessian_factor(H, damp)


def _inverse_hessian_factor(H: torch.Tensor, damp: float) -> torch.Tensor:
    # float64: H is often nearly singular (few tokens, wide layers), and float32 noise here changes the codes
    dtype, H = H.dtype, H.to(torch.float64, copy=True)
    diag = torch.diagonal(H, dim1=-2, dim2=-1)
    diag[diag == 0] = 1  # inputs that were always 0 (a view: this writes the copy H); gptq_quantize zeroes their weights
    H = H + damp * diag.mean(-1)[..., None, None] * torch.eye(H.shape[-1], device=H.device, dtype=H.dtype)
    L, info = torch.linalg.cholesky_ex(H.flip(-2, -1))
    if bool((info > 0).any()):
        raise ValueError("H + damp * mean(diag H) * I is not positive definite; use more calibration data or a "
                         "larger damp")
    eye = torch.eye(H.shape[-1], device=H.device, dtype=H.dtype).expand_as(H)
    return torch.linalg.solve_triangular(L, eye, upper=False).flip(-2, -1).to(dtype)


def _columns(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x (..., R, K) with its last dimension reordered by index (..., K)."""
    return x.gather(-1, index.unsqueeze(-2).expand(x.shape))


@torch.no_grad()
def gptq_quantize(W: torch.Tensor, H: torch.Tensor, bits: int = 4, *, group_size: int | None = None,
                  symmetric: bool = True, act_order: bool = False, block_size: int = 128, damp: float = 0.01,
                  update: Callable = _column_update, factor: torch.Tensor | None = None) -> GPTQResult:
    """GPTQ of W (N, K) given the Hessian H (K, K) of its inputs. ``group_size`` None: one grid per row.
    W (L, N, K) with H (L, K, K) solves L independent layers in one loop.

    ``damp`` in [0, 1): the share of mean(diag H) added to H's diagonal (0: none); ``block_size``: the
    columns of one lazy batch (>= K: a single block).
    ``update`` is the per-column step (``gptq_column_update``, without its checks; the notebook passes the
    learner's). ``factor``: ``inverse_hessian_factor(H, damp)`` if already computed (not with act_order, which
    reorders H)."""
    validate.flag("act_order", act_order)
    validate.flag("symmetric", symmetric)
    validate.tensor("W", W, floating=True, finite=True)
    validate.tensor("H", H, floating=True, finite=True)
    validate.bits("bits", bits)
    if W.ndim not in (2, 3) or H.shape != (*W.shape[:-2], W.shape[-1], W.shape[-1]):
        raise ValueError(f"expected W (N, K) and H (K, K), got {tuple(W.shape)} and {tuple(H.shape)}")
    if W.numel() == 0:
        raise ValueError(f"W is empty, shape {tuple(W.shape)}: there is nothing to quantize")
    N, K = W.shape[-2:]
    g = K if group_size is None else group_size
    g = validate.divisor("group_size", g, K, what="K")
    damp = validate.real("damp", damp, minimum=0.0, below=1.0)
    block_size = validate.positive_int("block_size", block_size)
    if not callable(update):
        raise TypeError(f"update must be a function (W, U, i, q) -> err, got {type(update).__name__}")
    if factor is not None:
        validate.tensor("factor", factor, floating=True, finite=True)
        if factor.shape != H.shape:
            raise ValueError(f"factor must have H's shape {tuple(H.shape)}, got {tuple(factor.shape)}")
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
    U = _inverse_hessian_factor(H, damp) if factor is None else factor.float()

    Q = torch.zeros_like(W)
    scale, zero = W.new_zeros(*W.shape[:-1], K // g), W.new_zeros(*W.shape[:-1], K // g)
    lo, hi = qrange(bits, symmetric)
    for b0 in range(0, K, block_size):
        b1 = min(b0 + block_size, K)
        # the block copied column-major: every step reads one column and updates a block of whole columns
        W1, U1 = W[..., b0:b1].transpose(-1, -2).contiguous().transpose(-1, -2), U[..., b0:b1, b0:b1]
        columns = W1.unbind(-1)  # views, made once: indexing a tensor per column costs more than the arithmetic
        qs, errors = [], []
        for i in range(b1 - b0):  # one Python step per column: every operation saved here counts K times
            col = b0 + i
            if col % g == 0:  # a new group: fit its grid on the weights as updated so far
                scale[..., col // g], zero[..., col // g] = _grid(W1[..., i:i + g] if g < K else W, bits, symmetric)
                s, z = scale[..., col // g], zero[..., col // g]  # views: the group's grid, for its columns
            if symmetric:  # zero is 0: s * clamp(round(w / s)), the same numbers in fewer operations
                q = torch.div(columns[i], s).round_().clamp_(lo, hi).mul_(s)
            else:
                q = dequantize_unchecked(quantize_unchecked(columns[i], s, z, bits, symmetric), s, z)
            qs.append(q)
            errors.append(update(W1, U1, i, q))
        Q[..., b0:b1] = torch.stack(qs, -1)
        W[..., b1:] -= torch.stack(errors, -1) @ U[..., b0:b1, b1:]  # the block's errors reach the rest at once

    group_of = torch.arange(K, device=W.device) // g  # in quantization order
    codes = quantize_unchecked(Q, scale[..., group_of], zero[..., group_of], bits, symmetric)
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

    batches = calibration_batches(batches)
    handle = validate.layered_model("model", model).layers[0].register_forward_pre_hook(grab, with_kwargs=True)
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
        if not isinstance(linears, Mapping):
            raise TypeError(f"linears must be a dict {{name: nn.Linear}}, got {type(linears).__name__}")
        if not linears:
            raise ValueError("linears is empty: give at least one linear layer to calibrate")
        for name, m in linears.items():
            if not isinstance(m, nn.Linear):
                raise TypeError(f"linears must map names to nn.Linear modules, got {type(m).__name__} for {name!r}")
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
                self.hessians[name]._add(x)  # the model's own activations: nothing to check
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
    linears, batches = block_linears(model), calibration_batches(batches)
    calibration = Calibration(linears)
    # once the last block has run, every block linear has seen its inputs: stop there (the head's logits, SmolLM2's
    # 49,152 per token, would only be thrown away)
    stop = model.layers[-1].register_forward_hook(_stop_after)
    try:
        for batch in batches:
            try:
                model(*batch)
            except _Stop:
                pass
    finally:
        stop.remove()
        calibration.remove()
    return calibration


def _stop_after(module, args, output):
    raise _Stop


@torch.no_grad()
def gptq_model(model: nn.Module, batches: Iterable[tuple] | None, bits: int = 4, *, group_size: int | None = 128,
               symmetric: bool = True, act_order: bool = False, damp: float = 0.01,
               calibration: Calibration | None = None, progress: bool = False,
               update: Callable | None = None) -> dict[str, GPTQResult]:
    """Quantize every linear layer of ``model.layers`` with GPTQ, block after block, in place.

    ``batches``: calibration inputs, each a tuple of arguments for ``model(*batch)`` (e.g. ``(ids,)``).
    Each block sees the outputs of the blocks before it *after* their quantization, so later blocks
    compensate earlier errors. Linears that read the same tensor (q/k/v; gate/up) share one Hessian and
    are solved as one stacked matrix. Use at least as many calibration tokens as the widest layer has
    inputs (SmolLM2: 1536), or H is singular and only the damping holds it together.

    ``calibration`` (from ``calibrate`` on the float model) instead: every block uses the float model's
    Hessians, with no forward pass here. Less exact (no block sees its predecessors' errors), much faster
    when one calibration serves several settings.
    ``update``: the per-column step (W (N, B), U (B, B), i, q (N,)) -> err (N,), which updates W in place, as
    ``gptq_column_update`` (None, the default: llmlab's); notebook 09 passes the learner's ``gptq_update``.
    Returns {module name: GPTQResult}; the model's weights are replaced by the dequantized ones."""
    validate.flag("progress", progress)
    validate.flag("act_order", act_order)
    validate.flag("symmetric", symmetric)
    validate.bits("bits", bits)
    damp = validate.real("damp", damp, minimum=0.0, below=1.0)
    if group_size is not None:
        validate.positive_int("group_size", group_size)
    if update is not None and not callable(update):
        raise TypeError(f"update must be a function (W, U, i, q) -> err (or None for llmlab's), got "
                        f"{type(update).__name__}")
    from tqdm.auto import tqdm

    options = dict(group_size=group_size, symmetric=symmetric, act_order=act_order, damp=damp,
                   update=_column_update if update is None else update)
    if calibration is not None:
        if not isinstance(calibration, Calibration):
            raise TypeError(f"calibration must be a gptq.Calibration (from gptq.calibrate), got "
                            f"{type(calibration).__name__}")
        return _solve(block_linears(model), calibration, bits, **options)
    block_linears(model)  # a clear TypeError for anything but an llmlab Decoder / Encoder
    if batches is None:
        raise ValueError("batches is None: give calibration batches, or a calibration from gptq.calibrate")
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
