"""Training a language model from scratch: nanoGPT's train.py, in small.

One optimisation step on a batch of B windows of T tokens:

    x, y   = data[i : i+T], data[i+1 : i+T+1]             for B random offsets i   (B, T) each
    loss   = cross_entropy(model(x), y)                    mean over the B·T next-token predictions
    g      = ∇loss;  g ← g · min(1, max_norm / ||g||)       clip the global gradient norm
    θ      ← AdamW(θ, g, lr(step))                         warm-up, then cosine decay

AdamW keeps running averages of the gradient and of its square, and applies weight decay to the
weights directly ("decoupled"), not through the gradient as L2 regularisation would:

    m ← β1 m + (1-β1) g,   v ← β2 v + (1-β2) g²,   m̂ = m / (1-β1^t),   v̂ = v / (1-β2^t)
    θ ← θ - lr·λ·θ - lr · m̂ / (sqrt(v̂) + ε)

Everything takes a ``torch.Generator`` (or a seed) so that a run can be repeated exactly.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from llmlab import model_device, validate

# ------------------------------------------------------------------------------------------ batches


def _check_stream(name: str, data, block_size: int) -> None:
    """A token stream (N,) of integer ids with room for one window of ``block_size`` and its next token."""
    _check_ids(name, data, ndim=1)
    if len(data) < block_size + 1:
        raise ValueError(f"{name} has {len(data)} tokens: a window of {block_size} needs at least {block_size + 1}")


def _check_ids(name: str, ids, ndim: int) -> None:
    validate.tensor(name, ids, ndim=ndim)
    if ids.dtype.is_floating_point or ids.dtype.is_complex or ids.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer token ids, got dtype {ids.dtype}")
    if ids.numel() == 0:
        raise ValueError(f"{name} is empty, shape {tuple(ids.shape)}")
    if bool((ids < 0).any()):
        raise ValueError(f"{name} must hold token ids >= 0, got a minimum of {int(ids.min())}")


def _check_model(model) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module mapping token ids to logits, got {type(model).__name__}")
    return model


def get_batch(
    data: torch.Tensor, batch_size: int, block_size: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """B random windows of a token stream and their next tokens: data (N,) -> x, y (B, T), y = x shifted by one.

    Offsets are uniform over every window that has a next token: 0 .. N - T - 1.
    """
    for name, value in (("batch_size", batch_size), ("block_size", block_size)):
        validate.size(name, value)
    _check_stream("data", data, block_size)
    starts = torch.randint(len(data) - block_size, (batch_size,), generator=generator).to(data.device)  # (B,)
    offsets = starts[:, None] + torch.arange(block_size + 1, device=data.device)  # (B, T + 1)
    windows = data[offsets]
    return windows[:, :-1], windows[:, 1:]


# ---------------------------------------------------------------------------------------- optimiser


def adamw_step(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    step: int,
    lr: float,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.01,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One AdamW update, as ``torch.optim.AdamW`` does it; returns new (param, exp_avg, exp_avg_sq).

    ``step`` counts updates from 1 (the bias corrections 1 - β^t would divide by zero at 0).
    """
    step = validate.positive_int("step", step)
    lr = validate.real("lr", lr, minimum=0.0)
    eps = validate.positive_float("eps", eps)
    weight_decay = validate.real("weight_decay", weight_decay, minimum=0.0)
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    beta1, beta2 = (validate.probability(f"betas[{i}]", b, allow_one=False) for i, b in enumerate(betas))
    for name, t in (("param", param), ("grad", grad), ("exp_avg", exp_avg), ("exp_avg_sq", exp_avg_sq)):
        validate.tensor(name, t, floating=True)
        if t.shape != param.shape:
            raise ValueError(f"{name} must have param's shape {tuple(param.shape)}, got {tuple(t.shape)}")
    exp_avg = beta1 * exp_avg + (1 - beta1) * grad
    exp_avg_sq = beta2 * exp_avg_sq + (1 - beta2) * grad * grad
    m_hat = exp_avg / (1 - beta1**step)
    v_hat = exp_avg_sq / (1 - beta2**step)
    param = param * (1 - lr * weight_decay) - lr * m_hat / (v_hat.sqrt() + eps)
    return param, exp_avg, exp_avg_sq


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """AdamW groups as GPT-2 and Llama use them: matrices (embeddings, projections) decay; gains and
    biases (1-D) do not, since shrinking a norm's gain towards 0 is not regularisation."""
    weight_decay = validate.real("weight_decay", weight_decay, minimum=0.0)
    params = [p for p in _check_model(model).parameters() if p.requires_grad]
    return [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]


def lr_at(step: int, max_lr: float, warmup_steps: int, total_steps: int, min_lr: float = 0.0) -> float:
    """Linear warm-up to ``max_lr`` over ``warmup_steps``, then cosine decay to ``min_lr`` at ``total_steps``.

    step < warmup:            max_lr · (step + 1) / warmup        (never 0: the first step learns)
    warmup <= step < total:   min_lr + ½ (1 + cos(π p)) (max_lr - min_lr),  p = (step - warmup) / (total - warmup)
    step >= total:            min_lr
    """
    step = validate.integer("step", step, minimum=0)
    warmup_steps = validate.integer("warmup_steps", warmup_steps, minimum=0)
    total_steps = validate.integer("total_steps", total_steps, minimum=0)
    if total_steps < warmup_steps:
        raise ValueError(f"total_steps must be >= warmup_steps, got total_steps={total_steps} < "
                         f"warmup_steps={warmup_steps}")
    max_lr = validate.real("max_lr", max_lr, minimum=0.0)
    min_lr = validate.real("min_lr", min_lr, minimum=0.0)
    if min_lr > max_lr:
        raise ValueError(f"min_lr must be <= max_lr, got min_lr={min_lr:g} > max_lr={max_lr:g}")
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    if step >= total_steps:
        return min_lr
    progress = (step - warmup_steps) / (total_steps - warmup_steps)
    return min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (max_lr - min_lr)


def clip_grad_norm(parameters: Iterable[torch.Tensor], max_norm: float) -> torch.Tensor:
    """Scale all gradients together so that their global L2 norm is at most ``max_norm``; returns the
    norm *before* clipping (what to log). Same as ``torch.nn.utils.clip_grad_norm_``.

    ||g|| = sqrt(sum over every parameter of sum(g²)); if ||g|| > max_norm, g ← g · max_norm / (||g|| + 1e-6).
    One global factor keeps the update's direction; clipping each tensor on its own would bend it.
    """
    max_norm = validate.positive_float("max_norm", max_norm)
    if isinstance(parameters, torch.Tensor):
        parameters = [parameters]
    if isinstance(parameters, (str, bytes)) or not isinstance(parameters, Iterable):
        raise TypeError(f"parameters must be an iterable of tensors (model.parameters()), got {type(parameters).__name__}")
    parameters = list(parameters)
    if not all(isinstance(p, torch.Tensor) for p in parameters):
        raise TypeError("parameters must hold tensors only (model.parameters())")
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.tensor(0.0)
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    factor = (max_norm / (total + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(factor)
    return total


# ------------------------------------------------------------------------------------- over-fitting


def dropout(x: torch.Tensor, p: float, training: bool = True, generator: torch.Generator | None = None) -> torch.Tensor:
    """Inverted dropout: zero each element with probability p and scale the survivors by 1/(1-p), so
    the expected value is unchanged and evaluation (``training=False``) is the identity."""
    validate.flag("training", training)
    p = validate.probability("p", p, allow_one=False)
    validate.tensor("x", x)
    if not training or p == 0:
        return x
    keep = torch.rand(x.shape, generator=generator, device=x.device) >= p
    return x * keep / (1 - p)


def should_stop(val_losses: Sequence[float], patience: int, min_delta: float = 0.0) -> bool:
    """Early stopping: True when none of the last ``patience`` evaluations beat the best loss before
    them by more than ``min_delta``, i.e. none is strictly below ``best - min_delta`` (a loss equal to the
    best is no improvement, as in Keras and PyTorch Lightning)."""
    if isinstance(val_losses, (str, bytes)) or not isinstance(val_losses, Sequence):
        raise TypeError(f"val_losses must be a list of losses, got {type(val_losses).__name__}")
    val_losses = [validate.real(f"val_losses[{i}]", v) for i, v in enumerate(val_losses)]
    patience = validate.positive_int("patience", patience)
    min_delta = validate.real("min_delta", min_delta, minimum=0.0)
    if len(val_losses) <= patience:
        return False
    best_before = min(val_losses[:-patience])
    return min(val_losses[-patience:]) >= best_before - min_delta


# ------------------------------------------------------------------------------------------- steps


def lm_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy: model(x) (B, T, V) against y (B, T); computed in float32."""
    if not callable(model):
        raise TypeError(f"model must map token ids (B, T) to logits (B, T, V), got {type(model).__name__}")
    _check_ids("x", x, ndim=2)
    _check_ids("y", y, ndim=2)
    if y.shape != x.shape:
        raise ValueError(f"y must have x's shape {tuple(x.shape)} (the next token of each), got {tuple(y.shape)}")
    logits = model(x)
    return F.cross_entropy(logits.flatten(0, 1).float(), y.flatten())


# A training loss: loss(model, x, y) -> a scalar tensor to minimise. ``lm_loss`` is the default; notebook 11
# passes a distillation loss whose y also carries the teacher's predictions.
LossFn = Callable[[nn.Module, torch.Tensor, object], torch.Tensor]
# A batch sampler: sample(generator) -> (x, y), y anything the loss understands (a tensor, or a tuple of them).
SampleFn = Callable[[torch.Generator], tuple[torch.Tensor, object]]


def _to(device: torch.device, y):
    """A batch's targets on ``device``: a tensor, or each tensor of a tuple or list."""
    if isinstance(y, torch.Tensor):
        return y.to(device)
    if isinstance(y, (tuple, list)):
        return type(y)(_to(device, t) for t in y)
    return y


def train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    max_norm: float = 1.0,
    autocast_dtype: torch.dtype | None = None,
    scaler: torch.amp.GradScaler | None = None,
    loss_fn: LossFn = lm_loss,
) -> float:
    """zero_grad → forward (under autocast when ``autocast_dtype``) → backward → clip → step.

    ``loss_fn(model, x, y)``: the loss to minimise (``lm_loss``, the next-token cross-entropy, unless told).

    ``scaler`` (fp16 on CUDA): the loss is multiplied by a large factor so that small fp16 gradients
    do not underflow to 0; the gradients are unscaled before clipping, and the step is skipped (and
    the factor lowered) when they overflowed to inf. bf16 has fp32's range and needs none.
    Returns the loss as a Python float (keeping the tensor would keep the whole graph alive).
    """
    _check_model(model)
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer (e.g. AdamW), got {type(optimizer).__name__}")
    validate.tensor("x", x)
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be a function (model, x, y) -> loss, got {type(loss_fn).__name__}")
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(x.device.type, dtype=autocast_dtype or torch.bfloat16, enabled=autocast_dtype is not None):
        loss = loss_fn(model, x, y)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        clip_grad_norm(model.parameters(), max_norm)
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        clip_grad_norm(model.parameters(), max_norm)
        optimizer.step()
    return loss.item()


@torch.no_grad()
def estimate_loss(
    model: nn.Module, data: torch.Tensor, batch_size: int, block_size: int, n_batches: int = 8, seed: int = 1234,
    autocast_dtype: torch.dtype | None = None,
) -> float:
    """Mean loss over ``n_batches`` fixed random batches (the same ones every call: comparable over time),
    in eval mode (no dropout)."""
    _check_model(model)
    n_batches = validate.size("n_batches", n_batches)
    seed = validate.integer("seed", seed)
    was_training = model.training
    model.eval()
    g = torch.Generator().manual_seed(seed)
    device = model_device(model)
    losses = []
    for _ in range(n_batches):
        x, y = get_batch(data, batch_size, block_size, g)
        with torch.autocast(device.type, dtype=autocast_dtype or torch.bfloat16, enabled=autocast_dtype is not None):
            losses.append(lm_loss(model, x.to(device), y.to(device)).item())
    model.train(was_training)
    return sum(losses) / len(losses)


# -------------------------------------------------------------------------------------------- loop


@dataclass
class TrainConfig:
    steps: int = 200
    batch_size: int = 16
    block_size: int = 64
    max_lr: float = 3e-3
    min_lr: float = 3e-4
    warmup_steps: int = 20
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    max_norm: float = 1.0
    eval_every: int = 25
    eval_batches: int = 8
    patience: int | None = None  # early stopping after this many evaluations without improvement
    min_delta: float = 0.0
    autocast_dtype: torch.dtype | None = None  # torch.bfloat16 (CPU or CUDA) or torch.float16 (CUDA)
    seed: int = 0

    def __post_init__(self):
        for name in ("steps", "batch_size", "block_size", "eval_every", "eval_batches"):
            validate.size(name, getattr(self, name))
        validate.integer("warmup_steps", self.warmup_steps, 0, self.steps)
        validate.positive_float("max_lr", self.max_lr)
        validate.real("min_lr", self.min_lr, minimum=0.0, maximum=self.max_lr)
        validate.real("weight_decay", self.weight_decay, minimum=0.0)
        if not isinstance(self.betas, (tuple, list)) or len(self.betas) != 2:
            raise TypeError(f"betas must be a pair (beta1, beta2), got {self.betas!r}")
        for i, beta in enumerate(self.betas):
            validate.probability(f"betas[{i}]", beta, allow_one=False)
        validate.positive_float("max_norm", self.max_norm)
        if self.patience is not None:
            validate.positive_int("patience", self.patience)
        validate.real("min_delta", self.min_delta, minimum=0.0)
        validate.choice("autocast_dtype", self.autocast_dtype, [None, torch.bfloat16, torch.float16])
        validate.integer("seed", self.seed)


@dataclass
class History:
    """What a run logged: the train loss every step, the validation loss every ``eval_every`` steps."""

    train_loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    val_steps: list[int] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_step: int | None = None
    stopped_early: bool = False
    seconds: float = 0.0

    @property
    def best_val_loss(self) -> float:
        return min(self.val_loss) if self.val_loss else math.nan


def train(
    model: nn.Module, train_data: torch.Tensor, val_data: torch.Tensor, cfg: TrainConfig, progress: bool = True,
    loss_fn: LossFn = lm_loss, sample: SampleFn | None = None,
) -> History:
    """Train ``model`` in place with AdamW, a warm-up + cosine schedule and clipping; evaluate every
    ``cfg.eval_every`` steps; with ``cfg.patience``, stop early and restore the best weights.

    The two hooks change what is learned, not how: ``loss_fn(model, x, y)`` is minimised instead of the
    next-token cross-entropy (``History.train_loss`` logs it), and ``sample(generator)`` draws each training
    batch (x, y) instead of ``get_batch(train_data, cfg.batch_size, cfg.block_size, generator)``. The
    validation loss stays the next-token cross-entropy on ``val_data``, comparable between runs."""
    validate.flag("progress", progress)
    _check_model(model)
    if not isinstance(cfg, TrainConfig):
        raise TypeError(f"cfg must be a TrainConfig, got {type(cfg).__name__}")
    if sample is None:
        _check_stream("train_data", train_data, cfg.block_size)
    _check_stream("val_data", val_data, cfg.block_size)
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be a function (model, x, y) -> loss, got {type(loss_fn).__name__}")
    if sample is not None and not callable(sample):
        raise TypeError(f"sample must be a function (generator) -> (x, y), got {type(sample).__name__}")
    device = model_device(model)
    torch.manual_seed(cfg.seed)  # dropout masks
    g = torch.Generator().manual_seed(cfg.seed)  # batches
    optimizer = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.max_lr, betas=cfg.betas)
    scaler = torch.amp.GradScaler("cuda") if cfg.autocast_dtype == torch.float16 and device.type == "cuda" else None
    hist, best_state = History(), None
    start = time.perf_counter()
    model.train()
    bar = tqdm(range(cfg.steps), desc="training", disable=not progress, leave=False)
    for step in bar:
        lr = lr_at(step, cfg.max_lr, cfg.warmup_steps, cfg.steps, cfg.min_lr)
        for group in optimizer.param_groups:
            group["lr"] = lr
        x, y = sample(g) if sample is not None else get_batch(train_data, cfg.batch_size, cfg.block_size, g)
        hist.train_loss.append(train_step(model, optimizer, x.to(device), _to(device, y), cfg.max_norm,
                                          cfg.autocast_dtype, scaler, loss_fn))
        hist.lr.append(lr)
        if (step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps:
            val = estimate_loss(model, val_data, cfg.batch_size, cfg.block_size, cfg.eval_batches,
                                autocast_dtype=cfg.autocast_dtype)
            hist.val_steps.append(step + 1)
            hist.val_loss.append(val)
            bar.set_postfix(train=f"{hist.train_loss[-1]:.3f}", val=f"{val:.3f}")
            if val == hist.best_val_loss:
                hist.best_step = step + 1
                if cfg.patience:
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            if cfg.patience and should_stop(hist.val_loss, cfg.patience, cfg.min_delta):
                hist.stopped_early = True
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    hist.seconds = time.perf_counter() - start
    return hist
