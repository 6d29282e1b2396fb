"""Batched inference over a whole uint8 image array (float conversion happens per batch)."""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn


def to_float_batch(batch: torch.Tensor, device: torch.device, channels_last: bool = False) -> torch.Tensor:
    """uint8 N×C×H×W (or N×D) → float32 in [0, 1] on ``device``."""
    x = batch.to(device, non_blocking=True).float().div_(255.0)
    if channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def as_uint8_tensor(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Wrap a uint8 array as a tensor without copying when possible."""
    if isinstance(images, torch.Tensor):
        return images
    arr = np.asarray(images)
    if not arr.flags.writeable:
        # torch warns on read-only memory (e.g. a memmap); the array is never written through this view.
        arr = np.array(arr, copy=True)
    return torch.from_numpy(arr)


@torch.no_grad()
def map_batches(fn: Callable[[torch.Tensor], torch.Tensor], images: np.ndarray | torch.Tensor,
                device: torch.device, batch_size: int = 1024, channels_last: bool = False) -> np.ndarray:
    """Apply ``fn`` to float batches of ``images`` and stack the results as a NumPy array."""
    data = as_uint8_tensor(images)
    outs = []
    for start in range(0, data.shape[0], batch_size):
        x = to_float_batch(data[start:start + batch_size], device, channels_last)
        outs.append(fn(x).float().cpu())
    if not outs:
        return np.zeros((0,), dtype=np.float32)
    return torch.cat(outs).numpy()


def encode_all(model: nn.Module, images: np.ndarray | torch.Tensor, device: torch.device | str = "cpu",
               batch_size: int = 1024) -> np.ndarray:
    """Latent codes (N × code_dim, float32) of every image, in eval mode."""
    device = torch.device(device)
    was_training = model.training
    # Channels-last speeds up CPU convolutions 1.6-1.9x here; the weights are put back afterwards.
    convs = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    cl = device.type == "cpu" and bool(convs)
    # Convert only a contiguous model, and convert back only what was converted: the training loop may be
    # holding the model in channels-last, and must get it back exactly as it was.
    convert = cl and convs[0].weight.is_contiguous() and convs[0].weight.dim() == 4 and \
        not convs[0].weight.is_contiguous(memory_format=torch.channels_last)
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
