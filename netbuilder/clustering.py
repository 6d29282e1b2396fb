"""Clustering maths on latent codes: k-means, BIRCH and Ward clustering, Student-t soft assignment, the DEC target."""
from __future__ import annotations

import warnings

import numpy as np
import torch

MINIBATCH_ABOVE = 200_000  # above this many codes, mini-batch k-means keeps memory and time bounded
# Ward linkage keeps all pairwise distances: n²/2 float64 (400 MB at 10 000 points) and O(n²) time. Above this
# many points it is fitted on a seeded random subset and every point joins the nearest cluster mean.
AGGLOMERATIVE_MAX = 10_000
CLUSTER_METHODS = ("kmeans", "birch", "agglomerative")


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


def classical_cluster(x: np.ndarray, method: str, k: int, *, n_init: int = 20,
                      seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(labels, centres) of ``x`` (N × d) in ``k`` groups by k-means, BIRCH or Ward agglomerative clustering.

    The centres are k-means' own for k-means, else the mean of each cluster's points.
    BIRCH (scikit-learn defaults: subcluster radius 0.5, branching 50) summarises the points in a CF tree and
    merges the subclusters into ``k`` with Ward linkage; it is deterministic. Agglomerative is Ward linkage
    on the points themselves, on a subset of :data:`AGGLOMERATIVE_MAX` above that size (see there).
    """
    from sklearn.cluster import AgglomerativeClustering, Birch

    if method not in CLUSTER_METHODS:
        from .errors import NetbuilderError
        raise NetbuilderError(f"Invalid value for argument `cluster_method`. Expected one of "
                              f"{', '.join(CLUSTER_METHODS)}. Received cluster_method={method!r}.")
    x = np.ascontiguousarray(x, dtype=np.float32).reshape(len(x), -1)
    if len(x) < k:
        raise ValueError(f"cannot make {k} clusters from {len(x)} points")
    if method == "kmeans":
        return kmeans(x, k, n_init=n_init, seed=seed)
    if method == "birch":
        pred = Birch(n_clusters=k).fit_predict(x).astype(np.int64)
    elif len(x) <= AGGLOMERATIVE_MAX:
        pred = AgglomerativeClustering(n_clusters=k, linkage="ward").fit_predict(x).astype(np.int64)
    else:
        sub = np.sort(np.random.default_rng(seed).choice(len(x), AGGLOMERATIVE_MAX, replace=False))
        sub_pred = AgglomerativeClustering(n_clusters=k, linkage="ward").fit_predict(x[sub])
        pred = nearest(x, class_means(x[sub], sub_pred, k))
    return pred, class_means(x, pred, k)


def class_means(x: np.ndarray, pred: np.ndarray, k: int, fallback: np.ndarray | None = None) -> np.ndarray:
    """The mean of the points of each cluster ``0..k-1`` (an empty cluster: ``fallback[j]``, else zeros)."""
    out = np.zeros((k, x.shape[1]), dtype=np.float32) if fallback is None else np.array(fallback, np.float32)
    for j in range(k):
        members = pred == j
        if members.any():
            out[j] = x[members].mean(0)
    return out


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
