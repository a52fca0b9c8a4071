"""A parameter server with asynchronous SGD workers, simulated in one process (event by event).

The parameter server holds the weights w. Each of W workers reads w, computes a gradient on its next
mini-batch (which takes it some time), and pushes it; the server applies every gradient the moment it
arrives, without waiting for the others (Hogwild!, DistBelief's Downpour SGD):

    w_{t+1} = w_t - lr · ∇L(w_{t-τ_t}),

where τ_t, the *staleness*, is the number of updates the server made while that worker was computing.
With equal workers τ ≈ W - 1; with uneven ones it varies, and a slow worker's gradient can be very
old. A stale gradient points where the loss went down τ steps ago: the larger lr · τ, the more the
updates overshoot, so asynchronous SGD needs a smaller learning rate (or staleness-aware rates) as W
grows, while synchronous data parallelism (``data_parallel``) gives the exact large-batch gradient at
the cost of waiting for the slowest worker. The simulation replaces time by a counter, so it runs in
milliseconds and is the same on every machine for a seed.

``staleness(events)`` reads τ off the server's log: ("read", worker) when a worker reads w, ("push", worker)
when the server applies its gradient; a push's τ is the number of pushes between its worker's latest read and it.
"""
from __future__ import annotations

import heapq
from collections.abc import Hashable, Sequence

import torch
import torch.nn as nn

from llmlab.validate import integer, positive_float, size
from llmlab.parallel.data_parallel import make_data, make_model

N_EXAMPLES = 512  # the regression's data set, of which the workers take consecutive mini-batches


def staleness(events: Sequence[tuple[str, Hashable]]) -> list[int]:
    """The staleness τ of every update in a parameter server's log, in the order the server applied them.

    ``events``: ("read", worker) when ``worker`` reads the weights, ("push", worker) when the server applies
    the gradient it computed from them (any hashable worker ids). A push's τ is the number of pushes, by any
    worker, after that worker's latest read and before the push itself. A worker that reads twice computes
    from its latest read; one that pushes twice without reading again pushes a second gradient of the same
    read. A push by a worker that has not read yet raises ValueError.
    """
    if not isinstance(events, Sequence) or isinstance(events, (str, bytes)):
        raise TypeError(f"events must be a list of (kind, worker) pairs, got {type(events).__name__}")
    read_at: dict = {}  # worker -> how many pushes the server had applied when it last read
    pushes, taus = 0, []
    for i, event in enumerate(events):
        if not isinstance(event, (tuple, list)) or len(event) != 2:
            raise ValueError(f"events[{i}] must be a pair (kind, worker), got {event!r:.60}")
        kind, worker = event
        try:
            hash(worker)
        except TypeError:
            raise TypeError(f"events[{i}]'s worker must be hashable (an int or a str), got {type(worker).__name__}") from None
        if kind == "read":
            read_at[worker] = pushes
        elif kind == "push":
            if worker not in read_at:
                raise ValueError(f"events[{i}]: worker {worker!r} pushes before it has read the weights")
            taus.append(pushes - read_at[worker])
            pushes += 1
        else:
            raise ValueError(f"events[{i}]'s kind must be 'read' or 'push', got {kind!r:.40}")
    return taus


def parameter_server(workers: int, updates: int, lr: float = 0.05, batch_size: int = 16, jitter: float = 0.0,
                     seed: int = 0) -> dict[str, list]:
    """Simulate ``updates`` asynchronous SGD updates from ``workers`` workers on ``data_parallel``'s regression.

    A gradient takes a worker 1 time unit, times (1 + ``jitter`` · u) with u ~ Exp(1) drawn per gradient
    (``jitter`` = 0: equal workers). Returns ``loss`` (the full-data loss after each update) and
    ``staleness`` (τ of each update, from :func:`staleness`) and ``events``, the server's log of reads and
    pushes that :func:`staleness` reads it from. ``workers`` = 1 is plain SGD.
    """
    workers, updates = size("workers", workers), size("updates", updates)
    # the data has N_EXAMPLES rows: a larger batch would only repeat them
    lr, batch_size = positive_float("lr", lr), integer("batch_size", batch_size, minimum=1, maximum=N_EXAMPLES)
    jitter = positive_float("jitter", jitter, allow_zero=True)
    seed = integer("seed", seed)
    gen = torch.Generator().manual_seed(seed)
    x, y = make_data(N_EXAMPLES, seed=seed + 1)
    model = make_model(seed)
    params = nn.utils.parameters_to_vector(model.parameters()).detach()

    def loss_at(w: torch.Tensor, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        nn.utils.vector_to_parameters(w, model.parameters())
        return nn.functional.mse_loss(model(xb), yb)

    def grad_at(w: torch.Tensor, batch: int) -> torch.Tensor:
        idx = torch.arange(batch * batch_size, (batch + 1) * batch_size) % len(x)
        model.zero_grad()
        loss_at(w.clone(), x[idx], y[idx]).backward()
        return torch.cat([p.grad.flatten() for p in model.parameters()])

    def duration() -> float:
        return 1.0 + jitter * float(torch.empty(1).exponential_(generator=gen)) if jitter else 1.0

    # each pending gradient: (finish time, worker, the w it read, its mini-batch); log: the server's reads and pushes
    pending, log, batches = [], [], 0
    for k in range(workers):
        heapq.heappush(pending, (duration(), k, params.clone(), batches))
        log.append(("read", k))
        batches += 1
    losses = []
    while len(losses) < updates:
        t, k, w_read, batch = heapq.heappop(pending)
        params -= lr * grad_at(w_read, batch)
        log.append(("push", k))
        with torch.no_grad():
            losses.append(float(loss_at(params.clone(), x, y)))
        heapq.heappush(pending, (t + duration(), k, params.clone(), batches))  # reads the new w at once
        log.append(("read", k))
        batches += 1
    return {"loss": losses, "staleness": staleness(log), "events": log}
