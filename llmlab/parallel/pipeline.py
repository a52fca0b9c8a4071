"""Pipeline parallelism (GPipe): consecutive layers on consecutive ranks, the batch cut into micro-batches.

Rank s of p holds stage s, a block of the decoder's layers (the first also the embedding, the last the
final norm, the LM head and the loss). A micro-batch's activations go forward from rank s to s + 1
(``dist.send`` / ``dist.recv``), the gradients with respect to them come back from s + 1 to s. GPipe
runs the m micro-batches' forward passes, then their backward passes, and steps once, so the
gradient is the one of the whole batch (``tests/test_parallel.py``).

The pipeline fills and drains: at clock t stage s works on micro-batch t - s, so each stage idles
p - 1 of the m + p - 1 forward steps (and as many backward). The idle share, the *bubble*, is

    bubble = (p - 1) / (m + p - 1),

small only when m >> p: more, smaller micro-batches (which have their own cost: less work per
kernel, more messages). 1F1B schedules (PipeDream) keep the bubble but hold fewer activations;
interleaved stages (Megatron) shrink it by putting several small stages on each rank.
"""
from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Mapping

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from llmlab.validate import MAX_SIZE, flag, integer, positive_int, size, tensor
from llmlab.nn.attention import causal_mask
from llmlab.nn.model import Decoder, DecoderConfig, rope_rotary
from llmlab.parallel.launch import worker_place

Slot = tuple[str, int] | None  # ("F", j) forward or ("B", j) backward of micro-batch j, None idle


def split_layers(n_layers: int, stages: int) -> list[range]:
    """Contiguous, balanced blocks of layer indices, one per stage (the first stages take one more
    when n_layers is not a multiple of stages)."""
    n_layers, stages = size("n_layers", n_layers), size("stages", stages)
    if stages > n_layers:
        raise ValueError(f"{stages} stages need at least {stages} layers, got {n_layers}")
    per, extra = divmod(n_layers, stages)
    starts = [s * per + min(s, extra) for s in range(stages + 1)]
    return [range(starts[s], starts[s + 1]) for s in range(stages)]


def gpipe_schedule(stages: int, micro_batches: int) -> list[list[Slot]]:
    """GPipe's timetable: one row per clock step, one slot per stage. Forward of micro-batch j on stage s
    at step s + j; the backward passes run in reverse, the last stage first, after all forward ones:
    backward of micro-batch j on stage s at step (m + p - 1) + (p - 1 - s) + (m - 1 - j). 2 (m + p - 1) steps."""
    p, m = positive_int("stages", stages), positive_int("micro_batches", micro_batches)
    steps = m + p - 1
    if 2 * steps * p > MAX_SIZE:
        raise ValueError(f"a timetable of {stages} stages and {micro_batches} micro-batches would hold "
                         f"{2 * steps * p:,} slots: keep stages x (stages + micro_batches) under {MAX_SIZE // 2:,}")
    table: list[list[Slot]] = [[None] * p for _ in range(2 * steps)]
    for s in range(p):
        for j in range(m):
            table[s + j][s] = ("F", j)
            table[steps + (p - 1 - s) + (m - 1 - j)][s] = ("B", j)
    return table


def bubble_fraction(stages: int, micro_batches: int) -> float:
    """The idle share of GPipe's timetable with equal step times: (p - 1) / (m + p - 1)."""
    p, m = positive_int("stages", stages), positive_int("micro_batches", micro_batches)
    return (p - 1) / (m + p - 1)


def measured_bubble(busy: list[list[tuple[float, float]]]) -> float:
    """The idle share of a run: 1 - (time spent computing, summed over ranks) / (ranks × wall time), the
    wall time running from the first start to the last end over all ranks. ``busy[r]`` lists rank r's
    (start, end) compute intervals, on a clock shared by the ranks (``time.perf_counter`` on one machine)."""
    if not isinstance(busy, (list, tuple)) or not busy or not all(isinstance(b, (list, tuple)) and b for b in busy):
        raise ValueError("busy must be a non-empty list (one per rank) of non-empty lists of (start, end)")
    start = min(s for rank in busy for s, _ in rank)
    end = max(e for rank in busy for _, e in rank)
    work = sum(e - s for rank in busy for s, e in rank)
    return 1 - work / (len(busy) * (end - start))


class Stage(nn.Module):
    """Layers ``layers`` of ``model``; with the embedding if ``first``, the norm and LM head if ``last``.

    forward: token ids (B, T) on the first stage, activations (B, T, C) on the others -> activations
    (B, T, C), or logits (B, T, V) on the last stage."""

    def __init__(self, model: Decoder, layers: range, first: bool, last: bool):
        super().__init__()
        if not isinstance(model, Decoder):
            raise TypeError(f"model must be a Decoder, got {type(model).__name__}")
        if not isinstance(layers, range):
            raise TypeError(f"layers must be a range of layer indices (as split_layers gives), "
                            f"got {type(layers).__name__}")
        n = len(model.layers)
        if not layers or layers.start < 0 or layers.stop > n or layers.step != 1:
            raise ValueError(f"layers must be a non-empty block range(start, stop) of the model's {n} layers "
                             f"(0 <= start < stop <= {n}), got {layers}")
        flag("first", first)
        flag("last", last)
        self.cfg = model.cfg
        self.embed = model.tok_embeddings if first else None
        self.layers = nn.ModuleList(model.layers[i] for i in layers)
        self.norm, self.output = (model.norm, model.output) if last else (None, None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.embed is not None:
            x = self.embed(x)
        T = x.shape[1]
        rotary = rope_rotary(torch.arange(T, device=x.device), self.cfg.head_dim, self.cfg.rope_theta, x.dtype)
        mask = causal_mask(T, device=x.device)
        for layer in self.layers:
            x = layer(x, mask, rotary)
        return x if self.output is None else self.output(self.norm(x))


def _check_ids(ids) -> torch.Tensor:
    """A batch of token ids: an integer tensor (B, T), not empty."""
    if not isinstance(ids, torch.Tensor):
        raise TypeError(f"ids must be a torch.Tensor of token ids, got {type(ids).__name__}")
    if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
        raise TypeError(f"ids must hold integer token ids (torch.long), got dtype {ids.dtype}")
    if ids.ndim != 2 or not ids.numel():
        raise ValueError(f"ids must have shape (B, T) with B, T >= 1, got {tuple(ids.shape)}")
    return ids


def _check_ids_below(ids: torch.Tensor, vocab_size: int) -> None:
    lo, hi = int(ids.min()), int(ids.max())
    if lo < 0 or hi >= vocab_size:
        raise ValueError(f"ids holds ids outside [0, {vocab_size}): min {lo}, max {hi}")


def _check_split(batch: int, micro_batches: int, name: str = "micro_batches") -> None:
    if batch % micro_batches:
        raise ValueError(f"a batch of {batch} does not split into {micro_batches} equal micro-batches: "
                         f"{name} must divide the batch")


def lm_loss(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy: logits (B, T, V) at positions 0 .. T-2 predict ids (B, T) at 1 .. T-1."""
    tensor("logits", logits, ndim=3, floating=True)
    _check_ids(ids)
    if logits.shape[:2] != ids.shape:
        raise ValueError(f"logits (B, T, V) must match ids (B, T) = {tuple(ids.shape)} in B and T, "
                         f"got {tuple(logits.shape)}")
    if ids.shape[1] < 2:
        raise ValueError(f"ids must have T >= 2 tokens per row (position t predicts t + 1), got {tuple(ids.shape)}")
    _check_ids_below(ids, logits.shape[2])
    return F.cross_entropy(logits[:, :-1].flatten(0, 1), ids[:, 1:].flatten())


def _schedule_orders(schedule, stages: int, micro_batches: int) -> list[list[tuple[str, int]]]:
    """Each stage's work, in time order, from a timetable such as ``gpipe_schedule(stages, micro_batches)``:
    ``orders[s]`` lists the ("F", j) and ("B", j) of column s, top to bottom. Raises ValueError unless every
    row has one slot per stage (None or ("F" | "B", j) with 0 <= j < micro_batches) and every stage runs each
    micro-batch's forward pass once and, after it, its backward pass once."""
    stages, micro_batches = positive_int("stages", stages), positive_int("micro_batches", micro_batches)
    if isinstance(schedule, (str, bytes)) or not isinstance(schedule, (list, tuple)):
        raise TypeError(f"schedule must be a list of rows (one per clock step), got {type(schedule).__name__}")
    if len(schedule) > MAX_SIZE // stages:
        raise ValueError(f"schedule has {len(schedule):,} rows: more than a timetable of {stages} stages needs")
    orders: list[list[tuple[str, int]]] = [[] for _ in range(stages)]
    for t, row in enumerate(schedule):
        if isinstance(row, (str, bytes)) or not isinstance(row, (list, tuple)) or len(row) != stages:
            raise ValueError(f"schedule[{t}] must be a list of {stages} slots (one per stage), got {row!r:.80}")
        for s, slot in enumerate(row):
            if slot is None:
                continue
            if not (isinstance(slot, (list, tuple)) and len(slot) == 2 and slot[0] in ("F", "B")
                    and isinstance(slot[1], int) and not isinstance(slot[1], bool) and 0 <= slot[1] < micro_batches):
                raise ValueError(f"schedule[{t}][{s}] must be None, ('F', j) or ('B', j) with 0 <= j < "
                                 f"{micro_batches}, got {slot!r:.80}")
            orders[s].append((slot[0], slot[1]))
    for s, order in enumerate(orders):
        for j in range(micro_batches):
            f, b = order.count(("F", j)), order.count(("B", j))
            if f != 1 or b != 1:
                raise ValueError(f"schedule: stage {s} runs the forward pass of micro-batch {j} {f} times and its "
                                 f"backward pass {b} times; each must run once")
            if order.index(("B", j)) < order.index(("F", j)):
                raise ValueError(f"schedule: stage {s} runs the backward pass of micro-batch {j} before its "
                                 "forward pass")
    return orders


def gpipe_step(stage: Stage, ids: torch.Tensor, micro_batches: int, rank: int, world_size: int,
               schedule=None) -> dict:
    """One GPipe forward/backward pass of a batch ``ids`` (B, T) on this rank's stage: gradients accumulate in
    the stage's parameters. Returns the batch loss (last stage, else None) and this rank's busy intervals, in
    the order the rank ran them.

    ``schedule``, a timetable as ``gpipe_schedule(world_size, micro_batches)`` gives (one row per clock step,
    one slot per stage), sets the order in which this rank runs its forward and backward passes (its column,
    top to bottom); None is GPipe's: every forward pass, then the backward passes in
    reverse. Each message is tagged with its micro-batch, so any order that every stage can follow works."""
    rank, world_size = worker_place(rank, world_size)
    micro_batches = positive_int("micro_batches", micro_batches)
    _check_split(len(_check_ids(ids)), micro_batches)
    if not isinstance(stage, Stage):
        raise TypeError(f"stage must be a Stage, got {type(stage).__name__}")
    _check_ids_below(ids, stage.cfg.vocab_size)  # on every rank: one that raised alone would leave the others waiting
    if schedule is None:
        order = [("F", j) for j in range(micro_batches)] + [("B", j) for j in reversed(range(micro_batches))]
    else:  # every stage's column checked on every rank: a bad timetable fails everywhere, before any message
        order = _schedule_orders(schedule, world_size, micro_batches)[rank]
    chunks = ids.chunk(micro_batches)
    C, busy, inputs, outputs, loss = stage.cfg.dim, [], {}, {}, 0.0
    first, last = rank == 0, rank == world_size - 1
    for kind, j in order:
        if kind == "F":
            mb = chunks[j]
            if first:
                x = mb
            else:
                x = torch.empty(*mb.shape, C)
                dist.recv(x, rank - 1, tag=j)
                x.requires_grad_(True)
            t0 = time.perf_counter()
            y = stage(x)
            if last:
                y = lm_loss(y, mb) / micro_batches  # the mean over the batch: equal micro-batches, equal weights
                loss += float(y.detach())
            busy.append((t0, time.perf_counter()))
            if not last:
                dist.send(y.detach(), rank + 1, tag=j)
            inputs[j], outputs[j] = x, y
        else:
            grad = None
            if not last:
                grad = torch.empty_like(outputs[j])
                dist.recv(grad, rank + 1, tag=j)
            t0 = time.perf_counter()
            outputs[j].backward(grad)
            busy.append((t0, time.perf_counter()))
            if not first:
                dist.send(inputs[j].grad, rank - 1, tag=j)
    return {"loss": loss if last else None, "busy": busy}


def worker_decoder_config(cfg_kwargs: dict) -> DecoderConfig:
    """The ``DecoderConfig`` of a worker's model from ``cfg_kwargs``, its fields. Empty is refused: the
    defaults are SmolLM2-135M's (seconds of random initialisation, and more per step, on every rank), where
    these workers are meant for small models such as the tests' (tens of thousands of parameters)."""
    if not isinstance(cfg_kwargs, Mapping):
        raise TypeError(f"cfg_kwargs must be a dict of DecoderConfig fields, got {type(cfg_kwargs).__name__}")
    if not cfg_kwargs:
        raise ValueError("cfg_kwargs is empty: give the sizes of a small decoder, e.g. dict(vocab_size=64, dim=64, "
                         "n_layers=2, n_heads=4, n_kv_heads=2, hidden_dim=96); DecoderConfig's defaults are "
                         "SmolLM2-135M's, far too large for CPU ranks")
    fields = [f.name for f in dataclasses.fields(DecoderConfig)]
    unknown = [k for k in cfg_kwargs if k not in fields]
    if unknown:
        raise ValueError(f"cfg_kwargs has unknown fields {unknown}: DecoderConfig's are {fields}")
    return DecoderConfig(**cfg_kwargs)


def _stage_of(rank: int, world_size: int, cfg_kwargs: dict, seed: int) -> tuple[Decoder, Stage]:
    rank, world_size = worker_place(rank, world_size)
    cfg = worker_decoder_config(cfg_kwargs)
    seed = integer("seed", seed)
    if cfg.tie_embeddings and world_size > 1:
        raise ValueError("tied embeddings would live on the first and the last stage: use tie_embeddings=False")
    if world_size > cfg.n_layers:
        raise ValueError(f"world_size {world_size} (one stage per rank) needs at least {world_size} layers, "
                         f"cfg_kwargs gives n_layers={cfg.n_layers}")
    torch.manual_seed(seed)
    model = Decoder(cfg)
    layers = split_layers(cfg.n_layers, world_size)[rank]
    return model, Stage(model, layers, first=rank == 0, last=rank == world_size - 1)


def _timed_step(stage: Stage, ids: torch.Tensor, micro_batches: int, rank: int, world_size: int,
                schedule=None) -> dict:
    # the first backward pass pays one-off costs (autograd's start-up, allocations): run an untimed step first
    gpipe_step(stage, ids, micro_batches, rank, world_size, schedule)
    stage.zero_grad(set_to_none=True)
    dist.barrier()  # start the clocks together
    return gpipe_step(stage, ids, micro_batches, rank, world_size, schedule)


def _check_threads(threads: int) -> int:
    # set_num_threads takes any positive int; more threads than a few per core only slow the rank down
    return integer("threads", threads, minimum=1, maximum=4 * (os.cpu_count() or 1))


def worker_gpipe(rank: int, world_size: int, cfg_kwargs: dict, ids: torch.Tensor, micro_batches: int,
                 seed: int = 0, threads: int = 1, schedule=None) -> dict:
    """Worker for ``launch.run``: build the decoder (same seed, same weights on every rank), keep this rank's
    stage, run one timed GPipe step (in the order of ``schedule``, as in ``gpipe_step``); return the loss, the
    busy intervals and the stage's gradients by the full model's parameter names."""
    torch.set_num_threads(_check_threads(threads))
    _check_split(len(_check_ids(ids)), positive_int("micro_batches", micro_batches))
    if schedule is not None:
        _schedule_orders(schedule, positive_int("world_size", world_size), micro_batches)
    model, stage = _stage_of(rank, world_size, cfg_kwargs, seed)
    out = _timed_step(stage, ids, micro_batches, rank, world_size, schedule)
    owned = {id(p) for p in stage.parameters()}
    out["grads"] = {k: p.grad for k, p in model.named_parameters() if id(p) in owned}
    return out


def worker_gpipe_sweep(rank: int, world_size: int, cfg_kwargs: dict, ids: torch.Tensor, micro_batch_counts: list[int],
                       seed: int = 0, threads: int = 1, schedules: dict | None = None) -> dict[int, list]:
    """Worker for ``launch.run``: one timed GPipe step per micro-batch count, in one process group (starting
    processes costs more than the steps); returns {m: this rank's busy intervals, in the order it ran them}.
    ``schedules`` maps each count m to the timetable its step follows (as in ``gpipe_step``; None: GPipe's)."""
    torch.set_num_threads(_check_threads(threads))
    batch = len(_check_ids(ids))
    if isinstance(micro_batch_counts, (str, bytes)) or not isinstance(micro_batch_counts, (list, tuple, range)):
        raise TypeError(f"micro_batch_counts must be a list of ints, got {type(micro_batch_counts).__name__}")
    if not micro_batch_counts:
        raise ValueError("micro_batch_counts is empty: give at least one number of micro-batches")
    for i, m in enumerate(micro_batch_counts):  # all checked before the first step: a sweep fails at once, not midway
        _check_split(batch, positive_int(f"micro_batch_counts[{i}]", m), f"micro_batch_counts[{i}]")
    if schedules is not None:
        if not isinstance(schedules, Mapping):
            raise TypeError(f"schedules must be a dict {{micro-batch count: timetable}}, got {type(schedules).__name__}")
        missing = [m for m in micro_batch_counts if m not in schedules]
        if missing:
            raise ValueError(f"schedules has no timetable for the micro-batch counts {missing}")
        for m in micro_batch_counts:
            _schedule_orders(schedules[m], positive_int("world_size", world_size), m)
    _, stage = _stage_of(rank, world_size, cfg_kwargs, seed)
    out = {}
    for m in micro_batch_counts:
        out[m] = _timed_step(stage, ids, m, rank, world_size, None if schedules is None else schedules[m])["busy"]
        stage.zero_grad(set_to_none=True)
    return out
