"""The descriptions of registered dataset kinds: named datasets (``MNIST``) and located ones (``folder:PATH``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .base import Dataset

# (data root, split, download allowed, show progress, **options) -> Dataset
Loader = Callable[..., Dataset]
# data root -> where the complete data was found, or None; must be cheap (no hashing, no decoding)
Locator = Callable[[Path], "Path | None"]
# (location after the prefix, data root, split, download allowed, show progress, **options) -> Dataset
LocatedLoader = Callable[..., Dataset]

# The keyword arguments of load_dataset that only some kinds take; a kind lists the ones it accepts in `options`.
OPTIONS = ("image_size", "window", "stride", "label_column")
MODALITIES = ("image", "signal")


@dataclass(frozen=True)
class DatasetSpec:
    """A registered named dataset: its fixed facts plus the functions that find and load it.

    ``modality`` is ``"image"`` (uint8 ``N×C×H×W``; ``image_size`` is applied by the registry, after loading) or
    ``"signal"`` (float32 ``N×C×L`` windows). ``options`` names the extra keyword arguments ``load`` takes (each
    passed, possibly as ``None``, in which case the loader uses its default); ``shape`` and ``sizes`` describe
    the data with those defaults.
    """

    name: str
    dirname: str
    shape: tuple[int, ...]
    class_names: tuple[str, ...]
    sizes: dict[str, int]
    downloadable: bool
    description: str
    load: Loader = field(repr=False, compare=False)
    locate: Locator = field(repr=False, compare=False)
    aliases: tuple[str, ...] = ()
    modality: str = "image"
    options: tuple[str, ...] = ()
    bundled: bool = False  # shipped with a dependency (DIGITS): neither downloaded nor placed by hand

    @property
    def size(self) -> int:
        """Number of samples in the ``all`` split."""
        return self.sizes["all"]

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(self.sizes)

    @property
    def accepts(self) -> tuple[str, ...]:
        """The options of :func:`load_dataset` this dataset takes (``image_size`` for every image dataset)."""
        return (("image_size",) if self.modality == "image" else ()) + self.options


@dataclass(frozen=True)
class LocatedKind:
    """A registered kind of dataset named by a prefix and a location, e.g. ``folder:PATH`` or ``ucr:NAME``.

    ``load(location, root, split, download, progress, **options)`` receives the text after the prefix and every
    option listed in ``options`` (possibly ``None``: the loader's default).
    """

    prefix: str
    load: LocatedLoader = field(repr=False, compare=False)
    placeholder: str  # "PATH" in "folder:PATH"
    what: str  # "a folder": what the location must be, for "give a folder, e.g. folder:./images"
    example: str
    description: str
    modality: str = "image"
    options: tuple[str, ...] = ()
    splits: tuple[str, ...] = ("all",)  # ucr: adds its TRAIN and TEST files

    @property
    def accepts(self) -> tuple[str, ...]:
        """The options of :func:`load_dataset` this kind takes."""
        return self.options

    @property
    def usage(self) -> str:
        """``"folder:PATH"``: how the kind is written, for messages and help texts."""
        return f"{self.prefix}{self.placeholder}"
