"""The built-in layer types. Each is one registered class: fields, shape rule, parameter count, module, mirror.

Shapes exclude the batch dimension: ``(C, H, W)`` for images, ``(D,)`` for vectors.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

from torch import nn

from . import blocks
from .blocks import ACTIVATIONS, MaxIndexUnpool, MaxPoolWithIndices, Pad2d, RepeatUnpool, make_activation
from .errors import SpecError, fmt_shape, invalid_argument
from .registry import Field, Layer, Post, Shape, ShapeContext, register_layer

# -- shared field schemas --------------------------------------------------------------------------------------------
POSITIVE_INT = {"type": "integer", "minimum": 1}
NON_NEGATIVE_INT = {"type": "integer", "minimum": 0}


def _pair_of(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": item, "minItems": 2, "maxItems": 2}


POSITIVE_SIZE = {"anyOf": [POSITIVE_INT, _pair_of(POSITIVE_INT)]}
NON_NEGATIVE_SIZE = {"anyOf": [NON_NEGATIVE_INT, _pair_of(NON_NEGATIVE_INT)]}
PADDING = {"anyOf": [{"enum": ["same", "valid"]}, NON_NEGATIVE_INT, _pair_of(NON_NEGATIVE_INT),
                     _pair_of(_pair_of(NON_NEGATIVE_INT))]}
ACTIVATION = {"title": "activation", "enum": list(ACTIVATIONS)}
BOOLEAN = {"type": "boolean"}
RATE = {"type": "number", "minimum": 0, "exclusiveMaximum": 1}

PADDING_DOC = ("'valid' (none), 'same' (TF-style: output = ceil(input / stride), extra padding at the bottom/right), "
               "an integer or [h, w] (symmetric), or [[top, bottom], [left, right]]")


def pair(value: int | list[int]) -> tuple[int, int]:
    """``5`` → ``(5, 5)``; ``[5, 3]`` → ``(5, 3)``."""
    if isinstance(value, (list, tuple)):
        return int(value[0]), int(value[1])
    return int(value), int(value)


def _size_text(value: int | list[int]) -> str:
    h, w = pair(value)
    return str(h) if h == w else f"{h}x{w}"


def _explicit_pads(padding: Any) -> tuple[tuple[int, int], tuple[int, int]]:
    """[[top, bottom], [left, right]] for an explicit padding value (int, [h, w] or pairs)."""
    if isinstance(padding, list) and isinstance(padding[0], list):
        return (int(padding[0][0]), int(padding[0][1])), (int(padding[1][0]), int(padding[1][1]))
    h, w = pair(padding)
    return (h, h), (w, w)


def _padding_text(padding: Any) -> str:
    if isinstance(padding, str):
        return padding
    (t, b), (l, r) = _explicit_pads(padding)
    if t == b and l == r:
        return f"pad {t}" if t == l else f"pad {t}x{l}"
    return f"pad ({t},{b})x({l},{r})"


def _image(layer: Layer, shape: Shape) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise SpecError((), f"a {layer.type_name} layer expects an image input [C, H, W], received a vector of "
                            f"{shape[0]} values; put it before the flatten, or use dense layers")
    return int(shape[0]), int(shape[1]), int(shape[2])


def _settings_text(layer: Layer) -> str:
    parts = []
    if layer.config.get("batch_norm"):
        parts.append("bn")
    parts.append(layer.config["activation"])
    return ", " + ", ".join(parts)


def _head(modules: "OrderedDict[str, nn.Module]", layer: Layer, channels: int, dims: int) -> nn.Sequential:
    """Append batch norm and activation (in that order) to ``modules``."""
    if layer.config.get("batch_norm"):
        modules["bn"] = nn.BatchNorm2d(channels) if dims == 3 else nn.BatchNorm1d(channels)
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


# -- convolutions ----------------------------------------------------------------------------------------------------
@register_layer
class Conv(Layer):
    """2-D convolution (+ optional batch norm) + activation."""

    type_name = "conv"
    doc = "2-D convolution, then optional batch norm, then the activation."
    role = "weighted"
    fields = {
        "filters": Field(POSITIVE_INT, "Number of output channels."),
        "kernel_size": Field(POSITIVE_SIZE, "Kernel size: an integer or [height, width]."),
        "stride": Field(POSITIVE_SIZE, "Stride: an integer or [height, width].", 1),
        "padding": Field(PADDING, "Padding: " + PADDING_DOC + ".", "valid"),
        **_weighted_fields(),
    }

    def pads(self, height: int, width: int) -> tuple[tuple[int, int], tuple[int, int]]:
        """[[top, bottom], [left, right]] zero padding for an input of ``height`` x ``width``."""
        padding = self.config["padding"]
        if padding == "valid":
            return (0, 0), (0, 0)
        if padding == "same":
            out = []
            for n, k, s in zip((height, width), pair(self.config["kernel_size"]), pair(self.config["stride"])):
                total = max((math.ceil(n / s) - 1) * s + k - n, 0)
                out.append((total // 2, total - total // 2))
            return out[0], out[1]
        return _explicit_pads(padding)

    def output_shape(self, input_shape: Shape, ctx: ShapeContext) -> Shape:
        _, h, w = _image(self, input_shape)
        (t, b), (l, r) = self.pads(h, w)
        k, s = pair(self.config["kernel_size"]), pair(self.config["stride"])
        padded = (h + t + b, w + l + r)
        out = tuple((n - kk) // ss + 1 for n, kk, ss in zip(padded, k, s))
        if k[0] > padded[0] or k[1] > padded[1]:
            where = f"the {h}x{w} input" + (f" padded to {padded[0]}x{padded[1]}" if padded != (h, w) else "")
            raise SpecError(("kernel_size",), f"{_size_text(self.config['kernel_size'])} is larger than {where} "
                                              f"(the output would be {out[0]}x{out[1]})")
        return (self.config["filters"], out[0], out[1])

    def param_count(self, input_shape: Shape) -> int:
        kh, kw = pair(self.config["kernel_size"])
        f = self.config["filters"]
        return kh * kw * input_shape[0] * f + (f if self.config["bias"] else 0) + _settings_params(self, f)

    def build(self, input_shape: Shape, ctx: ShapeContext) -> nn.Module:
        c, h, w = _image(self, input_shape)
        (t, b), (l, r) = self.pads(h, w)
        modules: OrderedDict[str, nn.Module] = OrderedDict()
        symmetric = t == b and l == r
        if not symmetric:
            modules["pad"] = Pad2d(l, r, t, b)
        modules["conv"] = nn.Conv2d(c, self.config["filters"], pair(self.config["kernel_size"]),
                                    pair(self.config["stride"]), padding=(t, l) if symmetric else 0,
                                    bias=self.config["bias"])
        return _head(modules, self, self.config["filters"], 3)

    def mirror(self, input_shape: Shape, output_shape: Shape, post: Post, index: int) -> list[Layer]:
        k, s = pair(self.config["kernel_size"]), pair(self.config["stride"])
        pads = self.pads(input_shape[1], input_shape[2])
        crops = []  # per dim: (crop at the start, effective crop at the end; negative = zero rows appended)
        for n, o, kk, ss, (t, _) in zip(input_shape[1:], output_shape[1:], k, s, pads):
            full = (o - 1) * ss + kk
            crops.append((t, full - n - t))
        padding, output_padding = _transpose_padding(crops, k, s, input_shape[1:], output_shape[1:])
        return [ConvTranspose(filters=input_shape[0], kernel_size=self.config["kernel_size"],
                              stride=self.config["stride"], padding=padding, output_padding=output_padding,
                              activation=post.activation, batch_norm=post.batch_norm, bias=self.config["bias"])]

    def describe(self) -> str:
        stride = pair(self.config["stride"])
        st = "" if stride == (1, 1) else f" s{_size_text(self.config['stride'])}"
        kh, kw = pair(self.config["kernel_size"])
        return (f"{self.type_name} {self.config['filters']}@{kh}x{kw}{st} {_padding_text(self.config['padding'])}"
                f"{_settings_text(self)}")


def _same_transpose_crops(k: int, s: int) -> tuple[int, int]:
    total = k - s
    return (total // 2, total - total // 2) if total >= 0 else (0, total)


def _compact(values: list[int]) -> int | list[int]:
    return values[0] if values[0] == values[1] else list(values)


def _transpose_padding(crops: list[tuple[int, int]], k: tuple[int, int], s: tuple[int, int],
                       in_hw: Shape, out_hw: Shape) -> tuple[Any, Any]:
    """The simplest conv_transpose ``padding``/``output_padding`` that crops exactly ``crops``.

    Prefer 'same' (reads like the encoder), then PyTorch's symmetric padding + output_padding, and fall back to
    explicit [[top, bottom], [left, right]] crops when the encoder's padding was asymmetric.
    """
    if all(n == o * ss and _same_transpose_crops(kk, ss) == c for n, o, kk, ss, c in zip(in_hw, out_hw, k, s, crops)):
        return "same", 0
    starts = [c[0] for c in crops]
    extra = [c[0] - c[1] for c in crops]
    if all(0 <= e < ss for e, ss in zip(extra, s)):
        padding = "valid" if starts == [0, 0] else _compact(starts)
        return padding, _compact(extra)
    padding = [[c[0], max(c[1], 0)] for c in crops]
    return padding, _compact([max(-c[1], 0) for c in crops])


@register_layer
class ConvTranspose(Layer):
    """2-D transposed convolution (+ optional batch norm) + activation."""

    type_name = "conv_transpose"
    doc = ("2-D transposed convolution, then optional batch norm, then the activation. Output size per dimension: "
           "(in - 1) * stride + kernel - crop_start - crop_end + output_padding; 'same' gives in * stride.")
    role = "weighted"
    fields = {
        "filters": Field(POSITIVE_INT, "Number of output channels."),
        "kernel_size": Field(POSITIVE_SIZE, "Kernel size: an integer or [height, width]."),
        "stride": Field(POSITIVE_SIZE, "Stride: an integer or [height, width].", 1),
        "padding": Field(PADDING, "Rows/columns cropped from the full output: 'valid' (none), 'same' (output = "
                                  "input * stride), an integer or [h, w] (both sides, as in PyTorch), or "
                                  "[[top, bottom], [left, right]].", "valid"),
        "output_padding": Field(NON_NEGATIVE_SIZE, "Extra rows/columns added at the bottom/right, smaller than "
                                                   "the stride (as in PyTorch).", 0),
        **_weighted_fields(),
    }

    def check(self) -> None:
        for op, s in zip(pair(self.config["output_padding"]), pair(self.config["stride"])):
            if op >= s:
                raise SpecError(("output_padding",), invalid_argument(
                    "output_padding", f"a value smaller than the stride ({_size_text(self.config['stride'])})",
                    self.config["output_padding"]))

    def crops(self) -> list[tuple[int, int]]:
        """Per dimension (crop at the start, crop at the end); a negative end crop appends zero rows."""
        padding = self.config["padding"]
        k, s = pair(self.config["kernel_size"]), pair(self.config["stride"])
        if padding == "valid":
            return [(0, 0), (0, 0)]
        if padding == "same":
            return [_same_transpose_crops(kk, ss) for kk, ss in zip(k, s)]
        return list(_explicit_pads(padding))

    def output_shape(self, input_shape: Shape, ctx: ShapeContext) -> Shape:
        _, h, w = _image(self, input_shape)
        k, s = pair(self.config["kernel_size"]), pair(self.config["stride"])
        op = pair(self.config["output_padding"])
        out = tuple((n - 1) * ss + kk - a - b + o
                    for n, kk, ss, (a, b), o in zip((h, w), k, s, self.crops(), op))
        if min(out) < 1:
            raise SpecError(("padding",), f"{_padding_text(self.config['padding'])} crops the output of the "
                                          f"{h}x{w} input to {out[0]}x{out[1]}; expected at least 1x1")
        return (self.config["filters"], out[0], out[1])

    def param_count(self, input_shape: Shape) -> int:
        kh, kw = pair(self.config["kernel_size"])
        f = self.config["filters"]
        return kh * kw * input_shape[0] * f + (f if self.config["bias"] else 0) + _settings_params(self, f)

    def build(self, input_shape: Shape, ctx: ShapeContext) -> nn.Module:
        c = _image(self, input_shape)[0]
        k, s = pair(self.config["kernel_size"]), pair(self.config["stride"])
        op = pair(self.config["output_padding"])
        (t, b), (l, r) = self.crops()
        modules: OrderedDict[str, nn.Module] = OrderedDict()
        if t == b >= 0 and l == r >= 0:
            modules["conv"] = nn.ConvTranspose2d(c, self.config["filters"], k, s, padding=(t, l), output_padding=op,
                                                 bias=self.config["bias"])
        else:
            modules["conv"] = nn.ConvTranspose2d(c, self.config["filters"], k, s, bias=self.config["bias"])
            modules["crop"] = Pad2d(-l, op[1] - r, -t, op[0] - b)
        return _head(modules, self, self.config["filters"], 3)

    def mirror(self, input_shape: Shape, output_shape: Shape, post: Post, index: int) -> list[Layer]:
        raise SpecError((), "a conv_transpose layer in the encoder cannot be mirrored; give an explicit decoder")

    def describe(self) -> str:
        text = Conv.describe(self)  # same wording; output_padding appended when used
        op = pair(self.config["output_padding"])
        if op != (0, 0):
            text = text.replace(",", f" +{_size_text(self.config['output_padding'])},", 1)
        return text


# -- pooling -----------------------------------------------------------------------------------------------------
class _Pool(Layer):
    def normalize(self) -> None:
        self.config.setdefault("stride", self.config["pool_size"])

    def output_shape(self, input_shape: Shape, ctx: ShapeContext) -> Shape:
        c, h, w = _image(self, input_shape)
        p, s = pair(self.config["pool_size"]), pair(self.config["stride"])
        if p[0] > h or p[1] > w:
            raise SpecError(("pool_size",), f"{_size_text(self.config['pool_size'])} is larger than the {h}x{w} input")
        return (c, (h - p[0]) // s[0] + 1, (w - p[1]) // s[1] + 1)

    def mirror(self, input_shape: Shape, output_shape: Shape, post: Post, index: int) -> list[Layer]:
        s = pair(self.config["stride"])
        extra = [n - o * ss for n, o, ss in zip(input_shape[1:], output_shape[1:], s)]
        if all(0 <= e < ss for e, ss in zip(extra, s)):
            return [Unpool(size=self.config["stride"], output_padding=_compact(extra))]
        lo = [o * ss for o, ss in zip(output_shape[1:], s)]
        hi = [o * ss + ss - 1 for o, ss in zip(output_shape[1:], s)]
        raise SpecError((), f"the mirrored decoder cannot reach this pool's {fmt_shape(input_shape[1:])} input: "
                            f"unpooling its {fmt_shape(output_shape[1:])} output by {_size_text(self.config['stride'])}"
                            f" gives {fmt_shape(lo)} to {fmt_shape(hi)}; use a stride equal to pool_size, set "
                            "return_indices (maxpool), or give an explicit decoder")

    def describe(self) -> str:
        ph, pw = pair(self.config["pool_size"])
        text = f"{self.type_name} {ph}x{pw}"
        if pair(self.config["stride"]) != pair(self.config["pool_size"]):
            text += f" s{_size_text(self.config['stride'])}"
        return text


_POOL_FIELDS = {
    "pool_size": Field(POSITIVE_SIZE, "Pooling window: an integer or [height, width].", 2),
    "stride": Field(POSITIVE_SIZE, "Stride; defaults to pool_size.", None),
}


@register_layer
class MaxPool(_Pool):
    """2-D max pooling (floor mode, no padding)."""

    type_name = "maxpool"
    doc = "2-D max pooling (no padding; rows that do not fill a window are dropped)."
    fields = {
        **_POOL_FIELDS,
        "return_indices": Field(BOOLEAN, "Keep the argmax positions so the mirrored decoder unpools with them "
                                         "(max_indices unpooling) instead of repeating pixels.", False),
    }

    def build(self, input_shape: Shape, ctx: ShapeContext) -> nn.Module:
        p, s = pair(self.config["pool_size"]), pair(self.config["stride"])
        if self.config["return_indices"]:
            assert ctx.store is not None
            return MaxPoolWithIndices(p, s, ctx.store, (ctx.part, ctx.index))
        return nn.MaxPool2d(p, s)

    def mirror(self, input_shape: Shape, output_shape: Shape, post: Post, index: int) -> list[Layer]:
        if self.config["return_indices"]:
            return [Unpool(size=self.config["stride"], mode="max_indices", indices_from=index)]
        return super().mirror(input_shape, output_shape, post, index)

    def describe(self) -> str:
        return super().describe() + (", indices" if self.config["return_indices"] else "")


@register_layer
class AvgPool(_Pool):
    """2-D average pooling (floor mode, no padding)."""

    type_name = "avgpool"
    doc = "2-D average pooling (no padding; rows that do not fill a window are dropped)."
    fields = dict(_POOL_FIELDS)

    def build(self, input_shape: Shape, ctx: ShapeContext) -> nn.Module:
        return nn.AvgPool2d(pair(self.config["pool_size"]), pair(self.config["stride"]))


@register_layer
class Unpool(Layer):
    """Inverse of a pool: repeat every pixel, or put values back at a max-pool's argmax positions."""

    type_name = "unpool"
    doc = ("Inverse of a pool. mode 'repeat': every pixel repeated size times (then output_padding edge rows "
           "replicated); mode 'max_indices': values placed at the argmax positions of the encoder maxpool "
           "indices_from (which needs return_indices), restoring that pool's input shape.")
    fields = {
        "size": Field(POSITIVE_SIZE, "Repeat factor: an integer or [height, width].", 2),
        "mode": Field({"title": "unpool mode", "enum": ["repeat", "max_indices"]}, "How to unpool.", "repeat"),
        "output_padding": Field(NON_NEGATIVE_SIZE, "Edge rows/columns replicated at the bottom/right after "
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
                    "output_padding", f"a value smaller than size ({_size_text(self.config['size'])})",
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
        c, h, w = _image(self, input_shape)
        if self.config["mode"] == "max_indices":
            pool = self._pool(ctx)
            if tuple(input_shape) != tuple(pool.output_shape):
                raise SpecError((), f"expected the {fmt_shape(pool.output_shape)} output of /encoder/"
                                    f"{self.config['indices_from']}, received {fmt_shape(input_shape)}")
            return tuple(pool.input_shape)
        s, op = pair(self.config["size"]), pair(self.config["output_padding"])
        return (c, h * s[0] + op[0], w * s[1] + op[1])

    def build(self, input_shape: Shape, ctx: ShapeContext) -> nn.Module:
        if self.config["mode"] == "max_indices":
            pool = self._pool(ctx)
            assert ctx.store is not None
            return MaxIndexUnpool(pair(pool.layer.config["pool_size"]), pair(pool.layer.config["stride"]),
                                  pool.input_shape[1:], ctx.store, ("encoder", self.config["indices_from"]))
        return RepeatUnpool(pair(self.config["size"]), pair(self.config["output_padding"]))

    def mirror(self, input_shape: Shape, output_shape: Shape, post: Post, index: int) -> list[Layer]:
        raise SpecError((), "an unpool layer in the encoder cannot be mirrored; give an explicit decoder")

    def describe(self) -> str:
        if self.config["mode"] == "max_indices":
            return f"unpool max_indices of /encoder/{self.config['indices_from']}"
        text = f"unpool x{_size_text(self.config['size'])}"
        if pair(self.config["output_padding"]) != (0, 0):
            text += f" +{_size_text(self.config['output_padding'])}"
        return text


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
    """Flatten [C, H, W] to [C*H*W]."""

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
    doc = "Reshape the sample to [C, H, W] or [D]; one entry may be -1 (inferred)."
    fields = {
        "shape": Field({"type": "array", "items": {"anyOf": [POSITIVE_INT, {"const": -1}]}, "minItems": 1,
                        "maxItems": 3}, "Target shape without the batch dimension."),
    }

    def check(self) -> None:
        shape = self.config["shape"]
        if shape.count(-1) > 1 or len(shape) == 2:
            raise SpecError(("shape",), invalid_argument("shape", "[C, H, W] or [D] with at most one -1", shape))

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
    """Batch normalisation over channels (images) or features (vectors)."""

    type_name = "batchnorm"
    doc = "Batch normalisation over the channels of an image or the features of a vector (not mirrored)."
    role = "batchnorm"
    fields = {
        "momentum": Field({"type": "number", "exclusiveMinimum": 0, "maximum": 1}, "Running-statistics momentum.",
                          0.1),
        "eps": Field({"type": "number", "exclusiveMinimum": 0}, "Added to the variance.", 1e-5),
    }

    def param_count(self, input_shape: Shape) -> int:
        return 2 * input_shape[0]

    def build(self, input_shape: Shape, ctx: ShapeContext) -> nn.Module:
        kind = nn.BatchNorm2d if len(input_shape) == 3 else nn.BatchNorm1d
        return kind(input_shape[0], eps=self.config["eps"], momentum=self.config["momentum"])


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
