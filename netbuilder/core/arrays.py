"""Arrays from a notebook user as the training loop's samples, and architectures named the way such a user would.

The training loop batches uint8 samples (scaled to [0, 1] one batch at a time). :class:`ArrayScaler` turns
uint8 arrays, floats in [0, 1] and floats in any other range (min-max scaled with the training data's range)
into that form (signal windows ``N×C×L`` stay float32: :class:`FloatWindows`); :func:`check_images` and
:func:`check_signals` are the anomaly detector's stricter checks; :func:`find_arch` accepts ``"auto"``, a spec
dict, an archs file, or the name of a shipped arch.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..arch.auto import AUTO, auto_spec, is_auto
from ..arch import load_arch_file, resolve_arch_file, resolve_spec, select_arch, shipped_arch_files
from ..errors import NetbuilderError


def as_array(X: Any, name: str = "X") -> np.ndarray:
    """``X`` as a NumPy array of samples (torch tensors and lists included): 2-D or more, finite, not empty."""
    if hasattr(X, "detach"):
        X = X.detach().cpu().numpy()
    arr = np.asarray(X)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise NetbuilderError(f"{name}: expected numbers, got dtype {arr.dtype}")
    if arr.ndim < 2:
        raise NetbuilderError(f"{name}: expected samples N×D, N×H×W or N×C×H×W, got shape {arr.shape}; "
                              "reshape a single sample with X.reshape(1, -1)")
    if arr.shape[0] == 0 or arr[0].size == 0:
        raise NetbuilderError(f"{name}: no samples (shape {arr.shape})")
    if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        raise NetbuilderError(f"{name}: contains NaN or infinity")
    return arr


@dataclass
class ArrayScaler:
    """How samples map to the loop's uint8: as they are (uint8), ×255 (floats in [0, 1]) or min-max scaled."""

    low: float
    high: float

    @classmethod
    def fit(cls, arr: np.ndarray) -> "ArrayScaler":
        """uint8 data keeps 0..255; floats already in [0, 1] keep that range; others use their own min and max."""
        if arr.dtype == np.uint8:
            return cls(0.0, 255.0)
        lo, hi = float(arr.min()), float(arr.max())
        if lo >= 0.0 and hi <= 1.0:
            return cls(0.0, 1.0)
        return cls(lo, hi if hi > lo else lo + 1.0)

    def transform(self, arr: np.ndarray) -> np.ndarray:
        """uint8 samples; values outside the fitted range are clipped."""
        if arr.dtype == np.uint8 and (self.low, self.high) == (0.0, 255.0):
            return np.ascontiguousarray(arr)
        scaled = (arr.astype(np.float64) - self.low) / (self.high - self.low)
        return np.rint(np.clip(scaled, 0.0, 1.0) * 255.0).astype(np.uint8)


class FloatWindows:
    """Signal windows ``N×C×L`` pass as float32, unscaled (the loop feeds float32 windows as they are; quantising
    them to 256 levels like images would throw away their resolution)."""

    def transform(self, arr: np.ndarray) -> np.ndarray:
        """The windows as contiguous float32."""
        return np.ascontiguousarray(arr, dtype=np.float32)


def is_signal_spec(spec: dict[str, Any]) -> bool:
    """Whether an arch reads signal windows ``[C, L]`` (two input dimensions) rather than images or vectors."""
    return len(spec.get("input_shape") or []) == 2


def check_images(X: Any, name: str = "X") -> np.ndarray:
    """``X`` as uint8 ``N×C×H×W``: uint8 arrays pass, ``N×H×W`` gains a channel axis, floats in [0, 1]
    are scaled by 255 and rounded."""
    if hasattr(X, "detach"):  # a torch tensor
        X = X.detach().cpu().numpy()
    arr = np.asarray(X)
    if arr.ndim == 3:
        arr = arr[:, None]
    if arr.ndim != 4:
        raise NetbuilderError(f"{name} must be images N×C×H×W (or N×H×W), got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise NetbuilderError(f"{name} holds no images")
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)) or arr.min() < 0.0 or arr.max() > 1.0:
            raise NetbuilderError(f"{name}: float images must lie in [0, 1] (uint8 images 0..255 work as they are)")
        return np.rint(arr * 255.0).astype(np.uint8)
    raise NetbuilderError(f"{name}: expected uint8 images 0..255 or floats in [0, 1], got dtype {arr.dtype}")


def check_signals(X: Any, name: str = "X") -> np.ndarray:
    """``X`` as float32 signal windows ``N×C×L`` (finite numbers, as the loaders standardised them)."""
    arr = X.detach().cpu().numpy() if hasattr(X, "detach") else np.asarray(X)
    if arr.ndim != 3:
        raise NetbuilderError(f"{name} must be signal windows N×C×L, got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise NetbuilderError(f"{name} holds no windows")
    if not np.issubdtype(arr.dtype, np.number) or not np.all(np.isfinite(arr)):
        raise NetbuilderError(f"{name}: signal windows must be finite numbers (dtype {arr.dtype})")
    return np.ascontiguousarray(arr, dtype=np.float32)


def sample_shape(arr: np.ndarray, arch_shape: tuple[int, ...] | None) -> tuple[int, ...]:
    """The shape one sample is given to the model in: the arch's own when the sizes agree (so a flat N×64
    array feeds an [1, 8, 8] arch), else the array's (N×H×W gains a channel axis)."""
    shape = tuple(int(v) for v in arr.shape[1:])
    if arch_shape is not None and int(np.prod(shape)) == int(np.prod(arch_shape)):
        return tuple(arch_shape)
    return (1, *shape) if len(shape) == 2 else shape


def find_arch(arch: Any, archs: str | None = None, input_shape: Sequence[int] | None = None,
              n_clusters: int | None = None) -> tuple[dict[str, Any], str | None]:
    """``(spec, source)`` from ``"auto"`` (derived from ``input_shape`` and ``n_clusters``), a spec dict, an arch
    name or index in ``archs``, an archs file (its first arch), or the name of an arch in any shipped archs file."""
    if is_auto(arch) and archs is None and input_shape is not None:
        return auto_spec(input_shape, n_clusters), AUTO
    if isinstance(arch, dict):
        return resolve_spec(arch)[0], None
    if archs is not None:
        path = resolve_arch_file(str(archs))
        return select_arch(load_arch_file(path), arch, source=str(path))[1], str(path)
    if isinstance(arch, (str, Path)) and (str(arch).endswith(".json") or Path(str(arch)).is_file()):
        path = resolve_arch_file(str(arch))
        return load_arch_file(path)[0], str(path)
    names = []
    for file in shipped_arch_files():
        path = resolve_arch_file(Path(file).stem)
        for spec in load_arch_file(path):
            if spec["name"] == arch:
                return spec, str(path)
            names.append(spec["name"])
    raise NetbuilderError(f"Invalid value for argument `arch`. Expected a spec dict, an archs file or the name of "
                          f"a shipped arch ({', '.join(names) or 'none shipped'}). Received arch={arch!r}.")


def raw_rows(images: Any) -> np.ndarray:
    """Samples as flat float32 rows (the raw-input baselines, SCAN's neighbours): uint8 images scaled to [0, 1];
    signal windows as their loader standardised them (dividing those by 255 would only shrink them)."""
    x = np.asarray(images).reshape(len(images), -1)
    return x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
