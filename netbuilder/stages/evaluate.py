"""Cheap in-training evaluation: k-means on the codes of a fixed subsample, scored against labels."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from ..clustering import kmeans
from ..core.clustering import PROBE_SAMPLES
from ..metrics import rounded_scores
from ..train import encode_all
from ..train.batches import subsample, take_rows


def raw_name(is_signal: bool) -> str:
    """What the raw-input baseline clusters, in titles: image pixels or the raw (standardised) series."""
    return "raw series" if is_signal else "image pixels"


def kmeans_probe(model: torch.nn.Module, images: np.ndarray, labels: np.ndarray | None, k: int,
                 device: torch.device, *, seed: int = 0, limit: int = PROBE_SAMPLES) -> Callable[[], dict[str, Any]]:
    """A callable that scores the current codes with k-means (n_init=3) on up to ``limit`` images."""
    idx = subsample(len(images), limit, seed)
    sub = take_rows(images, idx)
    sub_labels = labels[idx] if labels is not None else None

    def probe() -> dict[str, Any]:
        if sub_labels is None:
            return {}
        codes = encode_all(model, sub, device)
        pred, _ = kmeans(codes, k, n_init=3, seed=seed)
        return rounded_scores(sub_labels, pred)

    return probe
