"""Score a dataset with a saved anomaly detector (``netbuilder anomaly --model RUN_DIR``): its saved threshold,
and for signals its saved window and standardisation; writes ``<out>/predictions/<run>/<dataset>.csv``."""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from ..datasets import Standardizer, accepts_option, load_dataset
from ..errors import NetbuilderError
from ..fileio import write_text
from ..stages.workspace import MANIFEST, safe_name
from .estimator import AutoencoderAnomalyDetector
from .experiment import STANDARDIZER, _csv
from .report import evaluate, summary_line


def _read_standardizer(run_dir: Path) -> tuple[Standardizer, int] | None:
    """The saved standardisation of a signal detector's training data and its window, or ``None`` (images)."""
    path = run_dir / STANDARDIZER
    if not path.exists():
        return None
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        return Standardizer.from_record(saved), int(saved["window"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise NetbuilderError(f"{path}: unreadable standardisation ({type(exc).__name__}); run the training "
                              f"again") from None


def predict_dataset(model_dir: str | Path, dataset: str, *, data_dir: str | None = None, split: str = "all",
                    image_size: int | None = None, window: int | None = None, stride: int | None = None,
                    label_column: str | None = None, out: str = ".", device: str = "auto",
                    progress: bool | None = None) -> dict[str, Any]:
    """Score ``dataset`` with the detector saved in ``model_dir`` and its saved threshold.

    Signal detectors saved their training data's per-channel standardisation and window: the new recording is
    cut into windows of that length (unless ``window`` says otherwise) and standardised with the saved
    statistics, not its own (which would hide an offset or a change of scale).

    Writes ``<out>/predictions/<stage>/<dataset>.csv`` (index, score, anomaly[, file]). If the data are
    labelled and contain the saved target class, the report (AUC, AP, acc/F1) is computed with the saved
    protocol's meaning of "anomaly".
    """
    d = Path(model_dir)
    manifest_path = d / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        manifest = None
    if not manifest or not manifest.get("complete"):
        raise NetbuilderError(f"{d}: not a complete `netbuilder anomaly` run (no complete {MANIFEST}); run it again")
    det = AutoencoderAnomalyDetector.load(d, device=device)
    saved = _read_standardizer(d)
    scaler, saved_window = saved if saved is not None else (None, None)
    if saved_window is not None and window is None and accepts_option(dataset, "window"):
        window = saved_window
    ds = load_dataset(dataset, data_dir=data_dir, split=split, image_size=image_size, window=window,
                      stride=stride, label_column=label_column, progress=progress if progress is not None else True)
    if scaler is not None:
        if ds.mean is None:
            raise NetbuilderError(f"{d}: the detector was trained on signal windows; {ds.name} holds images")
        ds = ds.restandardized(scaler.mean, scaler.std)
    scores = det.decision_function(ds.images)
    thr = det.threshold_
    pred = (scores > thr).astype(np.int64)
    proto = manifest.get("protocol") or {}
    result: dict[str, Any] = {"n": len(ds), "flagged": int(pred.sum()), "threshold": thr, "metrics": None}
    target_name = proto.get("target_name")
    if ds.labels is not None and ds.class_names and target_name in ds.class_names:
        t = ds.class_names.index(target_name)
        y = (ds.labels != t) if proto.get("protocol") == "one-class" else (ds.labels == t)
        result["metrics"] = evaluate(y.astype(np.int64), scores, thr)
    buf = io.StringIO()
    buf.write("index,score,anomaly" + (",file" if ds.files else "") + "\n")
    for i, s in enumerate(scores):
        buf.write(f"{i},{s:.8g},{pred[i]}" + (f",{_csv(ds.files[i])}" if ds.files else "") + "\n")
    path = Path(out) / "predictions" / d.name / f"{safe_name(ds.name)}.csv"
    write_text(path, buf.getvalue())
    result["csv"] = str(path)
    result["summary"] = (f"{ds.name}: {result['flagged']} of {len(ds)} images flagged as anomalous "
                         f"(score '{det.score}' > saved threshold {thr:.6g})")
    if result["metrics"]:
        result["summary"] += "\n" + summary_line(result["metrics"])
    return result
