"""``-a auto``: an architecture derived from the input shape and the number of clusters.

The rule (also in ``netbuilder/archs/README.md``):

- images ``[C, H, W]``: a side longer than 32 px is first average-pooled by the least integer factor that brings
  it to at most 32 (128 → 32, 64 → 32, 100 → 25); then stride-2 convolutions with "same" padding and relu,
  filters doubling from 32 (at most 256), kernel 5 while the layer's input is longer than 8 px on its longer side
  and 3 after (28 → 14 → 7 → 4 gives dcec-l2's kernels 5, 5, 3), added until the longer side is at most 4 px; then
  flatten and a linear dense code. Images of at most 4x4 px are flattened into the vector rule.
- signals ``[C, L]``: the 1-D rule of :mod:`netbuilder.arch.auto_signal` (its own filter cap and training length).
- vectors ``[D]``: dense 256-128 when D ≤ 256 (like digits-dense), else 500-500-2000 (like dec-dense), relu,
  then the linear code.
- the code has ``max(10, k)`` units for ``k`` clusters (10 when k is unknown).
- for every shape: an l2-normalised code, a linear output trained on MSE and dcec-l2's pretraining (Adam,
  lr 1e-3, batch 256, 20 epochs), with at least 1,000 optimisation steps: smaller datasets train more epochs
  (``min_steps``); images train at most about 1,000 (``max_steps``: larger datasets train fewer epochs).
- clustering: images by neighbour consistency (SCAN: cluster heads on the encoder that give each image and one of
  its 5 nearest neighbours in pixel space, or one of 5 images drawn from its chain of mutual 3-nearest neighbours,
  the same cluster, both randomly shifted and rotated; about 3,000 steps),
  then, on at least 500 images per cluster of at least 28 px on their shorter side, 9 epochs of self-labelling
  from SCAN's clusters;
  vectors, which have no shifts or rotations to learn from, by k-means on a UMAP embedding of the codes (N2D).
"""
from __future__ import annotations

import copy
from typing import Any, Iterable

from ..errors import ArchError
from .auto_signal import signal_arch

AUTO = "auto"
"""The ``-a`` value (and the arch's name) of the derived architecture."""

SMALL_SIDE = 4        # stop downsampling once the longer side is at most this
# Images longer than this on a side are average-pooled to at most it first (then the usual convs): CPU minutes
# rather than hours on large photos, while SCAN still mines its neighbours in the full-size pixels.
WORK_SIDE = 32
LARGE_KERNEL_ABOVE = 8  # kernel 5 while a conv's input is longer than this, else 3
FIRST_FILTERS = 32
MAX_FILTERS = 256
MIN_CODE = 10
DENSE_SMALL = [256, 128]        # digits-dense
DENSE_LARGE = [500, 500, 2000]  # dec-dense (DEC's 784-500-500-2000-10)

# dcec-l2's pretraining (netbuilder/archs/mnist.json), copied so that editing that file never changes auto.
# min_steps: small datasets get at least 1,000 steps instead of 20 epochs' worth (COIL-20's 1,440 images: 120 steps).
# Images are clustered by SCAN with its own loop defaults (200 epochs of batch 128, at most about 3,000 steps).
# Measured against UMAP + k-means on the same pretrained codes (18th stop, README; ACC over 3 seeds): DIGITS
# 0.846 -> 0.952, MNIST at 16 px 0.961 -> 0.972, COIL-20 at 32 px 0.814 -> 0.782 (the one loss); MNIST (seed 0)
# 0.973 -> 0.977.
# max_steps: SCAN mines its neighbours in the pixels, so the pretraining only initialises the encoder; with
# min_steps, images pretrain for about 1,000 steps whatever their number (MNIST: 4 epochs instead of 20; measured on
# MNIST, seed 0, SCAN then self-labelling: 20 epochs -> SCAN 0.9765; 8 epochs 0.9756 -> 0.9827; 4 epochs 0.9742 ->
# 0.9830).
TRAINING: dict[str, Any] = {"batch_size": 256, "epochs": 20, "min_steps": 1000, "max_steps": 1000, "lr": 0.001,
                            "optimizer": "adam", "schedule": "none", "cluster": {"loss": "scan"},
                            "recon_loss": "mse"}
# Vectors: SCAN's shifts and rotations do not apply, so UMAP + k-means (N2D), the auto rule's clustering before.
# Their clusters come from the codes themselves, so their pretraining keeps its full length (no max_steps).
VECTOR_TRAINING: dict[str, Any] = {**{k: v for k, v in TRAINING.items() if k != "max_steps"},
                                   "cluster": {"loss": "none", "manifold": "umap"}}


def is_auto(key: Any) -> bool:
    """Whether an ``-a`` value asks for the derived architecture."""
    return isinstance(key, str) and key.strip().lower() == AUTO


def code_size(n_clusters: int | None) -> int:
    """Units of the code: ``max(10, k)``, 10 when the number of clusters is unknown."""
    return max(MIN_CODE, int(n_clusters or 0))


def parse_shape(text: str) -> list[int]:
    """``"3x64x64"`` (or ``3,64,64``) → ``[3, 64, 64]``; one to three positive integers."""
    parts = text.lower().replace(",", "x").split("x")
    try:
        shape = [int(p) for p in parts]
    except ValueError:
        shape = []
    if not 1 <= len(shape) <= 3 or min(shape) < 1:
        raise ArchError(f"invalid input shape '{text}': expected CxHxW (e.g. 3x64x64), CxL or D of positive integers")
    return shape


def _conv_stack(sides: list[int]) -> tuple[list[dict[str, Any]], list[int]]:
    """Stride-2 "same" convs until the longer side is at most SMALL_SIDE; the layers and the final sides."""
    layers: list[dict[str, Any]] = []
    filters = FIRST_FILTERS
    while max(sides) > SMALL_SIDE:
        kernel = 5 if max(sides) > LARGE_KERNEL_ABOVE else 3
        layers.append({"type": "conv", "filters": filters, "kernel_size": kernel, "stride": 2})
        sides = [-(-s // 2) for s in sides]  # "same" padding: ceil(side / stride)
        filters = min(2 * filters, MAX_FILTERS)
    return layers, sides


def _encoder(shape: list[int], code: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The encoder layers and the arch's ``defaults`` for an input shape."""
    code_layer = {"type": "dense", "units": code, "activation": "linear"}
    if len(shape) > 1 and max(shape[1:]) > SMALL_SIDE:
        factors = [-(-s // WORK_SIDE) for s in shape[1:]]   # per side: the least integer that brings it to WORK_SIDE
        pool: list[dict[str, Any]] = []
        sides = shape[1:]
        if max(factors) > 1:
            pool = [{"type": "avgpool", "pool_size": factors[0] if len(set(factors)) == 1 else factors}]
            sides = [s // f for s, f in zip(sides, factors)]
        convs, _ = _conv_stack(sides)
        return pool + convs + [{"type": "flatten"}, code_layer], {"conv": {"activation": "relu", "padding": "same"}}
    size = 1
    for s in shape:
        size *= s
    hidden = DENSE_SMALL if size <= DENSE_SMALL[0] else DENSE_LARGE
    flatten = [{"type": "flatten"}] if len(shape) > 1 else []
    return flatten + [{"type": "dense", "units": u} for u in hidden] + [code_layer], {"dense": {"activation": "relu"}}


def _describe(encoder: list[dict[str, Any]]) -> str:
    parts = []
    for layer in encoder:
        if layer["type"] == "dense":
            parts.append(f"dense {layer['units']}")
        elif layer["type"] == "avgpool":
            size = layer["pool_size"]
            parts.append(f"avgpool {size if isinstance(size, int) else 'x'.join(map(str, size))}")
        elif layer["type"] != "flatten":
            parts.append(f"{layer['type']} {layer['filters']}@{layer['kernel_size']} s2")
    return ", ".join(parts)


def auto_arch(input_shape: Iterable[int], n_clusters: int | None = None) -> dict[str, Any]:
    """The derived arch (an archs-file object, not yet validated) for ``input_shape`` and ``n_clusters``.

    ``input_shape`` is ``[C, H, W]``, ``[C, L]`` or ``[D]``; see the module docstring for the rule. The result
    depends on nothing else, so the same data always gets the same arch.
    """
    shape = [int(s) for s in input_shape]
    if not 1 <= len(shape) <= 3 or min(shape) < 1:
        raise ArchError(f"auto arch: expected an input shape [C, H, W], [C, L] or [D] of positive integers, "
                        f"received {shape}")
    if len(shape) == 2:
        spec = signal_arch(shape, n_clusters)  # signals [C, L]: the 1-D rule of auto_signal.py
    else:
        code = code_size(n_clusters)
        encoder, defaults = _encoder(shape, code)
        images = any(layer["type"] == "conv" for layer in encoder)
        clustered = ("neighbour consistency (SCAN) on pixel neighbours, with shifted and rotated images, then "
                     "self-labelling on at least 500 images per cluster of at least 28 px" if images
                     else "k-means on a UMAP embedding of the codes")
        where = "x".join(str(s) for s in shape)
        spec = {
            "name": AUTO,
            "description": f"Derived by netbuilder's auto rule for input {where} and "
                           f"{n_clusters or 'an unknown number of'} clusters: {_describe(encoder)}, l2-normalised "
                           f"code, linear output on MSE; clustered by {clustered}.",
            "input_shape": shape,
            "defaults": defaults,
            "encoder": encoder,
            "latent": {"l2_normalize": True},
            "output_activation": "linear",
            "training": copy.deepcopy(TRAINING if images else VECTOR_TRAINING),
        }
    if n_clusters:
        spec["clustering"] = {"n_clusters": int(n_clusters), "alpha": 1.0}
    return spec


def auto_spec(input_shape: Iterable[int], n_clusters: int | None = None) -> dict[str, Any]:
    """:func:`auto_arch` validated and resolved like an arch read from a file (every default filled in)."""
    from .spec import resolve_with_context

    spec, _ = resolve_with_context(auto_arch(input_shape, n_clusters), source=AUTO)
    return spec
