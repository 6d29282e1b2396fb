"""The original project's archs format, converted to the current one.

An original file is a list of ``{"name", "batch_size", "use_batch_norm", "layers"}`` where ``layers`` is the
encoder only, starting with an ``Input`` layer; the decoder was always generated. Conversion is exact: same
layers, batch norm on every conv/dense but the code layer when ``use_batch_norm`` is 1, ``MaxPool2D*`` pools
unpooled with their own indices. Errors found after conversion are reported at the original file's paths
(``/layers/3/filter_size``, not ``/encoder/2/kernel_size``).
"""
from __future__ import annotations

from typing import Any, Callable

from .errors import JsonPath, SpecError

NON_LINEARITIES = {"rectify": "relu", "linear": "linear", "elu": "elu", "sigmoid": "sigmoid", "tanh": "tanh",
                   "leaky_rectify": "leaky_relu"}
LEGACY_TYPES = {"Input": "Input", "Conv2D": "Conv2D", "MaxPool2D": "MaxPool2D", "MaxPool2D*": "MaxPool2D_indices",
                "Dense": "Dense"}

# Field names of the converted layers → the original names, for error paths.
_FIELD_NAMES = {
    "conv": {"filters": "num_filters", "kernel_size": "filter_size", "activation": "non_linearity",
             "padding": "conv_mode"},
    "maxpool": {"pool_size": "filter_size", "stride": "filter_size", "return_indices": "type"},
    "dense": {"units": "num_units", "activation": "non_linearity"},
}

_POS_INT = {"type": "integer", "minimum": 1}
_SIZE = {"anyOf": [_POS_INT, {"type": "array", "items": _POS_INT, "minItems": 2, "maxItems": 2}]}
_NON_LINEARITY = {"description": "Activation (default rectify).", "title": "non_linearity",
                  "enum": list(NON_LINEARITIES), "default": "rectify"}


def _layer(kind: str, doc: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"title": f"{kind} layer (original format)", "description": doc, "type": "object",
            "properties": {"type": {"const": kind}, **properties}, "required": ["type", *required],
            "additionalProperties": False}


def legacy_defs() -> dict[str, Any]:
    """Schema definitions for the original format (merged into the archs schema)."""
    pool = {"filter_size": {"description": "Pooling window [h, w] (default [2, 2]).", **_SIZE}}
    layers = {
        "Input": _layer("Input", "First layer: the input shape.", {
            "output_shape": {"description": "[C, H, W] or [D].", "title": "list [C, H, W] or [D] of positive "
                                                                           "integers", "type": "array",
                             "items": _POS_INT, "minItems": 1, "maxItems": 3}}, ["output_shape"]),
        "Conv2D": _layer("Conv2D", "2-D convolution, stride 1.", {
            "num_filters": {"description": "Output channels.", **_POS_INT},
            "filter_size": {"description": "Kernel [h, w].", **_SIZE},
            "non_linearity": _NON_LINEARITY,
            "conv_mode": {"description": "Padding (default valid).", "title": "conv_mode", "enum": ["valid", "same"],
                          "default": "valid"}}, ["num_filters", "filter_size"]),
        "MaxPool2D": _layer("MaxPool2D", "Max pooling; mirrored by repeating pixels.", pool, []),
        "MaxPool2D*": _layer("MaxPool2D*", "Max pooling; mirrored by unpooling with its indices.", pool, []),
        "Dense": _layer("Dense", "Fully connected layer (flattens an image input).", {
            "num_units": {"description": "Outputs.", **_POS_INT},
            "non_linearity": _NON_LINEARITY}, ["num_units"]),
    }
    defs: dict[str, Any] = {f"legacy_layer_{LEGACY_TYPES[k]}": v for k, v in layers.items()}
    defs["legacy_layer"] = {
        "title": "layer (original format)", "type": "object", "required": ["type"],
        "properties": {"type": {"title": "layer type", "enum": list(LEGACY_TYPES)}},
        "allOf": [{"if": {"properties": {"type": {"const": k}}, "required": ["type"]},
                   "then": {"$ref": f"#/$defs/legacy_layer_{v}"}} for k, v in LEGACY_TYPES.items()],
    }
    defs["legacy_architecture"] = {
        "title": "architecture (original format)",
        "description": "The original project's format: an encoder-only layer list starting with Input; the "
                       "decoder is the mirror; the last layer is the code.",
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 1},
            "description": {"type": "string"},
            "batch_size": _POS_INT,
            "use_batch_norm": {"description": "1: batch norm after every conv/dense but the code layer.",
                               "enum": [0, 1, True, False]},
            "layers": {"type": "array", "items": {"$ref": "#/$defs/legacy_layer"}, "minItems": 2},
        },
        "required": ["name", "layers"],
        "additionalProperties": False,
    }
    return defs


def _size(value: Any) -> Any:
    # [5, 5] → 5: the converted spec reads (and compares) like a hand-written one.
    return value[0] if isinstance(value, list) and len(value) == 2 and value[0] == value[1] else value


def is_legacy(raw: Any) -> bool:
    """Whether an arch object is in the original format (it has ``layers`` and no ``encoder``)."""
    return isinstance(raw, dict) and "layers" in raw and "encoder" not in raw


def convert_legacy(raw: dict[str, Any]) -> tuple[dict[str, Any], Callable[[JsonPath], JsonPath]]:
    """Convert a schema-valid original-format arch; returns the new spec and a path translator for errors."""
    layers = raw["layers"]
    if layers[0]["type"] != "Input":
        raise SpecError(("layers", 0, "type"), f"expected 'Input' as the first layer (it gives the input shape), "
                                               f"received '{layers[0]['type']}'")
    batch_norm = bool(raw.get("use_batch_norm", 0))
    shape = list(layers[0]["output_shape"])
    dims = len(shape)
    last = len(layers) - 1
    encoder: list[dict[str, Any]] = []
    origin: list[int] = []  # encoder index → original layer index
    for j, layer in enumerate(layers[1:], start=1):
        kind = layer["type"]
        if kind == "Input":
            raise SpecError(("layers", j, "type"), "expected 'Input' only as the first layer, received a second one")
        if kind != "Dense" and dims == 2:
            # Converted as is, a Conv2D/MaxPool2D would silently become 1-D (the current format's conv/maxpool
            # take their dimension from the input); the original format only had 2-D layers.
            raise SpecError(("layers", j, "type"), f"a {kind} layer expects an image input [C, H, W], received the "
                                                   f"signal {shape} (the original format has no 1-D layers; write "
                                                   "the arch in the current format)")
        if kind == "Conv2D":
            cfg = {"type": "conv", "filters": layer["num_filters"], "kernel_size": _size(layer["filter_size"]),
                   "padding": layer.get("conv_mode", "valid"),
                   "activation": NON_LINEARITIES[layer.get("non_linearity", "rectify")],
                   "batch_norm": batch_norm and j != last}
        elif kind in ("MaxPool2D", "MaxPool2D*"):
            cfg = {"type": "maxpool", "pool_size": _size(layer.get("filter_size", 2))}
            if kind == "MaxPool2D*":
                cfg["return_indices"] = True
        else:  # Dense: Lasagne flattened an image input implicitly
            if dims != 1:
                encoder.append({"type": "flatten"})
                origin.append(j)
                dims = 1
            cfg = {"type": "dense", "units": layer["num_units"],
                   "activation": NON_LINEARITIES[layer.get("non_linearity", "rectify")],
                   "batch_norm": batch_norm and j != last}
        encoder.append(cfg)
        origin.append(j)

    spec: dict[str, Any] = {"name": raw["name"]}
    if "description" in raw:
        spec["description"] = raw["description"]
    spec.update({"input_shape": shape, "encoder": encoder, "decoder": "mirror", "legacy": True})
    if "batch_size" in raw:
        spec["training"] = {"batch_size": raw["batch_size"]}

    def translate(path: JsonPath) -> JsonPath:
        head = path[:1]
        if head == ("encoder",) and len(path) >= 2 and isinstance(path[1], int) and path[1] < len(origin):
            j = origin[path[1]]
            if len(path) == 2:
                return ("layers", j)
            field = path[2]
            if field == "batch_norm":
                return ("use_batch_norm",)
            mapped = _FIELD_NAMES.get(encoder[path[1]]["type"], {}).get(str(field))
            return ("layers", j, mapped, *path[3:]) if mapped else ("layers", j)
        if head == ("input_shape",):
            return ("layers", 0, "output_shape", *path[1:])
        if path == ("training", "batch_size"):
            return ("batch_size",)
        if head in (("decoder",), ("output_activation",), ("latent",)):
            return ("layers",)
        return path

    return spec, translate
