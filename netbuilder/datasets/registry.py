"""Name lookup over the registered dataset kinds, and the one entry point :func:`load_dataset`.

Kinds register themselves with :func:`~.kinds.register_dataset` when their module is imported; the imports
below are therefore the list of built-in kinds, in listing order.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import DatasetError
# Registration happens on import; this order is the order of `netbuilder datasets` and of error messages.
from . import idxsets, coil20, digits, fashion, usps, tep, folder, series, ucr  # noqa: F401,I001
from .base import Dataset
from .checksum import resized_fingerprint
from .images import normalize_size, resize_images
from .kinds import DATASETS, LOCATED, name_key
from .paths import resolve_data_dir
from .spec import DatasetSpec, LocatedKind

SPLITS = ("train", "test", "all")


def _lookup() -> dict[str, DatasetSpec]:
    return {name_key(alias): spec for spec in DATASETS.values() for alias in (spec.name, spec.dirname, *spec.aliases)}


def known_names() -> str:
    """``"MNIST, COIL20, ..., folder:PATH, series:PATH or ucr:NAME"``, for messages and help texts."""
    names = [*DATASETS, *(kind.usage for kind in LOCATED.values())]
    return f"{', '.join(names[:-1])} or {names[-1]}" if len(names) > 1 else "".join(names)


def get_spec(name: str) -> DatasetSpec:
    """The registered named dataset called ``name`` (case- and punctuation-insensitive)."""
    spec = _lookup().get(name_key(name))
    if spec is None:
        raise DatasetError(f"unknown dataset '{name}'; known: {known_names()}")
    return spec


def located_kind(name: str) -> LocatedKind | None:
    """The located kind whose prefix ``name`` starts with (case-insensitive), or ``None``."""
    lowered = name.strip().lower()
    return next((kind for prefix, kind in LOCATED.items() if lowered.startswith(prefix)), None)


def dataset_modality(name: str) -> str:
    """``"image"`` or ``"signal"``: the modality of the dataset ``name`` (registered or located), without loading it."""
    kind = located_kind(name)
    return kind.modality if kind is not None else get_spec(name).modality


def _check_options(what: str, accepts: tuple[str, ...], options: dict[str, Any]) -> None:
    for option, value in options.items():
        if value is not None and option not in accepts:
            takes = f"it takes only {', '.join(f'`{o}`' for o in accepts)}" if accepts else "it takes none"
            raise DatasetError(f"Argument `{option}` does not apply to {what} ({takes}). "
                               f"Received {option}={value!r}.")


def load_dataset(name: str, *, data_dir: str | os.PathLike | None = None, split: str = "all",
                 image_size: int | tuple[int, int] | None = None, download: bool = True,
                 progress: bool = True, window: int | None = None, stride: int | None = None,
                 label_column: str | None = None) -> Dataset:
    """Load a registered dataset (``MNIST``, ``TEP``, ...) or a located one (``folder:PATH``, ``series:PATH``,
    ``ucr:NAME``).

    Images come as uint8 ``N×C×H×W``, signals as float32 ``N×C×L`` windows standardised per channel (see
    :class:`Dataset`). ``split`` is ``train``, ``test`` or ``all`` (datasets without a train/test split have
    only ``all``). ``image_size`` (an int for squares, or ``(height, width)``) resizes every image (and
    changes the fingerprint, which otherwise covers only the source files' contents). ``window`` and
    ``stride`` (samples) cut signal recordings (``TEP``, ``series:``) into windows; ``label_column`` names
    the label column of a ``series:`` CSV. An option a kind does not take is an error. Missing files are
    downloaded into ``<data_dir>/<id>/`` unless ``download`` is false. Raises :class:`DatasetError` with a
    one-line explanation on any problem.

    Under torch.distributed, rank 0 loads first (downloading or building caches) and the other ranks then
    read what it left.
    """
    from .. import distributed

    options = {"image_size": image_size, "window": window, "stride": stride, "label_column": label_column}
    with distributed.main_first():
        return _load(name, data_dir=data_dir, split=split, download=download,
                     progress=progress and distributed.is_main(), options=options)


def accepts_option(name: str, option: str) -> bool:
    """Whether the dataset ``name`` (registered or located) takes the :func:`load_dataset` option ``option``."""
    name = str(name).strip()
    kind = located_kind(name)
    return option in (kind.accepts if kind is not None else get_spec(name).accepts)


def _load(name: str, *, data_dir: str | os.PathLike | None, split: str, download: bool, progress: bool,
          options: dict[str, Any]) -> Dataset:
    name = str(name).strip()
    split = (split or "all").lower()
    if split not in SPLITS:
        raise DatasetError(f"unknown split '{split}'; use one of: {', '.join(SPLITS)}")
    kind = located_kind(name)
    if kind is not None:
        location = name[len(kind.prefix):]
        if not location:
            raise DatasetError(f"'{name}': give {kind.what}, e.g. {kind.example}")
        _check_options(kind.usage, kind.accepts, options)
        return kind.load(location, resolve_data_dir(data_dir), split, download, progress,
                         **{o: options[o] for o in kind.options})
    spec = get_spec(name)
    if split not in spec.sizes:
        raise DatasetError(f"{spec.name} has no '{split}' split (only {', '.join(spec.splits)})")
    _check_options(spec.name, spec.accepts, options)
    size = normalize_size(options["image_size"]) if spec.modality == "image" else None
    dataset = spec.load(resolve_data_dir(data_dir), split, download, progress, **{o: options[o] for o in spec.options})
    if size is not None and dataset.shape[1:] != size:
        dataset.images = resize_images(dataset.images, size)
        dataset.fingerprint = resized_fingerprint(dataset.fingerprint, size)
    return dataset


def list_datasets(data_dir: str | os.PathLike | None = None) -> list[dict]:
    """One dict per registered dataset: name, shape (C, H, W) or (C, L), n_classes, size (N of the ``all``
    split), location (the folder it was found in, or ``"not present"``) and downloadable. Cheap: nothing is
    read."""
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
