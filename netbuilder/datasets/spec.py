"""The description of one registered dataset (what ``netbuilder datasets`` lists and how to load it)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .base import Dataset

# (data root, split, download allowed, show progress) -> Dataset
Loader = Callable[[Path, str, bool, bool], Dataset]
# data root -> where the complete data was found, or None; must be cheap (no hashing, no decoding)
Locator = Callable[[Path], "Path | None"]


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset: its fixed facts plus the functions that find and load it."""

    name: str
    dirname: str
    shape: tuple[int, int, int]
    class_names: tuple[str, ...]
    sizes: dict[str, int]
    downloadable: bool
    description: str
    load: Loader = field(repr=False, compare=False)
    locate: Locator = field(repr=False, compare=False)
    aliases: tuple[str, ...] = ()

    @property
    def size(self) -> int:
        """Number of images in the ``all`` split."""
        return self.sizes["all"]

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(self.sizes)
