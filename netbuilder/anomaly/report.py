"""Evaluation of anomaly scores against labels (1 = anomaly): ROC AUC, average precision, and the
confusion counts, accuracy, precision, recall and F1 at a threshold (flagged iff ``score > threshold``)."""
from __future__ import annotations

import json
import math
from typing import Any, Sequence

import numpy as np

METRIC_COLUMNS = ("auc", "ap", "acc", "f1")


def evaluate(labels: Any, scores: Any, threshold: float) -> dict[str, Any]:
    """Metrics of ``scores`` against binary ``labels`` at ``threshold``.

    ROC AUC and average precision need both classes; with only one they are ``None``.
    """
    from sklearn.metrics import average_precision_score, roc_auc_score

    y = np.asarray(labels).ravel().astype(bool)
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"{s.size} scores but {y.size} labels")
    pred = s > threshold
    tp = int(np.sum(pred & y))
    fp = int(np.sum(pred & ~y))
    fn = int(np.sum(~pred & y))
    tn = int(np.sum(~pred & ~y))
    both = 0 < y.sum() < y.size
    out: dict[str, Any] = {
        "n": int(y.size), "n_anomalies": int(y.sum()), "flagged": int(pred.sum()),
        "auc": float(roc_auc_score(y, s)) if both else None,
        "ap": float(average_precision_score(y, s)) if both else None,
        "threshold": float(threshold),
        "acc": (tp + tn) / y.size if y.size else None,
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "tp": tp, "fp": fp, "tn": tn, "fn": fn,
    }
    out["f1"] = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return out


def part_columns(rows: Sequence[dict[str, Any]]) -> tuple[str, ...]:
    """The ``auc_<part>`` columns of a combined score's rows (each part's own ROC AUC), in order of appearance."""
    seen: dict[str, None] = {}
    for r in rows:
        seen.update({k: None for k in r if k.startswith("auc_")})
    return tuple(seen)


def parts_text(row: dict[str, Any], label: str = "") -> str:
    """``cosine 0.9650, clusters 0.9710`` (each part's AUC, ``label`` before each number), or ``""`` for a row
    of a single score."""
    return ", ".join(f"{k[4:]} {label}{_fmt(row[k])}" for k in part_columns([row]))


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def summary_line(metrics: dict[str, Any]) -> str:
    """``ROC AUC 0.9876  AP 0.9912  at threshold 0.0123: acc 0.9012  F1 0.9345 (precision …, recall …)``."""
    return (f"ROC AUC {_fmt(metrics.get('auc'))}  AP {_fmt(metrics.get('ap'))}  at threshold "
            f"{metrics['threshold']:.6g}: acc {_fmt(metrics.get('acc'))}  F1 {_fmt(metrics.get('f1'))} "
            f"(precision {_fmt(metrics.get('precision'))}, recall {_fmt(metrics.get('recall'))}; "
            f"{metrics['flagged']} of {metrics['n']} flagged, {metrics['n_anomalies']} anomalies)")


def mean_row(rows: Sequence[dict[str, Any]], columns: Sequence[str] = METRIC_COLUMNS) -> dict[str, Any]:
    """Column means over the rows that have a value (``None`` where no row has one)."""
    out: dict[str, Any] = {}
    for c in columns:
        vals = [r[c] for r in rows if r.get(c) is not None]
        out[c] = float(np.mean(vals)) if vals else None
    return out


def format_table(rows: Sequence[dict[str, Any]], *, header: str | None = None,
                 columns: Sequence[str] = METRIC_COLUMNS) -> str:
    """A plain-text table: one row per target class, then the mean."""
    names = {"auc": "ROC AUC", "ap": "AP", "acc": "acc", "f1": "F1"}
    head = ["target", *[names.get(c, c.replace("auc_", "AUC ")) for c in columns],   # auc_<part>: "AUC <part>"
            "threshold", "train", "test", "anomalies", "seconds"]
    body = [[f"{r['target']} {r['class']}" if str(r["target"]) != str(r["class"]) else str(r["class"]),
             *[_fmt(r.get(c)) for c in columns], f"{r['threshold']:.4g}", str(r["n_train"]), str(r["n_test"]),
             str(r["n_anomalies"]), f"{r['seconds']:.1f}"] for r in rows]
    mean = mean_row(rows, columns)
    body.append(["mean", *[_fmt(mean[c]) for c in columns], "", "", "", "",
                 f"{sum(r['seconds'] for r in rows):.1f}"])
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
    lines = [header] if header else []
    for i, row in enumerate([head, *body]):
        if i == len(body):  # before the mean row
            lines.append("  ".join("-" * w for w in widths))
        lines.append("  ".join(cell.ljust(w) if j == 0 else cell.rjust(w)
                               for j, (cell, w) in enumerate(zip(row, widths))).rstrip())
    return "\n".join(lines)


def table_json(rows: Sequence[dict[str, Any]], **extra: Any) -> str:
    """The rows, their mean and ``extra`` fields as indented JSON."""
    return json.dumps({**extra, "rows": list(rows), "mean": mean_row(rows)}, indent=2)
