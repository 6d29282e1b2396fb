"""DeepClustering, the scikit-learn estimator over the in-memory core: DIGITS quality, repeatability, clone,
Pipeline, predict/transform on new rows, global random state untouched, and scikit-learn's estimator checks."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.estimator_checks import check_estimator

from netbuilder import DeepClustering
from netbuilder.errors import NetbuilderError
from netbuilder.metrics import clustering_scores

TINY = {"name": "tiny-dense", "input_shape": [4], "output_activation": "linear", "training": {"threads": 1},
        "encoder": [{"type": "dense", "units": 16}, {"type": "dense", "units": 2, "activation": "linear"}]}


@pytest.fixture(scope="module")
def digits():
    return load_digits(return_X_y=True)


@pytest.fixture(scope="module")
def fitted(digits):
    X, _ = digits
    return DeepClustering(arch="digits-dense", n_clusters=10, random_state=0).fit(X)


def test_digits_labels_match_the_main_job(fitted, digits):
    # The same images, arch and seed as `netbuilder run -d DIGITS -a digits-dense`: the same clustering.
    _, y = digits
    scores = clustering_scores(y, fitted.labels_)
    assert scores["acc"] >= 0.80
    assert round(scores["acc"], 4) == 0.8136
    assert fitted.cluster_centers_.shape == (10, 10) and fitted.n_features_in_ == 64


def test_predict_and_transform_new_rows(fitted, digits):
    X, _ = digits
    codes = fitted.transform(X[:7])
    assert codes.shape == (7, 10)
    pred = fitted.predict(X[:200])
    # New rows go to the nearest centre: for the training rows that is (almost always) the fitted label.
    assert (pred == fitted.labels_[:200]).mean() > 0.95
    assert fitted.score_samples(X[:5]).shape == (5,) and np.all(fitted.score_samples(X[:5]) <= 0)
    with pytest.raises(ValueError):
        fitted.predict(X[:3, :10])


def test_clone_is_unfitted_and_params_round_trip(fitted):
    twin = clone(fitted)
    assert not hasattr(twin, "labels_") and twin.get_params() == fitted.get_params()
    with pytest.raises(NotFittedError):
        twin.predict(np.zeros((2, 64)))


def test_same_seed_same_labels_and_global_state_untouched():
    X = np.random.default_rng(1).normal(size=(90, 4)) + np.repeat(np.eye(3, 4) * 6, 30, axis=0)
    random.seed(123)
    np.random.seed(123)
    torch.manual_seed(123)
    before = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(123)
    np.random.seed(123)
    torch.manual_seed(123)
    a = DeepClustering(TINY, n_clusters=3, objective="kmeans", epochs=20, batch_size=16, lr=1e-2,
                       cluster_epochs=2, device="cpu").fit_predict(X)
    after = (random.random(), np.random.rand(), torch.rand(1).item())
    assert before == after
    b = DeepClustering(TINY, n_clusters=3, objective="kmeans", epochs=20, batch_size=16, lr=1e-2,
                       cluster_epochs=2, device="cpu").fit_predict(X)
    assert np.array_equal(a, b)
    assert clustering_scores(np.repeat(np.arange(3), 30), a)["acc"] > 0.9


def test_works_inside_a_pipeline():
    X = np.random.default_rng(2).normal(size=(60, 4)) + np.repeat(np.eye(2, 4) * 8, 30, axis=0)
    pipe = make_pipeline(FunctionTransformer(lambda a: a * 2.0), DeepClustering(
        TINY, n_clusters=2, objective="none", epochs=10, batch_size=16, lr=1e-2, device="cpu"))
    labels = pipe.fit_predict(X)
    assert clustering_scores(np.repeat([0, 1], 30), labels)["acc"] == 1.0


def test_bad_arguments_fail_in_fit_with_one_line():
    X = np.zeros((20, 4))
    with pytest.raises(NetbuilderError, match="Invalid value for argument `arch`"):
        DeepClustering("no-such-arch", n_clusters=2).fit(X)
    with pytest.raises(NetbuilderError, match="Invalid value for argument `loss`"):
        DeepClustering(TINY, n_clusters=2, objective="bogus").fit(X)
    with pytest.raises(NetbuilderError, match="cannot make 30 clusters from 20 samples"):
        DeepClustering(TINY, n_clusters=30).fit(X)
    with pytest.raises(NetbuilderError, match="Expected a positive integer or 'auto'. Received n_clusters='many'"):
        DeepClustering(TINY, n_clusters="many").fit(X)


def test_auto_number_of_clusters_finds_four_blobs():
    centres = np.array([[8, 0, 0, 0], [0, 8, 0, 0], [0, 0, 8, 0], [0, 0, 0, 8]], dtype=float)
    X = np.repeat(centres, 40, axis=0) + np.random.default_rng(4).normal(size=(160, 4))
    est = DeepClustering(TINY, n_clusters="auto", objective="kmeans", epochs=30, batch_size=16, lr=1e-2,
                         cluster_epochs=1, device="cpu", random_state=0).fit(X)
    assert est.k_selection_.k == est.n_clusters_ == 4 and est.cluster_centers_.shape == (4, 2)
    assert clustering_scores(np.repeat(np.arange(4), 40), est.labels_)["acc"] >= 0.95
    # The curve it chose from: the largest eigengap is the chosen k's.
    assert est.k_selection_.ks[int(np.argmax(est.k_selection_.gaps))] == 4
    assert DeepClustering(TINY, n_clusters=4, epochs=1).fit(X).k_selection_ is None


def test_scikit_learn_estimator_checks():
    est = DeepClustering(TINY, n_clusters=3, objective="kmeans", epochs=20, batch_size=16, lr=1e-2,
                         cluster_epochs=2, device="cpu")
    # Not applicable (see DeepClustering's docstring): float32 batched inference is not bit-invariant to the
    # batch a row is computed in.
    expected = {"check_methods_subset_invariance": "float32 batched inference"}
    results = check_estimator(est, expected_failed_checks=expected, on_fail=None)
    failed = [r["check_name"] for r in results if r["status"] == "failed"]
    assert not failed, failed
    assert sum(r["status"] == "passed" for r in results) >= 40


def test_auto_arch_follows_the_samples_shape():
    X = np.random.default_rng(3).integers(0, 255, size=(40, 12, 12)).astype(np.uint8)
    X[:20, :6] = 255
    est = DeepClustering(n_clusters=2, epochs=3, cluster_epochs=1, device="cpu").fit(X)
    assert est.spec_["name"].startswith("auto") and est.input_shape_ == (1, 12, 12)
    assert est.spec_["training"]["cluster"]["loss"] == "scan"  # images: the auto rule clusters by SCAN
    assert est.transform(X[:3]).shape == (3, 10)
    assert clustering_scores(np.repeat([0, 1], 20), est.labels_)["acc"] >= 0.9


def test_signal_windows_with_a_signal_arch_stay_float():
    from netbuilder.arch.auto_signal import signal_arch
    from netbuilder.core.arrays import FloatWindows
    from netbuilder.metrics import cluster_acc

    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 3, 32)).astype(np.float32)
    y = np.repeat([0, 1], 100)
    x[y == 1, 0] += np.sin(np.arange(32) / 3.0) * 3  # class 1: a wave on channel 0
    est = DeepClustering(arch=signal_arch((3, 32), 2), n_clusters=2, epochs=5, random_state=0).fit(x)
    assert isinstance(est.scaler_, FloatWindows) and est.input_shape_ == (3, 32)
    assert est.spec_["input_shape"] == [3, 32]
    assert cluster_acc(y, est.labels_) > 0.9
    # no quantisation to 8 bits: the codes are the model's codes of the float windows themselves
    from netbuilder.train import encode_all

    np.testing.assert_array_equal(est.transform(x[:4]), encode_all(est.model_, x[:4], est.device_))
