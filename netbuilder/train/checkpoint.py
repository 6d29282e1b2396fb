"""Training checkpoints: model, optimizer, scheduler, RNG and stage state, loadable without executing code."""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
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
        "rng": _other_rng_states(),
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
        _restore_other_rng_states(state.get("rng"))
    except (RuntimeError, KeyError, EOFError, OSError, ValueError, TypeError, AttributeError,
            IndexError, NotImplementedError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NetbuilderError(f"{path}: cannot resume from this checkpoint ({first}); delete it to start over") from None
    except Exception as exc:  # unpickling errors of a corrupt file come in many types
        raise NetbuilderError(f"{path}: cannot resume from this checkpoint (corrupt file: {type(exc).__name__}); "
                              "delete it to start over") from None
    if not isinstance(state, dict) or "epoch" not in state:
        raise NetbuilderError(f"{path}: not a netbuilder checkpoint; delete it to start over")
    return state


def _other_rng_states() -> dict[str, Any]:
    """Python's, NumPy's global and (when present) CUDA's RNG states, as tensors and plain containers."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, py_gauss = random.getstate()
    out: dict[str, Any] = {
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "python": {"version": version, "internal": list(internal), "gauss": py_gauss},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def _restore_other_rng_states(rng: dict[str, Any] | None) -> None:
    if not rng:  # checkpoints written before these states were saved
        return
    npst = rng["numpy"]
    np.random.set_state((npst["kind"], npst["keys"].numpy().astype(np.uint32), npst["pos"], npst["has_gauss"],
                         npst["gauss"]))
    py = rng["python"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss"]))
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])


def check_resume_identity(saved: dict[str, Any] | None, expected: dict[str, Any], checkpoint: Any) -> None:
    """Refuse to resume a checkpoint made with another dataset, arch, seed or hyperparameters."""
    from ..errors import StageError

    if not saved:
        return  # checkpoints written before identities were recorded
    for key, what in (("dataset_fingerprint", "different data"), ("arch_spec", "a different arch"),
                      ("seed", "a different --seed"), ("hyperparameters", "different hyperparameters")):
        if key in saved and saved[key] != expected.get(key):
            detail = ""
            if key == "hyperparameters" and isinstance(saved[key], dict):
                diff = sorted(k for k in set(saved[key]) | set(expected[key])
                              if saved[key].get(k) != expected[key].get(k))
                detail = f" ({', '.join(f'{k}: {saved[key].get(k)!r} vs {expected[key].get(k)!r}' for k in diff[:3])})"
            elif key == "seed":
                detail = f" ({saved[key]} vs {expected[key]})"
            raise StageError(f"{checkpoint}: this checkpoint was made with {what}{detail}; "
                             "run with the same options, or without --resume to start over")
