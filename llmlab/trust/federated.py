"""Federated averaging (FedAvg, McMahan et al., 2017) on ``torch.distributed`` ranks.

Each client keeps its data. A round: the server sends the global weights; each client k takes ``local_steps``
gradient steps on its own n_k examples (:func:`local_sgd`); the server replaces the global weights by the
clients' average weighted by n_k (:func:`fedavg`). With one full-batch local step this is exactly one step of
gradient descent on the pooled data (the weighted average of the clients' mean gradients is the pooled mean
gradient); with several local steps on different data (non-IID clients) the clients drift towards their own
optima and the average is no longer the pooled model's step.

The model is a linear classifier, logits = x Wᵀ + b, its state ``{"weight": (K, D), "bias": (K,)}`` as
``nn.Linear(D, K).state_dict()`` holds it.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F

from llmlab import validate
from llmlab.parallel.launch import worker_place


def _state(name: str, state) -> dict[str, torch.Tensor]:
    if not isinstance(state, dict):
        raise TypeError(f"{name} must be a dict of tensors (a state dict), got {type(state).__name__}")
    if not state:
        raise ValueError(f"{name} is empty")
    for k, v in state.items():
        validate.tensor(f"{name}[{k!r}]", v, floating=True)
    return state


def fedavg(client_states: list[dict[str, torch.Tensor]], client_sizes: list[int]) -> dict[str, torch.Tensor]:
    """The clients' state dicts averaged key by key, client k weighted by client_sizes[k] / Σ sizes.
    Returns new tensors in the states' dtype."""
    if not isinstance(client_states, (list, tuple)):
        raise TypeError(f"client_states must be a list of state dicts, got {type(client_states).__name__}")
    if not client_states:
        raise ValueError("client_states is empty: need at least one client")
    states = [_state(f"client_states[{i}]", s) for i, s in enumerate(client_states)]
    if not isinstance(client_sizes, (list, tuple)):
        raise TypeError(f"client_sizes must be a list of ints, got {type(client_sizes).__name__}")
    sizes = [validate.positive_int(f"client_sizes[{i}]", n) for i, n in enumerate(client_sizes)]
    if len(sizes) != len(states):
        raise ValueError(f"client_sizes must have one size per client ({len(states)}), got {len(sizes)}")
    for i, s in enumerate(states[1:], 1):
        if set(s) != set(states[0]) or any(s[k].shape != states[0][k].shape for k in s):
            raise ValueError(f"client_states[{i}] has other keys or shapes than client_states[0]")
    total = sum(sizes)
    return {k: sum(s[k].double() * (n / total) for s, n in zip(states, sizes)).to(states[0][k].dtype)
            for k in states[0]}


def _labels(name: str, y, n: int, classes: int | None = None) -> torch.Tensor:
    validate.tensor(name, y, ndim=1)
    if y.is_floating_point() or y.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer class labels, got dtype {y.dtype}")
    if len(y) != n:
        raise ValueError(f"{name} must hold one label per example ({n}), got {len(y)}")
    if len(y) and (int(y.min()) < 0 or (classes is not None and int(y.max()) >= classes)):
        raise ValueError(f"{name}'s labels must lie in [0, {classes if classes is not None else 'K'}), got "
                         f"{int(y.min())}..{int(y.max())}")
    return y


def _client_data(state, x, y) -> dict[str, torch.Tensor]:
    """``state`` checked as a linear classifier {"weight": (K, D), "bias": (K,)}, with x (n >= 1, D) and y (n,)."""
    state = _state("state", state)
    if set(state) != {"weight", "bias"}:
        raise ValueError(f"state must hold 'weight' and 'bias', got keys {sorted(state)}")
    validate.tensor("x", x, ndim=2, floating=True, finite=True)
    if not len(x) or x.shape[1] != state["weight"].shape[1]:
        raise ValueError(f"x must be (n >= 1, {state['weight'].shape[1]}), got {tuple(x.shape)}")
    _labels("y", y, len(x), state["weight"].shape[0])
    return state


def local_sgd(state: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor, lr: float,
              steps: int) -> dict[str, torch.Tensor]:
    """A client's update: ``steps`` steps of gradient descent, each on the mean cross-entropy of
    logits = x Wᵀ + b over all of the client's examples x (n, D), labels y (n,), from ``state``
    {"weight": (K, D), "bias": (K,)}. Returns the new state (new tensors, the state's dtype)."""
    state = _client_data(state, x, y)
    lr = validate.positive_float("lr", lr, allow_zero=True)
    steps = validate.integer("steps", steps, minimum=0, maximum=100_000)
    W, b = state["weight"].detach().clone(), state["bias"].detach().clone()
    xs = x.to(W.dtype)
    for _ in range(steps):
        # the gradient in closed form: (softmax - one-hot) / n, as autograd would give it
        err = (torch.softmax(xs @ W.T + b, -1) - F.one_hot(y, W.shape[0]).to(W.dtype)) / len(x)
        W, b = W - lr * err.T @ xs, b - lr * err.sum(0)
    return {"weight": W, "bias": b}


def accuracy(state: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> float:
    """The share of examples whose argmax logit is their label."""
    state = _client_data(state, x, y)
    return ((x.to(state["weight"].dtype) @ state["weight"].T + state["bias"]).argmax(-1) == y).double().mean().item()


def worker_fedavg(rank: int, world_size: int, x: torch.Tensor, y: torch.Tensor, runs: list[dict], lr: float,
                  fedavg=fedavg, local_sgd=local_sgd) -> list[list[dict[str, torch.Tensor]]]:
    """On each rank of ``launch.run``: rank r is client r. For each run {"shards": [indices of client 0, ...],
    "local_steps": E, "rounds": R}: R rounds of FedAvg from zero weights, each client taking E ``local_sgd`` steps
    on x[shards[r]], the states exchanged with ``all_gather`` and averaged by every rank with ``fedavg``.
    Returns, per run, the global state after each round (the same on every rank)."""
    rank, world_size = worker_place(rank, world_size)
    validate.tensor("x", x, ndim=2, floating=True, finite=True)
    if not len(x):
        raise ValueError("x must hold at least one example")
    _labels("y", y, len(x))
    lr = validate.positive_float("lr", lr, allow_zero=True)
    if not isinstance(runs, (list, tuple)):
        raise TypeError(f"runs must be a list of dicts, got {type(runs).__name__}")
    if not runs:
        raise ValueError("runs is empty: give at least one run")
    for i, run in enumerate(runs):
        if not isinstance(run, dict) or set(run) != {"shards", "local_steps", "rounds"}:
            raise ValueError(f"runs[{i}] must be a dict with the keys shards, local_steps and rounds, got {run!r:.80}")
        validate.integer(f"runs[{i}]['local_steps']", run["local_steps"], 0, 100_000)
        validate.integer(f"runs[{i}]['rounds']", run["rounds"], 1, 100_000)
        shards = run["shards"]
        if not isinstance(shards, (list, tuple)) or len(shards) != world_size:
            raise ValueError(f"runs[{i}]['shards'] must hold one list of indices per rank ({world_size})")
        for r, shard in enumerate(shards):
            if not isinstance(shard, (list, tuple)) or not shard or not all(
                    isinstance(j, int) and not isinstance(j, bool) and 0 <= j < len(x) for j in shard):
                raise ValueError(f"runs[{i}]['shards'][{r}] must be a non-empty list of indices into x (0..{len(x) - 1})")
    for name, fn in (("fedavg", fedavg), ("local_sgd", local_sgd)):
        if not callable(fn):
            raise TypeError(f"{name} must be a function, got {type(fn).__name__}")
    K, out = int(y.max()) + 1, []
    for run in runs:
        idx = torch.as_tensor(run["shards"][rank])
        xs, ys = x[idx], y[idx]
        state = {"weight": torch.zeros(K, x.shape[1], dtype=x.dtype), "bias": torch.zeros(K, dtype=x.dtype)}
        sizes = [len(s) for s in run["shards"]]
        history = []
        for _ in range(run["rounds"]):
            mine = local_sgd(state, xs, ys, lr, run["local_steps"])
            gathered = {k: [torch.empty_like(v) for _ in range(world_size)] for k, v in mine.items()}
            for k, v in mine.items():
                dist.all_gather(gathered[k], v.contiguous())
            state = fedavg([{k: gathered[k][r] for k in mine} for r in range(world_size)], sizes)
            history.append({k: v.clone() for k, v in state.items()})
        out.append(history)
    return out
