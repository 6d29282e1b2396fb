"""Cheap in-training evaluation: k-means on the codes of a fixed subsample, scored against labels."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from ..clustering import kmeans
from ..metrics import rounded_scores
from ..train import encode_all


def raw_name(is_signal: bool) -> str:
    """What the raw-input baseline clusters, in titles: image pixels or the raw (standardised) series."""
    return "raw series" if is_signal else "image pixels"


def subsample(n: int, limit: int, seed: int) -> np.ndarray:
    """A fixed random subset of indices (all of them when n <= limit)."""
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))


def kmeans_probe(model: torch.nn.Module, images: np.ndarray, labels: np.ndarray | None, k: int,
                 device: torch.device, *, seed: int = 0, limit: int = 10_000) -> Callable[[], dict[str, Any]]:
    """A callable that scores the current codes with k-means (n_init=3) on up to ``limit`` images."""
    idx = subsample(len(images), limit, seed)
    sub = images[idx]
    sub_labels = labels[idx] if labels is not None else None

    def probe() -> dict[str, Any]:
        if sub_labels is None:
            return {}
        codes = encode_all(model, sub, device)
        pred, _ = kmeans(codes, k, n_init=3, seed=seed)
        return rounded_scores(sub_labels, pred)

    return probe
