"""Diagrams of notebook 15a (privacy), drawn from the run's own gradients and clients.

* ``clipping_vectors``: per-sample gradients as arrows from one origin, before clipping (pale) and after (solid),
  with the circle of radius C that DP-SGD clips them into: the long ones shrink onto it, the short ones stay;
* ``fedavg_round``: one round of FedAvg: the server's weights sent to every client, each client's local steps on
  its own examples, and the average weighted by the clients' numbers of examples.
"""
from __future__ import annotations

from llmlab import validate
from llmlab.diagrams.draw import PALETTE, arrow, box, canvas, legend, optional_title

MAX_VECTORS = 64
MAX_CLIENTS = 8


def clipping_vectors(vectors, max_norm: float, labels=None, title: str | None = None):
    """Per-sample gradients drawn as 2-D arrows: ``vectors`` (B, 2), 1 to 64 rows, each an example's gradient
    projected on a plane and rescaled to keep its true norm; each is drawn as it is (pale) and as
    ``clip_per_sample`` leaves it (solid, scaled by min(1, max_norm / (norm + 1e-6))), with the circle of radius
    ``max_norm``. ``labels``: None or one short str per vector, written at its tip. Returns the Figure."""
    from matplotlib.patches import Circle

    vectors = validate.tensor("vectors", vectors, ndim=2, floating=True, finite=True)
    if vectors.shape[1] != 2 or not 1 <= vectors.shape[0] <= MAX_VECTORS:
        raise ValueError(f"vectors must have shape (B, 2) with 1 <= B <= {MAX_VECTORS}, got {tuple(vectors.shape)}")
    max_norm = validate.positive_float("max_norm", max_norm)
    if labels is not None:
        labels = validate.strings("labels", labels)
        if len(labels) != len(vectors):
            raise ValueError(f"labels must hold one label per vector ({len(vectors)}), got {len(labels)}")
    title = optional_title(title)
    v = vectors.detach().double().cpu()
    norms = v.norm(dim=1)
    clipped = v * (max_norm / (norms + 1e-6)).clamp(max=1.0)[:, None]
    # drawn on a canvas of 10 x 10 units, centred: the longest arrow (or the circle) reaches 4.3 units
    unit = 4.3 / max(float(norms.max()), max_norm)
    fig, ax = canvas(10.0, 10.0, title or f"{len(v)} per-sample gradients, clipped to norm C = {max_norm:g}: "
                     f"{int((norms > max_norm).sum())} shrink", scale=0.7)

    def at(p):
        return (5.0 + p[0] * unit, 5.0 + p[1] * unit)

    ax.add_patch(Circle((5.0, 5.0), max_norm * unit, fill=True, facecolor=PALETTE["empty"], edgecolor=PALETTE["kept"],
                        lw=1.2))
    ax.text(5.0, 5.0 - max_norm * unit - 0.15, f"‖g‖ = C = {max_norm:g}", ha="center", va="top", fontsize=8,
            color=PALETTE["kept"])
    for i, (raw, cut) in enumerate(zip(v.tolist(), clipped.tolist())):
        shrunk = bool(norms[i] > max_norm)
        if shrunk:
            arrow(ax, (5.0, 5.0), at(raw), color=PALETTE["dropped"])
        arrow(ax, (5.0, 5.0), at(cut), color=PALETTE["kept"] if shrunk else "#444444")
        if labels is not None:
            tip = at([raw[0] * 1.06, raw[1] * 1.06])
            ax.text(tip[0], tip[1], labels[i], fontsize=7, ha="center", va="center")
    legend(ax, {"before clipping (norm > C)": PALETTE["dropped"], "after clipping": PALETTE["kept"],
                "norm ≤ C: unchanged": "#444444"}, x=0.1, y=9.6, size=0.3, fontsize=8)
    return fig


def fedavg_round(client_sizes, local_steps: int, labels=None, title: str | None = None):
    """One FedAvg round as boxes: the server's global weights w at the top, sent to each client k (1 to 8 of
    them, ``client_sizes[k]`` examples each, ``labels[k]`` naming its data if given); each takes ``local_steps``
    steps on its own data and sends back w_k; the server's new weights Σ_k (n_k / n) w_k, with each client's weight
    written on its arrow. Returns the Figure."""
    if not isinstance(client_sizes, (list, tuple)):
        raise TypeError(f"client_sizes must be a list of ints, got {type(client_sizes).__name__}")
    if not 1 <= len(client_sizes) <= MAX_CLIENTS:
        raise ValueError(f"client_sizes must hold 1 to {MAX_CLIENTS} clients, got {len(client_sizes)}")
    sizes = [validate.integer(f"client_sizes[{i}]", n, 1, 10**9) for i, n in enumerate(client_sizes)]
    local_steps = validate.integer("local_steps", local_steps, 1, 10**6)
    if labels is not None:
        labels = validate.strings("labels", labels)
        if len(labels) != len(sizes):
            raise ValueError(f"labels must hold one label per client ({len(sizes)}), got {len(labels)}")
    title = optional_title(title)
    k, total = len(sizes), sum(sizes)
    lane = 4.2
    width = k * lane + 0.6
    mid = width / 2
    fig, ax = canvas(width, 10.0, title or f"one FedAvg round: {k} clients, {local_steps} local step"
                     f"{'s' if local_steps > 1 else ''} each", scale=0.55)
    box(ax, mid - 2.6, 8.6, 5.2, 0.9, "server: global weights w", color=PALETTE["stored"])
    for i, n in enumerate(sizes):
        cx = 0.3 + i * lane + lane / 2
        arrow(ax, (mid, 8.6), (cx, 7.1), color="#444444")
        name = f"client {i}" + (f": {labels[i]}" if labels is not None else "")
        box(ax, cx - 1.9, 5.2, 3.8, 1.8, f"{name}\nn = {n} examples\n{local_steps} local step"
            f"{'s' if local_steps > 1 else ''} → w_{i}", color=PALETTE["compute"], fontsize=7)
        arrow(ax, (cx, 5.2), (mid, 3.4), text=f"× {n / total:.2f}", color=PALETTE["comm"])
    box(ax, mid - 3.4, 2.2, 6.8, 1.1, "new w = Σ_k (n_k / n) · w_k   (fedavg)", color=PALETTE["new"], fontsize=8)
    ax.text(mid, 1.2, "the data never leave the clients: only weights travel", ha="center", fontsize=8,
            color="#555555")
    return fig
