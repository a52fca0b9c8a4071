"""Checks for notebook 07_evaluation."""
from __future__ import annotations

import math
from collections import Counter
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from llmlab import probe, zero_shot
from llmlab.grading.core import Check
from llmlab.metrics import classification as C
from llmlab.metrics import lm
from llmlab.metrics import text as T
from llmlab.nn.model import Decoder, DecoderConfig

TINY = DecoderConfig(vocab_size=40, dim=32, n_layers=2, n_heads=4, n_kv_heads=2, hidden_dim=48, rope_theta=1e4,
                     max_seq_len=64)


@lru_cache(maxsize=1)
def _tiny_lm() -> Decoder:
    """A small random decoder whose predictions depend strongly on the context (scaled embeddings)."""
    with torch.random.fork_rng():  # leave the learner's global seed alone
        torch.manual_seed(0)
        model = Decoder(TINY).eval()
    with torch.no_grad():
        model.tok_embeddings.weight.mul_(4)
    return model


def _ids(n: int, seed: int) -> torch.Tensor:
    return torch.randint(TINY.vocab_size, (n,), generator=torch.Generator().manual_seed(seed))


def _float(c: Check, out, what: str) -> float:
    if isinstance(out, torch.Tensor) and out.numel() == 1:
        out = out.item()
    if isinstance(out, np.generic):
        out = out.item()
    if isinstance(out, bool) or not isinstance(out, (int, float)):
        c.fail(f"{what} returned {type(out).__name__}, expected a number", "return a Python float (or .item() of a scalar tensor)")
    c.expect(math.isfinite(out), f"{what} returned {out}", "a 0/0 or log(0) somewhere: look for an empty selection")
    return float(out)


def _is(a: float, b: float, rel: float = 1e-6) -> bool:
    return math.isfinite(b) and abs(a - b) <= rel * max(1.0, abs(b))


def _diagnose(c: Check, out: float, want: float, mistakes: dict[str, float], what: str, rel: float = 1e-6) -> None:
    """Fail with the hint of a known mistake whose value ``out`` reproduces (when it differs from ``want``)."""
    for hint, value in mistakes.items():
        if _is(out, value, rel) and not _is(want, value, rel):
            c.fail(what, hint)


# ------------------------------------------------------------------------------------------ perplexity


def check_strided_windows(fn) -> None:
    c = Check("07.strided_windows", fn)

    def windows(begins, n, window):  # (begin, end, end - prev_end) for the given window starts
        ends = [min(b + window, n) for b in begins]
        return [(b, e, e - p) for b, e, p in zip(begins, ends, [0] + ends[:-1])]

    def variants(n, window, stride):
        want = lm.strided_windows(n, window, stride)
        return want, {
            "trg_len is end - prev_end, the tokens no earlier window covered; end - begin scores the overlap twice":
                [(b, e, e - b) for b, e, _ in want],
            "trg_len is end - prev_end: the first window scores all its tokens, the last one only what is new":
                [(b, e, stride) for b, e, _ in want],
            "stop after the first window whose end reaches n_tokens: later windows have nothing new to score":
                windows(range(0, n, stride), n, window),
            "the end of the text is never scored: keep sliding until a window reaches n_tokens":
                windows(range(0, max(n - window, 0) + 1, stride), n, window),
        }

    for n, window, stride in [(10, 4, 2), (11, 4, 2), (12, 4, 4), (9, 4, 3), (20, 8, 3), (7, 4, 1), (5, 8, 2), (8, 8, 8)]:
        out = c.call(n, window, stride)
        what = f"strided_windows({n}, window={window}, stride={stride})"
        c.expect(isinstance(out, (list, tuple)) and all(isinstance(w, (list, tuple)) and len(w) == 3 for w in out),
                 f"{what} returned {type(out).__name__}, expected a list of (begin, end, trg_len) triples",
                 "append one tuple (begin, end, trg_len) per window")
        out = [tuple(int(v) for v in w) for w in out]
        want, mistakes = variants(n, window, stride)
        for hint, value in mistakes.items():
            if out == value and value != want:
                c.fail(f"{what} gave {out}, expected {want}", hint)
        if any(e > n for _, e, _ in out):
            c.fail(f"{what} gave {out}: a window ends past the text", "end = min(begin + window, n_tokens)")
        c.expect(out == want, f"{what} gave {out}, expected {want}",
                 "begin = 0, stride, 2·stride, ...; end = min(begin + window, n_tokens); trg_len = end - prev_end")
    c.done()


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


def check_strided_perplexity(fn) -> None:
    c = Check("07.strided_perplexity", fn)
    model = _tiny_lm()
    ids = _ids(50, seed=1)
    for window, stride in [(16, 4), (16, 16), (12, 5), (8, 1)]:
        want = lm.strided_perplexity(model, ids, window, stride)
        out = _float(c, c.call(model, ids, window, stride), f"strided_perplexity(model, ids, {window}, {stride})")
        _diagnose(c, out, want, _strided_mistakes(model, ids, window, stride),
                  f"window {window}, stride {stride}: you returned {out:.4f}, expected {want:.4f}", rel=1e-5)
        c.expect(_is(out, want, 1e-4), f"window {window}, stride {stride}: you returned {out:.4f}, expected {want:.4f}",
                 "for each window, sum -log p of its last trg_len tokens; at the end exp(total / tokens scored)")
    short = _ids(10, seed=2)
    want = lm.strided_perplexity(model, short, 16, 4)
    out = _float(c, c.call(model, short, 16, 4), "on a text shorter than the window your function")
    c.expect(_is(out, want, 1e-4), f"a text of 10 tokens with window 16 gave {out:.4f}, expected {want:.4f}",
             "one window holds the whole text: all its 9 predictions count")
    c.done()


# ------------------------------------------------------------------------------------- classification


def _labels(n: int, k: int, seed: int, skew: bool = False) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if skew:
        return torch.multinomial(torch.tensor([0.5, 0.25, 0.15, 0.1][:k]), n, replacement=True, generator=g)
    return torch.randint(k, (n,), generator=g)


def _noisy(y: torch.Tensor, k: int, p: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    flip = torch.rand(len(y), generator=g) < p
    return torch.where(flip, torch.randint(k, (len(y),), generator=g), y)


def check_confusion_matrix(fn) -> None:
    c = Check("07.confusion_matrix", fn)
    y_true, y_pred = torch.tensor([0, 0, 0, 1, 1, 2]), torch.tensor([0, 0, 1, 1, 1, 1])
    out = c.call(y_true, y_pred, 3)
    c.expect_tensor(out, shape=(3, 3), name="confusion_matrix(y_true, y_pred, 3)")
    want = torch.from_numpy(C.confusion_matrix(y_true, y_pred, labels=list(range(3))))
    out = out.long()
    if torch.equal(out, want.T):
        c.fail(f"you returned {out.tolist()}, the transpose of {want.tolist()}",
               "rows are the true classes, columns the predicted ones: cm[true, pred]")
    if torch.equal(out, (want > 0).long()):
        c.fail(f"you returned {out.tolist()}, expected {want.tolist()}: repeated pairs were counted once",
               "cm[y_true, y_pred] += 1 writes each repeated index once; use index_put_(..., accumulate=True) or a loop")
    c.expect(torch.equal(out, want), f"you returned {out.tolist()}, expected {want.tolist()}", "count cm[true, pred] += 1 per example")
    out = c.call(torch.tensor([0, 1, 1]), torch.tensor([0, 1, 1]), 4)
    c.expect(isinstance(out, torch.Tensor) and tuple(out.shape) == (4, 4),
             f"with n_classes=4 and only classes 0 and 1 present you returned shape {tuple(getattr(out, 'shape', ()))}",
             "size the matrix (n_classes, n_classes): a class may never occur in a small sample")
    y_true = _labels(300, 4, seed=3)
    y_pred = _noisy(y_true, 4, 0.4, seed=4)
    out = c.call(y_true, y_pred, 4)
    c.expect_tensor(out, shape=(4, 4))
    want = torch.from_numpy(C.confusion_matrix(y_true, y_pred, labels=list(range(4))))
    c.expect(torch.equal(out.long(), want), "on 300 random examples your matrix differs from the counts",
             "cm[i, j] = number of examples of true class i predicted as j")
    c.expect(not out.is_floating_point(), f"the matrix has dtype {out.dtype}", "counts are integers: use dtype=torch.long")
    c.done()


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
    out = {
        "macro-F1 is the mean of the per-class F1s, not the harmonic mean of macro-precision and macro-recall":
            2 * mp * mr / (mp + mr) if mp + mr else 0.0,
        "micro-F1 pools the counts of all classes first (TP, FP, FN summed), which is the accuracy here":
            f1.mean().item() if average == "micro" else math.nan,
        "weight each class by its support, the number of *true* examples (row sums), not by how often it was predicted":
            (f1 * pred).sum().item() / pred.sum().item() if average == "weighted" else math.nan,
        "weighted-F1 is an average of per-class F1s weighted by support, not the pooled (micro) F1":
            (tp.sum() / cm.sum()).item() if average == "weighted" else math.nan,
    }
    return out


def check_f1_score(fn) -> None:
    c = Check("07.f1_score", fn)
    y_true = _labels(200, 4, seed=5, skew=True)
    cm = torch.from_numpy(C.confusion_matrix(y_true, _noisy(y_true, 4, 0.5, seed=6), labels=list(range(4))))
    for average in ("macro", "micro", "weighted"):
        want = _f1_reference(cm, average)
        out = _float(c, c.call(cm, average), f"f1_score(cm, {average!r})")
        _diagnose(c, out, want, _f1_mistakes(cm, average), f"{average}-F1: you returned {out:.4f}, expected {want:.4f}")
        c.expect(_is(out, want), f"{average}-F1: you returned {out:.4f}, expected {want:.4f}",
                 "per class: F1 = 2·TP / (2·TP + FP + FN), TP = cm[k, k], FP = column sum - TP, FN = row sum - TP")
    # a class that is neither true nor predicted: its F1 is 0/0, counted as 0 (sklearn's zero_division=0)
    cm0 = torch.tensor([[5, 1, 0], [2, 4, 0], [0, 0, 0]])
    out = c.call(cm0, "macro")
    c.expect(not (isinstance(out, (float, torch.Tensor)) and math.isnan(float(out))),
             "a class that never occurs, true or predicted, gave NaN",
             "its F1 is 0/0: count it as 0 (scikit-learn's zero_division=0), e.g. divide by max(denominator, 1)")
    want = _f1_reference(cm0, "macro")
    out = _float(c, out, "f1_score on a matrix with an empty class")
    c.expect(_is(out, want), f"with an empty class macro-F1 is {want:.4f}, you returned {out:.4f}",
             "the empty class still counts in the macro mean, with F1 = 0")
    c.done()


def _auc_mistakes(y: torch.Tensor, s: torch.Tensor) -> dict[str, float]:
    pos, neg = s[y == 1], s[y == 0]
    gt = (pos[:, None] > neg[None, :]).double().mean().item()
    ge = (pos[:, None] >= neg[None, :]).double().mean().item()
    want = C.roc_auc(y, s)
    return {
        "a tie between a positive and a negative counts 1/2, not 0": gt,
        "a tie between a positive and a negative counts 1/2, not 1": ge,
        "AUC is the chance that a positive scores *higher* than a negative: your orientation is reversed": 1 - want,
    }


def check_roc_auc(fn) -> None:
    c = Check("07.roc_auc", fn)
    g = torch.Generator().manual_seed(7)
    y = (torch.rand(120, generator=g) < 0.4).long()
    s = ((y + torch.randn(120, generator=g)) * 2).round() / 2  # many ties
    out = _float(c, c.call(y, s), "roc_auc(y_true, scores)")
    want = C.roc_auc(y, s)
    _diagnose(c, out, want, _auc_mistakes(y, s), f"on tied scores you returned {out:.4f}, expected {want:.4f}")
    c.expect(_is(out, want), f"on tied scores you returned {out:.4f}, expected {want:.4f}",
             "the fraction of (positive, negative) pairs with s_pos > s_neg, plus half the tied pairs")
    for name, yy, ss, value in [
        ("perfectly separated scores", torch.tensor([0, 0, 1, 1]), torch.tensor([0.1, 0.2, 0.8, 0.9]), 1.0),
        ("perfectly reversed scores", torch.tensor([1, 1, 0, 0]), torch.tensor([0.1, 0.2, 0.8, 0.9]), 0.0),
        ("all scores equal", torch.tensor([0, 1, 0, 1, 1]), torch.full((5,), 0.3), 0.5),
    ]:
        got = _float(c, c.call(yy, ss), f"on {name} your function")
        c.expect(_is(got, value), f"on {name} you returned {got:.4f}, expected {value}",
                 "count pairs (positive, negative): 1 if the positive scores higher, 1/2 if tied")
    y = (torch.rand(400, generator=g) < 0.2).long()
    s = torch.randn(400, generator=g, dtype=torch.float64) + y
    c.expect(_is(_float(c, c.call(y, s), "roc_auc"), C.roc_auc(y, s)), "on 400 continuous scores your AUC is wrong", "")
    c.done()


def check_roc_auc_ovr(fn) -> None:
    c = Check("07.roc_auc_ovr", fn)
    y = _labels(160, 4, seed=8, skew=True)
    g = torch.Generator().manual_seed(9)
    logits = F.one_hot(y, 4) * 1.5 + torch.randn(160, 4, generator=g) * 1.2
    probs = logits.softmax(-1).double()
    out = _float(c, c.call(y, probs), "roc_auc_ovr(y_true, probs)")
    want = C.roc_auc_ovr(y, probs, labels=list(range(4)))
    hard = F.one_hot(probs.argmax(1), 4).double()
    _diagnose(c, out, want, {
        "score with the probabilities probs[:, k], not the predicted class (argmax): AUC needs a ranking":
            C.roc_auc_ovr(y, hard, labels=list(range(4))),
        "the macro average gives every class the same weight; you weighted classes by their frequency":
            C.roc_auc_ovr(y, probs, labels=list(range(4)), average="weighted"),
        "class k against the rest uses column k of probs for every class, with y_true == k as the positives":
            float(np.mean([C.roc_auc(y == k, probs[:, 0], pos_label=True) for k in range(4)])),
    }, f"you returned {out:.4f}, expected {want:.4f}")
    c.expect(_is(out, want), f"you returned {out:.4f}, expected {want:.4f}",
             "mean over classes k of roc_auc(y_true == k, probs[:, k])")
    y3 = torch.tensor([0, 1, 2, 0, 1, 2, 2])
    p3 = torch.tensor([[0.8, 0.1, 0.1], [0.3, 0.4, 0.3], [0.2, 0.2, 0.6], [0.3, 0.3, 0.4],
                       [0.5, 0.3, 0.2], [0.1, 0.1, 0.8], [0.4, 0.4, 0.2]], dtype=torch.float64)
    got = _float(c, c.call(y3, p3), "roc_auc_ovr on 3 classes")
    c.expect(_is(got, C.roc_auc_ovr(y3, p3)), f"on 3 classes with ties you returned {got:.4f}, expected {C.roc_auc_ovr(y3, p3):.4f}",
             "the number of classes is probs.shape[1]")
    c.done()


# ---------------------------------------------------------------------------------------- BLEU, ROUGE

BLEU_CASES = [
    ("the cat is on the mat".split(), ["there is a cat on the mat".split(), "the cat sits on the mat".split()]),
    ("the the the the the the the".split(), ["the cat is on the mat".split(), "there is a cat on the mat".split()]),
    ("a cat a cat on a mat".split(), ["a cat sat on a mat with a hat".split(), "the cat is on the mat".split()]),
    ("it is a guide to action".split(), ["it is a guide to action that ensures that the military".split()]),
]


def _modified_precision_mistakes(hyp, refs, n) -> dict[str, tuple[int, int]]:
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
            (None, sum(sum(rc.values()) for rc in ref_counts)),
    }


def check_modified_precision(fn) -> None:
    c = Check("07.modified_precision", fn)
    for hyp, refs in BLEU_CASES:
        for n in (1, 2, 3):
            out = c.call(hyp, refs, n)
            what = f"modified_precision({' '.join(hyp)!r}, ..., n={n})"
            c.expect(isinstance(out, (tuple, list)) and len(out) == 2, f"{what} returned {out!r}",
                     "return a pair (matched, total) of ints")
            try:
                out = (int(out[0]), int(out[1]))
            except (TypeError, ValueError):
                c.fail(f"{what} returned {out!r}", "return a pair (matched, total) of ints")
            want = T.modified_precision(hyp, refs, n)
            for hint, value in _modified_precision_mistakes(hyp, refs, n).items():
                if value != want and all(v is None or v == o for v, o in zip(value, out)):
                    c.fail(f"{what} gave {out}, expected {want}", hint)
            c.expect(out == want, f"{what} gave {out}, expected {want}",
                     "count the hypothesis n-grams; each matches at most max over references of its count there")
    c.expect(tuple(c.call(["a", "b"], [["a", "b"]], 3)) == (0, 0), "a hypothesis shorter than n has no n-grams: (0, 0)", "")
    c.done()


def check_brevity_penalty(fn) -> None:
    c = Check("07.brevity_penalty", fn)
    hyp_lens, ref_lens = [6, 9, 4], [[7, 12], [8, 10], [5, 9, 2]]
    out = _float(c, c.call(hyp_lens, ref_lens), "brevity_penalty(hyp_lens, ref_lens)")
    want = T.brevity_penalty(hyp_lens, ref_lens)
    hs = sum(hyp_lens)
    longest, shortest = sum(max(r) for r in ref_lens), sum(min(r) for r in ref_lens)
    closest = 7 + 8 + 5  # each hypothesis's nearest reference length (9: 8 and 10 tie, the shorter wins)
    _diagnose(c, out, want, {
        "r is the sum of the *closest* reference lengths (ties: the shorter), not the longest": math.exp(1 - longest / hs) if longest > hs else 1.0,
        "r is the sum of the *closest* reference lengths (ties: the shorter), not the shortest": math.exp(1 - shortest / hs) if shortest > hs else 1.0,
        "BP = exp(1 - r / c): reference length over hypothesis length": math.exp(1 - hs / closest),
        "BLEU's brevity penalty is a corpus quantity: sum c and r over sentences first, then one exp(1 - r/c)":
            float(np.mean([T.brevity_penalty([h], [r]) for h, r in zip(hyp_lens, ref_lens)])),
    }, f"you returned {out:.4f}, expected {want:.4f}")
    c.expect(_is(out, want), f"you returned {out:.4f}, expected {want:.4f}",
             "c = sum of hypothesis lengths, r = sum of closest reference lengths, BP = exp(1 - r/c) if c < r else 1")
    long = _float(c, c.call([10, 12], [[8], [11]]), "for a long output your function")
    c.expect(long == 1.0, f"an output longer than its references gave BP = {long:.4f}",
             "no penalty (BP = 1) when c >= r: only short outputs are penalised")
    tie = _float(c, c.call([10], [[8, 12]]), "with two references equally close your function")
    c.expect(_is(tie, 1.0), f"hypothesis length 10, references 8 and 12: BP = {tie:.4f}, expected 1",
             "on a tie take the shorter reference (sacrebleu's rule), 8 here")
    empty_hint = "c = 0: exp(1 - r/0) is exp(-inf) = 0; return 0.0 before dividing"
    empty = c.call([0], [[5]], error_hints={"division by zero": empty_hint})
    c.expect(_float(c, empty, "brevity_penalty([0], [[5]])") == 0.0, "an empty output should get BP = 0", empty_hint)
    c.done()


ROUGE_CASES = [
    ("police killed the gunman", "police kill the gunman"),
    ("the gunman was shot by police", "police killed the gunman"),
    ("a b c d e f g", "a x c y e z g b"),
    ("the cat sat on the mat and looked at the dog", "the dog sat on a mat"),
]


def _lcsubstring(a, b) -> int:
    best = 0
    for i in range(len(a)):
        for j in range(len(b)):
            k = 0
            while i + k < len(a) and j + k < len(b) and a[i + k] == b[j + k]:
                k += 1
            best = max(best, k)
    return best


def check_rouge_l(fn) -> None:
    c = Check("07.rouge_l", fn)
    for target, prediction in ROUGE_CASES:
        t, p = T.tokenize_rouge(target), T.tokenize_rouge(prediction)
        what = f"rouge_l({target!r}, {prediction!r})"
        out = c.call(t, p)
        c.expect(isinstance(out, (tuple, list)) and len(out) == 3, f"{what} returned {out!r}",
                 "return (precision, recall, f-measure)")
        out = tuple(_float(c, v, what) for v in out)
        want = tuple(T.rouge_l(target, prediction))
        sub = _lcsubstring(t, p)
        mistakes = {
            "the LCS is the longest common *subsequence* (in order, gaps allowed), not the longest common substring":
                (sub / len(p), sub / len(t)),
            "precision divides by the prediction's length, recall by the target's: you swapped them": (want[1], want[0]),
        }
        for hint, (mp, mr) in mistakes.items():
            if _is(out[0], mp) and _is(out[1], mr) and not (_is(want[0], mp) and _is(want[1], mr)):
                c.fail(f"{what} gave P, R = {out[0]:.4f}, {out[1]:.4f}, expected {want[0]:.4f}, {want[1]:.4f}", hint)
        c.expect(_is(out[0], want[0]) and _is(out[1], want[1]),
                 f"{what} gave P, R = {out[0]:.4f}, {out[1]:.4f}, expected {want[0]:.4f}, {want[1]:.4f}",
                 "P = LCS / len(prediction), R = LCS / len(target), with the LCS by dynamic programming")
        if _is(out[2], (out[0] + out[1]) / 2) and not _is(want[2], (want[0] + want[1]) / 2):
            c.fail(f"{what} F = {out[2]:.4f}, expected {want[2]:.4f}", "F is the harmonic mean 2PR / (P + R), not the arithmetic mean")
        c.expect(_is(out[2], want[2]), f"{what} F = {out[2]:.4f}, expected {want[2]:.4f}", "F = 2PR / (P + R)")
    out = c.call(["a", "b"], ["c"], error_hints={"division by zero": "when the LCS is 0, P + R = 0: return (0.0, 0.0, 0.0)"})
    c.expect(isinstance(out, (tuple, list)) and len(out) == 3 and all(float(v) == 0.0 for v in out),
             f"no common token should give (0, 0, 0), got {out!r}", "when P + R = 0, F is 0 (avoid 0/0)")
    c.done()


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


def check_continuation_log_prob(fn) -> None:
    c = Check("07.continuation_log_prob", fn)
    model = _tiny_lm()
    for prompt, cont in [([5, 9, 2, 7, 1, 3], [11, 4, 20]), ([1, 2, 3, 4, 5, 6, 7, 8], [30, 31]), ([17, 3], [8, 8, 8, 8])]:
        want = zero_shot.continuation_log_prob(model, prompt, cont)
        out = _float(c, c.call(model, prompt, cont), "continuation_log_prob(model, prompt_ids, cont_ids)")
        _diagnose(c, out, want, _continuation_mistakes(model, prompt, cont),
                  f"prompt {prompt}, continuation {cont}: you returned {out:.4f}, expected {want:.4f}", rel=1e-5)
        c.expect(out <= 0, f"you returned {out:.4f}, but a log-probability is never positive", "use log_softmax")
        c.expect(_is(out, want, 1e-5), f"prompt {prompt}, continuation {cont}: you returned {out:.4f}, expected {want:.4f}",
                 "one forward pass over prompt + cont, log_softmax, then sum the continuation tokens' entries")
    one = _float(c, c.call(model, [4, 2], [9]), "with a one-token continuation your function")
    c.expect(_is(one, zero_shot.continuation_log_prob(model, [4, 2], [9]), 1e-5),
             "a one-token continuation after a 2-token prompt is wrong", "its log-prob is read at position len(prompt) - 1")
    c.done()


def _logreg_problem() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(10)
    X = torch.randn(90, 4, generator=g, dtype=torch.float64)
    W = torch.randn(4, 3, generator=g, dtype=torch.float64) * 1.5
    y = (X @ W + torch.tensor([1.5, 0.0, -1.0], dtype=torch.float64) + torch.randn(90, 3, generator=g, dtype=torch.float64)).argmax(1)
    return X, y


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
    X, y = _logreg_problem()
    l2 = 0.05
    return X, y, l2, {
        "correct": _fit(X, y, 3, l2),
        "add a bias b (K,) to the logits X @ W + b: without it every decision boundary passes through the origin":
            _fit(X, y, 3, l2, bias=False),
        "the L2 penalty (l2 / 2)·||W||² is missing: add it to the mean cross-entropy": _fit(X, y, 3, 0.0),
        "do not penalise the bias: the L2 term is (l2 / 2)·||W||² on the weights only": _fit(X, y, 3, l2, l2_bias=True),
    }


def check_fit_logistic_regression(fn) -> None:
    c = Check("07.fit_logistic_regression", fn)
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
    c.done()
