"""Fit an autoencoder on an array, in memory: the reconstruction training every entry point shares."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from ..arch import build_autoencoder
from ..errors import StageError
from ..train import LoopConfig, RunLog, TrainResult, seeded, train
from ..train.checkpoint import check_resume_identity
from .losses import recon_fn, reconstruction_loss


def loop_config(hp: dict[str, Any], seed: int, progress: bool | None) -> LoopConfig:
    """The training loop's configuration from resolved (already checked) settings."""
    return LoopConfig(epochs=int(hp["epochs"]), batch_size=int(hp["batch_size"]), lr=float(hp["lr"]),
                      optimizer=hp["optimizer"], momentum=float(hp["momentum"]),
                      weight_decay=float(hp["weight_decay"]), schedule=hp["schedule"], seed=seed,
                      augment=bool(hp["augment"]), progress=progress, amp=bool(hp["amp"]),
                      checkpoint_every=int(hp["checkpoint_every"]), drop_last=bool(hp["drop_last"]),
                      min_steps=int(hp.get("min_steps", 0)), max_steps=int(hp.get("max_steps", 0)))


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


class MeanReconstruction(nn.Module):
    """An ensemble of autoencoders of one arch, trained from different seeds: its reconstruction is the mean of
    its members' (which varies less from seed to seed than any one member's); its code is the first member's."""

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x_hat, z)``: the mean reconstruction and the first member's code."""
        outs = [m(x) for m in self.members]
        return torch.stack([o[0] for o in outs]).mean(dim=0), outs[0][1]


def member_seed(seed: int, member: int) -> int:
    """The seed of ensemble member ``member`` (member 0 keeps ``seed``, so an ensemble of one is the plain run)."""
    return seed + 1000 * member


def fit_ensemble(spec: dict[str, Any], images: np.ndarray, hp: dict[str, Any], *, size: int, seed: int,
                 device: torch.device, progress: bool | None = None, log: RunLog | None = None,
                 desc: str = "pretrain") -> nn.Module:
    """Build and train ``size`` autoencoders of ``spec`` on ``images`` (seeds from :func:`member_seed`); returns
    the one model when ``size`` is 1, else their :class:`MeanReconstruction` (all in eval mode)."""
    if size < 1:
        raise StageError(f"Invalid value for argument `ensemble`. Expected an integer >= 1. "
                         f"Received ensemble={size!r}.")
    members = []
    for m in range(size):
        s = member_seed(seed, m)
        with seeded(s):
            model = build_model(spec, tuple(images.shape[1:]))
            fit_autoencoder(model, images, hp, seed=s, device=device, progress=progress, log=log,
                            desc=desc if size == 1 else f"{desc} {m + 1}/{size}")
        members.append(model.eval())
    return members[0] if size == 1 else MeanReconstruction(members).eval()


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
