"""``DeepClustering``: the whole deep-clustering pipeline as a scikit-learn estimator on NumPy arrays.

>>> from sklearn.datasets import load_digits
>>> X = load_digits().data                       # 1797 × 64, values 0..16
>>> est = DeepClustering(arch="digits-dense", n_clusters=10, random_state=0).fit(X)
>>> est.labels_, est.cluster_centers_            # assignments of X, centroids in code space
>>> est.predict(X_new), est.transform(X_new)     # nearest centroid; the codes

``fit`` pretrains the arch's autoencoder on reconstruction and then fits the clustering objective (``kld``,
``kmeans``, ``none``, ``dkm``, … see :mod:`netbuilder.core.objectives`), in memory, with exactly the steps of
``netbuilder pretrain`` + ``netbuilder cluster`` (the same seed on the same images gives the same labels).

scikit-learn conventions: ``__init__`` only stores its arguments; fitted attributes end in ``_``; ``clone``,
``get_params``/``set_params`` and ``Pipeline`` work; global random state (Python, NumPy, torch) and torch's
thread count are restored after ``fit``. Which of scikit-learn's estimator checks do not apply, and why:

* checks that fit on a handful of samples with more clusters than samples or on 1 sample (k-means cannot
  make ``n_clusters`` clusters from fewer points; ``fit`` raises a one-line error instead);
* checks that compare results across dtypes or after pickling at float precision (samples are quantised to
  8 bits, as every netbuilder dataset is, so float64 and float32 inputs may differ in the last bits);
* ``check_methods_subset_invariance``: codes are computed in float32 batches, and BLAS sums a batch of 20 and
  a batch of 10 in different orders, so a score may differ in the 7th digit.

The tests run every other check of ``sklearn.utils.estimator_checks.check_estimator``.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from ..clustering import nearest
from ..errors import NetbuilderError
from ..rules import check_final_step, check_recon_loss
from ..settings import PRETRAIN
from ..train import RunLog, encode_all, resolve_device, seed_everything, seeded
from .arrays import ArrayScaler, FloatWindows, find_arch, is_signal_spec, sample_shape
from .autoencoder import build_model, fit_autoencoder
from .clustering import fit_clustering
from .kselect import select_k
from .objectives import cluster_settings, objective_class
from .scores import centroid_distance


def _is_real(X: Any) -> bool:
    """Whether ``X`` is already an array of real numbers (kept in its dtype, e.g. uint8 images)."""
    dtype = getattr(X, "dtype", None)
    return dtype is not None and (np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating))


@contextlib.contextmanager
def _threads(n: int | None) -> Iterator[None]:
    """torch's CPU thread count set to ``n`` inside the block (an arch may pin it for reproducibility)."""
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


class DeepClustering(ClusterMixin, TransformerMixin, BaseEstimator):
    """Deep clustering of arrays with an autoencoder from the arch language; see the module docstring.

    Parameters
    ----------
    arch : dict | str
        ``"auto"`` (default: derived from the samples' shape, see ``netbuilder arch show auto``), a spec dict (as
        in an archs file), an archs JSON file (its first arch), or the name of a shipped arch (``"digits-dense"``,
        ``"dcec-l2"``, …); with ``archs`` also an index.
    n_clusters : int | "auto" | None
        Number of clusters (default: the arch's ``clustering.n_clusters``); ``"auto"`` chooses it after
        pretraining from the codes' kNN-graph eigengap (:mod:`netbuilder.core.kselect`, as ``--clusters auto``;
        the curve is kept in ``k_selection_``).
    objective : str | None
        The clustering objective (default: the arch's ``training.cluster.loss``, then ``kld``).
    archs : str | None
        An archs file (or dataset name) in which ``arch`` is a name or an index.
    epochs, batch_size, lr : pretraining settings (None: the arch's, then the built-in defaults).
    cluster_epochs : int | None
        Epochs of the clustering objective.
    pretrain_params, cluster_params : dict | None
        Any other setting of :data:`netbuilder.settings.PRETRAIN` / the objective's settings.
    random_state : int
        Seed of every random choice (initial weights, batch order, k-means, UMAP).
    device : str
        ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
    verbose : bool
        Echo the per-epoch log lines.

    Attributes
    ----------
    labels_, cluster_centers_ (code space), n_clusters_, n_features_in_ (``X.shape[1]``, scikit-learn's
    definition; for images the channels), sample_size_ (values per sample), model_ (the trained autoencoder),
    spec_, input_shape_ (one sample as the model sees it), history_ (epoch records of both phases),
    scaler_ (how values map to the model's [0, 1] input; signal windows for an arch that reads ``[C, L]``, e.g.
    ``netbuilder.arch.auto_signal.signal_arch((C, L), k)``, pass as float32), k_selection_ (with
    ``n_clusters="auto"``: the eigengap curve the number was chosen from, else None).
    """

    def __init__(self, arch: dict[str, Any] | str | int = "auto", n_clusters: int | None = None,
                 objective: str | None = None, *, archs: str | None = None, epochs: int | None = None,
                 batch_size: int | None = None, lr: float | None = None, cluster_epochs: int | None = None,
                 pretrain_params: dict[str, Any] | None = None, cluster_params: dict[str, Any] | None = None,
                 random_state: int = 0, device: str = "auto", verbose: bool = False) -> None:
        self.arch = arch
        self.n_clusters = n_clusters
        self.objective = objective
        self.archs = archs
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.cluster_epochs = cluster_epochs
        self.pretrain_params = pretrain_params
        self.cluster_params = cluster_params
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    def fit(self, X: Any, y: Any = None) -> "DeepClustering":
        """Pretrain the autoencoder on ``X`` and cluster its codes (``y`` is ignored)."""
        arr = self._validate(X, reset=True)
        auto_k = isinstance(self.n_clusters, str) and self.n_clusters == "auto"
        if not (auto_k or self.n_clusters is None or (isinstance(self.n_clusters, (int, np.integer))
                                                      and not isinstance(self.n_clusters, bool))):
            raise NetbuilderError("Invalid value for argument `n_clusters`. Expected a positive integer or 'auto'. "
                                  f"Received n_clusters={self.n_clusters!r}.")
        spec, source = find_arch(self.arch, self.archs, sample_shape(arr, None), None if auto_k else self.n_clusters)
        shape = sample_shape(arr, tuple(spec["input_shape"]))
        k = 0 if auto_k else self.n_clusters or (spec.get("clustering") or {}).get("n_clusters")
        if not auto_k and (not k or int(k) < 1):
            raise NetbuilderError("Invalid value for argument `n_clusters`. Expected a positive integer, 'auto' (or "
                                  f"an arch with clustering.n_clusters). Received n_clusters={self.n_clusters!r}.")
        k = int(k)
        if len(arr) < k:
            raise NetbuilderError(f"cannot make {k} clusters from {len(arr)} samples")
        training = spec.get("training") or {}
        loss = self.objective or (training.get("cluster") or {}).get("loss") or cluster_settings()["loss"].default
        objective_class(loss)
        pre_hp = PRETRAIN.resolve({"epochs": self.epochs, "batch_size": self.batch_size, "lr": self.lr,
                                   **(self.pretrain_params or {})}, training)
        check_recon_loss(pre_hp["recon_loss"], spec)
        given = dict(self.cluster_params or {})
        check_final_step(loss, given)
        if self.cluster_epochs is not None:
            given["epochs"] = self.cluster_epochs
        cl_hp = cluster_settings(loss).resolve({**given, "loss": loss}, training.get("cluster"))
        device = resolve_device(self.device)
        # An arch that reads [C, L] takes N×C×L arrays as float signal windows; everything else maps to uint8.
        signals = is_signal_spec(spec) and arr.ndim == 3 and tuple(arr.shape[1:]) == tuple(shape)
        self.scaler_ = FloatWindows() if signals else ArrayScaler.fit(arr)
        data = self.scaler_.transform(arr).reshape((len(arr), *shape))
        seed = int(self.random_state)
        log = RunLog(None, echo=bool(self.verbose))
        with _threads(training.get("threads")), seeded(seed):
            model = build_model(spec, shape, source).to(device)
            pre = fit_autoencoder(model, data, pre_hp, seed=seed, device=device, progress=False, log=log)
            self.k_selection_ = None
            if auto_k:
                self.k_selection_ = select_k(encode_all(model, data, device), k_max=int(cl_hp["auto_k_max"]),
                                             n_neighbors=int(cl_hp["auto_neighbors"]))
                k = self.k_selection_.k
                log.info(self.k_selection_.table())
            seed_everything(seed)  # as `netbuilder cluster` does: the clustering phase starts from the seed
            alpha = float((spec.get("clustering") or {}).get("alpha", 1.0))
            obj = objective_class(loss)(cl_hp, k, alpha=alpha, device=device, log=log.info)
            res = fit_clustering(model, data, obj, cl_hp, seed=seed, device=device, recon_loss=pre_hp["recon_loss"],
                                 progress=False, log=log, desc=f"cluster-{loss}")
        self.model_ = model.eval()
        self.device_ = device
        self.spec_ = spec
        self.input_shape_ = shape
        self.sample_size_ = int(np.prod(arr.shape[1:]))
        self.n_clusters_ = k
        self.labels_ = res.pred
        self.cluster_centers_ = res.centroids
        self.history_ = pre.history + res.history
        return self

    def _validate(self, X: Any, reset: bool) -> np.ndarray:
        """scikit-learn's input checks (numbers, finite, not sparse, not empty, 2-D or more; ``n_features_in_``
        is ``X.shape[1]``), keeping uint8 as uint8."""
        arr = validate_data(self, X, reset=reset, dtype=None if _is_real(X) else np.float64, allow_nd=True,
                            ensure_min_samples=1)
        if not reset and int(np.prod(arr.shape[1:])) != self.sample_size_:
            raise ValueError(f"X has samples of shape {arr.shape[1:]}, the estimator was fitted on "
                             f"{self.sample_size_} values per sample")
        return arr

    def _check(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "model_")
        arr = self._validate(X, reset=False)
        return self.scaler_.transform(arr).reshape((len(arr), *self.input_shape_))

    def transform(self, X: Any) -> np.ndarray:
        """The codes (``N × code_dim``) of ``X``."""
        data = self._check(X)
        return encode_all(self.model_, data, self.device_)

    def predict(self, X: Any) -> np.ndarray:
        """The nearest cluster centre of each sample's code."""
        return nearest(self.transform(X), self.cluster_centers_)

    def fit_predict(self, X: Any, y: Any = None, **kwargs: Any) -> np.ndarray:
        """Fit on ``X`` and return :attr:`labels_`."""
        return self.fit(X).labels_

    def score_samples(self, X: Any) -> np.ndarray:
        """Minus the distance of each code to its nearest centre: higher = more typical of its cluster."""
        return -centroid_distance(self.transform(X), self.cluster_centers_)
