"""Every class of mistake is one line naming the file, the arch (index and name) and the JSON path."""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from netbuilder.arch import build_autoencoder, check_arch_file, load_arch_file
from netbuilder.errors import ArchError, NetbuilderError

ROOT = Path(__file__).resolve().parents[1]
LEGACY = json.loads((ROOT / "tests" / "data" / "legacy_mnist.json").read_text())

GOOD: dict[str, Any] = {
    "name": "small", "input_shape": [1, 28, 28],
    "encoder": [{"type": "conv", "filters": 8, "kernel_size": 5},
                {"type": "maxpool"},
                {"type": "conv", "filters": 8, "kernel_size": 3},
                {"type": "flatten"},
                {"type": "dense", "units": 10, "activation": "linear"}],
}


def _error(tmp_path: Path, archs: Any) -> str:
    """The one-line message of loading ``archs`` (written to a file, after a valid first arch)."""
    path = tmp_path / "archs.json"
    path.write_text(json.dumps(archs))
    with pytest.raises(ArchError) as err:
        load_arch_file(path)
    message = str(err.value)
    assert "\n" not in message and isinstance(err.value, NetbuilderError)
    return message.replace(str(path), "FILE")


def _bad(tmp_path: Path, edit) -> str:
    arch = copy.deepcopy(GOOD)
    arch["name"] = "bad"
    edit(arch)
    return _error(tmp_path, [GOOD, arch])


def test_good_arch_is_valid() -> None:
    assert build_autoencoder(GOOD).code_dim == 10


def test_unknown_layer_type(tmp_path: Path) -> None:
    msg = _bad(tmp_path, lambda a: a["encoder"][2].update(type="Conv2D"))
    assert msg.startswith('FILE: arch 1 "bad": /encoder/2/type: unknown layer type \'Conv2D\', expected one of ')
    assert msg.endswith("did you mean 'conv'?")


def test_unknown_key_with_suggestion(tmp_path: Path) -> None:
    msg = _bad(tmp_path, lambda a: a["encoder"][0].update(kernel=3))
    assert msg.startswith('FILE: arch 1 "bad": /encoder/0/kernel: unknown field \'kernel\' in the conv layer')
    assert msg.endswith("did you mean 'kernel_size'?")
    msg = _bad(tmp_path, lambda a: a.update(trainig={"epochs": 3}))
    assert msg.startswith('FILE: arch 1 "bad": /trainig: unknown field') and msg.endswith("did you mean 'training'?")


def test_missing_field(tmp_path: Path) -> None:
    msg = _bad(tmp_path, lambda a: a["encoder"][2].pop("filters"))
    assert msg == ('FILE: arch 1 "bad": /encoder/2/filters: expected an integer >= 1, received nothing '
                   '(the field is missing)')
    msg = _bad(tmp_path, lambda a: a.pop("input_shape"))
    assert msg.startswith('FILE: arch 1 "bad": /input_shape: expected a list [C, H, W], [C, L] or [D] of positive integers')


def test_mistyped_field(tmp_path: Path) -> None:
    msg = _bad(tmp_path, lambda a: a["encoder"][4].update(units="10"))
    assert msg == 'FILE: arch 1 "bad": /encoder/4/units: expected an integer >= 1, received "10" (a string)'
    msg = _bad(tmp_path, lambda a: a["encoder"][0].update(kernel_size=[5, 0]))
    assert msg == 'FILE: arch 1 "bad": /encoder/0/kernel_size/1: expected an integer >= 1, received 0 (an integer)'
    msg = _bad(tmp_path, lambda a: a.update(training={"optimizer": "adamw"}))
    assert msg.startswith('FILE: arch 1 "bad": /training/optimizer: unknown optimizer \'adamw\', expected one of '
                          'adam, sgd')


def test_shape_shrinks_to_zero(tmp_path: Path) -> None:
    # 28 -> 24 -> 12 -> 10: a fourth 11x11 conv would leave 0x0
    msg = _bad(tmp_path, lambda a: a["encoder"].insert(3, {"type": "conv", "filters": 4, "kernel_size": 11}))
    assert msg == ('FILE: arch 1 "bad": /encoder/3/kernel_size: 11 is larger than the 10x10 input '
                   '(the output would be 0x0)')
    decoder = [{"type": "dense", "units": 784}, {"type": "reshape", "shape": [1, 28, 28]},
               {"type": "conv_transpose", "filters": 1, "kernel_size": 3, "padding": 15}]
    msg = _bad(tmp_path, lambda a: a.update(decoder=decoder))
    assert msg == ('FILE: arch 1 "bad": /decoder/2/padding: pad 15 crops the output of the 28x28 input to 0x0; '
                   'expected at least 1x1')


def test_kernel_larger_than_input_in_original_format(tmp_path: Path) -> None:
    arch = copy.deepcopy(LEGACY[0])
    arch["layers"][5]["filter_size"] = [9, 9]
    msg = _error(tmp_path, [LEGACY[1], arch])
    assert msg == 'FILE: arch 1 "c-5": /layers/5/filter_size: 9 is larger than the 4x4 input (the output would be -4x-4)'


def test_pool_larger_than_input(tmp_path: Path) -> None:
    msg = _bad(tmp_path, lambda a: a["encoder"].insert(3, {"type": "avgpool", "pool_size": [2, 20]}))
    assert msg == 'FILE: arch 1 "bad": /encoder/3/pool_size: 2x20 is larger than the 10x10 input'


def test_reshape_mismatch(tmp_path: Path) -> None:
    msg = _bad(tmp_path, lambda a: a["encoder"].__setitem__(3, {"type": "reshape", "shape": [8, 10, 9]}))
    assert msg == 'FILE: arch 1 "bad": /encoder/3/shape: 8x10x9 has 720 values but the 8x10x10 input has 800'


def test_dense_on_image(tmp_path: Path) -> None:
    msg = _bad(tmp_path, lambda a: a["encoder"].pop(3))
    assert msg.startswith('FILE: arch 1 "bad": /encoder/3: a dense layer expects a flat input, received 8x10x10')


def test_mirror_cannot_reach_input(tmp_path: Path) -> None:
    # a 3x3 stride-2 pool on 24x24 gives 11x11; repeating by 2 gives 22 or 23 rows, never 24
    msg = _bad(tmp_path, lambda a: a["encoder"].__setitem__(1, {"type": "maxpool", "pool_size": 3, "stride": 2}))
    assert msg.startswith('FILE: arch 1 "bad": /encoder/1: the mirrored decoder cannot reach this pool\'s 24x24 '
                          'input: unpooling its 11x11 output by 2 gives 22x22 to 23x23')
    # the same pool keeping its indices can be inverted exactly
    arch = copy.deepcopy(GOOD)
    arch["encoder"][1] = {"type": "maxpool", "pool_size": 3, "stride": 2, "return_indices": True}
    assert build_autoencoder(arch).input_shape == (1, 28, 28)


def test_explicit_decoder_must_end_at_input(tmp_path: Path) -> None:
    decoder = [{"type": "dense", "units": 784}, {"type": "reshape", "shape": [1, 28, 28]},
               {"type": "conv_transpose", "filters": 1, "kernel_size": 3, "padding": 2}]
    msg = _bad(tmp_path, lambda a: a.update(decoder=decoder))
    assert msg == 'FILE: arch 1 "bad": /decoder/2: the decoder ends at 1x26x26, expected the input shape 1x28x28'


def test_value_from_defaults_is_named(tmp_path: Path) -> None:
    decoder = [{"type": "dense", "units": 784}, {"type": "reshape", "shape": [1, 28, 28]},
               {"type": "conv_transpose", "filters": 1, "kernel_size": 3, "padding": 1}]
    msg = _bad(tmp_path, lambda a: a.update(decoder=decoder, defaults={"conv_transpose": {"output_padding": 1}}))
    assert msg.startswith('FILE: arch 1 "bad": /decoder/2/output_padding: Invalid value for argument `output_padding`')
    assert msg.endswith("(the value comes from /defaults/conv_transpose/output_padding)")


def test_defaults_and_explicit_decoder_output_layer() -> None:
    arch = copy.deepcopy(GOOD)
    arch["defaults"] = {"conv": {"batch_norm": True}, "dense": {"activation": "elu"},
                        "conv_transpose": {"activation": "relu"}}
    arch["decoder"] = [{"type": "dense", "units": 196}, {"type": "reshape", "shape": [1, 14, 14]},
                       {"type": "conv_transpose", "filters": 1, "kernel_size": 2, "stride": 2}]
    model = build_autoencoder(arch)
    enc = model.spec["encoder"]
    assert [l.get("batch_norm") for l in enc if l["type"] == "conv"] == [True, True]
    assert enc[4]["activation"] == "linear"  # the layer's own value wins over the defaults
    dec = model.spec["decoder"]
    assert dec[0]["activation"] == "elu"
    # the output layer gets output_activation, not the conv_transpose default
    assert dec[2]["activation"] == "sigmoid" and dec[2]["batch_norm"] is False


def test_legacy_errors_use_original_paths(tmp_path: Path) -> None:
    arch = copy.deepcopy(LEGACY[0])
    arch["layers"][3]["num_filter"] = 3
    assert _error(tmp_path, [arch]).startswith('FILE: arch 0 "c-5": /layers/3/num_filter: unknown field')
    arch = copy.deepcopy(LEGACY[0])
    arch["layers"][1]["type"] = "Conv2d"
    assert _error(tmp_path, [arch]).endswith("did you mean 'Conv2D'?")
    arch = copy.deepcopy(LEGACY[0])
    arch["layers"].pop(0)
    assert _error(tmp_path, [arch]) == ('FILE: arch 0 "c-5": /layers/0/type: expected \'Input\' as the first layer '
                                        '(it gives the input shape), received \'Conv2D\'')


def test_file_level_errors(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('[\n  {"name": "x",\n   "input_shape": [1, 2, 3]\n   "encoder": []}\n]')
    with pytest.raises(ArchError) as err:
        load_arch_file(path)
    assert str(err.value) == f"{path}: invalid JSON at line 4 column 4: Expecting ',' delimiter"
    path.write_bytes(b'[{"name": "caf\xe9"}]')
    with pytest.raises(ArchError, match=r"expected UTF-8 text, received byte 0xe9 at line 1 \(byte offset 14\)"):
        load_arch_file(path)
    path.write_text("[]")
    with pytest.raises(ArchError, match="expected at least one architecture, received an empty list"):
        load_arch_file(path)
    path.write_text('"mnist"')
    with pytest.raises(ArchError, match="expected a list of architectures or one architecture object"):
        load_arch_file(path)
    path.write_text('{"name": "a", "name": "b"}')
    with pytest.raises(ArchError, match='duplicate key "name"'):
        load_arch_file(path)
    with pytest.raises(ArchError, match="nothere.json: no such file"):
        load_arch_file(tmp_path / "nothere.json")


def test_single_object_file_and_duplicate_names(tmp_path: Path) -> None:
    path = tmp_path / "one.json"
    path.write_text(json.dumps(GOOD))
    assert [s["name"] for s in load_arch_file(path)] == ["small"]
    msg = _error(tmp_path, [GOOD, GOOD])
    assert msg == 'FILE: arch 1 "small": /name: expected a name unique in the file, received "small" (also arch 0)'
    digits = dict(GOOD, name="7")
    assert "/name: expected a name that is not only digits" in _error(tmp_path, [digits])


def test_check_arch_file_reports_each_arch(tmp_path: Path) -> None:
    bad = copy.deepcopy(GOOD)
    bad["name"] = "bad"
    bad["encoder"][0]["filters"] = 0
    path = tmp_path / "mixed.json"
    path.write_text(json.dumps([GOOD, bad, dict(GOOD, name="other")]))
    checks = check_arch_file(path)
    assert [c.ok for c in checks] == [True, False, True]
    assert checks[1].detail == "/encoder/0/filters: expected an integer >= 1, received 0 (an integer)"
    assert str(checks[1].error) == f'{path}: arch 1 "bad": ' + checks[1].detail
