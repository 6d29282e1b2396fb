"""Training checkpoints: model, optimizer, scheduler, RNG and stage state, loadable without executing code."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import NetbuilderError
from ..fileio import write_with


def save_checkpoint(path: str | Path, model: nn.Module, opt: torch.optim.Optimizer, sched: Any, *,
                    epoch: int, steps: int, history: list, extra: dict[str, Any]) -> None:
    """Write a checkpoint atomically (torch format, tensors and plain containers only)."""
    state = {
        "epoch": epoch,
        "steps": steps,
        "history": history,
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict() if sched is not None else None,
        "torch_rng": torch.get_rng_state(),
        "extra": extra,
    }
    write_with(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: str | Path, model: nn.Module, opt: torch.optim.Optimizer, sched: Any) -> dict[str, Any]:
    """Restore a checkpoint into ``model``/``opt``/``sched`` and return the whole state (``weights_only``)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        if sched is not None and state.get("scheduler") is not None:
            sched.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
    except (RuntimeError, KeyError, EOFError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NetbuilderError(f"{path}: cannot resume from this checkpoint ({first}); delete it to start over") from None
    return state
