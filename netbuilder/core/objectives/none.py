"""No training: k-means on the pretrained codes, optionally on a UMAP embedding of them first (N2D)."""
from __future__ import annotations

import time
from typing import Any

import numpy as np
from torch import nn

from ...clustering import MANIFOLDS, kmeans, manifold_embed, soft_assign
from ...settings import Setting
from ...train import encode_all
from .base import Objective, register_objective


@register_objective
class KMeansOnCodes(Objective):
    """The k-means initialisation is the result; with ``manifold umap`` k-means runs on a UMAP embedding of the
    codes instead and the centroids are reported back in code space (class means of the codes)."""

    name = "none"
    title = "autoencoder + k-means (refit)"
    trains = False
    settings = (
        Setting("manifold", "none", "Final k-means on a UMAP embedding of the codes (N2D); needs loss none.", str,
                choices=MANIFOLDS),
        Setting("manifold_neighbors", 20, "Neighbours of the UMAP graph (manifold umap).", int, minimum=2),
    )

    def start(self, model: nn.Module, images: Any, codes: np.ndarray, init_pred: np.ndarray,
              centres: np.ndarray, seed: int) -> None:
        self.pred, self.centres, self.q = init_pred, centres, None
        method = self.hp.get("manifold", "none")
        if method == "none":
            return
        t0 = time.perf_counter()
        emb = manifold_embed(codes, method, self.k, n_neighbors=int(self.hp["manifold_neighbors"]), seed=seed)
        self.pred, emb_centres = kmeans(emb, self.k, n_init=int(self.hp["n_init"]), seed=seed)
        self.centres = np.stack([codes[self.pred == j].mean(0) if (self.pred == j).any() else centres[j]
                                 for j in range(self.k)]).astype(np.float32)
        self.q = soft_assign(emb, emb_centres, self.alpha)
        self.say(f"{method} embedding ({emb.shape[1]} dims) and k-means in {time.perf_counter() - t0:.1f}s")

    def centroids(self) -> np.ndarray:
        return self.centres

    def predict(self, model: nn.Module, images: Any, codes: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        if self.q is None and codes is None:
            codes = encode_all(model, images, self.device)
        q = self.q if self.q is not None else soft_assign(codes, self.centres, self.alpha)
        return self.pred, q
