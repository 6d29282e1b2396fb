"""Turning scores into labels: the threshold. Pure functions; an image is anomalous iff ``score > threshold``.

Methods
-------
``contamination``
    PyOD's convention: the ``100·(1 − contamination)`` percentile of the *training* scores, so that about
    that fraction of the training data is flagged. In the one-class protocol the training data are all
    normal, so ``contamination`` is the false-positive rate one accepts.
``f1`` / ``accuracy``
    The best F1 (anomaly = positive class) or the best accuracy over every cut of the sorted scores of a
    *labelled validation split*. The candidate thresholds are: just below the smallest score (flag
    everything), the midpoints between consecutive distinct scores, and the largest score (flag nothing).
    Ties go to the lowest threshold (the one that flags the most).
a number
    Used as it is.

Degenerate validation splits (documented results, each with a :class:`ThresholdWarning`)
------------------------------------------------------------------------------------------
* **no anomalies** in the validation split: the threshold is the **largest validation score**, so no
  validation image would be flagged (F1 is undefined there, and any lower threshold only adds false
  positives). Test images scoring above every validation image are still flagged.
* **only anomalies**: the threshold is **just below the smallest validation score** (the next float
  down), so every validation image would be flagged.

An empty validation split, or scores that are not finite, are errors.
"""
from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..errors import NetbuilderError

METHODS = ("contamination", "f1", "accuracy")
LABELLED = ("f1", "accuracy")


class ThresholdWarning(UserWarning):
    """A threshold was chosen from a degenerate validation split (see the module docstring)."""


@dataclass(frozen=True)
class Threshold:
    """A chosen threshold: its value, how it was chosen, and the warning of a degenerate case (if any)."""

    value: float
    method: str
    warning: str | None = None
    validation_metric: float | None = None   # best validation F1 / accuracy for those methods
    contamination: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_threshold(value: str | float) -> str | float:
    """``"contamination"``, ``"f1"``, ``"accuracy"`` or a number (from a command-line string)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip().lower()
    if text in METHODS:
        return text
    try:
        number = float(text)
    except ValueError:
        raise NetbuilderError(f"invalid threshold '{value}': use contamination, f1, accuracy or a number") from None
    if not np.isfinite(number):
        raise NetbuilderError(f"invalid threshold '{value}': a manual threshold must be a finite number")
    return number


def check_contamination(contamination: float) -> float:
    """PyOD's range: ``0 < contamination <= 0.5``."""
    c = float(contamination)
    if not 0.0 < c <= 0.5:
        raise NetbuilderError(f"invalid contamination {contamination}: expected a fraction in (0, 0.5]")
    return c


def _scores(scores: Any, what: str) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64).ravel()
    if s.size == 0:
        raise NetbuilderError(f"cannot choose a threshold: the {what} scores are empty")
    if not np.all(np.isfinite(s)):
        raise NetbuilderError(f"cannot choose a threshold: the {what} scores contain NaN or infinity")
    return s


def contamination_threshold(train_scores: Any, contamination: float) -> Threshold:
    """The ``100·(1 − contamination)`` percentile of the training scores (linear interpolation, as PyOD)."""
    c = check_contamination(contamination)
    s = _scores(train_scores, "training")
    return Threshold(float(np.percentile(s, 100.0 * (1.0 - c))), "contamination", contamination=c)


def _below(x: float) -> float:
    return float(np.nextafter(x, -np.inf))


def best_threshold(scores: Any, labels: Any, metric: str = "f1", *, warn: bool = True) -> Threshold:
    """The threshold with the best validation ``metric`` (``"f1"`` or ``"accuracy"``); ``labels`` 1 = anomaly.

    See the module docstring for the candidates, ties and the two degenerate cases.
    """
    if metric not in LABELLED:
        raise NetbuilderError(f"invalid metric '{metric}': expected f1 or accuracy")
    s = _scores(scores, "validation")
    y = np.asarray(labels).ravel()
    if y.shape != s.shape:
        raise NetbuilderError(f"{s.size} validation scores but {y.size} labels")
    y = y.astype(bool)
    n_pos = int(y.sum())
    if n_pos == 0:
        msg = (f"the validation split has no anomalies ({s.size} normal images): threshold set to the largest "
               f"validation score ({s.max():.6g}), so no validation image would be flagged")
        return _degenerate(float(s.max()), metric, msg, warn)
    if n_pos == s.size:
        msg = (f"the validation split holds only anomalies ({s.size} images): threshold set just below the "
               f"smallest validation score ({s.min():.6g}), so every validation image would be flagged")
        return _degenerate(_below(float(s.min())), metric, msg, warn)

    order = np.argsort(s, kind="stable")
    s_sorted, y_sorted = s[order], y[order]
    uniq, first = np.unique(s_sorted, return_index=True)
    # pos_from[i] / neg_from[i]: anomalies / normals among the scores >= uniq[i] (flagged by candidate i).
    pos_suffix = np.concatenate([np.cumsum(y_sorted[::-1])[::-1], [0]])
    pos_from = np.concatenate([pos_suffix[first], [0]])
    count_from = np.concatenate([s.size - first, [0]])
    tp = pos_from.astype(np.float64)
    fp = (count_from - pos_from).astype(np.float64)
    fn = n_pos - tp
    tn = (s.size - n_pos) - fp
    if metric == "f1":
        values = np.where(tp > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0)
    else:
        values = (tp + tn) / s.size
    best = int(np.argmax(values))  # first maximum = lowest threshold among ties
    if best == 0:
        value = _below(float(uniq[0]))
    elif best == len(uniq):
        value = float(uniq[-1])
    else:
        lo, hi = float(uniq[best - 1]), float(uniq[best])
        value = lo + (hi - lo) / 2.0
        if not lo <= value < hi:  # adjacent floats: flag exactly the scores >= hi
            value = lo
    return Threshold(value, metric, validation_metric=float(values[best]))


def _degenerate(value: float, metric: str, message: str, warn: bool) -> Threshold:
    if warn:
        warnings.warn(message, ThresholdWarning, stacklevel=3)
    return Threshold(value, metric, warning=message)


def select_threshold(method: str | float, *, train_scores: Any = None, val_scores: Any = None,
                     val_labels: Any = None, contamination: float = 0.1, warn: bool = True) -> Threshold:
    """Dispatch on ``method``: ``contamination`` (training scores), ``f1``/``accuracy`` (labelled
    validation scores) or a number (manual)."""
    method = parse_threshold(method)
    if isinstance(method, float):
        return Threshold(method, "manual")
    if method == "contamination":
        if train_scores is None:
            raise NetbuilderError("the contamination threshold needs the training scores")
        return contamination_threshold(train_scores, contamination)
    if val_scores is None or val_labels is None:
        raise NetbuilderError(f"threshold '{method}' needs a labelled validation split (validation images and "
                              "their labels); use --threshold contamination or a number without labels")
    return best_threshold(val_scores, val_labels, method, warn=warn)
