"""The default architecture of a signal dataset that has no archs file: a 1-D conv autoencoder derived from the
input shape ``[C, L]`` and the number of clusters.

A shipped archs file cannot serve every signal dataset (UCR lengths run from 15 to thousands of samples), so the
stage context derives one (:func:`signal_arch`) when the data are signals and no archs file was given or shipped.
The rule:

- stride-2 convolutions with "same" padding and relu: kernel 5 for the first, 3 after; filters 32, 64, 128,
  128, ... (doubling from 32, at most 128), added until the length is at most 8;
- flatten, then a linear dense code of ``max(10, k)`` units (10 when ``k`` is unknown), l2-normalised;
- the mirrored decoder with a linear output, trained on MSE (the windows are standardised, not in [0, 1]);
- training: Adam at lr 1e-3, batch 64, 100 epochs (UCR sets are small: a few hundred to a few thousand
  series, so dcec-l2's 20 epochs of batch 256 would be a few dozen steps); clustering as dcec-l2: no
  clustering loss, k-means on a UMAP embedding of the codes (a clustering loss chosen with ``--loss`` trains
  with batches of 64 too).

The rule depends on nothing but the shape and ``k``, so the same data always get the same arch (and the same
workspace directory, ``.../auto/``).
"""
from __future__ import annotations

from typing import Any, Sequence

from ..errors import ArchError

NAME = "auto"          # the arch's name: the `-a auto` of the image/vector rule, so both select it the same way
SMALL_LENGTH = 8       # stop downsampling once the length is at most this
FIRST_FILTERS = 32
MAX_FILTERS = 128
MIN_CODE = 10

TRAINING: dict[str, Any] = {"batch_size": 64, "epochs": 100, "lr": 0.001, "optimizer": "adam", "schedule": "none",
                            "recon_loss": "mse",
                            "cluster": {"loss": "none", "manifold": "umap", "batch_size": 64}}


def _conv_stack(length: int) -> list[dict[str, Any]]:
    """Stride-2 "same" convs (kernel 5 first, then 3; filters doubling to MAX_FILTERS) down to SMALL_LENGTH."""
    layers: list[dict[str, Any]] = []
    filters = FIRST_FILTERS
    while length > SMALL_LENGTH:
        layers.append({"type": "conv", "filters": filters, "kernel_size": 5 if not layers else 3, "stride": 2})
        length = -(-length // 2)  # "same" padding: ceil(length / stride)
        filters = min(2 * filters, MAX_FILTERS)
    return layers


def signal_arch(input_shape: Sequence[int], n_clusters: int | None) -> dict[str, Any]:
    """The derived arch (an archs-file object, validated when built) for a signal of shape ``[C, L]``."""
    shape = [int(s) for s in input_shape]
    if len(shape) != 2 or min(shape) < 1:
        raise ArchError(f"signal arch: expected an input shape [C, L] of positive integers, received {shape}")
    channels, length = shape
    code = max(MIN_CODE, int(n_clusters or 0))
    convs = _conv_stack(length)
    stack = ", ".join(f"conv {c['filters']}@{c['kernel_size']} s2" for c in convs) or "no conv (short series)"
    return {
        "name": NAME,
        "description": f"Derived for signals of {channels} channel(s) x {length} samples and "
                       f"{n_clusters or 'an unknown number of'} clusters: {stack}, dense {code}, l2-normalised "
                       "code, linear output on MSE; clustered by k-means on a UMAP embedding of the codes.",
        "input_shape": shape,
        "defaults": {"conv": {"activation": "relu", "padding": "same"}},
        "encoder": [*convs, {"type": "flatten"}, {"type": "dense", "units": code, "activation": "linear"}],
        "latent": {"l2_normalize": True},
        "output_activation": "linear",
        "training": {**TRAINING, "cluster": dict(TRAINING["cluster"])},
    }
