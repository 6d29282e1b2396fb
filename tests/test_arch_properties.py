"""Property tests: random conv/pool stacks, on images [C, H, W] and signals [C, L], mirror back to the input
shape, or fail with one located line."""
from __future__ import annotations

import math
import re

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netbuilder.arch import build_autoencoder
from netbuilder.errors import ArchError

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _conv_out(n: int, k: int, s: int, padding: str | int) -> int | None:
    """Reference output size of a conv (None: the kernel does not fit)."""
    if padding == "same":
        return math.ceil(n / s)
    p = 0 if padding == "valid" else int(padding)
    return None if k > n + 2 * p else (n + 2 * p - k) // s + 1


def _extent_text(extent) -> str:
    """How errors name an input's spatial size: 4x4 for an image, 4-long for a signal."""
    return f"{extent[0]}-long" if len(extent) == 1 else "x".join(map(str, extent))


@st.composite
def valid_stacks(draw):
    """(input shape, encoder, expected encoder output shapes) for stacks that are valid by construction.

    Images or signals: a signal's sizes are integers (the only form a 1-D layer accepts).
    """
    dims = draw(st.sampled_from([1, 2]))
    c = draw(st.sampled_from([1, 3] if dims == 2 else [1, 5, 52]))
    hw = [draw(st.integers(5, 36)) for _ in range(dims)]
    shape = (c, *hw)
    encoder, shapes = [], []
    for _ in range(draw(st.integers(1, 5))):
        if draw(st.booleans()):
            k = [draw(st.integers(1, 6)) for _ in range(dims)]
            s = draw(st.integers(1, 3))
            padding = draw(st.sampled_from(["same", "valid", 0, 1, 2]))
            out = [_conv_out(n, kk, s, padding) for n, kk in zip(shape[1:], k)]
            if None in out:
                continue
            f = draw(st.integers(1, 4))
            encoder.append({"type": "conv", "filters": f, "kernel_size": k if dims == 2 else k[0], "stride": s,
                            "padding": padding,
                            "batch_norm": draw(st.booleans()),
                            "activation": draw(st.sampled_from(["relu", "elu", "linear", "tanh"]))})
            shape = (f, *out)
        else:
            p = draw(st.integers(1, 3))
            if p > min(shape[1:]):
                continue
            kind = draw(st.sampled_from(["maxpool", "avgpool"]))
            layer = {"type": kind, "pool_size": p}
            if kind == "maxpool" and draw(st.booleans()):
                layer["return_indices"] = True
            encoder.append(layer)
            shape = (shape[0], *(n // p for n in shape[1:]))
        shapes.append(shape)
    if not encoder:
        encoder, shapes = [{"type": "avgpool", "pool_size": 1}], [(c, *hw)]
    if draw(st.booleans()):
        encoder += [{"type": "flatten"}, {"type": "dense", "units": draw(st.integers(1, 8)), "activation": "linear"}]
        shapes += [(math.prod(shape),), (encoder[-1]["units"],)]
    return [c, *hw], encoder, shapes


@SETTINGS
@given(valid_stacks())
def test_valid_stacks_mirror_to_the_input_shape(case) -> None:
    input_shape, encoder, shapes = case
    model = build_autoencoder({"name": "random", "input_shape": input_shape, "encoder": encoder}).eval()
    rows = model.summary()
    assert [r["output_shape"] for r in rows if r["part"] == "encoder"] == shapes
    assert [r["output_shape"] for r in rows if r["part"] == "decoder"][-1] == tuple(input_shape)
    with torch.no_grad():
        x_hat, z = model(torch.rand(2, *input_shape))
    assert x_hat.shape == (2, *input_shape) and z.shape == (2, model.code_dim)
    assert bool(((x_hat >= 0) & (x_hat <= 1)).all())  # sigmoid output, never an encoder activation
    if len(input_shape) == 2:  # a signal is convolved and pooled in 1-D all the way
        assert not any(type(m).__name__.endswith("2d") for m in model.modules())


_LOCATED = re.compile(r'^arch "random": /encoder/(\d+)(/[a-z_]+)?: \S.*$')


@st.composite
def any_stacks(draw):
    """Random stacks, on images or signals, with no care for validity: kernels and pools often larger than the
    input."""
    hw = [draw(st.integers(2, 12)) for _ in range(draw(st.sampled_from([1, 2])))]
    encoder = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["conv", "maxpool", "avgpool"]))
        if kind == "conv":
            encoder.append({"type": "conv", "filters": 2, "kernel_size": draw(st.integers(1, 9)),
                            "stride": draw(st.integers(1, 4)), "padding": draw(st.sampled_from(["valid", "same", 1]))})
        else:
            encoder.append({"type": kind, "pool_size": draw(st.integers(1, 4)), "stride": draw(st.integers(1, 4))})
    return [1, *hw], encoder


@SETTINGS
@given(any_stacks())
def test_any_stack_builds_or_fails_with_one_located_line(case) -> None:
    input_shape, encoder = case
    try:
        model = build_autoencoder({"name": "random", "input_shape": input_shape, "encoder": encoder})
    except ArchError as exc:
        message = str(exc)
        match = _LOCATED.match(message)
        assert match, message
        assert "\n" not in message and int(match.group(1)) < len(encoder)
        return
    with torch.no_grad():
        x_hat, _ = model.eval()(torch.rand(2, *input_shape))
    assert x_hat.shape == (2, *input_shape)


@SETTINGS
@given(valid_stacks(), st.integers(1, 30), st.data())
def test_oversized_kernel_names_its_layer(case, extra, data) -> None:
    input_shape, encoder, shapes = case
    # cut at a point where the representation is still an image or signal, then add a kernel that cannot fit
    cut = data.draw(st.integers(0, len([s for s in shapes if len(s) == len(input_shape)])))
    shape = tuple(input_shape) if cut == 0 else shapes[cut - 1]
    k = max(shape[1:]) + extra
    bad = encoder[:cut] + [{"type": "conv", "filters": 2, "kernel_size": k}]
    with pytest.raises(ArchError) as exc:
        build_autoencoder({"name": "random", "input_shape": input_shape, "encoder": bad})
    assert str(exc.value).startswith(f'arch "random": /encoder/{cut}/kernel_size: {k} is larger than the '
                                     f"{_extent_text(shape[1:])} input")
