"""MNIST's contaminated table (test split, each digit in turn subsampled to 1 % and scored among the others; or
DIGITS' with ``--dataset DIGITS``) with
``--score clusters`` on the auto arch, plus the cosine score of the same model's codes *before* SCAN and two ways
of combining the two scores; one JSON line per digit, then the means.

    NETBUILDER_DATA=../shared/data python bench/contaminated_clusters.py --seed 0      # 30-50 minutes here
    python bench/contaminated_clusters.py --dataset DIGITS --seed 0                     # about 3 minutes

The ``clusters`` column is the detector's own score: ``netbuilder anomaly -d MNIST --split test -a auto --protocol
contaminated --anomaly-ratio 0.01 --contamination 0.01 --score clusters --target D`` gives the same AUC. The
pre-SCAN codes are read by wrapping the score's ``fit``, which receives the pretrained model before it trains SCAN.
The ``rank`` column is what ``--score cosine+clusters`` gives (the mean of the two ranks; ``--score cosine+clusters
--all-classes`` reports it with both parts' AUCs, without this script's ``sum`` and ``max_rank``). ``clusters_knn``
scores the same trained codes by their neighbourhoods (``--score clusters-knn``), and ``rank3`` is ``--score
cosine+clusters+clusters-knn``.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

import numpy as np
import torch
from scipy.stats import rankdata
from sklearn.metrics import roc_auc_score

from netbuilder.anomaly.estimator import AutoencoderAnomalyDetector
from netbuilder.anomaly.protocols import make_split
from netbuilder.clustering import kmeans
from netbuilder.core import clustering as core_clustering
from netbuilder.core import scores
from netbuilder.datasets import load_dataset
from netbuilder.train import encode_all


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--digits", default="0,1,2,3,4,5,6,7,8,9")
    ap.add_argument("--dataset", default="MNIST", help="MNIST (its test split) or DIGITS (all of it)")
    ap.add_argument("--dump", default=None, help="folder for one .npz per digit (labels, both codes, both scores, "
                    "the heads' probabilities, the pretrained reconstruction error) and both models' weights")
    args = ap.parse_args()
    split_name = "test" if args.dataset.upper() == "MNIST" else "all"
    ds = load_dataset(args.dataset, data_dir=os.environ.get("NETBUILDER_DATA"), split=split_name, progress=False)
    stash: dict[str, Any] = {}
    fit = scores.ClustersScore.fit
    fit_clustering = core_clustering.fit_clustering

    def fit_and_keep_the_pretrained_score(self, model, X, how):
        codes = encode_all(model, X, how.device)
        _, centroids = kmeans(codes, how.k, n_init=10, seed=how.seed)
        stash["pre"], stash["pre_codes"] = scores.cosine_score(codes, centroids), codes
        if args.dump:
            stash["pre_recon"] = scores.get_score("recon").score(model, X, how.device, None)
            stash["pre_state"] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return fit(self, model, X, how)  # it reseeds before SCAN: the clusters score is unchanged by this

    def fit_clustering_and_keep(*a, **kw):
        stash["result"] = res = fit_clustering(*a, **kw)
        return res

    scores.ClustersScore.fit = fit_and_keep_the_pretrained_score
    core_clustering.fit_clustering = fit_clustering_and_keep
    rows = []
    for digit in (int(d) for d in args.digits.split(",")):
        t0 = time.perf_counter()
        split = make_split("contaminated", ds, digit, anomaly_ratio=0.01)
        det = AutoencoderAnomalyDetector("auto", score="clusters", n_clusters=split.n_clusters, contamination=0.01,
                                         seed=args.seed, device="cpu").fit(split.train_images)
        y, post, pre = split.test_labels, det.decision_scores_, stash["pre"]
        post_codes = encode_all(det.model_, split.train_images, "cpu")
        knn = scores.neighbourhood_score(post_codes, post_codes)
        row = {"digit": digit, "clusters": roc_auc_score(y, post), "pre": roc_auc_score(y, pre),
               "sum": roc_auc_score(y, pre + post), "rank": roc_auc_score(y, rankdata(pre) + rankdata(post)),
               "max_rank": roc_auc_score(y, np.maximum(rankdata(pre), rankdata(post))),
               "clusters_knn": roc_auc_score(y, knn),
               "rank3": roc_auc_score(y, sum(rankdata(v, "max") for v in (pre, post, knn))),
               "s": time.perf_counter() - t0}
        rows.append(row)
        if args.dump:
            os.makedirs(args.dump, exist_ok=True)
            stem = os.path.join(args.dump, f"digit{digit}-seed{args.seed}")
            res = stash["result"]
            np.savez(stem + ".npz", y=y, pre=pre, post=post, pre_codes=stash["pre_codes"],
                     post_codes=post_codes, q=res.q, pred=res.pred,
                     pre_recon=stash["pre_recon"])
            torch.save({"pre": stash["pre_state"], "post": det.model_.state_dict()}, stem + ".pt")
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
    print(json.dumps({"mean": {k: round(float(np.mean([r[k] for r in rows])), 4) for k in rows[0] if k != "digit"}}))


if __name__ == "__main__":
    main()
