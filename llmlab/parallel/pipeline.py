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

import time

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from llmlab.validate import MAX_SIZE, integer, positive_int
from llmlab.nn.attention import causal_mask
from llmlab.nn.model import Decoder, DecoderConfig, rope_rotary

Slot = tuple[str, int] | None  # ("F", j) forward or ("B", j) backward of micro-batch j, None idle


def split_layers(n_layers: int, stages: int) -> list[range]:
    """Contiguous, balanced blocks of layer indices, one per stage (the first stages take one more
    when n_layers is not a multiple of stages)."""
    n_layers, stages = positive_int("n_layers", n_layers), positive_int("stages", stages)
    if stages > n_layers:
        raise ValueError(f"{stages} stages need at least {stages} layers, got {n_layers}")
    size, extra = divmod(n_layers, stages)
    starts = [s * size + min(s, extra) for s in range(stages + 1)]
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


def lm_loss(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy: logits (B, T, V) at positions 0 .. T-2 predict ids (B, T) at 1 .. T-1."""
    return F.cross_entropy(logits[:, :-1].flatten(0, 1), ids[:, 1:].flatten())


def gpipe_step(stage: Stage, ids: torch.Tensor, micro_batches: int, rank: int, world_size: int) -> dict:
    """One GPipe forward/backward pass of a batch ``ids`` (B, T) on this rank's stage: gradients accumulate in
    the stage's parameters. Returns the batch loss (last stage, else None) and this rank's busy intervals."""
    world_size = positive_int("world_size", world_size)
    rank = integer("rank", rank, minimum=0, maximum=world_size - 1)
    if dist.is_initialized() and (world_size, rank) != (dist.get_world_size(), dist.get_rank()):
        raise ValueError(f"rank {rank} of world_size {world_size} is not this process's place in its group "
                         f"(rank {dist.get_rank()} of {dist.get_world_size()})")
    micro_batches = positive_int("micro_batches", micro_batches)
    chunks = ids.chunk(micro_batches)
    if len(chunks) != micro_batches or len({len(c) for c in chunks}) != 1:
        raise ValueError(f"a batch of {len(ids)} does not split into {micro_batches} equal micro-batches")
    C, busy, inputs, outputs, loss = stage.cfg.dim, [], [], [], 0.0
    first, last = rank == 0, rank == world_size - 1
    for j, mb in enumerate(chunks):
        if first:
            x = mb
        else:
            x = torch.empty(*mb.shape, C)
            dist.recv(x, rank - 1)
            x.requires_grad_(True)
        t0 = time.perf_counter()
        y = stage(x)
        if last:
            y = lm_loss(y, mb) / micro_batches  # the mean over the batch: equal micro-batches, equal weights
            loss += float(y.detach())
        busy.append((t0, time.perf_counter()))
        if not last:
            dist.send(y.detach(), rank + 1)
        inputs.append(x)
        outputs.append(y)
    for j in reversed(range(micro_batches)):
        grad = None
        if not last:
            grad = torch.empty_like(outputs[j])
            dist.recv(grad, rank + 1)
        t0 = time.perf_counter()
        outputs[j].backward(grad)
        busy.append((t0, time.perf_counter()))
        if not first:
            dist.send(inputs[j].grad, rank - 1)
    return {"loss": loss if last else None, "busy": busy}


def _stage_of(rank: int, world_size: int, cfg_kwargs: dict, seed: int) -> tuple[Decoder, Stage]:
    world_size = positive_int("world_size", world_size)
    rank = integer("rank", rank, minimum=0, maximum=world_size - 1)
    torch.manual_seed(seed)
    cfg = DecoderConfig(**cfg_kwargs)
    if cfg.tie_embeddings and world_size > 1:
        raise ValueError("tied embeddings would live on the first and the last stage: use tie_embeddings=False")
    model = Decoder(cfg)
    layers = split_layers(cfg.n_layers, world_size)[rank]
    return model, Stage(model, layers, first=rank == 0, last=rank == world_size - 1)


def _timed_step(stage: Stage, ids: torch.Tensor, micro_batches: int, rank: int, world_size: int) -> dict:
    # the first backward pass pays one-off costs (autograd's start-up, allocations): run an untimed step first
    gpipe_step(stage, ids, micro_batches, rank, world_size)
    stage.zero_grad(set_to_none=True)
    dist.barrier()  # start the clocks together
    return gpipe_step(stage, ids, micro_batches, rank, world_size)


def worker_gpipe(rank: int, world_size: int, cfg_kwargs: dict, ids: torch.Tensor, micro_batches: int,
                 seed: int = 0, threads: int = 1) -> dict:
    """Worker for ``launch.run``: build the decoder (same seed, same weights on every rank), keep this rank's
    stage, run one timed GPipe step; return the loss, the busy intervals and the stage's gradients by the full
    model's parameter names."""
    torch.set_num_threads(threads)
    model, stage = _stage_of(rank, world_size, cfg_kwargs, seed)
    out = _timed_step(stage, ids, micro_batches, rank, world_size)
    owned = {id(p) for p in stage.parameters()}
    out["grads"] = {k: p.grad for k, p in model.named_parameters() if id(p) in owned}
    return out


def worker_gpipe_sweep(rank: int, world_size: int, cfg_kwargs: dict, ids: torch.Tensor, micro_batch_counts: list[int],
                       seed: int = 0, threads: int = 1) -> dict[int, list]:
    """Worker for ``launch.run``: one timed GPipe step per micro-batch count, in one process group (starting
    processes costs more than the steps); returns {m: this rank's busy intervals}."""
    torch.set_num_threads(threads)
    _, stage = _stage_of(rank, world_size, cfg_kwargs, seed)
    out = {}
    for m in micro_batch_counts:
        out[m] = _timed_step(stage, ids, m, rank, world_size)["busy"]
        stage.zero_grad(set_to_none=True)
    return out
