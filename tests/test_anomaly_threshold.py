"""Threshold selection on crafted scores: contamination percentile, best F1, best accuracy, manual, and the two
degenerate validation splits (no anomalies / only anomalies), which warn and give documented thresholds."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netbuilder.anomaly.threshold import (ThresholdWarning, best_threshold, contamination_threshold, parse_threshold,
                                          select_threshold)
from netbuilder.errors import NetbuilderError


def _metric(scores, labels, t, metric):
    pred = np.asarray(scores) > t
    y = np.asarray(labels).astype(bool)
    tp, fp, fn = np.sum(pred & y), np.sum(pred & ~y), np.sum(~pred & y)
    if metric == "f1":
        return 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return float(np.mean(pred == y))


def test_contamination_percentile_flags_that_fraction():
    scores = np.arange(100, dtype=float)
    t = contamination_threshold(scores, 0.1)
    assert t.method == "contamination" and t.contamination == 0.1 and t.warning is None
    assert t.value == pytest.approx(np.percentile(scores, 90)) == pytest.approx(89.1)
    assert int((scores > t.value).sum()) == 10


def test_perfect_separation_threshold_is_the_midpoint():
    scores = [0.1, 0.3, 0.2, 0.8, 0.7]
    labels = [0, 0, 0, 1, 1]
    for metric in ("f1", "accuracy"):
        t = best_threshold(scores, labels, metric)
        assert t.value == pytest.approx(0.5) and t.validation_metric == 1.0 and t.warning is None


def test_f1_and_accuracy_pick_different_thresholds():
    # normals 1..6, anomalies 1.5, 2.5, 3.5 (worked by hand):
    #   best F1: flag everything above 1 (threshold 1.25): tp 3, fp 5, fn 0 -> F1 6/11;
    #   best accuracy: flag nothing (threshold = the largest score, 6): 6 of 9 right.
    scores = [1, 2, 3, 4, 5, 6, 1.5, 2.5, 3.5]
    labels = [0, 0, 0, 0, 0, 0, 1, 1, 1]
    f1 = best_threshold(scores, labels, "f1")
    acc = best_threshold(scores, labels, "accuracy")
    assert f1.value == pytest.approx(1.25) and f1.validation_metric == pytest.approx(6 / 11)
    assert acc.value == 6.0 and acc.validation_metric == pytest.approx(6 / 9)


def test_ties_and_duplicate_scores():
    # Equal scores cannot be split: the threshold never lands between copies of one value.
    scores = [1.0, 1.0, 2.0, 2.0, 2.0]
    labels = [0, 0, 1, 1, 0]
    t = best_threshold(scores, labels, "accuracy")
    assert t.value == pytest.approx(1.5) and t.validation_metric == pytest.approx(4 / 5)
    # Ties between candidates go to the lowest threshold (the one flagging the most).
    # Here flagging both and flagging neither are both half right.
    t = best_threshold([0.0, 1.0], [1, 0], "accuracy")
    assert t.value < 0.0 and t.validation_metric == 0.5


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 12), st.booleans()), min_size=2, max_size=25), st.sampled_from(["f1", "accuracy"]))
def test_best_threshold_matches_brute_force(pairs, metric):
    scores = np.array([p[0] for p in pairs], dtype=float) / 4.0
    labels = np.array([p[1] for p in pairs], dtype=int)
    if labels.sum() in (0, len(labels)):
        return
    t = best_threshold(scores, labels, metric)
    candidates = np.concatenate([[scores.min() - 1.0], np.unique(scores)])
    best = max(_metric(scores, labels, c, metric) for c in candidates)
    assert t.validation_metric == pytest.approx(best)
    assert _metric(scores, labels, t.value, metric) == pytest.approx(best)


def test_degenerate_no_anomalies_threshold_is_the_max_with_a_warning():
    scores = np.array([0.2, 0.5, 0.1, 0.4])
    with pytest.warns(ThresholdWarning, match="no anomalies"):
        t = best_threshold(scores, np.zeros(4), "f1")
    assert t.value == 0.5 and "no anomalies" in t.warning
    assert not np.any(scores > t.value)        # nothing in validation flagged ...
    assert 0.51 > t.value                       # ... but a higher test score still is
    with pytest.warns(ThresholdWarning):
        assert best_threshold(scores, np.zeros(4), "accuracy").value == 0.5


def test_degenerate_only_anomalies_threshold_is_just_below_the_min_with_a_warning():
    scores = np.array([0.2, 0.5, 0.1, 0.4])
    with pytest.warns(ThresholdWarning, match="only anomalies"):
        t = best_threshold(scores, np.ones(4), "accuracy")
    assert t.value < 0.1 and t.value == np.nextafter(0.1, -np.inf)
    assert np.all(scores > t.value) and "only anomalies" in t.warning


def test_degenerate_without_warning_when_asked():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = best_threshold([1.0, 2.0], [0, 0], "f1", warn=False)
    assert t.value == 2.0 and t.warning


def test_select_threshold_dispatch_and_errors():
    train = np.linspace(0, 1, 11)
    assert select_threshold("contamination", train_scores=train, contamination=0.2).value == pytest.approx(0.8)
    assert select_threshold(0.33, train_scores=train).value == 0.33
    assert select_threshold("0.25").method == "manual"
    t = select_threshold("f1", val_scores=[0.1, 0.9], val_labels=[0, 1])
    assert t.value == pytest.approx(0.5)
    with pytest.raises(NetbuilderError, match="labelled validation"):
        select_threshold("accuracy", train_scores=train)
    with pytest.raises(NetbuilderError, match="contamination"):
        select_threshold("contamination", train_scores=train, contamination=0.7)
    with pytest.raises(NetbuilderError, match="empty"):
        best_threshold([], [], "f1")
    with pytest.raises(NetbuilderError, match="NaN"):
        contamination_threshold([0.1, float("nan")], 0.1)
    with pytest.raises(NetbuilderError, match="invalid threshold"):
        parse_threshold("median")
    assert parse_threshold(" F1 ") == "f1" and parse_threshold("1e-3") == 0.001
