"""Class imbalance: clustering accuracy and anomaly-detection ROC AUC as one class shrinks.

Two classes of a dataset (DIGITS 0 and 1 by default): every image of the majority class, and a seeded random
subset of the minority class holding ``fraction`` × as many images (100 % … 5 %). For each fraction and seed:

* clustering: ``netbuilder.DeepClustering`` (the arch's autoencoder, loss none: k-means on the codes, k = 2),
  ACC / ARI of its labels; then BIRCH on the same codes (``DeepClustering.transform``), ACC / ARI;
* anomaly detection: ``netbuilder.anomaly.AutoencoderAnomalyDetector`` (score ``recon``: per-image
  reconstruction error) trained on everything, ROC AUC with the minority class as the anomaly.

    python bench/imbalance.py                                        # DIGITS 0-vs-1, 5 seeds, ~40 s
    NETBUILDER_DATA=../shared/data python bench/imbalance.py --dataset MNIST --arch dcec-l2 --seeds 1

Writes bench/results/imbalance[-<dataset>].json and .png, and prints the table (mean over seeds).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, machine_info, md_table  # noqa: E402

sys.path.insert(0, str(REPO))  # this checkout's netbuilder, not whichever one is installed

FRACTIONS = (1.0, 0.5, 0.25, 0.1, 0.05)


def two_classes(images: np.ndarray, labels: np.ndarray, major: int, minor: int, fraction: float,
                seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(images, y) with every ``major`` image (y 0) and ``fraction`` × as many ``minor`` images (y 1)."""
    maj = np.flatnonzero(labels == major)
    mino = np.flatnonzero(labels == minor)
    n_min = max(2, min(len(mino), int(round(fraction * len(maj)))))
    pick = np.sort(np.random.default_rng(seed).choice(mino, n_min, replace=False))
    idx = np.concatenate([maj, pick])
    return images[idx], (labels[idx] == minor).astype(np.int64)


def one_run(x: np.ndarray, y: np.ndarray, arch: str, archs: str, seed: int, device: str) -> dict[str, float]:
    """Clustering ACC/ARI (k-means, BIRCH) and anomaly ROC AUC on one two-class set."""
    from sklearn.metrics import adjusted_rand_score, roc_auc_score

    from netbuilder import AutoencoderAnomalyDetector, DeepClustering
    from netbuilder.clustering import classical_cluster
    from netbuilder.metrics import cluster_acc

    est = DeepClustering(arch=arch, archs=archs, n_clusters=2, objective="none", random_state=seed,
                         device=device).fit(x)
    birch = classical_cluster(est.transform(x), "birch", 2, seed=seed)[0]
    det = AutoencoderAnomalyDetector(arch=arch, archs=archs, score="recon", seed=seed, device=device).fit(x)
    return {"kmeans_acc": cluster_acc(y, est.labels_), "kmeans_ari": adjusted_rand_score(y, est.labels_),
            "birch_acc": cluster_acc(y, birch), "birch_ari": adjusted_rand_score(y, birch),
            "auc": roc_auc_score(y, det.decision_scores_), "majority_acc": 1.0 - float(y.mean())}


def summarise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and standard deviation over seeds, one row per fraction."""
    rows = []
    for f in sorted({r["fraction"] for r in runs}, reverse=True):
        group = [r for r in runs if r["fraction"] == f]
        row: dict[str, Any] = {"fraction": f, "n_minor": group[0]["n_minor"], "n": group[0]["n"], "seeds": len(group)}
        for key in ("kmeans_acc", "birch_acc", "majority_acc", "kmeans_ari", "birch_ari", "auc"):
            vals = [g[key] for g in group]
            row[key] = round(statistics.fmean(vals), 4)
            row[key + "_std"] = round(statistics.stdev(vals), 4) if len(vals) > 1 else 0.0
        rows.append(row)
    return rows


def plot(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    """ACC (k-means, BIRCH, the all-majority baseline) and ROC AUC against the minority share."""
    from matplotlib.figure import Figure

    fr = [100 * r["fraction"] for r in rows]
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax_acc, ax_auc = fig.subplots(1, 2)
    for key, label, style in (("kmeans_acc", "k-means on codes", "o-"), ("birch_acc", "BIRCH on codes", "s-"),
                              ("majority_acc", "one cluster (all majority)", "k:")):
        ax_acc.errorbar(fr, [r[key] for r in rows], yerr=[r[key + "_std"] for r in rows], fmt=style, label=label,
                        capsize=3)
    ax_auc.errorbar(fr, [r["auc"] for r in rows], yerr=[r["auc_std"] for r in rows], fmt="o-", color="tab:red",
                    capsize=3, label="reconstruction error")
    ax_acc.set_ylim(0.45, 1.03)  # ACC cannot pass 1; the std bars may
    ax_auc.axhline(0.5, color="0.5", linestyle=":", label="chance")
    for ax, what in ((ax_acc, "clustering ACC (k = 2)"), (ax_auc, "anomaly ROC AUC (minority = anomaly)")):
        ax.set_xscale("log")
        ax.set_xticks(fr, [f"{v:g}%" for v in fr])
        ax.minorticks_off()
        ax.invert_xaxis()  # left to right: the minority class shrinks
        ax.set(xlabel="minority size (% of the majority)", title=what)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.savefig(path, dpi=100, facecolor="white")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="DIGITS")
    ap.add_argument("--arch", default="digits-dense-l2", help="Shipped arch name (of the dataset's archs file).")
    ap.add_argument("--major", type=int, default=0)
    ap.add_argument("--minor", type=int, default=1)
    ap.add_argument("--seeds", type=int, default=5, help="Seeds 0..N-1 (minority subset and model).")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()

    import torch

    from netbuilder import load_dataset

    torch.set_num_threads(1)  # small nets: one thread is fastest and repeatable
    data = load_dataset(args.dataset)
    runs = []
    t0 = time.perf_counter()
    for fraction in FRACTIONS:
        for seed in range(args.seeds):
            x, y = two_classes(data.images, data.labels, args.major, args.minor, fraction, seed)
            r = one_run(x, y, args.arch, args.dataset, seed, args.device)
            runs.append({"fraction": fraction, "seed": seed, "n": len(y), "n_minor": int(y.sum()),
                         **{k: round(float(v), 4) for k, v in r.items()}})
            print(f"{fraction:5.0%} seed {seed}: " + ", ".join(f"{k} {v:.3f}" for k, v in r.items()), flush=True)
    rows = summarise(runs)
    suffix = "" if args.dataset.upper() == "DIGITS" else f"-{args.dataset.lower()}"
    out = REPO / "bench" / "results"
    title = (f"{args.dataset} {args.major}-vs-{args.minor}, arch {args.arch}: the minority ({args.minor}) shrinks "
             f"(mean ± std over {args.seeds} seeds)")
    plot(rows, out / f"imbalance{suffix}.png", title)
    table = md_table(["minority", "n (minor)", "k-means ACC", "BIRCH ACC", "all-majority ACC", "k-means ARI",
                      "BIRCH ARI", "anomaly AUC"],
                     [[f"{r['fraction']:.0%}", f"{r['n']} ({r['n_minor']})",
                       *(f"{r[k]:.3f} ± {r[k + '_std']:.3f}" for k in ("kmeans_acc", "birch_acc")),
                       f"{r['majority_acc']:.3f}",
                       *(f"{r[k]:.3f} ± {r[k + '_std']:.3f}" for k in ("kmeans_ari", "birch_ari", "auc"))]
                      for r in rows])
    print(title)
    print(table)
    (out / f"imbalance{suffix}.json").write_text(json.dumps({
        "dataset": args.dataset, "arch": args.arch, "major": args.major, "minor": args.minor,
        "fractions": list(FRACTIONS), "seeds": args.seeds, "rows": rows, "runs": runs,
        "seconds": round(time.perf_counter() - t0, 1), "machine": machine_info()}, indent=2) + "\n")


if __name__ == "__main__":
    main()
