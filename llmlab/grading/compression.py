"""Checks for notebook 11_compression."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from llmlab.compress import distill, lowrank, ratio, sharing
from llmlab.grading.core import DTYPE_HINT, Case, Check, Draw, exercise
from llmlab.grading.core import randn as _randn

_LOG_SOFTMAX = ("use log_softmax for log-probabilities: log(softmax(...)) underflows to -inf for unlikely tokens, "
                "and 0 · -inf is NaN")
_FLATTEN = "flatten the positions: reshape(-1, V) and reshape(-1) work for any number of leading dims"


def _scalar(c: Check, out, what: str) -> torch.Tensor:
    """A loss must stay a 0-dim tensor: a Python float has lost the graph that training needs."""
    c.expect(isinstance(out, torch.Tensor), f"{what} returned {type(out).__name__}, expected a torch.Tensor",
             "return the loss as a tensor (no .item() or float()): training calls .backward() on it")
    c.expect(out.ndim == 0, f"{what} has shape {tuple(out.shape)}, expected a scalar (shape ())",
             "average over the positions: one number for the whole batch")
    c.expect(out.is_floating_point() and bool(torch.isfinite(out)), f"{what} is {out}, expected a finite float",
             _LOG_SOFTMAX)
    return out


# ------------------------------------------------------------------------------------------ distillation


def _soft_cases(d: Draw) -> list[Case]:
    return [Case("2-D logits (positions, V) at another T", d.randn(d.int(2, 5), d.int(3, 40), scale=3), d.float(0.3, 8)),
            Case("4-D logits", d.randn(2, 3, 2, d.int(5, 30)), d.float(0.5, 4)),
            Case("logits in the thousands at a low T", d.randn(3, 7, scale=3000), 0.5,
                 hint="subtract each row's maximum before exp (or use torch.softmax): exp(6000) overflows"),
            Case("float64 logits", d.randn(2, 4, 9, dtype=torch.float64), d.float(0.5, 4))]


@exercise("11.soft_targets", reference=distill.soft_targets, cases=_soft_cases,
          error_hints={"Dimension out of range": "softmax over dim=-1, the last dim, whatever the number of dims"})
def check_soft_targets(c: Check) -> None:
    z = _randn(3, 4, 9, seed=1) * 3
    for T in (2.5, 0.5, 1.0):  # T = 1 last: a formula that forgets T is only wrong elsewhere
        p = c.call(z, T)
        c.expect_tensor(p, shape=z.shape, dtype=z.dtype, name=f"soft_targets(logits, T={T})")
        want = distill.soft_targets(z, T)
        if bool((p < 0).any()):
            c.fail(f"at T = {T} some 'probabilities' are negative",
                   "return probabilities, softmax(z / T), not log-probabilities (log_softmax)")
        c.diagnose(p, {
            "softmax over the vocabulary, the last dim (dim=-1): each position gets its own distribution":
                torch.softmax(z / T, 0),
        }, f"at T = {T} the probabilities do not sum to 1 over the vocabulary", correct=want)
        c.expect(torch.allclose(p.sum(-1), torch.ones(3, 4), atol=1e-5),
                 f"at T = {T} the probabilities of a position sum to {float(p.sum(-1).flatten()[0]):.4f}, not 1",
                 "normalise: softmax, not just exp(z / T)")
        c.diagnose(p, {
            "the temperature is not used: divide the logits by T before the softmax": torch.softmax(z, -1),
            "divide the logits by T (a high T must flatten the distribution), do not multiply": torch.softmax(z * T, -1),
        }, f"the soft targets at T = {T} are wrong", correct=want)
        c.close(p, want, f"soft targets at T = {T}", "p = softmax(logits / T) over the last dim")
    flat = c.call(z, 1000.0)
    c.expect(bool((flat - 1 / 9).abs().max() < 2e-2), "at T = 1000 the distribution is not close to uniform",
             "softmax(z / T) tends to uniform as T grows")


def _kd_mistakes(s: torch.Tensor, t: torch.Tensor, T: float) -> dict[str, torch.Tensor]:
    """What the usual slips compute, on the same inputs (float64)."""
    V = s.shape[-1]
    log_q, log_p = (s / T).log_softmax(-1), (t / T).log_softmax(-1)
    p, q = log_p.exp(), log_q.exp()
    kl = (p * (log_p - log_q)).sum(-1)  # (...,)
    return {
        "multiply the KL by T² (Hinton et al.): the soft gradients shrink like 1/T², and T² restores their size":
            kl.mean(),
        "the factor is T², not T": kl.mean() * T,
        "KL(p || q) with p the *teacher's* soft targets: sum p (log p - log q); you swapped teacher and student":
            (q * (log_q - log_p)).sum(-1).mean() * T**2,
        "soften *both* distributions with the same T: divide the student's logits by T too":
            (p * (log_p - s.log_softmax(-1))).sum(-1).mean() * T**2,
        "soften *both* distributions with the same T: divide the teacher's logits by T too":
            (t.softmax(-1) * (t.log_softmax(-1) - log_q)).sum(-1).mean() * T**2,
        "average over positions (sum over the vocabulary, then mean over the rest), do not sum over positions":
            kl.sum() * T**2,
        "sum over the vocabulary and average over positions only: F.kl_div's reduction='mean' also divides by V":
            kl.mean() * T**2 / V,
        "F.kl_div's reduction='batchmean' divides by the first dim only, not by every position: "
        "view the logits as (positions, V) first": kl.sum() / s.shape[0] * T**2,
        "KL subtracts the teacher's entropy: sum p (log p - log q), not the cross-entropy -sum p log q":
            (-(p * log_q).sum(-1)).mean() * T**2,
    }


def _kd_cases(d: Draw) -> list[Case]:
    V = d.int(5, 40)
    return [
        Case("2-D logits (positions, V)", *(d.randn(6, V, scale=3) for _ in range(2)), d.float(0.5, 5),
             hint="average over every position: the mean of the per-position KLs, whatever the number of leading dims"),
        Case("4-D float64 logits", *(d.randn(2, 2, 3, V, dtype=torch.float64, scale=2) for _ in range(2)), d.float(0.5, 5)),
        Case("logits whose probabilities underflow", d.randn(2, 3, V, scale=40), d.randn(2, 3, V, scale=80), 1.0,
             hint=_LOG_SOFTMAX),
        Case("float32 logits", *(d.randn(3, 4, V, scale=2) for _ in range(2)), d.float(1, 4))]


@exercise("11.kd_loss", reference=distill.kd_loss, cases=_kd_cases)
def check_kd_loss(c: Check) -> None:
    shape = (2, 5, 13)
    s, t = _randn(*shape, seed=2, dtype=torch.float64) * 2, _randn(*shape, seed=3, dtype=torch.float64) * 4
    for T in (2.0, 4.0, 1.0):
        out = _scalar(c, c.call(s, t, T), f"kd_loss(student, teacher, T={T})")
        c.expect(out.dtype == s.dtype, f"the loss has dtype {out.dtype}, expected the logits' {s.dtype}", DTYPE_HINT)
        want = distill.kd_loss(s, t, T)
        c.diagnose(out, _kd_mistakes(s, t, T), f"the distillation loss at T = {T} is wrong", correct=want)
        c.expect(float(out) >= -1e-9, f"the loss is negative ({float(out):.4f})", "a KL divergence is never negative")
        c.close(out, want, f"the loss at T = {T}", "T² · mean over positions of sum_v p_v (log p_v - log q_v)")
    same = _scalar(c, c.call(t, t.clone(), 3.0), "kd_loss(teacher, teacher, T=3)")
    c.expect(abs(float(same)) < 1e-9, f"a student equal to its teacher gets loss {float(same):.3g}, not 0",
             "the KL of a distribution with itself is 0")
    # the loss must train the student: gradient T (q - p) / positions, none into the teacher
    out, grad = c.call(s, t, 2.0, via=loss_and_grad)
    out = _scalar(c, out, "kd_loss(student, teacher, T=2)")
    c.expect(grad is not None, "the loss has no gradient with respect to the student's logits",
             "compute it with torch operations on student_logits (no .detach(), .item() or numpy on the student)")
    n = s.numel() // s.shape[-1]
    want_grad = 2.0 * ((s / 2).softmax(-1) - (t / 2).softmax(-1)) / n
    c.close(grad, want_grad, "the gradient with respect to the student's logits",
            "the gradient of T² KL(p || q) is T (q - p) / positions")


def loss_and_grad(fn, student: torch.Tensor, teacher: torch.Tensor, T: float):
    """Harness: ``fn``'s loss and its gradient with respect to the student's logits (None when it has none).
    It runs where ``fn`` lives (in a class run, in the learner's kernel), since the graph cannot travel."""
    student = student.clone().requires_grad_(True)
    out = fn(student, teacher, T)
    if isinstance(out, torch.Tensor) and out.ndim == 0 and out.requires_grad:
        out.backward()
        return out.detach(), student.grad
    return out, None


def _distillation_cases(d: Draw) -> list[Case]:
    V, N = d.int(5, 30), d.int(3, 12)
    return [Case("2-D logits (positions, V) and targets (positions,)", d.randn(N, V, scale=2), d.randn(N, V, scale=3),
                 d.randint(0, V, (N,)), d.float(1, 4), d.float(0.1, 0.9)),
            Case("another vocabulary size, float64", d.randn(2, 3, V, dtype=torch.float64, scale=2),
                 d.randn(2, 3, V, dtype=torch.float64, scale=3), d.randint(0, V, (2, 3)), d.float(1, 4), d.float(0.1, 0.9))]


@exercise("11.distillation_loss", reference=distill.distillation_loss, cases=_distillation_cases,
          error_hints={"Dimension out of range": _FLATTEN})
def check_distillation_loss(c: Check) -> None:
    s, t = _randn(3, 4, 11, seed=4, dtype=torch.float64) * 2, _randn(3, 4, 11, seed=5, dtype=torch.float64) * 3
    y = torch.randint(0, 11, (3, 4), generator=torch.Generator().manual_seed(6))
    for T, alpha in ((2.0, 0.3), (3.0, 0.8), (2.0, 0.0), (2.0, 1.0)):
        out = _scalar(c, c.call(s, t, y, T, alpha, error_hints={
            "Expected target size": "F.cross_entropy wants logits (N, V) and targets (N,): " + _FLATTEN}),
            f"distillation_loss(..., T={T}, alpha={alpha})")
        kd = distill.kd_loss(s, t, T)
        ce = F.cross_entropy(s.reshape(-1, 11), y.reshape(-1))
        want = alpha * kd + (1 - alpha) * ce
        c.diagnose(out, {
            "alpha weighs the soft (distillation) term, 1 - alpha the hard labels; you swapped them":
                (1 - alpha) * kd + alpha * ce,
            "the hard-label cross-entropy uses the student's plain logits (T = 1), as the student will be used":
                alpha * kd + (1 - alpha) * F.cross_entropy(s.reshape(-1, 11) / T, y.reshape(-1)),
            "mix the two terms: alpha · soft + (1 - alpha) · hard, not their plain sum": kd + ce,
            "only the soft term is multiplied by T² (inside kd_loss); the cross-entropy is not":
                alpha * kd + (1 - alpha) * ce * T**2,
        }, f"the mixed loss at T = {T}, alpha = {alpha} is wrong", correct=want)
        c.close(out, want, f"the loss at T = {T}, alpha = {alpha}",
                "alpha · kd_loss(student, teacher, T) + (1 - alpha) · cross_entropy(student, targets)")


# ------------------------------------------------------------------------------------------ weight sharing

_TIE = "a weight exactly halfway between two centroids goes to the smaller one (sort the codebook, then map back)"


def _assign_cases(d: Draw) -> list[Case]:
    k = d.int(2, 12)
    scale = 2.0 ** d.int(-2, 2)  # exact: the halfway points stay exactly halfway
    cb = torch.tensor([1.5, 0.75, 0.25, -0.5]) * scale  # larger first: argmin's first index is the larger one
    ties = torch.tensor([-0.125, 0.5, 1.125, 0.5, -2.0, 3.0]) * scale
    return [Case("a 3-D weight and another codebook size", d.randn(2, 3, d.int(3, 9), scale=1.5), d.randn(k, scale=1.5)),
            Case("weights exactly halfway between two centroids", ties[torch.randperm(6, generator=d.gen)], cb, hint=_TIE),
            Case("a codebook of one centroid", d.randn(7), d.randn(1)),
            Case("float64 weights", d.randn(5, 8, dtype=torch.float64), d.randn(k, dtype=torch.float64)),
            Case("float64 centroids 2e-9 apart", 1 + torch.tensor([1.5, 0.4, 3.0, -5.0, 1.2, 0.8], dtype=torch.float64)[
                 torch.randperm(6, generator=d.gen)] * 1e-9, torch.tensor([1.0, 1 + 2.1e-9], dtype=torch.float64),
                 hint="compute the distances in the weights' dtype: in float32, 1 and 1 + 2e-9 are the same number")]


@exercise("11.assign", reference=sharing.assign, cases=_assign_cases)
def check_assign(c: Check) -> None:
    cb = torch.tensor([0.35, -1.2, 0.05, 1.9, -0.4, 0.8])  # unevenly spaced and not sorted, as after k-means
    for w in (_randn(7, 30, seed=7), _randn(50, seed=8) * 1.5):
        idx = c.call(w, cb)
        c.expect_tensor(idx, shape=w.shape, name="idx")
        c.expect(not idx.is_floating_point(), f"idx has dtype {idx.dtype}, expected integers (torch.long)",
                 "argmin returns integer indices; keep them as they are")
        c.expect(idx.dtype == torch.long, f"idx has dtype {idx.dtype}, expected torch.long",
                 "return int64 indices as argmin gives them (indexing and gather want torch.long)")
        c.expect(int(idx.min()) >= 0 and int(idx.max()) < len(cb), f"indices from {int(idx.min())} to "
                 f"{int(idx.max())}, expected 0 .. {len(cb) - 1}", "one index into the codebook per weight")
        want = sharing.assign(w, cb)
        dist = (w[..., None] - cb).abs()  # (..., k)
        sorted_c, order = cb.sort()
        c.diagnose(idx, {
            "the nearest centroid has the *smallest* distance: argmin, not argmax": dist.argmax(-1),
            "the distance is |w - c| (or its square), not the signed difference w - c": (w[..., None] - cb).argmin(-1),
            "that is the position in the *sorted* codebook: map it back to the codebook's own numbering "
            "(the codebook is not sorted)":
                torch.searchsorted((sorted_c[1:] + sorted_c[:-1]) / 2, w.flatten()).reshape(w.shape),
            "the centroids are not evenly spaced: compare each weight with every centroid's *value*, "
            "not with a position on a uniform grid":
                ((w - cb.min()) / (cb.max() - cb.min()) * (len(cb) - 1)).round().clamp(0, len(cb) - 1).long(),
        }, "the assignment is wrong", correct=want)
        wrong = (idx != want)
        c.expect(not bool(wrong.any()), f"{int(wrong.sum())} of {w.numel()} weights are not assigned to their "
                 "nearest centroid", "idx = argmin over j of |w - codebook[j]|, for every weight")


def _update_cases(d: Draw) -> list[Case]:
    k, empty = d.int(3, 7), d.int(0, 2)
    cb = d.randn(k)
    cb = torch.cat([cb[:empty], torch.tensor([9.0]), cb[empty:]])  # 9.0 gets no weights, and is not the last
    w = d.randn(3, 4, 10)
    w64, cb64 = d.randn(40, dtype=torch.float64), d.randn(k, dtype=torch.float64)
    return [Case("a 3-D weight, an empty cluster inside the codebook", w, sharing.assign(w, cb), cb,
                 hint="a centroid with no weights keeps its old value wherever it sits in the codebook "
                      "(bincount(idx, minlength=k))"),
            Case("float64 weights and codebook", w64, sharing.assign(w64, cb64), cb64)]


@exercise("11.update", reference=sharing.update, cases=_update_cases)
def check_update(c: Check) -> None:
    w = _randn(300, seed=9)
    cb = torch.tensor([-1.5, -0.3, 0.2, 0.9, 7.0])  # 7.0 is far from every weight: its cluster is empty
    idx = sharing.assign(w, cb)
    out = c.call(w, idx, cb)
    c.expect_tensor(out, shape=cb.shape, name="new codebook")
    c.expect(out.is_floating_point(), f"the new codebook has dtype {out.dtype}", "centroids are floats")
    c.expect(out.dtype == cb.dtype, f"the new codebook has dtype {out.dtype}, expected the codebook's {cb.dtype}",
             "return the codebook's dtype: sum in float64 if you like, then cast back (.to(codebook.dtype))")
    want = sharing.update(w, idx, cb)
    if not bool(torch.isfinite(out).all()):
        c.fail("the new codebook holds NaN or inf",
               "a centroid with no weights assigned divides 0 by 0: it keeps its old value")
    counts = torch.bincount(idx, minlength=5).double()
    sums = torch.zeros(5, dtype=torch.float64).index_add_(0, idx, w.double())
    medians = torch.stack([w[idx == j].median() if counts[j] else cb[j] for j in range(5)])
    c.diagnose(out, {
        "a centroid with no weights assigned keeps its old value (here the last one, 7.0), not 0":
            torch.where(counts > 0, sums / counts.clamp(min=1), 0.0),
        "each centroid becomes the *mean* of its weights: divide the sum by the count": torch.where(counts > 0, sums, cb.double()),
        "the mean (not the median) minimises the squared error, which k-means minimises": medians,
    }, "the updated centroids are wrong", rtol=1e-5, correct=want)
    c.close(out, want, "the updated centroids", "codebook[j] = mean of w[idx == j]; an empty cluster keeps codebook[j]")
    w2 = _randn(4, 25, seed=10)  # a matrix: the update sees weights, not rows
    idx2 = sharing.assign(w2, cb)
    out2 = c.call(w2, idx2, cb)
    c.expect_tensor(out2, shape=cb.shape, name="new codebook for a (4, 25) matrix")
    c.close(out2, sharing.update(w2, idx2, cb), "the centroids for a 2-D weight",
            "flatten w and idx: every weight counts once, whatever the matrix's shape")


# ------------------------------------------------------------------------------------------ low rank


def _with_spectrum(n: int, k: int, d: Draw, s: torch.Tensor | None = None, dtype=torch.float32) -> torch.Tensor:
    """An (n, k) matrix with singular values s (by default well separated, 3, 2.4, 1.9, ...: unique factors)."""
    m = min(n, k)
    U, _ = torch.linalg.qr(d.randn(n, m, dtype=torch.float64))
    V, _ = torch.linalg.qr(d.randn(k, m, dtype=torch.float64))
    s = 3 * 0.8 ** torch.arange(m, dtype=torch.float64) if s is None else s
    return ((U * s) @ V.T).to(dtype)


def _factors_differ(got, want) -> str | None:
    """Why (A, B) is not the reference's pair, up to the sign of each singular pair: A B, Aᵀ A and B Bᵀ."""
    if not (isinstance(got, (tuple, list)) and len(got) == 2 and all(isinstance(x, torch.Tensor) for x in got)):
        return f"the result is a {type(got).__name__}, expected a pair of tensors (A, B)"
    (A, B), (wA, wB) = got, want
    if A.shape != wA.shape or B.shape != wB.shape:
        return f"A, B have shapes {tuple(A.shape)}, {tuple(B.shape)}, expected {tuple(wA.shape)}, {tuple(wB.shape)}"
    if A.dtype != wA.dtype or B.dtype != wB.dtype:
        return f"A, B have dtypes {A.dtype}, {B.dtype}, expected {wA.dtype}"
    tol = (1e-4, 1e-5) if wA.dtype == torch.float32 else (1e-9, 1e-11)
    A, B, wA, wB = (x.detach().double() for x in (A, B, wA, wB))
    pairs = {"A @ B": (A @ B, wA @ wB), "Aᵀ A": (A.T @ A, wA.T @ wA), "B Bᵀ": (B @ B.T, wB @ wB.T)}
    return next((f"{name} has wrong values" for name, (a, e) in pairs.items() if not torch.allclose(a, e, *tol)), None)


def _svd_cases(d: Draw) -> list[Case]:
    n, k = d.int(10, 16), d.int(6, 9)
    spread = 10.0 ** torch.linspace(1, -3, 6, dtype=torch.float64)
    return [Case("a taller matrix, a higher rank", _with_spectrum(n, k, d), d.int(4, k)),
            Case("a wide matrix, rank 1", _with_spectrum(3, d.int(5, 12), d), 1),
            Case("the full rank of a square matrix", _with_spectrum(5, 5, d), 5),
            Case("singular values from 10 down to 0.001", _with_spectrum(9, 6, d, spread), 6,
                 hint="take the SVD of w itself (torch.linalg.svd): the eigenvalues of w wᵀ square the small "
                      "singular values, which float32 then loses"),
            Case("float64 input", _with_spectrum(n, k, d, dtype=torch.float64), d.int(1, k))]


@exercise("11.truncated_svd", reference=lowrank.truncated_svd, cases=_svd_cases, compare=_factors_differ)
def check_truncated_svd(c: Check) -> None:
    for (n, k, r, seed) in ((12, 7, 3, 11), (6, 10, 2, 12), (8, 8, 3, 13)):
        w = _with_spectrum(n, k, Draw(seed))
        out = c.call(w, r)
        c.expect(isinstance(out, tuple) and len(out) == 2, f"truncated_svd returned {type(out).__name__}, "
                 "expected a tuple (A, B)", "return the two factors as a tuple (A, B)")
        A, B = out
        c.expect_tensor(A, name="A")
        c.expect_tensor(B, name="B")
        if tuple(A.shape) == (k, r) and tuple(B.shape) == (r, n) and n != k:
            c.fail(f"A has shape {tuple(A.shape)} and B {tuple(B.shape)}, expected ({n}, {r}) and ({r}, {k})",
                   "U and V are swapped: U's columns live in the output space (N rows), Vᵀ's rows in the input space")
        c.expect(tuple(A.shape) == (n, r), f"A has shape {tuple(A.shape)}, expected ({n}, {r})",
                 "A = U[:, :r] · sqrt(σ[:r]): keep the first r *columns* of U")
        c.expect(tuple(B.shape) == (r, k), f"B has shape {tuple(B.shape)}, expected ({r}, {k})",
                 "B = sqrt(σ[:r]) · Vh[:r]: keep the first r *rows* of Vh (torch returns Vᵀ)")
        c.expect(A.dtype == w.dtype and B.dtype == w.dtype, f"A, B have dtypes {A.dtype}, {B.dtype}, expected {w.dtype}",
                 "keep w's dtype")
        U, S, Vh = torch.linalg.svd(w.double(), full_matrices=False)
        want_A, want_B = lowrank.truncated_svd(w, r)
        want = want_A.double() @ want_B.double()
        prod = A.double() @ B.double()
        mistakes = {
            "keep the *largest* singular values: torch returns them in descending order, so take the first r":
                (U[:, -r:] * S[-r:]) @ Vh[-r:],
            "the singular values are missing: A B must be U_r diag(σ) V_rᵀ, with sqrt(σ) on each side":
                U[:, :r] @ Vh[:r],
            "each singular value must appear once in A B: multiply A and B by sqrt(σ), not by σ":
                (U[:, :r] * S[:r] ** 2) @ Vh[:r],
        }
        if k <= n:  # Vh is (K, K): its first r columns, transposed, have B's shape
            U32, S32, Vh32 = torch.linalg.svd(w, full_matrices=False)  # signs as the learner's float32 SVD picks them
            mistakes["torch.linalg.svd returns Vᵀ (Vh): its *rows* are the right singular vectors; take Vh[:r], "
                     "not Vh[:, :r].T"] = ((U32[:, :r] * S32[:r]) @ Vh32[:, :r].T).double()
        if n == k:  # a square matrix: swapping U and V keeps the shapes
            mistakes["U and V are swapped: A B approximates w's transpose; A = U_r diag(sqrt σ), U from "
                     "torch.linalg.svd(w)"] = want.T
        for hint, value in mistakes.items():  # float32 factors: compare with a float32-sized tolerance
            if torch.allclose(prod, value, rtol=1e-4, atol=1e-5) and not torch.allclose(want, value, rtol=1e-4, atol=1e-5):
                c.fail(f"A @ B for rank {r} of a ({n}, {k}) matrix is wrong", hint)
        c.close(prod, want, f"A @ B, the rank-{r} approximation of a ({n}, {k}) matrix",
                "A @ B = U[:, :r] diag(σ[:r]) Vh[:r], the largest r singular values", rtol=1e-4, atol=1e-5)
        root = S[:r].sqrt()
        a_norms, b_norms = A.double().norm(dim=0), B.double().norm(dim=1)
        if torch.allclose(a_norms, S[:r], rtol=1e-3) or torch.allclose(b_norms, S[:r], rtol=1e-3):
            c.fail("A B is right, but all of σ sits in one factor",
                   "split the singular values evenly: A = U_r diag(sqrt σ), B = diag(sqrt σ) V_rᵀ")
        c.close(a_norms, root, "the lengths of A's columns", "A = U_r diag(sqrt σ): column i of A has length sqrt(σ_i)",
                rtol=1e-4, atol=1e-5)
        c.close(b_norms, root, "the lengths of B's rows", "B = diag(sqrt σ) V_rᵀ: row i of B has length sqrt(σ_i)",
                rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------------------------------ sizes


def sharing_ratio_reference(n_weights: int, k: int, weight_bits: int, codebook_bits: int) -> float:
    """The reference of exercise 11.sharing_ratio (the notebook's demos fall back on it): n_weights · weight_bits
    over n_weights · ceil(log2 k) + k · codebook_bits."""
    return ratio.compression_ratio(n_weights * weight_bits,
                                   n_weights * sharing.codebook_bits_per_weight(n_weights, k, codebook_bits))


def _sharing_cases(d: Draw) -> list[Case]:
    return [Case("k a power of 2 with an odd exponent", d.int(10**4, 10**6), 2 ** d.choice([1, 3, 5, 7, 9]), 32, 16,
                 hint="ceil(log2 k) with math.ceil: round(x + 0.5) sends 5.5 to 6 (Python rounds halves to even)"),
            Case("k not a power of 2", d.int(10**3, 10**6), d.choice([3, 5, 12, 1000]), d.choice([8, 16, 32]), 32),
            Case("a single centroid (k = 1: 0 index bits)", d.int(10, 1000), 1, 16, 32),
            Case("a small matrix, where the codebook dominates", 64, 16, 16, 32)]


@exercise("11.sharing_ratio", reference=sharing_ratio_reference, cases=_sharing_cases)
def check_sharing_ratio(c: Check) -> None:
    for n, k, wb, cb in ((4096, 16, 32, 32), (10_000, 100, 16, 16), (500, 64, 32, 32), (1_000_000, 256, 16, 32)):
        got = c.number(c.call(n, k, wb, cb), f"sharing_ratio({n}, {k}, {wb}, {cb})")
        index_bits = math.ceil(math.log2(k))
        want = sharing_ratio_reference(n, k, wb, cb)
        c.diagnose(got, {
            "the ratio is original / compressed (above 1 when the matrix got smaller); yours is inverted":
                1 / want,
            "the codebook is stored too: add its k · codebook_bits bits": wb / index_bits,
            f"indices have a whole number of bits: ceil(log2 {k}) = {index_bits}, not log2 {k} = {math.log2(k):.2f}":
                n * wb / (n * math.log2(k) + k * cb),
            "the codebook is stored once for the whole matrix, not once per weight": n * wb / (n * (index_bits + k * cb)),
            "each weight stores an *index* of log2 k bits, not k bits": n * wb / (n * k + k * cb),
        }, f"the ratio for n = {n}, k = {k}: {got:.4g}", correct=want)
        c.expect(math.isclose(got, want, rel_tol=1e-9), f"the ratio for n = {n}, k = {k} is {got:.4g}, expected "
                 f"{want:.4g}", "n · weight_bits / (n · ceil(log2 k) + k · codebook_bits)")


def sparse_ratio_reference(n_weights: int, density: float, value_bits: int, index_bits: int) -> float:
    """The reference of exercise 11.sparse_ratio (the notebook's demos fall back on it): n_weights · value_bits
    over round(density · n_weights) · (value_bits + index_bits)."""
    return ratio.compression_ratio(n_weights * value_bits, ratio.pruned_bits(n_weights, density, value_bits, index_bits))


def _sparse_cases(d: Draw) -> list[Case]:
    return [Case("density · n ending in .5", 4 * d.int(100, 3000) + 1, 0.5, 16, 16,
                 hint="nnz = round(density · n) with Python's round, which sends a half to the even integer "
                      "(round(498.5) = 498); int(x + 0.5) rounds it up"),
            Case("other densities and bit widths", d.int(1000, 10**6), d.choice([0.05, 0.1, 0.7, 0.9]),
                 d.choice([4, 8, 16]), d.choice([0, 8, 32])),
            Case("density 1 (nothing pruned)", d.int(10, 10**4), 1.0, 16, 16)]


@exercise("11.sparse_ratio", reference=sparse_ratio_reference, cases=_sparse_cases)
def check_sparse_ratio(c: Check) -> None:
    for n, d, vb, ib in ((10_000, 0.3, 16, 16), (4096, 0.5, 32, 16), (1000, 0.25, 8, 12), (999, 0.5, 32, 16)):
        got = c.number(c.call(n, d, vb, ib), f"sparse_ratio({n}, {d}, {vb}, {ib})")
        want = sparse_ratio_reference(n, d, vb, ib)
        c.diagnose(got, {
            "the ratio is original / compressed (above 1 when the matrix got smaller); yours is inverted": 1 / want,
            "each kept weight stores its position too: nnz · (value_bits + index_bits)": 1 / d,
            "density is the share of weights *kept* (nonzero), not the share pruned": n * vb / (round((1 - d) * n) * (vb + ib)),
            "nnz = round(density · n): int() truncates": n * vb / (int(d * n) * (vb + ib)),
        }, f"the ratio for density {d} with {vb}-bit values and {ib}-bit indices: {got:.4g}", correct=want)
        c.expect(math.isclose(got, want, rel_tol=1e-9), f"the ratio for density {d} is {got:.4g}, expected {want:.4g}",
                 "n · value_bits / (nnz · (value_bits + index_bits)), nnz = round(density · n)")
