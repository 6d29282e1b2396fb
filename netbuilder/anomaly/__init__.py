"""Unsupervised anomaly detection with autoencoders: scores, thresholds, protocols, an estimator, a CLI.

Public API:

* :class:`AutoencoderAnomalyDetector` — scikit-learn / PyOD style estimator (``fit``, ``decision_function``,
  ``predict``, ``decision_scores_``, ``threshold_``, ``labels_``; ``save``/``load``).
* :func:`run_anomaly`, :func:`run_all_classes` — one protocol run (or one per target class) on a named
  dataset, with files, plots and a report, as ``netbuilder anomaly`` does.
* :mod:`~netbuilder.core.scores`, :mod:`~netbuilder.anomaly.threshold`,
  :mod:`~netbuilder.anomaly.protocols`, :mod:`~netbuilder.anomaly.report` — the pure parts.
"""
from .estimator import AutoencoderAnomalyDetector, TrainingCollapseWarning
from ..core.arrays import check_images, check_signals
from .protocols import PROTOCOLS, ProtocolSplit, make_split
from .report import evaluate
from ..core.scores import SCORES, centroid_distance, cluster_distance, cosine_score, reconstruction_error
from .threshold import Threshold, ThresholdWarning, best_threshold, contamination_threshold, select_threshold


def __getattr__(name: str):
    # The experiment runner pulls in the dataset loaders and plotting; import it on first use.
    if name in ("run_anomaly", "run_all_classes"):
        from . import experiment

        return getattr(experiment, name)
    if name == "predict_dataset":
        from . import predict

        return predict.predict_dataset
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["AutoencoderAnomalyDetector", "TrainingCollapseWarning", "check_images", "check_signals",
           "PROTOCOLS", "ProtocolSplit", "make_split", "evaluate",
           "SCORES", "cosine_score", "centroid_distance", "cluster_distance", "reconstruction_error", "Threshold",
           "ThresholdWarning", "best_threshold", "contamination_threshold", "select_threshold", "run_anomaly",
           "run_all_classes", "predict_dataset"]
