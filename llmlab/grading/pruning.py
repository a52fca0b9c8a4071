"""Checks for notebook 10_pruning."""
from __future__ import annotations

import torch

from llmlab.grading.core import Check
from llmlab.prune import magnitude, nm, structured


def _randn(*shape, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _mask(c: Check, mask, shape: tuple, name: str = "mask") -> torch.Tensor:
    c.expect_tensor(mask, shape=shape, name=name)
    c.expect(mask.dtype == torch.bool, f"{name} has dtype {mask.dtype}, expected torch.bool",
             "return a bool mask, True where the weight is kept (e.g. scores >= threshold, or a scatter into a bool tensor)")
    return mask


def _not_inverted(c: Check, mask: torch.Tensor, want: torch.Tensor) -> None:
    if torch.equal(mask, ~want):
        c.fail("the mask is the exact opposite of the expected one",
               "True means *kept*: the mask is False at the weights that are pruned")


# ------------------------------------------------------------------------------------------ magnitude


def check_prune_mask(fn) -> None:
    c = Check("10.prune_mask", fn)
    scores = _randn(16, 40, seed=1).abs() * torch.logspace(-2, 1, 16)[:, None]  # rows of very different sizes
    for sparsity in (0.37, 0.5, 0.0):  # 0.37 first: at 0.5 pruning the largest is the exact opposite mask
        mask = _mask(c, c.call(scores, sparsity), scores.shape)
        want = magnitude.prune_mask(scores, sparsity)
        _not_inverted(c, mask, want)
        if sparsity and torch.equal(mask, magnitude.prune_mask(-scores, sparsity)):
            c.fail(f"at sparsity {sparsity} the mask removes the largest scores",
                   "prune the *lowest* scores (topk with largest=False): large weights matter most")
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
    c.done()


def check_global_masks(fn) -> None:
    c = Check("10.global_masks", fn)
    scores = {"small": _randn(8, 16, seed=2).abs() * 0.1, "mid": _randn(24, 8, seed=3).abs(),
              "big": _randn(4, 24, seed=4).abs() * 10}
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
    c.done()


def check_weight_change_ratio(fn) -> None:
    c = Check("10.weight_change_ratio", fn)
    w = _randn(12, 20, seed=5)
    mask = magnitude.prune_mask(w.abs(), 0.5)
    r = c.call(w, mask)
    c.expect(isinstance(r, (float, int)) or (isinstance(r, torch.Tensor) and r.numel() == 1),
             f"expected a number, got {type(r).__name__}", "return float(...) of the ratio")
    r = float(r)
    removed, norm = torch.linalg.vector_norm(w * ~mask), torch.linalg.vector_norm(w)
    want = float(removed / norm)
    mistakes = {
        "measure by norm, not by count: ‖W - W⊙M‖ / ‖W‖, not the share of zeros": 0.5,
        "the numerator is the *removed* part W ⊙ (1 - M), not the kept part": float(torch.linalg.vector_norm(w * mask) / norm),
        "use the Frobenius norm (square root of the sum of squares), not its square": want ** 2,
        "divide by ‖W‖_F: the ratio is relative to the whole matrix": float(removed),
    }
    for hint, value in mistakes.items():
        if abs(r - value) < 1e-6 and abs(value - want) > 1e-6:
            c.fail(f"the ratio is {r:.4f}", hint)
    c.expect(abs(r - want) < 1e-5, f"the ratio is {r:.4f}, expected {want:.4f}", "‖W ⊙ (1 - M)‖_F / ‖W‖_F")
    c.expect(abs(float(c.call(w, torch.ones_like(mask)))) < 1e-9, "a mask that keeps everything gives a non-zero ratio",
             "nothing removed: the numerator is 0")
    c.done()


# ------------------------------------------------------------------------------------------ Wanda and N:M


def check_wanda_scores(fn) -> None:
    c = Check("10.wanda_scores", fn)
    w = _randn(10, 16, seed=6)
    x = _randn(16, 16, seed=7) * torch.logspace(-1, 1, 16)  # as many tokens as features: a wrong axis still broadcasts
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
    c.done()


def check_nm_mask(fn) -> None:
    c = Check("10.nm_mask", fn)
    scores = _randn(8, 16, seed=8).abs()
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
    c.done()


# ------------------------------------------------------------------------------------------ structured


def check_unit_importance(fn) -> None:
    c = Check("10.unit_importance", fn)
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
    c.done()


def check_select_heads(fn) -> None:
    c = Check("10.select_heads", fn)
    imp = torch.tensor([0.1, 0.9, 0.5, 3.0, 2.0, 2.5, 0.3, 0.2, 0.4])  # 9 heads, 3 KV groups of 3 (SmolLM2)
    for n_kv, k in ((3, 2), (3, 1), (1, 4)):
        out = c.call(imp, n_kv, k)
        c.expect_tensor(out, shape=(n_kv * k,), name="kept heads")
        c.expect(not out.is_floating_point(), f"kept heads have dtype {out.dtype}", "return integer head indices (torch.long)")
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
    c.done()


def _head_rows(keep: torch.Tensor, d: int) -> torch.Tensor:
    return (keep[:, None] * d + torch.arange(d)).flatten()


def check_slice_heads(fn) -> None:
    c = Check("10.slice_heads", fn)
    H, D, C = 6, 4, 10
    wq, wo = _randn(H * D, C, seed=10), _randn(C, H * D, seed=11)
    keep = torch.tensor([0, 2, 5])
    out = c.call(wq, wo, keep, D, error_hints={"out of bounds": "index the rows of wq but the *columns* of wo (dim 1): wo (C, H·D) reads the heads' outputs"})
    c.expect(isinstance(out, tuple) and len(out) == 2, f"expected a tuple (wq, wo), got {type(out).__name__}",
             "return the two smaller matrices as a tuple")
    q, o = out
    rows = _head_rows(keep, D)
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
    c.done()


def check_slice_neurons(fn) -> None:
    c = Check("10.slice_neurons", fn)
    C, F = 6, 12
    w1, w3, w2 = _randn(F, C, seed=12), _randn(F, C, seed=13), _randn(C, F, seed=14)
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
    c.done()
