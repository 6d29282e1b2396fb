"""DCN's k-means loss: pull each code towards its nearest running-mean centroid."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ... import distributed
from ...settings import Setting
from .base import Objective, register_objective


@register_objective
class KMeansLoss(Objective):
    """L = L_rec + λ·‖z − μ_assign‖² with per-batch assignments; the centroids are running means over
    everything assigned to them so far (starting from a prior weight of 100 codes each)."""

    name = "kmeans"
    title = "autoencoder + k-means loss"
    settings = (Setting("lambda", 0.1, "Weight of the k-means term (kmeans).", float, minimum=0, cli="--lambda"),)
    loss_titles = {"kmeans": "k-means term"}

    def start(self, model: nn.Module, images: Any, codes: np.ndarray, init_pred: np.ndarray,
              centres: np.ndarray, seed: int) -> None:
        self.mu = torch.from_numpy(centres.copy()).to(self.device)  # a copy: mu moves, the init must not
        self.counts = torch.full((self.k,), 100.0, device=self.device)  # prior weight: centroids move slowly at first

    def loss(self, model, x, idx, rec):
        mu, counts = self.mu, self.counts
        x_hat, z = model(x)
        with torch.no_grad():
            assign = torch.cdist(z.detach(), mu).argmin(dim=1)  # this batch's own assignments
        target = mu[assign].clone()
        km = (z - target).pow(2).sum(dim=1).mean()
        r = rec(x_hat, x)
        with torch.no_grad():  # DCN running-mean centroid update, over the whole batch (all ranks)
            zd = z.detach().float()
            sums = torch.zeros_like(mu).index_add_(0, assign, zd)
            n_j = torch.bincount(assign, minlength=self.k).to(mu.dtype)
            distributed.all_reduce_sum_(sums, n_j)
            hit = n_j > 0
            counts[hit] += n_j[hit]
            mu[hit] += (sums[hit] - n_j[hit, None] * mu[hit]) / counts[hit, None]
        return {"loss": r + float(self.hp["lambda"]) * km, "rec": r, "kmeans": km}

    def centroids(self) -> np.ndarray:
        return self.mu.cpu().numpy()


    def state_dict(self) -> dict[str, Any]:
        return {"mu": self.mu.detach().cpu().clone(), "counts": self.counts.detach().cpu().clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.mu.copy_(state["mu"].to(self.mu.device, self.mu.dtype))
        self.counts.copy_(state["counts"].to(self.counts.device, self.counts.dtype))
