"""Datasets as uint8 ``N×C×H×W`` arrays: MNIST, COIL20, DIGITS, FASHION-MNIST, USPS and ``folder:PATH``.

>>> ds = load_dataset("DIGITS")
>>> ds.images.shape, ds.n_classes
((1797, 1, 8, 8), 10)

Data is looked up in ``--data-dir``, else ``$NETBUILDER_DATA``, else ``./datasets`` (one subfolder per
dataset) and downloaded there, checksum-verified, when missing. Convert to float one batch at a time with
:func:`to_float`.
"""
from __future__ import annotations

from .base import Dataset, to_float
from .paths import resolve_data_dir
from .registry import DATASETS, get_spec, known_names, list_datasets, load_dataset
from .spec import DatasetSpec

__all__ = ["Dataset", "DatasetSpec", "DATASETS", "get_spec", "known_names", "list_datasets", "load_dataset",
           "resolve_data_dir", "to_float"]
