"""Checks for the evaluation notebooks: 07a_perplexity, 07b_classification_metrics and 07c_generation_metrics."""
from __future__ import annotations

import math
from collections import Counter
from difflib import SequenceMatcher
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from llmlab.evaluation import probe, zero_shot
from llmlab.grading.core import Case, Check, Draw, exercise, same
from llmlab.metrics import classification as C
from llmlab.metrics import lm
from llmlab.metrics import text as T
from llmlab.nn.model import Decoder, DecoderConfig

TINY = DecoderConfig(vocab_size=40, dim=32, n_layers=2, n_heads=4, n_kv_heads=2, hidden_dim=48, rope_theta=1e4,
                     max_seq_len=64)
LOG_SOFTMAX_HINT = "use log_softmax: softmax(...).log() underflows to log(0) = -inf for unlikely tokens"
F32_HINT = "compute the log-softmax in float32 (logits.float()): bfloat16 log-probabilities keep 3 significant digits"


@lru_cache(maxsize=3)
def _tiny_lm(dtype: torch.dtype = torch.float32, confident: bool = False) -> Decoder:
    """A small random decoder whose predictions depend strongly on the context (scaled embeddings);
    ``confident``: logits in the hundreds, so that most probabilities underflow float32."""
    with torch.random.fork_rng():  # leave the learner's global seed alone
        torch.manual_seed(0)
        model = Decoder(TINY).eval()
    with torch.no_grad():
        model.tok_embeddings.weight.mul_(4)
        model.norm.weight.mul_(40 if confident else 1)
    return model.to(dtype)


def _ids(n: int, seed: int) -> torch.Tensor:
    return torch.randint(TINY.vocab_size, (n,), generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------------------ perplexity


def _windows_cases(d: Draw) -> list[Case]:
    w = d.int(2, 9)
    s = d.int(1, w)
    return [Case("disjoint chunks whose last one holds a single token", d.int(2, 5) * w + 1, w, w,
                 hint="keep sliding until a window reaches n_tokens: the last window may hold one new token"),
            Case("another length, window and stride", d.int(w + 1, 60), w, s),
            Case("a text of a single token", 1, w, s)]


@exercise("07.strided_windows", reference=lm.strided_windows, cases=_windows_cases)
def check_strided_windows(c: Check) -> None:
    def windows(begins, n, window):  # (begin, end, end - prev_end) for the given window starts
        ends = [min(b + window, n) for b in begins]
        return [(b, e, e - p) for b, e, p in zip(begins, ends, [0] + ends[:-1])]

    for n, window, stride in [(10, 4, 2), (11, 4, 2), (12, 4, 4), (9, 4, 3), (20, 8, 3), (7, 4, 1), (5, 8, 2), (8, 8, 8)]:
        out = c.call(n, window, stride)
        what = f"strided_windows({n}, window={window}, stride={stride})"
        c.expect(isinstance(out, (list, tuple)) and all(isinstance(w, (list, tuple)) and len(w) == 3 for w in out),
                 f"{what} returned {type(out).__name__}, expected a list of (begin, end, trg_len) triples",
                 "append one tuple (begin, end, trg_len) per window")
        out = [tuple(int(v) for v in w) for w in out]
        want = lm.strided_windows(n, window, stride)
        c.diagnose(out, {
            "trg_len is end - prev_end, the tokens no earlier window covered; end - begin scores the overlap twice":
                [(b, e, e - b) for b, e, _ in want],
            "trg_len is end - prev_end: the first window scores all its tokens, the last one only what is new":
                [(b, e, stride) for b, e, _ in want],
            "stop after the first window whose end reaches n_tokens: later windows have nothing new to score":
                windows(range(0, n, stride), n, window),
            "the end of the text is never scored: keep sliding until a window reaches n_tokens":
                windows(range(0, max(n - window, 0) + 1, stride), n, window),
        }, f"{what} gave {out}, expected {want}", correct=want)
        if any(e > n for _, e, _ in out):
            c.fail(f"{what} gave {out}: a window ends past the text", "end = min(begin + window, n_tokens)")
        c.expect(out == want, f"{what} gave {out}, expected {want}",
                 "begin = 0, stride, 2·stride, ...; end = min(begin + window, n_tokens); trg_len = end - prev_end")


def _per_window(model, ids: torch.Tensor, window: int, stride: int) -> list[tuple[torch.Tensor, torch.Tensor, int]]:
    """For each window: log p of every position's next token (L - 1,), the same read off by one
    (logits at the target's own position) (L,), and trg_len."""
    out = []
    with torch.no_grad():
        for begin, end, trg_len in lm.strided_windows(len(ids), window, stride):
            x = ids[begin:end]
            lp = model(x[None])[0].double().log_softmax(-1)  # (L, V)
            out.append((lp[:-1].gather(-1, x[1:, None])[:, 0], lp.gather(-1, x[:, None])[:, 0], trg_len))
    return out


def _strided_mistakes(model, ids: torch.Tensor, window: int, stride: int) -> dict[str, float]:
    wins = _per_window(model, ids, window, stride)
    scored = [nxt[-min(t, len(nxt)):] for nxt, _, t in wins]
    total = -sum(s.sum() for s in scored).item()
    every = torch.cat([nxt for nxt, _, _ in wins])
    own = torch.cat([same[-t:] for _, same, t in wins])
    return {
        "score only the last trg_len tokens of each window; the others are context, already scored by an earlier window":
            math.exp(-every.mean().item()),
        "divide by the number of predictions scored, not the sum of trg_len: a window's first token has no prediction":
            math.exp(total / len(ids)),  # the trg_len add up to N
        "average the negative log-likelihood over all scored tokens (sum the windows' totals, then divide), not the windows' means":
            math.exp(sum(-s.mean().item() for s in scored) / len(scored)),
        "the logits at position t predict token t + 1: compare logits[:-1] with the window's tokens [1:]":
            math.exp(-own.mean().item()),
    }


def _perplexity_cases(d: Draw) -> list[Case]:
    w = d.int(4, 12)
    return [
        Case("a very confident model (logits in the hundreds)", _tiny_lm(confident=True),
             d.randint(0, TINY.vocab_size, (d.int(20, 40),)), w, d.int(1, w - 1), hint=LOG_SOFTMAX_HINT),
        Case("chunks that do not divide the text", _tiny_lm(), d.randint(0, TINY.vocab_size, (3 * w + d.int(2, w - 1),)), w, w),
        Case("disjoint chunks whose last one holds a single token", _tiny_lm(),
             d.randint(0, TINY.vocab_size, (d.int(2, 4) * w + 1,)), w, w),
        Case("a bfloat16 model", _tiny_lm(torch.bfloat16), d.randint(0, TINY.vocab_size, (d.int(20, 40),)), w,
             d.int(1, w - 1), hint=F32_HINT),
    ]


@exercise("07.strided_perplexity", reference=lm.strided_perplexity, cases=_perplexity_cases, rtol=1e-4)
def check_strided_perplexity(c: Check) -> None:
    model = _tiny_lm()
    ids = _ids(50, seed=1)
    for window, stride in [(16, 4), (16, 16), (12, 5), (8, 1)]:
        want = lm.strided_perplexity(model, ids, window, stride)
        out = c.number(c.call(model, ids, window, stride), f"strided_perplexity(model, ids, {window}, {stride})")
        what = f"window {window}, stride {stride}: you returned {out:.4f}, expected {want:.4f}"
        c.diagnose(out, _strided_mistakes(model, ids, window, stride), what, rtol=1e-5, correct=want)
        c.expect(same(out, want, rtol=1e-4) is None, what,
                 "for each window, sum -log p of its last trg_len tokens; at the end exp(total / tokens scored)")
    short = _ids(10, seed=2)
    want = lm.strided_perplexity(model, short, 16, 4)
    out = c.number(c.call(model, short, 16, 4), "on a text shorter than the window your result")
    c.expect(same(out, want, rtol=1e-4) is None, f"a text of 10 tokens with window 16 gave {out:.4f}, expected {want:.4f}",
             "one window holds the whole text: all its 9 predictions count")


# ------------------------------------------------------------------------------------- classification


def _labels(n: int, k: int, seed: int, skew: bool = False) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if skew:
        return torch.multinomial(torch.tensor([0.5, 0.25, 0.15, 0.1][:k]), n, replacement=True, generator=g)
    return torch.randint(k, (n,), generator=g)


def _noisy(y: torch.Tensor, k: int, p: float, seed: int, g: torch.Generator | None = None) -> torch.Tensor:
    g = g or torch.Generator().manual_seed(seed)
    flip = torch.rand(len(y), generator=g) < p
    return torch.where(flip, torch.randint(k, (len(y),), generator=g), y)


def _cm_reference(y_true: torch.Tensor, y_pred: torch.Tensor, n_classes: int) -> torch.Tensor:
    return torch.from_numpy(C.confusion_matrix(y_true, y_pred, labels=list(range(n_classes))))


def _cm_cases(d: Draw) -> list[Case]:
    K, N = d.int(3, 6), d.int(20, 80)
    y = d.randint(0, K, (N,))
    missing = y.clamp(max=K - 2)  # the last class never occurs
    K8 = d.int(17, 40)  # (K8 - 1) * K8 + (K8 - 1) > 255: a flat index t * K + p overflows uint8
    y8, p8 = d.randint(0, K8, (N,)), d.randint(0, K8, (N,))
    y8[0] = p8[0] = K8 - 1
    return [Case("another class count", y, _noisy(y, K, 0.4, 0, d.gen), K),
            Case("int32 class ids", y.int(), _noisy(y, K, 0.3, 0, d.gen).int(), K,
                 hint="class ids may come as int32: convert with .long() before one_hot or index arithmetic"),
            Case("a class that is never true nor predicted", missing, _noisy(missing, K - 1, 0.3, 0, d.gen), K),
            Case(f"uint8 class ids, {K8} classes", y8.to(torch.uint8), p8.to(torch.uint8), K8,
                 hint="y_true * n_classes + y_pred overflows a uint8 tensor (it stops at 255): convert the ids with "
                      ".long() before any arithmetic")]


@exercise("07.confusion_matrix", reference=_cm_reference, cases=_cm_cases)
def check_confusion_matrix(c: Check) -> None:
    y_true, y_pred = torch.tensor([0, 0, 0, 1, 1, 2]), torch.tensor([0, 0, 1, 1, 1, 1])
    out = c.call(y_true, y_pred, 3)
    c.expect_tensor(out, shape=(3, 3), name="confusion_matrix(y_true, y_pred, 3)")
    c.expect(out.dtype == torch.long, f"the matrix has dtype {out.dtype}, expected torch.int64",
             "counts are integers: create the matrix with dtype=torch.long")
    want = _cm_reference(y_true, y_pred, 3)
    c.diagnose(out, {"rows are the true classes, columns the predicted ones: cm[true, pred]": want.T,
                     "cm[y_true, y_pred] += 1 writes each repeated index once; use index_put_(..., accumulate=True) or a loop":
                         (want > 0).long()}, f"you returned {out.tolist()}, expected {want.tolist()}", correct=want)
    c.expect(torch.equal(out, want), f"you returned {out.tolist()}, expected {want.tolist()}", "count cm[true, pred] += 1 per example")
    out = c.call(torch.tensor([0, 1, 1]), torch.tensor([0, 1, 1]), 4)
    c.expect(isinstance(out, torch.Tensor) and tuple(out.shape) == (4, 4),
             f"with n_classes=4 and only classes 0 and 1 present you returned shape {tuple(getattr(out, 'shape', ()))}",
             "size the matrix (n_classes, n_classes): a class may never occur in a small sample")


def _f1_reference(cm: torch.Tensor, average: str) -> float:
    """F1 from a confusion matrix, through the tested classification module (0/0 gives 0)."""
    K = cm.shape[0]
    y_true = [i for i in range(K) for j in range(K) for _ in range(int(cm[i, j]))]
    y_pred = [j for i in range(K) for j in range(K) for _ in range(int(cm[i, j]))]
    return C.precision_recall_f1(y_true, y_pred, average=average, labels=list(range(K)), zero_division=0.0)[2]


def _f1_mistakes(cm: torch.Tensor, average: str) -> dict[str, float]:
    cm = cm.double()
    tp, pred, true = cm.diag(), cm.sum(0), cm.sum(1)
    safe = lambda a, b: torch.where(b > 0, a / b.clamp(min=1e-300), torch.zeros_like(a))  # noqa: E731
    p, r, f1 = safe(tp, pred), safe(tp, true), safe(2 * tp, pred + true)
    mp, mr = p.mean().item(), r.mean().item()
    pooled = (tp.sum() / cm.sum()).item()
    nan = math.nan
    return {
        "macro-F1 is the mean of the per-class F1s, not the harmonic mean of macro-precision and macro-recall":
            2 * mp * mr / (mp + mr) if mp + mr else 0.0,
        "micro-F1 pools the counts of all classes first (TP, FP, FN summed), which is the accuracy here":
            f1.mean().item() if average == "micro" else nan,
        "weight each class by its support, the number of *true* examples (row sums), not by how often it was predicted":
            (f1 * pred).sum().item() / pred.sum().item() if average == "weighted" else nan,
        "weighted-F1 is an average of per-class F1s weighted by support, not the pooled (micro) F1":
            pooled if average == "weighted" else nan,
        "weighted-F1 divides the support-weighted sum by the total support (the number of examples), not by the number of classes":
            (f1 * true).sum().item() / len(tp) if average == "weighted" else nan,
        "F1 is a fraction: compute it in floating point (cm.double()); integer tensors truncate every per-class F1 to 0 or 1":
            {"micro": math.floor(pooled), "macro": f1.floor().mean().item(),
             "weighted": (f1.floor() * true).sum().item() / true.sum().item()}[average],
    }


def _f1_cases(d: Draw) -> list[Case]:
    def cm(K: int, empty: bool = False) -> torch.Tensor:
        y = torch.multinomial(torch.rand(K, generator=d.gen) + 0.2, d.int(40, 150), replacement=True, generator=d.gen)
        if empty:
            y = y.clamp(max=K - 2)
        return _cm_reference(y, _noisy(y, K - empty, d.float(0.2, 0.6), 0, d.gen), K)

    return [Case("2 classes, macro", cm(2), "macro", hint="with 2 classes, macro- and weighted-F1 still average the F1s "
                 "of both classes: the binary F1 is class 1's alone")] + \
        [Case(f"{K} classes, {average}", cm(K), average) for K, average in
         [(d.int(5, 7), "weighted"), (d.int(5, 7), "micro"), (3, "weighted")]] + \
        [Case("a class never true nor predicted, weighted", cm(d.int(4, 6), empty=True), "weighted"),
         Case("2 classes of different sizes, weighted", torch.tensor([[d.int(20, 40), d.int(0, 5)], [d.int(3, 10), d.int(0, 5)]]),
              "weighted", hint="weighted-F1 weights each class's F1 by its support (row sums) whatever the number of "
                               "classes: with 2 classes of different sizes it is not the macro mean")]


@exercise("07.f1_score", reference=_f1_reference, cases=_f1_cases)
def check_f1_score(c: Check) -> None:
    y_true = _labels(200, 4, seed=5, skew=True)
    cm = _cm_reference(y_true, _noisy(y_true, 4, 0.5, seed=6), 4)
    for average in ("macro", "micro", "weighted"):
        want = _f1_reference(cm, average)
        out = c.number(c.call(cm, average), f"f1_score(cm, {average!r})")
        what = f"{average}-F1: you returned {out:.4f}, expected {want:.4f}"
        c.diagnose(out, _f1_mistakes(cm, average), what, correct=want)
        c.expect(same(out, want) is None, what,
                 "per class: F1 = 2·TP / (2·TP + FP + FN), TP = cm[k, k], FP = column sum - TP, FN = row sum - TP")
    # a class that is neither true nor predicted: its F1 is 0/0, counted as 0 (sklearn's zero_division=0)
    cm0 = torch.tensor([[5, 1, 0], [2, 4, 0], [0, 0, 0]])
    out = c.number(c.call(cm0, "macro"), "f1_score on a matrix with an empty class")
    c.expect(not math.isnan(out), "a class that never occurs, true or predicted, gave NaN",
             "its F1 is 0/0: count it as 0 (scikit-learn's zero_division=0), e.g. divide by max(denominator, 1)")
    want = _f1_reference(cm0, "macro")
    c.expect(same(out, want) is None, f"with an empty class macro-F1 is {want:.4f}, you returned {out:.4f}",
             "the empty class still counts in the macro mean, with F1 = 0")


def _auc_mistakes(y: torch.Tensor, s: torch.Tensor) -> dict[str, float]:
    pos, neg = s[y == 1], s[y == 0]
    gt = (pos[:, None] > neg[None, :]).double().mean().item()
    ge = (pos[:, None] >= neg[None, :]).double().mean().item()
    return {
        "a tie between a positive and a negative counts 1/2, not 0": gt,
        "a tie between a positive and a negative counts 1/2, not 1": ge,
        "AUC is the chance that a positive scores *higher* than a negative: your orientation is reversed": 1 - C.roc_auc(y, s),
    }


NEAR_TIE_HINT = ("keep the scores' dtype: float32 rounds float64 scores that differ by less than 1e-7 into ties "
                 "(do not call .float())")


def _near_ties(d: Draw, *shape: int) -> torch.Tensor:
    """float64 scores on a coarse grid, each nudged by ~1e-10: distinct in float64, tied in float32."""
    return (d.randint(0, 4, shape) / 4 + 0.3).double() + d.randn(*shape, dtype=torch.float64, scale=1e-10)


def _auc_cases(d: Draw) -> list[Case]:
    n = d.int(30, 80)
    y = (d.rand(n) < d.float(0.2, 0.6)).long()
    few = (d.rand(n) < 0.15).long()
    y[:2] = few[:2] = torch.tensor([0, 1])
    return [Case("0/1 labels as a bool tensor (y == k)", y.bool(), d.randn(n) + y,
                 hint="y_true may be a bool tensor: select with y_true == 1 / y_true == 0, no arithmetic on the labels"),
            Case("float64 scores closer than float32 can tell", y, _near_ties(d, n), hint=NEAR_TIE_HINT),
            Case("float16 scores with ties", y, (d.randn(n) + y).half()),
            Case("continuous float64 scores, few positives", few, d.randn(n, dtype=torch.float64) + few)]


@exercise("07.roc_auc", reference=C.roc_auc, cases=_auc_cases)
def check_roc_auc(c: Check) -> None:
    g = torch.Generator().manual_seed(7)
    y = (torch.rand(120, generator=g) < 0.4).long()
    s = ((y + torch.randn(120, generator=g)) * 2).round() / 2  # many ties
    out = c.number(c.call(y, s), "roc_auc(y_true, scores)")
    want = C.roc_auc(y, s)
    what = f"on tied scores you returned {out:.4f}, expected {want:.4f}"
    c.diagnose(out, _auc_mistakes(y, s), what, correct=want)
    c.expect(same(out, want) is None, what, "the fraction of (positive, negative) pairs with s_pos > s_neg, plus half the tied pairs")
    for name, yy, ss, value in [("perfectly reversed scores", [1, 1, 0, 0], [0.1, 0.2, 0.8, 0.9], 0.0),
                                ("all scores equal", [0, 1, 0, 1, 1], [0.3] * 5, 0.5)]:
        got = c.number(c.call(torch.tensor(yy), torch.tensor(ss)), f"on {name} your result")
        c.expect(same(got, value) is None, f"on {name} you returned {got:.4f}, expected {value}",
                 "count pairs (positive, negative): 1 if the positive scores higher, 1/2 if tied")


def _ovr_reference(y_true: torch.Tensor, probs: torch.Tensor) -> float:
    return C.roc_auc_ovr(y_true, probs, labels=list(range(probs.shape[1])))


def _ovr_cases(d: Draw) -> list[Case]:
    def labels(K: int, n: int) -> torch.Tensor:
        return torch.cat([torch.arange(K), d.randint(0, K, (n - K,))])  # every class present

    K, n = d.int(5, 6), d.int(40, 90)
    y = labels(K, n)
    y2 = labels(3, n)
    return [Case(f"{K} classes", y, (F.one_hot(y, K) * 1.5 + d.randn(n, K)).softmax(-1),
                 hint="average over every column: the number of classes is probs.shape[1]"),
            Case("float64 probabilities closer than float32 can tell", y2, _near_ties(d, n, 3), hint=NEAR_TIE_HINT),
            Case("2 classes", y2.clamp(max=1), d.randn(n, 2, dtype=torch.float64).softmax(-1))]


@exercise("07.roc_auc_ovr", reference=_ovr_reference, cases=_ovr_cases)
def check_roc_auc_ovr(c: Check) -> None:
    y = _labels(160, 4, seed=8, skew=True)
    g = torch.Generator().manual_seed(9)
    logits = F.one_hot(y, 4) * 1.5 + torch.randn(160, 4, generator=g) * 1.2
    probs = logits.softmax(-1).double()
    out = c.number(c.call(y, probs), "roc_auc_ovr(y_true, probs)")
    want = _ovr_reference(y, probs)
    hard = F.one_hot(probs.argmax(1), 4).double()
    what = f"you returned {out:.4f}, expected {want:.4f}"
    c.diagnose(out, {
        "score with the probabilities probs[:, k], not the predicted class (argmax): AUC needs a ranking":
            _ovr_reference(y, hard),
        "the macro average gives every class the same weight; you weighted classes by their frequency":
            C.roc_auc_ovr(y, probs, labels=list(range(4)), average="weighted"),
        "class k against the rest uses column k of probs for every class, with y_true == k as the positives":
            float(np.mean([C.roc_auc(y == k, probs[:, 0], pos_label=True) for k in range(4)])),
    }, what, correct=want)
    c.expect(same(out, want) is None, what, "mean over classes k of roc_auc(y_true == k, probs[:, k])")
    y3 = torch.tensor([0, 1, 2, 0, 1, 2, 2])
    p3 = torch.tensor([[0.8, 0.1, 0.1], [0.3, 0.4, 0.3], [0.2, 0.2, 0.6], [0.3, 0.3, 0.4],
                       [0.5, 0.3, 0.2], [0.1, 0.1, 0.8], [0.4, 0.4, 0.2]], dtype=torch.float64)
    got, want = c.number(c.call(y3, p3), "roc_auc_ovr on 3 classes"), _ovr_reference(y3, p3)
    c.expect(same(got, want) is None, f"on 3 classes with ties you returned {got:.4f}, expected {want:.4f}",
             "the number of classes is probs.shape[1]")


# ---------------------------------------------------------------------------------------- BLEU, ROUGE

BLEU_CASES = [
    ("the cat is on the mat".split(), ["there is a cat on the mat".split(), "the cat sits on the mat".split()]),
    ("the the the the the the the".split(), ["the cat is on the mat".split(), "there is a cat on the mat".split()]),
    ("a cat a cat on a mat".split(), ["a cat sat on a mat with a hat".split(), "the cat is on the mat".split()]),
    ("it is a guide to action".split(), ["it is a guide to action that ensures that the military".split()]),
]
WORDS = "the a cat dog sat on mat rug is was".split()


def _modified_precision_mistakes(hyp, refs, n, matched: int) -> dict[str, tuple[int, int]]:
    grams = Counter(tuple(hyp[i : i + n]) for i in range(len(hyp) - n + 1))
    ref_counts = [Counter(tuple(r[i : i + n]) for i in range(len(r) - n + 1)) for r in refs]
    total = sum(grams.values())
    summed = sum(ref_counts, Counter())
    return {
        "clip each n-gram's count at its count in the references: 'the the the' may match 'the' only as often as it occurs there":
            (sum(c for g, c in grams.items() if any(g in rc for rc in ref_counts)), total),
        "clip at the largest count in any *one* reference, not the sum over references":
            (sum(min(c, summed[g]) for g, c in grams.items()), total),
        "clip against every reference (the maximum over them), not only the first":
            (sum(min(c, ref_counts[0][g]) for g, c in grams.items()), total),
        "the denominator is the number of n-grams in the hypothesis (precision), not in the references":
            (matched, sum(sum(rc.values()) for rc in ref_counts)),
    }


def _precision_cases(d: Draw) -> list[Case]:
    def text(n: int) -> list[str]:
        return [d.choice(WORDS[:5]) for _ in range(n)]  # few words: repeated n-grams

    refs = [text(d.int(4, 12)) for _ in range(d.int(2, 4))]
    return [Case("4-grams, several references", text(d.int(8, 14)), refs, 4),
            Case("repeated n-grams, several references", text(d.int(8, 14)), refs, d.int(1, 2)),
            Case("a one-token hypothesis, n >= 3", text(1), refs, d.int(3, 4),
                 hint="a hypothesis shorter than n has no n-grams: total = max(len(hyp) - n + 1, 0)")]


@exercise("07.modified_precision", reference=T.modified_precision, cases=_precision_cases)
def check_modified_precision(c: Check) -> None:
    for hyp, refs in BLEU_CASES:
        for n in (1, 2, 3):
            out = c.call(hyp, refs, n)
            what = f"modified_precision({' '.join(hyp)!r}, ..., n={n})"
            try:
                out = (int(out[0]), int(out[1])) if len(out) == 2 else None
            except (TypeError, ValueError, KeyError, IndexError):
                out = None
            c.expect(out is not None, f"{what} returned {out!r}", "return a pair (matched, total) of ints")
            want = T.modified_precision(hyp, refs, n)
            c.diagnose(out, _modified_precision_mistakes(hyp, refs, n, out[0]), f"{what} gave {out}, expected {want}",
                       correct=want)
            c.expect(out == want, f"{what} gave {out}, expected {want}",
                     "count the hypothesis n-grams; each matches at most max over references of its count there")
    c.expect(tuple(c.call(["a", "b"], [["a", "b"]], 3)) == (0, 0), "a hypothesis shorter than n has no n-grams: (0, 0)", "")


def _bp_cases(d: Draw) -> list[Case]:
    hyps = [d.int(5, 20) for _ in range(d.int(2, 4))]
    gaps = [d.int(1, 4) for _ in hyps]
    short, extra = d.int(3, 8), sum(gaps) + d.int(1, 5)  # a short output that makes c < r
    ties = [[h + g, h - g] for h, g in zip(hyps, gaps)]  # equally close: the longer listed first
    return [Case("references equally close, the longer listed first", hyps + [short], ties + [[short + extra]],
                 hint="on a tie take the shorter reference, wherever it stands in the list: min over (|r - c|, r)"),
            Case("several sentences, references on both sides", hyps, [[h + d.int(-3, 6) for _ in range(d.int(1, 3))]
                                                                     for h in hyps]),
            Case("an output exactly as long as its closest references", hyps, [[h, h + 3] for h in hyps]),
            Case("an empty output among non-empty ones", [0] + hyps, [[short]] + [[h + 1] for h in hyps],
                 hint="BP = 0 only when the whole output is empty (c = 0): an empty sentence only adds 0 to c")]


@exercise("07.brevity_penalty", reference=T.brevity_penalty, cases=_bp_cases)
def check_brevity_penalty(c: Check) -> None:
    hyp_lens, ref_lens = [6, 9, 4], [[7, 12], [10, 8], [5, 9, 2]]
    out = c.number(c.call(hyp_lens, ref_lens), "brevity_penalty(hyp_lens, ref_lens)")
    want = T.brevity_penalty(hyp_lens, ref_lens)
    hs = sum(hyp_lens)
    longest, shortest = sum(max(r) for r in ref_lens), sum(min(r) for r in ref_lens)
    closest = 7 + 8 + 5  # each hypothesis's nearest reference length (9: 10 and 8 tie, the shorter wins)
    c.diagnose(out, {
        "r is the sum of the *closest* reference lengths (ties: the shorter), not the longest": math.exp(1 - longest / hs) if longest > hs else 1.0,
        "r is the sum of the *closest* reference lengths (ties: the shorter), not the shortest": math.exp(1 - shortest / hs) if shortest > hs else 1.0,
        "on a tie take the shorter reference, wherever it stands in the list: min over (|r - c|, r)":
            math.exp(1 - (closest + 2) / hs),
        "BP = exp(1 - r / c): reference length over hypothesis length": math.exp(1 - hs / closest),
        "BLEU's brevity penalty is a corpus quantity: sum c and r over sentences first, then one exp(1 - r/c)":
            float(np.mean([T.brevity_penalty([h], [r]) for h, r in zip(hyp_lens, ref_lens)])),
    }, f"you returned {out:.4f}, expected {want:.4f}", correct=want)
    c.expect(same(out, want) is None, f"you returned {out:.4f}, expected {want:.4f}",
             "c = sum of hypothesis lengths, r = sum of closest reference lengths, BP = exp(1 - r/c) if c < r else 1")
    long = c.number(c.call([10, 12], [[8], [11]]), "for a long output your result")
    c.expect(long == 1.0, f"an output longer than its references gave BP = {long:.4f}",
             "no penalty (BP = 1) when c >= r: only short outputs are penalised")
    tie = c.number(c.call([10], [[12, 8]]), "with two references equally close your result")
    c.expect(same(tie, 1.0) is None, f"hypothesis length 10, references 12 and 8: BP = {tie:.4f}, expected 1",
             "on a tie take the shorter reference (sacrebleu's rule), 8 here, wherever it stands in the list")
    empty_hint = "c = 0: exp(1 - r/0) is exp(-inf) = 0; return 0.0 before dividing"
    empty = c.call([0], [[5]], error_hints={"division by zero": empty_hint})
    c.expect(c.number(empty, "brevity_penalty([0], [[5]])") == 0.0, "an empty output should get BP = 0", empty_hint)


ROUGE_CASES = [
    ("police killed the gunman", "police kill the gunman"),
    ("the gunman was shot by police", "police killed the gunman"),
    ("a b c d e f g", "a x c y e z g b"),
    ("the cat sat on the mat and looked at the dog", "the dog sat on a mat"),
]


def _rouge_reference(target: list[str], prediction: list[str]) -> tuple[float, float, float]:
    return tuple(T.rouge_l(" ".join(target), " ".join(prediction)))


def _rouge_cases(d: Draw) -> list[Case]:
    def text(n: int) -> list[str]:
        return [d.choice(WORDS[:6]) for _ in range(n)]

    return [Case("longer texts with repeated words", text(d.int(12, 20)), text(d.int(8, 16)),
                 hint="the LCS needs the full dynamic programme: matching each word greedily at its first occurrence "
                      "can miss longer subsequences"),
            Case("a prediction longer than the target", text(d.int(3, 6)), text(d.int(10, 15))),
            Case("an empty prediction", text(d.int(2, 5)), [], hint="nothing shared gives (0.0, 0.0, 0.0): avoid 0/0")]


@exercise("07.rouge_l", reference=_rouge_reference, cases=_rouge_cases)
def check_rouge_l(c: Check) -> None:
    for target, prediction in ROUGE_CASES:
        t, p = T.tokenize_rouge(target), T.tokenize_rouge(prediction)
        what = f"rouge_l({target!r}, {prediction!r})"
        out = c.call(t, p)
        c.expect(isinstance(out, (tuple, list)) and len(out) == 3, f"{what} returned {out!r}",
                 "return (precision, recall, f-measure)")
        out = tuple(c.number(v, what) for v in out)
        want = _rouge_reference(t, p)
        sub = SequenceMatcher(None, t, p, autojunk=False).find_longest_match(0, len(t), 0, len(p)).size  # substring
        diag = f"{what} gave P, R = {out[0]:.4f}, {out[1]:.4f}, expected {want[0]:.4f}, {want[1]:.4f}"
        c.diagnose(torch.tensor(out[:2]), {
            "the LCS is the longest common *subsequence* (in order, gaps allowed), not the longest common substring":
                torch.tensor([sub / len(p), sub / len(t)]),
            "precision divides by the prediction's length, recall by the target's: you swapped them":
                torch.tensor([want[1], want[0]]),
        }, diag, correct=torch.tensor(want[:2]))
        c.expect(same(out[:2], want[:2]) is None, diag,
                 "P = LCS / len(prediction), R = LCS / len(target), with the LCS by dynamic programming")
        c.diagnose(out[2], {"F is the harmonic mean 2PR / (P + R), not the arithmetic mean": (want[0] + want[1]) / 2},
                   f"{what} F = {out[2]:.4f}, expected {want[2]:.4f}", correct=want[2])
        c.expect(same(out[2], want[2]) is None, f"{what} F = {out[2]:.4f}, expected {want[2]:.4f}", "F = 2PR / (P + R)")
    out = c.call(["a", "b"], ["c"], error_hints={"division by zero": "when the LCS is 0, P + R = 0: return (0.0, 0.0, 0.0)"})
    c.expect(isinstance(out, (tuple, list)) and len(out) == 3 and all(float(v) == 0.0 for v in out),
             f"no common token should give (0, 0, 0), got {out!r}", "when P + R = 0, F is 0 (avoid 0/0)")


# ------------------------------------------------------------------------------------ classifiers


def _continuation_mistakes(model, prompt: list[int], cont: list[int]) -> dict[str, float]:
    ids = torch.tensor([prompt + cont])
    with torch.no_grad():
        lp = model(ids)[0].double().log_softmax(-1)  # (T, V)
    P = len(prompt)
    picked = lp[P - 1 : -1].gather(-1, ids[0, P:, None])[:, 0]
    return {
        "the logits at position t predict token t + 1: read the continuation's log-probs at positions len(prompt) - 1 ... -2":
            lp[P:].gather(-1, ids[0, P:, None]).sum().item(),
        "add log-probabilities, not probabilities": picked.exp().sum().item(),
        "the log-probability of the whole continuation is a sum over its tokens, not a mean": picked.mean().item(),
        "score only the continuation: the prompt's own tokens are given, not predicted":
            lp[:-1].gather(-1, ids[0, 1:, None]).sum().item(),
    }


def _continuation_cases(d: Draw) -> list[Case]:
    def ids(n: int) -> list[int]:
        return d.randint(0, TINY.vocab_size, (n,)).tolist()

    return [Case("a prompt longer than the examples'", _tiny_lm(), ids(d.int(16, 30)), ids(d.int(2, 6)),
                 hint="run the model on the whole prompt + continuation: every prompt token is context"),
            Case("a one-token prompt", _tiny_lm(), ids(1), ids(d.int(3, 8))),
            Case("a very confident model (logits in the hundreds)", _tiny_lm(confident=True), ids(d.int(3, 10)),
                 ids(d.int(2, 5)), hint=LOG_SOFTMAX_HINT),
            Case("a bfloat16 model", _tiny_lm(torch.bfloat16), ids(d.int(3, 10)), ids(d.int(2, 5)), hint=F32_HINT)]


@exercise("07.continuation_log_prob", reference=zero_shot.continuation_log_prob, cases=_continuation_cases, rtol=1e-5)
def check_continuation_log_prob(c: Check) -> None:
    model = _tiny_lm()
    for prompt, cont in [([5, 9, 2, 7, 1, 3], [11, 4, 20]), ([1, 2, 3, 4, 5, 6, 7, 8], [30, 31]), ([17, 3], [8, 8, 8, 8])]:
        want = zero_shot.continuation_log_prob(model, prompt, cont)
        out = c.number(c.call(model, prompt, cont), "continuation_log_prob(model, prompt_ids, cont_ids)")
        what = f"prompt {prompt}, continuation {cont}: you returned {out:.4f}, expected {want:.4f}"
        c.diagnose(out, _continuation_mistakes(model, prompt, cont), what, rtol=1e-5, correct=want)
        c.expect(out <= 0, f"you returned {out:.4f}, but a log-probability is never positive", "use log_softmax")
        c.expect(same(out, want, rtol=1e-5) is None, what,
                 "one forward pass over prompt + cont, log_softmax, then sum the continuation tokens' entries")
    one = c.number(c.call(model, [4, 2], [9]), "with a one-token continuation your result")
    c.expect(same(one, zero_shot.continuation_log_prob(model, [4, 2], [9]), rtol=1e-5) is None,
             "a one-token continuation after a 2-token prompt is wrong", "its log-prob is read at position len(prompt) - 1")


def _logreg_problem(g: torch.Generator, N: int = 90, D: int = 4, K: int = 3, scale: float = 1.0,
                    dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    X = torch.randn(N, D, generator=g, dtype=torch.float64)
    W = torch.randn(D, K, generator=g, dtype=torch.float64) * 1.5
    y = (X @ W + torch.linspace(1.5, -1.0, K, dtype=torch.float64) + torch.randn(N, K, generator=g, dtype=torch.float64)).argmax(1)
    return (X * scale).to(dtype), y


def _fit(X, y, K, l2, bias: bool = True, l2_bias: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """The optimum of a logistic-regression variant (the correct one: a bias, no L2 on it)."""
    if bias and not l2_bias:
        return probe.fit_logistic_regression(X, y, K, l2, steps=200)
    # fold the bias into W as a constant feature, so the L2 term penalises it (or drop it altogether)
    Xa = torch.cat([X, torch.ones(len(X), 1, dtype=X.dtype)], 1) if bias else X
    W = torch.zeros(Xa.shape[1], K, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([W], max_iter=200, line_search_fn="strong_wolfe", tolerance_grad=1e-10, tolerance_change=1e-14)

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(Xa @ W, y) + 0.5 * l2 * W.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    W = W.detach()
    return (W[:-1], W[-1]) if bias else (W, torch.zeros(K, dtype=X.dtype))


@lru_cache(maxsize=1)
def _logreg_optima():
    X, y = _logreg_problem(torch.Generator().manual_seed(10))
    l2 = 0.05
    return X, y, l2, {
        "correct": _fit(X, y, 3, l2),
        "add a bias b (K,) to the logits X @ W + b: without it every decision boundary passes through the origin":
            _fit(X, y, 3, l2, bias=False),
        "the L2 penalty (l2 / 2)·||W||² is missing: add it to the mean cross-entropy": _fit(X, y, 3, 0.0),
        "do not penalise the bias: the L2 term is (l2 / 2)·||W||² on the weights only": _fit(X, y, 3, l2, l2_bias=True),
    }


def _logreg_probs(fit, X, y, n_classes, l2, steps):
    """Harness of the hidden cases: the fitted model's probabilities on X (the optimum is unique; W and b
    are compared through what they predict)."""
    W, b = fit(X, y, n_classes, l2, steps)
    return probe.predict_proba(X.double(), W.detach().double(), b.detach().double())


def _logreg_cases(d: Draw) -> list[Case]:
    X, y = _logreg_problem(d.gen, N=60, D=3, scale=d.float(8, 15))
    X5, y5 = _logreg_problem(d.gen, N=50, D=5, K=5, dtype=torch.float32)
    return [Case("features on a larger scale", X, y, 3, d.float(0.01, 0.05), 100),
            Case("5 classes, float32 features", X5, y5, 5, d.float(0.01, 0.1), 100,
                 hint="size W (D, n_classes) and b (n_classes,) from the arguments, not from the example")]


@exercise("07.fit_logistic_regression", reference=probe.fit_logistic_regression, cases=_logreg_cases,
          via=_logreg_probs, rtol=0.0, atol=2e-3)
def check_fit_logistic_regression(c: Check) -> None:
    X, y, l2, optima = _logreg_optima()
    no_grad = {"does not require grad": "gradients may be switched off (as in this notebook): fit inside `with torch.enable_grad():`"}
    out = c.call(X, y, 3, l2, 200, error_hints=no_grad)
    c.expect(isinstance(out, (tuple, list)) and len(out) == 2, f"you returned {type(out).__name__}", "return (W, b)")
    W, b = out
    c.expect_tensor(W, shape=(4, 3), name="W")
    c.expect_tensor(b, shape=(3,), name="b")
    W, b = W.detach().double(), b.detach().double()
    probs = probe.predict_proba(X, W, b)
    best = optima["correct"]
    for hint, (Wm, bm) in optima.items():
        if hint != "correct" and (probs - probe.predict_proba(X, Wm, bm)).abs().max() < 2e-3:
            c.fail("your model matches the optimum of a different objective", hint)
    loss, best_loss = probe.logistic_loss(X, y, W, b, l2).item(), probe.logistic_loss(X, y, *best, l2).item()
    c.expect(loss <= best_loss + 1e-4, f"your fit reaches loss {loss:.5f}; the optimum is {best_loss:.5f}",
             "minimise mean cross-entropy + (l2/2)·||W||² to convergence: torch.optim.LBFGS (line_search_fn='strong_wolfe') "
             "or more gradient steps")
    c.expect((probs - probe.predict_proba(X, *best)).abs().max() < 2e-3, "your probabilities differ from the optimum's",
             "the objective is convex with a unique optimum: run the optimiser longer")
    X32 = X[:30].float()
    W32, b32 = c.call(X32, y[:30], 3, 0.1, 200, error_hints=no_grad)
    c.expect(isinstance(W32, torch.Tensor) and W32.dtype == torch.float32, "float32 features should give float32 weights",
             "fit in float64 if you like, then return W.to(X.dtype)")
    W4, b4 = c.call(X, y, 4, l2, 2, error_hints=no_grad)  # two steps: class 3 has no example, no optimum to reach
    c.expect(tuple(getattr(W4, "shape", ())) == (4, 4) and tuple(getattr(b4, "shape", ())) == (4,),
             f"with n_classes=4 and labels 0-2 only, W has shape {tuple(getattr(W4, 'shape', ()))}, expected (4, 4)",
             "size W (D, n_classes) and b (n_classes,) from the argument n_classes, not from the example or from "
             "y.max() + 1: a class may have no example in y")
