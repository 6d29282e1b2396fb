"""Reconstruction losses (per-batch means), by the name the ``recon_loss`` setting takes."""
from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F

from ..errors import NetbuilderError

ReconLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _bce(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    # Outside autocast and in float32: BCE is unsafe in float16 (autocast refuses it on CUDA).
    with torch.autocast(device_type=x.device.type, enabled=False):
        return F.binary_cross_entropy(x_hat.float().clamp(1e-6, 1 - 1e-6), x.float())


RECON_LOSSES: dict[str, ReconLoss] = {"mse": F.mse_loss, "bce": _bce}


def reconstruction_loss(kind: str) -> ReconLoss:
    """Per-batch mean reconstruction loss: ``mse`` or ``bce`` (the latter expects a sigmoid output)."""
    try:
        return RECON_LOSSES[kind]
    except KeyError:
        raise NetbuilderError(f"Invalid value for argument `recon_loss`. Expected one of {', '.join(RECON_LOSSES)}. "
                              f"Received recon_loss={kind!r}.") from None


def recon_fn(model: torch.nn.Module, rec: ReconLoss) -> Callable[[torch.Tensor, Any], dict[str, torch.Tensor]]:
    """The training loop's loss function for plain reconstruction."""
    def loss_fn(x: torch.Tensor, idx: Any) -> dict[str, torch.Tensor]:
        x_hat, _ = model(x)
        return {"loss": rec(x_hat, x)}
    return loss_fn
