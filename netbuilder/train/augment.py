"""Cheap on-the-fly image augmentation for self-supervised training (random shifts and small rotations)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def random_affine(x: torch.Tensor, generator: torch.Generator, max_shift: float = 0.1,
                  max_degrees: float = 10.0) -> torch.Tensor:
    """Randomly shift (fraction of the size) and rotate each image of an N×C×H×W batch.

    DEC-DA style augmentation; the random numbers come from ``generator`` so a resumed run repeats them.
    """
    if x.dim() != 4:
        return x
    n = x.shape[0]
    r = torch.rand((n, 3), generator=generator).to(x.device)
    angle = (r[:, 0] * 2 - 1) * math.radians(max_degrees)
    tx = (r[:, 1] * 2 - 1) * max_shift * 2  # affine_grid coordinates span [-1, 1], i.e. 2 units per image
    ty = (r[:, 2] * 2 - 1) * max_shift * 2
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    out = F.grid_sample(x.contiguous(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.contiguous(memory_format=torch.channels_last) if x.is_contiguous(
        memory_format=torch.channels_last) and not x.is_contiguous() else out
