"""The fault-detection report on the Tennessee Eastman process: ``netbuilder anomaly -d TEP --protocol one-class
--all-classes``.

1. The normal training run ``d00.dat`` is split in time: the first ``1 − holdout`` (80 %) fits everything (the
   per-variable standardisation, the autoencoder, the PCA baseline), the last ``holdout`` (20 %) is held out.
2. The autoencoder (arch 0 of ``netbuilder/archs/tep.json`` by default; its input length is the window) is
   trained on the windows (stride 1, see :data:`TRAIN_STRIDE`) of the fitting part with
   :func:`~netbuilder.core.autoencoder.fit_autoencoder`; its score is a registered score (``recon``: the
   mean squared reconstruction error of a window).
3. Every detector (the autoencoder, PCA T², PCA SPE) scores every sample of every run (see
   :mod:`netbuilder.anomaly.process` for the per-sample convention) and gets its threshold at the false-alarm
   rate ``far`` from the held-out normal samples only (a held-out sample's window may reach back into the
   fitting part: the score of sample ``t`` is that of the window ending at ``t``, as everywhere).
4. Reported: the false-alarm rate on ``d00_te.dat``; per fault 1–21 the detection rate, ROC AUC and detection
   delay on ``dNN_te.dat`` (faulty after sample 160) where present, else on ``dNN.dat`` (faulty throughout);
   the means over the faults other than 3, 9 and 15.

Outputs: ``<out>/saved_params/TEP/<arch>/anomaly-one-class-all-<score>/`` (``weights.safetensors``,
``standardizer.json``, ``threshold.json``, ``pca.json``, ``scores.npz``, ``report.json``, ``report.md``,
``manifest.json`` last) and ``<out>/plots/TEP/<arch>/anomaly-one-class-all-<score>/scores_time.png``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..arch import load_arch_file, resolve_arch_file, select_arch
from ..core.autoencoder import build_model, fit_autoencoder
from ..core.scores import ScoreFit, get_score
from ..datasets import tep
from ..datasets.signals import Standardizer, resolve_window, sliding_windows
from ..errors import NetbuilderError
from ..rules import check_recon_loss
from ..settings import PRETRAIN
from ..stages.context import apply_threads
from ..train import RunLog, reconstruct_all, resolve_device, seeded
from . import process
from .pca_baseline import DEFAULT_VARIANCE, STATISTICS, TITLES, PCABaseline

HOLDOUT = 0.2
# Training windows start every sample: the fitting part of d00.dat has 400 samples, i.e. only 43 windows at the
# TEP dataset's stride of 8 — too few for a conv autoencoder; stride 1 uses every one of the 337.
TRAIN_STRIDE = 1
PLOT_FAULTS = (1, 5, 10, 21)
Echo = Callable[[str], None]


@dataclass(frozen=True)
class TepRuns:
    """The runs of a report, read once: normal training and test runs and the fault runs present."""

    train: tep.Run
    test: tep.Run
    faults: dict[int, tep.Run]

    @classmethod
    def load(cls, data_dir: str | None) -> "TepRuns":
        folder = tep.tep_folder(data_dir)
        if not folder.is_dir():
            raise NetbuilderError(f"{folder}: no TEP directory; put Braatz's d00.dat, d00_te.dat and dNN.dat / "
                                  f"dNN_te.dat files there (or pass --data-dir / set NETBUILDER_DATA)")
        faults = {f: tep.fault_run(f, data_dir) for f in tep.available_faults(data_dir)}
        if not faults:
            raise NetbuilderError(f"{folder}: no fault runs (d01.dat ... d21.dat or dNN_te.dat)")
        return cls(tep.normal_training_run(data_dir), tep.normal_test_run(data_dir), faults)

    def files(self) -> list[Path]:
        return [self.train.file, self.test.file, *(r.file for r in self.faults.values())]


def onset(run: tep.Run) -> int:
    """The first faulty sample of a fault run (160 on a test run, 0 on a training run)."""
    return int(np.argmax(run.faulty)) if run.faulty.any() else len(run.faulty)


class WindowDetector:
    """The autoencoder as a per-sample detector: standardise a ``T×52`` run, cut stride-1 windows, score them
    with the registered score (:meth:`__call__`), or take the error of each window's last sample only
    (:meth:`last_sample_error`)."""

    def __init__(self, model: Any, scaler: Standardizer, window: int, score: str, state: Any, device: Any) -> None:
        self.model, self.scaler, self.window, self.device = model, scaler, window, device
        self.scorer, self.state = get_score(score), state

    def _windows(self, data: np.ndarray) -> np.ndarray:
        return sliding_windows(self.scaler.apply(data), self.window, 1)

    def __call__(self, data: np.ndarray) -> np.ndarray:
        scores = self.scorer.score(self.model, self._windows(data), self.device, self.state)
        return process.samples_from_windows(scores, len(data), self.window)

    def last_sample_error(self, data: np.ndarray) -> np.ndarray:
        """Mean squared error over the variables of the newest sample of each window: a per-sample residual
        (like PCA's SPE) that uses the window as context but does not average over it."""
        windows = self._windows(data)
        err = (reconstruct_all(self.model, windows, self.device)[:, :, -1] - windows[:, :, -1]) ** 2
        return process.samples_from_windows(err.mean(axis=1), len(data), self.window)


def _arch(archs: str | None, arch: str | int) -> tuple[Path, int, dict[str, Any]]:
    path = resolve_arch_file(str(archs) if archs else "TEP")
    index, spec = select_arch(load_arch_file(path), arch, source=str(path))
    shape = list(spec.get("input_shape") or [])
    if len(shape) != 2 or shape[0] != tep.N_VARIABLES:
        raise NetbuilderError(f"{path}: arch '{spec['name']}' reads {shape}; the TEP report needs signal windows "
                              f"[{tep.N_VARIABLES}, window]")
    return path, index, spec


def train_detector(spec: dict[str, Any], samples: np.ndarray, scaler: Standardizer, *, score: str, stride: int,
                   train_options: dict[str, Any], seed: int, device: Any, progress: bool | None, log: RunLog
                   ) -> tuple[WindowDetector, dict[str, Any], int]:
    """Train the autoencoder of ``spec`` on the windows (``stride`` apart) of the standardised normal
    ``samples``; returns the detector, the resolved training settings and the number of training windows."""
    window = int(spec["input_shape"][1])
    hp = PRETRAIN.resolve(train_options, spec.get("training"))
    check_recon_loss(hp["recon_loss"], spec)
    windows = sliding_windows(scaler.apply(samples), window, stride, what="the fitting part of d00.dat")
    with seeded(seed):
        model = build_model(spec, tuple(windows.shape[1:]))
        log.info(f"tep: training '{spec['name']}' on {len(windows)} normal windows ({window} samples, stride "
                 f"{stride}) on {device}; " + ", ".join(f"{k}={v}" for k, v in hp.items()) + f", seed={seed}")
        fit_autoencoder(model, windows, hp, seed=seed, device=device, progress=progress, log=log, desc="anomaly")
        state = get_score(score).fit(model, windows, ScoreFit(
            k=int((spec.get("clustering") or {}).get("n_clusters") or 1), seed=seed, device=device, spec=spec,
            recon_loss=hp["recon_loss"], progress=progress, log=log))
    return WindowDetector(model.eval(), scaler, window, score, state, device), hp, len(windows)


def evaluate_detector(name: str, scores_of: Callable[[np.ndarray], np.ndarray], runs: TepRuns, n_fit: int,
                      start: int, far: float, alarm_run: int) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """One report row: threshold from the held-out normal samples, the false-alarm rate on the normal test run,
    the metrics of every fault; and the per-sample scores of every run (``d00``, ``d00_te``, ``dNN``)."""
    scores = {"d00": process.unscored_before(scores_of(runs.train.data), start),
              "d00_te": process.unscored_before(scores_of(runs.test.data), start)}
    for f, run in runs.faults.items():
        scores[f"d{f:02d}"] = process.unscored_before(scores_of(run.data), start)
    threshold = process.far_threshold(scores["d00"][n_fit:], far)
    normal = scores["d00_te"]
    per_fault = {f: process.fault_metrics(scores[f"d{f:02d}"], run.faulty, threshold, normal, onset=onset(run),
                                          alarm_run=alarm_run) for f, run in runs.faults.items()}
    row = {"name": name, "threshold": threshold, "far": process.alarm_rate(normal, threshold),
           "holdout_alarm_rate": process.alarm_rate(scores["d00"][n_fit:], threshold),
           "per_fault": per_fault, "mean": process.summarise(per_fault)}
    return row, scores


def run_tep_report(arch: str | int = 0, score: str = "recon", *, archs: str | None = None,
                   data_dir: str | None = None, out: str = ".", far: float = 0.01, holdout: float = HOLDOUT,
                   stride: int | None = None, pca_variance: float = DEFAULT_VARIANCE,
                   alarm_run: int = process.ALARM_RUN, threads: int | None = None,
                   train_options: dict[str, Any] | None = None, seed: int = 0,
                   device: str = "auto", progress: bool | None = None, plots: bool = True, verbose: bool = False,
                   echo: Echo | None = None) -> dict[str, Any]:
    """Python API of the TEP fault-detection report (see the module docstring); returns the report dict
    (``rows``: the autoencoder, PCA T², PCA SPE; ``dir``, ``plots``, ``wall_time_s``)."""
    from .tep_outputs import save_report

    t0 = time.perf_counter()
    say = echo or (lambda _m: None)
    process.far_threshold(np.zeros(1), far)  # argument errors before any work
    if not 0.0 < holdout < 1.0:
        raise NetbuilderError(f"Invalid value for argument `holdout`. Expected a value in (0, 1). "
                              f"Received holdout={holdout!r}.")
    get_score(score)
    arch_file, arch_index, spec = _arch(archs, arch)
    window, stride = resolve_window(int(spec["input_shape"][1]), TRAIN_STRIDE if stride is None else stride)
    # Like the stages: the arch's thread count unless the command line gave one (tiny nets on a shared CPU run
    # several times faster on one thread than on contended ones).
    apply_threads(threads or (spec.get("training") or {}).get("threads"))
    runs = TepRuns.load(data_dir)
    n_fit = int(round(len(runs.train.data) * (1.0 - holdout)))
    fit_part = runs.train.data[:n_fit]
    if n_fit < window or len(runs.train.data) - n_fit < 1:
        raise NetbuilderError(f"d00.dat has {len(runs.train.data)} samples: too few for a fitting part of "
                              f"{n_fit} (>= the {window}-sample window) and a held-out part")
    scaler = Standardizer.fit(fit_part)
    from ..stages.workspace import Workspace
    from .experiment import stage_name

    ws = Workspace.create(out, "TEP", spec["name"])
    stage = stage_name("one-class", "all", score)
    dev = resolve_device(device)
    log = RunLog(ws.log_stem(stage), echo=verbose)
    detector, hp, n_windows = train_detector(spec, fit_part, scaler, score=score, stride=stride,
                                             train_options=train_options or {}, seed=seed, device=dev,
                                             progress=progress, log=log)
    train_s = time.perf_counter() - t0
    say(f"trained '{spec['name']}' on {n_windows} windows of d00.dat in {train_s:.1f} s")
    pca = PCABaseline.fit(scaler.apply(fit_part), pca_variance)
    start = window - 1  # every detector is evaluated on the samples the windows score
    rows, scores = [], {}
    detectors = [(f"AE {score}", detector), ("AE last-sample", detector.last_sample_error),
                 *((TITLES[s], lambda x, s=s: pca.statistic(s, scaler.apply(x))) for s in STATISTICS)]
    for name, fn in detectors:
        row, per_run = evaluate_detector(name, fn, runs, n_fit, start, far, alarm_run)
        rows.append(row)
        scores[name] = per_run
        say(f"{name}: mean FDR {row['mean']['fdr']:.3f}, mean AUC {row['mean']['auc']:.3f}, "
            f"FAR on d00_te {row['far']:.3f}")
    report = {
        "dataset": "TEP", "arch": spec["name"], "arch_file": str(arch_file), "arch_index": arch_index,
        "protocol": "one-class", "score": score, "far_target": far, "holdout": holdout, "alarm_run": alarm_run,
        "window": window, "train_stride": stride, "n_fit_samples": n_fit,
        "n_holdout_samples": len(runs.train.data) - n_fit, "n_train_windows": n_windows, "seed": seed,
        "faults": sorted(runs.faults), "fault_parts": {f: r.part for f, r in sorted(runs.faults.items())},
        "excluded_from_mean": list(process.UNDETECTABLE), "pca": pca.record(), "hyperparameters": hp,
        "device": str(dev), "train_s": round(train_s, 1), "rows": rows,
    }
    return save_report(report, ws, stage, spec=spec, runs=runs, detector=detector, pca=pca, scores=scores,
                       plots=plots, t0=t0)
