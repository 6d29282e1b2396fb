"""Saving and loading a fitted :class:`~.estimator.AutoencoderAnomalyDetector`.

A saved detector is a folder: the weights (safetensors), the centroids and the ``knn`` score's reference images
where the score has them, the training scores, each part of a combined score in a folder of its own, and
``threshold.json`` (threshold, score statistics, the constructor's params, the arch spec and the file names),
written last and atomically so that a half-saved folder is never taken for a detector. Loading executes no code:
JSON, ``.npy`` arrays and safetensors only.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.autoencoder import build_model
from ..core.score_mixes import load_parts, save_parts
from ..errors import NetbuilderError
from ..fileio import write_json, write_npy
from ..train import resolve_device
from .threshold import Threshold

if TYPE_CHECKING:
    from .estimator import AutoencoderAnomalyDetector

STATE_FILE = "threshold.json"
WEIGHTS_FILE = "weights.safetensors"
CENTROIDS_FILE = "centroids.npy"
TRAIN_SCORES_FILE = "train_scores.npy"
REFERENCE_FILE = "reference.npy"   # the knn score's training images
FORMAT_VERSION = 1


def state_record(det: "AutoencoderAnomalyDetector") -> dict[str, Any]:
    """What :func:`save` writes to ``threshold.json`` for the fitted ``det``."""
    params = {k: (str(v) if isinstance(v, Path) else v) for k, v in det.get_params().items()}
    return {
        "format": FORMAT_VERSION, "score": det.score, "threshold": det.threshold_,
        "threshold_info": det.threshold_info_.to_dict(),
        "train_scores": det.train_stats_, "validation_scores": det.val_stats_,
        "n_clusters": None if det.centroids_ is None else int(len(det.centroids_)),
        "normal_cluster": det.normal_cluster_, "input_shape": list(det.input_shape_),
        "output_variation": getattr(det, "output_variation_", None),
        "error_vs_mean_image": getattr(det, "error_vs_mean_", None), "fit_warnings": getattr(det, "fit_warnings_", []),
        "params": params, "hyperparameters": det.hyperparameters_, "spec": det.spec_,
        "arch_file": det.arch_file_,
        "parts": [p.name for p in det.parts_] if getattr(det, "parts_", None) else None,
        "files": {"weights": WEIGHTS_FILE, "train_scores": TRAIN_SCORES_FILE,
                  **({"centroids": CENTROIDS_FILE} if det.centroids_ is not None else {}),
                  **({"reference": REFERENCE_FILE} if det.reference_ is not None else {})},
    }


def save(det: "AutoencoderAnomalyDetector", d: Path) -> Path:
    """Write the fitted ``det`` into the folder ``d``, ``threshold.json`` last."""
    from ..stages.persist import save_weights

    save_weights(d / WEIGHTS_FILE, det.model_.state_dict())
    if det.centroids_ is not None:
        write_npy(d / CENTROIDS_FILE, np.asarray(det.centroids_, dtype=np.float32))
    if det.reference_ is not None:
        write_npy(d / REFERENCE_FILE, np.asarray(det.reference_))
    write_npy(d / TRAIN_SCORES_FILE, np.asarray(det.decision_scores_, dtype=np.float64))
    record = state_record(det)
    if record["parts"]:
        record["parts"] = save_parts(d, det.parts_)   # each part's own files, in a folder of its own
    write_json(d / STATE_FILE, record)
    return d


def load(cls: type["AutoencoderAnomalyDetector"], d: Path, device: str) -> "AutoencoderAnomalyDetector":
    """A fitted detector of class ``cls`` from :func:`save`'s folder ``d``, on ``device``."""
    from ..stages.persist import load_array, load_into, load_weights

    path = d / STATE_FILE
    if not path.is_file():
        raise NetbuilderError(f"{d}: no saved anomaly detector here ({STATE_FILE} is missing)")
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        params = dict(state["params"])
        params["device"] = device
        det = cls(**params)
        det.spec_ = state["spec"]
        det.input_shape_ = tuple(state["input_shape"])
        det.threshold_ = float(state["threshold"])
        det.threshold_info_ = Threshold(**state["threshold_info"])
        det.train_stats_ = state["train_scores"]
        det.val_stats_ = state.get("validation_scores")
        det.normal_cluster_ = state.get("normal_cluster")
        det.hyperparameters_ = state.get("hyperparameters")
        det.arch_file_ = state.get("arch_file")
        part_records = state.get("parts") or []
    except (KeyError, TypeError, ValueError) as exc:
        raise NetbuilderError(f"{path}: not a valid saved detector ({exc})") from None
    det.device_ = resolve_device(device)
    model = build_model(det.spec_, det.input_shape_)
    load_into(model, load_weights(d / WEIGHTS_FILE), d / WEIGHTS_FILE)
    det.model_ = model.to(det.device_).eval()
    det.centroids_ = load_array(d / CENTROIDS_FILE) if (d / CENTROIDS_FILE).exists() else None
    det.reference_ = load_array(d / REFERENCE_FILE) if (d / REFERENCE_FILE).exists() else None
    det.decision_scores_ = load_array(d / TRAIN_SCORES_FILE) if (d / TRAIN_SCORES_FILE).exists() else None
    try:
        det.parts_ = load_parts(d, part_records, lambda: build_model(det.spec_, det.input_shape_),
                                det.device_) if part_records else None
    except (KeyError, TypeError) as exc:
        raise NetbuilderError(f"{path}: not a valid saved detector (parts: {exc})") from None
    if det.decision_scores_ is not None:
        det.labels_ = (det.decision_scores_ > det.threshold_).astype(np.int64)
    det.history_, det.fit_seconds_ = [], None
    return det
