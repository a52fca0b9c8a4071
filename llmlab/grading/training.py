"""Checks for notebook 06_training."""
from __future__ import annotations

import copy
import math
import numbers

import torch

from llmlab import train as ref
from llmlab.grading.core import Check
from llmlab.nn import lora
from llmlab.nn.model import Decoder, DecoderConfig


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _randn(*shape, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    return torch.randn(*shape, generator=_gen(seed), dtype=dtype)


# ------------------------------------------------------------------------------------------ batches


def _as_batch(c: Check, out, B: int, T: int) -> tuple[torch.Tensor, torch.Tensor]:
    c.expect(isinstance(out, tuple) and len(out) == 2, f"get_batch returned {type(out).__name__}, expected a tuple (x, y)",
             "return x, y")
    x, y = out
    for name, t in (("x", x), ("y", y)):
        c.expect_tensor(t, shape=(B, T), name=name)
        c.expect(t.dtype == torch.long, f"{name} has dtype {t.dtype}, expected torch.int64",
                 "index the token tensor: its slices keep its dtype")
    return x, y


def check_get_batch(fn) -> None:
    c = Check("06.get_batch", fn)
    N, B, T, base = 20, 64, 5, 100
    data = torch.arange(base, base + N)  # token i is base + i, so a window shows where it starts
    hints = {
        "stack expects each tensor to be equal size": "the last valid start is len(data) - block_size - 1: y needs one more token after the window",
        "out of bounds": "the last valid start is len(data) - block_size - 1: y needs one more token after the window",
        "out of range": "the last valid start is len(data) - block_size - 1: y needs one more token after the window",
    }
    x, y = _as_batch(c, c.call(data, B, T, _gen(0), error_hints=hints), B, T)
    c.expect(not torch.equal(x, y), "y equals x", "y holds the *next* tokens: y[b, t] = data[i + t + 1]")
    c.expect(torch.equal(x[:, 1:], x[:, :-1] + 1), "the rows of x are not contiguous windows of data",
             "each row is one slice data[i : i + block_size]")
    c.expect(torch.equal(y, x + 1), "y is not x shifted by one token",
             "y = data[i + 1 : i + block_size + 1], the same window one step later")
    c.expect(x[:, 0].unique().numel() > 1, "every row of the batch starts at the same offset",
             "draw batch_size offsets, one per row")
    starts = torch.cat([_as_batch(c, c.call(data, B, T, _gen(s), error_hints=hints), B, T)[0][:, 0] - base
                        for s in range(1, 6)])
    c.expect(int(starts.min()) >= 0 and int(starts.max()) <= N - T - 1,
             f"a window starts at {int(starts.max())}, past the last valid start {N - T - 1}",
             "the last valid start is len(data) - block_size - 1")
    c.expect(int(starts.max()) == N - T - 1 and int(starts.min()) == 0,
             f"in {len(starts)} rows no window starts at {N - T - 1}, the last valid offset",
             "torch.randint(high, ...) excludes high: use high = len(data) - block_size")
    again = _as_batch(c, c.call(data, B, T, _gen(0), error_hints=hints), B, T)
    c.expect(torch.equal(again[0], x), "two calls with generators seeded alike gave different batches",
             "pass generator=generator to torch.randint so that a seed reproduces a batch")
    c.done()


# ---------------------------------------------------------------------------------------- optimiser

ADAM_KW = dict(lr=0.05, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1)


def _adamw_variant(param, grad, m, v, step, lr, betas, eps, weight_decay, variant: str):
    b1, b2 = betas
    if variant == "l2":
        grad = grad + weight_decay * param
    m = b1 * m + (1 - b1) * grad
    v = b2 * v + (1 - b2) * grad * grad
    m_hat, v_hat = m / (1 - b1**step), v / (1 - b2**step)
    if variant == "no_bias_correction":
        m_hat, v_hat = m, v
    denom = (v_hat + eps).sqrt() if variant == "eps_in_sqrt" else v_hat.sqrt() + eps
    update = m_hat / denom
    if variant == "l2":
        return param - lr * update, m, v
    if variant == "decay_without_lr":
        return param * (1 - weight_decay) - lr * update, m, v
    if variant == "decay_after":
        return (param - lr * update) * (1 - lr * weight_decay), m, v
    return param * (1 - lr * weight_decay) - lr * update, m, v


ADAMW_MISTAKES = {
    "no_bias_correction": "divide the averages by (1 - beta ** step): early on they are biased towards 0",
    "l2": "that is Adam with L2: AdamW decays the weights directly (param * (1 - lr * weight_decay)), not through the gradient",
    "eps_in_sqrt": "eps goes outside the square root: sqrt(v_hat) + eps",
    "decay_without_lr": "the decay is scaled by the learning rate: param * (1 - lr * weight_decay)",
    "decay_after": "decay the weights before adding the Adam step, as torch.optim.AdamW does",
}


def check_adamw_step(fn) -> None:
    c = Check("06.adamw_step", fn)
    shape = (4, 3)
    p0 = _randn(*shape, seed=0)
    grads = [_randn(*shape, seed=s) for s in (1, 2, 3)]
    zeros = torch.zeros(shape, dtype=torch.float64)
    # torch.optim.AdamW on the same parameter and gradients: the oracle.
    p = torch.nn.Parameter(p0.clone())
    opt = torch.optim.AdamW([p], **ADAM_KW)
    state = (p0.clone(), zeros.clone(), zeros.clone())
    variants = {name: (p0.clone(), zeros.clone(), zeros.clone()) for name in ADAMW_MISTAKES}
    for step, g in enumerate(grads, 1):
        p.grad = g.clone()
        opt.step()
        state = c.call(state[0], g, state[1], state[2], step, **ADAM_KW)
        c.expect(isinstance(state, tuple) and len(state) == 3,
                 f"adamw_step returned {type(state).__name__}, expected (param, exp_avg, exp_avg_sq)", "return all three")
        for name, t in zip(("param", "exp_avg", "exp_avg_sq"), state):
            c.expect_tensor(t, shape=shape, dtype=torch.float64, name=f"the new {name}")
        variants = {name: _adamw_variant(s[0], g, s[1], s[2], step, variant=name, **ADAM_KW) for name, s in variants.items()}
        mistakes = {ADAMW_MISTAKES[name]: v[0] for name, v in variants.items()}
        c.diagnose(state[0], mistakes, f"after step {step} your parameter matches a known mistake", rtol=1e-9,
                   correct=p.detach())
        if step == 1:
            c.close(state[1], 0.1 * g, "exp_avg after one step should be (1 - beta1) * grad",
                    "exp_avg = beta1 * exp_avg + (1 - beta1) * grad")
            c.close(state[2], 0.01 * g**2, "exp_avg_sq after one step should be (1 - beta2) * grad²",
                    "exp_avg_sq = beta2 * exp_avg_sq + (1 - beta2) * grad * grad")
        c.close(state[0], p.detach(), f"after step {step} your parameter differs from torch.optim.AdamW's",
                "m̂ = m / (1 - β1^t), v̂ = v / (1 - β2^t), param ← param·(1 - lr·λ) - lr·m̂ / (sqrt(v̂) + ε)")
    c.done()


def _lr_variants(step, max_lr, warmup, total, min_lr) -> dict[str, float]:
    def cos_part(progress, floor):
        return floor + 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))) * (max_lr - floor)

    out = {}
    if step < warmup:
        out["at step 0 the rate is 0, a wasted step: warm up with (step + 1) / warmup_steps"] = max_lr * step / warmup
    else:
        out["the cosine starts after the warm-up: progress = (step - warmup_steps) / (total_steps - warmup_steps)"] = \
            cos_part(step / total, min_lr)
        progress = min((step - warmup) / (total - warmup), 1.0)
        out["decay to min_lr, not to 0: min_lr + ½(1 + cos(π·progress))·(max_lr - min_lr)"] = cos_part(progress, 0.0)
        out["that is a linear decay: use ½(1 + cos(π·progress))"] = max_lr - progress * (max_lr - min_lr)
    return out


def check_lr_at(fn) -> None:
    c = Check("06.lr_at", fn)
    max_lr, warmup, total, min_lr = 1e-3, 10, 100, 1e-4
    for step in [0, 1, 5, 9, 10, 11, 30, 55, 80, 99, 100, 150]:
        out = c.call(step, max_lr, warmup, total, min_lr)
        c.expect(isinstance(out, numbers.Real) or (isinstance(out, torch.Tensor) and out.numel() == 1),
                 f"lr_at returned {type(out).__name__}, expected a number", "return a float")
        out = float(out)
        want = ref.lr_at(step, max_lr, warmup, total, min_lr)
        if abs(out - want) > 1e-12:
            for hint, value in _lr_variants(step, max_lr, warmup, total, min_lr).items():
                if abs(out - value) < 1e-12:
                    c.fail(f"lr_at({step}) = {out:.6g}, expected {want:.6g}", hint)
            where = "during the warm-up" if step < warmup else "after the last step" if step >= total else "during the decay"
            c.fail(f"lr_at({step}) = {out:.6g}, expected {want:.6g} ({where})",
                   "warm-up: max_lr·(step+1)/warmup_steps; then min_lr + ½(1 + cos(π·progress))·(max_lr - min_lr); "
                   "from total_steps on: min_lr")
        c.passed += 1
    out = float(c.call(0, 1.0, 0, 10, 0.0, error_hints={"division by zero": "with warmup_steps = 0 there is no warm-up: start the cosine at once"}))
    c.expect(abs(out - 1.0) < 1e-12, f"without warm-up, lr_at(0) = {out}, expected max_lr",
             "with warmup_steps = 0 the cosine starts at step 0, at max_lr")
    c.done()


def _grads(seed: int, scale: float) -> list[torch.nn.Parameter]:
    params = []
    for i, shape in enumerate([(3, 4), (5,), (2, 2)]):
        p = torch.nn.Parameter(_randn(*shape, seed=seed + i))
        p.grad = _randn(*shape, seed=seed + 10 + i) * scale
        params.append(p)
    params.append(torch.nn.Parameter(torch.zeros(2, dtype=torch.float64)))  # no gradient (unused, frozen)
    return params


def check_clip_grad_norm(fn) -> None:
    c = Check("06.clip_grad_norm", fn)
    hints = {"NoneType": "a parameter without a gradient has p.grad = None: skip it"}
    for scale, max_norm in [(3.0, 1.0), (0.05, 1.0)]:
        mine, theirs = _grads(0, scale), _grads(0, scale)
        before = [p.grad.clone() for p in mine[:3]]
        total = c.call(iter(mine), max_norm, error_hints=hints, copy_args=False)  # a generator, as model.parameters()
        want = torch.nn.utils.clip_grad_norm_(theirs, max_norm)
        true_norm = torch.linalg.vector_norm(torch.cat([g.flatten() for g in before]))
        c.expect(isinstance(total, (torch.Tensor, numbers.Real)), f"you returned {type(total).__name__}",
                 "return the total norm before clipping")
        total = float(total)
        clipping = float(true_norm) > max_norm
        if clipping and all(torch.equal(p.grad, b) for p, b in zip(mine, before)):
            c.fail("the gradients were not changed",
                   "scale p.grad in place (p.grad.mul_(factor)); if parameters is a generator such as model.parameters(), "
                   "make it a list first: a generator can be walked only once")
        c.expect(abs(total - float(true_norm)) < 1e-9 * float(true_norm) or not math.isclose(total, max_norm, rel_tol=1e-5),
                 f"you returned {total:.4f}, the norm after clipping", "return the norm before clipping: that is what to log")
        sum_of_norms = sum(float(torch.linalg.vector_norm(b)) for b in before)
        c.expect(not math.isclose(total, sum_of_norms, rel_tol=1e-9),
                 f"you returned {total:.4f}, the sum of the per-tensor norms",
                 "the global norm is sqrt(sum of every squared gradient entry), not the sum of norms")
        c.close(torch.tensor(total), want, "the total norm differs from torch.nn.utils.clip_grad_norm_'s",
                "sqrt(sum over parameters of (g ** 2).sum())")
        per_tensor = [b * (max_norm / (torch.linalg.vector_norm(b) + 1e-6)).clamp(max=1) for b in before]
        if clipping and all(torch.allclose(p.grad, t) for p, t in zip(mine, per_tensor)):
            c.fail("each gradient was clipped on its own",
                   "one factor for all: max_norm / (global norm + 1e-6); per-tensor clipping bends the update's direction")
        if not clipping and not all(torch.equal(p.grad, b) for p, b in zip(mine, before)):
            c.fail(f"a global norm of {float(true_norm):.3f} < max_norm = {max_norm} was changed",
                   "clip only when the norm exceeds max_norm: never scale gradients up")
        for p, t in zip(mine[:3], theirs[:3]):
            c.close(p.grad, t.grad, "the clipped gradients differ from torch.nn.utils.clip_grad_norm_'s",
                    "multiply every gradient by max_norm / (total_norm + 1e-6) when total_norm > max_norm")
    c.done()


# ------------------------------------------------------------------------------------------- steps


def _tiny_model(seed: int = 0) -> Decoder:
    cfg = DecoderConfig(vocab_size=40, dim=16, n_layers=1, n_heads=2, n_kv_heads=1, hidden_dim=32, max_seq_len=16)
    with torch.random.fork_rng(devices=[]):  # leave the learner's global seed alone
        torch.manual_seed(seed)
        return Decoder(cfg)


def _reference_run(model, batches, max_norm, lr, zero_grad=True, clip=True) -> list[float]:
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    losses = []
    for x, y in batches:
        if zero_grad:
            opt.zero_grad()
        loss = ref.lm_loss(model, x, y)
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        opt.step()
        losses.append(loss.item())
    return losses


def check_train_step(fn) -> None:
    c = Check("06.train_step", fn)
    g = _gen(0)
    data = torch.randint(40, (200,), generator=g)
    batches = [ref.get_batch(data, 4, 8, g) for _ in range(2)]
    max_norm, lr = 0.05, 0.5  # plain SGD so that clipping shows in the update (Adam would mostly hide it)
    base = _tiny_model()
    want, no_zero, no_clip = copy.deepcopy(base), copy.deepcopy(base), copy.deepcopy(base)
    want_losses = _reference_run(want, batches, max_norm, lr)
    _reference_run(no_zero, batches, max_norm, lr, zero_grad=False)
    _reference_run(no_clip, batches, max_norm, lr, clip=False)
    mine = copy.deepcopy(base)
    opt = torch.optim.SGD(mine.parameters(), lr=lr)
    start = {k: v.clone() for k, v in mine.state_dict().items()}
    for i, (x, y) in enumerate(batches):
        out = c.call(mine, opt, x, y, max_norm, copy_args=False)
        c.expect(not isinstance(out, torch.Tensor), "you returned a tensor",
                 "return loss.item(): a Python float, so the graph of this step can be freed")
        c.expect(isinstance(out, numbers.Real), f"you returned {type(out).__name__}, expected the loss as a float",
                 "return loss.item()")
        c.expect(math.isclose(out, want_losses[i], rel_tol=1e-4),
                 f"step {i + 1} returned loss {out:.4f}, expected {want_losses[i]:.4f}",
                 "the loss is F.cross_entropy(logits.flatten(0, 1), y.flatten()), computed before the update")
        if i == 0:
            c.expect(any(not torch.equal(v, start[k]) for k, v in mine.state_dict().items()),
                     "the parameters did not change", "call optimizer.step() after loss.backward()")
    got = mine.state_dict()

    def same(model) -> bool:
        return all(torch.allclose(got[k], v, rtol=1e-4, atol=1e-6) for k, v in model.state_dict().items())

    if same(no_clip) and not same(want):
        c.fail("your update is the unclipped one",
               "clip between loss.backward() and optimizer.step(): clipping after the step changes nothing")
    if same(no_zero) and not same(want):
        c.fail("the second step used the gradients of both batches",
               "call optimizer.zero_grad() first: backward() adds to .grad, it does not overwrite it")
    c.expect(same(want), "after two steps your parameters differ from zero_grad → loss → backward → clip → step",
             "")
    c.done()


# ------------------------------------------------------------------------------------- over-fitting


def check_dropout(fn) -> None:
    c = Check("06.dropout", fn)
    x = _randn(400, 500, seed=0, dtype=torch.float32).abs() + 0.5  # no zeros of its own
    p = 0.25
    out = c.call(x, p, True, _gen(1))
    c.expect_tensor(out, shape=x.shape, dtype=x.dtype, name="dropout(x, 0.25)")
    dropped = (out == 0).float().mean().item()
    if abs(dropped - (1 - p)) < 0.01:
        c.fail(f"{dropped:.0%} of the entries were zeroed, expected {p:.0%}", "p is the probability to *drop* an entry")
    c.expect(abs(dropped - p) < 0.01, f"{dropped:.1%} of the entries were zeroed, expected about {p:.0%}",
             "zero each entry independently with probability p")
    kept = out != 0
    ratio = (out[kept] / x[kept]).double()
    for factor, hint in [(1.0, "scale the survivors by 1 / (1 - p) so the expected value stays x (inverted dropout)"),
                         (1 - p, "divide the survivors by (1 - p), do not multiply"),
                         (1 / p, "divide by the keep probability 1 - p, not by p")]:
        if torch.allclose(ratio, torch.full_like(ratio, factor), rtol=1e-5):
            c.fail(f"the kept entries are x · {factor:.4g}", hint)
    c.close(ratio, torch.full_like(ratio, 1 / (1 - p)), "the kept entries should be x / (1 - p)", "inverted dropout")
    c.close(out.mean(), x.mean(), "the mean changed", "scale the survivors by 1 / (1 - p)", rtol=0.02, atol=0)
    evaluated = c.call(x, p, False, _gen(1))
    c.expect(isinstance(evaluated, torch.Tensor) and torch.equal(evaluated, x),
             "with training=False the input came back changed", "at evaluation time dropout is the identity")
    c.expect(torch.equal(c.call(x, 0.0, True, _gen(1)), x), "with p = 0 the input came back changed",
             "nothing is dropped when p = 0")
    c.expect(torch.equal(c.call(x, p, True, _gen(7)), c.call(x, p, True, _gen(7))),
             "two calls with generators seeded alike dropped different entries",
             "draw the mask with torch.rand(x.shape, generator=generator)")
    c.done()


def check_should_stop(fn) -> None:
    c = Check("06.should_stop", fn)
    cases = [  # (losses, patience, min_delta, answer, hint when answered wrongly)
        ([], 2, 0.0, False, "with fewer than patience + 1 evaluations there is nothing to compare yet"),
        ([5.0, 4.0], 2, 0.0, False, "with fewer than patience + 1 evaluations there is nothing to compare yet"),
        ([5.0, 4.0, 3.0, 2.0], 2, 0.0, False, "the loss is still improving"),
        ([5.0, 4.0, 4.5, 4.6], 2, 0.0, True, "the last 2 evaluations did not beat the best (4.0): stop"),
        ([5.0, 3.0, 4.0, 3.5], 1, 0.0, True,
         "compare with the best loss so far, not with the previous evaluation: 3.5 improves on 4.0 but not on 3.0"),
        ([5.0, 4.0, 4.1], 2, 0.0, False,
         "patience 2 means the last 2 evaluations, and one of them is the best (4.0): keep going"),
        ([5.0, 4.0, 4.5, 3.9, 4.0], 2, 0.0, False, "3.9, one of the last 2 evaluations, is a new best: keep going"),
        ([5.0, 4.0, 3.95, 3.96], 2, 0.1, True,
         "an improvement counts only if it beats the best by more than min_delta: 3.95 is not 0.1 better than 4.0"),
        ([5.0, 4.0, 4.5, 4.6, 4.7], 3, 0.0, True, "the last 3 evaluations did not beat the best (4.0): stop"),
    ]
    for losses, patience, min_delta, answer, hint in cases:
        out = c.call(losses, patience, min_delta)
        c.expect(isinstance(out, (bool, torch.Tensor)) or out in (0, 1), f"you returned {type(out).__name__}",
                 "return True or False")
        c.expect(bool(out) == answer,
                 f"should_stop({losses}, patience={patience}, min_delta={min_delta}) gave {bool(out)}, expected {answer}",
                 hint)
    c.done()


# --------------------------------------------------------------------------------------------- LoRA


def _lora_case(seed: int, out_f: int = 8, in_f: int = 12, r: int = 3):
    W, b = _randn(out_f, in_f, seed=seed), _randn(out_f, seed=seed + 1)
    A, B = _randn(r, in_f, seed=seed + 2), _randn(out_f, r, seed=seed + 3)
    return W, b, A, B


SHAPE_HINT = "A is (r, in) and B is (out, r): x Aᵀ is (..., r), then times Bᵀ gives (..., out)"


def check_lora_linear(fn) -> None:
    c = Check("06.lora_linear", fn)
    W, b, A, B = _lora_case(0)
    x = _randn(2, 5, 12, seed=9)
    alpha, r = 6.0, A.shape[0]
    hints = {"cannot be multiplied": SHAPE_HINT, "size of tensor a": SHAPE_HINT, "must match the size": SHAPE_HINT}
    out = c.call(x, W, b, A, B, alpha, error_hints=hints)
    c.expect_tensor(out, shape=(2, 5, 8), dtype=x.dtype, name="lora_linear(x, ...)")
    base, adapter = x @ W.T + b, x @ A.T @ B.T
    want = lora.lora_linear(x, W, b, A, B, alpha)
    c.diagnose(out, {
        "scale the adapter by alpha / r": base + adapter,
        "the scale is alpha / r, not alpha": base + alpha * adapter,
        "the scale is alpha / r, not r / alpha": base + r / alpha * adapter,
        "keep the frozen layer: the adapter is added to x Wᵀ + b": (alpha / r) * adapter,
        "add the bias of the frozen layer": x @ W.T + (alpha / r) * adapter,
    }, "your output matches a known mistake", correct=want)
    c.close(out, want, "lora_linear differs from x Wᵀ + b + (alpha / r) · x Aᵀ Bᵀ", "")
    zero_B = torch.zeros_like(B)
    c.close(c.call(x, W, b, A, zero_B, alpha, error_hints=hints), base,
            "with B = 0 (LoRA's initialisation) the output should equal the frozen layer's", "")
    c.close(c.call(x[0], W, None, A, B, alpha, error_hints=hints), lora.lora_linear(x[0], W, None, A, B, alpha),
            "with bias=None (SmolLM2's projections have no bias) the result is wrong",
            "F.linear(x, weight, bias) accepts bias=None")
    c.done()


def check_merge_lora(fn) -> None:
    c = Check("06.merge_lora", fn)
    W, b, A, B = _lora_case(3, out_f=8, in_f=12, r=3)
    alpha, r = 6.0, A.shape[0]
    hints = {"cannot be multiplied": "B A is (out, r) @ (r, in) = (out, in), the shape of W",
             "size of tensor a": "B A is (out, r) @ (r, in) = (out, in), the shape of W"}
    out = c.call(W, A, B, alpha, error_hints=hints)
    c.expect_tensor(out, shape=W.shape, dtype=W.dtype, name="merge_lora(W, A, B, alpha)")
    want = lora.merged_weight(W, A, B, alpha)
    c.diagnose(out, {
        "scale B A by alpha / r, as in the forward pass": W + B @ A,
        "the scale is alpha / r, not alpha": W + alpha * (B @ A),
        "add the update to W (W + ΔW), do not subtract it": W - (alpha / r) * (B @ A),
        "the merged weight is W plus the update, not the update alone": (alpha / r) * (B @ A),
    }, "your merged weight matches a known mistake", correct=want)
    c.close(out, want, "the merged weight differs from W + (alpha / r) B A", "")
    x = _randn(4, 12, seed=11)
    c.close(x @ out.T + b, lora.lora_linear(x, W, b, A, B, alpha),
            "a plain layer with your merged weight does not reproduce the adapted layer's output", "")
    c.done()
