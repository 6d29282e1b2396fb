"""Which arch a command uses: one read from an archs file, or the one derived from the data (``-a auto``).

``-a auto`` always derives it; so does the default ``-a 0`` when no ``--archs`` is given and the dataset has no
archs file (``folder:PATH``, FASHION-MNIST, USPS, ...). The derived spec needs the data's shape, so it is made
once the data are loaded (:meth:`ArchChoice.resolve`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from .auto import AUTO, auto_spec, is_auto
from .spec import dataset_arch_file, load_arch_file, resolve_arch_file, select_arch


@dataclass
class ArchChoice:
    """The chosen arch: ``file``/``index``/``spec`` of an archs file, or ``auto`` (spec made from the data)."""

    file: Path
    index: int = 0
    spec: dict[str, Any] | None = None  # None for auto until resolve()
    specs: list[dict[str, Any]] = field(default_factory=list)  # every arch of the file

    @property
    def auto(self) -> bool:
        return self.spec is None

    @property
    def training(self) -> dict[str, Any]:
        """The arch's training section as far as it is known before the data are loaded."""
        return dict((self.spec or {}).get("training") or {})

    def resolve(self, input_shape: Iterable[int], n_clusters: int | None = None) -> dict[str, Any]:
        """The spec: the file's, or the auto arch for this input shape and number of clusters."""
        return self.spec if self.spec is not None else auto_spec(input_shape, n_clusters)


def choose_arch(dataset: str, key: str | int = 0, archs: str | Path | None = None) -> ArchChoice:
    """The arch for ``-d dataset -a key [--archs archs]``; errors are one-line ArchErrors."""
    default_key = key in (0, "0")
    if is_auto(key) or (not archs and default_key and dataset_arch_file(str(dataset)) is None):
        return ArchChoice(Path(AUTO))
    path = resolve_arch_file(str(archs) if archs else dataset)
    specs = load_arch_file(path)
    index, spec = select_arch(specs, key, source=str(path))
    return ArchChoice(path, index, spec, specs)
