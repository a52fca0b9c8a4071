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
"""
from __future__ import annotations

import heapq

import torch
import torch.nn as nn

from llmlab.validate import integer, positive_float, size
from llmlab.parallel.data_parallel import make_data, make_model

N_EXAMPLES = 512  # the regression's data set, of which the workers take consecutive mini-batches


def parameter_server(workers: int, updates: int, lr: float = 0.05, batch_size: int = 16, jitter: float = 0.0,
                     seed: int = 0) -> dict[str, list]:
    """Simulate ``updates`` asynchronous SGD updates from ``workers`` workers on ``data_parallel``'s regression.

    A gradient takes a worker 1 time unit, times (1 + ``jitter`` · u) with u ~ Exp(1) drawn per gradient
    (``jitter`` = 0: equal workers). Returns ``loss`` (the full-data loss after each update) and
    ``staleness`` (τ of each update). ``workers`` = 1 is plain SGD.
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

    # each event: (finish time, worker, version of w it read, the w it read, its mini-batch)
    events, batches = [], 0
    for k in range(workers):
        heapq.heappush(events, (duration(), k, 0, params.clone(), batches))
        batches += 1
    version, losses, staleness = 0, [], []
    while version < updates:
        t, k, read, w_read, batch = heapq.heappop(events)
        params -= lr * grad_at(w_read, batch)
        staleness.append(version - read)
        version += 1
        with torch.no_grad():
            losses.append(float(loss_at(params.clone(), x, y)))
        heapq.heappush(events, (t + duration(), k, version, params.clone(), batches))
        batches += 1
    return {"loss": losses, "staleness": staleness}
