"""``ucr:NAME``: a UCR/UEA time-series classification dataset in the ``.ts`` text format.

Looked up as ``<data root>/ucr/NAME/NAME_TRAIN.ts`` and ``NAME_TEST.ts``. The format: ``#`` comment lines,
``@`` header tags (``@univariate``, ``@dimensions``, ``@equalLength``, ``@seriesLength``, ``@classLabel true
A B ...``), then after ``@data`` one series per line, the dimensions separated by ``:``, values by ``,``,
and the class label last. Univariate and multivariate series of equal length are read; each series is one
sample ``C×L`` at its native length (no windowing, no resampling). Channels are standardised with
statistics fitted on the TRAIN file only, applied to both files.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from .base import Dataset
from .checksum import derived_fingerprint, file_digest, fingerprint
from .kinds import register_dataset
from .numtext import parse_numbers, where
from .signals import Standardizer

PARTS = ("train", "test")


@dataclass
class TsFile:
    """The content of one ``.ts`` file: series ``N×C×L`` (float64), their labels as written, and the labels
    declared by ``@classLabel`` (``None`` when the header declares none)."""

    series: np.ndarray
    labels: list[str]
    declared: list[str] | None


def _header(path: Path, number: int, tag: str, args: list[str], declared: list[str] | None) -> list[str] | None:
    """Check one ``@tag`` line; return the class labels it declares (``@classLabel true ...``), else ``declared``."""
    value = args[0].lower() if args else ""
    if tag == "classlabel":
        if value == "true":
            if len(args) < 2:
                raise DatasetError(f"{where(path, number)}: @classLabel true lists no labels")
            return args[1:]
        return None
    if (tag, value) in (("equallength", "false"), ("timestamps", "true")):
        raise DatasetError(f"{where(path, number)}: @{tag} {value} is not supported (only equal-length series "
                           f"without time stamps)")
    return declared


def read_ts(path: Path) -> TsFile:
    """Parse a ``.ts`` file; any malformed line raises :class:`DatasetError` naming the file and line number."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    declared: list[str] | None = None
    in_data = False
    rows: list[list[list[float]]] = []
    labels: list[str] = []
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("@"):
            if in_data:
                raise DatasetError(f"{where(path, number)}: header line after @data")
            tag, *args = line[1:].split()
            if tag.lower() == "data":
                in_data = True
            else:
                declared = _header(path, number, tag.lower(), args, declared)
            continue
        if not in_data:
            raise DatasetError(f"{where(path, number)}: data before the @data line")
        *dims, label = line.split(":") if declared is not None else (*line.split(":"), "")
        if not dims:
            raise DatasetError(f"{where(path, number)}: expected values then ':' and the class label")
        label = label.strip()
        if declared is not None and label not in declared:
            raise DatasetError(f"{where(path, number)}: class label '{label}' is not one of the declared "
                               f"{', '.join(declared)}")
        series = [parse_numbers(d.split(","), path, number) for d in dims]
        first = rows[0] if rows else series
        if len(series) != len(first) or any(len(s) != len(first[0]) for s in series):
            got = "x".join(str(len(s)) for s in series)
            raise DatasetError(f"{where(path, number)}: {len(series)} dimension(s) of lengths {got}, expected "
                               f"{len(first)} of length {len(first[0])} (unequal lengths are not supported)")
        rows.append(series)
        labels.append(label)
    if not rows:
        raise DatasetError(f"{path}: no series (no data after @data)")
    return TsFile(series=np.asarray(rows, dtype=np.float64), labels=labels, declared=declared)


def _files(root: Path, name: str) -> dict[str, Path]:
    folder = root / "ucr" / name
    files = {part: folder / f"{name}_{part.upper()}.ts" for part in PARTS}
    missing = [p.name for p in files.values() if not p.is_file()]
    if missing:
        present = sorted(p.name for p in (root / "ucr").glob("*/") if p.is_dir()) if (root / "ucr").is_dir() else []
        also = f" (present there: {', '.join(present)})" if present else ""
        raise DatasetError(f"ucr:{name}: missing {', '.join(missing)} in {folder}; place the .ts files from "
                           f"timeseriesclassification.com there{also}")
    return files


def _labels(name: str, parsed: dict[str, TsFile], parts: list[str]) -> tuple[list[str] | None, np.ndarray | None]:
    """Class names (as declared by the TRAIN file, else sorted) and the label indices of ``parts``; ``None``
    for both when the files declare no class labels."""
    if parsed["train"].declared is None and parsed["test"].declared is None:
        return None, None
    classes = parsed["train"].declared or sorted({lab for f in parsed.values() for lab in f.labels})
    index = {label: i for i, label in enumerate(classes)}
    for part in PARTS:
        stray = sorted(set(parsed[part].labels) - set(index))
        if stray:
            raise DatasetError(f"ucr:{name}: {part.upper()} has class labels {', '.join(stray)} that TRAIN does "
                               f"not declare ({', '.join(classes)})")
    return list(classes), np.array([index[lab] for p in parts for lab in parsed[p].labels], dtype=np.int64)


@register_dataset("ucr:", placeholder="NAME", what="a dataset name", example="ucr:GunPoint", modality="signal",
                  splits=("all", "train", "test"),
                  description="UCR/UEA .ts time series in <data root>/ucr/NAME/NAME_TRAIN.ts and NAME_TEST.ts")
def load_ucr(location: str, root: Path, split: str, download_ok: bool, progress: bool) -> Dataset:
    """Series as float32 ``N×C×L`` (train then test for ``all``), labels indexed in the declared order (or
    sorted, when undeclared), standardised with the TRAIN file's per-channel statistics."""
    name = location.strip()
    files = _files(root, name)
    parsed = {part: read_ts(path) for part, path in files.items()}
    shapes = {part: f.series.shape[1:] for part, f in parsed.items()}
    if shapes["train"] != shapes["test"]:
        raise DatasetError(f"ucr:{name}: TRAIN series are {shapes['train']} (channels, length) but TEST series are "
                           f"{shapes['test']}")
    parts = list(PARTS) if split == "all" else [split]
    classes, labels = _labels(name, parsed, parts)
    scaler = Standardizer.fit(parsed["train"].series)
    series = np.concatenate([parsed[p].series for p in parts])
    source = fingerprint((path.name, file_digest(path)) for path in files.values())
    step = f"ucr split {split}; per-channel standardisation fitted on {files['train'].name}"
    return Dataset(name=f"ucr:{name}", images=scaler.apply(series), labels=labels, class_names=classes,
                   fingerprint=derived_fingerprint(source, step), source=str(files["train"].parent), split=split,
                   mean=scaler.mean, std=scaler.std)
