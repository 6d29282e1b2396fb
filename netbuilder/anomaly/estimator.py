"""An autoencoder anomaly detector with the scikit-learn / PyOD estimator interface.

>>> det = AutoencoderAnomalyDetector(arch="digits-dense-l2", archs="DIGITS", epochs=30, device="cpu")
>>> det.fit(normal_images)                 # uint8 N×C×H×W (or floats in [0, 1])
>>> det.decision_scores_, det.threshold_, det.labels_     # training scores, threshold, 0/1 labels
>>> det.decision_function(test_images)     # higher = more anomalous
>>> det.predict(test_images)               # 1 = anomaly (PyOD convention), score > threshold_

``__init__`` only stores its arguments (so ``get_params``/``set_params``/``sklearn.base.clone`` work); all
checking and work happen in :meth:`fit`. Training goes through :func:`netbuilder.train.train` with the
``pretrain`` stage's core (:func:`netbuilder.core.autoencoder.fit_autoencoder`) and settings (built-in
defaults ← the arch's ``training`` section ← the arguments given here); the score is a registered
:class:`~netbuilder.core.scores.AnomalyScore` (``dcca`` refines the model in memory with the k-means-loss
objective and two clusters). Global random state is left as it was.

A fitted detector is saved with :meth:`save` (weights, centroids, the threshold and score statistics) and
restored with :meth:`load`; :meth:`predict` of a loaded detector uses the saved threshold.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from ..arch import load_arch_file
from ..arch.auto import AUTO, is_auto
from ..core.arrays import check_images, check_signals, find_arch, is_signal_spec
from ..core.autoencoder import build_model, fit_autoencoder
from ..core.scores import ScoreFit, ScoreState, error_vs_mean_image, get_score, output_variation, score_statistics
from ..errors import NetbuilderError
from ..rules import check_recon_loss, has_unit_codes
from ..settings import PRETRAIN
from ..train import RunLog, encode_all, reconstruct_all, resolve_device, seeded
from . import detector_io
from .threshold import LABELLED, Threshold, check_contamination, parse_threshold, select_threshold

CONSTANT_BELOW = 0.02   # output_variation under this: one output image for every input


class TrainingCollapseWarning(UserWarning):
    """The trained autoencoder outputs (nearly) the same image for every input (see
    :func:`~netbuilder.core.scores.output_variation`): too little training, or a collapse."""


def not_l2_message(spec: dict[str, Any], arch_file: str | None = None, l2_names: list[str] | None = None,
                   score: str = "cosine") -> str:
    """The one-line error for a score that compares unit-length codes (``cosine``, ``clusters``) with an arch
    whose latent is not l2-normalised."""
    name = spec.get("name", "?")
    base = (f"score '{score}' needs an arch with unit-length codes (\"latent\": {{\"l2_normalize\": true}} or an "
            f"l2normalize layer ending the encoder, "
            f"part of the trained model); arch '{name}' has none")
    if l2_names:
        return base + f"; l2 archs in {arch_file}: {', '.join(l2_names)}"
    if arch_file:
        return base + f", and {arch_file} holds no l2 arch (e.g. MNIST's dcec-l2)"
    return base + " (e.g. MNIST's dcec-l2)"


@dataclass(frozen=True)
class _Arch:
    spec: dict[str, Any]
    file: str | None
    l2_names: list[str] | None   # the l2-normalised archs of the same file (for error messages)


class AutoencoderAnomalyDetector(BaseEstimator):
    """Anomaly detection with an autoencoder from an archs file; see the module docstring.

    Parameters
    ----------
    arch : dict | str | int
        A spec (dict, as in an archs file), an arch name / index in ``archs``, or ``"auto"`` (derived from the
        images' shape and ``n_clusters``; see :mod:`netbuilder.arch.auto`).
    archs : str | None
        An archs JSON file, or a dataset name standing for its shipped file (``"MNIST"``, ``"DIGITS"``).
    score : {"recon", "cosine", "clusters", "clusters-knn", "centroid", "dcca", "knn", "cosine+clusters", \
"cosine+clusters+clusters-knn"}
        See :mod:`netbuilder.core.scores`. ``cosine`` and ``clusters`` need an arch with an l2-normalised latent
        (``clusters`` first trains the encoder to cluster, with SCAN); ``knn`` compares
        images with the training images directly, and the autoencoder is not trained (``history_`` is empty).
        ``clusters-knn`` scores the encoder ``clusters`` trains by the density of each code's neighbourhood.
        ``cosine+clusters`` averages the ranks of both (``clusters`` trains a copy of the model, kept in
        ``parts_``; :mod:`netbuilder.core.score_mixes`); ``cosine+clusters+clusters-knn`` adds the third.
    epochs, batch_size, lr, optimizer, schedule, augment, recon_loss, amp, momentum, weight_decay, drop_last,
    min_steps, max_steps :
        training settings (see :data:`netbuilder.settings.PRETRAIN`) (``None``: the
        arch's ``training`` section, then the ``pretrain`` defaults). ``recon_loss`` (``mse``/``bce``) is the
        training loss only; the ``recon`` score is always the per-image mean squared error.
    contamination : float
        Expected fraction of anomalies in the training data, in (0, 0.5]; used by ``threshold="contamination"``.
    threshold : "contamination" | "f1" | "accuracy" | float
        How :attr:`threshold_` is chosen (see :mod:`netbuilder.anomaly.threshold`). ``f1``/``accuracy``
        need ``X_val``/``y_val`` in :meth:`fit`.
    n_clusters : int | None
        k of the k-means on the training codes for ``cosine``/``centroid`` (default: the arch's
        ``clustering.n_clusters``, else 10). The protocols pass the number of normal classes.
    cluster_epochs : int | None
        Epochs of the clustering stage of ``dcca`` (k-means loss) or ``clusters`` (SCAN) (default: the cluster
        stage's).
    seed, device, progress, verbose : as on the command line (``verbose`` echoes the epoch log lines).
    log_stem : str | None
        Training log ``<log_stem>.log``/``.jsonl`` (default: none).

    Attributes (after :meth:`fit`)
    ------------------------------
    decision_scores_ : scores of the training images.  threshold_ : float.  labels_ : 0/1 of the training
    images (``decision_scores_ > threshold_``).  threshold_info_ : :class:`Threshold` (method, warning).
    model_ : the trained :class:`~netbuilder.arch.Autoencoder`.  centroids_ : k-means (or dcca) centres, or
    ``None``.  reference_ : knn's training images, or ``None``.  normal_cluster_ : dcca's normal cluster.
    parts_ : a combined score's fitted parts (:class:`~netbuilder.core.score_mixes.PartState`), or ``None``.
    train_stats_ / val_stats_ : score statistics.
    output_variation_, error_vs_mean_, fit_warnings_ : the training check (a :class:`TrainingCollapseWarning`
    when the output hardly depends on the input).  spec_, input_shape_, history_ (epoch records), fit_seconds_.
    """

    def __init__(self, arch: dict[str, Any] | str | int | None = None, archs: str | None = None, *,
                 score: str = "recon", epochs: int | None = None, batch_size: int | None = None,
                 lr: float | None = None, optimizer: str | None = None, schedule: str | None = None,
                 augment: bool | None = None, recon_loss: str | None = None, amp: bool | None = None,
                 momentum: float | None = None, weight_decay: float | None = None, drop_last: bool | None = None,
                 min_steps: int | None = None, max_steps: int | None = None, contamination: float = 0.1,
                 threshold: str | float = "contamination", n_clusters: int | None = None,
                 cluster_epochs: int | None = None, seed: int = 0, device: str = "auto",
                 progress: bool | None = False, verbose: bool = False, log_stem: str | None = None) -> None:
        self.arch = arch
        self.archs = archs
        self.score = score
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.schedule = schedule
        self.augment = augment
        self.recon_loss = recon_loss
        self.amp = amp
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.drop_last = drop_last
        self.min_steps = min_steps
        self.max_steps = max_steps
        self.contamination = contamination
        self.threshold = threshold
        self.n_clusters = n_clusters
        self.cluster_epochs = cluster_epochs
        self.seed = seed
        self.device = device
        self.progress = progress
        self.verbose = verbose
        self.log_stem = log_stem

    # ------------------------------------------------------------------------------------------ fitting

    def fit(self, X: Any, y: Any = None, X_val: Any = None, y_val: Any = None) -> "AutoencoderAnomalyDetector":
        """Train on ``X`` (``y`` is ignored: training is unsupervised), then set the threshold.

        ``X_val``/``y_val`` (1 = anomaly) are the labelled validation split of ``threshold="f1"|"accuracy"``.
        """
        from .. import distributed

        distributed.init_from_env()  # under torchrun: train as one of the ranks
        scorer = get_score(self.score)
        method = parse_threshold(self.threshold)
        if method == "contamination":
            check_contamination(self.contamination)
        if method in LABELLED and (X_val is None or y_val is None):
            raise NetbuilderError(f"threshold '{method}' needs a labelled validation split: fit(X, X_val=..., y_val=...)")
        X = self._fit_input(X)
        arch = self._resolve_arch(X.shape[1:])
        device = resolve_device(self.device)
        hp = PRETRAIN.resolve({k: getattr(self, k) for k in PRETRAIN.settings if hasattr(self, k)},
                              arch.spec.get("training"))
        check_recon_loss(hp["recon_loss"], arch.spec)
        if scorer.needs_unit_codes and not has_unit_codes(arch.spec):
            raise NetbuilderError(not_l2_message(arch.spec, arch.file, arch.l2_names, self.score))
        t0 = time.perf_counter()
        with seeded(int(self.seed)):
            model = build_model(arch.spec, tuple(X.shape[1:]), arch.file)
            log = RunLog(self.log_stem, echo=bool(self.verbose))
            log.info(f"anomaly: training '{arch.spec.get('name')}' on {len(X)} images for score '{self.score}' on "
                     f"{device}; " + ", ".join(f"{k}={v}" for k, v in hp.items()) + f", seed={self.seed}")
            if scorer.trains_model:
                history = fit_autoencoder(model, X, hp, seed=int(self.seed), device=device,
                                          progress=self.progress, log=log, desc="anomaly").history
            else:
                history, hp = [], {**hp, "epochs": 0}
                log.info(f"anomaly: score '{self.score}' compares images directly; the autoencoder is not trained")
            self.score_state_: ScoreState = scorer.fit(model, X, ScoreFit(
                k=self._k(arch), seed=int(self.seed), device=device, spec=arch.spec, recon_loss=hp["recon_loss"],
                cluster_epochs=self.cluster_epochs, progress=self.progress, log=log))
        self.centroids_ = self.score_state_.centroids
        self.reference_ = self.score_state_.reference
        self.normal_cluster_ = self.score_state_.normal_cluster
        self.parts_ = self.score_state_.parts
        self.model_ = model.eval()
        self.device_ = device
        self.spec_ = arch.spec
        self.arch_file_ = arch.file
        self.input_shape_ = tuple(int(v) for v in X.shape[1:])
        self.hyperparameters_ = hp
        self.history_ = history
        self.fit_seconds_ = time.perf_counter() - t0
        self.fit_warnings_: list[str] = []
        self.output_variation_ = self.error_vs_mean_ = None
        if scorer.trains_model:
            self._check_collapse(X, hp)
        self.decision_scores_ = self.decision_function(X)
        val_scores = self.decision_function(X_val) if X_val is not None else None
        self.threshold_info_: Threshold = select_threshold(
            method, train_scores=self.decision_scores_, val_scores=val_scores,
            val_labels=None if y_val is None else np.asarray(y_val), contamination=self.contamination)
        self.threshold_ = float(self.threshold_info_.value)
        self.labels_ = (self.decision_scores_ > self.threshold_).astype(np.int64)
        self.train_stats_ = score_statistics(self.decision_scores_)
        self.val_stats_ = score_statistics(val_scores) if val_scores is not None else None
        return self

    def _fit_input(self, X: Any) -> np.ndarray:
        """Training samples as the loop takes them: float32 ``N×C×L`` windows when the arch reads signals (for
        ``arch="auto"``: a float ``N×C×L`` array with values outside [0, 1], as standardised signals have), else
        uint8 images (:func:`check_images`)."""
        raw = X.detach().cpu().numpy() if isinstance(X, torch.Tensor) else np.asarray(X)
        if raw.ndim == 3 and raw.size and np.issubdtype(raw.dtype, np.floating) and np.all(np.isfinite(raw)):
            if is_auto(self.arch) and self.archs is None:
                signals = bool(raw.min() < 0.0 or raw.max() > 1.0)
            else:
                signals = is_signal_spec(find_arch(self.arch, self.archs, raw.shape[1:], self.n_clusters)[0])
            if signals:
                return check_signals(raw)
        return check_images(raw)

    def _check_collapse(self, X: np.ndarray, hp: dict[str, Any]) -> None:
        sample = X[np.sort(np.random.default_rng(0).permutation(len(X))[:512])]
        xf = sample if sample.dtype == np.float32 else sample.astype(np.float32) / 255.0
        rec = self.reconstruct(sample)
        self.output_variation_ = output_variation(xf, rec)
        self.error_vs_mean_ = error_vs_mean_image(xf, rec)
        if self.output_variation_ < CONSTANT_BELOW and len(sample) > 1:
            fix = "--recon-loss bce or a lower --lr" if hp.get("recon_loss") != "bce" else "a lower --lr"
            msg = (f"the autoencoder outputs nearly the same image for every input (reconstructions vary "
                   f"{self.output_variation_:.4f}× as much as the images; error {self.error_vs_mean_:.2f}× that of "
                   f"their mean image), so the recon score only measures the distance to that one image; train "
                   f"longer (--epochs), or if it collapsed use {fix} (trained with {hp.get('recon_loss')}, "
                   f"lr {hp.get('lr')})")
            self.fit_warnings_.append(msg)
            warnings.warn(msg, TrainingCollapseWarning, stacklevel=3)

    def fit_predict(self, X: Any, y: Any = None, **fit_params: Any) -> np.ndarray:
        """Fit on ``X`` and return :attr:`labels_` (1 = anomaly)."""
        return self.fit(X, y, **fit_params).labels_

    def _resolve_arch(self, input_shape: tuple[int, ...]) -> _Arch:
        spec, source = find_arch(self.arch, self.archs, input_shape, self.n_clusters)
        # The other unit-code archs of the same file, for the cosine score's error message.
        l2 = [s["name"] for s in load_arch_file(source) if has_unit_codes(s)] if source not in (None, AUTO) else None
        return _Arch(spec, source, l2)

    def _k(self, arch: _Arch) -> int:
        k = self.n_clusters or (arch.spec.get("clustering") or {}).get("n_clusters") or 10
        if int(k) < 1:
            raise NetbuilderError(f"invalid number of clusters {k}: expected at least 1")
        return int(k)

    # --------------------------------------------------------------------------------------- inference

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit(X) first")

    def _check_input(self, X: Any, name: str = "X") -> np.ndarray:
        arr = check_signals(X, name) if is_signal_spec(self.spec_) else check_images(X, name)
        if tuple(arr.shape[1:]) != tuple(self.input_shape_):
            raise NetbuilderError(f"{name}: images of shape {tuple(arr.shape[1:])}, the detector was fitted on "
                                  f"{tuple(self.input_shape_)}")
        return arr

    def encode(self, X: Any) -> np.ndarray:
        """Latent codes ``N × code_dim`` of ``X``."""
        self._check_fitted()
        return encode_all(self.model_, self._check_input(X), self.device_)

    def reconstruct(self, X: Any) -> np.ndarray:
        """Reconstructions (float32 in the decoder's range, shaped like ``X``)."""
        self._check_fitted()
        return reconstruct_all(self.model_, self._check_input(X), self.device_)

    def decision_function(self, X: Any) -> np.ndarray:
        """Anomaly scores of ``X`` (float64, higher = more anomalous)."""
        self._check_fitted()
        arr = self._check_input(X)
        return get_score(self.score).score(self.model_, arr, self.device_, self._state())

    def part_scores(self, X: Any) -> dict[str, np.ndarray]:
        """Each part's own scores of ``X`` for a combined score (``{}`` for a single one): what the ranks of
        :meth:`decision_function` are averaged from."""
        self._check_fitted()
        parts = getattr(self, "parts_", None) or []
        arr = self._check_input(X) if parts else None
        return {p.name: get_score(p.name).score(p.model if p.model is not None else self.model_, arr, self.device_,
                                                p.state) for p in parts}

    def compared_with(self, X: Any) -> np.ndarray:
        """What the score compares each image with (float images in [0, 1]): its reconstruction, or for ``knn``
        the nearest training image."""
        self._check_fitted()
        return get_score(self.score).counterpart(self.model_, self._check_input(X), self.device_, self._state())

    def _state(self) -> ScoreState:
        return ScoreState(centroids=self.centroids_, normal_cluster=self.normal_cluster_,
                          reference=self.reference_, parts=getattr(self, "parts_", None))

    def predict(self, X: Any) -> np.ndarray:
        """0/1 labels, 1 = anomaly (``decision_function(X) > threshold_``)."""
        self._check_fitted()
        return (self.decision_function(X) > self.threshold_).astype(np.int64)

    def predict_proba(self, X: Any) -> np.ndarray:
        """``N × 2`` [normal, anomaly] probabilities by PyOD's linear method: the score min-max scaled with
        the training scores' range and clipped to [0, 1]."""
        self._check_fitted()
        s = self.decision_function(X)
        lo, hi = float(self.train_stats_["min"]), float(self.train_stats_["max"])
        p = np.clip((s - lo) / (hi - lo), 0.0, 1.0) if hi > lo else (s > self.threshold_).astype(np.float64)
        return np.stack([1.0 - p, p], axis=1)

    # ------------------------------------------------------------------------------------- persistence

    def state_record(self) -> dict[str, Any]:
        """What :meth:`save` writes to ``threshold.json``: threshold, score statistics, params, spec."""
        self._check_fitted()
        return detector_io.state_record(self)

    def save(self, directory: str | Path) -> Path:
        """Write weights, centroids, training scores and ``threshold.json`` (atomically) into ``directory``."""
        self._check_fitted()
        return detector_io.save(self, Path(directory))

    @classmethod
    def load(cls, directory: str | Path, device: str = "auto") -> "AutoencoderAnomalyDetector":
        """A fitted detector from :meth:`save`'s directory; it predicts with the saved threshold."""
        return detector_io.load(cls, Path(directory), device)
