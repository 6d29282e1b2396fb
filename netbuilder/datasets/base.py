"""The :class:`Dataset` record every loader returns, and the per-batch uint8 → float conversion."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..errors import DatasetError

if TYPE_CHECKING:  # torch is heavy; it is imported only when a batch is actually converted
    import torch


@dataclass(eq=False)  # arrays inside: compare explicitly, not with ==
class Dataset:
    """Images as uint8 ``N×C×H×W`` plus what is known about them.

    ``images`` stays uint8 (a float32 copy of MNIST would be 4× larger); convert per batch with
    :func:`to_float`. It may be a read-only ``np.memmap`` for folder datasets larger than memory likes.
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

    def __post_init__(self) -> None:
        if self.images.dtype != np.uint8 or self.images.ndim != 4:
            raise DatasetError(f"{self.name}: images must be uint8 N×C×H×W, got {self.images.dtype} "
                               f"with shape {self.images.shape}")
        if not self.images.flags.c_contiguous:
            self.images = np.ascontiguousarray(self.images)
        if self.labels is not None:
            self.labels = np.asarray(self.labels, dtype=np.int64)
            if self.labels.shape != (len(self.images),):
                raise DatasetError(f"{self.name}: {len(self.images)} images but labels of shape {self.labels.shape}")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image."""
        c, h, w = self.images.shape[1:]
        return int(c), int(h), int(w)

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
        )


def to_float(batch_uint8: "torch.Tensor | np.ndarray") -> "torch.Tensor":
    """Convert a uint8 batch to float32 in ``[0, 1]`` (divide by 255). Meant for one batch at a time."""
    import torch

    if isinstance(batch_uint8, np.ndarray):
        # np.memmap / read-only arrays: torch.from_numpy warns on non-writable memory, so copy the (small) batch.
        arr = batch_uint8 if batch_uint8.flags.writeable else np.array(batch_uint8)
        batch_uint8 = torch.from_numpy(np.ascontiguousarray(arr))
    if batch_uint8.dtype != torch.uint8:
        raise DatasetError(f"to_float expects a uint8 batch, got {batch_uint8.dtype}")
    return batch_uint8.to(torch.float32).div_(255.0)
