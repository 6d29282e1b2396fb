"""The tables of registered dataset kinds and the ``@register_dataset`` decorator that fills them.

Registering a dataset kind is one decorated loader, in the style of the layer registry
(:mod:`netbuilder.arch.registry`)::

    @register_dataset("DIGITS", dirname="digits", shape=(1, 8, 8), ...)      # a named dataset
    def load(root, split, download_ok, progress): ...

    @register_dataset("ucr:", placeholder="NAME", what="a dataset name", example="ucr:GunPoint", ...)
    def load_ucr(location, root, split, download_ok, progress): ...       # a prefix: located datasets

This module imports no dataset module (they import it); :mod:`.registry` imports them, in listing order.
"""
from __future__ import annotations

import re
from typing import Any, Callable, TypeVar

from .spec import MODALITIES, OPTIONS, DatasetSpec, LocatedKind

F = TypeVar("F", bound=Callable[..., Any])

DATASETS: dict[str, DatasetSpec] = {}
"""Named datasets by canonical name, in registration (= listing) order."""

LOCATED: dict[str, LocatedKind] = {}
"""Located kinds by lower-case prefix (``"folder:"``), in registration order."""


def name_key(name: str) -> str:
    """The lookup key of a name: "Fashion-MNIST", "fashion_mnist", "fashionmnist" and "FASHION MNIST" are one."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _keys(spec: DatasetSpec) -> set[str]:
    return {name_key(alias) for alias in (spec.name, spec.dirname, *spec.aliases)}


def _check_facts(what: str, modality: str, options: tuple[str, ...]) -> None:
    # Programming errors in a registration, not user errors: ValueError like register_layer.
    if modality not in MODALITIES:
        raise ValueError(f"{what}: modality {modality!r} is not one of {MODALITIES}")
    unknown = [o for o in options if o not in OPTIONS]
    if unknown:
        raise ValueError(f"{what}: unknown options {unknown}; known: {OPTIONS}")


def register_dataset(name: str, **facts: Any) -> Callable[[F], F]:
    """Decorator: register the decorated loader as the dataset kind ``name``; the loader is returned unchanged.

    ``name`` ending in ``:`` registers a located kind (:class:`LocatedKind`: ``placeholder``, ``what``,
    ``example``, ``description``, optionally ``modality``, ``options`` and ``splits``); any other ``name`` a named
    dataset (:class:`DatasetSpec`: its remaining fields as keywords). A name, directory name or alias that collides
    with a registered one raises ``ValueError``.
    """

    def decorate(load: F) -> F:
        if name.endswith(":"):
            kind = LocatedKind(prefix=name.lower(), load=load, **facts)
            _check_facts(name, kind.modality, kind.options)
            if kind.prefix in LOCATED or len(kind.prefix) < 2:
                raise ValueError(f"dataset prefix {name!r} is empty or already registered")
            LOCATED[kind.prefix] = kind
        else:
            spec = DatasetSpec(name=name, load=load, **facts)
            _check_facts(name, spec.modality, spec.options)
            taken = {k for other in DATASETS.values() for k in _keys(other)}
            if not name_key(name) or _keys(spec) & taken:
                raise ValueError(f"dataset name {name!r} (or one of its aliases) is empty or already registered")
            DATASETS[name] = spec
        return load

    return decorate


def unregister_dataset(name: str) -> None:
    """Remove a registered kind by name or prefix (for plugins and tests)."""
    if name.endswith(":"):
        del LOCATED[name.lower()]
    else:
        del DATASETS[name]
