"""Fit a clustering objective on an autoencoder's codes, in memory.

:func:`fit_clustering` runs the k-means initialisation of the codes, hands it to the objective, trains model and
objective together with the one training loop (for objectives that train), and returns the assignments, soft
assignments, centroids and codes. It touches no files except the optional checkpoint the caller names.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..clustering import kmeans
from ..errors import StageError
from ..metrics import clustering_scores, format_values, rounded_scores
from ..train import RunLog, encode_all, train
from ..train.batches import subsample, take_rows
from ..train.loop import probe_interval, total_epochs
from ..train.checkpoint import check_resume_identity
from .autoencoder import loop_config
from .losses import reconstruction_loss
from .objectives import Objective


# Samples the in-training ACC/NMI probes score (all of them on smaller data).
PROBE_SAMPLES = 10_000


@dataclass
class ClusteringResult:
    """What :func:`fit_clustering` produced (``history``: the training loop's epoch records)."""

    pred: np.ndarray
    q: np.ndarray
    centroids: np.ndarray
    codes: np.ndarray
    init_pred: np.ndarray
    init_centres: np.ndarray
    history: list[dict[str, Any]] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0
    report: dict[str, Any] = field(default_factory=dict)  # the objective's own record (Objective.report)


def fit_clustering(model: nn.Module, images: Any, objective: Objective, hp: dict[str, Any], *, seed: int,
                   device: torch.device, recon_loss: str = "mse", labels: np.ndarray | None = None,
                   progress: bool | None = None, log: RunLog | None = None, desc: str = "cluster",
                   checkpoint: str | Path | None = None, resume: bool = False,
                   identity: dict[str, Any] | None = None,
                   init: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
                   probes: int | None = None) -> ClusteringResult:
    """Cluster ``images`` with ``objective`` on top of the pretrained ``model`` (trained in place).

    ``hp`` are resolved clustering settings. ``labels``, when given, only feed the ACC/NMI lines of the log.
    ``init`` (assignments, centres, the model's current codes) replaces the k-means initialisation of the codes.
    ``probes``: about how many of those ACC/NMI lines over the run (default: about ten). When the objective
    names a ``follow_up``, that objective runs next from this one's clusters (without a checkpoint of its own: a
    resumed run repeats it; probed about three times), and the result is the last one's, with the histories joined.
    """
    log = log or RunLog(None)
    t0 = time.perf_counter()
    if init is None:
        codes0 = encode_all(model, images, device)
        init_pred, centres = kmeans(codes0, objective.k, n_init=int(hp["n_init"]), seed=seed)
        log.info("k-means init: " + format_values(clustering_scores(labels, init_pred)))
    else:
        init_pred, centres, codes0 = init
    objective.start(model, images, codes0, init_pred, centres, seed)
    history: list[dict[str, Any]] = []
    steps = 0
    if objective.trains:
        rec = reconstruction_loss(recon_loss)
        cfg = loop_config(hp, seed, progress)
        epochs = total_epochs(cfg, len(codes0))  # max_steps may lower hp["epochs"]: probe over what will run
        every = probe_interval(epochs) if probes is None else max(1, epochs // probes)
        # The probes score a fixed subsample, as the pretraining's do: one pass over MNIST's 70,000 images took
        # about 4.5 s, nine of them a minute of the run. The final clusters are scored on every sample.
        probe_idx = subsample(len(codes0), PROBE_SAMPLES, seed)
        probe_rows = take_rows(images, probe_idx) if labels is not None else None

        def on_epoch_end(epoch: int) -> dict[str, Any] | None:
            if labels is None or (epoch % every and epoch != epochs):
                return None
            pred, _ = objective.predict(model, probe_rows)
            return rounded_scores(labels[probe_idx], pred)

        def extra_state() -> dict[str, Any]:
            return {"identity": identity, "init_centres": torch.from_numpy(np.ascontiguousarray(centres)),
                    **objective.state_dict()}

        def load_extra_state(extra: dict[str, Any]) -> None:
            check_resume_identity(extra.get("identity"), identity or {}, checkpoint)
            _check_init(extra.get("init_centres"), centres, checkpoint)
            objective.load_state_dict(extra)

        res = train(model, images, lambda x, idx: objective.loss(model, x, idx, rec), cfg, device=device,
                    params=list(model.parameters()) + objective.parameters(), log=log, desc=desc,
                    before_step=objective.before_step, on_epoch_end=on_epoch_end, checkpoint=checkpoint,
                    resume=resume, extra_state=extra_state, load_extra_state=load_extra_state)
        history, steps = res.history, res.steps
    codes = encode_all(model, images, device)
    pred, q = objective.predict(model, images, codes)
    res = ClusteringResult(pred=pred, q=q, centroids=np.asarray(objective.centroids()), codes=codes,
                           init_pred=init_pred, init_centres=centres, history=history, steps=steps,
                           seconds=time.perf_counter() - t0, report=objective.report(labels))
    follow = objective.follow_up(len(codes))
    if follow is None:
        return res
    then, then_hp = follow
    log.info(f"{desc} before {then.name}: " + format_values(clustering_scores(labels, pred)))
    # Probed about three times, at its relabelling rounds: SCAN's curve is already in the log.
    last = fit_clustering(model, images, then, then_hp, seed=seed, device=device, recon_loss=recon_loss,
                          labels=labels, progress=progress, log=log, desc=f"{desc} {then.name}",
                          init=(pred, res.centroids, codes), probes=3)
    report = {**res.report, then.name: {**last.report, "hyperparameters": then_hp,
                                        "from": rounded_scores(labels, pred) if labels is not None else None}}
    return replace(last, init_pred=init_pred, init_centres=centres, history=history + last.history,
                   steps=steps + last.steps, seconds=time.perf_counter() - t0, report=report)


def _check_init(saved: torch.Tensor | None, centres: np.ndarray, checkpoint: Any) -> None:
    """Refuse a checkpoint that started from another k-means initialisation."""
    if saved is not None and (tuple(saved.shape) != centres.shape
                              or not np.array_equal(saved.numpy(), centres.astype(saved.numpy().dtype))):
        raise StageError(f"{checkpoint}: the k-means initialisation differs from the one this checkpoint started "
                         "from (was the pretrain stage rerun?); run without --resume to start over")
