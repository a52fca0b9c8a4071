"""Common mistakes in 06_training."""
import math

import torch
import torch.nn.functional as F

from llmlab import train
from llmlab.nn import lora
from tests.mutants import mistake

REFERENCE = {
    "check_get_batch": train.get_batch,
    "check_adamw_step": train.adamw_step,
    "check_lr_at": train.lr_at,
    "check_clip_grad_norm": train.clip_grad_norm,
    "check_train_step": train.train_step,
    "check_dropout": train.dropout,
    "check_should_stop": train.should_stop,
    "check_lora_linear": lora.lora_linear,
    "check_merge_lora": lora.merged_weight,
}


# get_batch
def _windows(data, starts, T, shift=1):
    x = torch.stack([data[i : i + T] for i in starts])
    y = torch.stack([data[i + shift : i + shift + T] for i in starts])
    return x, y


@mistake("check_get_batch", "*next* tokens")
def batch_y_is_x(data, batch_size, block_size, generator=None):
    starts = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
    return _windows(data, starts, block_size, shift=0)


@mistake("check_get_batch", "excludes high")
def batch_high_minus_one(data, batch_size, block_size, generator=None):
    starts = torch.randint(len(data) - block_size - 1, (batch_size,), generator=generator)
    return _windows(data, starts, block_size)


@mistake("check_get_batch", "last valid start")
def batch_runs_off_the_end(data, batch_size, block_size, generator=None):
    starts = torch.randint(len(data) - block_size + 1, (batch_size,), generator=generator)
    return _windows(data, starts, block_size)


@mistake("check_get_batch", "generator=generator")
def batch_global_rng(data, batch_size, block_size, generator=None):
    starts = torch.randint(len(data) - block_size, (batch_size,))
    return _windows(data, starts, block_size)


@mistake("check_get_batch", "one per row")
def batch_one_offset(data, batch_size, block_size, generator=None):
    start = torch.randint(len(data) - block_size, (1,), generator=generator)
    return _windows(data, start.repeat(batch_size), block_size)


# adamw_step
@mistake("check_adamw_step", "(1 - beta ** step)")
def adamw_no_bias_correction(param, grad, exp_avg, exp_avg_sq, step, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
    m = betas[0] * exp_avg + (1 - betas[0]) * grad
    v = betas[1] * exp_avg_sq + (1 - betas[1]) * grad**2
    return param * (1 - lr * weight_decay) - lr * m / (v.sqrt() + eps), m, v


@mistake("check_adamw_step", "Adam with L2")
def adamw_l2(param, grad, exp_avg, exp_avg_sq, step, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
    grad = grad + weight_decay * param
    m = betas[0] * exp_avg + (1 - betas[0]) * grad
    v = betas[1] * exp_avg_sq + (1 - betas[1]) * grad**2
    m_hat, v_hat = m / (1 - betas[0] ** step), v / (1 - betas[1] ** step)
    return param - lr * m_hat / (v_hat.sqrt() + eps), m, v


@mistake("check_adamw_step", "outside the square root")
def adamw_eps_in_sqrt(param, grad, exp_avg, exp_avg_sq, step, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
    m = betas[0] * exp_avg + (1 - betas[0]) * grad
    v = betas[1] * exp_avg_sq + (1 - betas[1]) * grad**2
    m_hat, v_hat = m / (1 - betas[0] ** step), v / (1 - betas[1] ** step)
    return param * (1 - lr * weight_decay) - lr * m_hat / (v_hat + eps).sqrt(), m, v


@mistake("check_adamw_step", "scaled by the learning rate")
def adamw_decay_without_lr(param, grad, exp_avg, exp_avg_sq, step, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
    m = betas[0] * exp_avg + (1 - betas[0]) * grad
    v = betas[1] * exp_avg_sq + (1 - betas[1]) * grad**2
    m_hat, v_hat = m / (1 - betas[0] ** step), v / (1 - betas[1] ** step)
    return param * (1 - weight_decay) - lr * m_hat / (v_hat.sqrt() + eps), m, v


# lr_at
@mistake("check_lr_at", "wasted step")
def lr_warmup_from_zero(step, max_lr, warmup_steps, total_steps, min_lr=0.0):
    if step < warmup_steps:
        return max_lr * step / warmup_steps
    return train.lr_at(step, max_lr, warmup_steps, total_steps, min_lr)


@mistake("check_lr_at", "starts after the warm-up")
def lr_cosine_over_whole_run(step, max_lr, warmup_steps, total_steps, min_lr=0.0):
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    progress = min(step / total_steps, 1.0)
    return min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (max_lr - min_lr)


@mistake("check_lr_at", "not to 0")
def lr_decays_to_zero(step, max_lr, warmup_steps, total_steps, min_lr=0.0):
    return train.lr_at(step, max_lr, warmup_steps, total_steps, 0.0)


@mistake("check_lr_at", "linear decay")
def lr_linear(step, max_lr, warmup_steps, total_steps, min_lr=0.0):
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    progress = min((step - warmup_steps) / (total_steps - warmup_steps), 1.0)
    return max_lr - progress * (max_lr - min_lr)


# clip_grad_norm
@mistake("check_clip_grad_norm", "one factor for all")
def clip_per_tensor(parameters, max_norm):
    grads = [p.grad for p in parameters if p.grad is not None]
    total = torch.sqrt(sum((g**2).sum() for g in grads))
    for g in grads:
        g.mul_((max_norm / (g.norm() + 1e-6)).clamp(max=1.0))
    return total


@mistake("check_clip_grad_norm", "never scale gradients up")
def clip_always(parameters, max_norm):
    grads = [p.grad for p in parameters if p.grad is not None]
    total = torch.sqrt(sum((g**2).sum() for g in grads))
    for g in grads:
        g.mul_(max_norm / (total + 1e-6))
    return total


@mistake("check_clip_grad_norm", "norm before clipping")
def clip_returns_after(parameters, max_norm):
    params = list(parameters)
    train.clip_grad_norm(params, max_norm)
    return torch.sqrt(sum((p.grad**2).sum() for p in params if p.grad is not None))


@mistake("check_clip_grad_norm", "walked only once")
def clip_walks_generator_twice(parameters, max_norm):
    total = torch.sqrt(sum((p.grad**2).sum() for p in parameters if p.grad is not None))
    for p in parameters:
        if p.grad is not None and total > max_norm:
            p.grad.mul_(max_norm / (total + 1e-6))
    return total


@mistake("check_clip_grad_norm", "not the sum of norms")
def clip_sum_of_norms(parameters, max_norm):
    grads = [p.grad for p in parameters if p.grad is not None]
    total = sum(g.norm() for g in grads)
    for g in grads:
        g.mul_((max_norm / (total + 1e-6)).clamp(max=1.0))
    return total


@mistake("check_clip_grad_norm", "p.grad = None")
def clip_none_grad(parameters, max_norm):
    return train.clip_grad_norm([p for p in parameters if p.grad.numel() > 0], max_norm)


# train_step
def _loss(model, x, y):
    return F.cross_entropy(model(x).flatten(0, 1), y.flatten())


@mistake("check_train_step", "zero_grad")
def step_no_zero_grad(model, optimizer, x, y, max_norm=1.0):
    loss = _loss(model, x, y)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimizer.step()
    return loss.item()


@mistake("check_train_step", "clipping after the step")
def step_clip_after(model, optimizer, x, y, max_norm=1.0):
    optimizer.zero_grad()
    loss = _loss(model, x, y)
    loss.backward()
    optimizer.step()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    return loss.item()


@mistake("check_train_step", "loss.item()")
def step_returns_tensor(model, optimizer, x, y, max_norm=1.0):
    optimizer.zero_grad()
    loss = _loss(model, x, y)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimizer.step()
    return loss


@mistake("check_train_step", "optimizer.step()")
def step_no_step(model, optimizer, x, y, max_norm=1.0):
    optimizer.zero_grad()
    loss = _loss(model, x, y)
    loss.backward()
    return loss.item()


# dropout
@mistake("check_dropout", "inverted dropout")
def dropout_no_rescale(x, p, training=True, generator=None):
    if not training:
        return x
    return x * (torch.rand(x.shape, generator=generator) >= p)


@mistake("check_dropout", "probability to *drop*")
def dropout_keep_is_p(x, p, training=True, generator=None):
    if not training or p == 0:
        return x
    return x * (torch.rand(x.shape, generator=generator) < p) / (1 - p)


@mistake("check_dropout", "identity")
def dropout_in_eval(x, p, training=True, generator=None):
    return x * (torch.rand(x.shape, generator=generator) >= p) / (1 - p)


@mistake("check_dropout", "not by p")
def dropout_divide_by_p(x, p, training=True, generator=None):
    if not training or p == 0:
        return x
    return x * (torch.rand(x.shape, generator=generator) >= p) / p


# should_stop
@mistake("check_should_stop", "not with the previous evaluation")
def stop_vs_previous(val_losses, patience, min_delta=0.0):
    if len(val_losses) <= patience:
        return False
    return all(b >= a - min_delta for a, b in zip(val_losses[-patience - 1 :], val_losses[-patience:]))


@mistake("check_should_stop", "min_delta")
def stop_ignores_min_delta(val_losses, patience, min_delta=0.0):
    return train.should_stop(val_losses, patience, 0.0)


@mistake("check_should_stop", "one of them is the best")
def stop_window_one_short(val_losses, patience, min_delta=0.0):
    return train.should_stop(val_losses, max(patience - 1, 1), min_delta)


@mistake("check_should_stop", "did not beat the best")
def stop_window_one_long(val_losses, patience, min_delta=0.0):
    return train.should_stop(val_losses, patience + 1, min_delta)


# lora_linear
@mistake("check_lora_linear", "by alpha / r")
def lora_no_scale(x, weight, bias, A, B, alpha):
    return F.linear(x, weight, bias) + x @ A.T @ B.T


@mistake("check_lora_linear", "not alpha")
def lora_alpha_scale(x, weight, bias, A, B, alpha):
    return F.linear(x, weight, bias) + alpha * (x @ A.T @ B.T)


@mistake("check_lora_linear", "keep the frozen layer")
def lora_adapter_only(x, weight, bias, A, B, alpha):
    return alpha / A.shape[0] * (x @ A.T @ B.T)


@mistake("check_lora_linear", "A is (r, in)")
def lora_wrong_order(x, weight, bias, A, B, alpha):
    return F.linear(x, weight, bias) + alpha / A.shape[0] * (x @ B @ A)


# merge_lora
@mistake("check_merge_lora", "by alpha / r")
def merge_no_scale(weight, A, B, alpha):
    return weight + B @ A


@mistake("check_merge_lora", "do not subtract")
def merge_subtract(weight, A, B, alpha):
    return weight - alpha / A.shape[0] * (B @ A)


@mistake("check_merge_lora", "shape")
def merge_wrong_order(weight, A, B, alpha):
    return weight + alpha / A.shape[0] * (A.T @ B.T)
