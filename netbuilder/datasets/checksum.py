"""File hashing, checksum verification and dataset fingerprints."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterable

from ..errors import DatasetError

_CHUNK = 1 << 20


def file_digest(path: str | Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB chunks."""
    h = hashlib.new(algorithm)
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                h.update(chunk)
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    return h.hexdigest()


def verify_file(path: str | Path, sha256: str | None = None, md5: str | None = None, hint: str = "") -> str:
    """Check ``path`` against the known checksums and return its sha256 (needed for the fingerprint anyway).

    Raises :class:`DatasetError` naming the file and the expected checksum on a mismatch. ``hint`` is
    appended to the message (e.g. what to do about it).
    """
    actual = file_digest(path, "sha256")
    if sha256 is not None and actual != sha256.lower():
        raise DatasetError(f"{path}: sha256 mismatch (expected {sha256}, got {actual}); the file is truncated "
                           f"or corrupt{hint}")
    if md5 is not None:
        actual_md5 = file_digest(path, "md5")
        if actual_md5 != md5.lower():
            raise DatasetError(f"{path}: md5 mismatch (expected {md5}, got {actual_md5}); the file is truncated "
                               f"or corrupt{hint}")
    return actual


def fingerprint(entries: Iterable[tuple[str, str]]) -> str:
    """sha256 of a ``sha256sum``-style listing (``<sha256>  <name>`` lines, sorted by name).

    Only names and contents count, never paths or mtimes, so the same files give the same fingerprint
    wherever they live.
    """
    listing = "".join(f"{digest}  {name}\n" for name, digest in sorted(entries))
    return hashlib.sha256(listing.encode("utf-8")).hexdigest()


def derived_fingerprint(source_fingerprint: str, step: str) -> str:
    """The fingerprint of data made from the source by ``step`` (one line saying what was done, with every
    parameter): different from the source's, so that outputs of one preparation are never taken for another's."""
    return hashlib.sha256(f"{source_fingerprint}\n{step}\n".encode("utf-8")).hexdigest()


def resized_fingerprint(source_fingerprint: str, size: tuple[int, int]) -> str:
    """The fingerprint of data resized to ``size`` = (H, W) (unchanged since before :func:`derived_fingerprint`)."""
    return derived_fingerprint(source_fingerprint, f"resize {size[0]}x{size[1]}")
