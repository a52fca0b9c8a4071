"""Common mistakes in 15b_robustness_interpretability."""
import numpy as np
import torch

from llmlab.trust import adversarial, attribution, bias, energy
from tests.mutants import mistake

REFERENCE = {
    "check_fgsm": adversarial.fgsm,
    "check_pgd_step": adversarial.pgd_step,
    "check_integrated_gradients": attribution.integrated_gradients,
    "check_occlusion": attribution.occlusion,
    "check_attention_rollout": attribution.attention_rollout,
    "check_weat_effect_size": bias.weat_effect_size,
    "check_bootstrap_ci": bias.bootstrap_ci,
    "check_energy_per_token": energy.energy_per_token,
}


# ------------------------------------------------------------------------------------------------- FGSM

@mistake("check_fgsm", "a minus sign is a descent step")
def fgsm_descent(x, grad, eps):
    return x - eps * grad.sign()


@mistake("check_fgsm", "not eps·grad")
def fgsm_raw_gradient(x, grad, eps):
    return x + eps * grad


@mistake("check_fgsm", "sign(0) = 0", kind="overfit")
def fgsm_zero_moves(x, grad, eps):
    return x + eps * torch.where(grad >= 0, 1.0, -1.0).to(x.dtype)


@mistake("check_fgsm", "leave the inputs as they are", kind="inplace")
def fgsm_inplace(x, grad, eps):
    return x.add_(eps * grad.sign())


@mistake("check_fgsm", "dtype", kind="dtype")
def fgsm_float32(x, grad, eps):
    return (x + eps * grad.sign()).float()


@mistake("check_fgsm", "the result has x's dtype whatever grad's is")
def fgsm_grad_dtype(x, grad, eps):
    return x + eps * grad.sign()


# ---------------------------------------------------------------------------------------------- PGD step

@mistake("check_pgd_step", "project back into the ball")
def pgd_no_projection(x, x0, grad, eps, alpha):
    return x + alpha * grad.sign()


@mistake("check_pgd_step", "centred on the clean input x0")
def pgd_ball_around_x(x, x0, grad, eps, alpha):
    stepped = x + alpha * grad.sign()
    return torch.minimum(torch.maximum(stepped, x - eps), x + eps)


@mistake("check_pgd_step", "clamp on both sides")
def pgd_upper_only(x, x0, grad, eps, alpha):
    return torch.minimum(x + alpha * grad.sign(), x0 + eps)


@mistake("check_pgd_step", "sign(0) = 0", kind="overfit")
def pgd_zero_moves(x, x0, grad, eps, alpha):
    stepped = x + alpha * torch.where(grad >= 0, 1.0, -1.0).to(x.dtype)
    return torch.minimum(torch.maximum(stepped, x0 - eps), x0 + eps)


@mistake("check_pgd_step", "leave the inputs as they are", kind="inplace")
def pgd_inplace(x, x0, grad, eps, alpha):
    x += alpha * grad.sign()
    return torch.minimum(torch.maximum(x, x0 - eps), x0 + eps)


@mistake("check_pgd_step", "dtype", kind="dtype")
def pgd_float32(x, x0, grad, eps, alpha):
    return adversarial.pgd_step(x, x0, grad, eps, alpha).float()


@mistake("check_pgd_step", "the result has x's dtype whatever grad's is")
def pgd_grad_dtype(x, x0, grad, eps, alpha):
    return torch.minimum(torch.maximum(x + alpha * grad.sign(), x0 - eps), x0 + eps)


# ----------------------------------------------------------------------------------- integrated gradients

def _path_grads(f, x, baseline, alphas):
    view = (-1,) + (1,) * x.ndim
    path = (baseline + alphas.to(x.dtype).view(view) * (x - baseline)).detach().requires_grad_(True)
    with torch.enable_grad():
        return torch.autograd.grad(f(path).sum(), path)[0]


@mistake("check_integrated_gradients", "not evenly spaced points")
def ig_riemann(f, x, baseline, steps=32):
    return (x - baseline) * _path_grads(f, x, baseline, torch.linspace(0, 1, steps)).mean(0)


@mistake("check_integrated_gradients", "multiply the averaged gradient by (x - baseline)")
def ig_mean_gradient(f, x, baseline, steps=32):
    t, w = np.polynomial.legendre.leggauss(steps)
    g = _path_grads(f, x, baseline, torch.from_numpy(0.5 * (1 + t)))
    return (torch.from_numpy(0.5 * w).to(x.dtype).view((-1,) + (1,) * x.ndim) * g).sum(0)


@mistake("check_integrated_gradients", "halve them")
def ig_unhalved_weights(f, x, baseline, steps=32):
    t, w = np.polynomial.legendre.leggauss(steps)
    g = _path_grads(f, x, baseline, torch.from_numpy(0.5 * (1 + t)))
    return (x - baseline) * (torch.from_numpy(w).to(x.dtype).view((-1,) + (1,) * x.ndim) * g).sum(0)


@mistake("check_integrated_gradients", "the path runs from the baseline to x", kind="overfit")
def ig_ignores_baseline(f, x, baseline, steps=32):
    return attribution.integrated_gradients(f, x, torch.zeros_like(x), steps)


@mistake("check_integrated_gradients", "leave the inputs as they are", kind="inplace")
def ig_inplace(f, x, baseline, steps=32):
    out = attribution.integrated_gradients(f, x, baseline, steps)
    x.sub_(baseline)  # "x - baseline", computed where x lived
    return out


@mistake("check_integrated_gradients", "dtype", kind="dtype")
def ig_float32(f, x, baseline, steps=32):
    return attribution.integrated_gradients(f, x.float(), baseline.float(), steps)


@mistake("check_integrated_gradients", "float32 arithmetic cast back")
def ig_float32_cast_back(f, x, baseline, steps=32):
    return attribution.integrated_gradients(f, x.float(), baseline.float(), steps).to(x.dtype)


@mistake("check_integrated_gradients", "use `steps` nodes, the argument", kind="overfit")
def ig_fixed_steps(f, x, baseline, steps=32):
    return attribution.integrated_gradients(f, x, baseline, 32)


@mistake("check_integrated_gradients", "gradients are off in the notebook")
def ig_no_enable_grad(f, x, baseline, steps=32):
    t, w = np.polynomial.legendre.leggauss(steps)
    view = (-1,) + (1,) * x.ndim
    path = (baseline + torch.from_numpy(0.5 * (1 + t)).to(x.dtype).view(view) * (x - baseline)).detach()
    path.requires_grad_(True)
    (grads,) = torch.autograd.grad(f(path).sum(), path)
    return (x - baseline) * (torch.from_numpy(0.5 * w).to(x.dtype).view(view) * grads).sum(0)


# --------------------------------------------------------------------------------------------- occlusion

@mistake("check_occlusion", "not f(occluded) - f(x)")
def occ_reversed(f, x, baseline):
    return -attribution.occlusion(f, x, baseline)


@mistake("check_occlusion", "your occlusions accumulate")
def occ_cumulative(f, x, baseline):
    z = x.clone()
    full = f(x[None])[0]
    out = []
    for t in range(x.shape[0]):
        z[t] = baseline[t]
        out.append(full - f(z[None])[0])
    return torch.stack(out)


@mistake("check_occlusion", "put baseline's row t in place of x's row t", kind="overfit")
def occ_zeros(f, x, baseline):
    return attribution.occlusion(f, x, torch.zeros_like(x))


@mistake("check_occlusion", "leave the inputs as they are", kind="inplace")
def occ_inplace(f, x, baseline):
    full = f(x[None])[0]
    out = []
    for t in range(x.shape[0]):
        x[t] = baseline[t]  # occluded where x lives, never restored
        out.append(full - f(x[None])[0])
    return torch.stack(out)


@mistake("check_occlusion", "dtype", kind="dtype")
def occ_float64(f, x, baseline):
    return attribution.occlusion(f, x.double(), baseline.double())


# ------------------------------------------------------------------------------------- attention rollout

def _layers(attn, reduce="mean", renorm=True, identity=True):
    A = attn.mean(1) if reduce == "mean" else attn.amax(1)
    if identity:
        A = A + torch.eye(attn.shape[-1], dtype=attn.dtype)
    return A / A.sum(-1, keepdim=True) if renorm else A


@mistake("check_attention_rollout", "the last layer on the left")
def rollout_reversed(attn):
    A = _layers(attn)
    R = A[0]
    for layer in A[1:]:
        R = R @ layer
    return R


@mistake("check_attention_rollout", "add the identity")
def rollout_no_identity(attn):
    A = _layers(attn, identity=False)
    R = A[0]
    for layer in A[1:]:
        R = layer @ R
    return R


@mistake("check_attention_rollout", "not their maximum")
def rollout_max_heads(attn):
    A = _layers(attn, reduce="max")
    R = A[0]
    for layer in A[1:]:
        R = layer @ R
    return R


@mistake("check_attention_rollout", "0.5·W + 0.5·I assumes rows that sum to 1", kind="overfit")
def rollout_half_half(attn):
    A = 0.5 * attn.mean(1) + 0.5 * torch.eye(attn.shape[-1], dtype=attn.dtype)
    R = A[0]
    for layer in A[1:]:
        R = layer @ R
    return R


@mistake("check_attention_rollout", "leave the inputs as they are", kind="inplace")
def rollout_inplace(attn):
    attn += torch.eye(attn.shape[-1], dtype=attn.dtype)  # the identity added to every head, in place
    A = attn.mean(1)
    A = A / A.sum(-1, keepdim=True)
    R = A[0]
    for layer in A[1:]:
        R = layer @ R
    return R


@mistake("check_attention_rollout", "dtype", kind="dtype")
def rollout_float32(attn):
    return attribution.attention_rollout(attn.float())


# ------------------------------------------------------------------------------------------------- WEAT

def _s(w, a, b):
    return (w @ a.T).mean(1) - (w @ b.T).mean(1)


def _n(t):
    return torch.nn.functional.normalize(t, dim=-1)


@mistake("check_weat_effect_size", "use cosine similarity")
def weat_dot(X, Y, A, B):
    sx, sy = _s(X, A, B), _s(Y, A, B)
    return ((sx.mean() - sy.mean()) / torch.cat([sx, sy]).std()).item()


@mistake("check_weat_effect_size", "sample standard deviation")
def weat_population_std(X, Y, A, B):
    sx, sy = _s(_n(X), _n(A), _n(B)), _s(_n(Y), _n(A), _n(B))
    return ((sx.mean() - sy.mean()) / torch.cat([sx, sy]).std(correction=0)).item()


@mistake("check_weat_effect_size", "X and Y may differ in size", kind="overfit")
def weat_paired(X, Y, A, B):
    sx, sy = _s(_n(X), _n(A), _n(B)), _s(_n(Y), _n(A), _n(B))
    diff = sx - sy  # pairs the i-th x with the i-th y: needs equal sizes
    return (diff.mean() / torch.cat([sx, sy]).std()).item()


@mistake("check_weat_effect_size", "leave the inputs as they are", kind="inplace")
def weat_inplace(X, Y, A, B):
    for t in (X, Y, A, B):
        t /= t.norm(dim=-1, keepdim=True)
    sx, sy = _s(X, A, B), _s(Y, A, B)
    return ((sx.mean() - sy.mean()) / torch.cat([sx, sy]).std()).item()


@mistake("check_weat_effect_size", ".item()", kind="dtype")
def weat_tensor(X, Y, A, B):
    return torch.tensor(bias.weat_effect_size(X, Y, A, B))


# -------------------------------------------------------------------------------------------- bootstrap

@mistake("check_bootstrap_ci", "two-sided")
def boot_one_tail_each(values, n, seed, level=0.95):
    g = torch.Generator().manual_seed(seed)
    means = values[torch.randint(0, len(values), (n, len(values)), generator=g)].mean(1)
    return torch.quantile(means, torch.tensor([1 - level, level], dtype=values.dtype))


@mistake("check_bootstrap_ci", "not mean ± 1.96 standard errors")
def boot_normal(values, n, seed, level=0.95):
    m, se = values.mean(), values.std() / len(values) ** 0.5
    return torch.stack([m - 1.96 * se, m + 1.96 * se])


@mistake("check_bootstrap_ci", "resample with replacement")
def boot_permutation(values, n, seed, level=0.95):
    g = torch.Generator().manual_seed(seed)
    means = torch.stack([values[torch.randperm(len(values), generator=g)].mean() for _ in range(n)])
    return torch.quantile(means, torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=values.dtype))


@mistake("check_bootstrap_ci", "of the level given", kind="overfit")
def boot_fixed_level(values, n, seed, level=0.95):
    return bias.bootstrap_ci(values, n, seed, 0.95)


@mistake("check_bootstrap_ci", "leave the inputs as they are", kind="inplace")
def boot_inplace(values, n, seed, level=0.95):
    out = bias.bootstrap_ci(values, n, seed, level)
    values.copy_(values.sort().values)  # sorted "to read the quantiles off"
    return out


@mistake("check_bootstrap_ci", "dtype", kind="dtype")
def boot_float32(values, n, seed, level=0.95):
    return bias.bootstrap_ci(values.float(), n, seed, level)


@mistake("check_bootstrap_ci", "leave the global generator alone")
def boot_global_seed(values, n, seed, level=0.95):
    torch.manual_seed(seed)  # the same draws as a generator seeded with seed, but the learner's own seed is gone
    means = values[torch.randint(0, len(values), (n, len(values)))].mean(1)
    return torch.quantile(means, torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=values.dtype))


# ---------------------------------------------------------------------------------------------- energy

@mistake("check_energy_per_token", "divide by the number of tokens")
def energy_total(seconds, tokens, watts):
    return float(watts * seconds)


@mistake("check_energy_per_token", "would be joules / 3.6e6")
def energy_kwh(seconds, tokens, watts):
    return watts * seconds / tokens / 3.6e6


@mistake("check_energy_per_token", "right on the examples shown", kind="overfit")
def energy_floor(seconds, tokens, watts):
    return float(watts * seconds // tokens)
