"""Checks for notebook 06_training."""
from __future__ import annotations

import copy
import math

import torch

from llmlab import mixed_precision
from llmlab import train as ref
from llmlab.grading.core import Case, Check, Draw, exercise, number
from llmlab.grading.core import randn as _randn
from llmlab.nn import lora
from llmlab.nn.model import Decoder, DecoderConfig


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


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


def _batch_cases(d: Draw) -> list[Case]:
    T = d.int(2, 12)
    data = d.randint(0, 1000, (T + d.int(2, 40),))
    return [
        Case("a batch of 1", data, 1, T, _gen(d.int(0, 2**31)),
             hint="draw batch_size offsets, the argument: x and y are (batch_size, block_size)"),
        Case("another batch size and block size", data, d.int(2, 9), d.int(1, T), _gen(d.int(0, 2**31))),
        Case("a stream of exactly block_size + 1 tokens (one window)", data[: T + 1], d.int(2, 5), T, _gen(d.int(0, 2**31)),
             hint="the only valid start is then 0: torch.randint(len(data) - block_size, ...)"),
        Case("int32 token ids", data.int(), d.int(2, 6), T, _gen(d.int(0, 2**31)),
             hint="keep data's dtype: slice or index data (or create tensors with dtype=data.dtype)"),
    ]


@exercise("06.get_batch", reference=ref.get_batch, cases=_batch_cases)
def check_get_batch(c: Check) -> None:
    N, B, T, base = 20, 64, 5, 100
    data = torch.arange(base, base + N)  # token i is base + i, so a window shows where it starts
    last_start = "the last valid start is len(data) - block_size - 1: y needs one more token after the window"
    hints = {"stack expects each tensor to be equal size": last_start, "out of bounds": last_start, "out of range": last_start}
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
EPS_HINT = "add eps to the bias-corrected sqrt(v_hat), as the formula does: m_hat / (sqrt(v_hat) + eps)"


def _adamw_cases(d: Draw) -> list[Case]:
    shape = (d.int(2, 5), d.int(1, 7))

    def state(dtype=torch.float32):  # param, grad, and running averages after some steps (exp_avg_sq >= 0)
        return d.randn(*shape, dtype=dtype), d.randn(*shape, dtype=dtype), d.randn(*shape, dtype=dtype, scale=0.1), \
            d.rand(*shape, dtype=dtype) * 0.01

    p, g, _, _ = state()
    zeros, n = torch.zeros(shape), d.int(3, 9)
    return [
        Case("float32 tensors at a later step, with running averages", *state(), d.int(5, 500), 3e-3,
             betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1),
        Case("float64 tensors, default betas, eps and weight decay", *state(torch.float64), d.int(2, 50), 1e-3),
        Case("a first step where some gradients are 0 (embedding rows not in the batch)", p,
             g.masked_fill(d.rand(*shape) < 0.5, 0.0), zeros, zeros, 1, 1e-2, hint=EPS_HINT),
        Case("tiny gradients, no weight decay", p, g * 1e-9, zeros, zeros, d.int(1, 3), 1e-2, weight_decay=0.0,
             hint=EPS_HINT),
        Case("a 1-D parameter", d.randn(n), d.randn(n), d.randn(n, scale=0.1), d.rand(n) * 0.01, d.int(2, 9), 0.1),
    ]


@exercise("06.adamw_step", reference=ref.adamw_step, cases=_adamw_cases)
def check_adamw_step(c: Check) -> None:
    shape = (4, 3)
    p0 = _randn(*shape, seed=0, dtype=torch.float64)
    grads = [_randn(*shape, seed=s, dtype=torch.float64) for s in (1, 2, 3)]
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
        if step == 1:  # no bias correction then gives what eps added to the uncorrected sqrt(v) gives
            mistakes[ADAMW_MISTAKES["no_bias_correction"] + "; and " + EPS_HINT] = mistakes.pop(ADAMW_MISTAKES["no_bias_correction"])
        c.diagnose(state[0], mistakes,
                   f"after step {step} your parameter matches a known mistake", rtol=1e-9, correct=p.detach())
        if step == 1:
            c.close(state[1], 0.1 * g, "exp_avg after one step should be (1 - beta1) * grad",
                    "exp_avg = beta1 * exp_avg + (1 - beta1) * grad")
            c.close(state[2], 0.01 * g**2, "exp_avg_sq after one step should be (1 - beta2) * grad²",
                    "exp_avg_sq = beta2 * exp_avg_sq + (1 - beta2) * grad * grad")
        c.close(state[0], p.detach(), f"after step {step} your parameter differs from torch.optim.AdamW's",
                "m̂ = m / (1 - β1^t), v̂ = v / (1 - β2^t), param ← param·(1 - lr·λ) - lr·m̂ / (sqrt(v̂) + ε)")


def _lr_variants(step, max_lr, warmup, total, min_lr) -> dict[str, float]:
    def cos_part(progress, floor):
        return floor + 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))) * (max_lr - floor)

    if step < warmup:
        return {"at step 0 the rate is 0, a wasted step: warm up with (step + 1) / warmup_steps": max_lr * step / warmup}
    progress = min((step - warmup) / (total - warmup), 1.0)
    return {"the cosine starts after the warm-up: progress = (step - warmup_steps) / (total_steps - warmup_steps)":
            cos_part(step / total, min_lr),
            "decay to min_lr, not to 0: min_lr + ½(1 + cos(π·progress))·(max_lr - min_lr)": cos_part(progress, 0.0),
            "that is a linear decay: use ½(1 + cos(π·progress))": max_lr - progress * (max_lr - min_lr)}


def _lr_cases(d: Draw) -> list[Case]:
    W, top = d.int(1, 30), d.float(1e-4, 1e-2)
    S, floor = W + d.int(5, 300), top * d.float(0.2, 0.6)
    floor_hint = "use min_lr, the argument: the floor is not a fixed fraction of max_lr"
    return [Case("during another warm-up", d.int(0, W - 1), top, W, S, floor),
            Case("the first step after the warm-up", W, top, W, S, floor),
            Case("during the decay, another floor", d.int(W + 1, S - 1), top, W, S, floor, hint=floor_hint),
            Case("min_lr left at its default", d.int(W + 1, S - 1), top, W, S, hint=floor_hint),
            Case("at total_steps", S, top, W, S, floor, hint=floor_hint),
            Case("long after total_steps", S + d.int(1, 500), top, W, S, floor),
            Case("no warm-up", d.int(0, S - 1), top, 0, S, floor)]


@exercise("06.lr_at", reference=ref.lr_at, cases=_lr_cases)
def check_lr_at(c: Check) -> None:
    max_lr, warmup, total, min_lr = 1e-3, 10, 100, 1e-4
    for step in [0, 1, 5, 9, 10, 11, 30, 55, 80, 99, 100, 150]:
        out = c.number(c.call(step, max_lr, warmup, total, min_lr), f"lr_at({step})")
        want = ref.lr_at(step, max_lr, warmup, total, min_lr)
        c.diagnose(out, _lr_variants(step, max_lr, warmup, total, min_lr),
                   f"lr_at({step}) = {out:.6g}, expected {want:.6g}", rtol=1e-9, correct=want)
        where = "during the warm-up" if step < warmup else "after the last step" if step >= total else "during the decay"
        c.expect(abs(out - want) <= 1e-12, f"lr_at({step}) = {out:.6g}, expected {want:.6g} ({where})",
                 "warm-up: max_lr·(step+1)/warmup_steps; then min_lr + ½(1 + cos(π·progress))·(max_lr - min_lr); "
                 "from total_steps on: min_lr")
    out = c.number(c.call(0, 1.0, 0, 10, 0.0, error_hints={
        "division by zero": "with warmup_steps = 0 there is no warm-up: start the cosine at once"}), "lr_at(0)")
    c.expect(abs(out - 1.0) < 1e-12, f"without warm-up, lr_at(0) = {out}, expected max_lr",
             "with warmup_steps = 0 the cosine starts at step 0, at max_lr")


def _grads(seed: int, scale: float) -> list[torch.nn.Parameter]:
    params = []
    for i, shape in enumerate([(3, 4), (5,), (2, 2)]):
        p = torch.nn.Parameter(_randn(*shape, seed=seed + i, dtype=torch.float64))
        p.grad = _randn(*shape, seed=seed + 10 + i, dtype=torch.float64) * scale
        params.append(p)
    params.append(torch.nn.Parameter(torch.zeros(2, dtype=torch.float64)))  # no gradient (unused, frozen)
    return params


def clip_and_report(fn, grads: list, max_norm: float):
    """Harness: parameters with these gradients (None: no gradient), handed to ``fn`` as a generator, as
    model.parameters() is; returns the norm ``fn`` returned (as a number) and the gradients afterwards."""
    params = [torch.nn.Parameter(torch.zeros(2) if g is None else torch.zeros_like(g)) for g in grads]
    for p, g in zip(params, grads):
        p.grad = None if g is None else g.clone()
    total = fn((p for p in params), max_norm)
    return (total if number(total) is None else number(total)), [p.grad for p in params]


CLIP_ERRORS = {"NoneType": "a parameter without a gradient has p.grad = None: skip it",
               "assign a gradient with dtype": "keep each gradient's dtype: scale it in place, p.grad.mul_(factor)"}


def _clip_cases(d: Draw) -> list[Case]:
    def grads(n, dtype=torch.float32, scale=1.0):
        return [d.randn(*(d.int(1, 6) for _ in range(d.int(1, 3))), dtype=dtype, scale=scale) for _ in range(n)]

    return [Case("another max_norm, several parameters", grads(d.int(3, 6), scale=3.0), d.choice([0.25, 0.5, 2.0]),
                 hint="clip to max_norm, the argument: max_norm / (total_norm + 1e-6)"),
            Case("a parameter without a gradient among others", [*grads(2), None, *grads(1)], 0.5,
                 hint="a parameter whose p.grad is None keeps it: skip it, do not give it a gradient"),
            Case("a global norm below max_norm", grads(3, scale=0.01), 1.0),
            Case("float64 gradients", grads(3, torch.float64, scale=2.0), 1.0),
            Case("a single parameter", grads(1, scale=5.0), 1.0)]


@exercise("06.clip_grad_norm", reference=ref.clip_grad_norm, cases=_clip_cases, via=clip_and_report,
          error_hints=CLIP_ERRORS)
def check_clip_grad_norm(c: Check) -> None:
    for scale, max_norm in [(3.0, 1.0), (0.05, 1.0)]:
        mine, theirs = _grads(0, scale), _grads(0, scale)
        before = [p.grad.clone() for p in mine[:3]]
        total = c.call(iter(mine), max_norm, error_hints=CLIP_ERRORS, copy_args=False)  # a generator, as model.parameters()
        c.expect(isinstance(total, torch.Tensor), f"you returned a {type(total).__name__}, expected a tensor",
                 "return the norm as a torch.Tensor, as the signature says (and clip_grad_norm_ does): total, not total.item()")
        want = torch.nn.utils.clip_grad_norm_(theirs, max_norm)
        true_norm = torch.linalg.vector_norm(torch.cat([g.flatten() for g in before]))
        total = float(c.number(total, "the norm you returned"))
        clipping = float(true_norm) > max_norm
        if clipping and all(torch.equal(p.grad, b) for p, b in zip(mine, before)):
            c.fail("the gradients were not changed",
                   "scale p.grad in place (p.grad.mul_(factor)); if parameters is a generator such as model.parameters(), "
                   "make it a list first: a generator can be walked only once")
        c.expect(abs(total - float(true_norm)) < 1e-9 * float(true_norm) or not math.isclose(total, max_norm, rel_tol=1e-5),
                 f"you returned {total:.4f}, the norm after clipping", "return the norm before clipping: that is what to log")
        c.diagnose(total, {"the global norm is sqrt(sum of every squared gradient entry), not the sum of norms":
                           sum(float(torch.linalg.vector_norm(b)) for b in before)},
                   f"you returned {total:.4f}, the sum of the per-tensor norms", rtol=1e-9)
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


# ------------------------------------------------------------------------------------------- steps


def _tiny_model(seed: int = 0, vocab_size: int = 40) -> Decoder:
    cfg = DecoderConfig(vocab_size=vocab_size, dim=16, n_layers=1, n_heads=2, n_kv_heads=1, hidden_dim=32, max_seq_len=16)
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


def train_and_report(fn, seed: int, vocab_size: int, batches: list, max_norm: float, lr: float,
                     adamw: bool = False, dtype: str = "float32"):
    """Harness: ``fn`` (a training step) on a fresh tiny decoder and optimiser, one call per (x, y) of
    ``batches``; returns what each call returned (numbers as numbers) and the weights afterwards."""
    model = _tiny_model(seed, vocab_size).to(getattr(torch, dtype))
    opt = (torch.optim.AdamW if adamw else torch.optim.SGD)(model.parameters(), lr=lr)
    outs = [fn(model, opt, x, y, max_norm) for x, y in batches]
    return [out if number(out) is None else number(out) for out in outs], model.state_dict()


def _step_cases(d: Draw) -> list[Case]:
    def batches(n, B, T, V=40):
        return [(d.randint(0, V, (B, T)), d.randint(0, V, (B, T))) for _ in range(n)]

    V = d.int(41, 90)
    return [Case("a batch of 1", d.int(0, 99), 40, batches(2, 1, d.int(3, 12)), 0.05, 0.5),
            Case("another vocabulary and batch, AdamW", d.int(0, 99), V, batches(3, d.int(2, 5), d.int(2, 9), V),
                 d.choice([0.1, 0.5]), 1e-2, adamw=True),
            Case("a float64 model", d.int(0, 99), 40, batches(2, 2, 6), 0.05, 0.5, dtype="float64",
                 hint="leave the model's dtype as it is: no model.float() or .to(...) in the step")]


@exercise("06.train_step", reference=ref.train_step, cases=_step_cases, via=train_and_report, rtol=1e-4, atol=1e-6)
def check_train_step(c: Check) -> None:
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
        out = c.number(out, "the loss you returned")
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
    c.expect(same(want), "after two steps your parameters differ from zero_grad → loss → backward → clip → step", "")


# ------------------------------------------------------------------------------------- over-fitting

MASK_HINT = "keep an entry where torch.rand(x.shape, generator=generator) >= p: one float32 draw of x's shape"


def _dropout_cases(d: Draw) -> list[Case]:
    x, seed = d.randn(d.int(3, 8), d.int(3, 8)), d.int(0, 2**31)
    draws = torch.rand(x.shape, generator=_gen(seed)).flatten()
    p = float(draws[(draws - d.float(0.2, 0.5)).abs().argmin()])  # the mask's own draw at one entry: a tie with p
    return [Case("a 3-D input", d.randn(d.int(2, 4), d.int(2, 6), d.int(3, 9)), d.choice([0.1, 0.5]), True,
                 _gen(d.int(0, 2**31)), hint=MASK_HINT),
            Case("float64 input", d.randn(d.int(2, 9), 5, dtype=torch.float64), 0.3, True, _gen(d.int(0, 2**31)),
                 hint=MASK_HINT + ", whatever x's dtype"),
            Case("bfloat16 input", d.randn(3, d.int(2, 9), dtype=torch.bfloat16), 0.2, True, _gen(d.int(0, 2**31)),
                 hint="return x's dtype: a float32 mask times a bfloat16 x gives float32 (use the bool mask, or .to(x.dtype))"),
            Case("a 1-D input in evaluation mode", d.randn(d.int(1, 9)), 0.5, False, _gen(d.int(0, 2**31))),
            Case("p equal to one of the mask's draws", x, p, True, _gen(seed),
                 hint=MASK_HINT + " (>=, not >: a draw equal to p is kept)")]


@exercise("06.dropout", reference=ref.dropout, cases=_dropout_cases)
def check_dropout(c: Check) -> None:
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
    evaluated = c.call(x, p, False, _gen(1))
    c.expect(isinstance(evaluated, torch.Tensor) and torch.equal(evaluated, x),
             "with training=False the input came back changed", "at evaluation time dropout is the identity")
    c.expect(torch.equal(c.call(x, 0.0, True, _gen(1)), x), "with p = 0 the input came back changed",
             "nothing is dropped when p = 0")
    c.expect(torch.equal(c.call(x, p, True, _gen(7)), c.call(x, p, True, _gen(7))),
             "two calls with generators seeded alike dropped different entries",
             "draw the mask with torch.rand(x.shape, generator=generator)")


STRICT_HINT = ("a loss improves only if it is strictly below best - min_delta: a loss equal to the best, or better "
               "by exactly min_delta, is no improvement")


def _stop_cases(d: Draw) -> list[Case]:
    # every loss and min_delta is a multiple of 1/8, so that best - min_delta and best - loss are exact
    best, delta = d.choice([4.0, 3.5, 2.75]), d.choice([0.125, 0.25, 0.5])
    walk = [d.int(8, 40) / 8 for _ in range(d.int(4, 12))]
    return [Case("min_delta > 0 and a later loss better than the best by more than min_delta",
                 [5.0, best, best + 0.25, best - delta - 0.125], 2, delta,
                 hint="min_delta is an amount of loss, not a fraction: a loss below best - min_delta is an improvement"),
            Case("losses equal to the best", [5.0, best, best, best], 2, 0.0, hint=STRICT_HINT),
            Case("an improvement of exactly min_delta", [5.0, best, best - delta, best + 0.5], 2, delta, hint=STRICT_HINT),
            Case("another history and patience", walk, d.int(1, 4), d.choice([0.0, 0.125])),
            Case("another history, patience 1", walk, 1, 0.0)]


def _stop_answer(got, want: bool) -> str | None:
    try:
        return None if bool(got) == want else "you said " + ("stop" if bool(got) else "go on") + ", wrongly"
    except (TypeError, ValueError, RuntimeError):
        return f"you returned {type(got).__name__}, expected True or False"


@exercise("06.should_stop", reference=ref.should_stop, cases=_stop_cases, compare=_stop_answer)
def check_should_stop(c: Check) -> None:
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


# --------------------------------------------------------------------------------------------- LoRA


def _lora_case(seed: int, out_f: int = 8, in_f: int = 12, r: int = 3):
    W, b = _randn(out_f, in_f, seed=seed, dtype=torch.float64), _randn(out_f, seed=seed + 1, dtype=torch.float64)
    A, B = _randn(r, in_f, seed=seed + 2, dtype=torch.float64), _randn(out_f, r, seed=seed + 3, dtype=torch.float64)
    return W, b, A, B


def _lora_weights(d: Draw, out_f: int, in_f: int, r: int, dtype=torch.float32, whole=False):
    """W, b, A, B; ``whole``: entries in {-1, 0, 1}, so that every product and sum is exact even in bfloat16."""
    draw = (lambda *s: d.randint(-1, 2, s).to(dtype)) if whole else (lambda *s: d.randn(*s, dtype=dtype))
    return draw(out_f, in_f), draw(out_f), draw(r, in_f), draw(out_f, r)


INT_DIV_HINT = "alpha / r is a true division: alpha // r floors it (8 // 3 = 2, not 2.67)"
RANK_HINT = "r is A.shape[0]: the rank changes from layer to layer, scale by alpha / A.shape[0]"


def _lora_cases(d: Draw) -> list[Case]:
    o, i = d.int(2, 9), d.int(2, 8)
    W, b, A, B = _lora_weights(d, o, i, 1)
    W2, b2, A2, B2 = _lora_weights(d, o, i, min(o, i), torch.float64)
    Wh, bh, Ah, Bh = _lora_weights(d, o, i, 2, torch.bfloat16, whole=True)
    return [Case("a batch of 1, other sizes", d.randn(1, d.int(1, 6), i + 1), *_lora_weights(d, o + 2, i + 1, 3), 6.0),
            Case("rank 1", d.randn(2, d.int(1, 6), i), W, b, A, B, d.float(1.0, 32.0), hint=RANK_HINT),
            Case("a 4-D input, float64, no bias, full rank", d.randn(2, d.int(1, 3), d.int(1, 4), i, dtype=torch.float64),
                 W2, None, A2, B2, 2.0 * d.int(1, 8)),
            Case("bfloat16, whole-number entries", d.randint(-1, 2, (d.int(1, 3), i)).to(torch.bfloat16), Wh, bh, Ah, Bh, 4.0)]


# rtol, atol: forming W + (alpha / r) B A first rounds differently, and is right too
@exercise("06.lora_linear", reference=lora.lora_linear, cases=_lora_cases, rtol=1e-4, atol=1e-5)
def check_lora_linear(c: Check) -> None:
    W, b, A, B = _lora_case(0)
    x = _randn(2, 5, 12, seed=9, dtype=torch.float64)
    alpha, r = 8.0, A.shape[0]
    shape_hint = "A is (r, in) and B is (out, r): x Aᵀ is (..., r), then times Bᵀ gives (..., out)"
    hints = {"cannot be multiplied": shape_hint, "size of tensor a": shape_hint, "must match the size": shape_hint}
    out = c.call(x, W, b, A, B, alpha, error_hints=hints)
    c.expect_tensor(out, shape=(2, 5, 8), dtype=x.dtype, name="lora_linear(x, ...)")
    base, adapter = x @ W.T + b, x @ A.T @ B.T
    want = lora.lora_linear(x, W, b, A, B, alpha)
    c.diagnose(out, {
        "scale the adapter by alpha / r": base + adapter,
        "the scale is alpha / r, not alpha": base + alpha * adapter,
        "the scale is alpha / r, not r / alpha": base + r / alpha * adapter,
        "r is A.shape[0] (A is (r, in)), not A.shape[1]": base + alpha / A.shape[1] * adapter,
        INT_DIV_HINT: base + (alpha // r) * adapter,
        "keep the frozen layer: the adapter is added to x Wᵀ + b": (alpha / r) * adapter,
        "add the bias of the frozen layer": x @ W.T + (alpha / r) * adapter,
    }, "your output matches a known mistake", correct=want)
    c.close(out, want, "lora_linear differs from x Wᵀ + b + (alpha / r) · x Aᵀ Bᵀ", "")
    c.close(c.call(x, W, b, A, torch.zeros_like(B), alpha, error_hints=hints), base,
            "with B = 0 (LoRA's initialisation) the output should equal the frozen layer's", "")
    c.close(c.call(x[0], W, None, A, B, alpha, error_hints=hints), lora.lora_linear(x[0], W, None, A, B, alpha),
            "with bias=None (SmolLM2's projections have no bias) the result is wrong",
            "F.linear(x, weight, bias) accepts bias=None")


def _merge_cases(d: Draw) -> list[Case]:
    o, i = d.int(2, 9), d.int(2, 8)
    W, _, A, B = _lora_weights(d, o, i, 1)
    W2, _, A2, B2 = _lora_weights(d, o, i, min(o, i), torch.float64)
    Wh, _, Ah, Bh = _lora_weights(d, o, i, 2, torch.bfloat16, whole=True)
    Wo, _, Ao, Bo = _lora_weights(d, o + 2, i + 1, 3)
    return [Case("other sizes", Wo, Ao, Bo, 6.0), Case("rank 1", W, A, B, d.float(1.0, 32.0), hint=RANK_HINT),
            Case("float64, full rank", W2, A2, B2, 2.0 * d.int(1, 8)),
            Case("bfloat16, whole-number entries", Wh, Ah, Bh, 4.0)]


@exercise("06.merge_lora", reference=lora.merged_weight, cases=_merge_cases)
def check_merge_lora(c: Check) -> None:
    W, b, A, B = _lora_case(3, out_f=8, in_f=12, r=3)
    alpha, r = 8.0, A.shape[0]
    hints = {"cannot be multiplied": "B A is (out, r) @ (r, in) = (out, in), the shape of W",
             "size of tensor a": "B A is (out, r) @ (r, in) = (out, in), the shape of W"}
    out = c.call(W, A, B, alpha, error_hints=hints)
    c.expect_tensor(out, shape=W.shape, dtype=W.dtype, name="merge_lora(W, A, B, alpha)")
    want = lora.merged_weight(W, A, B, alpha)
    c.diagnose(out, {
        "scale B A by alpha / r, as in the forward pass": W + B @ A,
        "the scale is alpha / r, not alpha": W + alpha * (B @ A),
        "the scale is alpha / r, not r / alpha": W + r / alpha * (B @ A),
        "r is A.shape[0] (A is (r, in)), not A.shape[1]": W + alpha / A.shape[1] * (B @ A),
        INT_DIV_HINT: W + (alpha // r) * (B @ A),
        "add the update to W (W + ΔW), do not subtract it": W - (alpha / r) * (B @ A),
        "the merged weight is W plus the update, not the update alone": (alpha / r) * (B @ A),
    }, "your merged weight matches a known mistake", correct=want)
    c.close(out, want, "the merged weight differs from W + (alpha / r) B A", "")
    x = _randn(4, 12, seed=11, dtype=torch.float64)
    c.close(x @ out.T + b, lora.lora_linear(x, W, b, A, B, alpha),
            "a plain layer with your merged weight does not reproduce the adapted layer's output", "")


# ---------------------------------------------------------------------------------- mixed precision

MEDIAN_HINT = "torch.median's convention: with an even count, the lower of the two middle values, not their mean"
OVERFLOW_HINT = "a value beyond float16's largest finite number (65504) rounds to inf: it is lost too"


def _rounding_variants(w: torch.Tensor, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """What known mistakes return for ``rounding_error(w, dtype)``, as tensors (median, lost)."""
    exact = w.flatten().double()
    rounded = w.flatten().to(dtype).double()
    nonzero = exact != 0
    e, r = exact[nonzero], rounded[nonzero]
    relative = (r - e).abs() / e.abs()
    lost = ((r == 0) | r.isinf()).double().mean().item()
    median = relative.median().item()
    variants = {
        "the median, not the mean: a few entries flushed to 0 (relative error 1) would dominate the mean":
            (relative.mean().item(), lost),
        "the error relative to the weight: divide |w.to(dtype) - w| by |w|": ((r - e).abs().median().item(), lost),
        "divide by the original |w|, not by the rounded value (which may be 0)":
            (((r - e).abs() / r.abs()).median().item(), lost),
        MEDIAN_HINT: (relative.quantile(0.5).item(), lost),
        "count only the entries that were not 0: a weight that is 0 in float32 is not lost":
            (median, ((rounded == 0) | rounded.isinf()).double().mean().item()),
        "the fraction lost is over the entries that are not 0, not over all entries":
            (median, ((r == 0) | r.isinf()).double().sum().item() / exact.numel()),
        "return the fraction of entries lost, not their number": (median, float(((r == 0) | r.isinf()).sum())),
        "compute the error in float64 (or float32): stored in 16 bits, the error is itself rounded":
            (float(torch.tensor(median).to(dtype)), lost),
    }
    return {hint: torch.tensor(pair) for hint, pair in variants.items()}


ROUNDED_HINT = ("an entry is lost when its rounded value, w.to(dtype), is 0 or ±inf: a threshold on w itself misses "
                "what rounding does near the format's limits (and bfloat16 has float32's range)")


def _as_pair(c: Check, out, what: str) -> tuple[float, float]:
    c.expect(isinstance(out, (tuple, list)) and len(out) == 2,
             f"{what} returned {type(out).__name__}, expected a tuple (median relative error, fraction lost)",
             "return two numbers: median, lost")
    c.expect(all(isinstance(v, float) for v in out), f"{what} returned {[type(v).__name__ for v in out]}, expected two "
             "Python floats", ".item() turns a 0-d tensor into a Python float")
    return c.number(out[0], f"the median relative error of {what}"), c.number(out[1], f"the fraction lost of {what}")


def _rounding_cases(d: Draw) -> list[Case]:
    def weights(n, dtype=torch.float32, scale=0.02):
        w = d.randn(n, dtype=torch.float64, scale=scale)
        w[d.randint(0, n, (max(1, n // 20),))] = 0.0  # zeros are skipped
        return w.to(dtype)

    def near_limits(low: float, high: float) -> torch.Tensor:
        """Ordinary weights and a few in [low, high], both signs: where rounding decides what is lost."""
        edge = torch.tensor([low, high, -low]).double()
        edge = torch.cat([edge, low + (high - low) * d.rand(3, dtype=torch.float64)])
        return torch.cat([d.randn(d.int(10, 40), dtype=torch.float64, scale=0.02), edge]).float()

    n = 2 * d.int(20, 200) + 1
    big = weights(n, scale=6e4)  # about a third beyond 65504
    return [Case("another shape, rounded to bfloat16", weights(n).reshape(-1, 1) * d.float(0.5, 2), torch.bfloat16),
            Case("values beyond float16's range", big, torch.float16, hint=OVERFLOW_HINT),
            Case("bfloat16 weights with tiny entries, rounded to float16", weights(n, scale=1e-6).to(torch.bfloat16),
                 torch.float16),
            Case("float64 weights rounded to float32", weights(n, torch.float64), torch.float32,
                 hint="compare the rounded weights with w itself, in float64: w.float() is already a rounding of "
                      "float64 weights"),
            Case("float16 weights rounded to bfloat16", weights(n, torch.float16), torch.bfloat16),
            Case("an even number of nonzero entries", torch.cat([d.randn(2 * d.int(10, 100)) * 0.02]), torch.float16,
                 hint=MEDIAN_HINT),
            Case("bfloat16 weights far beyond float16's range", weights(n, scale=1e6), torch.bfloat16,
                 hint=ROUNDED_HINT),
            Case("float16 weights just above its largest value", near_limits(65504.0, 65519.0), torch.float16,
                 hint=ROUNDED_HINT),
            Case("float16 weights around half its smallest subnormal", near_limits(2.0**-25, 2.0**-24), torch.float16,
                 hint=ROUNDED_HINT)]


@exercise("06.rounding_error", reference=mixed_precision.rounding_error, cases=_rounding_cases, rtol=1e-5)
def check_rounding_error(c: Check) -> None:
    w = _randn(31, 63, seed=5) * 0.02  # 1,953 entries, like a trained weight matrix
    w[0, :8] = torch.tensor([0.0, 0.0, 0.0, 1e-9, 2e-8, 3e-7, 1e-6, 4e-5])  # zeros, and values that fp16 loses
    for dtype in (torch.bfloat16, torch.float16):
        out = _as_pair(c, c.call(w, dtype), f"rounding_error(w, {dtype})")
        want = mixed_precision.rounding_error(w, dtype)
        c.expect(not math.isnan(out[0]), f"rounding_error(w, {dtype}) gave a NaN median",
                 "skip the entries that are 0: their relative error is 0 / 0 = NaN")
        c.diagnose(torch.tensor(out), _rounding_variants(w, dtype), f"rounding_error(w, {dtype}) matches a known mistake",
                   rtol=1e-5, correct=torch.tensor(want))
        c.expect(math.isclose(out[0], want[0], rel_tol=1e-5),
                 f"the median relative error in {dtype} is {out[0]:.4g}, expected {want[0]:.4g}",
                 "|w.to(dtype) - w| / |w| over the entries that are not 0, then its median")
        c.expect(math.isclose(out[1], want[1], rel_tol=1e-6, abs_tol=1e-12),  # a float32 mean is fine
                 f"the fraction lost in {dtype} is {out[1]:.7g}, expected {want[1]:.7g}",
                 "lost: an entry that is not 0 but rounds to 0 or to ±inf")
    even = _randn(40, seed=6) * 0.02  # 40 entries: the median is the lower of the two middle ones
    out = _as_pair(c, c.call(even, torch.float16), "rounding_error on 40 entries")
    want = mixed_precision.rounding_error(even, torch.float16)
    c.diagnose(torch.tensor(out), _rounding_variants(even, torch.float16),
               "rounding_error on 40 entries matches a known mistake", rtol=1e-5, correct=torch.tensor(want))
    c.expect(math.isclose(out[0], want[0], rel_tol=1e-5), f"the median of 40 errors is {out[0]:.4g}, expected {want[0]:.4g}",
             MEDIAN_HINT)
    same = _as_pair(c, c.call(w, torch.float32), "rounding_error(w, torch.float32)")
    c.expect(same == (0.0, 0.0), f"rounding float32 weights to float32 gave {same}, expected (0.0, 0.0)",
             "a weight that is already in the format does not change")


GROWTH = dict(growth_factor=2.0, backoff_factor=0.5, growth_interval=3)
SKIP_HINT = "when any gradient is inf or NaN, skip the step: return the parameters unchanged"


def _scaler_oracle(params: list[torch.Tensor], grads: list[torch.Tensor], lr: float, scale: float, tracker: int,
                   **growth) -> tuple[list[torch.Tensor], float, int]:
    """torch.amp.GradScaler and torch.optim.SGD on the same state: what one step gives."""
    live = [torch.nn.Parameter(p.clone()) for p in params]
    scaler = torch.amp.GradScaler("cpu", init_scale=scale, growth_factor=growth["growth_factor"],
                                  backoff_factor=growth["backoff_factor"], growth_interval=growth["growth_interval"])
    scaler.load_state_dict({**scaler.state_dict(), "scale": scale, "_growth_tracker": tracker})
    scaler.scale(torch.ones(()))  # creates the scale tensor, as scaling the loss does
    for p, g in zip(live, grads):
        p.grad = g.to(p.dtype)
    scaler.step(torch.optim.SGD(live, lr=lr))
    scaler.update()
    return [p.detach() for p in live], scaler.get_scale(), scaler.state_dict()["_growth_tracker"]


def _scaled_variants(params, grads, lr, scale, tracker, growth_factor, backoff_factor, growth_interval) -> dict:
    """What known mistakes give for the parameters, all of them in one flat vector."""
    def update(unscale):
        return torch.cat([(p - lr * unscale(g, p)).flatten() for p, g in zip(params, grads)])

    return {
        "divide each gradient by the scale before the step (unscale): it was computed from loss × scale":
            update(lambda g, p: g.to(p.dtype)),
        "convert each gradient to the parameter's dtype before dividing by the scale: in float16, grad / scale "
        "underflows": update(lambda g, p: (g / scale).to(p.dtype)),
    }


def _scaled_grads(seed: int, scale: float, shapes, bad: str | None = None, where: int = 0) -> list[torch.Tensor]:
    """Small gradients (~1e-6, like a real model's) times the loss scale, in float16; ``bad``: "inf" or "nan"
    in the tensor ``where``."""
    grads = [(_randn(*s, seed=seed + i) * 1e-6 * scale).half() for i, s in enumerate(shapes)]
    if bad is not None:
        grads[where].view(-1)[seed % grads[where].numel()] = float(bad)
    return grads


def _scaled_cases(d: Draw) -> list[Case]:
    def state(dtype=torch.float32, n=2):
        shapes = [tuple(d.int(1, 6) for _ in range(d.int(1, 2))) for _ in range(n)]
        params = [d.randn(*s, dtype=dtype, scale=1e-4) for s in shapes]
        return params, shapes

    params, shapes = state()
    s = 2.0 ** d.int(8, 16)
    grads = _scaled_grads(d.int(0, 999), s, shapes)
    interval = d.int(2, 9)
    factors = dict(growth_factor=d.choice([1.5, 3.0, 4.0]), backoff_factor=d.choice([0.25, 0.125]),
                   growth_interval=interval)
    p64, shapes64 = state(torch.float64, 3)
    return [
        Case("a step that completes growth_interval good steps, another growth_factor", params, grads, 1.0, s,
             interval - 1, **factors, hint="use growth_factor and backoff_factor, the arguments"),
        Case("an overflow, another backoff_factor", params, _scaled_grads(d.int(0, 999), s, shapes, "inf", 1), 1.0, s,
             d.int(0, interval - 1), **factors, hint="use growth_factor and backoff_factor, the arguments"),
        Case("float32 gradients (from autocast), a good step", params, [g.float() * 3 for g in grads], 0.5, s,
             d.int(0, interval - 2), **factors),
        Case("float64 parameters, three tensors, a NaN in the last", p64,
             _scaled_grads(d.int(0, 999), s, shapes64, "nan", 2), 1.0, s, 0, **factors),
        Case("float64 parameters, default factors and interval", p64, _scaled_grads(d.int(0, 999), s, shapes64), 1.0,
             s, d.int(0, 1998)),
        Case("large finite float16 gradients, whose sum would overflow in float16", params,
             [torch.full(sh, 6e4 * (1 - 2 * (i % 2)), dtype=torch.float16) for i, sh in enumerate(shapes)], 1e-9, s,
             0, **factors, hint="look for inf and NaN in the gradients themselves (torch.isfinite on every entry): a "
                                "float16 sum of finite values can overflow"),
    ]


@exercise("06.scaled_step", reference=mixed_precision.scaled_step, cases=_scaled_cases, rtol=1e-5, atol=1e-10)
def check_scaled_step(c: Check) -> None:
    shapes, lr = [(4, 3), (5,)], 1.0
    params = [_randn(*s, seed=20 + i) * 1e-4 for i, s in enumerate(shapes)]
    scale, tracker = 2.0**14, 0
    # (what goes wrong in this step, where): growth_interval is 3, so steps 3 and 9 would complete it
    plan = [None, None, ("inf", 0), None, None, None, None, ("inf", 1), None, ("nan", 0), None, None, None]
    for step, bad in enumerate(plan, 1):
        grads = _scaled_grads(100 + step, scale, shapes, *(bad or (None,)))
        out = c.call(params, grads, lr, scale, tracker, **GROWTH)
        c.expect(isinstance(out, tuple) and len(out) == 3,
                 f"scaled_step returned {type(out).__name__}, expected (params, scale, growth_tracker)", "return all three")
        new, new_scale, new_tracker = out
        c.expect(isinstance(new, (list, tuple)) and len(new) == len(params),
                 f"the parameters you returned are a {type(new).__name__}, expected a list of {len(params)} tensors",
                 "return one new tensor per parameter, in order")
        for i, (t, p) in enumerate(zip(new, params)):
            c.expect_tensor(t, shape=p.shape, name=f"parameter {i}")
            c.expect(t.dtype == p.dtype, f"parameter {i} has dtype {t.dtype}, expected {p.dtype}",
                     "keep the parameters in their own dtype (float32 master weights): update them in float32, "
                     "where a small update is not rounded away")
        c.expect(isinstance(new_scale, float) and isinstance(new_tracker, int) and not isinstance(new_tracker, bool),
                 f"the scale and the growth tracker are {type(new_scale).__name__} and {type(new_tracker).__name__}, "
                 "expected a Python float and int", "the scaler's state is plain numbers: float(...), int(...)")
        new_scale, new_tracker = c.number(new_scale, "the scale"), c.number(new_tracker, "the growth tracker")
        want, want_scale, want_tracker = _scaler_oracle(params, grads, lr, scale, tracker, **GROWTH)
        where = f"at step {step} (" + (f"{bad[0]} in gradient {bad[1]}" if bad else "finite gradients") + ")"
        if bad:
            if not all(torch.equal(t, p) for t, p in zip(new, params)):
                hint = ("NaN counts too: torch.isfinite is False for inf and NaN" if bad[0] == "nan"
                        else "look at every gradient tensor, not only the first" if bad[1] else SKIP_HINT)
                c.fail(f"{where} you changed the parameters", hint)
            c.expect(new_tracker == 0, f"{where} the growth tracker is {new_tracker}, expected 0",
                     "a skipped step resets growth_tracker to 0: the good steps must be consecutive")
            c.expect(new_scale < scale, f"{where} the scale went from {scale:g} to {new_scale:g}, expected {want_scale:g}",
                     "a skipped step is not a good step: it never grows the scale, it multiplies it by backoff_factor")
            c.expect(new_scale == want_scale, f"{where} the scale is {new_scale:g}, expected {want_scale:g}",
                     "on an overflow, multiply the scale by backoff_factor")
        else:
            c.diagnose(torch.cat([t.flatten() for t in new]), _scaled_variants(params, grads, lr, scale, tracker, **GROWTH),
                       f"{where} your parameters match a known mistake", correct=torch.cat([t.flatten() for t in want]))
            for i, (t, w) in enumerate(zip(new, want)):
                c.close(t, w, f"{where} parameter {i} differs from GradScaler + SGD's",
                        "param - lr · grad / scale, with the gradient converted to the parameter's dtype first",
                        rtol=1e-5, atol=1e-10)
            if tracker + 1 == GROWTH["growth_interval"] and new_scale == scale:
                c.fail(f"{where} completed {tracker + 1} good steps in a row, and the scale stayed {scale:g}", "when growth_tracker + 1 reaches growth_interval (the argument), multiply the "
                       "scale by growth_factor and start counting from 0")
            if new_tracker == tracker + 1 == GROWTH["growth_interval"]:
                c.fail(f"{where} the growth tracker reached {new_tracker}",
                       "after growing the scale, reset growth_tracker to 0: the next growth needs growth_interval new good steps")
            c.expect(new_tracker == want_tracker, f"{where} the growth tracker is {new_tracker}, expected {want_tracker}",
                     "count the good steps: growth_tracker + 1, and 0 again when it reaches growth_interval")
            c.expect(new_scale == want_scale, f"{where} the scale is {new_scale:g}, expected {want_scale:g}",
                     "grow the scale (× growth_factor) only when growth_tracker + 1 reaches growth_interval")
        params, scale, tracker = list(new), new_scale, new_tracker
