"""Common mistakes in 06_training."""
import math

import torch
import torch.nn.functional as F

from llmlab import mixed_precision, train
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
    "check_rounding_error": mixed_precision.rounding_error,
    "check_scaled_step": mixed_precision.scaled_step,
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


# ---------------------------------------------------------------- right on the example, wrong in general

@mistake("check_get_batch", "draw batch_size offsets, the argument", kind="overfit")
def batch_fixed_size(data, batch_size, block_size, generator=None):
    starts = torch.randint(len(data) - block_size, (64,), generator=generator)  # the example's batch
    return _windows(data, starts, block_size)


@mistake("check_adamw_step", "add eps to the bias-corrected sqrt(v_hat)", kind="overfit")
def adamw_no_eps(param, grad, exp_avg, exp_avg_sq, step, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
    m = betas[0] * exp_avg + (1 - betas[0]) * grad
    v = betas[1] * exp_avg_sq + (1 - betas[1]) * grad**2
    m_hat, v_hat = m / (1 - betas[0] ** step), v / (1 - betas[1] ** step)
    return param * (1 - lr * weight_decay) - lr * m_hat / v_hat.sqrt(), m, v


@mistake("check_adamw_step", "add eps to the bias-corrected sqrt(v_hat)")
def adamw_epsilon_hat(param, grad, exp_avg, exp_avg_sq, step, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
    # the Adam paper's "more efficient" order: the bias corrections folded into the step size, eps on sqrt(v)
    m = betas[0] * exp_avg + (1 - betas[0]) * grad
    v = betas[1] * exp_avg_sq + (1 - betas[1]) * grad**2
    step_size = lr * math.sqrt(1 - betas[1] ** step) / (1 - betas[0] ** step)
    return param * (1 - lr * weight_decay) - step_size * m / (v.sqrt() + eps), m, v


@mistake("check_lr_at", "not a fixed fraction of max_lr", kind="overfit")
def lr_floor_tenth(step, max_lr, warmup_steps, total_steps, min_lr=0.0):
    return train.lr_at(step, max_lr, warmup_steps, total_steps, 0.1 * max_lr)  # "the usual floor"


@mistake("check_clip_grad_norm", "clip to max_norm, the argument", kind="overfit")
def clip_at_one(parameters, max_norm):
    grads = [p.grad for p in parameters if p.grad is not None]
    total = torch.sqrt(sum((g**2).sum() for g in grads))
    for g in grads:
        g.mul_(min(1.0, 1.0 / (total.item() + 1e-6)))  # GPT-3 and Llama clip at 1.0
    return total


@mistake("check_train_step", "on a hidden case (another vocabulary", kind="overfit")
def step_fixed_vocab(model, optimizer, x, y, max_norm=1.0):
    optimizer.zero_grad()
    loss = F.cross_entropy(model(x).reshape(-1, 40), y.reshape(-1))
    loss.backward()
    train.clip_grad_norm(model.parameters(), max_norm)
    optimizer.step()
    return loss.item()


@mistake("check_dropout", "keep an entry where torch.rand(x.shape, generator=generator) >= p", kind="overfit")
def dropout_2d_mask(x, p, training=True, generator=None):
    if not training or p == 0:
        return x
    keep = torch.rand(x.size(0), x.size(1), generator=generator) >= p
    return x * keep / (1 - p)


@mistake("check_dropout", "keep an entry where torch.rand(x.shape, generator=generator) >= p", kind="overfit")
def dropout_keep_below(x, p, training=True, generator=None):
    if not training or p == 0:
        return x
    return x * (torch.rand(x.shape, generator=generator) < 1 - p) / (1 - p)


@mistake("check_should_stop", "not a fraction", kind="overfit")
def stop_relative_delta(val_losses, patience, min_delta=0.0):
    if len(val_losses) <= patience:
        return False
    best = min(val_losses[:-patience])
    return min(val_losses[-patience:]) > best * (1 - min_delta)  # threshold_mode="rel", as ReduceLROnPlateau


@mistake("check_should_stop", "a loss equal to the best", kind="overfit")
def stop_ties_improve(val_losses, patience, min_delta=0.0):
    if len(val_losses) <= patience:
        return False
    return min(val_losses[-patience:]) > min(val_losses[:-patience]) - min_delta


@mistake("check_lora_linear", "scale by alpha / A.shape[0]", kind="overfit")
def lora_rank_three(x, weight, bias, A, B, alpha):
    return F.linear(x, weight, bias) + alpha / 3 * (x @ A.T @ B.T)  # the example's rank


@mistake("check_merge_lora", "scale by alpha / A.shape[0]", kind="overfit")
def merge_rank_three(weight, A, B, alpha):
    return weight + alpha / 3 * (B @ A)


# ---------------------------------------------------------------- changing the caller's tensors

@mistake("check_get_batch", "leave the inputs as they are", kind="inplace")
def batch_shifts_stream_in_place(data, batch_size, block_size, generator=None):
    starts = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
    x = torch.stack([data[i : i + block_size] for i in starts])
    data[:-1] = data[1:].clone()  # shift the stream by one token to read the targets
    return x, torch.stack([data[i : i + block_size] for i in starts])


@mistake("check_adamw_step", "leave the inputs as they are", kind="inplace")
def adamw_in_place(param, grad, exp_avg, exp_avg_sq, step, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
    exp_avg.mul_(betas[0]).add_(grad, alpha=1 - betas[0])
    exp_avg_sq.mul_(betas[1]).addcmul_(grad, grad, value=1 - betas[1])
    denom = (exp_avg_sq / (1 - betas[1] ** step)).sqrt() + eps
    param.mul_(1 - lr * weight_decay).addcdiv_(exp_avg / (1 - betas[0] ** step), denom, value=-lr)
    return param, exp_avg, exp_avg_sq


@mistake("check_clip_grad_norm", "do not give it a gradient", kind="inplace")
def clip_fills_missing_grads(parameters, max_norm):
    params = list(parameters)
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)  # so that every parameter has a gradient to scale
    return train.clip_grad_norm(params, max_norm)


@mistake("check_train_step", "leave the inputs as they are", kind="inplace")
def step_squeezes_targets(model, optimizer, x, y, max_norm=1.0):
    optimizer.zero_grad()
    y.squeeze_(0)  # a batch of 1 becomes (T,), "to match the flattened logits"
    loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
    loss.backward()
    train.clip_grad_norm(model.parameters(), max_norm)
    optimizer.step()
    return loss.item()


@mistake("check_dropout", "leave the inputs as they are", kind="inplace")
def dropout_in_place(x, p, training=True, generator=None):
    if not training or p == 0:
        return x
    x *= torch.rand(x.shape, generator=generator) >= p
    x /= 1 - p
    return x


@mistake("check_lora_linear", "leave the inputs as they are", kind="inplace")
def lora_merges_into_weight(x, weight, bias, A, B, alpha):
    weight += alpha / A.shape[0] * (B @ A)  # merge, then one matmul
    return F.linear(x, weight, bias)


@mistake("check_merge_lora", "leave the inputs as they are", kind="inplace")
def merge_in_place(weight, A, B, alpha):
    return weight.add_(alpha / A.shape[0] * (B @ A))


# ---------------------------------------------------------------- the input's dtype lost

@mistake("check_get_batch", "keep data's dtype", kind="dtype")
def batch_into_zeros(data, batch_size, block_size, generator=None):
    starts = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
    x, y = torch.zeros(batch_size, block_size, dtype=torch.long), torch.zeros(batch_size, block_size, dtype=torch.long)
    for b, i in enumerate(starts):
        x[b], y[b] = data[i : i + block_size], data[i + 1 : i + block_size + 1]
    return x, y


@mistake("check_adamw_step", "dtype", kind="dtype")
def adamw_in_float64(param, grad, exp_avg, exp_avg_sq, step, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
    return train.adamw_step(param.double(), grad.double(), exp_avg.double(), exp_avg_sq.double(), step, lr, betas, eps,
                            weight_decay)


@mistake("check_clip_grad_norm", "keep each gradient's dtype", kind="dtype")
def clip_in_float32(parameters, max_norm):
    params = [p for p in parameters if p.grad is not None]
    grads = [p.grad.float() for p in params]
    total = torch.sqrt(sum((g**2).sum() for g in grads))
    for p, g in zip(params, grads):
        p.grad = g * min(1.0, max_norm / (total.item() + 1e-6))
    return total


@mistake("check_train_step", "leave the model's dtype as it is", kind="dtype")
def step_casts_model(model, optimizer, x, y, max_norm=1.0):
    model.float()  # "to be safe"
    return train.train_step(model, optimizer, x, y, max_norm)


@mistake("check_dropout", "return x's dtype", kind="dtype")
def dropout_float_mask(x, p, training=True, generator=None):
    if not training or p == 0:
        return x
    return x * (torch.rand(x.shape, generator=generator) >= p).float() / (1 - p)


@mistake("check_lora_linear", "dtype", kind="dtype")
def lora_adapter_in_float64(x, weight, bias, A, B, alpha):
    return F.linear(x, weight, bias) + alpha / A.shape[0] * (x.double() @ A.double().T @ B.double().T)


@mistake("check_merge_lora", "dtype", kind="dtype")
def merge_in_float64(weight, A, B, alpha):
    return weight + alpha / A.shape[0] * (B.double() @ A.double())


# ---------------------------------------------------------------- escapes found by a red team

@mistake("check_dropout", ">=, not >: a draw equal to p is kept", kind="overfit")
def dropout_strictly_above(x, p, training=True, generator=None):
    if not training or p == 0:
        return x
    return x * (torch.rand(x.shape, generator=generator) > p) / (1 - p)


@mistake("check_clip_grad_norm", "not total.item()")
def clip_returns_float(parameters, max_norm):
    return train.clip_grad_norm(parameters, max_norm).item()


@mistake("check_lora_linear", "not A.shape[1]")
def lora_rank_from_columns(x, weight, bias, A, B, alpha):
    r = A.shape[1]
    return F.linear(x, weight, bias) + (alpha / r) * (x @ A.T) @ B.T


@mistake("check_lora_linear", "alpha // r floors it")
def lora_floor_division(x, weight, bias, A, B, alpha):
    return F.linear(x, weight, bias) + (alpha // A.shape[0]) * (x @ A.T) @ B.T


@mistake("check_merge_lora", "not A.shape[1]")
def merge_rank_from_columns(weight, A, B, alpha):
    return weight + alpha / A.shape[1] * (B @ A)


@mistake("check_merge_lora", "alpha // r floors it")
def merge_floor_division(weight, A, B, alpha):
    return weight + (alpha // A.shape[0]) * (B @ A)


# ---------------------------------------------------------------- mixed precision

def _relative(w, dtype):
    w = w.flatten()[w.flatten() != 0].double()
    rounded = w.to(dtype) if w.dtype == dtype else w.float().to(dtype)
    return w, rounded.double()


@mistake("check_rounding_error", "the median, not the mean")
def rounding_mean(w, dtype):
    w, r = _relative(w, dtype)
    return ((r - w).abs() / w.abs()).mean().item(), ((r == 0) | r.isinf()).double().mean().item()


@mistake("check_rounding_error", "relative to the weight")
def rounding_absolute(w, dtype):
    w, r = _relative(w, dtype)
    return (r - w).abs().median().item(), ((r == 0) | r.isinf()).double().mean().item()


@mistake("check_rounding_error", "lower of the two middle values")
def rounding_numpy_median(w, dtype):
    w, r = _relative(w, dtype)
    return ((r - w).abs() / w.abs()).quantile(0.5).item(), ((r == 0) | r.isinf()).double().mean().item()


@mistake("check_rounding_error", "0 / 0 = NaN")
def rounding_keeps_zeros(w, dtype):
    w, r = w.flatten().double(), w.flatten().to(dtype).double()
    return ((r - w).abs() / w.abs()).median().item(), ((r == 0) | r.isinf()).double().mean().item()


@mistake("check_rounding_error", "not over all entries")
def rounding_lost_over_all(w, dtype):
    median, _ = mixed_precision.rounding_error(w, dtype)
    r = w.to(dtype)
    return median, (((r == 0) | r.isinf()) & (w != 0)).double().sum().item() / w.numel()


@mistake("check_rounding_error", "beyond float16's largest finite number", kind="overfit")
def rounding_forgets_overflow(w, dtype):
    w, r = _relative(w, dtype)
    return ((r - w).abs() / w.abs()).median().item(), (r == 0).double().mean().item()  # underflow only


@mistake("check_rounding_error", "a threshold on w itself misses", kind="overfit")
def rounding_lost_by_fp16_threshold(w, dtype):
    w, r = _relative(w, dtype)  # "lost: beyond fp16's largest number, or rounded to 0", whatever the dtype
    return ((r - w).abs() / w.abs()).median().item(), ((r == 0) | (w.abs() > 65504)).double().mean().item()


@mistake("check_rounding_error", "a threshold on w itself misses", kind="overfit")
def rounding_lost_below_half_the_smallest(w, dtype):
    w, r = _relative(w, dtype)  # "a value below half the smallest number rounds to 0": ties to even say otherwise
    tiny = {torch.float16: 2.0**-24, torch.bfloat16: 2.0**-133}.get(dtype, 0.0)  # the smallest subnormal
    return ((r - w).abs() / w.abs()).median().item(), ((w.abs() < tiny / 2) | r.isinf()).double().mean().item()


@mistake("check_rounding_error", "leave the inputs as they are", kind="inplace")
def rounding_abs_in_place(w, dtype):
    w = w.abs_()  # rounding is symmetric: work on |w|
    return mixed_precision.rounding_error(w, dtype)


@mistake("check_rounding_error", "stored in 16 bits", kind="dtype")
def rounding_error_in_16_bits(w, dtype):
    w, r = _relative(w, dtype)
    relative = ((r - w).abs() / w.abs()).to(dtype)  # "the error of a dtype number, in that dtype"
    return relative.median().item(), ((r == 0) | r.isinf()).double().mean().item()


def _sgd(params, grads, lr, scale, unscale=True):
    return [p - lr * (g.to(p.dtype) / scale if unscale else g.to(p.dtype)) for p, g in zip(params, grads)]


def _finite(grads):
    return all(bool(torch.isfinite(g).all()) for g in grads)


def _grow(scale, tracker, growth_factor, growth_interval):
    tracker += 1
    return (scale * growth_factor, 0) if tracker == growth_interval else (scale, tracker)


@mistake("check_scaled_step", "divide each gradient by the scale")
def scaled_no_unscale(params, grads, lr, scale, growth_tracker, growth_factor=2.0, backoff_factor=0.5,
                      growth_interval=2000):
    if not _finite(grads):
        return [p.clone() for p in params], scale * backoff_factor, 0
    return (_sgd(params, grads, lr, scale, unscale=False),
            *_grow(scale, growth_tracker, growth_factor, growth_interval))


@mistake("check_scaled_step", "skip the step")
def scaled_steps_on_inf(params, grads, lr, scale, growth_tracker, growth_factor=2.0, backoff_factor=0.5,
                        growth_interval=2000):
    new = _sgd(params, grads, lr, scale)
    if not _finite(grads):
        return new, scale * backoff_factor, 0
    return (new, *_grow(scale, growth_tracker, growth_factor, growth_interval))


@mistake("check_scaled_step", "it never grows the scale")
def scaled_grows_on_overflow(params, grads, lr, scale, growth_tracker, growth_factor=2.0, backoff_factor=0.5,
                             growth_interval=2000):
    scale, tracker = _grow(scale, growth_tracker, growth_factor, growth_interval)  # counted before looking at the grads
    if not _finite(grads):
        return [p.clone() for p in params], scale * backoff_factor, 0
    return _sgd(params, grads, lr, scale), scale, tracker


@mistake("check_scaled_step", "after growing the scale, reset growth_tracker to 0")
def scaled_tracker_not_reset(params, grads, lr, scale, growth_tracker, growth_factor=2.0, backoff_factor=0.5,
                             growth_interval=2000):
    if not _finite(grads):
        return [p.clone() for p in params], scale * backoff_factor, 0
    tracker = growth_tracker + 1
    return _sgd(params, grads, lr, scale), scale * growth_factor if tracker >= growth_interval else scale, tracker


@mistake("check_scaled_step", "a skipped step resets growth_tracker")
def scaled_tracker_kept_on_overflow(params, grads, lr, scale, growth_tracker, growth_factor=2.0, backoff_factor=0.5,
                                    growth_interval=2000):
    if not _finite(grads):
        return [p.clone() for p in params], scale * backoff_factor, growth_tracker
    return (_sgd(params, grads, lr, scale), *_grow(scale, growth_tracker, growth_factor, growth_interval))


@mistake("check_scaled_step", "NaN counts too")
def scaled_isinf_only(params, grads, lr, scale, growth_tracker, growth_factor=2.0, backoff_factor=0.5,
                      growth_interval=2000):
    if any(bool(g.isinf().any()) for g in grads):
        return [p.clone() for p in params], scale * backoff_factor, 0
    return (_sgd(params, grads, lr, scale), *_grow(scale, growth_tracker, growth_factor, growth_interval))


@mistake("check_scaled_step", "every gradient tensor")
def scaled_first_tensor_only(params, grads, lr, scale, growth_tracker, growth_factor=2.0, backoff_factor=0.5,
                             growth_interval=2000):
    if not bool(torch.isfinite(grads[0]).all()):
        return [p.clone() for p in params], scale * backoff_factor, 0
    return (_sgd(params, grads, lr, scale), *_grow(scale, growth_tracker, growth_factor, growth_interval))


@mistake("check_scaled_step", "underflows")
def scaled_unscale_in_half(params, grads, lr, scale, growth_tracker, growth_factor=2.0, backoff_factor=0.5,
                           growth_interval=2000):
    if not _finite(grads):
        return [p.clone() for p in params], scale * backoff_factor, 0
    new = [p - lr * (g / scale).to(p.dtype) for p, g in zip(params, grads)]  # unscaled in the gradient's float16
    return (new, *_grow(scale, growth_tracker, growth_factor, growth_interval))


@mistake("check_scaled_step", "use growth_factor and backoff_factor, the arguments", kind="overfit")
def scaled_fixed_factors(params, grads, lr, scale, growth_tracker, growth_factor=2.0, backoff_factor=0.5,
                         growth_interval=2000):
    return mixed_precision.scaled_step(params, grads, lr, scale, growth_tracker, 2.0, 0.5, growth_interval)


@mistake("check_scaled_step", "leave the inputs as they are", kind="inplace")
def scaled_step_in_place(params, grads, lr, scale, growth_tracker, growth_factor=2.0, backoff_factor=0.5,
                         growth_interval=2000):
    if not _finite(grads):
        return params, scale * backoff_factor, 0
    for p, g in zip(params, grads):
        p.sub_(lr * g.to(p.dtype) / scale)  # as optimizer.step() does
    return (params, *_grow(scale, growth_tracker, growth_factor, growth_interval))


@mistake("check_scaled_step", "keep the parameters in their own dtype", kind="dtype")
def scaled_step_in_half(params, grads, lr, scale, growth_tracker, growth_factor=2.0, backoff_factor=0.5,
                        growth_interval=2000):
    if not _finite(grads):
        return [p.clone() for p in params], scale * backoff_factor, 0
    new = [p.to(g.dtype) - lr * (g.float() / scale).to(g.dtype) for p, g in zip(params, grads)]  # no master weights
    return (new, *_grow(scale, growth_tracker, growth_factor, growth_interval))
