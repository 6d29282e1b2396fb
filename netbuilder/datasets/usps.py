"""USPS: 9,298 handwritten 16×16 digits in the LIBSVM files ``usps.bz2`` (7,291) and ``usps.t.bz2`` (2,007).

Each line is ``label idx:value ...`` with labels 1..10 (digit + 1) and values in [-1, 1].
"""
from __future__ import annotations

import bz2
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from .base import Dataset
from .checksum import file_digest, fingerprint, verify_file
from .download import download, mirror_urls
from .kinds import register_dataset
from .paths import is_writable_dir

# md5s as published alongside the LIBSVM copies (no sha256 is published).
USPS_FILES: dict[str, str] = {
    "usps.bz2": "ec16c51db3855ca6c91edd34d0e9b197",
    "usps.t.bz2": "8ea070ee2aca1ac39742fdd1ef5ed118",
}
USPS_MIRRORS: list[str] = ["https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/multiclass/"]
SPLIT_FILES = {"train": "usps.bz2", "test": "usps.t.bz2"}
SIDE = 16


def _find(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / name[: -len(".bz2")]):
        if candidate.is_file():
            return candidate
    return None


def locate(root: Path) -> Path | None:
    folder = root / "usps"
    return folder if all(_find(folder, n) for n in USPS_FILES) else None


def read_libsvm(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Parse a (bz2 or plain) LIBSVM file of 256 features into uint8 ``N×1×16×16`` images and 0-based labels."""
    opener = bz2.open if path.suffix == ".bz2" else open
    rows: list[np.ndarray] = []
    labels: list[int] = []
    try:
        with opener(path, "rt", encoding="ascii") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                # "label i1:v1 i2:v2 ..." -> numbers [label, i1, v1, i2, v2, ...] in one vectorised parse
                nums = np.array(line.replace(":", " ").split(), dtype=np.float64)
                if nums.size % 2 != 1:
                    raise DatasetError(f"{path}: line {lineno} is not in LIBSVM format")
                idx = nums[1::2].astype(np.int64) - 1
                if idx.size and (idx.min() < 0 or idx.max() >= SIDE * SIDE):
                    raise DatasetError(f"{path}: line {lineno} has a feature index outside 1..{SIDE * SIDE}")
                row = np.zeros(SIDE * SIDE)  # LIBSVM is sparse: an absent feature means 0 (mid-grey here)
                row[idx] = nums[2::2]
                rows.append(row)
                labels.append(int(nums[0]) - 1)
    except DatasetError:
        raise
    except (OSError, EOFError, ValueError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: truncated or corrupt ({exc})") from exc
    if not rows:
        raise DatasetError(f"{path}: no samples")
    values = np.stack(rows)
    images = np.clip(np.rint((values + 1.0) * 127.5), 0, 255).astype(np.uint8).reshape(-1, 1, SIDE, SIDE)
    lab = np.asarray(labels, dtype=np.int64)
    if lab.min() < 0 or lab.max() > 9:
        raise DatasetError(f"{path}: labels outside 1..10")
    return images, lab


@register_dataset(
    "USPS", dirname="usps", shape=(1, SIDE, SIDE), class_names=tuple(str(d) for d in range(10)),
    sizes={"all": 9298, "train": 7291, "test": 2007}, downloadable=True,
    description="US postal service digits, train then test", locate=locate,
)
def load(root: Path, split: str, download_ok: bool, progress: bool) -> Dataset:
    folder = root / "usps"
    parts = ["train", "test"] if split == "all" else [split]
    names = [SPLIT_FILES[p] for p in parts]
    paths = {n: _find(folder, n) for n in names}
    missing = [n for n, p in paths.items() if p is None]
    if missing:
        by_hand = ", ".join(f"{n} (md5 {USPS_FILES[n]})" for n in missing)
        if not download_ok:
            raise DatasetError(f"USPS: missing in {folder}: {by_hand}; downloading is off: place the files "
                               f"there by hand")
        if not is_writable_dir(folder):
            raise DatasetError(f"USPS: missing in {folder}: {by_hand}; that folder is read-only: place the "
                               f"files there by hand or use another --data-dir")
        for i, n in enumerate(missing):
            try:
                paths[n] = download(mirror_urls("usps", n, USPS_MIRRORS), folder / n, md5=USPS_FILES[n],
                                    progress=progress)
            except DatasetError as exc:
                rest = ", ".join(f"{m} (md5 {USPS_FILES[m]})" for m in missing[i + 1:])
                raise DatasetError(f"USPS: {exc}" + (f"; also missing there: {rest}" if rest else "")) from exc
    entries, images, labels = [], [], []
    for n in names:
        path = paths[n]
        assert path is not None
        if path.name == n:
            digest = verify_file(path, md5=USPS_FILES[n], hint="; delete it to download it again")
        else:
            digest = file_digest(path)
        entries.append((path.name, digest))
        im, lab = read_libsvm(path)
        images.append(im)
        labels.append(lab)
    return Dataset(name="USPS", images=np.concatenate(images), labels=np.concatenate(labels),
                   class_names=[str(d) for d in range(10)], fingerprint=fingerprint(entries), source=str(folder),
                   split=split)

