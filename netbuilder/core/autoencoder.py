"""Fit an autoencoder on an array, in memory: the reconstruction training every entry point shares."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from ..arch import build_autoencoder
from ..errors import StageError
from ..train import LoopConfig, RunLog, TrainResult, train
from ..train.checkpoint import check_resume_identity
from .losses import recon_fn, reconstruction_loss


def loop_config(hp: dict[str, Any], seed: int, progress: bool | None) -> LoopConfig:
    """The training loop's configuration from resolved (already checked) settings."""
    return LoopConfig(epochs=int(hp["epochs"]), batch_size=int(hp["batch_size"]), lr=float(hp["lr"]),
                      optimizer=hp["optimizer"], momentum=float(hp["momentum"]),
                      weight_decay=float(hp["weight_decay"]), schedule=hp["schedule"], seed=seed,
                      augment=bool(hp["augment"]), progress=progress, amp=bool(hp["amp"]),
                      checkpoint_every=int(hp["checkpoint_every"]), drop_last=bool(hp["drop_last"]))


def build_model(spec: dict[str, Any], input_shape: tuple[int, ...], source: str | None = None) -> nn.Module:
    """The autoencoder of ``spec`` for samples of ``input_shape``, with build failures as one-line errors (the
    builder itself refuses absurd sizes before allocating)."""
    name = spec.get("name")
    where = f"{source}: " if source else ""
    try:
        return build_autoencoder(spec, input_shape=tuple(input_shape), source=source)
    except (MemoryError, OverflowError) as exc:
        raise StageError(f"{where}arch '{name}' is too large to build ({type(exc).__name__})") from None
    except (RuntimeError, TypeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise StageError(f"{where}cannot build arch '{name}' ({first})") from None


def fit_autoencoder(model: nn.Module, images: np.ndarray | torch.Tensor, hp: dict[str, Any], *, seed: int,
                    device: torch.device, progress: bool | None = None, log: RunLog | None = None,
                    desc: str = "pretrain", on_epoch_end: Callable[[int], dict[str, Any] | None] | None = None,
                    checkpoint: str | Path | None = None, resume: bool = False,
                    identity: dict[str, Any] | None = None) -> TrainResult:
    """Train ``model`` on reconstructing ``images`` with the resolved pretraining settings ``hp``.

    With ``checkpoint`` the loop saves its state there (and ``identity``, which a resumed run must match).
    """
    rec = reconstruction_loss(hp["recon_loss"])
    return train(model, images, recon_fn(model, rec), loop_config(hp, seed, progress), device=device, log=log,
                 desc=desc, on_epoch_end=on_epoch_end, checkpoint=checkpoint, resume=resume,
                 extra_state=(lambda: {"identity": identity}) if checkpoint is not None else None,
                 load_extra_state=(lambda extra: check_resume_identity(extra.get("identity"), identity or {},
                                                                       checkpoint)))
