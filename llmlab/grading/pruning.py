"""Checks for notebook 10_pruning."""
from __future__ import annotations

import torch

from llmlab.grading.core import Case, Check, Draw, exercise, randn, same
from llmlab.prune import magnitude, nm, structured

_EXACT_K = ("every row (group) loses exactly k weights, even where scores tie: pick k indices (topk, argsort), "
            "do not compare the scores with a threshold")
_SIGNED_HINT = ("rank the scores as given, with their sign: the caller passes |W| or Wanda's scores already, "
                "so do not take .abs() (a score of -5 is the lowest)")
_ROUND_HINT = "k = round(sparsity * n) with Python's round, which sends halves to even (2.5 -> 2), not int(x + 0.5)"


def _mask(c: Check, mask, shape: tuple, name: str = "mask") -> torch.Tensor:
    c.expect_tensor(mask, shape=shape, name=name)
    c.expect(mask.dtype == torch.bool, f"{name} has dtype {mask.dtype}, expected torch.bool",
             "return a bool mask, True where the weight is kept (e.g. scores >= threshold, or a scatter into a bool tensor)")
    return mask


def _not_inverted(c: Check, mask: torch.Tensor, want: torch.Tensor) -> None:
    if torch.equal(mask, ~want):
        c.fail("the mask is the exact opposite of the expected one",
               "True means *kept*: the mask is False at the weights that are pruned")


def with_scores(fn, scores, *args):
    """Harness for the hidden cases: the learner's mask(s), then the scores and arguments they came from."""
    return fn(scores, *args), scores, *args


def _tie_free(group):
    """compare() for masks where equal scores may be pruned in either order: ``group(t, expected)`` views a
    mask or the scores as (groups, entries); each group must prune as many as expected, none above a kept one."""
    def compare(actual, expected) -> str | None:
        why = same(actual[0], expected[0], name="the mask", reveal=False)
        if why is None or "wrong values" not in why:
            return why
        g, w, s = (group(t, expected) for t in (actual[0], expected[0], expected[1]))
        if g.dtype != torch.bool:
            return why
        if torch.equal(g, ~w):
            return "the mask is inverted (True means *kept*: False at the pruned weights)"
        if not torch.equal(g.sum(1), w.sum(1)):
            return "a row or group keeps a different number of weights than expected"
        s = s.double()
        pruned_max = s.masked_fill(g, float("-inf")).amax(1)
        kept_min = s.masked_fill(~g, float("inf")).amin(1)
        return why if bool((pruned_max > kept_min).any()) else None
    return compare


def _tied(d: Draw, *shape: int) -> torch.Tensor:
    """Scores with many exact ties: a few distinct values."""
    return d.randint(0, 4, shape).float() * 0.25 + 0.5


# ------------------------------------------------------------------------------------------ magnitude


def _prune_cases(d: Draw) -> list[Case]:
    N = d.int(3, 6)
    rows = d.rand(N, 37) * torch.logspace(-2, 2, N)[:, None]
    return [
        Case("another width and sparsity", rows, d.float(0.2, 0.8)),
        Case("sparsity * K exactly halfway (2.5 and 7.5)", d.rand(N, 10), 0.25, hint=_ROUND_HINT),
        Case("sparsity * K exactly halfway (1.5)", d.rand(N, 6), 0.25, hint=_ROUND_HINT),
        Case("many equal scores", _tied(d, N, 16), 0.5, hint=_EXACT_K),
        Case("float64 scores", d.rand(N, 12, dtype=torch.float64), 0.4),
        Case("scores with negative values", d.randn(N, 9, scale=3.0), 1 / 3, hint=_SIGNED_HINT),
    ]


@exercise("10.prune_mask", reference=magnitude.prune_mask, cases=_prune_cases, via=with_scores,
          compare=_tie_free(lambda t, e: t))
def check_prune_mask(c: Check) -> None:
    scores = randn(16, 40, seed=1).abs() * torch.logspace(-2, 1, 16)[:, None]  # rows of very different sizes
    for sparsity in (0.37, 0.5, 0.0):  # 0.37 first: at 0.5 pruning the largest is the exact opposite mask
        mask = _mask(c, c.call(scores, sparsity), scores.shape)
        want = magnitude.prune_mask(scores, sparsity)
        _not_inverted(c, mask, want)
        if sparsity and torch.equal(mask, magnitude.prune_mask(-scores, sparsity)):
            c.fail(f"at sparsity {sparsity} the mask removes the largest scores",
                   "prune the *lowest* scores (topk with largest=False): large weights matter most")
        if sparsity and 2 * round(sparsity * 40) != 40 and torch.equal(mask, ~magnitude.prune_mask(-scores, sparsity)):
            c.fail(f"at sparsity {sparsity} the mask keeps only the {round(sparsity * 40)} largest scores of each row",
                   "sparsity is the share *removed*: keep K - round(sparsity * K) weights (True = kept)")
        if sparsity and torch.equal(mask, magnitude.prune_mask(scores, sparsity, "tensor")):
            c.fail(f"at sparsity {sparsity} some rows lose almost everything and others nothing",
                   "one threshold per tensor is not per row: find the k lowest scores within each row (dim=1)")
        kept = mask.sum(1)
        if sparsity and bool((kept == 40 - int(sparsity * 40)).all()) and int(sparsity * 40) != round(sparsity * 40):
            c.fail(f"at sparsity {sparsity} each row prunes {int(sparsity * 40)} of 40 weights, expected {round(sparsity * 40)}",
                   "prune k = round(sparsity * K) weights per row (round, as torch.nn.utils.prune does), not int()")
        c.expect(bool((kept == kept[0]).all()), f"rows keep different numbers of weights: {kept.unique().tolist()}",
                 "per-row pruning removes the same number of weights from every row")
        c.expect(torch.equal(mask, want), f"the mask at sparsity {sparsity} differs from the expected one",
                 "False at the round(sparsity * K) lowest scores of each row, True elsewhere")


def _global_cases(d: Draw) -> list[Case]:
    shapes = [(d.int(2, 9), d.int(2, 9)) for _ in range(d.int(2, 4))]
    scales = [10.0 ** d.int(-2, 1) for _ in shapes]
    return [
        Case(f"{len(shapes)} matrices of other shapes", {f"m{i}": d.rand(*s) * k for i, (s, k) in enumerate(zip(shapes, scales))},
             d.float(0.2, 0.8)),
        Case("one matrix, sparsity * total exactly halfway (2.5)", {"w": d.rand(2, 5)}, 0.25, hint=_ROUND_HINT),
        Case("many equal scores", {"a": torch.full((4, 6), 0.5), "b": _tied(d, 3, 5)}, 0.5, hint=_EXACT_K),
    ]


def _flat(t: dict, expected) -> torch.Tensor:
    return torch.cat([t[k].reshape(-1) for k in expected[1]])[None]


@exercise("10.global_masks", reference=magnitude.global_masks, cases=_global_cases, via=with_scores,
          compare=_tie_free(_flat))
def check_global_masks(c: Check) -> None:
    scores = {"small": randn(8, 16, seed=2).abs() * 0.1, "mid": randn(24, 8, seed=3).abs(),
              "big": randn(4, 24, seed=4).abs() * 10}
    out = c.call(scores, 0.6)
    c.expect(isinstance(out, dict) and set(out) == set(scores), f"expected a dict with keys {sorted(scores)}, "
             f"got {type(out).__name__}", "return {name: mask} for every matrix you were given")
    want = magnitude.global_masks(scores, 0.6)
    for name in scores:
        _mask(c, out[name], scores[name].shape, f"mask[{name!r}]")
        _not_inverted(c, out[name], want[name])
    per_matrix = all(torch.equal(out[n], magnitude.prune_mask(s, 0.6, "tensor")) for n, s in scores.items())
    per_row = all(torch.equal(out[n], magnitude.prune_mask(s, 0.6)) for n, s in scores.items())
    if per_matrix or per_row:
        c.fail("every matrix lost 60% of its weights",
               "global pruning uses *one* threshold over all matrices: concatenate all scores, then take the lowest")
    total = sum(int((~m).sum()) for m in out.values())
    c.expect(total == round(0.6 * sum(s.numel() for s in scores.values())),
             f"{total} weights pruned in all, expected {round(0.6 * sum(s.numel() for s in scores.values()))}",
             "prune round(sparsity * total number of weights)")
    for name in scores:
        c.expect(torch.equal(out[name], want[name]), f"the mask of {name!r} differs from the expected one",
                 "False at the lowest scores of all matrices together")


def _ratio_cases(d: Draw) -> list[Case]:
    N, K = d.int(3, 9), d.int(5, 17)
    return [
        Case("a mask that is not magnitude pruning", d.randn(N, K), d.rand(N, K) < d.float(0.2, 0.8),
             hint="use the mask you are given (True = kept), not your own choice of the smallest weights"),
        Case("a mask that removes everything", d.randn(N, K), torch.zeros(N, K, dtype=torch.bool)),
        Case("float64 weights", d.randn(N, K, dtype=torch.float64), d.rand(N, K) < 0.5),
    ]


@exercise("10.weight_change_ratio", reference=magnitude.weight_change_ratio, cases=_ratio_cases)
def check_weight_change_ratio(c: Check) -> None:
    w = randn(12, 20, seed=5)
    mask = magnitude.prune_mask(w.abs(), 0.5)
    r = c.call(w, mask)
    c.expect(isinstance(r, float), f"expected a Python float, got {type(r).__name__}",
             "return float(...) of the ratio, not a tensor")
    removed, norm = torch.linalg.vector_norm(w * ~mask), torch.linalg.vector_norm(w)
    want = float(removed / norm)
    c.diagnose(r, {
        "measure by norm, not by count: ‖W - W⊙M‖ / ‖W‖, not the share of zeros": 0.5,
        "the numerator is the *removed* part W ⊙ (1 - M), not the kept part": float(torch.linalg.vector_norm(w * mask) / norm),
        "use the Frobenius norm (square root of the sum of squares), not its square": want ** 2,
        "divide by ‖W‖_F: the ratio is relative to the whole matrix": float(removed),
    }, f"the ratio is {r:.4f}", correct=want)
    c.expect(abs(r - want) < 1e-5, f"the ratio is {r:.4f}, expected {want:.4f}", "‖W ⊙ (1 - M)‖_F / ‖W‖_F")
    c.expect(abs(float(c.call(w, torch.ones_like(mask)))) < 1e-9, "a mask that keeps everything gives a non-zero ratio",
             "use the mask you are given (True = kept): when it keeps everything, nothing is removed and the ratio is 0")


# ------------------------------------------------------------------------------------------ Wanda and N:M


def wanda_from_inputs(w, x):
    return w.abs() * x.norm(dim=0)


def _wanda_cases(d: Draw) -> list[Case]:
    N, K, T = d.int(3, 9), d.int(17, 30), d.int(5, 12)
    return [Case("another shape (more features than tokens)", d.randn(N, K), d.randn(T, K) * torch.logspace(-1, 1, K)),
            Case("float64 inputs", d.randn(N, 6, dtype=torch.float64), d.randn(T, 6, dtype=torch.float64),
                 hint="compute in the inputs' dtype: float64 activations give float64 norms (no .float() on the way)")]


def _float64_exact(actual, expected) -> str | None:  # float64 all the way agrees to ~1e-16; a float32 norm to ~1e-8
    return same(actual, expected, rtol=1e-12 if expected.dtype == torch.float64 else None, reveal=False)


@exercise("10.wanda_scores", reference=wanda_from_inputs, cases=_wanda_cases, compare=_float64_exact)
def check_wanda_scores(c: Check) -> None:
    w = randn(10, 16, seed=6)
    x = randn(16, 16, seed=7) * torch.logspace(-1, 1, 16)  # as many tokens as features: a wrong axis still broadcasts
    s = c.call(w, x)
    c.expect_tensor(s, shape=w.shape, dtype=w.dtype, name="scores")
    want = w.abs() * x.norm(dim=0)
    c.diagnose(s, {
        "take the norm of each input *feature* over the tokens: x.norm(dim=0), not over each token's features":
            w.abs() * x.norm(dim=1),
        "score |W|: a large negative weight matters as much as a large positive one": w * x.norm(dim=0),
        "Wanda uses the L2 norm ‖X_j‖₂, not its square": w.abs() * x.pow(2).sum(0),
        "Wanda uses the L2 norm of the activations, not their mean absolute value": w.abs() * x.abs().mean(0),
    }, "the scores are wrong", correct=want)
    c.close(s, want, "Wanda scores", "S_ij = |W_ij| * ‖X_j‖₂")


def _nm_cases(d: Draw) -> list[Case]:
    N = d.int(3, 7)
    return [Case(f"{n}:{m} on another shape", d.rand(N, m * d.int(3, 7)), n, m) for n, m in ((2, 4), (1, 2), (3, 8))] + \
        [Case("2:4 with many equal scores", _tied(d, N, 16), 2, 4, hint=_EXACT_K),
         Case("4:4 (keep everything)", d.rand(N, 8), 4, 4),
         Case("2:4 on scores with negative values", d.randn(N, 12, scale=3.0), 2, 4, hint=_SIGNED_HINT)]


@exercise("10.nm_mask", reference=nm.nm_mask, cases=_nm_cases, via=with_scores,
          compare=_tie_free(lambda t, e: t.reshape(-1, e[3])))
def check_nm_mask(c: Check) -> None:
    scores = randn(8, 16, seed=8).abs()
    for n, m in ((1, 4), (2, 4), (4, 8)):  # 1:4 first: at 2:4 keeping the smallest is the exact opposite mask
        mask = _mask(c, c.call(scores, n, m), scores.shape)
        want = nm.nm_mask(scores, n, m)
        _not_inverted(c, mask, want)
        if torch.equal(mask, nm.nm_mask(scores.T.contiguous(), n, m).T):
            c.fail(f"the {n}:{m} groups run down the columns",
                   "groups are m consecutive weights *within a row* (along K, the dimension the matmul sums over)")
        if torch.equal(mask, ~nm.nm_mask(scores, m - n, m)) and n != m - n:
            c.fail(f"the {n}:{m} mask keeps the smallest scores", "keep the n *largest* scores of each group of m")
        if torch.equal(mask, nm.nm_mask(scores, m - n, m)) and n != m - n:
            c.fail(f"the {n}:{m} mask keeps {m - n} of every {m}", f"N:M keeps N = {n} weights of every M = {m}")
        per_group = mask.reshape(8, -1, m).sum(-1)
        c.expect(bool((per_group == n).all()), f"groups keep {per_group.unique().tolist()} weights, expected {n}",
                 "every group of m consecutive weights of a row keeps exactly n")
        c.expect(torch.equal(mask, want), f"the {n}:{m} mask differs from the expected one",
                 "reshape to (N, K // m, m), keep the top n of the last dimension")


# ------------------------------------------------------------------------------------------ structured


def _gram_problem(d: Draw, U: int, D: int, C: int, dtype=torch.float64):
    x = d.randn(6 * U * D, U * D, dtype=dtype) * (d.rand(U, dtype=dtype) * 4 + 0.1).repeat_interleave(D)
    xu = x.reshape(-1, U, D)
    return d.randn(C, U * D, dtype=dtype), torch.einsum("nud,nue->ude", xu, xu)


def _blind_units(d: Draw, U: int, D: int, C: int):
    """Units whose inputs all lie along one direction v_u and whose weights are orthogonal to it: every
    importance is 0, and the computed trace comes out a tiny negative number."""
    v = d.randn(U, D, dtype=torch.float64)
    v = v / v.norm(dim=-1, keepdim=True)
    xu = d.randn(5 * D, U, 1, dtype=torch.float64) * v
    w = d.randn(C, U, D, dtype=torch.float64)
    w = w - (w * v).sum(-1, keepdim=True) * v
    return w.reshape(C, U * D), torch.einsum("nud,nue->ude", xu, xu)


def _importance_cases(d: Draw) -> list[Case]:
    return [Case("another number of units and width", *_gram_problem(d, d.int(6, 9), d.int(2, 5), d.int(4, 9))),
            Case("neurons (D = 1)", *_gram_problem(d, d.int(5, 12), 1, d.int(3, 6))),
            Case("float32 inputs", *_gram_problem(d, 4, 2, 5, torch.float32)),
            Case("units whose weights read only directions their inputs never take", *_blind_units(d, d.int(3, 6), 3, 4),
                 hint="their importance is 0, not NaN: rounding makes the trace a tiny negative number, so clamp it "
                      "at 0 before the square root")]


def _close_to_zero(actual, expected) -> str | None:  # a trace that is 0 comes out as ±1e-15, its root as 1e-7
    return same(actual, expected, rtol=1e-5, atol=1e-6, reveal=False)


@exercise("10.unit_importance", reference=structured.unit_importance, cases=_importance_cases, compare=_close_to_zero)
def check_unit_importance(c: Check) -> None:
    U, D, C = 5, 3, 7
    g = torch.Generator().manual_seed(9)
    x = torch.randn(40, U * D, generator=g, dtype=torch.float64) * torch.tensor([0.1, 1, 5, 0.5, 2]).repeat_interleave(D)
    w_out = torch.randn(C, U * D, generator=g, dtype=torch.float64)
    xu = x.reshape(40, U, D)
    gram = torch.einsum("nud,nue->ude", xu, xu)
    imp = c.call(w_out, gram)
    c.expect_tensor(imp, shape=(U,), name="importance")
    want = torch.stack([(xu[:, u] @ w_out[:, u * D:(u + 1) * D].T).norm() for u in range(U)])
    wu = w_out.reshape(C, U, D)
    c.diagnose(imp, {
        "the importance depends on the unit's inputs too: use the Gram matrix, not just ‖W_u‖":
            wu.pow(2).sum((0, 2)).sqrt(),
        "take the square root: importance is ‖X_u W_uᵀ‖_F, tr(W_u G W_uᵀ) is its square": want ** 2,
        "unit u owns D *columns* of w_out (C, U·D): view it as (C, U, D), not (U, D, C)":
            torch.einsum("udc,ude,uec->u", w_out.reshape(U, D, C), gram, w_out.reshape(U, D, C)).clamp(min=0).sqrt(),
    }, "the importances are wrong", correct=want)
    c.close(imp, want, "importances", "importance_u = sqrt(tr(W_u G_u W_uᵀ)), W_u = w_out[:, u*D:(u+1)*D]", rtol=1e-5, atol=1e-8)


def _heads_cases(d: Draw) -> list[Case]:
    n_kv, rep = d.int(2, 4), d.choice([5, 6])  # never 9 // n_kv: SmolLM2's 9 heads do not fit
    imp = lambda H: d.sample(range(1, 10 * H), H)  # distinct importances: no tie to break
    return [Case(f"{n_kv} KV groups of {rep} heads", torch.tensor(imp(n_kv * rep), dtype=torch.float32) / 7, n_kv, d.int(1, rep - 1),
                 hint="group g holds heads g*H/n_kv_heads ... (g+1)*H/n_kv_heads - 1: use H = importance.shape[0]"),
            Case("every head kept", torch.tensor(imp(6), dtype=torch.float32), 2, 3),
            Case("float64 importances", torch.tensor(imp(8), dtype=torch.float64), 4, 1)]


@exercise("10.select_heads", reference=structured.select_heads, cases=_heads_cases)
def check_select_heads(c: Check) -> None:
    imp = torch.tensor([0.1, 0.9, 0.5, 3.0, 2.0, 2.5, 0.3, 0.2, 0.4])  # 9 heads, 3 KV groups of 3 (SmolLM2)
    for n_kv, k in ((3, 2), (3, 1), (1, 4)):
        out = c.call(imp, n_kv, k)
        c.expect_tensor(out, shape=(n_kv * k,), name="kept heads")
        c.expect(not out.is_floating_point(), f"kept heads have dtype {out.dtype}", "return integer head indices (torch.long)")
        c.expect(out.dtype == torch.long, f"kept heads have dtype {out.dtype}, expected torch.long",
                 "return torch.long (int64) indices, as topk and arange give them: not int32")
        want = structured.select_heads(imp, n_kv, k)
        rep = 9 // n_kv
        top_global = imp.topk(n_kv * k).indices
        if n_kv > 1 and (torch.equal(out.sort().values, top_global.sort().values)):
            c.fail(f"kept heads {out.tolist()}: the {n_kv * k} best overall",
                   f"with grouped-query attention each of the {n_kv} KV groups must keep {k} heads: pick the best within each group")
        if torch.equal(out.sort().values, want):
            c.expect(torch.equal(out, want), f"kept heads {out.tolist()} are not in increasing order",
                     "return the indices sorted: the kept heads stay in their original order, so each still maps to its KV group")
        worst = (imp.reshape(n_kv, rep).topk(k, dim=1, largest=False).indices + torch.arange(n_kv)[:, None] * rep).flatten().sort().values
        if torch.equal(out.sort().values, worst):
            c.fail(f"kept heads {out.tolist()} are the least important", "keep the *highest* importances (topk, largest=True)")
        if n_kv > 1 and bool((out < rep).all()):
            c.fail(f"kept heads {out.tolist()} all lie in the first group",
                   "topk within a group gives positions 0..rep-1: add the group's offset g * (H / n_kv_heads)")
        c.expect(torch.equal(out, want), f"kept heads {out.tolist()}, expected {want.tolist()}",
                 "reshape to (n_kv_heads, H / n_kv_heads), topk per row, add each row's offset, sort")


def slice_heads(wq, wo, keep, head_dim):
    rows = (keep[:, None] * head_dim + torch.arange(head_dim)).flatten()
    return wq[rows], wo[:, rows]


def _slice_heads_cases(d: Draw) -> list[Case]:
    H, D, C = d.int(4, 8), d.choice([2, 3, 8]), d.int(5, 12)
    keep = torch.tensor(sorted(d.sample(range(H), d.int(1, H - 1))))
    return [Case("another head dimension and set of heads", d.randn(H * D, C), d.randn(C, H * D), keep, D,
                 hint="each head owns head_dim consecutive rows: use the head_dim argument, not the example's 4"),
            Case("every head kept", d.randn(3 * D, C), d.randn(C, 3 * D), torch.arange(3), D),
            Case("bfloat16 weights", d.randn(H * D, C, dtype=torch.bfloat16), d.randn(C, H * D, dtype=torch.bfloat16), keep, D)]


@exercise("10.slice_heads", reference=slice_heads, cases=_slice_heads_cases)
def check_slice_heads(c: Check) -> None:
    H, D, C = 6, 4, 10
    wq, wo = randn(H * D, C, seed=10), randn(C, H * D, seed=11)
    keep = torch.tensor([0, 2, 5])
    out = c.call(wq, wo, keep, D, error_hints={"out of bounds": "index the rows of wq but the *columns* of wo (dim 1): wo (C, H·D) reads the heads' outputs"})
    c.expect(isinstance(out, tuple) and len(out) == 2, f"expected a tuple (wq, wo), got {type(out).__name__}",
             "return the two smaller matrices as a tuple")
    q, o = out
    rows = (keep[:, None] * D + torch.arange(D)).flatten()
    c.expect_tensor(q, name="wq")
    c.expect_tensor(o, name="wo")
    if q.shape == (len(keep), C):
        c.fail(f"wq has shape {tuple(q.shape)}: one row per head", f"each head owns head_dim = {D} consecutive rows of wq: rows h*D ... h*D + D - 1")
    if o.shape == (len(keep) * D, H * D) or o.shape == (C, len(keep)):
        c.fail(f"wo has shape {tuple(o.shape)}", "wo (C, H·D) reads the heads' outputs: keep its *columns* h*D ... h*D + D - 1")
    c.expect(q.shape == (len(keep) * D, C), f"wq has shape {tuple(q.shape)}, expected {(len(keep) * D, C)}", "keep D rows per kept head")
    c.expect(o.shape == (C, len(keep) * D), f"wo has shape {tuple(o.shape)}, expected {(C, len(keep) * D)}", "keep D columns per kept head")
    c.close(q, wq[rows], "wq", "the rows of the kept heads, in order")
    c.close(o, wo[:, rows], "wo", "the columns of the kept heads, in the same order as wq's rows")


def slice_neurons(w1, w3, w2, keep):
    return w1[keep], w3[keep], w2[:, keep]


def _slice_neurons_cases(d: Draw) -> list[Case]:
    C, F = d.int(3, 9), d.int(13, 30)
    keep = torch.tensor(sorted(d.sample(range(F), d.int(1, F - 1))))
    return [Case("another width and set of neurons", d.randn(F, C), d.randn(F, C), d.randn(C, F), keep),
            Case("bfloat16 weights", *(d.randn(*s, dtype=torch.bfloat16) for s in ((F, C), (F, C), (C, F))), keep),
            Case("neurons listed out of order", d.randn(F, C), d.randn(F, C), d.randn(C, F), keep.flip(0),
                 hint="keep the neurons in the order keep lists them: index with keep as it is, do not sort it")]


@exercise("10.slice_neurons", reference=slice_neurons, cases=_slice_neurons_cases)
def check_slice_neurons(c: Check) -> None:
    C, F = 6, 12
    w1, w3, w2 = randn(F, C, seed=12), randn(F, C, seed=13), randn(C, F, seed=14)
    keep = torch.tensor([1, 4, 5, 9])
    out = c.call(w1, w3, w2, keep, error_hints={"out of bounds": "index the rows of w1 and w3 but the *columns* of w2 (dim 1): w2 (C, F) reads the neurons"})
    c.expect(isinstance(out, tuple) and len(out) == 3, f"expected a tuple (w1, w3, w2), got {type(out).__name__}",
             "return the three smaller matrices as a tuple")
    a, b, d = out
    for t, name in ((a, "w1"), (b, "w3"), (d, "w2")):
        c.expect_tensor(t, name=name)
    if b.shape == w3.shape:
        c.fail("w3 kept all its rows", "the up projection w3 has one row per neuron as well: slice it like w1")
    if d.shape == (len(keep), F) or d.shape == w2.shape:
        c.fail(f"w2 has shape {tuple(d.shape)}", "w2 (C, F) reads the neurons: keep its *columns*, w2[:, keep]")
    c.expect(a.shape == b.shape == (len(keep), C) and d.shape == (C, len(keep)),
             f"shapes {tuple(a.shape)}, {tuple(b.shape)}, {tuple(d.shape)}, expected {(len(keep), C)} twice and {(C, len(keep))}",
             "rows of w1 and w3, columns of w2")
    c.close(a, w1[keep], "w1", "w1[keep]")
    c.close(b, w3[keep], "w3", "w3[keep]")
    c.close(d, w2[:, keep], "w2", "w2[:, keep]")
