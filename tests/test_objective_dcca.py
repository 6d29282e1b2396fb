"""DCCA's clustering objective on generated 1-D signals: two classes (a bump early or late in the window, of
random amplitude and jitter, in noise), a conv1d autoencoder; the objective clusters them, and only the clustering channels get the clustering gradient."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from netbuilder.core.autoencoder import build_model, fit_autoencoder
from netbuilder.core.clustering import fit_clustering
from netbuilder.core.losses import reconstruction_loss
from netbuilder.core.objectives import cluster_settings, objective_class
from netbuilder.core.objectives.dcca import split_maps
from netbuilder.metrics import clustering_scores
from netbuilder.settings import PRETRAIN

CPU = torch.device("cpu")
SPEC = {"name": "sig", "input_shape": [1, 64],
        "defaults": {"conv": {"activation": "relu", "padding": "same"}},
        "encoder": [{"type": "conv", "filters": 8, "kernel_size": 5, "stride": 2},
                    {"type": "conv", "filters": 16, "kernel_size": 3, "stride": 2},
                    {"type": "conv", "filters": 16, "kernel_size": 3, "stride": 2},
                    {"type": "flatten"}, {"type": "dense", "units": 10, "activation": "linear"}],
        "output_activation": "linear"}


def two_class_signals(n: int = 160, length: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Half with a bump at 30% of the window, half at 70% (amplitude 0.5-1.5, jitter ±4 samples, noise 0.3),
    standardised."""
    rng = np.random.default_rng(seed)
    labels = np.repeat([0, 1], n // 2)
    centre = np.where(labels == 0, 0.3, 0.7)[:, None] * length + rng.integers(-4, 5, (n, 1))
    t = np.arange(length)[None, :]
    x = rng.uniform(0.5, 1.5, (n, 1)) * np.exp(-0.5 * ((t - centre) / 3.0) ** 2)
    x = x + 0.3 * rng.standard_normal((n, length))
    x = (x - x.mean()) / x.std()
    return x[:, None, :].astype(np.float32), labels


@pytest.fixture(scope="module")
def pretrained():
    x, y = two_class_signals()
    torch.manual_seed(0)
    model = build_model(SPEC, (1, 64))
    fit_autoencoder(model, x, PRETRAIN.resolve({"epochs": 30, "batch_size": 32}), seed=0, device=CPU,
                    progress=False)
    return model.state_dict(), x, y


def _objective(pretrained, **over):
    state, x, y = pretrained
    model = build_model(SPEC, (1, 64))
    model.load_state_dict(state)
    hp = cluster_settings("dcca").resolve({"loss": "dcca", "epochs": 10, "batch_size": 32, "lr": 1e-3,
                                           "clustering_channels": 4, **over})
    return model, objective_class("dcca")(hp, 2, device=CPU), hp, x, y


def test_feature_maps_are_the_last_conv_output(pretrained):
    model, *_ = _objective(pretrained)
    x = torch.from_numpy(pretrained[1][:5])
    maps = model.feature_maps(x)
    assert maps.shape == (5, 16, 8)
    assert torch.allclose(model.encoder[3:](maps).flatten(1), model.encode(x))  # flatten, dense: the code


def test_dcca_clusters_two_kinds_of_signals(pretrained):
    model, obj, hp, x, y = _objective(pretrained)
    res = fit_clustering(model, x, obj, hp, seed=0, device=CPU, labels=y)
    assert res.steps > 0 and res.centroids.shape == (2, 10) and np.allclose(res.q.sum(1), 1, atol=1e-4)
    assert clustering_scores(y, res.pred)["acc"] > 0.9
    report = res.report
    assert len(report["clustering_channels"]) == 4 and report["best_channel"] == report["clustering_channels"][0]
    assert report["rows"][0]["acc"] >= clustering_scores(y, res.pred)["acc"] - 1e-9  # the best map by ACC


def test_only_clustering_channels_get_the_clustering_gradient(pretrained):
    model, obj, hp, x, _ = _objective(pretrained, dcca_alpha=0.5)
    codes = np.zeros((len(x), 10), np.float32)
    obj.start(model, x, codes, np.zeros(len(x), np.int64), np.zeros((2, 10), np.float32), 0)
    rec = reconstruction_loss("mse")
    batch = torch.from_numpy(x[:32])
    last_conv = [m for m in model.encoder[model.maps_index].modules() if isinstance(m, nn.Conv1d)][0]

    def conv_grad(loss_fn) -> torch.Tensor:
        model.zero_grad()
        loss_fn().backward()
        return last_conv.weight.grad.clone()

    full = conv_grad(lambda: obj.loss(model, batch, torch.arange(32), rec)["loss"])
    rec_only = conv_grad(lambda: rec(model.decode(split_maps(model, batch)[2]), batch))
    top = obj.top.tolist()
    rest = [c for c in range(16) if c not in top]
    # Reconstruction kernels: exactly the reconstruction gradient; clustering kernels: something else.
    assert torch.allclose(full[rest], rec_only[rest], atol=1e-6)
    assert not torch.allclose(full[top], rec_only[top], atol=1e-6)
    assert not torch.allclose(full[top], 0.5 * rec_only[top], atol=1e-6)


def test_state_round_trip_keeps_centres_and_ranking(pretrained):
    model, obj, hp, x, y = _objective(pretrained, epochs=1)
    fit_clustering(model, x, obj, hp, seed=0, device=CPU)
    fresh = objective_class("dcca")(hp, 2, device=CPU)
    fresh.start(model, x, np.zeros((len(x), 10), np.float32), np.zeros(len(x), np.int64),
                np.zeros((2, 10), np.float32), 0)
    fresh.load_state_dict(obj.state_dict())
    assert torch.equal(fresh.centres, obj.centres) and fresh.top.tolist() == obj.top.tolist()
    assert np.array_equal(fresh.centroids(), obj.centroids())
