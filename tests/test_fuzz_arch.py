"""Fuzz the arch loader: random JSON either builds a model whose forward pass works, or raises NetbuilderError."""
from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netbuilder.arch import build_autoencoder, load_arch_file
from netbuilder.arch.spec import resolve_spec
from netbuilder.errors import NetbuilderError

ARCHS = Path(__file__).resolve().parents[1] / "netbuilder" / "archs"
SHAPE = (1, 8, 8)
MAX_PARAMS = 2_000_000  # refuse to allocate anything bigger in a test

KEYS = ["name", "type", "units", "filters", "kernel_size", "strides", "padding", "activation", "encoder", "decoder",
        "input_shape", "latent", "pool_size", "defaults", "clustering", "training", "rate", "l2_normalize",
        "n_clusters", "output_activation", "use_bias", "batch_norm", "dropout"]
VALUES = ["dense", "conv", "flatten", "maxpool", "upsample", "relu", "linear", "sigmoid", "same", "valid", "tanh"]

scalars = (st.none() | st.booleans() | st.integers(-5, 70) | st.integers() | st.floats(allow_nan=True)
           | st.sampled_from(VALUES) | st.text(max_size=8))
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), children, max_size=6),
    max_leaves=30,
)


def _shipped_specs() -> list:
    specs = []
    for f in sorted(ARCHS.glob("*.json")):
        try:
            data = json.loads(f.read_text())
        except ValueError:
            continue
        specs.extend(data if isinstance(data, list) else [data])
    return [s for s in specs if isinstance(s, dict)]


SHIPPED = _shipped_specs()


@st.composite
def mutated_arch(draw):
    """A shipped arch with a few random edits deep inside (more likely to get past the top-level checks)."""
    spec = copy.deepcopy(draw(st.sampled_from(SHIPPED)))
    spec["input_shape"] = list(SHAPE)
    for _ in range(draw(st.integers(1, 4))):
        node = spec
        for _ in range(draw(st.integers(0, 4))):  # walk down a random path
            if isinstance(node, dict) and node:
                child = node[draw(st.sampled_from(sorted(node, key=str)))]
            elif isinstance(node, list) and node:
                child = node[draw(st.integers(0, len(node) - 1))]
            else:
                break
            if not isinstance(child, (dict, list)):
                break
            node = child
        if isinstance(node, dict):
            key = draw(st.sampled_from(sorted(node, key=str)) if node and draw(st.booleans()) else st.sampled_from(KEYS))
            if draw(st.integers(0, 5)) == 0:
                node.pop(key, None)
            else:
                node[key] = draw(json_values)
        elif isinstance(node, list):
            if node and draw(st.booleans()):
                node[draw(st.integers(0, len(node) - 1))] = draw(json_values)
            else:
                node.insert(draw(st.integers(0, len(node))), draw(json_values))
    return [spec] if draw(st.booleans()) else spec


def _check(obj) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "archs.json"
        try:
            path.write_text(json.dumps(obj, allow_nan=True))
        except (ValueError, RecursionError):
            return
        try:
            specs = load_arch_file(path)
            for spec in specs:
                _, plan = resolve_spec(spec, input_shape=SHAPE)
                if plan.params > MAX_PARAMS:
                    continue  # the builder refuses such sizes before allocating (arch.builder.MAX_PARAMS)
                model = build_autoencoder(spec, input_shape=SHAPE)
                with torch.no_grad():
                    x_hat, z = model(torch.rand(2, *SHAPE))
                assert x_hat.shape[0] == 2 and z.shape[0] == 2
        except NetbuilderError:
            pass


COMMON = dict(max_examples=500, deadline=None, derandomize=False,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])


@settings(**COMMON)
@given(json_values)
def test_random_json_builds_or_raises_netbuilder_error(obj):
    _check(obj)


@settings(**COMMON)
@given(mutated_arch())
def test_mutated_shipped_arch_builds_or_raises_netbuilder_error(obj):
    _check(obj)
