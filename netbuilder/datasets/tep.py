"""The Tennessee Eastman process (TEP): Braatz's runs as recordings, for fault detection, and ``TEP`` windows.

Files in ``<data root>/tep/`` (whitespace-separated floats, 52 variables: XMEAS(1..41) then XMV(1..11)):

* ``d00.dat``: the normal training run, stored **transposed** (52 × 500); read back as 500 × 52;
* ``dNN.dat`` (NN = 01..21): training runs of fault NN, 480 × 52, the fault active throughout;
* ``d00_te.dat``: the normal test run, 960 × 52;
* ``dNN_te.dat``: test runs of fault NN, 960 × 52, the fault introduced after sample 160 (read when present).

A fault-detection report fits a :class:`~.signals.Standardizer` on :func:`normal_training_run` (see
:func:`normal_standardizer`), scores the windows of :func:`normal_test_run` (false alarms) and of
:func:`fault_run` for each fault (detections), and reads each window's truth from :meth:`Run.window_faulty`.
The registered ``TEP`` dataset holds windows of the normal runs only, for pretraining.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from .base import Dataset
from .checksum import derived_fingerprint, file_digest, fingerprint
from .kinds import register_dataset
from .numtext import read_table
from .paths import resolve_data_dir
from .signals import DEFAULT_STRIDE, DEFAULT_WINDOW, Standardizer, count_windows, resolve_window, \
    sliding_windows, window_labels

N_VARIABLES = 52
VARIABLES = tuple([f"XMEAS({i})" for i in range(1, 42)] + [f"XMV({i})" for i in range(1, 12)])
FAULTS = tuple(range(1, 22))
# Test runs: the first 160 samples (8 hours) are normal, the fault is introduced after sample 160.
FAULT_ONSET = 160
TRAIN_LENGTH, TEST_LENGTH = 500, 960  # of the normal runs (d00.dat, d00_te.dat)


@dataclass(frozen=True)
class Run:
    """One TEP run: raw ``data`` (float32 ``T×52``, not standardised), the per-sample ``faulty`` mask, the fault
    number (0 = normal operation), ``part`` ("train" or "test") and the ``file`` it was read from."""

    fault: int
    part: str
    file: Path
    data: np.ndarray
    faulty: np.ndarray

    def windows(self, scaler: Standardizer, window: int | None = None, stride: int | None = None) -> np.ndarray:
        """Standardised float32 windows ``N×52×window`` (defaults: window 64, stride 8)."""
        window, stride = resolve_window(window, stride)
        return sliding_windows(scaler.apply(self.data), window, stride, what=str(self.file))

    def window_faulty(self, window: int | None = None, stride: int | None = None) -> np.ndarray:
        """Whether each window of :meth:`windows` counts as faulty: its last sample is."""
        window, stride = resolve_window(window, stride)
        return window_labels(self.faulty, window, stride)


def tep_folder(data_dir: str | Path | None = None) -> Path:
    """``<data root>/tep``, where the ``.dat`` files are looked up."""
    return resolve_data_dir(data_dir) / "tep"


def read_run_file(path: Path) -> np.ndarray:
    """A TEP file as float32 ``T×52``; a transposed file (52 rows, as ``d00.dat``) is transposed back."""
    if not path.is_file():
        raise DatasetError(f"{path}: missing; TEP needs Braatz's .dat files (d00.dat, d00_te.dat, dNN.dat, "
                           f"dNN_te.dat) in {path.parent}")
    table = read_table(path)
    if table.shape[1] != N_VARIABLES and table.shape[0] == N_VARIABLES:
        table = table.T  # d00.dat is stored variables × samples
    if table.shape[1] != N_VARIABLES:
        raise DatasetError(f"{path}: expected {N_VARIABLES} variables per sample, got a {table.shape[0]}x"
                           f"{table.shape[1]} table")
    return np.ascontiguousarray(table, dtype=np.float32)


def _run(fault: int, part: str, data_dir: str | Path | None) -> Run:
    path = tep_folder(data_dir) / (f"d{fault:02d}.dat" if part == "train" else f"d{fault:02d}_te.dat")
    data = read_run_file(path)
    faulty = np.zeros(len(data), dtype=bool)
    if fault:
        faulty[FAULT_ONSET if part == "test" else 0:] = True
    return Run(fault=fault, part=part, file=path, data=data, faulty=faulty)


def normal_training_run(data_dir: str | Path | None = None) -> Run:
    """``d00.dat``: normal operation, 500 samples; fit standardisation and models on this only."""
    return _run(0, "train", data_dir)


def normal_test_run(data_dir: str | Path | None = None) -> Run:
    """``d00_te.dat``: normal operation, 960 samples; every alarm on it is a false alarm."""
    return _run(0, "test", data_dir)


def normal_standardizer(data_dir: str | Path | None = None) -> Standardizer:
    """Per-channel statistics of the normal training run, to apply to every run."""
    return Standardizer.fit(normal_training_run(data_dir).data)


def _check_fault(fault: int) -> int:
    if isinstance(fault, bool) or not isinstance(fault, (int, np.integer)) or int(fault) not in FAULTS:
        raise DatasetError(f"Invalid value for argument `fault`. Expected an integer from 1 to {FAULTS[-1]}. "
                           f"Received fault={fault!r}.")
    return int(fault)


def fault_run(fault: int, data_dir: str | Path | None = None, part: str | None = None) -> Run:
    """The run to evaluate fault ``fault`` (1..21) on: its test run ``dNN_te.dat`` (faulty after sample 160)
    when present, else its training run ``dNN.dat`` (faulty throughout). ``part`` ("train" or "test") forces
    one of them."""
    fault = _check_fault(fault)
    if part not in (None, "train", "test"):
        raise DatasetError(f"Invalid value for argument `part`. Expected 'train', 'test' or None. Received "
                           f"part={part!r}.")
    if part is None:
        part = "test" if (tep_folder(data_dir) / f"d{fault:02d}_te.dat").is_file() else "train"
    return _run(fault, part, data_dir)


def available_faults(data_dir: str | Path | None = None) -> list[int]:
    """The faults (1..21) with a training or test run present in ``<data root>/tep``."""
    folder = tep_folder(data_dir)
    return [f for f in FAULTS if (folder / f"d{f:02d}.dat").is_file() or (folder / f"d{f:02d}_te.dat").is_file()]


# Sizes with the default window and stride (what `netbuilder datasets` lists).
_WINDOWS_TRAIN = count_windows(TRAIN_LENGTH, DEFAULT_WINDOW, DEFAULT_STRIDE)
_WINDOWS_TEST = count_windows(TEST_LENGTH, DEFAULT_WINDOW, DEFAULT_STRIDE)


def locate(root: Path) -> Path | None:
    folder = root / "tep"
    return folder if (folder / "d00.dat").is_file() and (folder / "d00_te.dat").is_file() else None


@register_dataset(
    "TEP", dirname="tep", shape=(N_VARIABLES, DEFAULT_WINDOW), class_names=(),
    sizes={"all": _WINDOWS_TRAIN + _WINDOWS_TEST, "train": _WINDOWS_TRAIN, "test": _WINDOWS_TEST},
    downloadable=False, modality="signal", options=("window", "stride"), aliases=("TENNESSEE-EASTMAN",),
    description="Tennessee Eastman normal runs as 52-channel windows (faults: netbuilder.datasets.tep)",
    locate=locate,
)
def load(root: Path, split: str, download_ok: bool, progress: bool, *, window: int | None = None,
         stride: int | None = None) -> Dataset:
    """Windows of the normal runs (train: ``d00.dat``, test: ``d00_te.dat``, all: both, never a window across
    the two), unlabelled, standardised with ``d00.dat``'s statistics."""
    window, stride = resolve_window(window, stride)
    runs = [_run(0, part, root) for part in (("train", "test") if split == "all" else (split,))]
    train = runs[0] if runs[0].part == "train" else normal_training_run(root)
    scaler = Standardizer.fit(train.data)
    windows = np.concatenate([run.windows(scaler, window, stride) for run in runs])
    files = {train.file, *(run.file for run in runs)}
    source = fingerprint((path.name, file_digest(path)) for path in files)
    step = f"tep split {split}; windows {window} stride {stride}; per-channel standardisation fitted on d00.dat"
    return Dataset(name="TEP", images=windows, labels=None, class_names=None,
                   fingerprint=derived_fingerprint(source, step), source=str(train.file.parent), split=split,
                   mean=scaler.mean, std=scaler.std)
