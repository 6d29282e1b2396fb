"""Where datasets live and where caches may be written."""
from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

ENV_DATA = "NETBUILDER_DATA"
DEFAULT_DATA_DIR = "datasets"


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The data root: ``data_dir`` if given, else ``$NETBUILDER_DATA``, else ``./datasets``.

    Each registered dataset lives in ``<root>/<lowercase id>/`` (e.g. ``<root>/mnist/``).
    """
    if data_dir is not None and str(data_dir) != "":
        return Path(data_dir).expanduser().absolute()
    env = os.environ.get(ENV_DATA, "").strip()
    if env:
        return Path(env).expanduser().absolute()
    return Path(DEFAULT_DATA_DIR).absolute()


def is_writable_dir(path: Path) -> bool:
    """Whether we may write into ``path`` (created if missing and its parent allows it).

    Besides ``os.access`` this honours a directory whose mode has no write bit at all (``r-x``): root
    ignores permissions, but such a folder is meant to be read-only (shared data) and must stay untouched.
    """
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            return False
        probe = probe.parent
    if not probe.is_dir():
        return False
    mode = probe.stat().st_mode
    if not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        return False
    return os.access(probe, os.W_OK)


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/netbuilder`` or ``~/.cache/netbuilder``: caches for data in read-only places."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "netbuilder"


def cache_dir_for(data_path: Path, name: str) -> Path | None:
    """A writable cache folder for data at ``data_path``: ``data_path/name`` if allowed, else one in the
    user cache keyed by the data's absolute path; ``None`` if neither can be written."""
    local = data_path / name
    if is_writable_dir(local):
        return local
    key = hashlib.sha256(str(data_path.absolute()).encode("utf-8")).hexdigest()[:16]
    fallback = user_cache_dir() / "folders" / key
    if is_writable_dir(fallback):
        return fallback
    return None


def located_path(kind: str, location: str | os.PathLike, split: str, *, folder: bool) -> tuple[Path, str]:
    """``(absolute path, dataset name)`` of a dataset given by location (``folder:PATH``, ``series:PATH``); one-line
    errors when the path is missing or another split than ``all`` is asked for (such data has no splits)."""
    from ..errors import DatasetError

    path = Path(location).expanduser().resolve()
    name = f"{kind}:{path}"
    if not (path.is_dir() if folder else path.is_file()):
        raise DatasetError(f"{name}: no such {'folder' if folder else 'file'}")
    if split != "all":
        raise DatasetError(f"{name}: a {kind} dataset has no '{split}' split (only 'all')")
    return path, name
