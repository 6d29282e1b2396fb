"""MNIST-style datasets: four IDX files each (train/test images and labels), gzip or uncompressed; registers MNIST.

Fashion-MNIST (:mod:`.fashion`) reuses the loader made here.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from .base import Dataset
from .checksum import file_digest, fingerprint, verify_file
from .download import download, mirror_urls
from .idx import read_idx
from .kinds import register_dataset
from .paths import is_writable_dir


@dataclass(frozen=True)
class Checksum:
    sha256: str | None = None
    md5: str | None = None


# The canonical files (md5s match the ones published with MNIST; sha256s computed from the same bytes).
MNIST_FILES: dict[str, Checksum] = {
    "train-images-idx3-ubyte.gz": Checksum("440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                                           "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    "train-labels-idx1-ubyte.gz": Checksum("3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                                           "d53e105ee54ea40749a09fcbcd1e9432"),
    "t10k-images-idx3-ubyte.gz": Checksum("8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                                          "9fb629c4189551a2d022fa330f9573f3"),
    "t10k-labels-idx1-ubyte.gz": Checksum("f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                                          "ec29112dd5afa0611ce80d1b7f02629c"),
}
# yann.lecun.com now refuses downloads; these two mirrors serve byte-identical copies.
MNIST_MIRRORS: list[str] = [
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
]

SPLIT_FILES: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def _find(folder: Path, gz_name: str) -> Path | None:
    """The gz file, else the same name without .gz (an already uncompressed copy), else None."""
    for candidate in (folder / gz_name, folder / gz_name[: -len(".gz")]):
        if candidate.is_file():
            return candidate
    return None


def make_locator(dirname: str):
    """The locate function of an MNIST-style dataset kept in ``<root>/<dirname>/``."""

    def locate(root: Path) -> Path | None:
        folder = root / dirname
        names = [n for pair in SPLIT_FILES.values() for n in pair]
        return folder if all(_find(folder, n) for n in names) else None

    return locate


def _checksum_hint(files: dict[str, Checksum], name: str) -> str:
    c = files[name]
    return f"sha256 {c.sha256}" if c.sha256 else f"md5 {c.md5}"


def _ensure(name: str, folder: Path, needed: list[str], files: dict[str, Checksum], mirrors: list[str],
            download_ok: bool, progress: bool) -> dict[str, Path]:
    """Paths of the ``needed`` files, downloading the missing ones when allowed."""
    found = {n: _find(folder, n) for n in needed}
    missing = [n for n, p in found.items() if p is None]
    if not missing:
        return found  # type: ignore[return-value]
    by_hand = ", ".join(f"{n} ({_checksum_hint(files, n)})" for n in missing)
    if not download_ok:
        raise DatasetError(f"{name}: missing in {folder}: {by_hand}; downloading is off: place the files there "
                           f"by hand, or point --data-dir / NETBUILDER_DATA at a folder holding "
                           f"{folder.name}/")
    if not is_writable_dir(folder):
        raise DatasetError(f"{name}: missing in {folder}: {by_hand}; that folder is read-only, so they cannot be "
                           f"downloaded: place them there by hand or use another --data-dir")
    for i, n in enumerate(missing):
        try:
            found[n] = download(mirror_urls(folder.name, n, mirrors), folder / n, sha256=files[n].sha256,
                                md5=files[n].md5, progress=progress)
        except DatasetError as exc:
            rest = ", ".join(f"{m} ({_checksum_hint(files, m)})" for m in missing[i + 1:])
            also = f"; also missing there: {rest}" if rest else ""
            raise DatasetError(f"{name}: {exc}{also}") from exc
    return found  # type: ignore[return-value]


def _read_pair(name: str, images_path: Path, labels_path: Path, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DatasetError(f"{images_path}: expected uint8 images N×H×W, got {images.dtype} {images.shape}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DatasetError(f"{labels_path}: expected {len(images)} labels to match {images_path.name}, "
                           f"got shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise DatasetError(f"{labels_path}: labels outside 0..{n_classes - 1}")
    return images, labels.astype(np.int64)


def make_loader(name: str, dirname: str, files: dict[str, Checksum], mirrors: list[str],
                classes: tuple[str, ...]):
    """The load function of an MNIST-style dataset kept in ``<root>/<dirname>/`` (used by :mod:`.fashion` too)."""

    def load(root: Path, split: str, download_ok: bool, progress: bool) -> Dataset:
        folder = root / dirname
        parts = ["train", "test"] if split == "all" else [split]
        needed = [n for part in parts for n in SPLIT_FILES[part]]
        paths = _ensure(name, folder, needed, files, mirrors, download_ok, progress)
        entries = []
        for n in needed:
            path = paths[n]
            if path.name == n:  # the canonical gz: its checksum is known
                digest = verify_file(path, files[n].sha256, files[n].md5,
                                     hint=f"; delete it to download it again, or replace it by hand")
            else:  # an uncompressed copy: no published checksum, read_idx checks its structure instead
                digest = file_digest(path)
            entries.append((path.name, digest))
        pairs = [_read_pair(name, paths[SPLIT_FILES[p][0]], paths[SPLIT_FILES[p][1]], len(classes)) for p in parts]
        if len(pairs) == 1:
            images, labels = pairs[0]
        else:
            # One allocation for the result; each part is dropped as soon as it is copied in.
            n_total = sum(len(p[0]) for p in pairs)
            images = np.empty((n_total,) + pairs[0][0].shape[1:], dtype=np.uint8)
            labels = np.concatenate([p[1] for p in pairs])
            at = 0
            while pairs:
                part = pairs.pop(0)[0]
                images[at:at + len(part)] = part
                at += len(part)
                del part
        return Dataset(name=name, images=images[:, None], labels=labels, class_names=list(classes),
                       fingerprint=fingerprint(entries), source=str(folder), split=split)

    return load


register_dataset(
    "MNIST", dirname="mnist", shape=(1, 28, 28), class_names=tuple(str(d) for d in range(10)),
    sizes={"all": 70000, "train": 60000, "test": 10000}, downloadable=True,
    description="handwritten digits, train then test", locate=make_locator("mnist"),
)(make_loader("MNIST", "mnist", MNIST_FILES, MNIST_MIRRORS, tuple(str(d) for d in range(10))))
