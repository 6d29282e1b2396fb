"""Saving and loading what stages hand to each other: weights (safetensors), codes, manifests."""
from __future__ import annotations

import datetime as _dt
import platform
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import StageError
from ..fileio import write_bytes, write_json
from .workspace import MANIFEST


def save_weights(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """Save a state dict as safetensors (loads without executing code), atomically."""
    from safetensors.torch import save

    clean = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    # Serialised in memory, then written through an unnamed temporary file (safetensors' own save_file
    # makes a named temporary file of its own, which a killed run would leave behind).
    write_bytes(path, save(clean))


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    """Read a safetensors file; a missing, truncated or corrupt file is a one-line error naming it."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.exists():
        raise StageError(f"{path}: weight file is missing")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise StageError(f"{path}: cannot read weights ({str(exc).splitlines()[0] if str(exc) else 'corrupt file'})") from None


def load_into(module: nn.Module, tensors: dict[str, torch.Tensor], source: Path) -> None:
    """Load tensors into ``module``, naming the first missing, unexpected or mis-shaped tensor on failure."""
    own = module.state_dict()
    missing = [k for k in own if k not in tensors]
    unexpected = [k for k in tensors if k not in own]
    if missing or unexpected:
        what = f"missing tensor '{missing[0]}'" if missing else f"unexpected tensor '{unexpected[0]}'"
        raise StageError(f"{source}: weights do not match the architecture ({what})")
    for k, v in own.items():
        if tuple(v.shape) != tuple(tensors[k].shape):
            raise StageError(f"{source}: tensor '{k}' has shape {tuple(tensors[k].shape)}, "
                             f"the architecture expects {tuple(v.shape)}")
    module.load_state_dict(tensors)


def load_array(path: Path) -> np.ndarray:
    """Load a ``.npy`` file (no pickles)."""
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise StageError(f"{path}: cannot read array ({exc})") from None


def versions() -> dict[str, str]:
    """Library versions recorded in every manifest."""
    import sklearn
    import scipy

    from .. import __version__

    return {"netbuilder": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "numpy": np.__version__, "scipy": scipy.__version__, "scikit-learn": sklearn.__version__}


def write_manifest(stage_dir: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Write the stage manifest last: its presence marks the stage complete."""
    manifest = {**manifest, "complete": True,
                "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "versions": versions()}
    write_json(stage_dir / MANIFEST, manifest)
    return manifest
