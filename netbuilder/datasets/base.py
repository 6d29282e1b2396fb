"""The :class:`Dataset` record every loader returns, and the per-batch conversion to float.

Two kinds of samples are held: images as uint8 ``N×C×H×W`` (scaled to ``[0, 1]`` one batch at a time) and
signal windows as float32 ``N×C×L`` (already standardised by their loader, so they pass through unchanged).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..errors import DatasetError
from .checksum import derived_fingerprint
from .signals import Standardizer

if TYPE_CHECKING:  # torch is heavy; it is imported only when a batch is actually converted
    import torch


@dataclass(eq=False)  # arrays inside: compare explicitly, not with ==
class Dataset:
    """Samples plus what is known about them: images as uint8 ``N×C×H×W``, or signals as float32 ``N×C×L``.

    Images stay uint8 (a float32 copy of MNIST would be 4× larger); convert per batch with :func:`to_float`.
    They may be a read-only ``np.memmap`` for folder datasets larger than memory likes. Signal windows are
    float32 already standardised per channel with ``mean`` and ``std`` (shape ``(C,)``, fitted on the
    training / normal part only), kept here so that a model can save them and standardise new data the same
    way; both are ``None`` for images.
    """

    name: str
    images: np.ndarray
    labels: np.ndarray | None
    class_names: list[str] | None
    fingerprint: str
    source: str
    split: str = "all"
    # Filled by loaders that know the file of each image (folders, COIL-20); empty otherwise.
    files: list[str] = field(default_factory=list, repr=False)
    # Per-channel standardisation of signal windows (float32, shape (C,)); None for images.
    mean: np.ndarray | None = field(default=None, repr=False)
    std: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        image = self.images.dtype == np.uint8 and self.images.ndim == 4
        signal = self.images.dtype == np.float32 and self.images.ndim == 3
        if not (image or signal):
            raise DatasetError(f"{self.name}: samples must be uint8 N×C×H×W images or float32 N×C×L signals, got "
                               f"{self.images.dtype} with shape {self.images.shape}")
        for stat in ("mean", "std"):
            value = getattr(self, stat)
            if value is not None:
                value = np.asarray(value, dtype=np.float32)
                if value.shape != (self.images.shape[1],):
                    raise DatasetError(f"{self.name}: {stat} must hold one value per channel "
                                       f"({self.images.shape[1]}), got shape {value.shape}")
                setattr(self, stat, value)
        if not self.images.flags.c_contiguous:
            self.images = np.ascontiguousarray(self.images)
        if self.labels is not None:
            self.labels = np.asarray(self.labels, dtype=np.int64)
            if self.labels.shape != (len(self.images),):
                raise DatasetError(f"{self.name}: {len(self.images)} images but labels of shape {self.labels.shape}")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def shape(self) -> tuple[int, ...]:
        """``(C, H, W)`` of one image, or ``(C, L)`` of one signal window."""
        return tuple(int(d) for d in self.images.shape[1:])

    @property
    def is_signal(self) -> bool:
        """Whether the samples are float32 signal windows ``N×C×L`` rather than uint8 images."""
        return self.images.ndim == 3

    @property
    def n_classes(self) -> int | None:
        """Number of classes: from ``class_names`` when known, else the distinct labels, else ``None``."""
        if self.class_names is not None:
            return len(self.class_names)
        if self.labels is not None:
            return int(np.unique(self.labels).size)
        return None

    def subset(self, indices: Sequence[int] | np.ndarray | slice) -> "Dataset":
        """A new dataset holding only ``indices`` (a copy: the result never aliases a memmap)."""
        if isinstance(indices, slice):
            indices = np.arange(len(self))[indices]
        idx = np.asarray(indices)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        idx = idx.astype(np.int64, copy=False)
        return Dataset(
            name=self.name,
            images=np.ascontiguousarray(self.images[idx]),
            labels=None if self.labels is None else self.labels[idx],
            class_names=None if self.class_names is None else list(self.class_names),
            fingerprint=self.fingerprint,
            source=self.source,
            split=self.split,
            files=[self.files[i] for i in idx] if self.files else [],
            mean=self.mean,
            std=self.std,
        )


    def restandardized(self, mean: np.ndarray, std: np.ndarray) -> "Dataset":
        """The same signal windows in another per-channel standardisation: this dataset's own (``self.mean``,
        ``self.std``) is undone and ``(x - mean) / std`` applied, so that new data are scaled exactly like the
        data a model was fitted on (fitting on the new data would standardise an offset fault away)."""
        if self.mean is None or self.std is None:
            raise DatasetError(f"{self.name}: images carry no standardisation to replace")
        target = Standardizer(mean=np.asarray(mean, dtype=np.float32), std=np.asarray(std, dtype=np.float32))
        if target.mean.shape != self.mean.shape or target.std.shape != self.std.shape:
            raise DatasetError(f"{self.name}: has {len(self.mean)} channels; the saved standardisation has "
                               f"{target.mean.size}")
        raw = self.images.astype(np.float64) * self.std[:, None] + self.mean[:, None]
        step = "restandardised with mean " + ",".join(f"{v:.9g}" for v in target.mean) + " std " + \
            ",".join(f"{v:.9g}" for v in target.std)
        return replace(self, images=target.apply(raw), mean=target.mean, std=target.std,
                       fingerprint=derived_fingerprint(self.fingerprint, step))


def to_float(batch_uint8: "torch.Tensor | np.ndarray") -> "torch.Tensor":
    """Convert a uint8 batch to float32 in ``[0, 1]`` (divide by 255); a float32 batch of signal windows is
    returned as a float32 copy, unscaled. Meant for one batch at a time."""
    import torch

    if isinstance(batch_uint8, np.ndarray):
        # np.memmap / read-only arrays: torch.from_numpy warns on non-writable memory, so copy the (small) batch.
        arr = batch_uint8 if batch_uint8.flags.writeable else np.array(batch_uint8)
        batch_uint8 = torch.from_numpy(np.ascontiguousarray(arr))
    if batch_uint8.dtype == torch.float32 and batch_uint8.dim() == 3:
        # Signals are standardised by their loader; a copy, so that nothing downstream writes into the dataset.
        return batch_uint8.clone()
    if batch_uint8.dtype != torch.uint8:
        raise DatasetError(f"to_float expects a uint8 batch (images) or a float32 N×C×L batch (signals), got "
                           f"{batch_uint8.dtype} of shape {tuple(batch_uint8.shape)}")
    return batch_uint8.to(torch.float32).div_(255.0)
