"""llmlab.metrics.classification against scikit-learn (the oracle), on hand-made and random inputs."""
import itertools
import math
import warnings

import numpy as np
import pytest
import torch

from llmlab.metrics import classification as C

skm = pytest.importorskip("sklearn.metrics")
SkUndefinedMetricWarning = pytest.importorskip("sklearn.exceptions").UndefinedMetricWarning
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

# database=None: no .hypothesis/ folder in the working tree
PROPERTY = settings(max_examples=60, deadline=None, database=None)
ZERO_DIVISIONS = ["warn", 0.0, 1.0, float("nan")]


def _sk(fn, *args, **kwargs):
    """Call sklearn with its warnings silenced; return (result, whether it warned UndefinedMetric)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn(*args, **kwargs)
    return out, any(issubclass(w.category, SkUndefinedMetricWarning) for w in caught)


def _ours(fn, *args, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn(*args, **kwargs)
    return out, any(issubclass(w.category, C.UndefinedMetricWarning) for w in caught)


def _same(a, b):
    """Equal floats or arrays, NaN == NaN."""
    np.testing.assert_allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float), rtol=1e-12, atol=1e-15)


@st.composite
def label_pairs(draw, max_classes=4, max_len=25):
    k = draw(st.integers(1, max_classes))
    n = draw(st.integers(1, max_len))
    labels = st.integers(0, k - 1)
    return draw(st.lists(labels, min_size=n, max_size=n)), draw(st.lists(labels, min_size=n, max_size=n))


# ---------------------------------------------------------------------------------------------
# Labelled predictions
# ---------------------------------------------------------------------------------------------


def test_hand_example():
    y_true = ["cat", "cat", "dog", "dog", "dog", "bird"]
    y_pred = ["cat", "dog", "dog", "dog", "bird", "bird"]
    assert C.accuracy(y_true, y_pred) == pytest.approx(4 / 6)
    # rows = true (bird, cat, dog: sorted), columns = predicted
    assert C.confusion_matrix(y_true, y_pred).tolist() == [[1, 0, 0], [0, 1, 1], [1, 0, 2]]
    p, r, f = C.precision_recall_f1(y_true, y_pred, average=None)
    assert p.tolist() == [0.5, 1.0, 2 / 3] and r.tolist() == [1.0, 0.5, 2 / 3]
    assert f.tolist() == pytest.approx([2 / 3, 2 / 3, 2 / 3])
    micro = C.precision_recall_f1(y_true, y_pred, average="micro")
    assert micro == pytest.approx((4 / 6,) * 3)  # single-label: micro P = R = F1 = accuracy


@PROPERTY
@given(label_pairs())
def test_accuracy_and_confusion_matrix_match_sklearn(pair):
    y_true, y_pred = pair
    assert C.accuracy(y_true, y_pred) == pytest.approx(skm.accuracy_score(y_true, y_pred))
    cm = C.confusion_matrix(y_true, y_pred)
    assert cm.dtype == np.int64
    np.testing.assert_array_equal(cm, _sk(skm.confusion_matrix, y_true, y_pred)[0])
    # a given label order (with a class never seen) permutes and pads the matrix as sklearn does
    labels = [3, 5, 1, 4, 0, 2]
    np.testing.assert_array_equal(
        C.confusion_matrix(y_true, y_pred, labels=labels), skm.confusion_matrix(y_true, y_pred, labels=labels)
    )


@pytest.mark.parametrize("zero_division", ZERO_DIVISIONS, ids=str)
@pytest.mark.parametrize("average", ["micro", "macro", "weighted", None])
def test_prf_multiclass_matches_sklearn(average, zero_division):
    @PROPERTY
    @given(label_pairs(), st.booleans())
    def check(pair, with_labels):
        y_true, y_pred = pair
        kwargs = dict(average=average, zero_division=zero_division)
        if with_labels:  # include classes that never occur: per-class 0/0 everywhere for them
            kwargs["labels"] = [4, 0, 3, 1, 2, 5]
        expected, sk_warned = _sk(skm.precision_recall_fscore_support, y_true, y_pred, **kwargs)
        got, warned = _ours(C.precision_recall_f1, y_true, y_pred, **kwargs)
        for g, e in zip(got, expected[:3]):
            _same(g, e)
        assert warned == sk_warned
        if average is not None:
            assert all(isinstance(g, float) for g in got)

    check()


@pytest.mark.parametrize("zero_division", ZERO_DIVISIONS, ids=str)
def test_prf_binary_matches_sklearn(zero_division):
    @PROPERTY
    @given(label_pairs(max_classes=2), st.sampled_from([0, 1]))
    def check(pair, pos_label):
        y_true, y_pred = pair
        kwargs = dict(average="binary", pos_label=pos_label, zero_division=zero_division)
        expected, sk_warned = _sk(skm.precision_recall_fscore_support, y_true, y_pred, **kwargs)
        got, warned = _ours(C.precision_recall_f1, y_true, y_pred, **kwargs)
        _same(got, expected[:3])
        assert warned == sk_warned

    check()


def test_prf_single_class_and_absent_positive():
    # only negatives anywhere: nothing to find, nothing predicted -> all three are 0/0
    assert C.precision_recall_f1([0, 0, 0], [0, 0, 0], zero_division=1.0) == (1.0, 1.0, 1.0)
    with pytest.warns(C.UndefinedMetricWarning, match="precision, recall, F1 ill-defined"):
        assert C.precision_recall_f1([0, 0], [0, 0]) == (0.0, 0.0, 0.0)
    # never predicted positive: precision 0/0, but F1 = 2TP / (2TP + FP + FN) = 0 is defined
    assert C.precision_recall_f1([1, 0], [0, 0], zero_division=1.0) == (1.0, 0.0, 0.0)
    # NaN = leave the undefined class out of the macro mean
    p, r, f = C.precision_recall_f1([0, 0, 1], [0, 0, 0], average="macro", zero_division=float("nan"))
    assert (p, r, f) == pytest.approx((2 / 3, 0.5, 0.4))


def test_inputs_may_be_arrays_tensors_and_strings():
    y_true, y_pred = [1, 0, 1, 1, 0], [1, 1, 1, 0, 0]
    expected = C.precision_recall_f1(y_true, y_pred)
    assert C.precision_recall_f1(np.array(y_true), np.array(y_pred)) == expected
    assert C.precision_recall_f1(torch.tensor(y_true), torch.tensor(y_pred)) == expected
    assert C.precision_recall_f1(np.array(y_true, float), y_pred) == expected  # 1.0 is class 1
    words = {1: "spam", 0: "ham"}
    as_words = [words[y] for y in y_true], [words[y] for y in y_pred]
    assert C.precision_recall_f1(*as_words, pos_label="spam") == expected
    assert C.confusion_matrix(*as_words).tolist() == skm.confusion_matrix(*as_words).tolist()


# ---------------------------------------------------------------------------------------------
# Curves
# ---------------------------------------------------------------------------------------------


@st.composite
def scored(draw, both_classes=True, max_len=30):
    n = draw(st.integers(2 if both_classes else 1, max_len))
    y = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
    if both_classes and len(set(y)) < 2:
        y[draw(st.integers(0, n - 1))] = 1 - y[0]
    # few distinct values: many ties
    scores = draw(st.lists(st.integers(-3, 3).map(lambda v: v / 4), min_size=n, max_size=n))
    return y, scores


def _mann_whitney(y, scores):
    """P(score of a positive > score of a negative) + 0.5 P(tie), by counting all pairs."""
    pos = [s for t, s in zip(y, scores) if t == 1]
    neg = [s for t, s in zip(y, scores) if t != 1]
    wins = sum((p > q) + 0.5 * (p == q) for p, q in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


@PROPERTY
@given(scored())
def test_roc_matches_sklearn(case):
    y, scores = case
    for drop in (False, True):
        got = C.roc_curve(y, scores, drop_intermediate=drop)
        expected = skm.roc_curve(y, scores, drop_intermediate=drop)
        for g, e in zip(got, expected):
            np.testing.assert_array_equal(g, e)
    auc = C.roc_auc(y, scores)
    assert auc == pytest.approx(skm.roc_auc_score(y, scores), rel=1e-12)
    assert auc == pytest.approx(_mann_whitney(y, scores), rel=1e-12)


@PROPERTY
@given(scored(both_classes=False))
def test_precision_recall_curve_matches_sklearn(case):
    y, scores = case
    if 1 not in y:
        with pytest.raises(ValueError, match="no positive"):
            C.precision_recall_curve(y, scores)
        return
    got = C.precision_recall_curve(y, scores)
    expected = skm.precision_recall_curve(y, scores)
    for g, e in zip(got, expected):
        np.testing.assert_array_equal(g, e)
    assert C.average_precision(y, scores) == pytest.approx(skm.average_precision_score(y, scores), rel=1e-12)


def test_curves_on_tied_scores():
    y, tied = [0, 1, 1, 0, 1], [0.5] * 5
    fpr, tpr, thresholds = C.roc_curve(y, tied)
    assert fpr.tolist() == [0, 1] and tpr.tolist() == [0, 1] and thresholds.tolist() == [math.inf, 0.5]
    assert C.roc_auc(y, tied) == 0.5  # one diagonal step: every pair is a tie
    assert C.average_precision(y, tied) == pytest.approx(3 / 5)  # the prevalence
    # sklearn's own example: a tie between a positive and a negative
    assert C.roc_auc([0, 1, 1, 0, 1], [0.1, 0.9, 0.5, 0.5, 0.5]) == pytest.approx(5 / 6)


def test_all_positive_pr_curve_is_defined():
    y, scores = [1, 1, 1], [0.2, 0.3, 0.3]
    for g, e in zip(C.precision_recall_curve(y, scores), skm.precision_recall_curve(y, scores)):
        np.testing.assert_array_equal(g, e)
    assert C.average_precision(y, scores) == 1.0


def test_curves_with_string_labels_and_pos_label():
    y = ["spam", "ham", "spam", "ham", "ham", "spam"]
    scores = np.array([0.9, 0.1, 0.4, 0.4, 0.8, 0.7])
    expected = skm.roc_curve(y, scores, pos_label="spam", drop_intermediate=False)
    for g, e in zip(C.roc_curve(y, scores, pos_label="spam"), expected):
        np.testing.assert_array_equal(g, e)
    y01 = [1 if t == "spam" else 0 for t in y]
    assert C.roc_auc(y, scores, pos_label="spam") == pytest.approx(skm.roc_auc_score(y01, scores))
    assert C.average_precision(y, torch.tensor(scores), pos_label="spam") == pytest.approx(
        skm.average_precision_score(y01, scores)
    )


@st.composite
def multiclass_scored(draw, k_max=4, max_len=30):
    k = draw(st.integers(3, k_max))
    n = draw(st.integers(2 * k, max_len))
    y = draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n))
    y[:k] = range(k)  # every class present, so every one-vs-rest AUC is defined
    raw = draw(st.lists(st.lists(st.integers(1, 4), min_size=k, max_size=k), min_size=n, max_size=n))
    scores = np.array(raw, dtype=float)
    return y, scores / scores.sum(1, keepdims=True)  # sklearn insists on rows that sum to 1; ties galore


@PROPERTY
@given(multiclass_scored(), st.sampled_from(["macro", "weighted"]))
def test_roc_auc_ovr_matches_sklearn(case, average):
    y, scores = case
    expected = skm.roc_auc_score(y, scores, multi_class="ovr", average=average)
    assert C.roc_auc_ovr(y, scores, average=average) == pytest.approx(expected, rel=1e-12)
    names = ["cat", "dog", "eel", "fox"][: scores.shape[1]]
    y_named = [names[t] for t in y]
    got = C.roc_auc_ovr(y_named, torch.tensor(scores), labels=names, average=average)
    assert got == pytest.approx(skm.roc_auc_score(y_named, scores, multi_class="ovr", average=average, labels=names))


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call,exc,match",
    [
        (lambda: C.accuracy([0, 1], [0]), ValueError, "same length"),
        (lambda: C.accuracy([], []), ValueError, "empty"),
        (lambda: C.accuracy("01", "01"), TypeError, "1-D sequence"),
        (lambda: C.accuracy(np.zeros((2, 2)), np.zeros((2, 2))), ValueError, "1-D"),
        (lambda: C.accuracy([0, None], [0, 1]), TypeError, "class labels"),
        (lambda: C.accuracy([0.2, 0.9], [0, 1]), ValueError, "not a class label"),
        (lambda: C.confusion_matrix([0, 1, 2], [0, 1, 1], labels=[0, 1]), ValueError, r"labels \[2\] that are not in"),
        (lambda: C.confusion_matrix([0, 1], [0, 1], labels=[]), ValueError, "labels is empty"),
        (lambda: C.confusion_matrix([0, 1], [0, 1], labels=[0, 1, 0]), ValueError, "duplicates"),
        (lambda: C.confusion_matrix([0, "a"], [0, 0]), TypeError, "comparable"),
        (lambda: C.precision_recall_f1([0, 1, 2], [0, 1, 1]), ValueError, "average='binary' needs at most two"),
        (lambda: C.precision_recall_f1(["a", "b"], ["a", "a"]), ValueError, "pos_label=1 is not one of"),
        (lambda: C.precision_recall_f1([0, 1], [0, 1], average="samples"), ValueError, "average must be"),
        (lambda: C.precision_recall_f1([0, 1], [0, 1], zero_division=0.5), ValueError, "zero_division"),
        (lambda: C.precision_recall_f1([0, 1], [0, 1], average="macro", labels=[1]), ValueError, "not in labels"),
        (lambda: C.roc_curve([0, 1], [0.5, float("nan")]), ValueError, "NaN"),
        (lambda: C.roc_curve([0, 1], [0.5, float("inf")]), ValueError, "finite"),
        (lambda: C.roc_curve([0, 1], ["a", "b"]), TypeError, "real numbers"),
        (lambda: C.roc_curve([0, 1], [0.5]), ValueError, "same length"),
        (lambda: C.roc_curve([], []), ValueError, "empty"),
        (lambda: C.roc_curve([0, 1, 2], [0.1, 0.2, 0.3]), ValueError, "binary"),
        (lambda: C.roc_auc([1, 1, 1], [0.1, 0.2, 0.3]), ValueError, "no negative"),
        (lambda: C.roc_auc([0, 0, 0], [0.1, 0.2, 0.3]), ValueError, "no positive"),
        (lambda: C.roc_auc(["a", "b"], [0.1, 0.2]), ValueError, "no positive examples \\(pos_label=1\\)"),
        (lambda: C.average_precision([0, 0], [0.1, 0.2]), ValueError, "no positive"),
        (lambda: C.roc_auc_ovr([0, 1, 2], [[0.5, 0.3, 0.2], [0.1, float("nan"), 0.8], [0.2, 0.2, 0.6]]), ValueError, "NaN"),
        (lambda: C.roc_auc_ovr([0, 1, 2], [0.1, 0.2, 0.3]), ValueError, r"2-D, shape \(N, K\)"),
        (lambda: C.roc_auc_ovr([0, 1, 2], [[0.5, 0.5]] * 3), ValueError, "2 columns but there are 3 classes"),
        (lambda: C.roc_auc_ovr([0, 1], [[0.5, 0.5]] * 3), ValueError, "same length"),
        (lambda: C.roc_auc_ovr([], []), ValueError, "empty"),
        (lambda: C.roc_auc_ovr([0, 1, 3], [[0.2, 0.8]] * 3, labels=[0, 1]), ValueError, r"labels \[3\] that are not in"),
        (lambda: C.roc_auc_ovr([0, 0, 1], [[0.2, 0.3, 0.5]] * 3, labels=[0, 1, 2]), ValueError, "class 2 has no positives"),
        (lambda: C.roc_auc_ovr([0, 1, 2], [[0.2, 0.8, 0.0]] * 3, average="micro"), ValueError, "'macro' or 'weighted'"),
        (lambda: C.roc_auc_ovr([0, 1, 2], [["a", "b", "c"]] * 3), TypeError, "real numbers"),
    ],
)
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
