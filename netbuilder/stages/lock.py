"""One writer per stage directory: ``<stage_dir>/.lock`` holds the writer's pid while a stage runs.

The lock is created with ``O_CREAT | O_EXCL`` (atomic on local file systems). A second run on the same
stage directory gets a one-line :class:`StageError`; a lock left by a process that no longer exists (a
killed run) is taken over with a warning. Temporary files a killed writer left behind are removed when the
lock is taken.
"""
from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Callable, Iterator

from .. import distributed
from ..errors import StageError
from ..fileio import remove_stale_temporaries

LOCK_NAME = ".lock"


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return False
    return True


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _try_create(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    except OSError as exc:
        raise StageError(f"{path}: cannot create the lock file ({exc.strerror or exc})") from None
    try:
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
    finally:
        os.close(fd)
    return True


@contextlib.contextmanager
def stage_lock(stage_dir: str | os.PathLike, warn: Callable[[str], None] | None = None) -> Iterator[Path]:
    """Hold ``<stage_dir>/.lock`` for the duration of the block; released in ``finally``.

    Under torch.distributed only rank 0 (the writer) takes the lock, and all ranks meet at a barrier when
    the block completes, so that a following stage on any rank reads the files this one wrote.
    """
    if not distributed.is_main():
        yield Path(stage_dir) / LOCK_NAME
        distributed.barrier()
        return
    with _exclusive(stage_dir, warn) as path:
        yield path
    distributed.barrier()


@contextlib.contextmanager
def _exclusive(stage_dir: str | os.PathLike, warn: Callable[[str], None] | None = None) -> Iterator[Path]:
    stage_dir = Path(stage_dir)
    stage_dir.mkdir(parents=True, exist_ok=True)
    path = stage_dir / LOCK_NAME
    warn = warn or (lambda msg: print(f"warning: {msg}", file=sys.stderr, flush=True))
    for _ in range(3):
        if _try_create(path):
            break
        pid = _read_pid(path)
        if pid is not None and (pid == os.getpid() or _pid_alive(pid)):
            raise StageError(f"{stage_dir} is being written by another netbuilder run (pid {pid}); "
                             f"wait for it or remove {path} if that process is gone")
        if pid is None:
            # Being written this very moment by another run, or torn: give it a moment, then treat as stale.
            import time

            time.sleep(0.2)
            pid = _read_pid(path)
            if pid is not None and _pid_alive(pid):
                raise StageError(f"{stage_dir} is being written by another netbuilder run (pid {pid}); "
                                 f"wait for it or remove {path} if that process is gone")
        warn(f"{path}: taking over a stale lock (pid {pid if pid is not None else '?'} is gone)")
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    else:
        raise StageError(f"{stage_dir}: cannot take the lock {path}; remove it if no netbuilder run is writing there")
    try:
        remove_stale_temporaries(stage_dir)
        yield path
    finally:
        if _read_pid(path) == os.getpid():
            with contextlib.suppress(OSError):
                path.unlink()
