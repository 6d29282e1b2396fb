"""Clustering maths on latent codes: k-means initialisation, Student-t soft assignment, the DEC target."""
from __future__ import annotations

import warnings

import numpy as np
import torch

MINIBATCH_ABOVE = 200_000  # above this many codes, mini-batch k-means keeps memory and time bounded


def kmeans(codes: np.ndarray, k: int, *, n_init: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """k-means on ``codes``; returns (labels, centres). Duplicate points or k > distinct points do not fail."""
    from sklearn.cluster import KMeans, MiniBatchKMeans
    from sklearn.exceptions import ConvergenceWarning

    codes = np.ascontiguousarray(codes, dtype=np.float32)
    if codes.shape[0] < k:
        raise ValueError(f"cannot make {k} clusters from {codes.shape[0]} points")
    with warnings.catch_warnings():
        # Fewer distinct points than k makes sklearn warn; the caller sees the cluster count in the metrics.
        warnings.simplefilter("ignore", ConvergenceWarning)
        if codes.shape[0] > MINIBATCH_ABOVE:
            km = MiniBatchKMeans(n_clusters=k, n_init=n_init, random_state=seed, batch_size=4096)
        else:
            km = KMeans(n_clusters=k, n_init=n_init, random_state=seed)
        labels = km.fit_predict(codes)
    return labels.astype(np.int64), km.cluster_centers_.astype(np.float32)


def student_t(z: torch.Tensor, centroids: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """DEC soft assignment q_ij ∝ (1 + ||z_i − μ_j||²/α)^(−(α+1)/2), rows normalised to 1."""
    d2 = torch.cdist(z, centroids).pow(2)
    q = (1.0 + d2 / alpha).pow(-(alpha + 1.0) / 2.0)
    return q / q.sum(dim=1, keepdim=True)


def dec_target(q: torch.Tensor) -> torch.Tensor:
    """DEC target p_ij = (q_ij² / f_j) / Σ_j' (q_ij'² / f_j'), f_j = Σ_i q_ij: sharpens confident assignments."""
    w = q.pow(2) / q.sum(dim=0, keepdim=True)
    return w / w.sum(dim=1, keepdim=True)


def nearest(codes: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of the nearest centre for each code."""
    z = torch.from_numpy(np.ascontiguousarray(codes, dtype=np.float32))
    c = torch.from_numpy(np.ascontiguousarray(centres, dtype=np.float32))
    out = []
    for start in range(0, z.shape[0], 65536):
        out.append(torch.cdist(z[start:start + 65536], c).argmin(dim=1))
    return torch.cat(out).numpy().astype(np.int64) if out else np.zeros(0, dtype=np.int64)


def soft_assign(codes: np.ndarray, centres: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """Student-t soft assignments of NumPy codes (for confidences)."""
    z = torch.from_numpy(np.ascontiguousarray(codes, dtype=np.float32))
    c = torch.from_numpy(np.ascontiguousarray(centres, dtype=np.float32))
    return torch.cat([student_t(z[s:s + 65536], c, alpha) for s in range(0, z.shape[0], 65536)]).numpy()


MANIFOLDS = ("none", "umap")


def manifold_embed(codes: np.ndarray, method: str, n_components: int, *, n_neighbors: int = 20,
                   seed: int = 0) -> np.ndarray:
    """Embed codes on a low-dimensional manifold before the final k-means (N2D: UMAP, min_dist 0).

    A fixed ``seed`` makes UMAP single-threaded and repeatable. ``none`` returns the codes unchanged.
    """
    if method == "none":
        return codes
    if method != "umap":
        from .errors import NetbuilderError
        raise NetbuilderError(f"Invalid value for argument `manifold`. Expected one of {', '.join(MANIFOLDS)}. "
                              f"Received manifold={method!r}.")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # umap warns that a fixed random_state disables parallelism: intended
        import umap

        reducer = umap.UMAP(n_components=n_components, n_neighbors=n_neighbors, min_dist=0.0,
                            metric="euclidean", random_state=seed)
        return reducer.fit_transform(np.ascontiguousarray(codes, dtype=np.float32)).astype(np.float32)
