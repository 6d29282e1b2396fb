"""The layer registry (one parametrised test over every registered type) and the clustering head."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from netbuilder.arch import LAYERS, ClusteringLayer, Layer, get_layer_class, layer_from_config
from netbuilder.arch.blocks import IndexStore
from netbuilder.arch.registry import ShapeContext
from netbuilder.errors import ArchError

# One example per registered type: (config, input shape, expected output shape). A new layer type fails
# test_every_registered_type_has_an_example until it gets one here.
EXAMPLES: dict[str, tuple[dict, tuple[int, ...], tuple[int, ...]]] = {
    "conv": ({"type": "conv", "filters": 4, "kernel_size": [3, 5], "stride": 2, "padding": "same",
              "batch_norm": True}, (2, 9, 10), (4, 5, 5)),
    "conv_transpose": ({"type": "conv_transpose", "filters": 3, "kernel_size": 3, "stride": 2,
                        "padding": [[0, 1], [1, 0]], "output_padding": 1}, (2, 4, 4), (3, 9, 9)),
    "maxpool": ({"type": "maxpool", "pool_size": 3, "stride": 2}, (2, 9, 8), (2, 4, 3)),
    "avgpool": ({"type": "avgpool", "pool_size": [2, 1]}, (2, 9, 8), (2, 4, 8)),
    "unpool": ({"type": "unpool", "size": 2, "output_padding": [1, 0]}, (2, 4, 3), (2, 9, 6)),
    "dense": ({"type": "dense", "units": 7, "batch_norm": True, "dropout": 0.5, "activation": "tanh"}, (12,), (7,)),
    "flatten": ({"type": "flatten"}, (2, 3, 4), (24,)),
    "reshape": ({"type": "reshape", "shape": [2, -1, 3]}, (24,), (2, 4, 3)),
    "batchnorm": ({"type": "batchnorm", "momentum": 0.2}, (3, 4, 4), (3, 4, 4)),
    "layernorm": ({"type": "layernorm"}, (3, 4, 4), (3, 4, 4)),
    "dropout": ({"type": "dropout", "rate": 0.3}, (10,), (10,)),
    "activation": ({"type": "activation", "name": "leaky_relu", "negative_slope": 0.2}, (2, 3, 3), (2, 3, 3)),
    "l2normalize": ({"type": "l2normalize"}, (2, 3, 3), (2, 3, 3)),
}


# The same types on a signal [C, L]: the dimension comes from the input shape. Types that only take a flat input
# have no signal example (FLAT_ONLY); every other new type needs one.
SIGNAL_EXAMPLES: dict[str, tuple[dict, tuple[int, ...], tuple[int, ...]]] = {
    "conv": ({"type": "conv", "filters": 4, "kernel_size": 5, "stride": 2, "padding": "same",
              "batch_norm": True, "activation": "leaky_relu"}, (3, 64), (4, 32)),
    "conv_transpose": ({"type": "conv_transpose", "filters": 3, "kernel_size": 3, "stride": 2,
                        "padding": [[0, 1]], "output_padding": 1}, (2, 4), (3, 9)),
    "maxpool": ({"type": "maxpool", "pool_size": 3, "stride": 2}, (2, 9), (2, 4)),
    "avgpool": ({"type": "avgpool", "pool_size": 2}, (2, 9), (2, 4)),
    "unpool": ({"type": "unpool", "size": 2, "output_padding": 1}, (2, 4), (2, 9)),
    "flatten": ({"type": "flatten"}, (2, 12), (24,)),
    "reshape": ({"type": "reshape", "shape": [2, -1]}, (24,), (2, 12)),
    "batchnorm": ({"type": "batchnorm", "momentum": 0.2}, (3, 16), (3, 16)),
    "layernorm": ({"type": "layernorm"}, (3, 16), (3, 16)),
    "dropout": ({"type": "dropout", "rate": 0.3}, (3, 16), (3, 16)),
    "activation": ({"type": "activation", "name": "leaky_relu", "negative_slope": 0.2}, (2, 5), (2, 5)),
    "l2normalize": ({"type": "l2normalize"}, (2, 5), (2, 5)),
}
FLAT_ONLY = {"dense"}


def test_every_registered_type_has_an_example() -> None:
    assert set(EXAMPLES) == set(LAYERS)
    assert set(SIGNAL_EXAMPLES) == set(LAYERS) - FLAT_ONLY
    required = {"conv", "conv_transpose", "maxpool", "avgpool", "unpool", "dense", "flatten", "reshape",
                "batchnorm", "layernorm", "dropout", "activation", "l2normalize"}
    assert required <= set(LAYERS)


def _check_layer(name: str, config: dict, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> nn.Module:
    """Config round trip, shape rule, parameter count and a forward pass of one layer agree; the module."""
    layer = layer_from_config(config)
    assert isinstance(layer, LAYERS[name]) and isinstance(layer, Layer)
    # get_config/from_config round trip; the full config includes every default
    full = layer.get_config()
    assert set(full) - {"type"} >= set(config) - {"type"}
    assert LAYERS[name].from_config(full).get_config() == full
    assert layer_from_config(full) == layer
    # shape rule, parameter count and module agree
    ctx = ShapeContext("encoder", 0, [], IndexStore())
    assert layer.output_shape(in_shape, ctx) == out_shape
    module = layer.build(in_shape, ctx).train()
    torch.manual_seed(0)
    x = torch.randn(4, *in_shape)
    y = module(x)
    assert tuple(y.shape) == (4, *out_shape)
    assert torch.isfinite(y).all()
    assert layer.param_count(in_shape) == sum(p.numel() for p in module.parameters())
    for text in (layer.describe(), layer.describe_for(in_shape)):
        assert isinstance(text, str) and text.startswith(name.split("_")[0][:4])
    return module


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_registered_layer(name: str) -> None:
    _check_layer(name, *EXAMPLES[name])


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_registered_layer_on_a_signal(name: str) -> None:
    if name in FLAT_ONLY:
        with pytest.raises(ArchError, match="expects a flat input, received 3x16"):
            layer_from_config(EXAMPLES[name][0]).output_shape((3, 16), ShapeContext("encoder", 0, []))
        return
    module = _check_layer(name, *SIGNAL_EXAMPLES[name])
    # a 1-D layer, not a 2-D one that happened to accept the tensor (torch takes [C, H, W] as one unbatched image)
    assert not any(type(m).__name__.endswith("2d") for m in module.modules())


def test_signal_layers_are_1d_modules_and_describe_1d_sizes() -> None:
    ctx = ShapeContext("encoder", 0, [], IndexStore())
    conv = layer_from_config(SIGNAL_EXAMPLES["conv"][0])
    block = conv.build((3, 64), ctx)
    assert isinstance(block.conv, nn.Conv1d) and isinstance(block.bn, nn.BatchNorm1d)
    assert block.conv.kernel_size == (5,) and block.conv.stride == (2,)
    assert conv.describe_for((3, 64)) == "conv 4@5 s2 same, bn, leaky_relu"
    assert conv.describe_for((3, 64, 64)) == conv.describe() == "conv 4@5x5 s2 same, bn, leaky_relu"
    transpose = layer_from_config(SIGNAL_EXAMPLES["conv_transpose"][0])
    assert transpose.describe_for((2, 4)) == transpose.describe() == "conv_transpose 3@3 s2 pad (0,1) +1, relu"
    # output_padding goes after the padding, not inside an explicit padding's "(0,1)"
    image_transpose = layer_from_config(EXAMPLES["conv_transpose"][0])
    assert image_transpose.describe() == "conv_transpose 3@3x3 s2 pad (0,1)x(1,0) +1, relu"
    pool = layer_from_config({"type": "maxpool", "pool_size": 2, "return_indices": True})
    assert isinstance(pool.build((2, 8), ctx).pool, nn.MaxPool1d)
    assert pool.describe_for((2, 8)) == "maxpool 2, indices"
    assert isinstance(layer_from_config({"type": "avgpool"}).build((2, 8), ctx), nn.AvgPool1d)
    assert isinstance(layer_from_config({"type": "batchnorm"}).build((2, 8), ctx), nn.BatchNorm1d)


@pytest.mark.parametrize("config, field, message", [
    ({"type": "conv", "filters": 2, "kernel_size": [3, 3]}, "kernel_size",
     "expected an integer for the 1-D input, received [3, 3] (a [height, width] pair is for images)"),
    ({"type": "maxpool", "pool_size": 2, "stride": [1, 2]}, "stride", "expected an integer for the 1-D input"),
    ({"type": "conv", "filters": 2, "kernel_size": 3, "padding": [1, 2]}, "padding",
     "expected 'same', 'valid', an integer or [[left, right]] for the 1-D input, received [1, 2]"),
    ({"type": "conv", "filters": 2, "kernel_size": 3, "padding": [[1, 2], [0, 0]]}, "padding",
     "expected 'same', 'valid', an integer or [[left, right]] for the 1-D input"),
    ({"type": "conv", "filters": 2, "kernel_size": 9}, "kernel_size", "9 is larger than the 4-long input "
                                                                      "(the output would be -4)"),
    ({"type": "conv", "filters": 2, "kernel_size": 9, "padding": 1}, "kernel_size",
     "9 is larger than the 4-long input padded to 6 (the output would be -2)"),
    ({"type": "avgpool", "pool_size": 5}, "pool_size", "5 is larger than the 4-long input"),
    ({"type": "conv_transpose", "filters": 2, "kernel_size": 1, "padding": 3}, "padding",
     "pad 3 crops the output of the 4-long input to -2; expected at least 1"),
])
def test_signal_shape_errors_name_the_field(config: dict, field: str, message: str) -> None:
    with pytest.raises(ArchError) as err:
        layer_from_config(config).output_shape((3, 4), ShapeContext("encoder", 0, []))
    assert str(err.value).startswith(f"/{field}: {message}")


def test_a_single_padding_pair_is_for_signals_only() -> None:
    conv = layer_from_config({"type": "conv", "filters": 2, "kernel_size": 3, "padding": [[1, 0]]})
    assert conv.output_shape((1, 8), ShapeContext("encoder", 0, [])) == (2, 7)
    with pytest.raises(ArchError, match=r"^/padding: expected 'same', 'valid', an integer or \[h, w\] or "
                                        r"\[\[top, bottom\], \[left, right\]\] for the 2-D input"):
        conv.output_shape((1, 8, 8), ShapeContext("encoder", 0, []))


def test_layer_values() -> None:
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    ctx = ShapeContext("encoder", 0, [], IndexStore())
    unpool = layer_from_config({"type": "unpool", "size": 2, "output_padding": 1}).build((1, 2, 2), ctx)
    assert unpool(x)[0, 0].tolist() == [[1, 1, 2, 2, 2], [1, 1, 2, 2, 2], [3, 3, 4, 4, 4], [3, 3, 4, 4, 4],
                                        [3, 3, 4, 4, 4]]
    l2 = layer_from_config({"type": "l2normalize"}).build((1, 2, 2), ctx)
    assert torch.allclose(l2(x).flatten(), torch.tensor([1.0, 2, 3, 4]) / math.sqrt(30))
    avg = layer_from_config({"type": "avgpool"}).build((1, 2, 2), ctx)
    assert avg(x).item() == 2.5


def test_same_padding_matches_tensorflow_convention() -> None:
    # 'same' with stride 2 on an even input pads 1 top/left and 2 bottom/right for a 5x5 kernel (TF/Keras);
    # an all-ones kernel on an all-ones input therefore sums 4x4 at the top-left and 3x3 at the bottom-right.
    conv = layer_from_config({"type": "conv", "filters": 1, "kernel_size": 5, "stride": 2, "padding": "same",
                              "activation": "linear", "bias": False})
    module = conv.build((1, 6, 6), ShapeContext("encoder", 0, []))
    torch.nn.init.ones_(module.conv.weight)
    y = module(torch.ones(1, 1, 6, 6))[0, 0]
    assert y.shape == (3, 3)
    assert y[0, 0].item() == 16 and y[2, 2].item() == 9


def test_unknown_layer_type_suggests() -> None:
    with pytest.raises(ArchError, match=r"/type: unknown layer type 'conv2d', .*did you mean 'conv'\?"):
        get_layer_class("conv2d")


def test_keras_style_argument_errors() -> None:
    with pytest.raises(ArchError) as err:
        layer_from_config({"type": "conv", "filters": -5, "kernel_size": 3})
    assert str(err.value) == ("/filters: Invalid value for argument `filters`. Expected an integer >= 1. "
                              "Received filters=-5.")
    with pytest.raises(ArchError) as err:
        layer_from_config({"type": "conv_transpose", "filters": 1, "kernel_size": 3, "stride": 2,
                           "output_padding": 2})
    assert str(err.value) == ("/output_padding: Invalid value for argument `output_padding`. Expected a value "
                              "smaller than the stride (2). Received output_padding=2.")
    with pytest.raises(ArchError, match="Missing required argument `units`"):
        layer_from_config({"type": "dense"})
    with pytest.raises(ArchError, match="/indices_from: Invalid value for argument `indices_from`"):
        layer_from_config({"type": "unpool", "mode": "max_indices"})


def test_clustering_layer_matches_hand_computation() -> None:
    z = torch.tensor([[0.0, 0.0], [1.0, 0.0], [5.0, 5.0]])
    head = ClusteringLayer(2, 2, alpha=1.0, centroids=np.array([[0.0, 0.0], [2.0, 0.0]]))
    q = head(z)
    # alpha = 1: q ∝ 1 / (1 + d²); row 0: d² = 0 and 4 → 1 and 0.2; row 1: d² = 1 and 1 → equal
    assert torch.allclose(q[0], torch.tensor([1 / 1.2, 0.2 / 1.2]))
    assert torch.allclose(q[1], torch.tensor([0.5, 0.5]))
    assert torch.allclose(q.sum(1), torch.ones(3))
    # alpha = 2: q ∝ (1 + d²/2)^(-3/2); row 0: 1 and 3^-1.5
    head2 = ClusteringLayer(2, 2, alpha=2.0, centroids=torch.tensor([[0.0, 0.0], [2.0, 0.0]]))
    w = 3 ** -1.5
    assert torch.allclose(head2(z)[0], torch.tensor([1 / (1 + w), w / (1 + w)]))


def test_clustering_layer_parameters_and_errors() -> None:
    torch.manual_seed(0)
    head = ClusteringLayer(10, 4)
    assert [n for n, _ in head.named_parameters()] == ["centroids"]
    assert head.centroids.shape == (10, 4)
    q = head(torch.randn(7, 4) * 1e3)  # far points: rows still sum to 1, no NaN
    assert torch.allclose(q.sum(1), torch.ones(7)) and not torch.isnan(q).any()
    q.sum().backward()
    assert head.centroids.grad is not None
    head.set_centroids(np.ones((10, 4)))
    assert torch.equal(head.centroids.detach(), torch.ones(10, 4))
    with pytest.raises(ValueError, match=r"Expected shape \(10, 4\)"):
        head.set_centroids(np.ones((3, 4)))
    with pytest.raises(ValueError, match="Invalid value for argument `n_clusters`. Expected a strictly positive "
                                         "integer. Received n_clusters=0."):
        ClusteringLayer(0, 4)
    with pytest.raises(ValueError, match="`alpha`"):
        ClusteringLayer(3, 4, alpha=-1.0)


def test_registering_a_new_type_is_enough_to_use_it() -> None:
    from torch import nn

    from netbuilder.arch import Field, arch_schema, build_autoencoder, register_layer, unregister_layer

    class Scale(nn.Module):
        def __init__(self, factor: float) -> None:
            super().__init__()
            self.factor = factor

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * self.factor

    @register_layer
    class ScaleLayer(Layer):
        type_name = "scale_for_test"
        doc = "Multiply by a constant."
        fields = {"factor": Field({"type": "number", "exclusiveMinimum": 0}, "The factor.", 2.0)}

        def build(self, input_shape, ctx):
            return Scale(self.config["factor"])

    try:
        assert "layer_scale_for_test" in arch_schema()["$defs"]
        spec = {"name": "s", "input_shape": [4], "output_activation": "linear",
                "encoder": [{"type": "scale_for_test", "factor": 3}, {"type": "dense", "units": 2}]}
        model = build_autoencoder(spec)
        assert model.summary()[0]["layer"] == "scale_for_test"
        x = torch.ones(1, 4)
        assert torch.allclose(model.encoder[0](x), 3 * x)
        with pytest.raises(ArchError, match="/encoder/0/factor: expected a number > 0, received -1"):
            build_autoencoder(dict(spec, encoder=[{"type": "scale_for_test", "factor": -1}]))
    finally:
        unregister_layer("scale_for_test")
    assert "layer_scale_for_test" not in arch_schema()["$defs"]
