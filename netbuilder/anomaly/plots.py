"""Anomaly plots: score histograms with the threshold, the ROC curve, and the most anomalous / most typical
images with their reconstructions and per-pixel error maps (one colour scale across the grid).

Like :mod:`netbuilder.plots`, every function draws on its own matplotlib ``Figure`` (Agg, no pyplot state),
writes the PNG atomically and returns its path.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..plot_base import new_figure, save_figure

NORMAL_COLOUR, ANOMALY_COLOUR, THRESHOLD_COLOUR = "#1f77b4", "#d62728", "black"


def score_histogram(scores: Any, labels: Any | None, threshold: float, path: str | Path, *,
                    title: str | None = None, xlabel: str = "anomaly score", bins: int = 60,
                    names: tuple[str, str] = ("normal", "anomalous")) -> Path:
    """Histograms of the normal and the anomalous scores (shared bins, each normalised to its own total so
    that unequal group sizes compare) with the threshold as a vertical line; one histogram without labels."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    if s.size == 0:
        raise ValueError("score_histogram needs at least one score")
    lo, hi = float(min(s.min(), threshold)), float(max(s.max(), threshold))
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, bins + 1)
    fig = new_figure((7.5, 4.2))
    ax = fig.add_subplot(1, 1, 1)
    if labels is None:
        ax.hist(s, bins=edges, color=NORMAL_COLOUR, alpha=0.8, label=f"all ({s.size})")
        ax.set_ylabel("images")
    else:
        y = np.asarray(labels).ravel().astype(bool)
        for mask, name, colour in ((~y, names[0], NORMAL_COLOUR), (y, names[1], ANOMALY_COLOUR)):
            if mask.any():
                ax.hist(s[mask], bins=edges, density=True, color=colour, alpha=0.55,
                        label=f"{name} ({int(mask.sum())})")
        ax.set_ylabel("density (each group sums to 1)")
    flagged = int((s > threshold).sum())
    ax.axvline(threshold, color=THRESHOLD_COLOUR, linestyle="--", linewidth=1.5,
               label=f"threshold {threshold:.4g} ({flagged} of {s.size} above)")
    ax.set_xlabel(xlabel)
    ax.legend(fontsize=9)
    if title:
        ax.set_title(title, fontsize=11)
    return save_figure(fig, path)


def roc_curve_plot(labels: Any, scores: Any, path: str | Path, *, threshold: float | None = None,
                   title: str | None = None) -> Path:
    """The ROC curve with its AUC, the chance diagonal, and the operating point of ``threshold``."""
    from sklearn.metrics import roc_auc_score, roc_curve

    y = np.asarray(labels).ravel().astype(bool)
    s = np.asarray(scores, dtype=np.float64).ravel()
    if not 0 < y.sum() < y.size:
        raise ValueError("a ROC curve needs both normal and anomalous examples")
    fpr, tpr, _ = roc_curve(y, s)
    auc = roc_auc_score(y, s)
    fig = new_figure((5.2, 5.0))
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(fpr, tpr, color=ANOMALY_COLOUR, linewidth=1.8, label=f"ROC (AUC {auc:.4f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1, label="chance")
    if threshold is not None:
        pred = s > threshold
        op_fpr, op_tpr = float(pred[~y].mean()), float(pred[y].mean())
        ax.plot([op_fpr], [op_tpr], "o", color=THRESHOLD_COLOUR,
                label=f"threshold {threshold:.4g} (FPR {op_fpr:.3f}, TPR {op_tpr:.3f})")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_xlabel("false positive rate (normal images flagged)")
    ax.set_ylabel("true positive rate (anomalies flagged)")
    ax.set_aspect("equal")
    ax.legend(fontsize=8, loc="lower right")
    if title:
        ax.set_title(title, fontsize=11)
    return save_figure(fig, path)


def extremes(scores: Any, n: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the ``n`` highest scores (most anomalous first) and the ``n`` lowest (most typical first)."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    order = np.argsort(s, kind="stable")
    n = min(n, s.size)
    return order[::-1][:n].copy(), order[:n].copy()


def extremes_grid(images: np.ndarray, scores: Any, reconstruct: Callable[[np.ndarray], np.ndarray],
                  path: str | Path, *, n: int = 10, captions: Sequence[str] | None = None,
                  title: str | None = None, second: str = "reconstruction"):
    """The ``n`` most anomalous images (first block, highest score first) and the ``n`` most typical
    (second block, lowest first), each with its reconstruction and per-pixel squared-error map; all error
    maps share ONE colour scale (and one colorbar), so brightness compares across the whole grid.

    ``images``, ``scores`` and ``captions`` (e.g. class names) cover the same images; ``reconstruct`` is
    called on the selected images only. Each cell is titled with its score (and caption). Returns
    :class:`netbuilder.plots.HeatmapResult` (path and the shared vmin/vmax).
    """
    from ..plots import error_heatmap_grid

    top, bottom = extremes(scores, n)
    pick = np.concatenate([top, bottom])
    s = np.asarray(scores, dtype=np.float64).ravel()
    titles = [f"{s[j]:.3g}" + (f" ({captions[j]})" if captions is not None else "") for j in pick]
    head = f"first block: {len(top)} most anomalous; second block: {len(bottom)} most typical"
    sel = np.asarray(images)[pick]
    return error_heatmap_grid(sel, reconstruct(sel), path, titles=titles, ncol=max(1, len(top)),
                              title=f"{title}\n{head}" if title else head, second=second)


def score_timelines(panels: Sequence[tuple[str, dict[str, np.ndarray], int | None]], thresholds: dict[str, float],
                    path: str | Path, *, title: str | None = None) -> Path:
    """Process-monitoring chart: one panel per run, each detector's per-sample score divided by its own
    threshold (so every detector alarms above the line at 1) on a log scale, against the sample index.

    ``panels``: ``(run title, {detector: per-sample scores (NaN = unscored)}, fault onset or None)``.
    """
    if not panels:
        raise ValueError("score_timelines needs at least one panel")
    colours = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e")
    fig = new_figure((9.0, 2.3 * len(panels) + 0.6))
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    for ax, (name, series, onset) in zip(axes, panels):
        for colour, (detector, scores) in zip(colours, series.items()):
            s = np.asarray(scores, dtype=np.float64) / thresholds[detector]
            # Scores may be 0 (a perfect reconstruction); keep them on the log axis.
            ax.plot(np.arange(len(s)), np.maximum(s, 1e-3), color=colour, linewidth=0.9, label=detector)
        ax.axhline(1.0, color=THRESHOLD_COLOUR, linestyle="--", linewidth=1.2, label="threshold")
        if onset is not None:
            ax.axvline(onset, color="grey", linestyle=":", linewidth=1.5, label=f"fault onset ({onset})")
        ax.set_yscale("log")
        ax.set_ylabel("score / threshold")
        ax.set_title(name, fontsize=10)
    axes[-1].set_xlabel("sample (3 min each)")
    axes[0].legend(fontsize=8, loc="upper left", ncol=3)
    if title:
        fig.suptitle(title, fontsize=11)
    return save_figure(fig, path)
