"""1-D signals [C, L] (e.g. 52 process variables x 64 time steps): the same layer types as images, 1-D modules,
the mirrored decoder back to [C, L], located one-line errors, and a training path that stays channels-first."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

from netbuilder.arch import build_autoencoder, load_arch_file
from netbuilder.cli import main
from netbuilder.errors import ArchError
from netbuilder.train import encode_all
from netbuilder.train.loop import LoopConfig, train, wants_channels_last


def dcca_arch(f: int = 16, **overrides) -> dict:
    """A DCCA-style signal encoder: three convs (stride 2, 2, 1; f, 2f, 4f channels), batch norm, leaky relu."""
    spec = {
        "name": "dcca-signal", "description": "52 process variables x 64 time steps",
        "input_shape": [52, 64],
        "defaults": {"conv": {"padding": "same", "activation": "leaky_relu", "batch_norm": True}},
        "encoder": [{"type": "conv", "filters": f, "kernel_size": 5, "stride": 2},
                    {"type": "conv", "filters": 2 * f, "kernel_size": 5, "stride": 2},
                    {"type": "conv", "filters": 4 * f, "kernel_size": 3, "stride": 1},
                    {"type": "flatten"},
                    {"type": "dense", "units": 10, "activation": "linear"}],
        "output_activation": "linear",
    }
    spec.update(overrides)
    return spec


def _write(tmp_path: Path, *archs: dict) -> str:
    path = tmp_path / "signals.json"
    path.write_text(json.dumps(list(archs)))
    return str(path)


def _run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_dcca_signal_arch_builds_1d_and_mirrors_to_the_input() -> None:
    model = build_autoencoder(dcca_arch()).eval()
    rows = model.summary()
    assert [r["output_shape"] for r in rows if r["part"] == "encoder"] == [(16, 32), (32, 16), (64, 16), (1024,),
                                                                            (10,)]
    decoder = [r for r in rows if r["part"] == "decoder"]
    assert [r["output_shape"] for r in decoder] == [(1024,), (64, 16), (32, 16), (16, 32), (52, 64)]
    assert decoder[-1]["layer"] == "conv_transpose 52@5 s2 same, linear"
    assert rows[0]["layer"] == "conv 16@5 s2 same, bn, leaky_relu"
    kinds = {type(m) for m in model.modules()}
    assert {nn.Conv1d, nn.ConvTranspose1d, nn.BatchNorm1d, nn.LeakyReLU} <= kinds
    assert not any(k.__name__.endswith("2d") for k in kinds)
    with torch.no_grad():
        x_hat, z = model(torch.rand(3, 52, 64))
    assert x_hat.shape == (3, 52, 64) and z.shape == (3, 10)


def test_arch_show_and_validate_print_1d_shapes(tmp_path: Path) -> None:
    path = _write(tmp_path, dcca_arch())
    result = _run("arch", "show", path)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[2].split() == ["input", "52x64"]
    shapes = [line.split()[-2] for line in lines if line.split()[:1] in (["encoder"], ["decoder"])]
    assert shapes == ["16x32", "32x16", "64x16", "1024", "10", "1024", "64x16", "32x16", "16x32", "52x64"]
    assert "conv 32@5 s2 same, bn, leaky_relu" in result.stdout
    result = _run("arch", "validate", path)
    assert result.exit_code == 0 and result.stdout.startswith("ok   0 dcca-signal (code 10,")
    spec = json.loads(_run("arch", "show", path, "--json").stdout)
    assert spec["input_shape"] == [52, 64]
    assert [(l["type"], l.get("kernel_size"), l.get("stride")) for l in spec["decoder"]] == [
        ("dense", None, None), ("reshape", None, None), ("conv_transpose", 3, 1), ("conv_transpose", 5, 2),
        ("conv_transpose", 5, 2)]
    assert spec["decoder"][1]["shape"] == [64, 16]
    # the written-out decoder is itself a valid explicit decoder
    assert build_autoencoder(spec).summary()[-1]["output_shape"] == (52, 64)


def test_pools_and_odd_lengths_mirror_exactly() -> None:
    spec = {"name": "pools", "input_shape": [3, 23], "encoder": [
        {"type": "conv", "filters": 4, "kernel_size": 2, "stride": 2, "padding": "same"},  # 23 -> 12, asymmetric
        {"type": "maxpool", "pool_size": 3, "stride": 2, "return_indices": True},          # 12 -> 5
        {"type": "avgpool", "pool_size": 2},                                                # 5 -> 2, one dropped
        {"type": "batchnorm"}, {"type": "dropout", "rate": 0.1}]}
    model = build_autoencoder(spec).eval()
    assert [r["layer"] for r in model.summary() if r["part"] == "decoder"] == [
        "unpool x2 +1", "unpool max_indices of /encoder/1", "conv_transpose 3@2 s2 pad (0,1), sigmoid"]
    with torch.no_grad():
        x_hat, z = model(torch.rand(2, 3, 23))
    assert x_hat.shape == (2, 3, 23) and z.shape == (2, 8)


def test_input_shape_override_to_another_signal_length() -> None:
    model = build_autoencoder(dcca_arch(), input_shape=(52, 128))
    assert model.input_shape == (52, 128) and model.summary()[-1]["output_shape"] == (52, 128)
    with pytest.raises(ArchError, match=r'^arch "dcca-signal" \(input 52x2\): /encoder/0/kernel_size: 5 is larger '
                                        r"than the 2-long input padded to 4 \(the output would be 0\)$"):
        build_autoencoder(dcca_arch(defaults={"conv": {"padding": 1}}), input_shape=(52, 2))


def test_kernel_longer_than_the_signal_is_a_located_one_line_error(tmp_path: Path) -> None:
    encoder = dcca_arch()["encoder"][:2] + [{"type": "conv", "filters": 64, "kernel_size": 9, "padding": "valid"}]
    path = _write(tmp_path, dcca_arch(input_shape=[52, 16], encoder=encoder))
    result = _run("arch", "show", path)
    assert result.exit_code == 2 and result.stdout == ""
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1
    assert result.stderr == (f'error: {path}: arch 0 "dcca-signal": /encoder/2/kernel_size: 9 is larger than the '
                             "4-long input (the output would be -4)\n")
    result = _run("arch", "validate", path)
    assert result.exit_code == 2
    assert result.stdout.splitlines() == ["FAIL 0 dcca-signal: /encoder/2/kernel_size: 9 is larger than the 4-long "
                                          "input (the output would be -4)"]


def test_image_sizes_on_a_signal_are_located_errors(tmp_path: Path) -> None:
    spec = dcca_arch(defaults={"conv": {"padding": [2, 2]}})
    with pytest.raises(ArchError) as err:
        load_arch_file(_write(tmp_path, spec))
    assert str(err.value).endswith('arch 0 "dcca-signal": /encoder/0/padding: expected \'same\', \'valid\', an integer '
                                   "or [[left, right]] for the 1-D input, received [2, 2] (a [height, width] pair is "
                                   "for images) (the value comes from /defaults/conv/padding)")
    spec = dcca_arch(encoder=[{"type": "dense", "units": 4}])
    with pytest.raises(ArchError, match=r"/encoder/0: a dense layer expects a flat input, received 52x64; add "):
        build_autoencoder(spec)


def test_original_format_keeps_2d_layers_off_signals() -> None:
    legacy = {"name": "old", "layers": [{"type": "Input", "output_shape": [52, 64]},
                                        {"type": "Conv2D", "num_filters": 8, "filter_size": [3, 3]}]}
    with pytest.raises(ArchError, match=r"^arch \"old\": /layers/1/type: a Conv2D layer expects an image input "
                                        r"\[C, H, W\], received the signal \[52, 64\]"):
        build_autoencoder(legacy)
    dense = {"name": "old", "layers": [{"type": "Input", "output_shape": [52, 64]},
                                       {"type": "Dense", "num_units": 8}]}
    assert build_autoencoder(dense).summary()[-1]["output_shape"] == (52, 64)  # flattened, as Lasagne did


def test_training_and_encoding_a_signal_model_stay_channels_first() -> None:
    # channels-last is a 4-D memory format: a 1-D model is never converted, even when asked to be
    model = build_autoencoder(dcca_arch(f=4))
    assert not wants_channels_last(model, torch.device("cpu"), LoopConfig())
    signals = np.random.default_rng(0).integers(0, 256, size=(40, 52, 64), dtype=np.uint8)

    def loss_fn(x: torch.Tensor, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        assert x.shape[1:] == (52, 64) and x.is_contiguous()
        return {"loss": nn.functional.mse_loss(model(x)[0], x)}

    cfg = LoopConfig(epochs=1, batch_size=16, progress=False, channels_last=True, augment=True)
    result = train(model, signals, loss_fn, cfg, device=torch.device("cpu"))
    assert result.steps == 3 and all(p.is_contiguous() for p in model.parameters())
    codes = encode_all(model, signals, batch_size=16)
    model.eval()
    with torch.no_grad():
        expected = model.encode(torch.from_numpy(signals).float() / 255.0).numpy()
    assert codes.shape == (40, 10) and np.allclose(codes, expected, atol=1e-5)
