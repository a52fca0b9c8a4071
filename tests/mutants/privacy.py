"""Common mistakes in 15a_privacy."""
import math

import torch
import torch.nn.functional as F

from llmlab.trust import accounting, dp_sgd, federated, leakage, membership
from tests.mutants import mistake

REFERENCE = {
    "check_linear_grad_samples": dp_sgd.linear_grad_samples,
    "check_clip_per_sample": dp_sgd.clip_per_sample,
    "check_dp_sgd_step": dp_sgd.dp_sgd_step,
    "check_gaussian_rdp": accounting.gaussian_rdp,
    "check_rdp_to_epsilon": accounting.rdp_to_epsilon,
    "check_membership_advantage": membership.membership_advantage,
    "check_fedavg": federated.fedavg,
    "check_local_sgd": federated.local_sgd,
    "check_leak_input": leakage.leak_input,
}


# linear_grad_samples
@mistake("check_linear_grad_samples", "you summed over the batch")
def grads_batch_sum(activations, backprops):
    return backprops.T @ activations, backprops.sum(0)


@mistake("check_linear_grad_samples", "(out, in)")
def grads_transposed(activations, backprops):
    return torch.einsum("bi,bo->bio", activations, backprops), backprops.clone()


@mistake("check_linear_grad_samples", "not their mean", kind="overfit")
def grads_2d_only(activations, backprops):
    return torch.einsum("bo,bi->boi", backprops, activations), backprops.clone()


@mistake("check_linear_grad_samples", "not their mean", kind="overfit")
def grads_mean_positions(activations, backprops):
    a = activations.reshape(len(activations), -1, activations.shape[-1])
    g = backprops.reshape(len(backprops), -1, backprops.shape[-1])
    return torch.einsum("bto,bti->boi", g, a) / a.shape[1], g.mean(1)


@mistake("check_linear_grad_samples", "leave the inputs as they are", kind="inplace")
def grads_scale_in_place(activations, backprops):
    backprops.mul_(2)
    return torch.einsum("bo,bi->boi", backprops, activations) / 2, backprops / 2


@mistake("check_linear_grad_samples", "return the dtype the input has", kind="dtype")
def grads_float32(activations, backprops):
    gw, gb = dp_sgd.linear_grad_samples(activations.float(), backprops.float())
    return gw, gb


@mistake("check_linear_grad_samples", "return a tuple")
def grads_as_list(activations, backprops):
    return list(dp_sgd.linear_grad_samples(activations, backprops))


# clip_per_sample
@mistake("check_clip_per_sample", "not one norm per parameter")
def clip_per_parameter(grads, max_norm):
    return [g * (max_norm / (g.reshape(len(g), -1).norm(dim=1) + 1e-6)).clamp(max=1).view(-1, *[1] * (g.ndim - 1))
            for g in grads]


@mistake("check_clip_per_sample", "min(1, max_norm / (norm + 1e-6))")
def clip_always_rescale(grads, max_norm):
    f = max_norm / (dp_sgd.per_sample_norms(grads) + 1e-6)
    return [g * f.view(-1, *[1] * (g.ndim - 1)) for g in grads]


@mistake("check_clip_per_sample", "not by the norm alone")
def clip_no_epsilon(grads, max_norm):
    f = (max_norm / dp_sgd.per_sample_norms(grads)).clamp(max=1)
    return [g * f.view(-1, *[1] * (g.ndim - 1)) for g in grads]


@mistake("check_clip_per_sample", "not of the whole batch's")
def clip_batch(grads, max_norm):
    total = torch.cat([g.reshape(-1) for g in grads]).norm()
    return [g * min(1.0, max_norm / (float(total) + 1e-6)) for g in grads]


@mistake("check_clip_per_sample", "not a fixed number", kind="overfit")
def clip_fixed_one(grads, max_norm):
    return dp_sgd.clip_per_sample(grads, 1.0)


@mistake("check_clip_per_sample", "leave the inputs as they are", kind="inplace")
def clip_in_place(grads, max_norm):
    f = (max_norm / (dp_sgd.per_sample_norms(grads) + 1e-6)).clamp(max=1)
    return [g.mul_(f.to(g.dtype).view(-1, *[1] * (g.ndim - 1))) for g in grads]


@mistake("check_clip_per_sample", "keep the dtype of the input", kind="dtype")
def clip_float32(grads, max_norm):
    return dp_sgd.clip_per_sample([g.float() for g in grads], max_norm)


# dp_sgd_step
def _noisy(params, clipped, std, divide_by, lr, generator, after=False):
    out = []
    for p, c in zip(params, clipped):
        noise = torch.normal(0.0, std, size=p.shape, generator=generator, dtype=p.dtype) if std > 0 else 0
        grad = c.sum(0) / divide_by + noise if after else (c.sum(0) + noise) / divide_by
        out.append(p - lr * grad)
    return out


@mistake("check_dp_sgd_step", "not by the number of examples drawn")
def step_actual_batch(params, grad_samples, max_norm, noise_multiplier, expected_batch_size, lr, generator=None):
    clipped = dp_sgd.clip_per_sample(grad_samples, max_norm)
    return _noisy(params, clipped, noise_multiplier * max_norm, len(grad_samples[0]), lr, generator)


@mistake("check_dp_sgd_step", "not noise_multiplier alone")
def step_std_sigma(params, grad_samples, max_norm, noise_multiplier, expected_batch_size, lr, generator=None):
    clipped = dp_sgd.clip_per_sample(grad_samples, max_norm)
    return _noisy(params, clipped, noise_multiplier, expected_batch_size, lr, generator)


@mistake("check_dp_sgd_step", "then divide")
def step_noise_after_mean(params, grad_samples, max_norm, noise_multiplier, expected_batch_size, lr, generator=None):
    clipped = dp_sgd.clip_per_sample(grad_samples, max_norm)
    return _noisy(params, clipped, noise_multiplier * max_norm, expected_batch_size, lr, generator, after=True)


@mistake("check_dp_sgd_step", "clip each example's gradient first")
def step_no_clip(params, grad_samples, max_norm, noise_multiplier, expected_batch_size, lr, generator=None):
    return _noisy(params, grad_samples, noise_multiplier * max_norm, expected_batch_size, lr, generator)


@mistake("check_dp_sgd_step", "against the gradient")
def step_ascent(params, grad_samples, max_norm, noise_multiplier, expected_batch_size, lr, generator=None):
    return _noisy(params, dp_sgd.clip_per_sample(grad_samples, max_norm), noise_multiplier * max_norm,
                  expected_batch_size, -lr, generator)


@mistake("check_dp_sgd_step", "the norm covers every parameter", kind="overfit")
def step_weight_and_bias_only(params, grad_samples, max_norm, noise_multiplier, expected_batch_size, lr, generator=None):
    norms = dp_sgd.per_sample_norms(grad_samples[:2])  # assumes [weight, bias]
    f = (max_norm / (norms + 1e-6)).clamp(max=1)
    clipped = [g * f.to(g.dtype).view(-1, *[1] * (g.ndim - 1)) for g in grad_samples]
    return _noisy(params, clipped, noise_multiplier * max_norm, expected_batch_size, lr, generator)


@mistake("check_dp_sgd_step", "leave the inputs as they are", kind="inplace")
def step_in_place(params, grad_samples, max_norm, noise_multiplier, expected_batch_size, lr, generator=None):
    new = dp_sgd.dp_sgd_step(params, grad_samples, max_norm, noise_multiplier, expected_batch_size, lr, generator)
    for p, n in zip(params, new):
        p.copy_(n)
    return params


@mistake("check_dp_sgd_step", "the step stays in float64", kind="dtype")
def step_float32(params, grad_samples, max_norm, noise_multiplier, expected_batch_size, lr, generator=None):
    clipped = dp_sgd.clip_per_sample([g.float() for g in grad_samples], max_norm)
    return _noisy([p.float() for p in params], clipped, noise_multiplier * max_norm, expected_batch_size, lr, generator)


@mistake("check_dp_sgd_step", "no draw when the std is 0")
def step_draws_zero_noise(params, grad_samples, max_norm, noise_multiplier, expected_batch_size, lr, generator=None):
    out = []
    for p, g in zip(params, dp_sgd.clip_per_sample(grad_samples, max_norm)):
        noise = torch.normal(0.0, noise_multiplier * max_norm, size=p.shape, generator=generator, dtype=p.dtype)
        out.append(p - lr * (g.sum(0) + noise) / expected_batch_size)
    return out


# gaussian_rdp
def _naive_rdp(q, sigma, steps, orders, square=True):
    out = []
    for a in orders:
        total = sum(math.comb(a, i) * q**i * (1 - q) ** (a - i) * math.exp((i * i - i) / (2 * (sigma**2 if square else sigma)))
                    for i in range(a + 1))
        out.append(steps * math.log(total) / (a - 1))
    return out


@mistake("check_gaussian_rdp", "RDP composes by adding")
def rdp_one_step(q, noise_multiplier, steps, orders):
    return accounting.gaussian_rdp(q, noise_multiplier, 1, orders)


@mistake("check_gaussian_rdp", "not the full-batch")
def rdp_unsampled(q, noise_multiplier, steps, orders):
    return [steps * a / (2 * noise_multiplier**2) for a in orders]


@mistake("check_gaussian_rdp", "σ is squared")
def rdp_sigma_not_squared(q, noise_multiplier, steps, orders):
    return _naive_rdp(q, noise_multiplier, steps, orders, square=False)


@mistake("check_gaussian_rdp", "log space", kind="overfit")
def rdp_naive_sum(q, noise_multiplier, steps, orders):
    return _naive_rdp(q, noise_multiplier, steps, orders)


@mistake("check_gaussian_rdp", "no noise is no privacy")
def rdp_sigma_zero_crash(q, noise_multiplier, steps, orders):
    out = []
    for a in orders:
        if q == 0 or q == 1:
            out.append(0.0 if q == 0 else steps * a / (2 * noise_multiplier**2))
            continue
        terms = [math.lgamma(a + 1) - math.lgamma(i + 1) - math.lgamma(a - i + 1) + i * math.log(q)
                 + (a - i) * math.log1p(-q) + (i * i - i) / (2 * noise_multiplier**2) for i in range(a + 1)]
        top = max(terms)
        out.append(steps * (top + math.log(sum(math.exp(t - top) for t in terms))) / (a - 1))
    return out



@mistake("check_gaussian_rdp", "each ρ is a Python float")
def rdp_tensors(q, noise_multiplier, steps, orders):
    out = []
    for a in orders:  # log-sum-exp in torch: each ρ stays a 0-d tensor
        i = torch.arange(a + 1, dtype=torch.float64)
        log_comb = torch.lgamma(torch.tensor(a + 1.0)) - torch.lgamma(i + 1) - torch.lgamma(a - i + 1)
        terms = log_comb + i * math.log(q) + (a - i) * math.log1p(-q) + (i * i - i) / (2 * noise_multiplier**2)
        out.append(steps * torch.logsumexp(terms, 0) / (a - 1))
    return out


@mistake("check_gaussian_rdp", "return a list")
def rdp_tuple(q, noise_multiplier, steps, orders):
    return tuple(accounting.gaussian_rdp(q, noise_multiplier, steps, orders))


# rdp_to_epsilon
@mistake("check_rdp_to_epsilon", "not the older")
def eps_mironov(orders, rdp, delta):
    eps = [r + math.log(1 / delta) / (a - 1) for a, r in zip(orders, rdp)]
    i = min(range(len(eps)), key=eps.__getitem__)
    return eps[i], orders[i]


@mistake("check_rdp_to_epsilon", "not the largest")
def eps_max(orders, rdp, delta):
    eps = [r - (math.log(delta) + math.log(a)) / (a - 1) + math.log((a - 1) / a) for a, r in zip(orders, rdp)]
    i = max(range(len(eps)), key=eps.__getitem__)
    return eps[i], orders[i]


@mistake("check_rdp_to_epsilon", "return the order α itself")
def eps_index(orders, rdp, delta):
    eps, order = accounting.rdp_to_epsilon(orders, rdp, delta)
    return eps, orders.index(order)


@mistake("check_rdp_to_epsilon", "not i + 2", kind="overfit")
def eps_orders_from_two(orders, rdp, delta):
    alphas = list(range(2, 2 + len(rdp)))
    eps = [r - (math.log(delta) + math.log(a)) / (a - 1) + math.log((a - 1) / a) for a, r in zip(alphas, rdp)]
    i = min(range(len(eps)), key=eps.__getitem__)
    return eps[i], alphas[i]


@mistake("check_rdp_to_epsilon", "on a tie return the first order")
def eps_last_on_tie(orders, rdp, delta):
    best, order = math.inf, orders[0]
    for a, r in zip(orders, rdp):
        e = r - (math.log(delta) + math.log(a)) / (a - 1) + math.log((a - 1) / a)
        if e <= best:
            best, order = e, a
    return best, order


@mistake("check_rdp_to_epsilon", "on a tie return the first order")
def eps_sorted_pairs(orders, rdp, delta):
    eps = [r - (math.log(delta) + math.log(a)) / (a - 1) + math.log((a - 1) / a) for a, r in zip(orders, rdp)]
    return min(zip(eps, orders))


@mistake("check_rdp_to_epsilon", "return a tuple")
def eps_as_list(orders, rdp, delta):
    return list(accounting.rdp_to_epsilon(orders, rdp, delta))


@mistake("check_rdp_to_epsilon", "ε is a Python float")
def eps_tensor(orders, rdp, delta):
    eps = torch.tensor([r - (math.log(delta) + math.log(a)) / (a - 1) + math.log((a - 1) / a)
                        for a, r in zip(orders, rdp)], dtype=torch.float64)
    i = int(eps.argmin())
    return eps[i], orders[i]


# membership_advantage
@mistake("check_membership_advantage", "do not flip the attack")
def adv_abs(member_losses, nonmember_losses):
    return max(membership.membership_advantage(member_losses, nonmember_losses),
               membership.membership_advantage(-member_losses, -nonmember_losses))


@mistake("check_membership_advantage", "not only the mean member loss")
def adv_mean_threshold(member_losses, nonmember_losses):
    t = member_losses.mean()
    return (member_losses <= t).double().mean().item() - (nonmember_losses <= t).double().mean().item()


@mistake("check_membership_advantage", "not the AUC")
def adv_auc(member_losses, nonmember_losses):
    m, n = member_losses[:, None], nonmember_losses[None, :]
    return ((m < n).double() + 0.5 * (m == n).double()).mean().item()


@mistake("check_membership_advantage", "divide each by its own count", kind="overfit")
def adv_same_count(member_losses, nonmember_losses):
    best = 0.0
    for t in torch.cat([member_losses, nonmember_losses]):
        best = max(best, ((member_losses <= t).sum() - (nonmember_losses <= t).sum()).item() / len(member_losses))
    return best


@mistake("check_membership_advantage", "leave the inputs as they are", kind="inplace")
def adv_sort_in_place(member_losses, nonmember_losses):
    member_losses[:] = member_losses.sort().values
    return membership.membership_advantage(member_losses, nonmember_losses)


@mistake("check_membership_advantage", "do not call .float()", kind="dtype")
def adv_float32(member_losses, nonmember_losses):
    return membership.membership_advantage(member_losses.float(), nonmember_losses.float())


# fedavg
@mistake("check_fedavg", "weight each client by its number of examples")
def fedavg_unweighted(client_states, client_sizes):
    return {k: sum(s[k] for s in client_states) / len(client_states) for k in client_states[0]}


@mistake("check_fedavg", "divide the weighted sum")
def fedavg_unnormalised(client_states, client_sizes):
    return {k: sum(s[k] * n for s, n in zip(client_states, client_sizes)) for k in client_states[0]}


@mistake("check_fedavg", "whatever their names", kind="overfit")
def fedavg_weight_and_bias(client_states, client_sizes):
    total = sum(client_sizes)
    return {k: sum(s[k] * (n / total) for s, n in zip(client_states, client_sizes)) for k in ("weight", "bias")}


@mistake("check_fedavg", "leave the inputs as they are", kind="inplace")
def fedavg_into_first(client_states, client_sizes):
    total, out = sum(client_sizes), client_states[0]
    for k in out:
        out[k].mul_(client_sizes[0] / total)
        for s, n in zip(client_states[1:], client_sizes[1:]):
            out[k].add_(s[k] * (n / total))
    return out


@mistake("check_fedavg", "return the dtype the input has", kind="dtype")
def fedavg_float32(client_states, client_sizes):
    total = sum(client_sizes)
    return {k: sum(s[k].float() * (n / total) for s, n in zip(client_states, client_sizes)) for k in client_states[0]}


@mistake("check_fedavg", "in the states' dtype")
def fedavg_float64(client_states, client_sizes):
    total = sum(client_sizes)
    return {k: sum(s[k].double() * (n / total) for s, n in zip(client_states, client_sizes)) for k in client_states[0]}


# local_sgd
def _gd(state, x, y, lr, steps, K=None, reduction="mean"):
    W, b = state["weight"].clone(), state["bias"].clone()
    K = W.shape[0] if K is None else K
    for _ in range(steps):
        err = torch.softmax(x @ W.T + b, -1) - F.one_hot(y, K).to(W.dtype)
        if reduction == "mean":
            err = err / len(x)
        W, b = W - lr * err.T @ x, b - lr * err.sum(0)
    return {"weight": W, "bias": b}


@mistake("check_local_sgd", "not the sum")
def lsgd_sum(state, x, y, lr, steps):
    return _gd(state, x, y, lr, steps, reduction="sum")


@mistake("check_local_sgd", "take `steps` gradient steps")
def lsgd_one_step(state, x, y, lr, steps):
    return _gd(state, x, y, lr, 1)


@mistake("check_local_sgd", "not y.max() + 1", kind="overfit")
def lsgd_classes_from_labels(state, x, y, lr, steps):
    return _gd(state, x, y, lr, steps, K=int(y.max()) + 1)


@mistake("check_local_sgd", "leave the inputs as they are", kind="inplace")
def lsgd_in_place(state, x, y, lr, steps):
    new = _gd(state, x, y, lr, steps)
    for k in state:
        state[k].copy_(new[k])
    return state


@mistake("check_local_sgd", "return the dtype the input has", kind="dtype")
def lsgd_float32(state, x, y, lr, steps):
    return _gd({k: v.float() for k, v in state.items()}, x.float(), y, lr, steps)


@mistake("check_local_sgd", "float32 arithmetic cast back")
def lsgd_float32_cast_back(state, x, y, lr, steps):
    out = _gd({k: v.float() for k, v in state.items()}, x.float(), y, lr, steps)
    return {k: v.to(state[k].dtype) for k, v in out.items()}


@mistake("check_local_sgd", "return plain tensors")
def lsgd_autograd_graph(state, x, y, lr, steps):
    W, b = state["weight"].clone().requires_grad_(True), state["bias"].clone().requires_grad_(True)
    with torch.enable_grad():
        for _ in range(steps):
            gW, gb = torch.autograd.grad(F.cross_entropy(x @ W.T + b, y), (W, b))
            W, b = W - lr * gW, b - lr * gb
    return {"weight": W, "bias": b}


# leak_input
@mistake("check_leak_input", "take a row, not a column")
def leak_column(grad_weight, grad_bias):
    return grad_weight[:, 0] / grad_bias


@mistake("check_leak_input", "divide by grad_bias[i]")
def leak_multiply(grad_weight, grad_bias):
    i = int(grad_bias.abs().argmax())
    return grad_weight[i] * grad_bias[i]


@mistake("check_leak_input", "largest |grad_bias[i]|", kind="overfit")
def leak_first_row(grad_weight, grad_bias):
    return grad_weight[0] / grad_bias[0]


@mistake("check_leak_input", "leave the inputs as they are", kind="inplace")
def leak_in_place(grad_weight, grad_bias):
    i = int(grad_bias.abs().argmax())
    return grad_weight[i].div_(grad_bias[i])


@mistake("check_leak_input", "return the dtype the input has", kind="dtype")
def leak_float32(grad_weight, grad_bias):
    return leakage.leak_input(grad_weight.float(), grad_bias.float())


@mistake("check_leak_input", "(abs), not the largest signed value")
def leak_signed_argmax(grad_weight, grad_bias):
    i = int(grad_bias.argmax())
    return grad_weight[i] / grad_bias[i]


@mistake("check_leak_input", "on a tie take the first row")
def leak_last_on_tie(grad_weight, grad_bias):
    a = grad_bias.abs()
    i = max(k for k in range(len(a)) if a[k] == a.max())
    return grad_weight[i] / grad_bias[i]
