"""The built-in layer types. Each is one registered class: fields, shape rule, parameter count, module, mirror.

Shapes exclude the batch dimension: ``(C, H, W)`` for images, ``(C, L)`` for multichannel signals, ``(D,)`` for
vectors. The spatial types (conv, conv_transpose, pools, unpool) take their dimension from the input shape:
the same ``conv`` layer is a 2-D convolution on an image and a 1-D one on a signal (see :mod:`.spatial`).
"""
from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any, Sequence

from torch import nn

from . import blocks
from .blocks import ACTIVATIONS, MaxIndexUnpool, MaxPoolWithIndices, Pad, RepeatUnpool, make_activation
from .errors import SpecError, fmt_shape, invalid_argument
from .registry import Field, Layer, Post, Shape, ShapeContext, register_layer
from .spatial import (SPATIAL_DIMS, batchnorm_class, explicit_pads, extent_text, padding_text, size_text, sizes,
                      spatial_dims, torch_layer)

# -- shared field schemas --------------------------------------------------------------------------------------------
POSITIVE_INT = {"type": "integer", "minimum": 1}
NON_NEGATIVE_INT = {"type": "integer", "minimum": 0}


def _pair_of(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": item, "minItems": 2, "maxItems": 2}


POSITIVE_SIZE = {"anyOf": [POSITIVE_INT, _pair_of(POSITIVE_INT)]}
NON_NEGATIVE_SIZE = {"anyOf": [NON_NEGATIVE_INT, _pair_of(NON_NEGATIVE_INT)]}
# Explicit [start, end] pairs: one per spatial dimension, so one pair ([[left, right]]) on a signal.
PADDING = {"anyOf": [{"enum": ["same", "valid"]}, NON_NEGATIVE_INT, _pair_of(NON_NEGATIVE_INT),
                     {"type": "array", "items": _pair_of(NON_NEGATIVE_INT), "minItems": 1, "maxItems": 2}]}
ACTIVATION = {"title": "activation", "enum": list(ACTIVATIONS)}
BOOLEAN = {"type": "boolean"}
RATE = {"type": "number", "minimum": 0, "exclusiveMaximum": 1}

SIZE_DOC = "an integer, or [height, width] on images"
PADDING_DOC = ("'valid' (none), 'same' (TF-style: output = ceil(input / stride), extra padding at the bottom/right "
               "or end), an integer or [h, w] (symmetric), or [[top, bottom], [left, right]] ([[left, right]] on "
               "signals)")


def pair(value: int | list[int]) -> tuple[int, int]:
    """``5`` → ``(5, 5)``; ``[5, 3]`` → ``(5, 3)``."""
    if isinstance(value, (list, tuple)):
        return int(value[0]), int(value[1])
    return int(value), int(value)


def _settings_text(layer: Layer) -> str:
    parts = []
    if layer.config.get("batch_norm"):
        parts.append("bn")
    parts.append(layer.config["activation"])
    return ", " + ", ".join(parts)


def _head(modules: "OrderedDict[str, nn.Module]", layer: Layer, channels: int, rank: int) -> nn.Sequential:
    """Append batch norm (for a sample of ``rank`` dimensions) and activation, in that order, to ``modules``."""
    if layer.config.get("batch_norm"):
        modules["bn"] = batchnorm_class(rank)(channels)
    if layer.config["activation"] != "linear":
        modules["act"] = make_activation(layer.config["activation"])
    return nn.Sequential(modules)


def _settings_params(layer: Layer, channels: int) -> int:
    return 2 * channels if layer.config.get("batch_norm") else 0


def _weighted_fields(default_activation: str = "relu") -> dict[str, Field]:
    return {
        "activation": Field(ACTIVATION, "Activation after the layer (and after its batch norm).", default_activation),
        "batch_norm": Field(BOOLEAN, "Batch normalisation between the layer and its activation.", False),
        "bias": Field(BOOLEAN, "Learn an additive bias.", True),
    }


def _compact(values: Sequence[int]) -> int | list[int]:
    """One integer when every dimension has the same value (reads like a hand-written spec), else the list."""
    return values[0] if len(set(values)) == 1 else list(values)


class _Spatial(Layer):
    """Base of the types that work on images [C, H, W] and signals [C, L]; the dimension comes from the input.

    Subclasses word their description for a number of spatial dimensions in :meth:`describe_dims`.
    """

    def dims(self, input_shape: Shape) -> int:
        """Spatial dimensions of ``input_shape`` (2 for an image, 1 for a signal); a vector is a SpecError."""
        return spatial_dims(self.type_name, input_shape)

    def sizes(self, name: str, dims: int) -> tuple[int, ...]:
        """Field ``name`` (an integer or one entry per dimension) as one integer per spatial dimension."""
        return sizes(name, self.config[name], dims)

    def describe_dims(self, dims: int) -> str:
        """The description for an input with ``dims`` spatial dimensions."""
        raise NotImplementedError

    def describe(self) -> str:
        # Without an input shape: word it for images, unless the fields only fit a signal ([[left, right]]).
        try:
            return self.describe_dims(2)
        except SpecError:
            return self.describe_dims(1)

    def describe_for(self, input_shape: Shape) -> str:
        dims = len(input_shape) - 1
        return self.describe_dims(dims) if dims in SPATIAL_DIMS else self.describe()


# -- convolutions ----------------------------------------------------------------------------------------------------
@register_layer
class Conv(_Spatial):
    """Convolution (2-D on images, 1-D on signals) (+ optional batch norm) + activation."""

    type_name = "conv"
    doc = ("Convolution (2-D on an image [C, H, W], 1-D on a signal [C, L]), then optional batch norm, then the "
           "activation.")
    role = "weighted"
    fields = {
        "filters": Field(POSITIVE_INT, "Number of output channels."),
        "kernel_size": Field(POSITIVE_SIZE, f"Kernel size: {SIZE_DOC}."),
        "stride": Field(POSITIVE_SIZE, f"Stride: {SIZE_DOC}.", 1),
        "padding": Field(PADDING, "Padding: " + PADDING_DOC + ".", "valid"),
        **_weighted_fields(),
    }

    def pads(self, extent: Sequence[int]) -> list[tuple[int, int]]:
        """(start, end) zero padding per spatial dimension for an input of spatial size ``extent``."""
        dims = len(extent)
        padding = self.config["padding"]
        if padding == "valid":
            return [(0, 0)] * dims
        if padding == "same":
            out = []
            for n, k, s in zip(extent, self.sizes("kernel_size", dims), self.sizes("stride", dims)):
                total = max((math.ceil(n / s) - 1) * s + k - n, 0)
                out.append((total // 2, total - total // 2))
            return out
        return explicit_pads("padding", padding, dims)

    def output_shape(self, input_shape: Shape, ctx: ShapeContext) -> Shape:
        dims = self.dims(input_shape)
        extent = tuple(input_shape[1:])
        pads = self.pads(extent)
        k, s = self.sizes("kernel_size", dims), self.sizes("stride", dims)
        padded = tuple(n + a + b for n, (a, b) in zip(extent, pads))
        out = tuple((n - kk) // ss + 1 for n, kk, ss in zip(padded, k, s))
        if any(kk > n for kk, n in zip(k, padded)):
            where = f"the {extent_text(extent)} input" + (f" padded to {fmt_shape(padded)}" if padded != extent else "")
            raise SpecError(("kernel_size",), f"{size_text(k)} is larger than {where} (the output would be "
                                              f"{fmt_shape(out)})")
        return (self.config["filters"], *out)

    def param_count(self, input_shape: Shape) -> int:
        k = self.sizes("kernel_size", len(input_shape) - 1)
        f = self.config["filters"]
        return math.prod(k) * input_shape[0] * f + (f if self.config["bias"] else 0) + _settings_params(self, f)

    def build(self, input_shape: Shape, ctx: ShapeContext) -> nn.Module:
        dims = self.dims(input_shape)
        pads = self.pads(input_shape[1:])
        modules: OrderedDict[str, nn.Module] = OrderedDict()
        symmetric = all(a == b for a, b in pads)
        if not symmetric:
            modules["pad"] = Pad(pads)
        modules["conv"] = torch_layer("Conv", dims)(
            input_shape[0], self.config["filters"], self.sizes("kernel_size", dims), self.sizes("stride", dims),
            padding=tuple(a for a, _ in pads) if symmetric else 0, bias=self.config["bias"])
        return _head(modules, self, self.config["filters"], len(input_shape))

    def mirror(self, input_shape: Shape, output_shape: Shape, post: Post, index: int) -> list[Layer]:
        dims = len(input_shape) - 1
        k, s = self.sizes("kernel_size", dims), self.sizes("stride", dims)
        pads = self.pads(input_shape[1:])
        # per dim: (crop at the start, effective crop at the end; negative = zero rows appended)
        crops = [(t, (o - 1) * ss + kk - n - t)
                 for n, o, kk, ss, (t, _) in zip(input_shape[1:], output_shape[1:], k, s, pads)]
        padding, output_padding = _transpose_padding(crops, k, s, input_shape[1:], output_shape[1:])
        return [ConvTranspose(filters=input_shape[0], kernel_size=self.config["kernel_size"],
                              stride=self.config["stride"], padding=padding, output_padding=output_padding,
                              activation=post.activation, batch_norm=post.batch_norm, bias=self.config["bias"])]

    def describe_dims(self, dims: int) -> str:
        stride = self.sizes("stride", dims)
        st = "" if all(v == 1 for v in stride) else f" s{size_text(stride)}"
        # conv_transpose shares this wording, with its output_padding after the padding
        op = self.sizes("output_padding", dims) if "output_padding" in self.config else ()
        return (f"{self.type_name} {self.config['filters']}@{fmt_shape(self.sizes('kernel_size', dims))}{st} "
                f"{padding_text(self.config['padding'], dims)}{f' +{size_text(op)}' if any(op) else ''}"
                f"{_settings_text(self)}")


def _same_transpose_crops(k: int, s: int) -> tuple[int, int]:
    total = k - s
    return (total // 2, total - total // 2) if total >= 0 else (0, total)


def _transpose_padding(crops: list[tuple[int, int]], k: Sequence[int], s: Sequence[int],
                       in_extent: Shape, out_extent: Shape) -> tuple[Any, Any]:
    """The simplest conv_transpose ``padding``/``output_padding`` that crops exactly ``crops``.

    Prefer 'same' (reads like the encoder), then PyTorch's symmetric padding + output_padding, and fall back to
    explicit [start, end] crops per dimension when the encoder's padding was asymmetric.
    """
    if all(n == o * ss and _same_transpose_crops(kk, ss) == c
           for n, o, kk, ss, c in zip(in_extent, out_extent, k, s, crops)):
        return "same", 0
    starts = [c[0] for c in crops]
    extra = [c[0] - c[1] for c in crops]
    if all(0 <= e < ss for e, ss in zip(extra, s)):
        padding = "valid" if not any(starts) else _compact(starts)
        return padding, _compact(extra)
    padding = [[c[0], max(c[1], 0)] for c in crops]
    return padding, _compact([max(-c[1], 0) for c in crops])


@register_layer
class ConvTranspose(_Spatial):
    """Transposed convolution (2-D on images, 1-D on signals) (+ optional batch norm) + activation."""

    type_name = "conv_transpose"
    doc = ("Transposed convolution (2-D on an image, 1-D on a signal), then optional batch norm, then the "
           "activation. Output size per dimension: (in - 1) * stride + kernel - crop_start - crop_end + "
           "output_padding; 'same' gives in * stride.")
    role = "weighted"
    fields = {
        "filters": Field(POSITIVE_INT, "Number of output channels."),
        "kernel_size": Field(POSITIVE_SIZE, f"Kernel size: {SIZE_DOC}."),
        "stride": Field(POSITIVE_SIZE, f"Stride: {SIZE_DOC}.", 1),
        "padding": Field(PADDING, "Rows/columns cropped from the full output: 'valid' (none), 'same' (output = "
                                  "input * stride), an integer or [h, w] (both sides, as in PyTorch), or "
                                  "[[top, bottom], [left, right]] ([[left, right]] on signals).", "valid"),
        "output_padding": Field(NON_NEGATIVE_SIZE, "Extra rows/columns added at the bottom/right (end), smaller "
                                                   "than the stride (as in PyTorch).", 0),
        **_weighted_fields(),
    }

    def check(self) -> None:
        for op, s in zip(pair(self.config["output_padding"]), pair(self.config["stride"])):
            if op >= s:
                raise SpecError(("output_padding",), invalid_argument(
                    "output_padding", f"a value smaller than the stride ({size_text(pair(self.config['stride']))})",
                    self.config["output_padding"]))

    def crops(self, dims: int) -> list[tuple[int, int]]:
        """Per spatial dimension (crop at the start, crop at the end); a negative end crop appends zero rows."""
        padding = self.config["padding"]
        if padding == "valid":
            return [(0, 0)] * dims
        if padding == "same":
            return [_same_transpose_crops(kk, ss)
                    for kk, ss in zip(self.sizes("kernel_size", dims), self.sizes("stride", dims))]
        return explicit_pads("padding", padding, dims)

    def output_shape(self, input_shape: Shape, ctx: ShapeContext) -> Shape:
        dims = self.dims(input_shape)
        extent = input_shape[1:]
        k, s = self.sizes("kernel_size", dims), self.sizes("stride", dims)
        op = self.sizes("output_padding", dims)
        out = tuple((n - 1) * ss + kk - a - b + o
                    for n, kk, ss, (a, b), o in zip(extent, k, s, self.crops(dims), op))
        if min(out) < 1:
            raise SpecError(("padding",), f"{padding_text(self.config['padding'], dims)} crops the output of the "
                                          f"{extent_text(extent)} input to {fmt_shape(out)}; expected at least "
                                          f"{fmt_shape((1,) * dims)}")
        return (self.config["filters"], *out)

    def param_count(self, input_shape: Shape) -> int:
        return Conv.param_count(self, input_shape)  # type: ignore[arg-type]  # same weights as a conv

    def build(self, input_shape: Shape, ctx: ShapeContext) -> nn.Module:
        dims = self.dims(input_shape)
        k, s = self.sizes("kernel_size", dims), self.sizes("stride", dims)
        op = self.sizes("output_padding", dims)
        crops = self.crops(dims)
        layer = torch_layer("ConvTranspose", dims)
        modules: OrderedDict[str, nn.Module] = OrderedDict()
        if all(a == b >= 0 for a, b in crops):
            modules["conv"] = layer(input_shape[0], self.config["filters"], k, s, padding=tuple(a for a, _ in crops),
                                    output_padding=op, bias=self.config["bias"])
        else:
            modules["conv"] = layer(input_shape[0], self.config["filters"], k, s, bias=self.config["bias"])
            modules["crop"] = Pad([(-a, o - b) for (a, b), o in zip(crops, op)])
        return _head(modules, self, self.config["filters"], len(input_shape))

    def mirror(self, input_shape: Shape, output_shape: Shape, post: Post, index: int) -> list[Layer]:
        raise SpecError((), "a conv_transpose layer in the encoder cannot be mirrored; give an explicit decoder")

    def describe_dims(self, dims: int) -> str:
        return Conv.describe_dims(self, dims)  # type: ignore[arg-type]  # same wording


# -- pooling -----------------------------------------------------------------------------------------------------
class _Pool(_Spatial):
    def normalize(self) -> None:
        self.config.setdefault("stride", self.config["pool_size"])

    def output_shape(self, input_shape: Shape, ctx: ShapeContext) -> Shape:
        dims = self.dims(input_shape)
        extent = input_shape[1:]
        p, s = self.sizes("pool_size", dims), self.sizes("stride", dims)
        if any(pp > n for pp, n in zip(p, extent)):
            raise SpecError(("pool_size",), f"{size_text(p)} is larger than the {extent_text(extent)} input")
        return (input_shape[0], *((n - pp) // ss + 1 for n, pp, ss in zip(extent, p, s)))

    def mirror(self, input_shape: Shape, output_shape: Shape, post: Post, index: int) -> list[Layer]:
        s = self.sizes("stride", len(input_shape) - 1)
        extra = [n - o * ss for n, o, ss in zip(input_shape[1:], output_shape[1:], s)]
        if all(0 <= e < ss for e, ss in zip(extra, s)):
            return [Unpool(size=self.config["stride"], output_padding=_compact(extra))]
        lo = [o * ss for o, ss in zip(output_shape[1:], s)]
        hi = [o * ss + ss - 1 for o, ss in zip(output_shape[1:], s)]
        raise SpecError((), f"the mirrored decoder cannot reach this pool's {extent_text(input_shape[1:])} input: "
                            f"unpooling its {extent_text(output_shape[1:])} output by {size_text(s)} gives "
                            f"{fmt_shape(lo)} to {fmt_shape(hi)}; use a stride equal to pool_size, set "
                            "return_indices (maxpool), or give an explicit decoder")

    def describe_dims(self, dims: int) -> str:
        p, s = self.sizes("pool_size", dims), self.sizes("stride", dims)
        return f"{self.type_name} {fmt_shape(p)}" + (f" s{size_text(s)}" if s != p else "")


_POOL_FIELDS = {
    "pool_size": Field(POSITIVE_SIZE, f"Pooling window: {SIZE_DOC}.", 2),
    "stride": Field(POSITIVE_SIZE, "Stride; defaults to pool_size.", None),
}


@register_layer
class MaxPool(_Pool):
    """Max pooling (2-D on images, 1-D on signals; floor mode, no padding)."""

    type_name = "maxpool"
    doc = "Max pooling, 2-D on an image, 1-D on a signal (no padding; rows that do not fill a window are dropped)."
    fields = {
        **_POOL_FIELDS,
        "return_indices": Field(BOOLEAN, "Keep the argmax positions so the mirrored decoder unpools with them "
                                         "(max_indices unpooling) instead of repeating pixels.", False),
    }

    def build(self, input_shape: Shape, ctx: ShapeContext) -> nn.Module:
        dims = self.dims(input_shape)
        p, s = self.sizes("pool_size", dims), self.sizes("stride", dims)
        if self.config["return_indices"]:
            assert ctx.store is not None
            return MaxPoolWithIndices(p, s, ctx.store, (ctx.part, ctx.index))
        return torch_layer("MaxPool", dims)(p, s)

    def mirror(self, input_shape: Shape, output_shape: Shape, post: Post, index: int) -> list[Layer]:
        if self.config["return_indices"]:
            return [Unpool(size=self.config["stride"], mode="max_indices", indices_from=index)]
        return super().mirror(input_shape, output_shape, post, index)

    def describe_dims(self, dims: int) -> str:
        return super().describe_dims(dims) + (", indices" if self.config["return_indices"] else "")


@register_layer
class AvgPool(_Pool):
    """Average pooling (2-D on images, 1-D on signals; floor mode, no padding)."""

    type_name = "avgpool"
    doc = ("Average pooling, 2-D on an image, 1-D on a signal (no padding; rows that do not fill a window are "
           "dropped).")
    fields = dict(_POOL_FIELDS)

    def build(self, input_shape: Shape, ctx: ShapeContext) -> nn.Module:
        dims = self.dims(input_shape)
        return torch_layer("AvgPool", dims)(self.sizes("pool_size", dims), self.sizes("stride", dims))


@register_layer
class Unpool(_Spatial):
    """Inverse of a pool: repeat every pixel, or put values back at a max-pool's argmax positions."""

    type_name = "unpool"
    doc = ("Inverse of a pool (2-D on an image, 1-D on a signal). mode 'repeat': every pixel repeated size times "
           "(then output_padding edge rows replicated); mode 'max_indices': values placed at the argmax positions "
           "of the encoder maxpool indices_from (which needs return_indices), restoring that pool's input shape.")
    fields = {
        "size": Field(POSITIVE_SIZE, f"Repeat factor: {SIZE_DOC}.", 2),
        "mode": Field({"title": "unpool mode", "enum": ["repeat", "max_indices"]}, "How to unpool.", "repeat"),
        "output_padding": Field(NON_NEGATIVE_SIZE, "Edge rows/columns replicated at the bottom/right (end) after "
                                                   "repeating (smaller than size).", 0),
        "indices_from": Field(NON_NEGATIVE_INT, "Index in the encoder list of the maxpool whose indices to use "
                                                "(mode 'max_indices' only).", None),
    }

    def check(self) -> None:
        if self.config["mode"] == "max_indices":
            if "indices_from" not in self.config:
                raise SpecError(("indices_from",), invalid_argument(
                    "indices_from", "the encoder index of a maxpool with return_indices (needed by mode "
                                    "'max_indices')", None))
            return
        if "indices_from" in self.config:
            raise SpecError(("indices_from",), invalid_argument(
                "indices_from", "no value unless mode is 'max_indices'", self.config["indices_from"]))
        for op, s in zip(pair(self.config["output_padding"]), pair(self.config["size"])):
            if op >= s:
                raise SpecError(("output_padding",), invalid_argument(
                    "output_padding", f"a value smaller than size ({size_text(pair(self.config['size']))})",
                    self.config["output_padding"]))

    def _pool(self, ctx: ShapeContext) -> Any:
        index = self.config["indices_from"]
        if ctx.part != "decoder":
            raise SpecError(("mode",), "max_indices unpooling uses an encoder pool's indices, so it can only be "
                                       "used in the decoder")
        target = ctx.encoder[index] if index < len(ctx.encoder) else None
        if target is None or not (isinstance(target.layer, MaxPool) and target.layer.config["return_indices"]):
            what = "nothing" if target is None else f"a {target.layer.type_name} layer"
            raise SpecError(("indices_from",), f"expected the index of an encoder maxpool with return_indices true, "
                                               f"received {index} ({what})")
        return target

    def output_shape(self, input_shape: Shape, ctx: ShapeContext) -> Shape:
        dims = self.dims(input_shape)
        if self.config["mode"] == "max_indices":
            pool = self._pool(ctx)
            if tuple(input_shape) != tuple(pool.output_shape):
                raise SpecError((), f"expected the {fmt_shape(pool.output_shape)} output of /encoder/"
                                    f"{self.config['indices_from']}, received {fmt_shape(input_shape)}")
            return tuple(pool.input_shape)
        s, op = self.sizes("size", dims), self.sizes("output_padding", dims)
        return (input_shape[0], *(n * ss + o for n, ss, o in zip(input_shape[1:], s, op)))

    def build(self, input_shape: Shape, ctx: ShapeContext) -> nn.Module:
        dims = self.dims(input_shape)
        if self.config["mode"] == "max_indices":
            pool = self._pool(ctx)
            assert ctx.store is not None
            return MaxIndexUnpool(pool.layer.sizes("pool_size", dims), pool.layer.sizes("stride", dims),
                                  pool.input_shape[1:], ctx.store, ("encoder", self.config["indices_from"]))
        return RepeatUnpool(self.sizes("size", dims), self.sizes("output_padding", dims))

    def mirror(self, input_shape: Shape, output_shape: Shape, post: Post, index: int) -> list[Layer]:
        raise SpecError((), "an unpool layer in the encoder cannot be mirrored; give an explicit decoder")

    def describe_dims(self, dims: int) -> str:
        if self.config["mode"] == "max_indices":
            return f"unpool max_indices of /encoder/{self.config['indices_from']}"
        op = self.sizes("output_padding", dims)
        return f"unpool x{size_text(self.sizes('size', dims))}" + (f" +{size_text(op)}" if any(op) else "")


# -- dense and shape changes -------------------------------------------------------------------------------------
@register_layer
class Dense(Layer):
    """Fully connected layer (+ optional batch norm) + activation (+ optional dropout)."""

    type_name = "dense"
    doc = "Fully connected layer on a flat input, then optional batch norm, the activation and optional dropout."
    role = "weighted"
    fields = {
        "units": Field(POSITIVE_INT, "Number of outputs."),
        **_weighted_fields(),
        "dropout": Field(RATE, "Dropout rate after the activation (not mirrored).", 0.0),
    }

    def output_shape(self, input_shape: Shape, ctx: ShapeContext) -> Shape:
        if len(input_shape) != 1:
            raise SpecError((), f"a dense layer expects a flat input, received {fmt_shape(input_shape)}; add "
                                '{"type": "flatten"} before it')
        return (self.config["units"],)

    def param_count(self, input_shape: Shape) -> int:
        u = self.config["units"]
        return input_shape[0] * u + (u if self.config["bias"] else 0) + _settings_params(self, u)

    def build(self, input_shape: Shape, ctx: ShapeContext) -> nn.Module:
        modules: OrderedDict[str, nn.Module] = OrderedDict()
        modules["linear"] = nn.Linear(input_shape[0], self.config["units"], bias=self.config["bias"])
        block = _head(modules, self, self.config["units"], 1)
        if self.config["dropout"] > 0:
            block.add_module("dropout", nn.Dropout(self.config["dropout"]))
        return block

    def mirror(self, input_shape: Shape, output_shape: Shape, post: Post, index: int) -> list[Layer]:
        return [Dense(units=input_shape[0], activation=post.activation, batch_norm=post.batch_norm,
                      bias=self.config["bias"])]

    def describe(self) -> str:
        text = f"dense {self.config['units']}{_settings_text(self)}"
        return text + (f", dropout {self.config['dropout']}" if self.config["dropout"] else "")


@register_layer
class Flatten(Layer):
    """Flatten [C, H, W] to [C*H*W] (a signal [C, L] to [C*L])."""

    type_name = "flatten"
    doc = "Flatten the sample to a vector (mirrored as a reshape back)."
    fields: dict[str, Field] = {}

    def output_shape(self, input_shape: Shape, ctx: ShapeContext) -> Shape:
        return (math.prod(input_shape),)

    def build(self, input_shape: Shape, ctx: ShapeContext) -> nn.Module:
        return nn.Flatten()

    def mirror(self, input_shape: Shape, output_shape: Shape, post: Post, index: int) -> list[Layer]:
        return [] if len(input_shape) == 1 else [Reshape(shape=list(input_shape))]


@register_layer
class Reshape(Layer):
    """Reshape the sample."""

    type_name = "reshape"
    doc = "Reshape the sample to [C, H, W], [C, L] or [D]; one entry may be -1 (inferred)."
    fields = {
        "shape": Field({"type": "array", "items": {"anyOf": [POSITIVE_INT, {"const": -1}]}, "minItems": 1,
                        "maxItems": 3}, "Target shape without the batch dimension."),
    }

    def check(self) -> None:
        shape = self.config["shape"]
        if shape.count(-1) > 1:
            raise SpecError(("shape",), invalid_argument("shape", "[C, H, W], [C, L] or [D] with at most one -1",
                                                         shape))

    def output_shape(self, input_shape: Shape, ctx: ShapeContext) -> Shape:
        shape = list(self.config["shape"])
        total = math.prod(input_shape)
        known = math.prod(s for s in shape if s != -1)
        if -1 in shape and total % known == 0:
            shape[shape.index(-1)] = total // known
        if math.prod(shape) != total or -1 in shape:
            raise SpecError(("shape",), f"{fmt_shape(self.config['shape'])} has "
                                        f"{'no whole number of' if -1 in shape else math.prod(shape)} values but the "
                                        f"{fmt_shape(input_shape)} input has {total}")
        return tuple(shape)

    def build(self, input_shape: Shape, ctx: ShapeContext) -> nn.Module:
        return blocks.Reshape(self.output_shape(input_shape, ctx))

    def mirror(self, input_shape: Shape, output_shape: Shape, post: Post, index: int) -> list[Layer]:
        return [Flatten()] if len(input_shape) == 1 else [Reshape(shape=list(input_shape))]

    def describe(self) -> str:
        return f"reshape {fmt_shape(self.config['shape'])}"


# -- normalisation, regularisation, activation ------------------------------------------------------------------
@register_layer
class BatchNorm(Layer):
    """Batch normalisation over channels (images, signals) or features (vectors)."""

    type_name = "batchnorm"
    doc = ("Batch normalisation over the channels of an image or a signal, or the features of a vector (not "
           "mirrored).")
    role = "batchnorm"
    fields = {
        "momentum": Field({"type": "number", "exclusiveMinimum": 0, "maximum": 1}, "Running-statistics momentum.",
                          0.1),
        "eps": Field({"type": "number", "exclusiveMinimum": 0}, "Added to the variance.", 1e-5),
    }

    def param_count(self, input_shape: Shape) -> int:
        return 2 * input_shape[0]

    def build(self, input_shape: Shape, ctx: ShapeContext) -> nn.Module:
        return batchnorm_class(len(input_shape))(input_shape[0], eps=self.config["eps"], momentum=self.config["momentum"])


@register_layer
class LayerNorm(Layer):
    """Layer normalisation over all of a sample's values."""

    type_name = "layernorm"
    doc = "Layer normalisation over all values of a sample, with a learned scale and shift (not mirrored)."
    fields = {"eps": Field({"type": "number", "exclusiveMinimum": 0}, "Added to the variance.", 1e-5)}

    def param_count(self, input_shape: Shape) -> int:
        return 2 * math.prod(input_shape)

    def build(self, input_shape: Shape, ctx: ShapeContext) -> nn.Module:
        return nn.LayerNorm(list(input_shape), eps=self.config["eps"])


@register_layer
class Dropout(Layer):
    """Dropout."""

    type_name = "dropout"
    doc = "Dropout (not mirrored)."
    fields = {"rate": Field(RATE, "Probability of zeroing a value during training.")}

    def build(self, input_shape: Shape, ctx: ShapeContext) -> nn.Module:
        return nn.Dropout(self.config["rate"])

    def describe(self) -> str:
        return f"dropout {self.config['rate']}"


@register_layer
class Activation(Layer):
    """A standalone activation."""

    type_name = "activation"
    doc = ("A standalone activation. Not mirrored as a layer: the mirrored decoder layer that restores this "
           "representation uses it as its activation.")
    role = "activation"
    fields = {
        "name": Field(ACTIVATION, "The activation function."),
        "negative_slope": Field({"type": "number", "minimum": 0}, "Slope for negative inputs (leaky_relu only).",
                                0.01),
    }

    def build(self, input_shape: Shape, ctx: ShapeContext) -> nn.Module:
        return make_activation(self.config["name"], self.config["negative_slope"])

    def describe(self) -> str:
        return f"activation {self.config['name']}"


@register_layer
class L2Normalize(Layer):
    """Scale each sample to unit Euclidean length."""

    type_name = "l2normalize"
    doc = "Scale each sample to unit Euclidean length (not mirrored); latent.l2_normalize appends one."
    fields: dict[str, Field] = {}

    def build(self, input_shape: Shape, ctx: ShapeContext) -> nn.Module:
        return blocks.L2Normalize()


__all__ = ["Conv", "ConvTranspose", "MaxPool", "AvgPool", "Unpool", "Dense", "Flatten", "Reshape", "BatchNorm",
           "LayerNorm", "Dropout", "Activation", "L2Normalize", "pair"]
