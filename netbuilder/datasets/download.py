"""Download a file from a list of mirrors: stream to a temporary file, verify, then rename into place.

A failed, partial or mismatching download leaves nothing behind (the temporary file is removed), and the
error says where to put the file by hand.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Sequence

from ..errors import DatasetError
from ..fileio import atomic_path

MIRROR_ENV = "NETBUILDER_MIRROR"
TIMEOUT_S = 60.0
_CHUNK = 1 << 16


class _Failed(Exception):
    """One mirror did not deliver a good file."""


def mirror_urls(dataset_id: str, filename: str, bases: Sequence[str]) -> list[str]:
    """The URLs to try for ``filename``.

    If ``$NETBUILDER_MIRROR`` is set (comma-separated base URLs) only those are tried, as
    ``<base>/<dataset_id>/<filename>``: an offline site points it at a local copy instead of waiting for the
    public mirrors to time out. Otherwise ``<base>/<filename>`` for each of the dataset's own ``bases``.
    """
    env = os.environ.get(MIRROR_ENV, "").strip()
    if env:
        return [f"{b.strip().rstrip('/')}/{dataset_id}/{filename}" for b in env.split(",") if b.strip()]
    return [f"{b.rstrip('/')}/{filename}" for b in bases]


def _describe(sha256: str | None, md5: str | None) -> str:
    if sha256:
        return f"sha256 {sha256}"
    if md5:
        return f"md5 {md5}"
    return "no published checksum"


def _fetch(url: str, tmp: Path, label: str, progress: bool) -> None:
    from tqdm import tqdm

    req = urllib.request.Request(url, headers={"User-Agent": "netbuilder"})
    with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp, open(tmp, "wb") as fh:
        length = resp.headers.get("Content-Length")
        total = int(length) if length and length.strip().isdigit() else None
        got = 0
        with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=label, disable=not progress,
                  leave=False) as bar:
            while chunk := resp.read(_CHUNK):
                fh.write(chunk)
                got += len(chunk)
                bar.update(len(chunk))
        if total is not None and got != total:
            raise _Failed(f"truncated: got {got} of {total} bytes")
        if got == 0:
            raise _Failed("empty response")
        fh.flush()
        os.fsync(fh.fileno())


def _check(tmp: Path, sha256: str | None, md5: str | None) -> None:
    for algorithm, expected in (("sha256", sha256), ("md5", md5)):
        if expected is None:
            continue
        h = hashlib.new(algorithm)
        with open(tmp, "rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
        if h.hexdigest() != expected.lower():
            raise _Failed(f"{algorithm} mismatch (expected {expected}, got {h.hexdigest()})")


def download(url_list: str | Sequence[str], dest: str | Path, sha256: str | None = None, md5: str | None = None,
             progress: bool = True) -> Path:
    """Fetch ``dest`` from the first URL in ``url_list`` that delivers a complete file with the right checksum.

    The data goes to a temporary file in ``dest``'s folder, renamed onto ``dest`` only after it checked out
    (length against Content-Length, then sha256 and/or md5 when known). On failure no file is left and
    :class:`DatasetError` names the file, each URL's reason, the expected checksum and where to place the
    file by hand.
    """
    dest = Path(dest)
    urls = [url_list] if isinstance(url_list, str) else list(url_list)
    created_dir = not dest.parent.exists()
    reasons: list[str] = []
    for url in urls:
        try:
            with atomic_path(dest) as tmp:
                _fetch(url, tmp, dest.name, progress)
                _check(tmp, sha256, md5)
            return dest
        except urllib.error.HTTPError as exc:
            reasons.append(f"{url}: HTTP {exc.code} {exc.reason}")
        except urllib.error.URLError as exc:
            reasons.append(f"{url}: {exc.reason}")
        except (_Failed, OSError, http.client.HTTPException, ValueError) as exc:
            reason = str(exc) or type(exc).__name__
            if isinstance(exc, http.client.IncompleteRead):
                reason = f"truncated: connection closed after {len(exc.partial)} more bytes"
            reasons.append(f"{url}: {reason}")
    if created_dir:
        try:  # a folder made only for this download goes too, when nothing else landed in it
            dest.parent.rmdir()
        except OSError:
            pass
    tried = "; ".join(reasons) if reasons else "no URL to try"
    raise DatasetError(f"could not download {dest.name} ({tried}); place the file by hand at {dest} "
                       f"({_describe(sha256, md5)})")
