"""Clustering metrics: ACC with Hungarian matching, NMI, ARI, and cluster-count checks."""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score


def cluster_acc(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Unsupervised clustering accuracy: the best one-to-one mapping of clusters to classes (Hungarian).

    Works when the number of clusters differs from the number of classes (the cost matrix is rectangular;
    unmatched clusters count as errors).
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred differ in shape: {y_true.shape} vs {y_pred.shape}")
    if y_true.size == 0:
        return float("nan")
    _, t = np.unique(y_true, return_inverse=True)
    _, p = np.unique(y_pred, return_inverse=True)
    counts = np.zeros((p.max() + 1, t.max() + 1), dtype=np.int64)
    np.add.at(counts, (p, t), 1)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return float(counts[rows, cols].sum() / y_true.size)


def clustering_scores(y_true: np.ndarray | None, y_pred: np.ndarray) -> dict[str, Any]:
    """ACC, NMI (arithmetic-mean normalisation), ARI and the number of non-empty clusters.

    Without labels only the cluster count is returned. ``degenerate`` flags a clustering that put
    every point in one cluster.
    """
    y_pred = np.asarray(y_pred)
    out: dict[str, Any] = {"clusters": int(np.unique(y_pred).size)}
    out["degenerate"] = out["clusters"] <= 1
    if y_true is not None:
        out["acc"] = cluster_acc(y_true, y_pred)
        out["nmi"] = float(normalized_mutual_info_score(y_true, y_pred, average_method="arithmetic"))
        out["ari"] = float(adjusted_rand_score(y_true, y_pred))
    return out


def rounded_scores(y_true: np.ndarray, y_pred: np.ndarray, digits: int = 4) -> dict[str, float]:
    """ACC / NMI / ARI rounded for per-epoch logs."""
    s = clustering_scores(y_true, y_pred)
    return {k: round(s[k], digits) for k in ("acc", "nmi", "ari")}


def format_values(values: dict[str, Any], sep: str = ", ") -> str:
    """``key=value`` pairs for log lines, floats with four decimals."""
    return sep.join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())
