"""The registry of named datasets, name lookup, and the one entry point :func:`load_dataset`."""
from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import DatasetError
from . import coil20, digits, idxsets, usps
from .base import Dataset
from .checksum import resized_fingerprint
from .folder import load_folder
from .images import normalize_size, resize_images
from .paths import resolve_data_dir
from .spec import DatasetSpec

DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec for spec in (idxsets.MNIST, coil20.SPEC, digits.SPEC, idxsets.FASHION_MNIST, usps.SPEC)
}
SPLITS = ("train", "test", "all")
_FOLDER_PREFIX = "folder:"


def _key(name: str) -> str:
    # "Fashion-MNIST", "fashion_mnist", "fashionmnist" and "FASHION MNIST" are all the same dataset.
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _lookup() -> dict[str, DatasetSpec]:
    table: dict[str, DatasetSpec] = {}
    for spec in DATASETS.values():
        for alias in (spec.name, spec.dirname, *spec.aliases):
            table[_key(alias)] = spec
    return table


def known_names() -> str:
    """``"MNIST, COIL20, ... or folder:PATH"``, for messages and help texts."""
    return f"{', '.join(DATASETS)} or {_FOLDER_PREFIX}PATH"


def get_spec(name: str) -> DatasetSpec:
    """The registered dataset called ``name`` (case- and punctuation-insensitive)."""
    spec = _lookup().get(_key(name))
    if spec is None:
        raise DatasetError(f"unknown dataset '{name}'; known: {known_names()}")
    return spec


def load_dataset(name: str, *, data_dir: str | os.PathLike | None = None, split: str = "all",
                 image_size: int | tuple[int, int] | None = None, download: bool = True,
                 progress: bool = True) -> Dataset:
    """Load a registered dataset or ``folder:PATH`` as uint8 ``N×C×H×W``.

    ``split`` is ``train``, ``test`` or ``all`` (datasets without a train/test split have only ``all``).
    ``image_size`` (an int for squares, or ``(height, width)``) resizes every image (and changes the
    fingerprint, which otherwise covers only the source files' contents). Missing files are
    downloaded into ``<data_dir>/<id>/`` unless ``download`` is false. Raises :class:`DatasetError` with a
    one-line explanation on any problem.

    Under torch.distributed, rank 0 loads first (downloading or building caches) and the other ranks then
    read what it left.
    """
    from .. import distributed

    with distributed.main_first():
        return _load(name, data_dir=data_dir, split=split, image_size=image_size, download=download,
                     progress=progress and distributed.is_main())


def _load(name: str, *, data_dir: str | os.PathLike | None, split: str, image_size: int | tuple[int, int] | None,
          download: bool, progress: bool) -> Dataset:
    name = str(name).strip()
    split = (split or "all").lower()
    if split not in SPLITS:
        raise DatasetError(f"unknown split '{split}'; use one of: {', '.join(SPLITS)}")
    if name.lower().startswith(_FOLDER_PREFIX):
        path = name[len(_FOLDER_PREFIX):]
        if not path:
            raise DatasetError(f"'{name}': give a folder, e.g. {_FOLDER_PREFIX}./images")
        return load_folder(path, split=split, image_size=image_size, progress=progress)
    spec = get_spec(name)
    if split not in spec.sizes:
        raise DatasetError(f"{spec.name} has no '{split}' split (only {', '.join(spec.splits)})")
    size = normalize_size(image_size)
    dataset = spec.load(resolve_data_dir(data_dir), split, download, progress)
    if size is not None and dataset.shape[1:] != size:
        dataset.images = resize_images(dataset.images, size)
        dataset.fingerprint = resized_fingerprint(dataset.fingerprint, size)
    return dataset


def list_datasets(data_dir: str | os.PathLike | None = None) -> list[dict]:
    """One dict per registered dataset: name, shape (C, H, W), n_classes, size (N of the ``all`` split),
    location (the folder it was found in, or ``"not present"``) and downloadable. Cheap: nothing is read."""
    root = resolve_data_dir(data_dir)
    rows = []
    for spec in DATASETS.values():
        where: Path | None = spec.locate(root)
        rows.append({
            "name": spec.name,
            "shape": spec.shape,
            "n_classes": spec.n_classes,
            "size": spec.size,
            "location": str(where) if where is not None else "not present",
            "downloadable": spec.downloadable,
        })
    return rows
