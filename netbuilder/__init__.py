"""netbuilder: autoencoders written as JSON — train, cluster the latent space, find anomalies, look at the result.

The Python API mirrors the command line::

    from netbuilder import pretrain, cluster, metrics, visualize, run
    pretrain("DIGITS", "digits-dense")
    cluster("DIGITS", "digits-dense", loss="kld")
    rows = metrics("DIGITS", "digits-dense")
"""
from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["pretrain", "cluster", "metrics", "visualize", "run", "build_autoencoder", "load_arch_file",
           "load_dataset", "AutoencoderAnomalyDetector", "DeepClustering", "NetbuilderError"]

# Imported on first use: `import netbuilder` stays cheap (no torch) for tools that only read manifests.
_LAZY = {
    "pretrain": ("netbuilder.stages.pretrain", "pretrain"),
    "cluster": ("netbuilder.stages.cluster", "cluster"),
    "metrics": ("netbuilder.stages.report", "metrics"),
    "visualize": ("netbuilder.stages.visualize", "visualize"),
    "run": ("netbuilder.stages.run", "run_all"),
    "build_autoencoder": ("netbuilder.arch", "build_autoencoder"),
    "load_arch_file": ("netbuilder.arch", "load_arch_file"),
    "load_dataset": ("netbuilder.datasets", "load_dataset"),
    "AutoencoderAnomalyDetector": ("netbuilder.anomaly", "AutoencoderAnomalyDetector"),
    "DeepClustering": ("netbuilder.core.estimator", "DeepClustering"),
    "NetbuilderError": ("netbuilder.errors", "NetbuilderError"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'netbuilder' has no attribute {name!r}")
