"""Deep k-means: the softmax sharpens from soft to hard over the run, and the loss pulls codes to centroids."""
from __future__ import annotations

import numpy as np
import torch

from netbuilder.core.objectives import cluster_settings, objective_class


def _dkm(**over):
    hp = cluster_settings("dkm").resolve({"loss": "dkm", "epochs": 4, "batch_size": 10, **over})
    obj = objective_class("dkm")(hp, 3, device="cpu")
    centres = np.eye(3, 4, dtype=np.float32)
    codes = np.repeat(centres, [34, 33, 33], axis=0) * 0.9  # each code at squared distance 0.01 from its centre
    obj.start(None, np.zeros((100, 4), np.uint8), codes, np.zeros(100, np.int64), centres, 0)
    return obj


def test_temperature_anneals_from_start_to_end():
    obj = _dkm(dkm_alpha_start=0.5, dkm_alpha_end=50.0)
    obj.before_step(0)
    assert np.isclose(obj.inverse_temperature(), 0.5)
    obj.before_step(obj.total)
    assert np.isclose(obj.inverse_temperature(), 50.0)
    obj.before_step(obj.total // 2)
    assert 0.5 < obj.inverse_temperature() < 50.0


def test_temperature_is_measured_in_units_of_the_codes_scale():
    # The softmax sees a·d²/s with s the mean squared distance to the nearest centre at the start (here 0.01), so
    # the same settings behave alike on unit-length and on unnormalised codes.
    obj = _dkm()
    assert np.isclose(obj.scale, 0.01, rtol=1e-4)


def test_loss_is_soft_kmeans_of_codes():
    obj = _dkm(dkm_lambda=1.0)
    z = torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0]], requires_grad=True)

    class Identity(torch.nn.Module):
        def forward(self, x):
            return x, z

    obj.before_step(obj.total)  # hard assignments: codes sitting on centroids cost nothing
    parts = obj.loss(Identity(), torch.zeros(2, 4), torch.arange(2), lambda a, b: (a - b).pow(2).mean())
    assert parts["dkm"].item() < 1e-6
    obj.mu.data += 0.5
    parts = obj.loss(Identity(), torch.zeros(2, 4), torch.arange(2), lambda a, b: (a - b).pow(2).mean())
    assert parts["dkm"].item() > 0.5
    parts["loss"].backward()
    assert obj.mu.grad is not None and z.grad is not None
