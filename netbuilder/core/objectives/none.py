"""No training: a classical clustering of the pretrained codes (k-means by default, or BIRCH or Ward
agglomerative), optionally on a UMAP embedding of them first (N2D)."""
from __future__ import annotations

import time
from typing import Any

import numpy as np
from torch import nn

from ...clustering import CLUSTER_METHODS, MANIFOLDS, class_means, classical_cluster, manifold_embed, soft_assign
from ...settings import Setting
from ...train import encode_all
from .base import Objective, register_objective


@register_objective
class KMeansOnCodes(Objective):
    """The k-means initialisation is the result, unless ``cluster_method`` or ``manifold`` asks for another
    final step: ``cluster_method`` clusters the codes (or, with ``manifold umap``, their UMAP embedding) and the
    centroids are reported back in code space (the mean code of each cluster)."""

    name = "none"
    title = "autoencoder + k-means (refit)"
    trains = False
    final_step = True
    settings = (
        Setting("manifold", "none", "Final clustering on a UMAP embedding of the codes (N2D); needs loss none or "
                "selflabel.", str, choices=MANIFOLDS),
        Setting("manifold_neighbors", 20, "Neighbours of the UMAP graph (manifold umap).", int, minimum=2),
        # --cluster-method, not --method: `run` and `visualize` already use --method for the plots' embedding.
        Setting("cluster_method", "kmeans", "Final clustering step: k-means, BIRCH, or Ward agglomerative (on "
                "more than 10000 codes: fitted on a random 10000, the rest join the nearest cluster mean); "
                "needs loss none or selflabel.", str, choices=CLUSTER_METHODS),
    )

    def start(self, model: nn.Module, images: Any, codes: np.ndarray, init_pred: np.ndarray,
              centres: np.ndarray, seed: int) -> None:
        self.pred, self.centres, self.q = init_pred, centres, None
        manifold = self.hp.get("manifold", "none")
        method = self.hp.get("cluster_method", "kmeans")
        if manifold == "none" and method == "kmeans":
            return  # the k-means initialisation already is k-means on the codes
        t0 = time.perf_counter()
        space = manifold_embed(codes, manifold, self.k, n_neighbors=int(self.hp["manifold_neighbors"]), seed=seed)
        self.pred, space_centres = classical_cluster(space, method, self.k, n_init=int(self.hp["n_init"]), seed=seed)
        self.centres = class_means(codes, self.pred, self.k, fallback=centres)
        if manifold != "none":
            # Confidences where the clusters were made: Student-t to the centres in the embedding.
            self.q = soft_assign(space, space_centres, self.alpha)
        where = f"{manifold} embedding ({space.shape[1]} dims)" if manifold != "none" else "codes"
        self.say(f"{method} on the {where} in {time.perf_counter() - t0:.1f}s")

    def centroids(self) -> np.ndarray:
        return self.centres

    def predict(self, model: nn.Module, images: Any, codes: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        if self.q is None and codes is None:
            codes = encode_all(model, images, self.device)
        q = self.q if self.q is not None else soft_assign(codes, self.centres, self.alpha)
        return self.pred, q
