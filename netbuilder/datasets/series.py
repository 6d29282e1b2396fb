"""``series:PATH``: one long multichannel recording, as CSV or ``.npy``, cut into sliding windows.

* CSV: one sample per line, one channel per column. The first line is a header when none of its fields is
  a number (a first line mixing names and numbers is data, so that a typo is reported, not swallowed).
  Fields are separated by ``,`` (or ``;`` or a tab, when the first line has no comma); ``#`` lines are
  skipped. The column named by ``label_column``, else a column named ``label``, holds per-sample labels
  (any text; classes are the distinct values, sorted numerically when they are all numbers).
* ``.npy``: a numeric ``T×C`` array (or ``T``, one channel), without labels.

Windows are labelled by their last sample (see :mod:`.signals`). Standardisation is fitted on the normal
part: the samples labelled ``normal`` or ``0`` when such a class exists, else the whole recording.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from .base import Dataset
from .checksum import derived_fingerprint, file_digest, fingerprint
from .kinds import register_dataset
from .numtext import check_finite, parse_numbers, where
from .paths import located_path
from .signals import Standardizer, resolve_window, sliding_windows, window_labels

DEFAULT_LABEL_COLUMN = "label"


@dataclass
class Recording:
    """A recording: float64 ``T×C`` values, channel names, and per-sample labels as written (or ``None``)."""

    values: np.ndarray
    channels: list[str]
    labels: list[str] | None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _label_index(header: list[str], label_column: str | None, path: Path) -> int | None:
    """The position of the label column in ``header`` (``None``: unlabelled)."""
    if label_column is None:
        matches = [i for i, h in enumerate(header) if h.strip().lower() == DEFAULT_LABEL_COLUMN]
        return matches[0] if matches else None
    for exact in (True, False):
        for i, h in enumerate(header):
            if h.strip() == label_column if exact else h.strip().lower() == label_column.strip().lower():
                return i
    columns = ", ".join(h.strip() for h in header) or "none (the file has no header line)"
    raise DatasetError(f"Invalid value for argument `label_column`. Expected a column of {path} (columns: "
                       f"{columns}). Received label_column={label_column!r}.")


def read_csv(path: Path, label_column: str | None = None) -> Recording:
    """Parse a CSV recording; a bad value raises :class:`DatasetError` naming the file, line and column."""
    try:
        text = path.read_text(encoding="utf-8-sig", errors="replace")
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1)
             if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        raise DatasetError(f"{path}: no data (the file is empty)")
    first = lines[0][1]
    delimiter = next((d for d in (",", ";", "\t") if d in first), ",")
    rows = list(csv.reader((line for _, line in lines), delimiter=delimiter))
    has_header = not any(_is_number(f) for f in rows[0])
    header = [f.strip() for f in rows[0]] if has_header else []
    label_at = _label_index(header, label_column, path)
    width = len(rows[0])
    keep = [i for i in range(width) if i != label_at]
    names = [header[i] if header else f"column {i + 1}" for i in keep]
    if not keep:
        raise DatasetError(f"{path}: no channel columns besides the label column")
    values, labels = [], []
    for (number, _), fields in zip(lines[1:] if has_header else lines, rows[1:] if has_header else rows):
        if len(fields) != width:
            raise DatasetError(f"{where(path, number)}: {len(fields)} fields, expected {width}")
        values.append(parse_numbers([fields[i] for i in keep], path, number, [i + 1 for i in keep],
                                    header and [header[i] for i in keep] or None))
        if label_at is not None:
            label = fields[label_at].strip()
            if not label:
                raise DatasetError(f"{where(path, number, label_at + 1, header[label_at])}: empty label")
            labels.append(label)
    if not values:
        raise DatasetError(f"{path}: a header but no data")
    return Recording(np.asarray(values, dtype=np.float64), names, labels if label_at is not None else None)


def read_npy(path: Path) -> Recording:
    """Load a numeric ``T×C`` (or ``T``) ``.npy`` array; a NaN/infinite entry is an error naming row and column."""
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot read as .npy ({exc})") from exc
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise DatasetError(f"{path}: expected a numeric samples × channels array, got {array.dtype} of shape "
                           f"{array.shape}")
    check_finite(array, path)
    return Recording(array.astype(np.float64), [f"column {i + 1}" for i in range(array.shape[1])], None)


def _classes(labels: list[str]) -> list[str]:
    distinct = set(labels)
    if all(_is_number(lab) for lab in distinct):
        return sorted(distinct, key=float)
    return sorted(distinct)


def _is_normal(label: str) -> bool:
    return label.lower() == "normal" or (_is_number(label) and float(label) == 0.0)


@register_dataset("series:", placeholder="PATH", what="a CSV or .npy file", example="series:./recording.csv",
                  modality="signal", options=("window", "stride", "label_column"),
                  description="one multichannel recording (CSV or .npy, samples x channels) cut into windows")
def load_series(location: str, root: Path, split: str, download_ok: bool, progress: bool, *,
                window: int | None = None, stride: int | None = None,
                label_column: str | None = None) -> Dataset:
    """Windows ``N×C×window`` of the recording at ``location`` (relative to the working directory)."""
    path, name = located_path("series", location, split, folder=False)
    window, stride = resolve_window(window, stride)
    if path.suffix.lower() == ".npy":
        if label_column is not None:
            raise DatasetError(f"Argument `label_column` does not apply to {path} (.npy recordings have no "
                               f"labels). Received label_column={label_column!r}.")
        rec = read_npy(path)
    else:
        rec = read_csv(path, label_column)
    classes = _classes(rec.labels) if rec.labels is not None else None
    normal = [c for c in classes or [] if _is_normal(c)]
    fit_on = rec.values if not normal else rec.values[np.array([lab == normal[0] for lab in rec.labels or []])]
    scaler = Standardizer.fit(fit_on)
    windows = sliding_windows(scaler.apply(rec.values), window, stride, what=name)
    labels = None
    if classes is not None and rec.labels is not None:
        index = {c: i for i, c in enumerate(classes)}
        labels = window_labels(np.array([index[lab] for lab in rec.labels], dtype=np.int64), window, stride)
    step = (f"series windows {window} stride {stride}; labels {label_column or DEFAULT_LABEL_COLUMN}; "
            f"per-channel standardisation fitted on {f'class {normal[0]}' if normal else 'all samples'}")
    return Dataset(name=name, images=windows, labels=labels, class_names=classes,
                   fingerprint=derived_fingerprint(fingerprint([(path.name, file_digest(path))]), step),
                   source=str(path), split=split, mean=scaler.mean, std=scaler.std)
