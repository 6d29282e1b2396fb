"""COIL-20 (processed): 1,440 grayscale 128×128 PNGs, ``obj{K}__{P}.png`` for 20 objects × 72 poses.

Columbia publishes no checksum for its zip, so every PNG is checked against ``coil20.sha256.txt`` shipped
with the package, both after a download and on every load (the hashes double as the fingerprint). A
``coil-20-proc.zip`` placed by hand in ``<root>/coil20/`` is extracted (and kept) instead of downloading.
"""
from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
import zipfile
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from .base import Dataset
from .checksum import fingerprint
from .download import download, mirror_urls
from .images import decode_image
from .paths import is_writable_dir
from .kinds import register_dataset

SUMS_FILE = Path(__file__).with_name("coil20.sha256.txt")
ZIP_NAME = "coil-20-proc.zip"
SUBDIR = "coil-20-proc"
COIL20_MIRRORS: list[str] = ["https://www.cs.columbia.edu/CAVE/databases/SLAM_coil-20_coil-100/coil-20/"]
_NAME = re.compile(r"^obj(\d+)__(\d+)\.png$")
N_OBJECTS, N_POSES, SIDE = 20, 72, 128


@lru_cache(maxsize=1)
def expected_sums() -> dict[str, str]:
    """``{file name: sha256}`` for the 1,440 images, in object-then-pose order."""
    sums: dict[str, str] = {}
    for line in SUMS_FILE.read_text(encoding="utf-8").splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            sums[name.strip().lstrip("*")] = digest
    return dict(sorted(sums.items(), key=lambda kv: _obj_pose(kv[0])))


def _obj_pose(name: str) -> tuple[int, int]:
    m = _NAME.match(name)
    if m is None:
        raise DatasetError(f"{SUMS_FILE}: unexpected file name {name!r}")
    return int(m.group(1)), int(m.group(2))


def locate(root: Path) -> Path | None:
    """The image folder if all 1,440 files are present (names only; contents are checked on load)."""
    folder = root / "coil20" / SUBDIR
    return folder if folder.is_dir() and all((folder / n).is_file() for n in expected_sums()) else None


def _extract(zip_path: Path, folder: Path) -> None:
    """Extract only the expected PNGs into a temporary folder, check each, then move the missing ones in."""
    sums = expected_sums()
    with tempfile.TemporaryDirectory(prefix=".coil20-", dir=folder.parent) as tmp:
        got: dict[str, Path] = {}
        try:
            with zipfile.ZipFile(zip_path) as zf:
                for member in zf.namelist():
                    # Only the base name is used, so a hostile archive cannot write outside tmp.
                    name = member.rsplit("/", 1)[-1]
                    if name not in sums:
                        continue
                    data = zf.read(member)
                    if hashlib.sha256(data).hexdigest() != sums[name]:
                        raise DatasetError(f"{zip_path}: {member}: sha256 mismatch (expected {sums[name]}); "
                                           f"the archive is corrupt")
                    (Path(tmp) / name).write_bytes(data)
                    got[name] = Path(tmp) / name
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise DatasetError(f"{zip_path}: corrupt or truncated zip ({exc})") from exc
        missing = [n for n in sums if n not in got]
        if missing:
            raise DatasetError(f"{zip_path}: {len(missing)} of {len(sums)} images missing from the archive "
                               f"(e.g. {missing[0]})")
        folder.mkdir(parents=True, exist_ok=True)
        for name, path in got.items():
            if not (folder / name).exists():
                shutil.move(str(path), folder / name)


def _fetch(folder: Path, progress: bool, by_hand: str) -> None:
    """Use ``coil20/coil-20-proc.zip`` if it was placed there by hand, else download it (and delete it after)."""
    zip_path = folder.parent / ZIP_NAME
    if zip_path.is_file():
        _extract(zip_path, folder)  # the user's file: kept, whatever happens
        return
    try:
        download(mirror_urls("coil20", ZIP_NAME, COIL20_MIRRORS), zip_path, progress=progress)
    except DatasetError as exc:
        raise DatasetError(f"COIL20: {exc}; or {by_hand}") from exc
    try:
        _extract(zip_path, folder)
    finally:
        zip_path.unlink(missing_ok=True)


@register_dataset(
    "COIL20", dirname="coil20", shape=(1, SIDE, SIDE), class_names=tuple(f"obj{k}" for k in range(1, 21)),
    sizes={"all": N_OBJECTS * N_POSES}, downloadable=True, description="20 objects x 72 poses, processed",
    locate=locate,
)
def load(root: Path, split: str, download_ok: bool, progress: bool) -> Dataset:
    """Read, check and decode the 1,440 images (labels = object id − 1)."""
    folder = root / "coil20" / SUBDIR
    sums = expected_sums()
    missing = [n for n in sums if not (folder / n).is_file()]
    if missing:
        by_hand = (f"place obj1..20__0..71.png from {COIL20_MIRRORS[0]}{ZIP_NAME} in {folder} by hand "
                   f"(or the zip itself in {folder.parent})")
        where = f"{len(missing)} of {len(sums)} images missing in {folder} (e.g. {missing[0]}): {by_hand}"
        if not download_ok and not (folder.parent / ZIP_NAME).is_file():
            raise DatasetError(f"COIL20: {where}; downloading is off")
        if not is_writable_dir(folder.parent):
            raise DatasetError(f"COIL20: {where}; {folder.parent} is read-only, so it cannot be downloaded")
        _fetch(folder, progress, by_hand)
    images = np.empty((len(sums), 1, SIDE, SIDE), dtype=np.uint8)
    labels = np.empty(len(sums), dtype=np.int64)
    for i, (name, expected) in enumerate(sums.items()):
        path = folder / name
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise DatasetError(f"{path}: cannot read ({exc.strerror or exc})") from exc
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected:
            raise DatasetError(f"{path}: sha256 mismatch (expected {expected}, got {actual}); the file is truncated "
                               f"or corrupt: replace it with the one from {ZIP_NAME}")
        arr = decode_image(data, 1, None, str(path))
        if arr.shape != (1, SIDE, SIDE):
            raise DatasetError(f"{path}: expected a {SIDE}x{SIDE} image, got {arr.shape[2]}x{arr.shape[1]}")
        images[i] = arr
        labels[i] = _obj_pose(name)[0] - 1
    return Dataset(name="COIL20", images=images, labels=labels, class_names=[f"obj{k}" for k in range(1, 21)],
                   fingerprint=fingerprint(sums.items()), source=str(folder), split=split,
                   files=list(sums))

