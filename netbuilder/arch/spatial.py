"""Dimension-generic helpers of the spatial layer types (conv, pools, unpool).

A spatial layer works on images ``[C, H, W]`` (2 spatial dimensions) and on multichannel signals ``[C, L]``
(1 spatial dimension); the dimension is taken from the input shape, never from the layer's fields. Sizes are
written as one integer (every dimension) or one entry per dimension (``[height, width]`` for images), so the
same JSON layer works on both when it uses integers. Everything here is keyed on ``dims``, the number of spatial
dimensions, so the 1-D and 2-D paths share one piece of code.
"""
from __future__ import annotations

import json
from typing import Any, Sequence

from torch import nn

from .errors import SpecError, fmt_shape

SPATIAL_DIMS = (1, 2)
"""Spatial dimensions the spatial layer types support: signals [C, L] and images [C, H, W]."""


def spatial_dims(type_name: str, shape: Sequence[int]) -> int:
    """Number of spatial dimensions of ``shape`` (1 for [C, L], 2 for [C, H, W]); a vector is an error."""
    dims = len(shape) - 1
    if dims not in SPATIAL_DIMS:
        raise SpecError((), f"a {type_name} layer expects an image [C, H, W] or a signal [C, L], received a vector "
                            f"of {shape[0]} values; put it before the flatten, or use dense layers")
    return dims


def extent_text(extent: Sequence[int]) -> str:
    """How messages name a spatial extent: ``"4x4"`` for an image, ``"4-long"`` for a signal."""
    return f"{int(extent[0])}-long" if len(extent) == 1 else fmt_shape(extent)


def size_text(values: Sequence[int]) -> str:
    """``(5, 5)`` → ``"5"``, ``(5, 3)`` → ``"5x3"``, ``(5,)`` → ``"5"``."""
    return str(values[0]) if len(set(values)) == 1 else fmt_shape(values)


def _mismatch(name: str, expected: str, value: list, dims: int) -> SpecError:
    hint = " (a [height, width] pair is for images)" if dims == 1 and len(value) == 2 else ""
    return SpecError((name,), f"expected {expected} for the {dims}-D input, received {json.dumps(list(value))}{hint}")


def sizes(name: str, value: int | list[int], dims: int) -> tuple[int, ...]:
    """A size field per spatial dimension: ``5`` → ``(5,) * dims``; a list must have one entry per dimension."""
    if not isinstance(value, (list, tuple)):
        return (int(value),) * dims
    if len(value) != dims:
        raise _mismatch(name, "an integer" if dims == 1 else f"an integer or a list of {dims} integers", value, dims)
    return tuple(int(v) for v in value)


def explicit_pads(name: str, padding: Any, dims: int) -> list[tuple[int, int]]:
    """(start, end) per spatial dimension of an explicit padding: an integer, one integer per dimension, or one
    [start, end] pair per dimension (``[[top, bottom], [left, right]]``, or ``[[left, right]]`` for a signal)."""
    if isinstance(padding, list) and len(padding) != dims:
        what = "[[left, right]]" if dims == 1 else "[h, w] or [[top, bottom], [left, right]]"
        raise _mismatch(name, f"'same', 'valid', an integer or {what}", padding, dims)
    if isinstance(padding, list) and isinstance(padding[0], list):
        return [(int(a), int(b)) for a, b in padding]
    return [(p, p) for p in sizes(name, padding, dims)]


def padding_text(padding: Any, dims: int) -> str:
    """``"same"``, ``"pad 2"``, ``"pad 2x1"`` or ``"pad (0,1)x(1,0)"`` (``"pad (0,1)"`` for a signal)."""
    if isinstance(padding, str):
        return padding
    pads = explicit_pads("padding", padding, dims)
    if all(a == b for a, b in pads):
        return "pad " + size_text([a for a, _ in pads])
    return "pad " + "x".join(f"({a},{b})" for a, b in pads)


def torch_pads(pads: Sequence[tuple[int, int]]) -> tuple[int, ...]:
    """Per-dimension (start, end) pairs in ``F.pad`` order (last dimension first)."""
    return tuple(v for start, end in reversed(pads) for v in (int(start), int(end)))


def torch_layer(kind: str, dims: int) -> type[nn.Module]:
    """The torch class of a spatial layer: ``torch_layer("Conv", 1)`` is ``nn.Conv1d``."""
    if dims not in SPATIAL_DIMS:
        raise ValueError(f"Invalid value for argument `dims`. Expected one of {SPATIAL_DIMS}. Received dims={dims}.")
    return getattr(nn, f"{kind}{dims}d")


def batchnorm_class(rank: int) -> type[nn.Module]:
    """Batch norm for a sample of ``rank`` dimensions: over the channels of an image (2d) or signal (1d), or
    the features of a vector (1d)."""
    return nn.BatchNorm2d if rank == 3 else nn.BatchNorm1d
