"""Diagrams of notebook 12 (parallelism): the timetable a pipeline actually followed, and Megatron's split.

* ``gpipe_timetable``: a pipeline's timetable (``gpipe_schedule``'s, or the one a run followed) as a grid of
  stages × clock steps, forward passes and backward passes of each micro-batch in two colours, the idle slots
  (the bubble) white;
* ``megatron_mlp``: an MLP split over the ranks as Megatron-LM splits it: the first linear by output features
  (column parallel), the activation on each rank's own hidden units, the second linear by input features (row
  parallel), and the single all-reduce that sums the partial outputs before the bias is added once.
"""
from __future__ import annotations

from llmlab import validate
from llmlab.diagrams.draw import PALETTE, arrow, box, canvas, cells, legend, optional_title

MAX_STAGES = 16
MAX_STEPS = 64  # clock steps: more cells than this no longer read


def gpipe_timetable(schedule, title: str | None = None):
    """A pipeline timetable as a grid: one row per stage, one column per clock step; ``("F", j)`` (the forward
    pass of micro-batch j) and ``("B", j)`` (its backward pass) in two colours, labelled F j and B j, and None
    (the stage waits) white. The title gives the idle share of the grid, the bubble.

    schedule: a list of 1 to 64 clock steps, each a list of the same number (1 to 16) of slots, one per stage,
    each None, ("F", j) or ("B", j) with j >= 0, as ``gpipe_schedule(stages, micro_batches)`` returns it.
    Returns the Figure.
    """
    if isinstance(schedule, (str, bytes)) or not isinstance(schedule, (list, tuple)):
        raise TypeError(f"schedule must be a list of clock steps (lists of slots), got {type(schedule).__name__}")
    if not 1 <= len(schedule) <= MAX_STEPS:
        raise ValueError(f"schedule must hold 1 to {MAX_STEPS} clock steps, got {len(schedule)}")
    for t, row in enumerate(schedule):
        if isinstance(row, (str, bytes)) or not isinstance(row, (list, tuple)):
            raise TypeError(f"schedule[{t}] must be a list of slots, one per stage, got {type(row).__name__}")
    stages = len(schedule[0])
    if not 1 <= stages <= MAX_STAGES or any(len(row) != stages for row in schedule):
        raise ValueError(f"every clock step of schedule must hold the same number of slots, 1 to {MAX_STAGES} "
                         f"(one per stage), got {sorted({len(row) for row in schedule})}")
    for t, row in enumerate(schedule):
        for s, slot in enumerate(row):
            if slot is not None and not (isinstance(slot, (list, tuple)) and len(slot) == 2 and slot[0] in ("F", "B")
                                         and isinstance(slot[1], int) and not isinstance(slot[1], bool)
                                         and slot[1] >= 0):
                raise ValueError(f"schedule[{t}][{s}] must be None, ('F', j) or ('B', j) with j >= 0, "
                                 f"got {slot!r:.60}")
    title = optional_title(title)
    steps = len(schedule)
    colors = {"F": PALETTE["stored"], "B": PALETTE["new"]}
    grid = [[PALETTE["idle"] if row[s] is None else colors[row[s][0]] for row in schedule] for s in range(stages)]
    labels = [["" if row[s] is None else f"{row[s][0]}{row[s][1]}" for row in schedule] for s in range(stages)]
    idle = sum(slot is None for row in schedule for slot in row) / (steps * stages)
    left, legend_w = 2.4, 5.0
    fig, ax = canvas(left + steps + legend_w, stages + 2.2,
                     title or f"{stages} stages × {steps} clock steps: idle (white) {idle:.0%} of the slots", scale=0.5)
    cells(ax, grid, x=left, y=1.2, size=1.0, labels=labels, fontsize=7 if steps <= 24 else 5)
    for s in range(stages):
        ax.text(left - 0.2, 1.2 + stages - s - 0.5, f"stage {s}", ha="right", va="center", fontsize=8)
    for t in range(0, steps, max(1, steps // 12)):
        ax.text(left + t + 0.5, 0.9, str(t), ha="center", va="top", fontsize=7, color="#555555")
    ax.text(left + steps / 2, 0.15, "clock step →", ha="center", fontsize=8)
    legend(ax, {"forward F j": colors["F"], "backward B j": colors["B"], "idle (bubble)": PALETTE["idle"]},
           x=left + steps + 0.6, y=stages + 0.6, size=0.5, fontsize=8)
    return fig


def megatron_mlp(dim: int, hidden: int, world_size: int = 2, title: str | None = None):
    """Megatron-LM's MLP split, y = W2 φ(W1 x + b1) + b2 over ``world_size`` ranks, as boxes: the input x
    (replicated on every rank); on rank r, its block of W1's rows (column parallel: hidden / N of the hidden
    units), φ on them, and its block of W2's columns (row parallel), giving a partial output; the one all-reduce
    that sums the partial outputs; b2 added once, after it.

    dim: the model width (x and y have dim features), 1 to 100,000; hidden: the MLP's hidden units, divisible by
    world_size, at most 1,000,000; world_size: 1 to 4 ranks (drawn side by side). Returns the Figure.
    """
    dim = validate.integer("dim", dim, 1, 100_000)
    world_size = validate.integer("world_size", world_size, 1, 4)
    hidden = validate.integer("hidden", hidden, 1, 1_000_000)
    if hidden % world_size:
        raise ValueError(f"hidden must be divisible by world_size {world_size} (equal blocks of hidden units), "
                         f"got {hidden}")
    title = optional_title(title)
    part = hidden // world_size
    lane = 6.4
    width = world_size * lane + 0.8
    fig, ax = canvas(width, 13.0, title or f"an MLP over {world_size} ranks: {dim} → {hidden} → {dim}, "
                     "one all-reduce", scale=0.55)
    mid = width / 2
    box(ax, mid - 2.2, 11.6, 4.4, 0.9, f"x  (…, {dim}), on every rank", color=PALETTE["stored"])
    for r in range(world_size):
        cx = 0.4 + r * lane + lane / 2
        ax.text(cx, 10.7, f"rank {r}", ha="center", fontsize=9, weight="bold")
        arrow(ax, (mid, 11.6), (cx, 10.2))
        box(ax, cx - 2.6, 8.9, 5.2, 1.2, f"W1 rows {r * part}..{(r + 1) * part - 1}  ({part} × {dim})\n"
            "column parallel: no communication", color=PALETTE["compute"], fontsize=7)
        arrow(ax, (cx, 8.9), (cx, 8.3))
        box(ax, cx - 2.6, 7.2, 5.2, 1.0, f"φ on its own {part} hidden units", color=PALETTE["compute"], fontsize=7)
        arrow(ax, (cx, 7.2), (cx, 6.6))
        box(ax, cx - 2.6, 5.3, 5.2, 1.2, f"W2 columns {r * part}..{(r + 1) * part - 1}  ({dim} × {part})\n"
            "row parallel: a partial sum", color=PALETTE["compute"], fontsize=7)
        arrow(ax, (cx, 5.3), (cx, 4.6))
        box(ax, cx - 2.0, 3.9, 4.0, 0.7, f"partial y_{r}  (…, {dim})", color=PALETTE["new"], fontsize=7)
        arrow(ax, (cx, 3.9), (cx, 3.2))
    box(ax, 0.4, 2.2, width - 0.8, 1.0, f"all-reduce (sum): y = Σ_r y_r on every rank  "
        f"(…, {dim}), the only communication", color=PALETTE["comm"], fontsize=8)
    arrow(ax, (mid, 2.2), (mid, 1.6))
    box(ax, mid - 2.2, 0.5, 4.4, 1.0, "+ b2, once: y  (…, " + str(dim) + ")", color=PALETTE["stored"], fontsize=8)
    return fig
