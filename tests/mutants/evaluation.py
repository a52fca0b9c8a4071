"""Common mistakes in the evaluation notebooks (07a_perplexity, 07b_classification_metrics, 07c_generation_metrics)."""
import math
from collections import Counter
from difflib import SequenceMatcher

import numpy as np
import torch

from llmlab.evaluation import probe, zero_shot
from llmlab.metrics import classification as C
from llmlab.metrics import lm
from llmlab.metrics import text as T
from tests.mutants import mistake


# References with the notebook's signatures (tensors in, tensors or floats out)
def confusion_matrix(y_true, y_pred, n_classes):
    return torch.from_numpy(C.confusion_matrix(y_true, y_pred, labels=list(range(n_classes))))


def _per_class(cm):
    cm = cm.double()
    tp, pred, true = cm.diag(), cm.sum(0), cm.sum(1)
    f1 = 2 * tp / (pred + true).clamp(min=1)
    return tp, pred, true, f1


def f1_score(cm, average):
    K = cm.shape[0]
    y_true = [i for i in range(K) for j in range(K) for _ in range(int(cm[i, j]))]
    y_pred = [j for i in range(K) for j in range(K) for _ in range(int(cm[i, j]))]
    return C.precision_recall_f1(y_true, y_pred, average=average, labels=list(range(K)), zero_division=0.0)[2]


def roc_auc_ovr(y_true, probs):
    return C.roc_auc_ovr(y_true, probs, labels=list(range(probs.shape[1])))


def rouge_l(target_tokens, pred_tokens):
    return tuple(T.rouge_l(" ".join(target_tokens), " ".join(pred_tokens)))


REFERENCE = {
    "check_strided_windows": lm.strided_windows,
    "check_strided_perplexity": lm.strided_perplexity,
    "check_confusion_matrix": confusion_matrix,
    "check_f1_score": f1_score,
    "check_roc_auc": C.roc_auc,
    "check_roc_auc_ovr": roc_auc_ovr,
    "check_modified_precision": T.modified_precision,
    "check_brevity_penalty": T.brevity_penalty,
    "check_rouge_l": rouge_l,
    "check_continuation_log_prob": zero_shot.continuation_log_prob,
    "check_fit_logistic_regression": probe.fit_logistic_regression,
}


# strided_windows
@mistake("check_strided_windows", "end - begin scores the overlap twice")
def windows_trg_is_window_length(n_tokens, window, stride):
    return [(b, e, e - b) for b, e, _ in lm.strided_windows(n_tokens, window, stride)]


@mistake("check_strided_windows", "the first window scores all its tokens")
def windows_trg_is_stride(n_tokens, window, stride):
    return [(b, e, stride) for b, e, _ in lm.strided_windows(n_tokens, window, stride)]


@mistake("check_strided_windows", "stop after the first window whose end reaches n_tokens")
def windows_no_break(n_tokens, window, stride):
    out, prev_end = [], 0
    for begin in range(0, n_tokens, stride):
        end = min(begin + window, n_tokens)
        out.append((begin, end, end - prev_end))
        prev_end = end
    return out


@mistake("check_strided_windows", "keep sliding until a window reaches n_tokens")
def windows_stop_early(n_tokens, window, stride):
    out, prev_end = [], 0
    for begin in range(0, max(n_tokens - window, 0) + 1, stride):
        end = min(begin + window, n_tokens)
        out.append((begin, end, end - prev_end))
        prev_end = end
    return out


# strided_perplexity
def _window_scores(model, ids, window, stride):
    with torch.no_grad():
        for begin, end, trg_len in lm.strided_windows(len(ids), window, stride):
            x = ids[begin:end]
            lp = model(x[None])[0].log_softmax(-1)
            yield lp, x, trg_len


@mistake("check_strided_perplexity", "the others are context")
def ppl_counts_context(model, ids, window, stride):
    nll = [-lp[:-1].gather(-1, x[1:, None]) for lp, x, _ in _window_scores(model, ids, window, stride)]
    return torch.cat(nll).mean().exp().item()


@mistake("check_strided_perplexity", "not the sum of trg_len")
def ppl_divides_by_n(model, ids, window, stride):
    total, n = 0.0, 0
    for lp, x, trg_len in _window_scores(model, ids, window, stride):
        total -= lp[:-1].gather(-1, x[1:, None])[-trg_len:].sum().item()
        n += trg_len
    return math.exp(total / n)


@mistake("check_strided_perplexity", "not the windows' means")
def ppl_mean_of_window_means(model, ids, window, stride):
    means = [-lp[:-1].gather(-1, x[1:, None])[-trg_len:].mean().item()
             for lp, x, trg_len in _window_scores(model, ids, window, stride)]
    return math.exp(sum(means) / len(means))


@mistake("check_strided_perplexity", "predict token t + 1")
def ppl_off_by_one(model, ids, window, stride):
    nll = [-lp.gather(-1, x[:, None])[-trg_len:] for lp, x, trg_len in _window_scores(model, ids, window, stride)]
    return torch.cat(nll).mean().exp().item()


# confusion_matrix
@mistake("check_confusion_matrix", "rows are the true classes")
def cm_transposed(y_true, y_pred, n_classes):
    return confusion_matrix(y_true, y_pred, n_classes).T


@mistake("check_confusion_matrix", "accumulate=True")
def cm_no_accumulate(y_true, y_pred, n_classes):
    cm = torch.zeros(n_classes, n_classes, dtype=torch.long)
    cm[y_true, y_pred] += 1
    return cm


@mistake("check_confusion_matrix", "size the matrix (n_classes, n_classes)")
def cm_sized_by_data(y_true, y_pred, n_classes):
    k = int(max(y_true.max(), y_pred.max())) + 1
    return confusion_matrix(y_true, y_pred, k)


# f1_score
@mistake("check_f1_score", "not the harmonic mean of macro-precision and macro-recall")
def f1_harmonic_of_macro(cm, average):
    if average != "macro":
        return f1_score(cm, average)
    tp, pred, true, _ = _per_class(cm)
    p, r = (tp / pred.clamp(min=1)).mean(), (tp / true.clamp(min=1)).mean()
    return (2 * p * r / (p + r)).item()


@mistake("check_f1_score", "micro-F1 pools the counts")
def f1_micro_is_macro(cm, average):
    return f1_score(cm, "macro" if average == "micro" else average)


@mistake("check_f1_score", "number of *true* examples")
def f1_weighted_by_predictions(cm, average):
    if average != "weighted":
        return f1_score(cm, average)
    _, pred, _, f1 = _per_class(cm)
    return ((f1 * pred).sum() / pred.sum()).item()


@mistake("check_f1_score", "zero_division=0")
def f1_nan_for_empty_class(cm, average):
    tp, pred, true, _ = _per_class(cm)
    f1 = 2 * tp / (pred + true)
    if average == "macro":
        return f1.mean().item()
    return f1_score(cm, average)


# roc_auc
def _pairs(y_true, scores):
    pos, neg = scores[y_true == 1], scores[y_true == 0]
    return pos[:, None], neg[None, :]


@mistake("check_roc_auc", "counts 1/2, not 0")
def auc_ties_count_zero(y_true, scores):
    pos, neg = _pairs(y_true, scores)
    return (pos > neg).double().mean().item()


@mistake("check_roc_auc", "counts 1/2, not 1")
def auc_ties_count_one(y_true, scores):
    pos, neg = _pairs(y_true, scores)
    return (pos >= neg).double().mean().item()


@mistake("check_roc_auc", "orientation is reversed")
def auc_reversed(y_true, scores):
    pos, neg = _pairs(y_true, scores)
    return ((pos < neg).double() + 0.5 * (pos == neg).double()).mean().item()


# roc_auc_ovr
@mistake("check_roc_auc_ovr", "not the predicted class")
def ovr_hard_predictions(y_true, probs):
    hard = torch.nn.functional.one_hot(probs.argmax(1), probs.shape[1]).double()
    return roc_auc_ovr(y_true, hard)


@mistake("check_roc_auc_ovr", "every class the same weight")
def ovr_weighted(y_true, probs):
    return C.roc_auc_ovr(y_true, probs, labels=list(range(probs.shape[1])), average="weighted")


# modified_precision
def _grams(tokens, n):
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


@mistake("check_modified_precision", "clip each n-gram's count")
def precision_unclipped(hyp, refs, n):
    grams, seen = _grams(hyp, n), set().union(*(_grams(r, n) for r in refs))
    return sum(c for g, c in grams.items() if g in seen), sum(grams.values())


@mistake("check_modified_precision", "not the sum over references")
def precision_clip_by_sum(hyp, refs, n):
    grams, ref = _grams(hyp, n), sum((_grams(r, n) for r in refs), Counter())
    return sum(min(c, ref[g]) for g, c in grams.items()), sum(grams.values())


@mistake("check_modified_precision", "not only the first")
def precision_first_reference(hyp, refs, n):
    return T.modified_precision(hyp, refs[:1], n)


# brevity_penalty
@mistake("check_brevity_penalty", "not the longest")
def bp_longest_reference(hyp_lens, ref_lens):
    c, r = sum(hyp_lens), sum(max(refs) for refs in ref_lens)
    return 1.0 if c >= r else (math.exp(1 - r / c) if c else 0.0)


@mistake("check_brevity_penalty", "reference length over hypothesis length")
def bp_ratio_reversed(hyp_lens, ref_lens):
    bp = T.brevity_penalty(hyp_lens, ref_lens)
    if bp in (0.0, 1.0):
        return bp
    r = 1 - math.log(bp)  # r / c
    return math.exp(1 - 1 / r)


@mistake("check_brevity_penalty", "corpus quantity")
def bp_per_sentence(hyp_lens, ref_lens):
    return float(np.mean([T.brevity_penalty([h], [r]) for h, r in zip(hyp_lens, ref_lens)]))


@mistake("check_brevity_penalty", "only short outputs are penalised")
def bp_always(hyp_lens, ref_lens):
    c = sum(hyp_lens)
    r = sum(min(refs, key=lambda x: (abs(x - h), x)) for h, refs in zip(hyp_lens, ref_lens))
    return math.exp(1 - r / c) if c else 0.0


# rouge_l
def _substring(a, b):
    """Length of the longest common *contiguous* run of tokens."""
    return SequenceMatcher(None, a, b, autojunk=False).find_longest_match(0, len(a), 0, len(b)).size


@mistake("check_rouge_l", "not the longest common substring")
def rouge_l_substring(target_tokens, pred_tokens):
    lcs = _substring(target_tokens, pred_tokens)
    p, r = lcs / len(pred_tokens), lcs / len(target_tokens)
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


@mistake("check_rouge_l", "you swapped them")
def rouge_l_swapped(target_tokens, pred_tokens):
    p, r, f = rouge_l(target_tokens, pred_tokens)
    return r, p, f


@mistake("check_rouge_l", "harmonic mean")
def rouge_l_arithmetic_f(target_tokens, pred_tokens):
    p, r, _ = rouge_l(target_tokens, pred_tokens)
    return p, r, (p + r) / 2


# continuation_log_prob
def _log_probs(model, prompt_ids, cont_ids):
    ids = torch.tensor([list(prompt_ids) + list(cont_ids)])
    with torch.no_grad():
        return model(ids)[0].log_softmax(-1), ids[0]


@mistake("check_continuation_log_prob", "predict token t + 1")
def cont_off_by_one(model, prompt_ids, cont_ids):
    lp, ids = _log_probs(model, prompt_ids, cont_ids)
    P = len(prompt_ids)
    return lp[P:].gather(-1, ids[P:, None]).sum().item()


@mistake("check_continuation_log_prob", "not probabilities")
def cont_sums_probabilities(model, prompt_ids, cont_ids):
    lp, ids = _log_probs(model, prompt_ids, cont_ids)
    P = len(prompt_ids)
    return lp[P - 1 : -1].gather(-1, ids[P:, None]).exp().sum().item()


@mistake("check_continuation_log_prob", "score only the continuation")
def cont_scores_prompt(model, prompt_ids, cont_ids):
    lp, ids = _log_probs(model, prompt_ids, cont_ids)
    return lp[:-1].gather(-1, ids[1:, None]).sum().item()


@mistake("check_continuation_log_prob", "not a mean")
def cont_mean(model, prompt_ids, cont_ids):
    lp, ids = _log_probs(model, prompt_ids, cont_ids)
    P = len(prompt_ids)
    return lp[P - 1 : -1].gather(-1, ids[P:, None]).mean().item()


# fit_logistic_regression
def _fit_variant(X, y, n_classes, l2, steps, bias=True, l2_bias=False):
    W = torch.zeros(X.shape[1], n_classes, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(n_classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([W, b] if bias else [W], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(X.double() @ W + b, y) + 0.5 * l2 * W.pow(2).sum()
        if l2_bias:
            loss = loss + 0.5 * l2 * b.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return W.detach().to(X.dtype), b.detach().to(X.dtype)


@mistake("check_fit_logistic_regression", "add a bias")
def logreg_no_bias(X, y, n_classes, l2, steps=100):
    return _fit_variant(X, y, n_classes, l2, steps, bias=False)


@mistake("check_fit_logistic_regression", "penalty (l2 / 2)·||W||² is missing")
def logreg_no_l2(X, y, n_classes, l2, steps=100):
    return _fit_variant(X, y, n_classes, 0.0, steps)


@mistake("check_fit_logistic_regression", "do not penalise the bias")
def logreg_l2_on_bias(X, y, n_classes, l2, steps=100):
    return _fit_variant(X, y, n_classes, l2, steps, l2_bias=True)


# ---------------------------------------------------------------- more common mistakes

@mistake("check_f1_score", "not by the number of classes")
def f1_weighted_over_class_count(cm, average):
    if average != "weighted":
        return f1_score(cm, average)
    _, _, true, f1 = _per_class(cm)
    return ((f1 * true).sum() / len(true)).item()


@mistake("check_brevity_penalty", "wherever it stands in the list")
def bp_first_listed_on_tie(hyp_lens, ref_lens):
    c = sum(hyp_lens)
    r = sum(min(refs, key=lambda x: abs(x - h)) for h, refs in zip(hyp_lens, ref_lens))
    return 1.0 if c >= r else (math.exp(1 - r / c) if c else 0.0)


# ---------------------------------------------------------------- right on the examples, wrong in general

@mistake("check_strided_windows", "the last window may hold one new token", kind="overfit")
def windows_need_two_tokens(n_tokens, window, stride):
    out, prev_end = [], 0
    for begin in range(0, n_tokens - 1, stride):  # "a window needs 2 tokens to predict anything"
        end = min(begin + window, n_tokens)
        out.append((begin, end, end - prev_end))
        prev_end = end
        if end == n_tokens:
            break
    return out


def _nll(log_probs, x, trg_len):
    return -log_probs.gather(-1, x[1:, None])[:, 0][-trg_len:]


def _ppl(model, ids, window, stride, log_probs):
    total, count = 0.0, 0
    for begin, end, trg_len in lm.strided_windows(len(ids), window, stride):
        x = ids[begin:end]
        scored = _nll(log_probs(model(x[None])[0, :-1]), x, trg_len)
        total, count = total + scored.sum().item(), count + len(scored)
    return math.exp(total / count)


@mistake("check_strided_perplexity", "use log_softmax", kind="overfit")
def ppl_softmax_log(model, ids, window, stride):
    return _ppl(model, ids, window, stride, lambda logits: logits.float().softmax(-1).log())


@mistake("check_confusion_matrix", "convert with .long()", kind="overfit")
def cm_one_hot_product(y_true, y_pred, n_classes):
    F = torch.nn.functional
    return F.one_hot(y_true, n_classes).T @ F.one_hot(y_pred, n_classes)


@mistake("check_f1_score", "the binary F1 is class 1's alone", kind="overfit")
def f1_binary_for_two_classes(cm, average):
    if cm.shape[0] == 2 and average != "micro":  # two classes: the positive class's F1
        return _per_class(cm)[3][1].item()
    return f1_score(cm, average)


def _auc_pairs(y, pos_scores_higher):
    pair = y[:, None] * (1 - y[None, :])  # (positive, negative) pairs
    return (pair * pos_scores_higher).sum().item() / pair.sum().item()


@mistake("check_roc_auc", "y_true may be a bool tensor", kind="overfit")
def auc_label_arithmetic(y_true, scores):
    s = scores[:, None], scores[None, :]
    return _auc_pairs(y_true, (s[0] > s[1]).double() + 0.5 * (s[0] == s[1]).double())


@mistake("check_roc_auc_ovr", "the number of classes is probs.shape[1]", kind="overfit")
def ovr_example_classes(y_true, probs):
    classes = [0, 1, 2, 3][: probs.shape[1]]  # the classes of the examples
    return sum(C.roc_auc(y_true == k, probs[:, k], pos_label=True) for k in classes) / len(classes)


@mistake("check_modified_precision", "max(len(hyp) - n + 1, 0)", kind="overfit")
def precision_total_from_length(hyp, refs, n):
    return T.modified_precision(hyp, refs, n)[0], len(hyp) - n + 1


@mistake("check_brevity_penalty", "an empty sentence only adds 0 to c", kind="overfit")
def bp_zero_for_any_empty(hyp_lens, ref_lens):
    return 0.0 if 0 in hyp_lens else T.brevity_penalty(hyp_lens, ref_lens)


@mistake("check_rouge_l", "on a hidden case (an empty prediction)", kind="overfit")
def rouge_l_divides_first(target_tokens, pred_tokens):
    lcs = T.lcs_length(target_tokens, pred_tokens)
    p, r = lcs / len(pred_tokens), lcs / len(target_tokens)
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


@mistake("check_continuation_log_prob", "use log_softmax", kind="overfit")
def cont_softmax_log(model, prompt_ids, cont_ids):
    ids = torch.tensor([prompt_ids + cont_ids])
    probs = model(ids)[0, len(prompt_ids) - 1 : -1].float().softmax(-1)
    return probs.log().gather(-1, ids[0, len(prompt_ids):, None]).sum().item()


@mistake("check_continuation_log_prob", "every prompt token is context", kind="overfit")
def cont_last_ten_tokens(model, prompt_ids, cont_ids):
    ids = (prompt_ids + cont_ids)[-10:]  # "keep the context short"
    return zero_shot.continuation_log_prob(model, ids[: len(ids) - len(cont_ids)], cont_ids)


@mistake("check_fit_logistic_regression", "not from the example", kind="overfit")
def logreg_three_classes(X, y, n_classes, l2, steps=100):
    W, b = _fit_variant(X, y, 3, l2, steps)  # the example's 3 classes
    return W, b


# ---------------------------------------------------------------- changing the caller's inputs

@mistake("check_strided_perplexity", "leave the inputs as they are", kind="inplace")
def ppl_model_to_float(model, ids, window, stride):
    model.float()  # nn.Module.float() converts the caller's model in place
    return _ppl(model, ids, window, stride, lambda logits: logits.log_softmax(-1))


@mistake("check_confusion_matrix", "leave the inputs as they are", kind="inplace")
def cm_flat_index_in_place(y_true, y_pred, n_classes):
    y_true *= n_classes
    y_true += y_pred
    return torch.bincount(y_true, minlength=n_classes * n_classes).view(n_classes, n_classes)


@mistake("check_f1_score", "leave the inputs as they are", kind="inplace")
def f1_zero_diagonal_in_place(cm, average):
    tp = cm.diag().clone().double()
    cm.fill_diagonal_(0)  # the errors: FP in the columns, FN in the rows
    fp, fn = cm.sum(0), cm.sum(1)
    if average == "micro":
        return (tp.sum() / (tp.sum() + fp.sum())).item()
    f1 = 2 * tp / (2 * tp + fp + fn).clamp(min=1)
    return f1.mean().item() if average == "macro" else ((f1 * (tp + fn)).sum() / (tp + fn).sum()).item()


@mistake("check_roc_auc", "leave the inputs as they are", kind="inplace")
def auc_centre_in_place(y_true, scores):
    scores -= scores.mean()
    pos, neg = _pairs(y_true, scores)
    return ((pos > neg).double() + 0.5 * (pos == neg).double()).mean().item()


@mistake("check_roc_auc_ovr", "leave the inputs as they are", kind="inplace")
def ovr_log_in_place(y_true, probs):
    probs.log_()  # the same order, in log space
    return roc_auc_ovr(y_true, probs)


@mistake("check_continuation_log_prob", "leave the inputs as they are", kind="inplace")
def cont_model_to_float(model, prompt_ids, cont_ids):
    return zero_shot.continuation_log_prob(model.float(), prompt_ids, cont_ids)


@mistake("check_fit_logistic_regression", "leave the inputs as they are", kind="inplace")
def logreg_standardise_in_place(X, y, n_classes, l2, steps=100):
    X -= X.mean(0)  # centre the features (the caller's X)
    return probe.fit_logistic_regression(X, y, n_classes, l2, steps)


# ---------------------------------------------------------------- another dtype than the reference's

@mistake("check_strided_perplexity", "compute the log-softmax in float32", kind="dtype")
def ppl_bf16_log_softmax(model, ids, window, stride):
    return _ppl(model, ids, window, stride, lambda logits: logits.log_softmax(-1))


@mistake("check_confusion_matrix", "create the matrix with dtype=torch.long", kind="dtype")
def cm_float_counts(y_true, y_pred, n_classes):
    cm = torch.zeros(n_classes, n_classes)
    for t, p in zip(y_true, y_pred):
        cm[t, p] += 1
    return cm


@mistake("check_f1_score", "F1 is a fraction", kind="dtype")
def f1_integer_tensor(cm, average):
    tp, pred, true = cm.diag(), cm.sum(0), cm.sum(1)
    if average == "micro":
        return (tp.sum() // cm.sum()).item()
    f1 = torch.zeros_like(tp)  # int64, like cm
    for k in range(len(tp)):
        f1[k] = 2 * tp[k] / max(pred[k] + true[k], 1)
    return f1.double().mean().item() if average == "macro" else ((f1 * true).sum() / true.sum()).item()


@mistake("check_roc_auc", "do not call .float()", kind="dtype")
def auc_float32(y_true, scores):
    pos, neg = _pairs(y_true, scores.float())
    return ((pos > neg).double() + 0.5 * (pos == neg).double()).mean().item()


@mistake("check_roc_auc_ovr", "do not call .float()", kind="dtype")
def ovr_float32(y_true, probs):
    return roc_auc_ovr(y_true, probs.float())


@mistake("check_continuation_log_prob", "compute the log-softmax in float32", kind="dtype")
def cont_bf16_log_softmax(model, prompt_ids, cont_ids):
    ids = torch.tensor([prompt_ids + cont_ids])
    lp = model(ids)[0, len(prompt_ids) - 1 : -1].log_softmax(-1)
    return lp.gather(-1, ids[0, len(prompt_ids):, None]).sum().item()


@mistake("check_fit_logistic_regression", "then return W.to(X.dtype)", kind="dtype")
def logreg_float64(X, y, n_classes, l2, steps=100):
    W, b = probe.fit_logistic_regression(X.double(), y, n_classes, l2, steps)
    return W, b


# ---------------------------------------------------------------- escapes found by a red team

@mistake("check_confusion_matrix", "overflows a uint8 tensor", kind="overfit")
def cm_flat_index_in_input_dtype(y_true, y_pred, n_classes):
    flat = y_true * n_classes + y_pred  # in the ids' own dtype
    return torch.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


@mistake("check_f1_score", "it is not the macro mean", kind="overfit")
def f1_weighted_is_macro_for_two_classes(cm, average):
    if cm.shape[0] == 2 and average == "weighted":
        return f1_score(cm, "macro")
    return f1_score(cm, average)


@mistake("check_fit_logistic_regression", "a class may have no example in y")
def logreg_classes_from_labels(X, y, n_classes, l2, steps=100):
    return probe.fit_logistic_regression(X, y, int(y.max()) + 1, l2, steps)
