"""Every registered clustering objective, in memory on a pretrained DIGITS autoencoder: shapes, soft assignments,
ACC above a bar, state_dict round trips, settings generated into the CLI and the schema."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from netbuilder.arch import arch_schema
from netbuilder.cli import main
from netbuilder.core.autoencoder import build_model, fit_autoencoder
from netbuilder.core.clustering import fit_clustering
from netbuilder.core.objectives import OBJECTIVES, cluster_settings, objective_class, objective_names, stage_name
from netbuilder.datasets import load_dataset
from netbuilder.errors import NetbuilderError
from netbuilder.metrics import clustering_scores
from netbuilder.settings import PRETRAIN

SPEC = {"name": "tiny", "input_shape": [1, 8, 8],
        "encoder": [{"type": "flatten"}, {"type": "dense", "units": 64}, {"type": "dense", "units": 10,
                                                                            "activation": "linear"}],
        "output_activation": "linear"}


@pytest.fixture(scope="module")
def pretrained():
    data = load_dataset("DIGITS", progress=False)
    torch.manual_seed(0)
    model = build_model(SPEC, (1, 8, 8))
    hp = PRETRAIN.resolve({"epochs": 15, "batch_size": 64})
    fit_autoencoder(model, data.images, hp, seed=0, device=torch.device("cpu"), progress=False)
    return model.state_dict(), data


def _fit(name, pretrained, **over):
    state, data = pretrained
    model = build_model(SPEC, (1, 8, 8))
    model.load_state_dict(state)
    hp = cluster_settings(name).resolve({"loss": name, "epochs": 3, "lr": 1e-3, **over})
    obj = objective_class(name)(hp, 10, device="cpu")
    res = fit_clustering(model, data.images, obj, hp, seed=0, device=torch.device("cpu"))
    return obj, res, data


# Objectives that need more than 3 epochs to reach the bar (SCAN's random heads start from chance).
LONGER = {"scan": {"epochs": 40, "batch_size": 128}}


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_objective_clusters_digits(name, pretrained):
    obj, res, data = _fit(name, pretrained, **LONGER.get(name, {}))
    n = len(data)
    assert res.pred.shape == (n,) and res.pred.dtype == np.int64
    assert res.q.shape == (n, 10) and np.allclose(res.q.sum(1), 1.0, atol=1e-4)
    assert res.centroids.shape == (10, 10) and res.codes.shape == (n, 10)
    # Raw-pixel k-means gives 0.79 here; a broken objective collapses far below this bar.
    assert clustering_scores(data.labels, res.pred)["acc"] > 0.6
    assert (res.steps > 0) == obj.trains


@pytest.mark.parametrize("name", sorted(n for n, c in OBJECTIVES.items() if c.trains))
def test_objective_state_round_trips(name, pretrained):
    obj, _, _ = _fit(name, pretrained)
    state = obj.state_dict()
    fresh = objective_class(name)(obj.hp, 10, device="cpu")
    fresh.start(*_start_args(pretrained, obj))
    fresh.load_state_dict(state)
    assert np.allclose(fresh.centroids(), obj.centroids())


def _start_args(pretrained, obj):
    state, data = pretrained
    model = build_model(SPEC, (1, 8, 8))
    model.load_state_dict(state)
    c = obj.centroids()
    return model, data.images, np.zeros((len(data), c.shape[1]), np.float32), np.zeros(len(data), np.int64), c, 0


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_objective_settings_reach_cli_and_schema(name):
    cls = OBJECTIVES[name]
    help_text = CliRunner().invoke(main, ["cluster", "--help"]).output
    schema = arch_schema()["$defs"]["cluster_training"]["properties"]
    assert name in schema["loss"]["enum"]
    for s in cls.settings:
        assert s.option in help_text and s.name in schema
        assert s.name in cluster_settings(name)
    assert cls.title and stage_name(name) == f"cluster-{name}"


def test_settings_of_another_objective_are_refused():
    with pytest.raises(NetbuilderError, match="Unknown argument `gamma` for clustering with loss kmeans"):
        cluster_settings("kmeans").resolve({"gamma": 0.5})


def test_unknown_objective_is_a_one_line_error():
    with pytest.raises(NetbuilderError, match="Expected one of none, kmeans, kld"):
        objective_class("bogus")


def test_display_order_puts_builtins_first():
    assert objective_names()[:3] == ["none", "kmeans", "kld"]



def _bars(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """8×8 uint8 images of one horizontal (class 0) or vertical (class 1) bar at a random place, plus noise."""
    y = rng.integers(0, 2, n)
    x = rng.integers(0, 60, (n, 1, 8, 8))
    pos = rng.integers(0, 8, n)
    for i in range(n):
        if y[i]:
            x[i, 0, :, pos[i]] = 255
        else:
            x[i, 0, pos[i], :] = 255
    return x.astype(np.uint8), y.astype(np.int64)


def test_selflabel_corrects_a_minority_of_wrong_labels_and_relabels_on_schedule(monkeypatch):
    from netbuilder.core.objectives.selflabel import SelfLabelling

    rng = np.random.default_rng(0)
    images, truth = _bars(1000, rng)
    noisy = truth.copy()
    flip = rng.random(len(noisy)) < 0.2
    noisy[flip] = 1 - noisy[flip]
    start = SelfLabelling.start

    def start_from_noisy_labels(self, model, images, codes, init_pred, centres, seed):
        start(self, model, images, codes, noisy, centres, seed)
        self.pred, self.labels = noisy, torch.from_numpy(noisy)  # k-means' clustering replaced by noisy labels

    monkeypatch.setattr(SelfLabelling, "start", start_from_noisy_labels)
    said = []
    torch.manual_seed(0)
    model = build_model(SPEC, (1, 8, 8))
    hp = cluster_settings("selflabel").resolve({"loss": "selflabel", "epochs": 6, "lr": 1e-3, "batch_size": 64,
                                                "relabel_every": 2})
    obj = objective_class("selflabel")(hp, 2, device="cpu", log=said.append)
    res = fit_clustering(model, images, obj, hp, seed=0, device=torch.device("cpu"))
    assert clustering_scores(truth, noisy)["acc"] < 0.85
    # The classifier learns the pattern most labels share before it can memorise the wrong ones; relabelling
    # with its predictions then removes them. A classifier that memorised its labels would stay at 0.8.
    assert clustering_scores(truth, res.pred)["acc"] > 0.97
    assert sum("relabelled" in m for m in said) == 2  # after epochs 2 and 4 (6 epochs, every 2)


def test_probes_score_a_fixed_subsample_and_leave_the_result_alone(pretrained, monkeypatch):
    """The in-training ACC probes score PROBE_SAMPLES samples (not every one) and do not touch the training:
    the final clusters are the same with and without labels to probe."""
    import netbuilder.core.clustering as core_clustering

    monkeypatch.setattr(core_clustering, "PROBE_SAMPLES", 300)
    state, data = pretrained
    seen, results = [], []
    for labels in (data.labels, None):
        model = build_model(SPEC, (1, 8, 8))
        model.load_state_dict(state)
        hp = cluster_settings("kmeans").resolve({"loss": "kmeans", "epochs": 2, "lr": 1e-3})
        obj = objective_class("kmeans")(hp, 10, device="cpu")
        predict = obj.predict
        obj.predict = lambda m, images, codes=None: (seen.append(len(images)), predict(m, images, codes))[1]
        results.append(fit_clustering(model, data.images, obj, hp, seed=0, device=torch.device("cpu"),
                                      labels=labels))
    probed, plain = results
    assert seen[:2] == [300, 300]  # epochs 1 and 2 probed on the subsample, then the final pass on all 1,797
    assert seen[2] == len(data) and "acc" in probed.history[-1] and "acc" not in plain.history[-1]
    assert np.array_equal(probed.pred, plain.pred) and np.array_equal(probed.codes, plain.codes)
