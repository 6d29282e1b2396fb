"""The statistics of ``netbuilder compare``: per-arch summaries over seeds, the label-free ranking rule and how
well that rule agrees with the labels. Pure functions of per-run records; no training, no files.

A run record is a dict with ``arch``, ``seed``, ``train_s``, ``recon_loss``, ``silhouette``, ``pred`` (the
cluster of every item, in dataset order) and, when the dataset has labels, ``acc``, ``nmi`` and ``ari``.

The label-free rule (:func:`label_free_scores`) ranks the archs on two criteria and averages the ranks:

* **silhouette** of the final clustering in the code space that was clustered: how separated the clusters are
  compared with their spread; it is a ratio, so codes of different scales compare;
* **stability**: the mean ARI between the clusterings of different seeds of the same arch; a structure that
  the data really has is found again from another initialisation, an artefact of one run is not.

Each criterion can be gamed alone (a training objective that sharpens clusters raises the silhouette whatever
the clusters are; a network that always makes the same coarse split is stable), and their scales are not
comparable, so the rule averages ranks rather than values. Reconstruction error is reported but not ranked:
it is measured in different losses and code sizes and says little about clusters.
"""
from __future__ import annotations

import math
import statistics
from itertools import combinations
from typing import Any, Sequence

import numpy as np

from ..metrics import clustering_scores

LABEL_METRICS = ("acc", "nmi", "ari")
RULE = ("label-free score = mean of the normalised ranks (1 best, 0 worst) of the silhouette and the seed "
        "stability (mean ARI between seeds); silhouette alone with one seed")


def mean_std(values: Sequence[float | None]) -> tuple[float, float]:
    """Mean and population standard deviation of the finite values (NaN, NaN when there are none)."""
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not vals:
        return math.nan, math.nan
    return statistics.fmean(vals), statistics.pstdev(vals) if len(vals) > 1 else 0.0


def stability(preds: Sequence[np.ndarray]) -> float:
    """Mean ARI over every pair of clusterings (NaN with fewer than two)."""
    aris = [clustering_scores(a, b)["ari"] for a, b in combinations(preds, 2)]
    return statistics.fmean(aris) if aris else math.nan


def summarise(runs: Sequence[dict[str, Any]], archs: Sequence[str]) -> list[dict[str, Any]]:
    """One row per arch (in ``archs`` order): mean and std over seeds of every score, plus the stability."""
    rows = []
    for arch in archs:
        mine = sorted((r for r in runs if r["arch"] == arch), key=lambda r: r["seed"])
        row: dict[str, Any] = {"arch": arch, "seeds": [r["seed"] for r in mine]}
        for key in (*LABEL_METRICS, "silhouette", "recon_loss", "train_s"):
            if any(r.get(key) is not None for r in mine):
                row[key], row[f"{key}_std"] = mean_std([r.get(key) for r in mine])
        row["stability"] = stability([r["pred"] for r in mine])
        rows.append(row)
    return rows


def normalised_ranks(values: Sequence[float]) -> np.ndarray:
    """1 for the largest value, 0 for the smallest, ties share their mean rank; NaN ranks last."""
    from scipy.stats import rankdata

    v = np.array([x if math.isfinite(x) else -math.inf for x in values], dtype=float)
    if len(v) == 1:
        return np.ones(1)
    return (rankdata(v) - 1) / (len(v) - 1)


def label_free_scores(silhouettes: Sequence[float], stabilities: Sequence[float]) -> np.ndarray:
    """The documented rule (see the module docstring): mean normalised rank of silhouette and stability."""
    parts = [normalised_ranks(silhouettes)]
    if any(math.isfinite(s) for s in stabilities):
        parts.append(normalised_ranks(stabilities))
    return np.mean(parts, axis=0)


def best(scores: Sequence[float], tiebreak: Sequence[float]) -> int:
    """Index of the highest score, ties broken by the higher ``tiebreak`` value (the silhouette)."""
    key = [(s, t if math.isfinite(t) else -math.inf) for s, t in zip(scores, tiebreak)]
    return max(range(len(key)), key=lambda i: key[i])


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rank correlation; NaN with fewer than three pairs or a constant side."""
    from scipy.stats import spearmanr

    pairs = [(x, y) for x, y in zip(a, b) if math.isfinite(x) and math.isfinite(y)]
    if len(pairs) < 3 or len({x for x, _ in pairs}) < 2 or len({y for _, y in pairs}) < 2:
        return math.nan
    return float(spearmanr(*zip(*pairs)).statistic)


def rank(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add ``label_free_score`` to each row and sort: by mean ACC when there are labels, else by that score."""
    scores = label_free_scores([r["silhouette"] for r in rows], [r["stability"] for r in rows])
    for r, s in zip(rows, scores):
        r["label_free_score"] = float(s)
    key = "acc" if all("acc" in r for r in rows) else "label_free_score"
    return sorted(rows, key=lambda r: -r[key] if math.isfinite(r[key]) else math.inf)


def agreement(rows: Sequence[dict[str, Any]], runs: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """How honest the label-free choice is, measured with the labels (None without labels).

    ``chosen_is_best``: the arch with the best label-free score is the one with the best mean ACC;
    ``per_seed_hits``: the same question asked with each seed's own silhouette and ACC (stability is a
    cross-seed property and stays as it is), as a fraction of seeds; ``acc_regret``: best mean ACC minus the
    chosen arch's; ``spearman_score_acc``: rank correlation of the label-free score and mean ACC across archs;
    ``spearman_silhouette_acc_runs``: of silhouette and ACC over every (arch, seed) run.
    """
    if not rows or not all("acc" in r for r in rows):
        return None
    accs = [r["acc"] for r in rows]
    sils = [r["silhouette"] for r in rows]
    chosen = best([r["label_free_score"] for r in rows], sils)
    top = best(accs, accs)
    seeds = sorted({r["seed"] for r in runs})
    stab = [r["stability"] for r in rows]
    hits = 0
    for seed in seeds:
        per = {r["arch"]: r for r in runs if r["seed"] == seed}
        if not all(r["arch"] in per for r in rows):
            continue
        s_sil = [per[r["arch"]]["silhouette"] for r in rows]
        s_acc = [per[r["arch"]]["acc"] for r in rows]
        hits += best(label_free_scores(s_sil, stab), s_sil) == best(s_acc, s_acc)
    return {
        "chosen": rows[chosen]["arch"], "best_acc": rows[top]["arch"], "chosen_is_best": chosen == top,
        "per_seed_hits": hits / len(seeds) if seeds else math.nan, "seeds": len(seeds),
        "acc_regret": accs[top] - accs[chosen],
        "spearman_score_acc": spearman([r["label_free_score"] for r in rows], accs),
        "spearman_silhouette_acc_runs": spearman([r["silhouette"] for r in runs], [r["acc"] for r in runs]),
    }
