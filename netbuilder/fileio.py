"""Atomic writes: every output is written to a temporary file in the same directory, then renamed into place.

A crash, a full disk or a kill in the middle of a write therefore leaves either the old file or nothing,
never a half-written file.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _open_anonymous(directory: Path) -> int | None:
    """An unnamed file in ``directory`` (Linux ``O_TMPFILE``), or None where the OS or file system lacks it.

    An unnamed file vanishes with its process, so even SIGKILL in the middle of a write leaves nothing behind.
    """
    flag = getattr(os, "O_TMPFILE", None)
    if flag is None or not os.path.isdir("/proc/self/fd"):
        return None
    try:
        return os.open(directory, flag | os.O_RDWR, 0o666 & ~_umask())
    except OSError:
        return None


def _publish_anonymous(fd: int, path: Path) -> None:
    """Give the unnamed file ``fd`` a temporary name next to ``path``, then rename it onto ``path``."""
    # linkat(..., AT_SYMLINK_FOLLOW) on the /proc magic link; a dir_fd makes Python use linkat rather than link.
    root = os.open("/", os.O_RDONLY)
    try:
        for _ in range(100):
            name = path.parent / f".{path.name}.{os.urandom(4).hex()}.tmp"
            try:
                os.link(f"proc/self/fd/{fd}", os.path.abspath(name), src_dir_fd=root, follow_symlinks=True)
                break
            except FileExistsError:
                continue
        else:  # pragma: no cover - 100 random collisions
            raise FileExistsError(f"{path}: cannot create a temporary name")
    finally:
        os.close(root)
    try:
        os.replace(name, path)
    finally:
        if name.exists():
            name.unlink()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None, *, anonymous: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds.

    ``suffix`` defaults to the target's suffix (some writers, e.g. matplotlib, pick a format from it).
    With ``anonymous`` (and no ``suffix``), the temporary file is unnamed while it is written where the
    OS allows it (``/proc/self/fd/N``), so a process killed mid-write leaves no temporary file either.
    """
    path = Path(path)
    if not _writer():
        # Another rank of a torch.distributed run: rank 0 writes the real file; this one writes nowhere.
        with tempfile.TemporaryDirectory(prefix="netbuilder-rank-") as scratch:
            yield Path(scratch) / path.name
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = _open_anonymous(path.parent) if anonymous and suffix is None else None
    if fd is not None:
        try:
            yield Path(f"/proc/self/fd/{fd}")
            _publish_anonymous(fd, path)
        finally:
            os.close(fd)
        return
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=(path.suffix if suffix is None else suffix) + ".tmp",
                               dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600 files; outputs should get the usual permissions.
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def remove_stale_temporaries(directory: str | os.PathLike) -> list[Path]:
    """Delete the ``.<name>.*.tmp`` files a killed writer left in ``directory`` (call it under the stage lock)."""
    removed = []
    d = Path(directory)
    if not d.is_dir():
        return removed
    for p in d.glob(".*.tmp"):
        try:
            p.unlink()
            removed.append(p)
        except OSError:
            pass
    return removed


def _writer() -> bool:
    """Whether this process writes outputs: always, except on ranks other than 0 of a distributed run."""
    from . import distributed

    return distributed.is_main()


def remove(path: str | os.PathLike) -> None:
    """Delete ``path`` if it exists (only in the writing process, like every write here)."""
    if _writer():
        Path(path).unlink(missing_ok=True)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    if not _writer():
        return
    with atomic_path(path, anonymous=True) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def write_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write a NumPy array as ``.npy`` atomically."""
    if not _writer():
        return
    with atomic_path(path, anonymous=True) as tmp:
        # Through a file handle: np.save(path) would append ".npy" to the temporary name.
        with open(tmp, "wb") as fh:
            np.save(fh, array, allow_pickle=False)
            fh.flush()
            os.fsync(fh.fileno())


def write_with(path: str | os.PathLike, writer: Callable[[Path], None], suffix: str | None = None) -> None:
    """Call ``writer(tmp_path)`` and move the result onto ``path`` atomically.

    Without ``suffix`` the temporary file is unnamed while written (nothing is left behind even on SIGKILL);
    pass ``suffix`` for writers that pick a format from the file name.
    """
    if not _writer():
        return
    with atomic_path(path, suffix=suffix, anonymous=suffix is None) as tmp:
        writer(tmp)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")
