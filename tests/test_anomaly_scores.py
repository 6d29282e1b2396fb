"""Score functions against hand computations, the evaluation report, and the protocol splits."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from netbuilder.anomaly import protocols
from netbuilder.anomaly.protocols import make_split, resolve_target
from netbuilder.anomaly.report import evaluate, format_table, mean_row
from netbuilder.core.scores import (centroid_distance, cluster_distance, cosine_score, normal_cluster,
                                       error_vs_mean_image, output_variation, reconstruction_error, score_statistics)
from netbuilder.datasets import Dataset
from netbuilder.errors import NetbuilderError


def test_cosine_score_equals_a_hand_computation():
    # codes: along x, along y, the diagonal, against x, and a scaled copy of the diagonal
    codes = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0], [3.0, 3.0]])
    centroids = np.array([[2.0, 0.0], [0.0, 0.5]])   # directions x and y (their lengths do not matter)
    # cos to (x, y): (1, 0), (0, 1), (1/√2, 1/√2), (-1, 0), (1/√2, 1/√2); score = 1 - max
    expected = [0.0, 0.0, 1 - 1 / math.sqrt(2), 1.0, 1 - 1 / math.sqrt(2)]
    assert cosine_score(codes, centroids) == pytest.approx(expected, abs=1e-12)
    # l2-normalised codes give the same score (the normalisation belongs to the model, not the score)
    unit = codes / np.linalg.norm(codes, axis=1, keepdims=True)
    assert cosine_score(unit, centroids) == pytest.approx(expected, abs=1e-12)
    # one centroid (the one-class protocol): 1 - cos to it
    assert cosine_score([[0.0, 2.0]], [[1.0, 1.0]]) == pytest.approx([1 - 1 / math.sqrt(2)])


def test_distance_scores_by_hand():
    codes = np.array([[0.0, 0.0], [3.0, 4.0], [6.0, 9.0]])
    centroids = np.array([[0.0, 0.0], [6.0, 8.0]])
    assert centroid_distance(codes, centroids) == pytest.approx([0.0, 5.0, 1.0])
    assert cluster_distance(codes, centroids[1]) == pytest.approx([10.0, 5.0, 1.0])
    assert normal_cluster([[0.0, 0.0], [4.0, 5.0], [6.0, 9.0]], centroids) == 1   # two of three nearer (6, 8)
    assert normal_cluster([[0.0, 0.0], [3.0, 4.0]], centroids) == 0                 # a tie goes to the first
    with pytest.raises(ValueError, match="dimensions"):
        centroid_distance(codes, np.zeros((2, 3)))


def test_reconstruction_error_numpy_and_torch():
    x = np.zeros((2, 1, 2, 2), dtype=np.float32)
    x_hat = x.copy()
    x_hat[1, 0, 0, 0] = 1.0                             # one wrong pixel of four
    assert reconstruction_error(x, x_hat) == pytest.approx([0.0, 0.25])
    t = reconstruction_error(torch.from_numpy(x), torch.from_numpy(x_hat))
    assert t.tolist() == pytest.approx([0.0, 0.25])
    stats = score_statistics([1.0, 2.0, 3.0])
    assert stats["n"] == 3 and stats["mean"] == 2.0 and stats["p50"] == 2.0 and stats["max"] == 3.0


def test_training_diagnostics():
    x = np.random.default_rng(0).random((32, 1, 4, 4))
    assert output_variation(x, x) == pytest.approx(1.0) and output_variation(x, 0.5 * x) == pytest.approx(0.5)
    assert output_variation(x, np.broadcast_to(x.mean(0), x.shape)) == pytest.approx(0.0, abs=1e-12)  # one image
    assert error_vs_mean_image(x, x) == 0.0                                       # perfect
    assert error_vs_mean_image(x, np.broadcast_to(x.mean(0), x.shape)) == pytest.approx(1.0)   # a template
    blank = np.zeros_like(x)                                                      # collapsed to black
    assert error_vs_mean_image(x, blank) == pytest.approx((x ** 2).mean() / x.var(axis=0).mean())
    assert error_vs_mean_image(x, blank) > 1.2


def test_evaluate_report():
    m = evaluate([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9], threshold=0.5)
    assert m["auc"] == pytest.approx(0.75) and (m["tp"], m["fp"], m["tn"], m["fn"]) == (1, 1, 1, 1)
    assert m["acc"] == 0.5 and m["f1"] == 0.5 and m["flagged"] == 2
    one = evaluate([0, 0], [0.1, 0.2], threshold=0.15)
    assert one["auc"] is None and one["ap"] is None and one["acc"] == 0.5
    rows = [{"target": 0, "class": "0", "auc": 0.9, "ap": 0.8, "acc": 0.7, "f1": 0.6, "threshold": 0.1,
             "n_train": 5, "n_test": 9, "n_anomalies": 4, "seconds": 1.0},
            {"target": 1, "class": "cat", "auc": 0.7, "ap": None, "acc": 0.5, "f1": 0.4, "threshold": 0.2,
             "n_train": 5, "n_test": 9, "n_anomalies": 4, "seconds": 2.0}]
    assert mean_row(rows) == pytest.approx({"auc": 0.8, "ap": 0.8, "acc": 0.6, "f1": 0.5})
    table = format_table(rows)
    assert "mean" in table.splitlines()[-1] and "0.8000" in table and "1 cat" in table


def _toy(n_per_class=(20, 20, 20), split="all", seed=0, labelled=True) -> Dataset:
    rng = np.random.default_rng(seed)
    labels = np.concatenate([np.full(n, c) for c, n in enumerate(n_per_class)])
    images = rng.integers(0, 256, size=(len(labels), 1, 4, 4), dtype=np.uint8)
    return Dataset(name="TOY", images=images, labels=labels if labelled else None,
                   class_names=["a", "b", "c"] if labelled else None, fingerprint="f" * 64, source="mem", split=split)


def test_one_class_with_a_test_split_trains_on_the_target_only():
    train, test = _toy(split="train"), _toy((5, 6, 7), split="test", seed=1)
    sp = make_split("one-class", train, "b", test_ds=test)
    assert sp.target == 1 and sp.target_name == "b" and sp.n_clusters == 1
    assert len(sp.train_images) == 20 and np.all(train.labels[sp.train_index] == 1)
    assert len(sp.test_images) == 18 and sp.test_labels.tolist() == [1] * 5 + [0] * 6 + [1] * 7


def test_one_class_holdout_is_stratified_disjoint_and_fixed():
    ds = _toy()
    a = make_split("one-class", ds, 0, need_val=True)
    b = make_split("one-class", ds, 0, need_val=True)
    assert np.array_equal(a.test_index, b.test_index) and np.array_equal(a.train_index, b.train_index)
    assert len(a.test_index) == 18 and np.bincount(ds.labels[a.test_index]).tolist() == [6, 6, 6]
    assert not set(a.train_index) & set(a.test_index) and not set(a.val_index) & set(a.test_index)
    assert not set(a.train_index) & set(a.val_index) and np.all(ds.labels[a.train_index] == 0)
    assert a.val_labels.tolist() == (ds.labels[a.val_index] != 0).astype(int).tolist()


def test_contaminated_subsamples_the_anomaly_class_and_warns_when_it_is_not_rare():
    ds = _toy((40, 40, 40))
    sp = make_split("contaminated", ds, "c", anomaly_ratio=0.1)      # round(0.1 / 0.9 * 80) = 9 anomalies
    assert sp.n_clusters == 2 and len(sp.train_images) == 89 and sp.test_labels.sum() == 9
    assert sp.test_images is sp.train_images and not sp.warnings
    full = make_split("contaminated", ds, "c")
    assert full.test_labels.sum() == 40 and "not rare" in full.warnings[0]


def test_unsupervised_and_errors():
    ds = _toy()
    sp = make_split("unsupervised", ds, None)
    assert sp.test_labels is None and len(sp.train_images) == 60
    assert make_split("unsupervised", ds, "a").test_labels.sum() == 20
    with pytest.raises(NetbuilderError, match="no labelled threshold"):
        make_split("unsupervised", ds, None, need_val=True)
    with pytest.raises(NetbuilderError, match="unsupervised for unlabelled"):
        make_split("one-class", _toy(labelled=False), 0)
    with pytest.raises(NetbuilderError, match="classes: 0 a, 1 b, 2 c"):
        resolve_target(ds, "zebra", "one-class")
    assert resolve_target(ds, "B", "one-class") == 1 and resolve_target(ds, "2", "one-class") == 2
    with pytest.raises(NetbuilderError, match="fraction"):
        protocols.holdout(ds.labels, len(ds), 1.5)


def test_knn_cosine_score_by_hand_and_leaves_an_image_out_of_its_own_neighbours():
    from netbuilder.core.scores import knn_cosine_score, nearest_reference

    ref = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]], dtype=np.float32).reshape(4, 1, 1, 3)
    query = np.array([[2, 0, 0], [0, 0, 3]], dtype=np.float32).reshape(2, 1, 1, 3)
    # Brightness does not matter: [2,0,0] is [1,0,0]; its two nearest are [1,0,0] (cos 1) and [1,1,0] (0.707).
    assert np.allclose(knn_cosine_score(query, ref, k=1), [0.0, 0.0], atol=1e-6)
    assert np.allclose(knn_cosine_score(query, ref, k=2), [1 - (1 + 2 ** -0.5) / 2, 1 - 0.5], atol=1e-6)
    assert np.array_equal(nearest_reference(query, ref), ref[[0, 2]])
    # Scored against itself, [1,0,0]'s nearest other image is [1,1,0]; a copy would find itself (cos 1).
    assert np.isclose(knn_cosine_score(ref, ref, k=1)[0], 1 - 2 ** -0.5, atol=1e-6)
    assert np.isclose(knn_cosine_score(ref.copy(), ref, k=1)[0], 0.0, atol=1e-6)


def test_neighbourhood_score_is_larger_than_a_small_group_and_leaves_the_training_codes_out_of_their_own():
    from netbuilder.core.scores import neighbourhood_score

    rng = np.random.default_rng(0)
    common = np.array([1.0, 0.0, 0.0]) + 0.05 * rng.standard_normal((96, 3))
    rare = np.array([0.0, 1.0, 0.0]) + 0.05 * rng.standard_normal((4, 3))   # 4 % of the codes, in a tight group
    codes = np.vstack([common, rare]).astype(np.float32)
    # k = round(0.1 · 100) = 10: the rare group's 4 codes cannot fill a neighbourhood, the common ones can.
    s = neighbourhood_score(codes, codes, fraction=0.1)
    assert s.shape == (100,) and s[96:].min() > 0.5 > 0.1 > s[:96].max()
    # The training codes scored again (a new array, equal) leave each code out of its own neighbours ...
    unit = codes / np.linalg.norm(codes, axis=1, keepdims=True)
    cos = unit @ unit.T
    np.fill_diagonal(cos, -2.0)
    by_hand = 1 - np.sort(cos, axis=1)[:, -10:].mean(1)
    assert np.allclose(neighbourhood_score(codes.copy(), codes, fraction=0.1), by_hand, atol=1e-5)
    # ... a new code is compared with all of them, and k is at least 1.
    new = np.array([[0.0, 1.0, 0.0]], dtype=np.float32)
    assert np.isclose(neighbourhood_score(new, codes, fraction=0.001)[0], 1 - unit[:, 1].max(), atol=1e-5)


def test_rank_fraction_ranks_inside_the_training_range_and_keeps_order_beyond_it():
    from netbuilder.core.score_mixes import rank_fraction

    ref = np.array([1.0, 2.0, 3.0, 5.0])
    got = rank_fraction(np.array([2.0, 2.5, 5.0, 7.0, 9.0, 0.0]), ref)
    # at or below 2: 2 of 4; 2.5: still 2; 5: all; 7 and 9: 1 + the distance past 5 in ranges of 4; 0: -1/4
    assert np.allclose(got, [0.5, 0.5, 1.0, 1.5, 2.0, -0.25])
    with pytest.raises(ValueError, match="at least one reference"):
        rank_fraction(np.array([1.0]), np.array([]))
