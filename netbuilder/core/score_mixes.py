"""Scores that combine registered scores by their ranks, and how a combined score's parts are saved.

A :class:`RankMeanScore` fits each of its parts on the trained autoencoder (a part that trains the model further,
such as ``clusters``, trains a copy of it and keeps that copy), and scores an image by the mean over the parts of
:func:`rank_fraction`: the fraction of the part's own training scores at or below the image's score. Ranks put
scores of different units (a cosine distance, a reconstruction error) on one scale; on the training images the
mean is the mean of the parts' ranks.

Registered here:

================================  ====================================================================
``cosine+clusters``               ``cosine`` of the autoencoder's codes and ``clusters`` (the codes of a
                                  copy trained to cluster with SCAN), ranks averaged. Measured under the
                                  contaminated protocol (README): each part misses different anomalies.
``cosine+clusters+clusters-knn``  the same with ``clusters-knn`` as a third part: the clustering
                                  encoder's codes judged both by their nearest centroid and by the
                                  density of their neighbourhood (one trained copy serves both)
================================  ====================================================================
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np
import torch

from .scores import AnomalyScore, ScoreState, get_score, register_score

_EPS = 1e-12


def rank_fraction(scores: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """The fraction of ``reference`` (sorted ascending) at or below each score, in [0, 1] inside the reference's
    range; beyond it the distance past the end in units of the range is added, so that scores beyond every
    training score stay ordered (``1.5``: half a range above the highest)."""
    ref = np.asarray(reference, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64)
    if ref.size == 0:
        raise ValueError("need at least one reference score")
    frac = np.searchsorted(ref, s, side="right") / ref.size
    span = max(float(ref[-1] - ref[0]), _EPS)
    frac = np.where(s > ref[-1], 1.0 + (s - ref[-1]) / span, frac)
    return np.where(s < ref[0], (s - ref[0]) / span, frac)


@dataclass
class PartState:
    """One part of a combined score: its name, fitted state, sorted training scores, and its own model when
    fitting it trained a copy of the autoencoder further (``None``: it scores with the detector's model)."""

    name: str
    state: ScoreState
    train_scores: np.ndarray
    model: Any = None


class RankMeanScore(AnomalyScore):
    """Base class of a combined score: the mean of its ``parts``' rank fractions (see the module docstring)."""

    parts: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        scorers = [get_score(p) for p in cls.parts]
        cls.needs_unit_codes = any(s.needs_unit_codes for s in scorers)
        cls.trains_model = any(s.trains_model for s in scorers)

    def fit(self, model, X, how):
        parts, trained = [], {}
        for name in self.parts:
            scorer = get_score(name)
            shared = scorer.changes_model and scorer.training in trained   # an earlier part trained it this way
            own = trained[scorer.training] if shared else copy.deepcopy(model) if scorer.changes_model else None
            m = own if own is not None else model
            state = scorer.prepare(m, X, how) if shared else scorer.fit(m, X, how)
            if own is not None and scorer.training is not None:
                trained.setdefault(scorer.training, own)
            parts.append(PartState(name, state, np.sort(scorer.score(m, X, how.device, state)), own))
        return ScoreState(parts=parts)

    def score(self, model, X, device, state):
        ranks = [rank_fraction(get_score(p.name).score(p.model if p.model is not None else model, X, device, p.state),
                               p.train_scores) for p in state.parts]
        return np.mean(ranks, axis=0)


@register_score
class CosineClustersScore(RankMeanScore):
    name, parts = "cosine+clusters", ("cosine", "clusters")
    title = "mean rank of cosine and clusters"


@register_score
class CosineClustersKnnScore(RankMeanScore):
    """``cosine+clusters`` with a third view of the clustering encoder's codes, ``clusters-knn`` (one trained
    copy serves both ``clusters`` parts)."""

    name, parts = "cosine+clusters+clusters-knn", ("cosine", "clusters", "clusters-knn")
    title = "mean rank of cosine, clusters and clusters-knn"


# ------------------------------------------------------------------------------------------- persistence

PART_WEIGHTS, PART_CENTROIDS, PART_REFERENCE, PART_SCORES = ("weights.safetensors", "centroids.npy",
                                                             "reference.npy", "train_scores.npy")


def part_folder(index: int, name: str) -> str:
    """The folder, beside the detector's own files, where part ``index`` of a combined score is saved:
    ``part<index>-<name>`` (``+`` → ``-``)."""
    return f"part{index}-{name.replace('+', '-')}"


def save_parts(directory: Path, parts: list[PartState]) -> list[dict[str, Any]]:
    """Write each part's own weights, centroids, reference and sorted training scores into its
    :func:`part_folder`; returns the records ``threshold.json`` keeps to load them."""
    from ..fileio import write_npy
    from ..stages.persist import save_weights

    records = []
    for i, p in enumerate(parts):
        d = Path(directory) / part_folder(i, p.name)
        files = {"train_scores": PART_SCORES}
        write_npy(d / PART_SCORES, np.asarray(p.train_scores, dtype=np.float64))
        if p.model is not None:
            save_weights(d / PART_WEIGHTS, p.model.state_dict())
            files["weights"] = PART_WEIGHTS
        if p.state.centroids is not None:
            write_npy(d / PART_CENTROIDS, np.asarray(p.state.centroids, dtype=np.float32))
            files["centroids"] = PART_CENTROIDS
        if p.state.reference is not None:
            write_npy(d / PART_REFERENCE, np.asarray(p.state.reference))
            files["reference"] = PART_REFERENCE
        records.append({"name": p.name, "folder": d.name, "normal_cluster": p.state.normal_cluster, "files": files})
    return records


def load_parts(directory: Path, records: list[dict[str, Any]], new_model: Callable[[], torch.nn.Module],
               device: torch.device) -> list[PartState]:
    """The parts :func:`save_parts` wrote (``new_model`` builds an untrained model of the detector's arch)."""
    from ..stages.persist import load_array, load_into, load_weights

    parts = []
    for rec in records:
        d, files = Path(directory) / rec["folder"], rec["files"]

        def array(key: str) -> np.ndarray | None:
            return load_array(d / files[key]) if key in files else None

        model = None
        if "weights" in files:
            model = new_model()
            load_into(model, load_weights(d / files["weights"]), d / files["weights"])
            model = model.to(device).eval()
        state = ScoreState(centroids=array("centroids"), normal_cluster=rec.get("normal_cluster"),
                           reference=array("reference"))
        parts.append(PartState(rec["name"], state, load_array(d / files["train_scores"]), model))
    return parts
