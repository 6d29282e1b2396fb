"""Datasets: images as uint8 ``N×C×H×W`` (MNIST, COIL20, DIGITS, FASHION-MNIST, USPS, ``folder:PATH``) and
signals as float32 ``N×C×L`` windows (``TEP``, ``series:PATH``, ``ucr:NAME``).

>>> ds = load_dataset("DIGITS")
>>> ds.images.shape, ds.n_classes
((1797, 1, 8, 8), 10)

Data is looked up in ``--data-dir``, else ``$NETBUILDER_DATA``, else ``./datasets`` (one subfolder per
dataset) and downloaded there, checksum-verified, when missing. Convert to float one batch at a time with
:func:`to_float` (images are scaled to ``[0, 1]``; signals, already standardised, pass unchanged). A new kind
of dataset is one loader decorated with :func:`register_dataset`. Tennessee Eastman fault runs, for fault
detection, are read with :mod:`netbuilder.datasets.tep`.
"""
from __future__ import annotations

from .base import Dataset, to_float
from .kinds import register_dataset, unregister_dataset
from .paths import resolve_data_dir
from .registry import DATASETS, accepts_option, get_spec, known_names, list_datasets, load_dataset
from .signals import Standardizer
from .spec import DatasetSpec, LocatedKind
from . import tep  # noqa: E402  (the fault-detection API; the registry has imported it already)

__all__ = ["Dataset", "DatasetSpec", "DATASETS", "accepts_option",
           "LocatedKind", "Standardizer", "get_spec", "known_names",
           "list_datasets", "load_dataset", "register_dataset", "resolve_data_dir", "tep", "to_float",
           "unregister_dataset"]
