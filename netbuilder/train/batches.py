"""Batches of a uint8 image array (or a float32 array of signal windows), as float tensors on a device
(conversion happens one batch at a time).

Two kinds of image arrays are served:

* in-memory arrays (NumPy or torch): batches are gathered by index; on CUDA a dataset that fits is moved to
  the GPU once as uint8 (four times smaller than float), otherwise each batch is pinned and copied
  asynchronously;
* memory-mapped arrays (``np.memmap``, e.g. a large ``folder:`` cache): shuffled in windows of contiguous
  chunks so that an epoch reads the file nearly sequentially, and the mapped pages are released as the
  stream moves on, so resident memory stays at about one window however large the file is.

Whole-dataset passes (:func:`map_batches`) are split across ranks under torch.distributed and gathered.
"""
from __future__ import annotations

import mmap
from typing import Callable

import numpy as np
import torch
from torch import nn

from .. import distributed

# Rows of a memory-mapped array read between releases of its mapped pages, in bytes.
STREAM_WINDOW_BYTES = 256 << 20
# Rows per contiguous chunk of the streamed shuffle (a window holds several chunks).
STREAM_CHUNK_BYTES = 32 << 20
# An in-memory dataset up to this size is copied to the GPU once (as uint8).
GPU_RESIDENT_BYTES = 2 << 30


def to_float_batch(batch: torch.Tensor, device: torch.device, channels_last: bool = False) -> torch.Tensor:
    """uint8 N×C×H×W (or N×D) → float32 in [0, 1] on ``device``; float32 signal windows (N×C×L, already
    standardised by their loader) are copied to ``device`` unscaled."""
    if batch.dtype == torch.float32:
        # A copy even on the same device: map_batches hands in views of the dataset itself.
        return batch.to(device, non_blocking=True, copy=True)
    x = batch.to(device, non_blocking=True).float().div_(255.0)
    if channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def is_streamed(images: object) -> bool:
    """Whether ``images`` is a memory-mapped array (served by streaming rather than random access)."""
    return isinstance(images, np.memmap)


def release_pages(images: np.ndarray) -> None:
    """Drop this process's mapping of a memmap's pages (they stay in the page cache; RSS goes down)."""
    mm = getattr(images, "_mmap", None)
    if mm is None or not hasattr(mm, "madvise"):
        return
    try:
        mm.madvise(mmap.MADV_DONTNEED)
    except (OSError, ValueError):  # pragma: no cover - closed map or an OS without madvise
        pass


def as_uint8_tensor(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Wrap an in-memory uint8 array as a tensor without copying when possible."""
    if isinstance(images, torch.Tensor):
        return images
    arr = np.asarray(images)
    if not arr.flags.writeable:
        # torch warns on read-only memory; the array is never written through this view.
        arr = np.array(arr, copy=True)
    return torch.from_numpy(arr)


def subsample(n: int, limit: int, seed: int) -> np.ndarray:
    """A fixed random subset of ``limit`` sorted row indices out of ``n`` (all of them when n <= limit)."""
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))


def take_rows(images: np.ndarray | torch.Tensor, idx: np.ndarray) -> np.ndarray | torch.Tensor:
    """The rows ``idx`` of ``images`` in memory (``images`` itself when ``idx`` is every row in order)."""
    if len(idx) == int(images.shape[0]) and np.array_equal(idx, np.arange(len(idx))):
        return images
    if isinstance(images, torch.Tensor):
        return images[torch.from_numpy(np.asarray(idx, dtype=np.int64))]
    return np.asarray(images[idx])


def _row_bytes(images: np.ndarray | torch.Tensor) -> int:
    return max(1, int(np.prod(images.shape[1:])) * (images.element_size() if isinstance(images, torch.Tensor)
                                                    else images.dtype.itemsize))


class BatchSource:
    """Serves float batches of ``images`` by dataset index, and the shuffled order of an epoch."""

    def __init__(self, images: np.ndarray | torch.Tensor, device: torch.device, channels_last: bool = False) -> None:
        self.device, self.channels_last = device, channels_last
        self.streamed = is_streamed(images)
        self.n = int(images.shape[0])
        self._rows_since_release = 0
        self._window_rows = max(1, STREAM_WINDOW_BYTES // _row_bytes(images))
        self._chunk_rows = max(1, STREAM_CHUNK_BYTES // _row_bytes(images))
        if self.streamed:
            self.array = images
            self.data = None
        else:
            data = as_uint8_tensor(images)
            if device.type == "cuda" and data.numel() * data.element_size() <= GPU_RESIDENT_BYTES:
                data = data.to(device)
            self.data = data

    def order(self, generator: torch.Generator) -> torch.Tensor:
        """The epoch's permutation of ``range(n)``: uniform in memory; for a memmap, chunks in random order,
        shuffled within windows of several chunks."""
        if not self.streamed or self.n <= self._window_rows:
            return torch.randperm(self.n, generator=generator)
        starts = torch.arange(0, self.n, self._chunk_rows)
        chunks = starts[torch.randperm(len(starts), generator=generator)]
        per_window = max(1, self._window_rows // self._chunk_rows)
        out = []
        for w in range(0, len(chunks), per_window):
            rows = torch.cat([torch.arange(int(s), min(int(s) + self._chunk_rows, self.n)) for s in chunks[w:w + per_window]])
            out.append(rows[torch.randperm(len(rows), generator=generator)])
        return torch.cat(out)

    def prepare_index(self, idx: torch.Tensor) -> torch.Tensor:
        """The batch's indices in the order rows will be returned (sorted for a memmap: sequential reads)."""
        return idx.sort().values if self.streamed else idx

    def batch(self, idx: torch.Tensor) -> torch.Tensor:
        """Float rows ``idx`` (as returned by :meth:`prepare_index`) on the device."""
        if self.streamed:
            rows = torch.from_numpy(np.ascontiguousarray(self.array[idx.numpy()]))
            self._rows_since_release += len(idx)
            if self._rows_since_release >= self._window_rows:
                release_pages(self.array)
                self._rows_since_release = 0
        else:
            assert self.data is not None
            rows = self.data[idx.to(self.data.device)]
            if self.device.type == "cuda" and rows.device.type == "cpu":
                rows = rows.pin_memory()
        return to_float_batch(rows, self.device, self.channels_last)

    def close(self) -> None:
        """Release what a stream still maps."""
        if self.streamed:
            release_pages(self.array)


def _rows(images: np.ndarray | torch.Tensor, start: int, stop: int) -> torch.Tensor:
    if isinstance(images, torch.Tensor):
        return images[start:stop]
    block = images[start:stop]
    return torch.from_numpy(np.array(block) if is_streamed(images) or not block.flags.writeable else block)


@torch.no_grad()
def map_batches(fn: Callable[[torch.Tensor], torch.Tensor], images: np.ndarray | torch.Tensor,
                device: torch.device, batch_size: int = 1024, channels_last: bool = False) -> np.ndarray:
    """Apply ``fn`` to float batches of ``images`` and stack the results as a NumPy array.

    Under torch.distributed each rank maps a contiguous block and the blocks are all-gathered, so every
    rank returns the full result.
    """
    n = int(images.shape[0])
    start, stop = distributed.shard_range(n)
    streamed = is_streamed(images)
    window = max(batch_size, STREAM_WINDOW_BYTES // _row_bytes(images))
    outs = []
    for lo in range(start, stop, batch_size):
        x = to_float_batch(_rows(images, lo, min(lo + batch_size, stop)), device, channels_last)
        outs.append(fn(x).float().cpu())
        if streamed and (lo - start) // window != (lo + batch_size - start) // window:
            release_pages(images)
    if streamed:
        release_pages(images)
    local = torch.cat(outs) if outs else None
    if distributed.active():
        if local is None:  # this rank's block is empty: still take part, with a correctly shaped empty block
            probe = fn(to_float_batch(_rows(images, 0, 1), device, channels_last)).float().cpu()
            local = probe[:0]
        local = distributed.gather_rows(local.contiguous())
    if local is None:
        return np.zeros((0,), dtype=np.float32)
    return local.numpy()


def encode_all(model: nn.Module, images: np.ndarray | torch.Tensor, device: torch.device | str = "cpu",
               batch_size: int = 1024) -> np.ndarray:
    """Latent codes (N × code_dim, float32) of every image, in eval mode."""
    device = torch.device(device)
    was_training = model.training
    # Channels-last speeds up CPU convolutions 1.6-1.9x here; the weights are put back afterwards.
    convs = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    cl = device.type == "cpu" and bool(convs)
    # Convert only a model not already in channels-last, and convert back only what was converted: the training
    # loop may be holding the model in channels-last, and must get it back exactly as it was. Every conv is
    # checked: a 1-channel input conv's weight (N×1×k×k) is contiguous in both formats, and judging by it alone
    # left MNIST's conv nets contiguous here (encoding 1.4–1.6× slower, measured with bench/speed.py).
    convert = cl and any(m.weight.dim() == 4 and not m.weight.is_contiguous(memory_format=torch.channels_last)
                         for m in convs)
    model.eval()
    if convert:
        model.to(memory_format=torch.channels_last)
    try:
        return map_batches(model.encode, images, device, batch_size, channels_last=cl).astype(np.float32)
    finally:
        if convert:
            model.to(memory_format=torch.contiguous_format)
        model.train(was_training)


def reconstruct_all(model: nn.Module, images: np.ndarray | torch.Tensor, device: torch.device | str = "cpu",
                    batch_size: int = 1024) -> np.ndarray:
    """Reconstructions (same shape as the images, float32 in the decoder's range), in eval mode."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    try:
        return map_batches(lambda x: model(x)[0], images, device, batch_size).astype(np.float32)
    finally:
        model.train(was_training)
