"""Signal recordings as datasets: sliding windows, their labels, and per-channel standardisation.

A recording is a float ``T×C`` array (T samples of C channels). It becomes float32 windows ``N×C×L``
(the layout of :class:`~.base.Dataset` signals and of 1-D convolutions). The label of a window is the label
of its **last** sample: that is the moment an online detector scoring the window would raise its alarm, and
it never lets a window borrow a label from the future. Standardisation statistics are fitted on the
training / normal part only and then applied to everything, so that test data and faults are scaled
exactly as a deployed model would scale them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import DatasetError

DEFAULT_WINDOW = 64
DEFAULT_STRIDE = 8
# A channel that is (nearly) constant on the fitting data is only centred: dividing by ~0 would blow any
# later deviation up to astronomic values.
MIN_STD = 1e-8


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise DatasetError(f"Invalid value for argument `{name}`. Expected a strictly positive integer. "
                           f"Received {name}={value!r}.")
    return int(value)


def resolve_window(window: int | None = None, stride: int | None = None) -> tuple[int, int]:
    """``(window, stride)`` with defaults (64 and 8 samples) for ``None``; each must be a positive integer."""
    return (_positive_int("window", DEFAULT_WINDOW if window is None else window),
            _positive_int("stride", DEFAULT_STRIDE if stride is None else stride))


def count_windows(length: int, window: int, stride: int) -> int:
    """How many windows of ``window`` samples, ``stride`` apart, fit in ``length`` samples (0 if none)."""
    return 0 if length < window else (length - window) // stride + 1


def window_ends(length: int, window: int, stride: int) -> np.ndarray:
    """The index of the last sample of each window (windows start at 0, ``stride`` apart)."""
    return np.arange(count_windows(length, window, stride), dtype=np.int64) * stride + window - 1


def sliding_windows(recording: np.ndarray, window: int, stride: int, what: str = "recording") -> np.ndarray:
    """Float32 windows ``N×C×L`` of a ``T×C`` recording; a recording shorter than ``window`` is an error."""
    if recording.ndim != 2:
        raise DatasetError(f"{what}: expected samples × channels, got shape {recording.shape}")
    if len(recording) < window:
        raise DatasetError(f"Invalid value for argument `window`. Expected at most the {len(recording)} samples "
                           f"of {what}. Received window={window}.")
    view = np.lib.stride_tricks.sliding_window_view(recording, window, axis=0)[::stride]  # N×C×L, a view
    return np.ascontiguousarray(view, dtype=np.float32)


def window_labels(per_sample: np.ndarray, window: int, stride: int) -> np.ndarray:
    """The label (or boolean mask value) of each window: that of its last sample."""
    return np.asarray(per_sample)[window_ends(len(per_sample), window, stride)]


@dataclass(frozen=True)
class Standardizer:
    """Per-channel standardisation ``(x - mean) / std``; ``mean`` and ``std`` are float32 arrays of shape (C,)."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, data: np.ndarray) -> "Standardizer":
        """Fit on a ``T×C`` recording or ``N×C×L`` windows (statistics over every sample of each channel,
        computed in float64)."""
        flat = data.reshape(-1, data.shape[-1]) if data.ndim == 2 else np.moveaxis(data, 1, -1).reshape(-1, data.shape[1])
        if len(flat) == 0:
            raise DatasetError("cannot fit a standardisation on no samples")
        mean = flat.mean(axis=0, dtype=np.float64)
        std = flat.std(axis=0, dtype=np.float64)
        std = np.where(std < MIN_STD, 1.0, std)
        return cls(mean=mean.astype(np.float32), std=std.astype(np.float32))

    def record(self) -> dict[str, list[float]]:
        """``{"mean": [...], "std": [...]}``: how a model's files keep it (read back by :meth:`from_record`)."""
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "Standardizer":
        """The standardisation :meth:`record` wrote (float32, one value per channel)."""
        return cls(mean=np.asarray(record["mean"], dtype=np.float32),
                   std=np.asarray(record["std"], dtype=np.float32))

    def apply(self, data: np.ndarray) -> np.ndarray:
        """Standardised float32 copy of a ``T×C`` recording or ``N×C×L`` windows."""
        if data.ndim == 2:
            mean, std = self.mean, self.std
        else:  # channels on axis 1
            mean, std = self.mean[:, None], self.std[:, None]
        return ((data.astype(np.float64) - mean) / std).astype(np.float32)
