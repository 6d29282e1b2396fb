"""DCCA's clustering objective: k-means per channel of the bottleneck activation maps, with the clustering loss
on the channels that separate best ("clustering kernels") and only reconstruction on the rest
("reconstruction kernels").

The activation maps are the encoder's last spatial output (the last conv before ``flatten``, see
:meth:`netbuilder.arch.Autoencoder.feature_maps`); each channel's map of a sample, flattened, is one point of
that channel's own k-means with ``k`` centres. Channels are ranked by how far apart their centres are (the
smallest distance between two of their centres, i.e. the distance for k = 2); the top ``clustering_channels``
are clustering kernels. Per batch, every sample is assigned to the nearest centre of each clustering channel
(never precomputed in dataset order: batches are shuffled) and the loss is

    (1 - α)·L_rec + α·mean ‖f_c(x) − μ_c,assign‖²   over the clustering channels c,

while the gradient reaching the other channels' maps is rescaled to the pure reconstruction gradient ∂L_rec/∂f_c
(they receive no clustering term, and the (1 - α) factor is undone for them). Centres and the ranking are
refreshed every ``dcca_update_epochs`` epochs by Lloyd iterations warm-started from the previous centres.

Predictions come from the best-separated channel. ``centroids()`` returns the code-space means of the predicted
clusters (``k × code_dim``, what the stage saves): the per-channel centres live in activation-map space, not in
code space. With labels, :meth:`report` adds the channel whose assignments score the best ACC (a label-selected
row, shown beside the unsupervised one). An arch without spatial layers (a dense encoder) falls back to the code
itself as the single channel: DCN-style k-means on the codes with fixed, periodically refitted centres.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from ...clustering import kmeans, soft_assign
from ...metrics import clustering_scores
from ...settings import Setting
from ...train.batches import map_batches
from .base import Objective, register_objective

LLOYD_ITERATIONS = 10   # per refresh: warm-started, so a few iterations settle the centres
CHUNK = 8192            # samples per distance block (N × C × k floats at once)


def split_maps(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(maps, flat, z)`` of a batch: the activation maps as produced, flattened to ``(B, C, P)``, and the code.
    Encoders without spatial layers give the code as one channel ``(B, 1, code_dim)``."""
    maps, z = model.encode_with_maps(x) if hasattr(model, "encode_with_maps") else (None, model.encode(x))
    if maps is None:
        maps = z.unsqueeze(1)
    return maps, maps.flatten(2), z


def nearest_per_channel(f: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Index ``(B, C)`` of the nearest of each channel's centres ``(C, k, P)`` for maps ``f`` ``(B, C, P)``."""
    return ((f.unsqueeze(2) - centres.unsqueeze(0)) ** 2).sum(-1).argmin(-1)


def separation(centres: torch.Tensor) -> torch.Tensor:
    """Per channel, the smallest distance between two of its centres ``(C, k, P)`` → ``(C,)``."""
    d = torch.cdist(centres, centres)
    k = centres.shape[1]
    return d.masked_fill(torch.eye(k, dtype=torch.bool, device=d.device), math.inf).amin(dim=(1, 2))


@register_objective
class DCCA(Objective):
    """k-means per activation-map channel; clustering loss on the best-separated channels only."""

    name = "dcca"
    title = "autoencoder + DCCA kernels"
    settings = (
        Setting("clustering_channels", 8, "Channels of the bottleneck activation maps (the best-separated) that "
                "receive the clustering loss; the others get only the reconstruction gradient (dcca).", int,
                minimum=1),
        Setting("dcca_alpha", 0.1, "α of (1 - α)·reconstruction + α·clustering on the clustering channels "
                "(dcca).", float, minimum=0, maximum=1, exclusive_max=True),
        Setting("dcca_update_epochs", 1, "Epochs between refreshes of the per-channel centres and the channel "
                "ranking (dcca).", int, minimum=1),
    )
    loss_titles = {"clustering": "clustering term (clustering channels)"}

    def start(self, model: nn.Module, images: Any, codes: np.ndarray, init_pred: np.ndarray,
              centres: np.ndarray, seed: int) -> None:
        self.model, self.images = model, images
        self.code_centres = np.asarray(centres, dtype=np.float32).copy()
        maps = self._all_maps(model, images)[0]
        self.centres = torch.from_numpy(np.stack([
            kmeans(maps[:, c], self.k, n_init=int(self.hp["n_init"]), seed=seed)[1] for c in range(maps.shape[1])
        ])).to(self.device)
        self._rank()
        self.say(f"dcca: {maps.shape[1]} channel(s) of {maps.shape[2]} values; clustering channels "
                 f"{self.top.tolist()}")
        n, bs = len(images), max(1, min(int(self.hp["batch_size"]), len(images)))
        per_epoch = n // bs if self.hp.get("drop_last") and n >= bs else math.ceil(n / bs)
        self.refresh_every = max(1, per_epoch * int(self.hp["dcca_update_epochs"]))
        self.channel_pred: np.ndarray | None = None

    def _rank(self) -> None:
        """Order the channels by separation (best first) and take the top ones as clustering channels."""
        self.order = torch.argsort(separation(self.centres), descending=True, stable=True)
        self.top = self.order[:min(int(self.hp["clustering_channels"]), len(self.order))]

    def _all_maps(self, model: nn.Module, images: Any) -> tuple[np.ndarray, np.ndarray]:
        """Flat activation maps ``(N, C, P)`` and codes ``(N, code_dim)`` of every sample, in eval mode."""
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                both = map_batches(lambda x: torch.cat([t.flatten(1) for t in split_maps(model, x)[1:]], 1),
                                   images, self.device)
        finally:
            model.train(was_training)
        shape = getattr(model, "maps_shape", None)
        c, p = (1, int(model.code_dim)) if shape is None else (int(shape[0]), int(np.prod(shape[1:])))
        return both[:, :c * p].reshape(len(both), c, p), both[:, c * p:]

    def before_step(self, step: int) -> bool:
        """Every ``dcca_update_epochs`` epochs: Lloyd iterations from the current centres, then re-rank."""
        if step == 0 or step % self.refresh_every:
            return False
        maps = torch.from_numpy(self._all_maps(self.model, self.images)[0]).to(self.device)
        for _ in range(LLOYD_ITERATIONS):
            assign = torch.cat([nearest_per_channel(maps[i:i + CHUNK], self.centres)
                                for i in range(0, len(maps), CHUNK)])                       # (N, C)
            onehot = nn.functional.one_hot(assign, self.k).to(maps.dtype)                   # (N, C, k)
            sums = torch.einsum("nck,ncp->ckp", onehot, maps)
            counts = onehot.sum(0).unsqueeze(-1)                                           # (C, k, 1)
            # An emptied cluster keeps its centre rather than collapsing to the origin.
            self.centres = torch.where(counts > 0, sums / counts.clamp_min(1), self.centres)
        self._rank()
        return False

    def loss(self, model, x, idx, rec):
        maps, flat, z = split_maps(model, x)
        r = rec(model.decode(z), x)
        a = float(self.hp["dcca_alpha"])
        f = flat[:, self.top]                                                               # (B, S, P)
        mu = self.centres[self.top]                                                         # (S, k, P)
        with torch.no_grad():
            assign = nearest_per_channel(f.detach().float(), mu)                            # this batch's own
        target = mu[torch.arange(len(self.top), device=mu.device).unsqueeze(0), assign]     # (B, S, P)
        clustering = (f - target).pow(2).mean()
        if maps.requires_grad and 0 < a < 1 and maps.shape[1] > len(self.top):
            # Reconstruction kernels: their maps' gradient is (1 - α)·∂L_rec/∂f only; undo the (1 - α).
            scale = torch.full((maps.shape[1],), 1.0 / (1.0 - a), device=maps.device, dtype=maps.dtype)
            scale[self.top] = 1.0
            maps.register_hook(lambda g: g * scale.view(1, -1, *([1] * (g.dim() - 2))))
        return {"loss": (1.0 - a) * r + a * clustering, "rec": r, "clustering": clustering}

    def predict(self, model: nn.Module, images: Any, codes: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Assignments of every channel; the prediction is the best-separated channel's, the soft assignments
        Student-t on its centres. The code-space centroids are refreshed from these clusters."""
        maps, all_codes = self._all_maps(model, images)
        codes = all_codes if codes is None else codes
        centres = self.centres.cpu()
        self.channel_pred = torch.cat([nearest_per_channel(torch.from_numpy(maps[i:i + CHUNK]), centres)
                                       for i in range(0, len(maps), CHUNK)]).numpy().astype(np.int64)
        best = int(self.order[0])
        pred = self.channel_pred[:, best]
        for j in range(self.k):
            if (pred == j).any():  # an empty cluster keeps its previous code-space centre
                self.code_centres[j] = codes[pred == j].mean(0)
        return pred, soft_assign(maps[:, best], centres[best].numpy(), self.alpha)

    def centroids(self) -> np.ndarray:
        return self.code_centres

    def report(self, labels: np.ndarray | None) -> dict[str, Any]:
        """The channel ranking; with labels, the ACC of every channel's assignments and a metrics-table row for
        the best one (selected with the labels, so an upper bound rather than an unsupervised result)."""
        out: dict[str, Any] = {"best_channel": int(self.order[0]), "clustering_channels": self.top.tolist(),
                               "separation": [round(float(v), 6) for v in separation(self.centres).cpu()]}
        if labels is None or self.channel_pred is None:
            return out
        scores = [clustering_scores(labels, self.channel_pred[:, c]) for c in range(self.channel_pred.shape[1])]
        by_acc = int(np.argmax([s["acc"] for s in scores]))
        out.update(channel_acc=[round(s["acc"], 4) for s in scores], best_acc_channel=by_acc,
                   rows=[{"method": "cluster-dcca-best-map",
                          "title": f"dcca: best map by ACC (ch {by_acc})", **scores[by_acc]}])
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"centres": self.centres.detach().cpu().clone(), "code_centres": torch.from_numpy(self.code_centres)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.centres = state["centres"].to(self.device)
        self.code_centres = state["code_centres"].numpy().copy()
        self._rank()
