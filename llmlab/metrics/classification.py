"""Classification metrics: counts of right and wrong answers, and curves over a score threshold.

Labelled predictions (one class per example) give a confusion matrix C, rows = true class,
columns = predicted class. For one class c, with TP = C[c, c], FP = column sum - TP, FN = row sum - TP:

    precision_c = TP / (TP + FP)      of what we called c, the fraction that was c
    recall_c    = TP / (TP + FN)      of what was c, the fraction we found
    F1_c        = 2 TP / (2 TP + FP + FN)   (the harmonic mean of the two, computed from counts)

Several classes are summarised by an average: "micro" pools the counts of every class first (in
single-label classification micro P = micro R = micro F1 = accuracy), "macro" takes the plain mean
over classes (every class counts the same, however rare), "weighted" weights each class by its
support (its number of true examples), "binary" reports the class ``pos_label`` alone.

Scored predictions (a real number per example, higher = more positive) give a curve: sweep a
threshold t down through the distinct scores and predict "positive" when score >= t.

    ROC:  (FPR, TPR) = (FP / N, TP / P) at each t;  ROC-AUC = area under it
          = P(score of a random positive > score of a random negative) + 0.5 P(tie)
    PR:   (recall, precision) at each t;  AP = sum_n (R_n - R_{n-1}) P_n  (step integral)

Conventions follow scikit-learn (its results are what the tests compare with); where sklearn warns
and returns NaN or a made-up value (a curve with no positives or no negatives), these functions
raise ``ValueError`` instead, because a number that is not defined should not be averaged silently.
"""
from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Hashable, Sequence

import numpy as np

from llmlab import validate

AVERAGES = ("binary", "micro", "macro", "weighted", None)


class UndefinedMetricWarning(UserWarning):
    """A precision, recall or F1 had a 0/0 and was set to ``zero_division`` (default 0.0)."""


# ---------------------------------------------------------------------------------------------
# Input checks
# ---------------------------------------------------------------------------------------------


def _to_list(name: str, values) -> list:
    """A 1-D sequence (list, tuple, NumPy array, torch tensor) as a Python list."""
    if isinstance(values, (str, bytes)):
        raise TypeError(f"{name} must be a 1-D sequence, got {type(values).__name__}")
    if hasattr(values, "tolist"):  # NumPy arrays and torch tensors
        if getattr(values, "ndim", 1) != 1:
            raise ValueError(f"{name} must be 1-D, got shape {tuple(values.shape)}")
        return values.tolist()
    if not isinstance(values, (Sequence, range)):
        raise TypeError(f"{name} must be a 1-D sequence, got {type(values).__name__}")
    return list(values)


def _class_labels(name: str, values) -> list:
    """Class labels: hashable scalars (ints, strings, ...); a fractional float is a score, not a label."""
    out = _to_list(name, values)
    for v in out:
        if v is None or isinstance(v, (list, tuple, dict, set)) or not isinstance(v, Hashable):
            raise TypeError(f"{name} must hold class labels (ints or strings), found {type(v).__name__} {v!r}")
        if isinstance(v, numbers.Real) and not isinstance(v, numbers.Integral) and not float(v).is_integer():
            # NaN and 0.73 both land here: the caller passed scores or probabilities.
            raise ValueError(
                f"{name} holds {v!r}, which is not a class label; threshold scores into classes first "
                "(or use roc_auc / average_precision for scores)"
            )
    return out


def _check_pair(y_true, y_pred) -> tuple[list, list]:
    y_true, y_pred = _class_labels("y_true", y_true), _class_labels("y_pred", y_pred)
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true and y_pred must have the same length, got {len(y_true)} and {len(y_pred)}")
    if not y_true:
        raise ValueError("empty input: need at least one example")
    return y_true, y_pred


def _sorted(values) -> list:
    try:
        return sorted(values)
    except TypeError:
        raise TypeError(f"labels must be of one comparable type (all ints or all strings), got {values!r}") from None


def _class_set(y_true: list, y_pred: list, labels) -> list:
    """The classes, in order: ``labels`` if given, else the sorted union of y_true and y_pred (as sklearn).

    Unlike sklearn, which silently drops examples whose class is not in ``labels``, a label outside
    the given set is an error here: dropped examples would change every count without a trace.
    """
    if labels is None:
        return _sorted(set(y_true) | set(y_pred))
    labels = _class_labels("labels", labels)
    if not labels:
        raise ValueError("labels is empty: give at least one class")
    if len(set(labels)) != len(labels):
        raise ValueError(f"labels holds duplicates: {labels!r}")
    unknown = (set(y_true) | set(y_pred)) - set(labels)
    if unknown:
        raise ValueError(f"y_true/y_pred hold labels {_sorted(unknown)!r} that are not in labels={labels!r}")
    return labels


# ---------------------------------------------------------------------------------------------
# Labelled predictions
# ---------------------------------------------------------------------------------------------


def accuracy(y_true, y_pred) -> float:
    """Fraction of examples whose predicted class is the true class: (1/N) sum_i [y_pred_i == y_true_i]."""
    y_true, y_pred = _check_pair(y_true, y_pred)
    return sum(t == p for t, p in zip(y_true, y_pred)) / len(y_true)


def confusion_matrix(y_true, y_pred, labels=None) -> np.ndarray:
    """Counts C[i, j] = number of examples of true class labels[i] predicted as labels[j].

    Rows are true classes, columns predicted classes, in the order of ``labels`` (default: the
    sorted union of the classes seen, as sklearn). Returns an int64 array of shape (K, K).
    The diagonal holds the correct answers; row sums are the supports, column sums the predictions.
    """
    y_true, y_pred = _check_pair(y_true, y_pred)
    classes = _class_set(y_true, y_pred, labels)
    index = {c: i for i, c in enumerate(classes)}
    cm = np.zeros((len(classes), len(classes)), dtype=np.int64)
    for t, p in zip(y_true, y_pred):
        cm[index[t], index[p]] += 1
    return cm


def _check_zero_division(zero_division) -> float:
    """The value a 0/0 becomes: "warn" (0.0 and a warning, sklearn's default), 0.0, 1.0 or NaN."""
    if isinstance(zero_division, str):
        if zero_division == "warn":
            return 0.0
    elif isinstance(zero_division, numbers.Real) and not isinstance(zero_division, bool):
        if zero_division in (0, 1) or math.isnan(zero_division):
            return float(zero_division)
    raise ValueError(f"zero_division must be 'warn', 0.0, 1.0 or float('nan'), got {zero_division!r}")


def _divide(num: np.ndarray, den: np.ndarray, zero_value: float) -> tuple[np.ndarray, bool]:
    """num / den element-wise, with ``zero_value`` where den == 0; also says whether that happened."""
    undefined = den == 0
    out = num / np.where(undefined, 1, den)  # divide by 1 where undefined, then overwrite
    out[undefined] = zero_value
    return out, bool(undefined.any())


def _nan_average(values: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Mean of the non-NaN values (weighted if ``weights``), as sklearn averages per-class scores.

    NaN appears only with zero_division=NaN: "undefined, leave this class out of the average".
    If the remaining weights are all zero, the plain mean is used (sklearn does the same).
    """
    keep = ~np.isnan(values)
    if not keep.any():
        return float("nan")
    values = values[keep]
    if weights is None or weights[keep].sum() == 0:
        return float(np.mean(values))
    return float(np.average(values, weights=weights[keep]))


def _counts(cm: np.ndarray, classes: list, average, pos_label) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class (or pooled, for micro/binary) TP, predicted and true counts."""
    tp = np.diag(cm)
    pred_sum = cm.sum(axis=0)  # TP + FP: everything predicted as the class
    true_sum = cm.sum(axis=1)  # TP + FN: everything that is the class (the support)
    if average == "micro":
        return tp.sum(keepdims=True), pred_sum.sum(keepdims=True), true_sum.sum(keepdims=True)
    if average == "binary":
        if pos_label not in classes:  # one class only, and it is the negative one: nothing to find
            return np.zeros(1, np.int64), np.zeros(1, np.int64), np.zeros(1, np.int64)
        i = classes.index(pos_label)
        return tp[i : i + 1], pred_sum[i : i + 1], true_sum[i : i + 1]
    return tp, pred_sum, true_sum


def precision_recall_f1(
    y_true, y_pred, average: str | None = "binary", pos_label=1, labels=None, zero_division="warn"
):
    """Precision, recall and F1 as ``(precision, recall, f1)``, like sklearn's
    ``precision_recall_fscore_support`` (whose 4th value, the support, is ``confusion_matrix(...).sum(1)``).

        precision = TP / (TP + FP)    recall = TP / (TP + FN)    F1 = 2 TP / (2 TP + FP + FN)

    average: "binary" (class ``pos_label`` only; at most two classes), "micro" (pool the counts
    of all classes), "macro" (mean over classes), "weighted" (mean weighted by support), or None
    (per-class arrays in the order of ``labels``). Returns floats, or three arrays for None.
    pos_label: the positive class for "binary" (ignored by the other averages). labels: the
    classes and their order (default: sorted union of y_true and y_pred); may include classes
    that never occur; every label in the data must be among them.

    zero_division: the value of a 0/0 (a class never predicted has no precision; one never true
    has no recall): "warn" (0.0 and an ``UndefinedMetricWarning``, sklearn's default), 0.0, 1.0,
    or NaN (leave that class out of the average). F1 is 0/0 only when the class is neither true
    nor predicted anywhere; with no true positives but something to find, F1 is 0.
    """
    if average not in AVERAGES:
        raise ValueError(f"average must be one of {AVERAGES}, got {average!r}")
    zero_value = _check_zero_division(zero_division)
    y_true, y_pred = _check_pair(y_true, y_pred)
    classes = _class_set(y_true, y_pred, labels)
    if average == "binary":
        if len(classes) > 2:
            raise ValueError(
                f"average='binary' needs at most two classes, got {len(classes)}: {classes!r}; "
                "choose average='micro', 'macro' or 'weighted'"
            )
        if len(classes) == 2 and pos_label not in classes:
            raise ValueError(f"pos_label={pos_label!r} is not one of the classes {classes!r}")

    cm = confusion_matrix(y_true, y_pred, labels=classes)
    tp, pred_sum, true_sum = _counts(cm, classes, average, pos_label)
    precision, p_undef = _divide(tp, pred_sum, zero_value)
    recall, r_undef = _divide(tp, true_sum, zero_value)
    # F1 from counts, not from the two ratios: it stays defined when only one of them is 0/0.
    f1, f_undef = _divide(2.0 * tp, true_sum + pred_sum, zero_value)
    if zero_division == "warn" and (p_undef or r_undef or f_undef):
        which = [name for name, bad in (("precision", p_undef), ("recall", r_undef), ("F1", f_undef)) if bad]
        warnings.warn(
            f"{', '.join(which)} ill-defined (0/0) for some class and set to 0.0; "
            "pass zero_division=0.0, 1.0 or float('nan') to choose (and silence this)",
            UndefinedMetricWarning,
            stacklevel=2,
        )

    if average is None:
        return precision, recall, f1
    weights = true_sum if average == "weighted" else None
    return _nan_average(precision, weights), _nan_average(recall, weights), _nan_average(f1, weights)


# ---------------------------------------------------------------------------------------------
# Scored predictions: curves over a threshold
# ---------------------------------------------------------------------------------------------


def _check_scores(y_true, scores, pos_label) -> tuple[np.ndarray, np.ndarray]:
    """y_true as a boolean array (True = positive), scores as finite float64."""
    labels = _class_labels("y_true", y_true)
    raw = _to_list("scores", scores)
    if len(labels) != len(raw):
        raise ValueError(f"y_true and scores must have the same length, got {len(labels)} and {len(raw)}")
    if not labels:
        raise ValueError("empty input: need at least one example")
    classes = set(labels)
    if len(classes) > 2:
        raise ValueError(
            f"y_true must be binary (two classes), got {len(classes)}: {_sorted(classes)!r}; "
            "for more classes, score each class against the rest"
        )
    for s in raw:
        if isinstance(s, bool) or not isinstance(s, numbers.Real):
            raise TypeError(f"scores must be real numbers, found {type(s).__name__} {s!r}")
    scores = np.asarray(raw, dtype=np.float64)
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN")
    if not np.isfinite(scores).all():
        raise ValueError("scores contain inf; scores must be finite")
    return np.array([y == pos_label for y in labels], dtype=bool), scores


def _counts_at_thresholds(is_pos: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FP and TP counts when predicting positive for score >= t, for each distinct score t (descending).

    Sort by score, highest first; the running count of positives is TP for a threshold at that
    example's score. Tied examples share one threshold, so only the last example of each run of
    equal scores gives a point: ties move the curve diagonally (that is the 0.5 credit in AUC).
    """
    order = np.argsort(-scores, kind="stable")
    scores, is_pos = scores[order], is_pos[order]
    last_of_run = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]
    tps = np.cumsum(is_pos, dtype=np.float64)[last_of_run]
    fps = (last_of_run + 1) - tps  # everything above the threshold that is not a TP
    return fps, tps, scores[last_of_run]


def roc_curve(y_true, scores, pos_label=1, drop_intermediate: bool = False):
    """ROC curve: ``(fpr, tpr, thresholds)``, three float64 arrays, as sklearn's ``roc_curve``.

        fpr[i] = FP / N,  tpr[i] = TP / P  when predicting positive for score >= thresholds[i]

    thresholds are the distinct scores in decreasing order, preceded by ``inf`` (predict nothing
    positive: the point (0, 0)). ``drop_intermediate=False`` (the default here; sklearn's is True)
    keeps every distinct score; True drops points on a straight line between their neighbours,
    exactly as sklearn does, which changes neither the plot nor the area.
    Raises ValueError if y_true has no positives or no negatives (the rates would be 0/0).
    """
    validate.flag("drop_intermediate", drop_intermediate)
    is_pos, scores = _check_scores(y_true, scores, pos_label)
    fps, tps, thresholds = _counts_at_thresholds(is_pos, scores)
    if tps[-1] == 0:
        raise ValueError(f"y_true has no positive examples (pos_label={pos_label!r}): the TPR is 0/0")
    if fps[-1] == 0:
        raise ValueError("y_true has no negative examples: the FPR is 0/0; a ROC curve needs both classes")
    if drop_intermediate and len(fps) > 2:
        # keep a point where the curve bends (non-zero second difference) and both end points
        corner = np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True]
        fps, tps, thresholds = fps[corner], tps[corner], thresholds[corner]
    fps, tps = np.r_[0.0, fps], np.r_[0.0, tps]
    thresholds = np.r_[np.inf, thresholds]
    return fps / fps[-1], tps / tps[-1], thresholds


def roc_auc(y_true, scores, pos_label=1) -> float:
    """Area under the ROC curve by the trapezoid rule, equal to sklearn's ``roc_auc_score``.

        AUC = sum_i (fpr[i+1] - fpr[i]) (tpr[i+1] + tpr[i]) / 2

    This is the Mann-Whitney statistic: the fraction of (positive, negative) pairs the scores put
    in the right order, a tie counting 1/2 (a tie is a diagonal step of the curve: half a square).
    Raises ValueError when y_true holds only one class (sklearn warns and returns NaN).
    """
    fpr, tpr, _ = roc_curve(y_true, scores, pos_label)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def precision_recall_curve(y_true, scores, pos_label=1):
    """Precision-recall curve: ``(precision, recall, thresholds)`` as sklearn's ``precision_recall_curve``.

        precision[i] = TP / (TP + FP),  recall[i] = TP / P  for score >= thresholds[i]

    thresholds are the distinct scores in *increasing* order (n of them); precision and recall have
    n + 1 entries: the last point is (recall 0, precision 1) and has no threshold, so the curve
    reaches the y axis. Recall therefore decreases along the arrays.
    Raises ValueError if y_true has no positives (recall is 0/0; sklearn warns and sets it to 1).
    All-positive y_true is fine: precision is 1 everywhere.
    """
    is_pos, scores = _check_scores(y_true, scores, pos_label)
    fps, tps, thresholds = _counts_at_thresholds(is_pos, scores)
    if tps[-1] == 0:
        raise ValueError(f"y_true has no positive examples (pos_label={pos_label!r}): recall is 0/0")
    precision = tps / (tps + fps)  # never 0/0: every threshold is some example's score
    recall = tps / tps[-1]
    # lowest recall first is sklearn's order; append the (recall 0, precision 1) end point
    return np.r_[precision[::-1], 1.0], np.r_[recall[::-1], 0.0], thresholds[::-1]


def average_precision(y_true, scores, pos_label=1) -> float:
    """Average precision, equal to sklearn's ``average_precision_score``:

        AP = sum_n (R_n - R_{n-1}) P_n

    the precision at each threshold weighted by the recall it adds: a step integral under the PR
    curve, with no linear interpolation (the trapezoid rule would be too optimistic).
    Raises ValueError if y_true has no positives.
    """
    precision, recall, _ = precision_recall_curve(y_true, scores, pos_label)
    # recall decreases along the arrays, so recall[:-1] - recall[1:] is each step's gain
    return max(0.0, float(np.sum((recall[:-1] - recall[1:]) * precision[:-1])))


def _score_matrix(scores, n_rows: int) -> np.ndarray:
    """(N, K) finite float64 scores from a nested list, NumPy array or torch tensor."""
    if isinstance(scores, (str, bytes)):
        raise TypeError(f"scores must be an (N, K) array, got {type(scores).__name__}")
    raw = scores.tolist() if hasattr(scores, "tolist") else scores
    if not isinstance(raw, (list, tuple)) or not all(isinstance(row, (list, tuple)) for row in raw):
        raise ValueError("scores must be 2-D, shape (N, K): one score per example and class")
    for row in raw:
        for s in row:
            if isinstance(s, bool) or not isinstance(s, numbers.Real):
                raise TypeError(f"scores must be real numbers, found {type(s).__name__} {s!r}")
    if len({len(row) for row in raw}) > 1:
        raise ValueError("scores rows differ in length: expected shape (N, K)")
    if len(raw) != n_rows:
        raise ValueError(f"y_true and scores must have the same length, got {n_rows} and {len(raw)}")
    out = np.asarray(raw, dtype=np.float64).reshape(len(raw), -1)
    if np.isnan(out).any():
        raise ValueError("scores contain NaN")
    if not np.isfinite(out).all():
        raise ValueError("scores contain inf; scores must be finite")
    return out


def roc_auc_ovr(y_true, scores, labels=None, average: str = "macro") -> float:
    """One-vs-rest ROC-AUC of a K-class problem, equal to sklearn's
    ``roc_auc_score(y_true, scores, multi_class="ovr", average=average, labels=labels)``.

        AUC_k = roc_auc(y_true == labels[k], scores[:, k])      class k against all the others
        macro = (1/K) sum_k AUC_k         weighted = sum_k support_k AUC_k / N

    scores: (N, K), column k scoring class ``labels[k]`` (probabilities, logits or log-probs: only
    their order within a column matters; sklearn also insists that rows sum to 1, which changes
    nothing here). labels: the K classes in column order (default: the sorted classes of y_true,
    which must then number K). Every class needs positives and negatives in y_true, else its AUC
    is 0/0 and a ValueError says which.
    """
    if average not in ("macro", "weighted"):
        raise ValueError(f"average must be 'macro' or 'weighted', got {average!r}")
    y = _class_labels("y_true", y_true)
    if not y:
        raise ValueError("y_true is empty: need at least one example")
    matrix = _score_matrix(scores, len(y))
    classes = _sorted(set(y)) if labels is None else _class_set(y, [], labels)
    if matrix.shape[1] != len(classes):
        raise ValueError(
            f"scores has {matrix.shape[1]} columns but there are {len(classes)} classes {classes!r}; "
            "column k must score labels[k] (pass labels= when a class is missing from y_true)"
        )
    aucs, support = [], []
    for k, cls in enumerate(classes):
        is_k = [t == cls for t in y]
        if all(is_k) or not any(is_k):
            raise ValueError(f"class {cls!r} has no {'negatives' if any(is_k) else 'positives'} in y_true: its AUC is undefined")
        aucs.append(roc_auc(is_k, matrix[:, k], pos_label=True))
        support.append(sum(is_k))
    return float(np.average(aucs, weights=support if average == "weighted" else None))
