"""Fault-detection metrics for process data: per-sample scores, a false-alarm-rate threshold, detection rate,
ROC AUC and detection delay per fault, their mean, and the table.

Conventions (the same for every detector of a report, so the rows compare):

* **Per-sample scores.** A detector that scores windows scores every window ending at sample ``t`` (stride 1)
  and the score belongs to sample ``t``, its last sample: an online detector can raise that alarm at time
  ``t`` and no later data are used. Samples before the first full window (``t < window − 1``) get no score
  (NaN) and are left out of every metric — for the per-sample PCA statistics too, so all rows are computed on
  the same samples.
* **Threshold.** The ``1 − far`` quantile (linear interpolation) of the scores of held-out *normal* samples;
  a sample is an alarm iff ``score > threshold``.
* **False-alarm rate**: share of the scored samples of a normal run that are alarms.
* **Fault detection rate (FDR)**: share of the scored faulty samples of a fault run that are alarms.
* **ROC AUC**: the scored faulty samples of the fault run against the scored samples of the normal test run
  (the same normal reference for every fault, whether or not the fault run has a normal start).
* **Detection delay**: samples from the fault onset to the first sample that starts a run of
  ``alarm_run`` consecutive alarms (default 3; a single false alarm at 1 % then almost never counts as a
  detection); ``None`` if the fault is never detected. On a run that is faulty from its first sample the
  delay counts from sample 0, so it includes the ``window − 1`` unscored samples.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import numpy as np

from ..errors import NetbuilderError

ALARM_RUN = 3
# Faults 3, 9 and 15 are practically undetectable from the measured variables (TEP literature): the mean
# detection rate is reported over the other faults.
UNDETECTABLE = (3, 9, 15)
SUMMARY_COLUMNS = ("fdr", "auc", "delay")


def samples_from_windows(window_scores: np.ndarray, length: int, window: int) -> np.ndarray:
    """Per-sample scores (float64, length ``length``) from the scores of the stride-1 windows of a run: the
    window ending at ``t`` gives sample ``t`` its score; the first ``window − 1`` samples are NaN."""
    s = np.asarray(window_scores, dtype=np.float64).ravel()
    if len(s) != length - window + 1:
        raise ValueError(f"{len(s)} window scores for {length} samples and windows of {window} (stride 1)")
    out = np.full(length, np.nan)
    out[window - 1:] = s
    return out


def unscored_before(scores: np.ndarray, start: int) -> np.ndarray:
    """``scores`` (float64 copy) with the samples before ``start`` set to NaN (no score)."""
    out = np.array(scores, dtype=np.float64)
    out[:start] = np.nan
    return out


def far_threshold(normal_scores: np.ndarray, far: float) -> float:
    """The ``1 − far`` quantile of held-out normal scores (NaN = unscored samples are skipped)."""
    if not 0.0 < far < 1.0:
        raise NetbuilderError(f"Invalid value for argument `far`. Expected a value in (0, 1). Received far={far!r}.")
    s = np.asarray(normal_scores, dtype=np.float64)
    s = s[~np.isnan(s)]
    if s.size == 0:
        raise NetbuilderError("cannot set the threshold: no held-out normal sample has a score (the held-out "
                              "part is shorter than the window?)")
    return float(np.quantile(s, 1.0 - far))


def alarm_rate(scores: np.ndarray, threshold: float) -> float:
    """Share of the scored samples above ``threshold``."""
    s = np.asarray(scores, dtype=np.float64)
    s = s[~np.isnan(s)]
    return float((s > threshold).mean()) if s.size else math.nan


def detection_delay(alarms: np.ndarray, onset: int, alarm_run: int = ALARM_RUN) -> int | None:
    """Samples from ``onset`` to the first sample (at or after it) that starts ``alarm_run`` consecutive
    alarms; ``None`` if there is no such run."""
    a = np.asarray(alarms, dtype=bool)[onset:]
    if alarm_run < 1:
        raise NetbuilderError(f"Invalid value for argument `alarm_run`. Expected an integer >= 1. "
                              f"Received alarm_run={alarm_run!r}.")
    if len(a) < alarm_run:
        return None
    # runs[i]: whether a[i : i + alarm_run] are all alarms (a sliding-window minimum).
    runs = np.lib.stride_tricks.sliding_window_view(a, alarm_run).all(axis=1)
    hits = np.flatnonzero(runs)
    return int(hits[0]) if hits.size else None


def fault_metrics(scores: np.ndarray, faulty: np.ndarray, threshold: float, normal_scores: np.ndarray, *,
                  onset: int, alarm_run: int = ALARM_RUN) -> dict[str, Any]:
    """FDR, ROC AUC (against ``normal_scores``), delay and counts of one fault run's per-sample ``scores``
    (NaN = unscored) with its per-sample ``faulty`` mask."""
    from sklearn.metrics import roc_auc_score

    s = np.asarray(scores, dtype=np.float64)
    f = np.asarray(faulty, dtype=bool)
    if s.shape != f.shape:
        raise ValueError(f"{s.size} scores but {f.size} fault labels")
    scored = ~np.isnan(s)
    pos = s[scored & f]
    neg = np.asarray(normal_scores, dtype=np.float64)
    neg = neg[~np.isnan(neg)]
    alarms = scored & (np.nan_to_num(s, nan=-np.inf) > threshold)
    auc = None
    if pos.size and neg.size:
        y = np.concatenate([np.ones(pos.size), np.zeros(neg.size)])
        auc = float(roc_auc_score(y, np.concatenate([pos, neg])))
    return {"fdr": float((pos > threshold).mean()) if pos.size else None, "auc": auc,
            "delay": detection_delay(alarms, onset, alarm_run), "n_faulty": int(pos.size),
            "n_alarms": int(alarms.sum())}


def summarise(per_fault: dict[int, dict[str, Any]], exclude: Iterable[int] = UNDETECTABLE) -> dict[str, Any]:
    """Means of FDR, AUC and delay (the delay over the detected faults only) over the faults not in
    ``exclude``, and which faults they cover."""
    skip = set(exclude)
    faults = sorted(f for f in per_fault if f not in skip)
    out: dict[str, Any] = {"faults": faults}
    for column in SUMMARY_COLUMNS:
        vals = [per_fault[f][column] for f in faults if per_fault[f].get(column) is not None]
        out[column] = float(np.mean(vals)) if vals else None
    out["undetected"] = [f for f in faults if per_fault[f].get("delay") is None]
    return out


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def format_table(rows: Sequence[dict[str, Any]], faults: Sequence[int], *, header: str | None = None) -> str:
    """Plain text: one line per fault with FDR / AUC / delay of every detector, then the mean line and the
    false-alarm rate line. ``rows`` are the detectors' results (``name``, ``far``, ``per_fault``, ``mean``)."""
    head = ["fault"] + [f"{r['name']} {c}" for r in rows for c in ("FDR", "AUC", "delay")]
    body = [[str(f)] + [cell for r in rows for cell in (_fmt(r["per_fault"][f]["fdr"]),
                                                         _fmt(r["per_fault"][f]["auc"]),
                                                         _fmt(r["per_fault"][f]["delay"]))] for f in faults]
    n_mean = len(rows[0]["mean"]["faults"]) if rows else 0
    body.append([f"mean ({n_mean})"] + [cell for r in rows for cell in (
        _fmt(r["mean"]["fdr"]), _fmt(r["mean"]["auc"]), _fmt(r["mean"]["delay"], 1))])
    body.append(["normal FAR"] + [cell for r in rows for cell in (_fmt(r["far"]), "", "")])
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
    lines = [header] if header else []
    for i, row in enumerate([head, *body]):
        if i == len(faults) + 1:  # before the mean line
            lines.append("  ".join("-" * w for w in widths))
        lines.append("  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths))))
    return "\n".join(line.rstrip() for line in lines)


def summary_table(rows: Sequence[dict[str, Any]]) -> str:
    """The short table: per detector the mean FDR, mean AUC, mean delay and the normal false-alarm rate."""
    head = ["detector", "mean FDR", "mean AUC", "mean delay", "FAR (normal test)", "threshold"]
    body = [[r["name"], _fmt(r["mean"]["fdr"]), _fmt(r["mean"]["auc"]), _fmt(r["mean"]["delay"], 1),
             _fmt(r["far"]), f"{r['threshold']:.4g}"] for r in rows]
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths)))
                     .rstrip() for row in [head, *body])
