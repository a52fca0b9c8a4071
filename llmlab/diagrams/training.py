"""Notebook 06's pictures: one training step as a loop, and the learning-rate schedule a run actually followed."""
from __future__ import annotations

from collections.abc import Sequence

from llmlab import validate
from llmlab.diagrams.draw import PALETTE, arrow, box, canvas, legend

__all__ = ["training_loop", "lr_schedule"]


def training_loop(batch_size: int, block_size: int, vocab_size: int, max_norm: float = 1.0,
                  betas: tuple[float, float] = (0.9, 0.95), weight_decay: float = 0.1):
    """One training step drawn as a loop, labelled with a run's settings: a batch of ``batch_size`` windows
    of ``block_size`` tokens → forward (logits ``(B, T, vocab_size)``) → cross-entropy loss → zero_grad and
    backward → clip the global gradient norm to ``max_norm`` → AdamW (``betas``, ``weight_decay``) → the
    schedule sets the next step's learning rate → the next batch. Returns the matplotlib Figure."""
    B = validate.size("batch_size", batch_size)
    T = validate.size("block_size", block_size)
    V = validate.size("vocab_size", vocab_size)
    max_norm = validate.positive_float("max_norm", max_norm)
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    b1 = validate.real("betas[0]", betas[0], minimum=0.0, below=1.0)
    b2 = validate.real("betas[1]", betas[1], minimum=0.0, below=1.0)
    weight_decay = validate.positive_float("weight_decay", weight_decay, allow_zero=True)

    fig, ax = canvas(24.2, 10.4, scale=0.42, title="one training step (train_step), repeated by the training loop (fit)")
    w, h = 5.0, 2.0
    top, bottom = 7.2, 2.8
    steps_top = [  # left to right
        ("get_batch", f"x, y: {B} windows\nof {T} tokens\n(y = x shifted by one)", PALETTE["stored"]),
        ("forward", f"logits = model(x)\n({B}, {T}, {V})", PALETTE["compute"]),
        ("loss", f"cross-entropy over\n{B} × {T} = {B * T:,} predictions\n→ one number", PALETTE["compute"]),
        ("backward", "zero_grad(), then\nloss.backward():\n.grad of every weight", PALETTE["new"]),
    ]
    steps_bottom = [  # right to left
        ("clip", f"global norm ‖g‖\nscaled down to ≤ {max_norm:g}\n(one factor for all)", PALETTE["new"]),
        ("AdamW step", f"β = ({b1:g}, {b2:g})\nweight decay {weight_decay:g}\nweights move", PALETTE["kept"]),
        ("schedule", "lr_at(step + 1):\nwarm-up, then\ncosine decay", PALETTE["compute"]),
    ]
    xs = [0.4 + i * 6.0 for i in range(4)]
    for (title, text, color), x in zip(steps_top, xs):
        box(ax, x, top, w, h, text, color=color, fontsize=7.5)
        ax.text(x + w / 2, top + h + 0.2, title, ha="center", fontsize=9, weight="bold")
    for a, b in zip(xs, xs[1:]):
        arrow(ax, (a + w, top + h / 2), (b, top + h / 2))
    xb = [xs[3], xs[2], xs[1]]
    for (title, text, color), x in zip(steps_bottom, xb):
        box(ax, x, bottom, w, h, text, color=color, fontsize=7.5, text_color="white" if color == PALETTE["kept"]
            else PALETTE["text"])
        ax.text(x + w / 2, bottom - 0.45, title, ha="center", fontsize=9, weight="bold")
    arrow(ax, (xs[3] + w / 2, top), (xs[3] + w / 2, bottom + h))  # backward -> clip
    for a, b in zip(xb, xb[1:]):
        arrow(ax, (a, bottom + h / 2), (b + w, bottom + h / 2))
    arrow(ax, (xs[1], bottom + h / 2), (xs[0] + w / 2, bottom + h / 2), style="-")  # schedule -> next batch
    arrow(ax, (xs[0] + w / 2, bottom + h / 2), (xs[0] + w / 2, top), text=" next step")
    legend(ax, {"data": PALETTE["stored"], "a computation": PALETTE["compute"],
                "gradients": PALETTE["new"], "the weights change": PALETTE["kept"]}, x=0.4, y=1.75, size=0.4,
           fontsize=7.5)
    return fig


def _numbers(name: str, values, minimum: float | None = None) -> list[float]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise TypeError(f"{name} must be a list of numbers, got {type(values).__name__}")
    if not values:
        raise ValueError(f"{name} must not be empty")
    return [validate.real(f"{name}[{i}]", v, minimum=minimum) for i, v in enumerate(values)]


def lr_schedule(lrs: Sequence[float], warmup_steps: int, losses: Sequence[float] | None = None):
    """The learning rate of every step of a run, ``lrs[s]`` for step s (what the loop set, e.g. from
    ``lr_at``), with the warm-up (steps < ``warmup_steps``) and the cosine decay shaded; with ``losses`` (one
    per step) the training loss on a second axis. Returns the matplotlib Figure."""
    import matplotlib.pyplot as plt

    lrs = _numbers("lrs", lrs, minimum=0.0)
    W = validate.integer("warmup_steps", warmup_steps, minimum=0, maximum=len(lrs))
    if losses is not None:
        losses = _numbers("losses", losses)
        if len(losses) != len(lrs):
            raise ValueError(f"losses must have one value per step, {len(lrs)}, got {len(losses)}")
    S = len(lrs)
    fig, ax = plt.subplots(figsize=(8, 3.2))
    if W:
        ax.axvspan(0, W, color=PALETTE["new"], alpha=0.3, lw=0, label=f"warm-up ({W} steps)")
    if W < S:
        ax.axvspan(W, S, color=PALETTE["stored"], alpha=0.3, lw=0, label=f"cosine decay ({S - W} steps)")
    ax.plot(range(S), lrs, color=PALETTE["text"], lw=1.6, label="learning rate")
    peak = max(range(S), key=lambda s: lrs[s])
    ax.annotate(f"max {lrs[peak]:.3g} at step {peak}", (peak, lrs[peak]), xytext=(8, -4),
                textcoords="offset points", fontsize=8, va="top")
    ax.annotate(f"last {lrs[-1]:.3g}", (S - 1, lrs[-1]), xytext=(-6, 10), textcoords="offset points", fontsize=8,
                ha="right")
    ax.set_xlim(0, S)
    ax.set_ylim(0, max(lrs) * 1.1 or 1.0)
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate")
    handles, labels = ax.get_legend_handles_labels()
    if losses is not None:
        ax2 = ax.twinx()
        ax2.plot(range(S), losses, color=PALETTE["dropped"], lw=0.8, alpha=0.7, label="train loss")
        ax2.set_ylabel("train loss", color=PALETTE["dropped"])
        h2, l2 = ax2.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    ax.legend(handles, labels, fontsize=8, loc="upper right")
    ax.set_title("the schedule this run followed", fontsize=10)
    fig.tight_layout()
    return fig
