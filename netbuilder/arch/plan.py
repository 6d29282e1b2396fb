"""Dry shape inference: the layer-by-layer plan of an autoencoder, computed without allocating any weight.

The plan is what validation checks (every shape rule, the mirror reaching the input shape) and what the builder
turns into modules, so a file that validates is a file that builds.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import JsonPath, SpecError, fmt_shape
from .layers import Activation, L2Normalize
from .registry import Layer, Post, Shape, ShapeContext, layer_from_config


@dataclass(frozen=True)
class PlannedLayer:
    """One layer with its place in the spec and its shapes."""

    part: str                 # "encoder" or "decoder"
    path: JsonPath            # where errors about it point (a mirrored layer points at the encoder layer it mirrors)
    layer: Layer
    input_shape: Shape
    output_shape: Shape
    params: int


@dataclass
class Plan:
    """The inferred network: input shape, encoder and decoder layers with shapes, the code."""

    input_shape: Shape
    encoder: list[PlannedLayer] = field(default_factory=list)
    decoder: list[PlannedLayer] = field(default_factory=list)
    mirrored: bool = True

    @property
    def code_shape(self) -> Shape:
        return self.encoder[-1].output_shape if self.encoder else self.input_shape

    @property
    def code_dim(self) -> int:
        n = 1
        for s in self.code_shape:
            n *= s
        return n

    @property
    def l2_normalized(self) -> bool:
        return bool(self.encoder) and isinstance(self.encoder[-1].layer, L2Normalize)

    @property
    def params(self) -> int:
        return sum(p.params for p in self.encoder + self.decoder)

    def decoder_configs(self) -> list[dict[str, Any]]:
        """The decoder as an explicit layer list (what "decoder": "mirror" expands to)."""
        return [p.layer.get_config() for p in self.decoder]


def _infer(part: str, index: int, path: JsonPath, layer: Layer, shape: Shape, encoder: list[PlannedLayer]) -> PlannedLayer:
    ctx = ShapeContext(part=part, index=index, encoder=encoder)
    try:
        out = tuple(int(s) for s in layer.output_shape(shape, ctx))
    except SpecError as exc:
        raise exc.under(*path) from None
    return PlannedLayer(part, path, layer, tuple(shape), out, layer.param_count(shape))


def _post_before(encoder: list[PlannedLayer], index: int, output_activation: str) -> Post:
    """Settings of the representation entering encoder layer ``index`` (what its mirror must produce)."""
    activation = None
    batch_norm = False
    for planned in reversed(encoder[:index]):
        layer = planned.layer
        if layer.role == "activation":
            activation = activation or layer.config["name"]
        elif layer.role == "batchnorm":
            batch_norm = True
        elif layer.role == "weighted":
            return Post(activation or layer.config["activation"], batch_norm or layer.config["batch_norm"])
    # No weighted layer before: this representation is the data itself.
    return Post(output_activation, False, output=True)


def mirror_decoder(encoder: list[PlannedLayer], input_shape: Shape, output_activation: str) -> list[PlannedLayer]:
    """The decoder mirroring ``encoder``: walk it backwards, each layer inverted by its own ``mirror`` rule."""
    decoder: list[PlannedLayer] = []
    shape = encoder[-1].output_shape if encoder else input_shape
    used_output = False
    for i in range(len(encoder) - 1, -1, -1):
        enc = encoder[i]
        post = _post_before(encoder, i, output_activation)
        try:
            layers = enc.layer.mirror(enc.input_shape, enc.output_shape, post, i)
        except SpecError as exc:
            raise exc.under(*enc.path) from None
        for layer in layers:
            planned = _infer("decoder", len(decoder), enc.path, layer, shape, encoder)
            decoder.append(planned)
            shape = planned.output_shape
            used_output = used_output or (post.output and layer.role == "weighted")
        if not layers and enc.input_shape != enc.output_shape:
            raise SpecError(enc.path, f"a {enc.layer.type_name} layer changes the shape ({fmt_shape(enc.input_shape)} "
                                      f"to {fmt_shape(enc.output_shape)}) but has no mirror rule; give an explicit "
                                      "decoder")
        if layers and shape != enc.input_shape:  # a mirror rule that does not invert its layer is a bug, but say so
            raise SpecError(enc.path, f"the mirrored decoder cannot reach this layer's {fmt_shape(enc.input_shape)} "
                                      f"input, it gives {fmt_shape(shape)}; give an explicit decoder")
    if not used_output and output_activation != "linear":
        decoder.append(_infer("decoder", len(decoder), ("output_activation",), Activation(name=output_activation),
                              shape, encoder))
    return decoder


def _plan_layers(part: str, configs: list[dict[str, Any]], shape: Shape, out: list, encoder: list) -> Shape:
    """Plan one part's layers in order, appending to ``out``; returns the part's output shape.

    ``encoder`` is the encoder planned so far (layers such as index-based unpooling refer back to it).
    """
    for i, config in enumerate(configs):
        try:
            layer = layer_from_config(config)
        except SpecError as exc:
            raise exc.under(part, i) from None
        planned = _infer(part, i, (part, i), layer, shape, encoder)
        out.append(planned)
        shape = planned.output_shape
    return shape


def plan_network(spec: dict[str, Any]) -> Plan:
    """Infer every shape of a resolved spec (defaults merged); raise :class:`SpecError` at the offending path."""
    input_shape: Shape = tuple(spec["input_shape"])
    plan = Plan(input_shape=input_shape, mirrored=spec.get("decoder", "mirror") == "mirror")
    shape = _plan_layers("encoder", spec["encoder"], input_shape, plan.encoder, plan.encoder)
    if (spec.get("latent") or {}).get("l2_normalize") and not plan.l2_normalized:
        plan.encoder.append(_infer("encoder", len(plan.encoder), ("latent", "l2_normalize"), L2Normalize(), shape,
                                   plan.encoder))
    output_activation = spec.get("output_activation", "sigmoid")
    if plan.mirrored:
        plan.decoder = mirror_decoder(plan.encoder, input_shape, output_activation)
    else:
        shape = _plan_layers("decoder", spec["decoder"], plan.code_shape, plan.decoder, plan.encoder)
        if shape != input_shape:
            where = ("decoder", len(spec["decoder"]) - 1) if spec["decoder"] else ("decoder",)
            raise SpecError(where, f"the decoder ends at {fmt_shape(shape)}, expected the input shape "
                                   f"{fmt_shape(input_shape)}")
    return plan
