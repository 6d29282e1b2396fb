"""Device selection and seeding."""
from __future__ import annotations

import contextlib
import os
import random
from typing import Iterator

import numpy as np
import torch

from ..errors import NetbuilderError


def resolve_device(name: str = "auto") -> torch.device:
    """Map ``auto|cpu|cuda|cuda:N|mps`` to a :class:`torch.device`; ``auto`` prefers CUDA, then MPS, then CPU.

    Under torchrun, ``auto`` and ``cuda`` mean this rank's GPU (``cuda:LOCAL_RANK``).
    """
    from .. import distributed

    name = (name or "auto").lower()
    if name in ("auto", "cuda") and torch.cuda.is_available() and distributed.active():
        return torch.device(f"cuda:{distributed.local_rank()}")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise NetbuilderError(f"invalid device '{name}'; expected auto, cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise NetbuilderError(f"device '{name}' requested but CUDA is not available; use --device cpu or auto")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise NetbuilderError(f"device '{name}' requested but MPS is not available; use --device cpu or auto")
    return dev


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch so that CPU runs repeat exactly."""
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed as :func:`seed_everything` inside the block and restore the caller's random states after it, so an
    estimator's ``fit`` repeats exactly without changing global random state behind the caller's back."""
    py, np_state, torch_state = random.getstate(), np.random.get_state(), torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    try:
        seed_everything(seed)
        yield
    finally:
        random.setstate(py)
        np.random.set_state(np_state)
        torch.set_rng_state(torch_state)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)
