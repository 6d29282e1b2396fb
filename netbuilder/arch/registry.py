"""The layer registry: every layer type is a :class:`Layer` subclass registered under its JSON name.

A registration carries everything the rest of the package needs to know about a type: its fields (each with a
JSON-schema fragment, a default and a doc string, from which the published schema is generated), its shape rule
(:meth:`Layer.output_shape`, used for dry validation before any weight exists), its parameter count, how it is
built into a torch module and how it is mirrored into a decoder. The builder only ever looks types up here, so
adding a layer type is one ``@register_layer`` class plus a test.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar

import jsonschema

from .errors import SpecError, did_you_mean, invalid_argument
from .validation import check

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

    from .blocks import IndexStore
    from .plan import PlannedLayer

Shape = tuple[int, ...]

REQUIRED: Any = object()
"""Marks a field without a default."""


@dataclass(frozen=True)
class Field:
    """One configurable argument of a layer type."""

    schema: dict[str, Any]
    doc: str
    default: Any = REQUIRED

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @property
    def integral(self) -> bool:
        # JSON Schema accepts 5.0 as an integer; torch does not, so such fields are coerced.
        return "number" not in json.dumps(self.schema)

    def fragment(self) -> dict[str, Any]:
        """The field's schema with its doc (and default, when it has a JSON one) for editors."""
        out = {"description": self.doc, **self.schema}
        if not self.required and self.default is not None:
            out["default"] = self.default
        return out


@dataclass(frozen=True)
class Post:
    """What the representation at some shape looks like: the activation and batch norm that produced it.

    The mirrored decoder layer that produces that shape again uses the same settings; at the network input the
    settings are the spec's ``output_activation`` and no batch norm (``output`` is then true).
    """

    activation: str
    batch_norm: bool
    output: bool = False


@dataclass
class ShapeContext:
    """Where a layer sits, for the few shape rules that refer to other layers (max-unpool → its pool)."""

    part: str
    index: int
    encoder: list["PlannedLayer"] = field(default_factory=list)
    store: "IndexStore | None" = None


class Layer:
    """Base class of layer types. Subclasses set ``type_name``, ``doc``, ``fields`` and the shape rule.

    ``Layer(**config)`` validates the config against the type's schema fragment, fills in defaults and runs the
    type's semantic checks; errors are :class:`SpecError` with the path of the field inside the layer.
    """

    type_name: ClassVar[str] = ""
    doc: ClassVar[str] = ""
    fields: ClassVar[dict[str, Field]] = {}
    # How the mirror walk reads this layer: "weighted" layers carry activation/batch_norm settings,
    # "activation" and "batchnorm" layers modify the settings of the representation, "other" layers are neutral.
    role: ClassVar[str] = "other"
    _validator: ClassVar[Any] = None

    def __init__(self, **config: Any) -> None:
        try:
            check({"type": self.type_name, **config}, self._get_validator(), {})
        except SpecError as exc:
            raise self._keras_style(exc, config) from None
        cfg: dict[str, Any] = {}
        for name, spec in self.fields.items():
            value = config.get(name, None if spec.required else copy.deepcopy(spec.default))
            if value is None:
                continue
            cfg[name] = _ints(value) if spec.integral else value
        self.config = cfg
        self.normalize()
        self.check()

    def _keras_style(self, exc: SpecError, config: dict[str, Any]) -> SpecError:
        # Python callers pass arguments, not JSON: word value errors like Keras does.
        name = exc.path[0] if exc.path else None
        if exc.expected is None or name not in self.fields:
            return exc
        if name not in config:
            return SpecError(exc.path, f"Missing required argument `{name}` of a {self.type_name} layer. "
                                       f"Expected {exc.expected}.", exc.expected)
        hint = exc.detail[exc.detail.index("; did you mean"):] if "; did you mean" in exc.detail else ""
        return SpecError(exc.path, invalid_argument(str(name), exc.expected, config[name]) + hint, exc.expected)

    # -- registration hooks -------------------------------------------------------------------------------------
    def normalize(self) -> None:
        """Fill defaults that depend on other fields (e.g. a pool's stride defaults to its size)."""

    def check(self) -> None:
        """Semantic checks the schema cannot express; raise :class:`SpecError` naming the field."""

    def output_shape(self, input_shape: Shape, ctx: ShapeContext) -> Shape:
        """The shape rule: output shape for ``input_shape`` (no batch dimension); raise SpecError if impossible."""
        return tuple(input_shape)

    def param_count(self, input_shape: Shape) -> int:
        """Number of trainable parameters the built module will have for ``input_shape``."""
        return 0

    def build(self, input_shape: Shape, ctx: ShapeContext) -> "nn.Module":
        """A torch module implementing the layer for ``input_shape``."""
        raise NotImplementedError

    def mirror(self, input_shape: Shape, output_shape: Shape, post: Post, index: int) -> list["Layer"]:
        """Decoder layers mapping ``output_shape`` back to ``input_shape`` (empty: not mirrored)."""
        return []

    def describe(self) -> str:
        """A short human description for tables."""
        return self.type_name

    def describe_for(self, input_shape: Shape) -> str:
        """The description of this layer receiving ``input_shape`` (spatial types word 1-D and 2-D sizes
        differently: a 5-long kernel prints as 5, a 5x5 one as 5x5); defaults to :meth:`describe`."""
        return self.describe()

    # -- Keras-style config round trip --------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """The full JSON config (defaults filled in); ``from_config(get_config())`` rebuilds an equal layer."""
        return {"type": self.type_name, **copy.deepcopy(self.config)}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Layer":
        """A layer from a JSON config; the ``type`` key, if present, must name this class."""
        config = dict(config)
        kind = config.pop("type", cls.type_name)
        if kind != cls.type_name:
            raise SpecError(("type",), f"expected '{cls.type_name}', received '{kind}'")
        return cls(**config)

    def __getitem__(self, name: str) -> Any:
        return self.config[name]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Layer) and self.get_config() == other.get_config()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({json.dumps(self.config)})"

    # -- schema -------------------------------------------------------------------------------------------------
    @classmethod
    def schema_fragment(cls) -> dict[str, Any]:
        """The JSON schema of one layer object of this type."""
        return {
            "title": f"{cls.type_name} layer",
            "description": cls.doc,
            "type": "object",
            "properties": {"type": {"const": cls.type_name}, **{n: f.fragment() for n, f in cls.fields.items()}},
            "required": ["type", *[n for n, f in cls.fields.items() if f.required]],
            "additionalProperties": False,
        }

    @classmethod
    def defaults_fragment(cls) -> dict[str, Any]:
        """Schema of this type's entry in an arch's ``defaults`` section: its optional fields only."""
        return {
            "title": f"defaults for {cls.type_name} layers",
            "type": "object",
            "properties": {n: f.fragment() for n, f in cls.fields.items() if not f.required},
            "additionalProperties": False,
        }

    @classmethod
    def _get_validator(cls) -> Any:
        if cls.__dict__.get("_validator") is None:
            cls._validator = jsonschema.Draft202012Validator(cls.schema_fragment())
        return cls._validator


def _ints(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_ints(v) for v in value]
    return value


LAYERS: dict[str, type[Layer]] = {}
"""All registered layer types by JSON name."""

_listeners: list[Callable[[], None]] = []


def on_registry_change(callback: Callable[[], None]) -> Callable[[], None]:
    """Call ``callback`` whenever a type is (un)registered (the schema module drops its caches)."""
    _listeners.append(callback)
    return callback


def register_layer(cls: type[Layer]) -> type[Layer]:
    """Class decorator: register ``cls`` under ``cls.type_name``."""
    name = cls.type_name
    if not name or name in LAYERS:
        raise ValueError(f"layer type name {name!r} is empty or already registered")
    LAYERS[name] = cls
    for callback in _listeners:
        callback()
    return cls


def unregister_layer(name: str) -> None:
    """Remove a registered type (for plugins and tests)."""
    del LAYERS[name]
    for callback in _listeners:
        callback()


def get_layer_class(name: str) -> type[Layer]:
    """The registered class for ``name``; an unknown name is a :class:`SpecError` at ``/type``."""
    try:
        return LAYERS[name]
    except (KeyError, TypeError):
        names = sorted(LAYERS)
        raise SpecError(("type",), f"unknown layer type '{name}', expected one of {', '.join(names)}"
                                   f"{did_you_mean(str(name), names)}") from None


def layer_from_config(config: dict[str, Any]) -> Layer:
    """Instantiate a layer from a JSON config with a ``type`` key."""
    if not isinstance(config, dict):
        raise SpecError((), f"expected a layer object, received {json.dumps(config)[:60]}")
    if "type" not in config:
        raise SpecError(("type",), "expected a layer type, received nothing (the field is missing)")
    return get_layer_class(config["type"]).from_config(config)
