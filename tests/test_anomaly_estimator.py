"""The estimator on DIGITS: one-class AUC above a floor, sklearn-style attributes, save/load reusing the
threshold, the cosine/dcca scores and their errors."""
from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from netbuilder.anomaly import AutoencoderAnomalyDetector, cosine_score, evaluate, make_split
from netbuilder.core.scores import neighbourhood_score
from netbuilder.datasets import load_dataset
from netbuilder.errors import NetbuilderError

# Measured with seed 0 on this split: AUC 0.9998 after 50 epochs (0.9996 after 20, when the autoencoder is
# still in its one-template phase; 0.94 after 5). The floor leaves room for platform differences in float
# arithmetic, not for a broken detector.
AUC_FLOOR = 0.97


@pytest.fixture(scope="module")
def digits():
    return load_dataset("DIGITS", progress=False)


@pytest.fixture(scope="module")
def zero_split(digits):
    return make_split("one-class", digits, 0)


@pytest.fixture(scope="module")
def fitted(zero_split, device):
    det = AutoencoderAnomalyDetector("digits-dense-l2", "DIGITS", epochs=50, seed=0, device=str(device))
    return det.fit(zero_split.train_images)


def test_init_does_no_work():
    # Nothing is checked or loaded in __init__ (scikit-learn convention): bad values fail in fit().
    det = AutoencoderAnomalyDetector(arch="no-such-arch", archs="no-such-file.json", score="bogus", threshold="x")
    assert det.get_params()["score"] == "bogus" and not hasattr(det, "model_")
    det.set_params(score="recon", arch="digits-dense-l2", archs="DIGITS")
    assert clone(det).get_params() == det.get_params()
    with pytest.raises(NotFittedError):
        det.predict(np.zeros((1, 1, 8, 8), np.uint8))
    with pytest.raises(NetbuilderError, match="Invalid value for argument `score`.*Received score='bogus'"):
        AutoencoderAnomalyDetector("digits-dense-l2", "DIGITS", score="bogus").fit(np.zeros((4, 1, 8, 8), np.uint8))


def test_digits_one_class_auc_above_floor(fitted, zero_split):
    scores = fitted.decision_function(zero_split.test_images)
    report = evaluate(zero_split.test_labels, scores, fitted.threshold_)
    assert report["auc"] >= AUC_FLOOR, report


def test_fitted_attributes_and_shapes(fitted, zero_split):
    n = len(zero_split.train_images)
    assert fitted.decision_scores_.shape == (n,) and fitted.labels_.shape == (n,)
    assert set(np.unique(fitted.labels_)) <= {0, 1}
    # contamination 0.1 of the training scores: about 10% of the training images are above the threshold
    assert isinstance(fitted.threshold_, float)
    assert fitted.labels_.sum() == (fitted.decision_scores_ > fitted.threshold_).sum() == pytest.approx(0.1 * n, abs=1)
    test = zero_split.test_images[:50]
    assert fitted.decision_function(test).shape == (50,)
    pred = fitted.predict(test)
    assert pred.shape == (50,) and pred.dtype == np.int64
    assert np.array_equal(pred, (fitted.decision_function(test) > fitted.threshold_).astype(int))
    proba = fitted.predict_proba(test)
    assert proba.shape == (50, 2) and np.allclose(proba.sum(1), 1.0)
    assert fitted.centroids_ is None and fitted.model_.l2_normalized
    assert fitted.reconstruct(test).shape == (50, 1, 8, 8) and fitted.encode(test).shape == (50, 10)
    with pytest.raises(NetbuilderError, match="fitted on"):
        fitted.predict(np.zeros((2, 3, 8, 8), np.uint8))


def test_predict_reuses_the_saved_threshold(fitted, zero_split, tmp_path, device):
    fitted.save(tmp_path)
    state = json.loads((tmp_path / "threshold.json").read_text())
    assert state["threshold"] == fitted.threshold_ and state["train_scores"]["n"] == len(fitted.decision_scores_)
    loaded = AutoencoderAnomalyDetector.load(tmp_path, device=str(device))
    test = zero_split.test_images
    assert loaded.threshold_ == fitted.threshold_
    assert np.allclose(loaded.decision_function(test), fitted.decision_function(test))
    assert np.array_equal(loaded.predict(test), fitted.predict(test))
    # The threshold comes from the file: edit it and predict follows.
    state["threshold"] = float(np.median(fitted.decision_function(test)))
    (tmp_path / "threshold.json").write_text(json.dumps(state))
    edited = AutoencoderAnomalyDetector.load(tmp_path, device=str(device))
    assert edited.predict(test).sum() == (fitted.decision_function(test) > state["threshold"]).sum()


@pytest.mark.filterwarnings("ignore::netbuilder.anomaly.TrainingCollapseWarning")  # 3 epochs: undertrained
def test_cosine_score_uses_the_model_codes_and_kmeans_centroids(digits, device):
    sp = make_split("contaminated", digits, 3, anomaly_ratio=0.05)
    det = AutoencoderAnomalyDetector("digits-dense-l2", "DIGITS", score="cosine", epochs=3, n_clusters=sp.n_clusters,
                                     device=str(device)).fit(sp.train_images[:400])
    assert det.centroids_.shape == (9, 10)
    x = sp.train_images[:20]
    codes = det.encode(x)
    assert np.allclose(np.linalg.norm(codes, axis=1), 1.0, atol=1e-5)   # the l2 normalisation is in the model
    assert np.allclose(det.decision_function(x), cosine_score(codes, det.centroids_))


def test_clusters_score_trains_the_encoder_to_cluster_and_finds_the_rare_class(digits, device):
    """DIGITS' nines at 1 % among the other digits (the contaminated protocol), auto arch, seed 0: ``cosine`` on
    the pretrained codes measured AUC 0.56, ``clusters`` (the same codes after SCAN) 0.87, ``clusters-knn`` (their
    neighbourhoods) 0.91."""
    sp = make_split("contaminated", digits, 9, anomaly_ratio=0.01)
    aucs = {}
    for score in ("cosine", "clusters"):
        det = AutoencoderAnomalyDetector("auto", score=score, n_clusters=sp.n_clusters, contamination=0.01, seed=0,
                                         device=str(device)).fit(sp.train_images)
        aucs[score] = evaluate(sp.test_labels, det.decision_scores_, det.threshold_)["auc"]
    assert det.centroids_.shape == (9, 10)
    x = sp.train_images[:20]
    assert np.allclose(det.decision_function(x), cosine_score(det.encode(x), det.centroids_))
    codes = det.encode(sp.train_images)
    aucs["clusters-knn"] = evaluate(sp.test_labels, neighbourhood_score(codes, codes), 1.0)["auc"]
    assert aucs["clusters"] > 0.8 and aucs["clusters"] > aucs["cosine"] + 0.15, aucs
    assert aucs["clusters-knn"] > 0.85, aucs


@pytest.mark.filterwarnings("ignore::netbuilder.anomaly.TrainingCollapseWarning")  # 3 epochs: undertrained
@pytest.mark.parametrize("mix", ["cosine+clusters", "cosine+clusters+clusters-knn"])
def test_a_combined_score_averages_the_ranks_of_its_parts_and_is_saved_with_them(mix, digits, tmp_path, device):
    """A combined score on a short run: its training scores are the mean rank of what its parts give alone with
    the same seed (``clusters`` trains a copy, so ``cosine`` sees the pretrained model; ``clusters-knn`` scores
    that same copy), and a saved detector scores new images the same."""
    from scipy.stats import rankdata

    names = mix.split("+clusters")[0], "clusters", *(["clusters-knn"] if mix.endswith("knn") else [])
    sp = make_split("contaminated", digits, 3, anomaly_ratio=0.05)
    x = sp.train_images[:400]
    dets = {score: AutoencoderAnomalyDetector("digits-dense-l2", "DIGITS", score=score, epochs=3, cluster_epochs=2,
                                              n_clusters=sp.n_clusters, seed=0, device=str(device)).fit(x)
            for score in (*names, mix)}
    mixed = dets[mix]
    parts = [rankdata(dets[s].decision_scores_, "max") / len(x) for s in names]
    assert np.allclose(mixed.decision_scores_, np.mean(parts, axis=0), atol=1e-12)
    assert [p.name for p in mixed.parts_] == list(names)
    assert mixed.parts_[0].model is None and mixed.parts_[1].model is not None   # only clusters changed a model
    assert all(p.model is mixed.parts_[1].model for p in mixed.parts_[2:])   # trained once for both clusters parts
    assert np.array_equal(mixed.encode(x[:5]), dets["cosine"].encode(x[:5]))   # the detector's own is pretrained
    new = sp.train_images[400:450]
    back = AutoencoderAnomalyDetector.load(mixed.save(tmp_path / "mix"), device=str(device))
    assert (tmp_path / "mix" / "part1-clusters" / "weights.safetensors").exists()
    assert np.array_equal(back.decision_function(new), mixed.decision_function(new))


def test_cosine_needs_an_l2_arch_and_f1_needs_validation():
    x = np.zeros((16, 1, 8, 8), np.uint8)
    with pytest.raises(NetbuilderError, match="l2 archs in .*digits.json: digits-scan, digits-dense-l2"):
        AutoencoderAnomalyDetector("digits-conv", "DIGITS", score="cosine").fit(x)
    with pytest.raises(NetbuilderError, match="score 'clusters' needs an arch with unit-length codes"):
        AutoencoderAnomalyDetector("digits-conv", "DIGITS", score="clusters").fit(x)
    with pytest.raises(NetbuilderError, match=r"score 'cosine\+clusters' needs an arch with unit-length codes"):
        AutoencoderAnomalyDetector("digits-conv", "DIGITS", score="cosine+clusters").fit(x)
    with pytest.raises(NetbuilderError, match="validation"):
        AutoencoderAnomalyDetector("digits-dense-l2", "DIGITS", threshold="f1").fit(x)


@pytest.mark.filterwarnings("ignore::netbuilder.anomaly.TrainingCollapseWarning")  # 5 epochs: undertrained
def test_labelled_threshold_and_dcca(digits, zero_split, tmp_path, device):
    sp = make_split("one-class", digits, 0, need_val=True)
    det = AutoencoderAnomalyDetector("digits-dense-l2", "DIGITS", score="dcca", epochs=5, cluster_epochs=1,
                                     threshold="f1", device=str(device))
    det.fit(sp.train_images, X_val=sp.val_images, y_val=sp.val_labels)
    assert det.centroids_.shape == (2, 10) and det.normal_cluster_ in (0, 1)
    assert det.threshold_info_.method == "f1" and det.val_stats_["n"] == len(sp.val_images)
    codes = det.encode(sp.test_images[:5])
    centre = det.centroids_[det.normal_cluster_]
    assert np.allclose(det.decision_function(sp.test_images[:5]), np.linalg.norm(codes - centre, axis=1), atol=1e-5)


def test_a_collapsed_autoencoder_warns(zero_split, monkeypatch, device):
    import netbuilder.anomaly.estimator as est

    monkeypatch.setattr(est, "output_variation", lambda x, x_hat: 0.001)
    det = AutoencoderAnomalyDetector("digits-dense-l2", "DIGITS", epochs=1, device=str(device))
    with pytest.warns(est.TrainingCollapseWarning, match="--recon-loss bce"):
        det.fit(zero_split.train_images)
    assert det.output_variation_ == 0.001 and "nearly the same image" in det.fit_warnings_[0]


def test_a_trained_detector_does_not_warn(fitted):
    assert fitted.fit_warnings_ == [] and fitted.output_variation_ > 0.05 and fitted.error_vs_mean_ < 1.0


def test_knn_needs_no_training_and_is_saved_with_its_reference(digits, zero_split, tmp_path, device):
    det = AutoencoderAnomalyDetector("digits-dense", "DIGITS", score="knn", seed=0, device=str(device))
    det.fit(zero_split.train_images)
    assert det.history_ == [] and det.hyperparameters_["epochs"] == 0 and det.output_variation_ is None
    scores = det.decision_function(zero_split.test_images)
    # Measured: 1.000 on this split (the 5-neighbour cosine to the training zeros).
    assert evaluate(zero_split.test_labels, scores, det.threshold_)["auc"] > AUC_FLOOR
    near = det.compared_with(zero_split.test_images[:3])
    assert near.shape == zero_split.test_images[:3].shape and 0.0 <= near.min() and near.max() <= 1.0
    back = AutoencoderAnomalyDetector.load(det.save(tmp_path / "knn"), device=str(device))
    assert (tmp_path / "knn" / "reference.npy").exists()
    assert np.array_equal(back.decision_function(zero_split.test_images), scores)
