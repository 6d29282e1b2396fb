"""The architecture language: an autoencoder is a JSON spec, validated (structure and shapes) before training.

Public API: :func:`load_arch_file`, :func:`resolve_arch_file`, :func:`select_arch`, :func:`choose_arch` and
:func:`auto_arch` (``-a auto``), :func:`build_autoencoder`,
:class:`NetworkBuilder`, :class:`Autoencoder`, :class:`ClusteringLayer`, :func:`arch_schema`, and the layer
registry (:data:`LAYERS`, :func:`register_layer`, :class:`Layer`).
"""
from . import layers as _layers  # noqa: F401  (registers the built-in layer types first)
from .builder import NetworkBuilder, build_autoencoder
from .errors import SpecError
from .legacy import convert_legacy
from .model import Autoencoder, ClusteringLayer
from .plan import Plan, PlannedLayer, plan_network
from .registry import LAYERS, Field, Layer, get_layer_class, layer_from_config, register_layer, unregister_layer
from .schema import arch_schema
from .spec import (ArchCheck, check_arch_file, load_arch_file, resolve_arch_file, resolve_spec, select_arch,
                   shipped_arch_files)
from .auto import AUTO, auto_arch, auto_spec
from .choice import ArchChoice, choose_arch

__all__ = [
    "load_arch_file", "resolve_arch_file", "select_arch", "shipped_arch_files", "check_arch_file", "ArchCheck", "resolve_spec",
    "build_autoencoder", "NetworkBuilder", "Autoencoder", "ClusteringLayer", "arch_schema", "convert_legacy",
    "Plan", "PlannedLayer", "plan_network", "LAYERS", "Field", "Layer", "register_layer", "get_layer_class",
    "layer_from_config", "unregister_layer", "SpecError", "AUTO", "auto_arch", "auto_spec", "ArchChoice",
    "choose_arch",
]
