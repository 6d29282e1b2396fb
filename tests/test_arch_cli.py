"""``netbuilder arch show | validate | schema`` through the real command group."""
from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from netbuilder.arch import arch_schema
from netbuilder.cli import main

ROOT = Path(__file__).resolve().parents[1]
MNIST = str(ROOT / "netbuilder" / "archs" / "mnist.json")
LEGACY = str(ROOT / "tests" / "data" / "legacy_mnist.json")


def _run(*args: str):
    return CliRunner().invoke(main, list(args))


def _table(stdout: str) -> list[list[str]]:
    """(part, output shape, params) of every layer row."""
    rows = []
    for line in stdout.splitlines():
        cells = line.split()
        if cells and cells[0] in ("encoder", "decoder"):
            rows.append([cells[0], cells[-2], cells[-1]])
    return rows


def test_show_original_network() -> None:
    result = _run("arch", "show", MNIST, "-a", "1")
    assert result.exit_code == 0, result.output
    rows = _table(result.stdout)
    assert [r[1] for r in rows if r[0] == "encoder"] == ["50x24x24", "50x12x12", "50x8x8", "50x4x4", "120x1x1"]
    decoder = [r[1] for r in rows if r[0] == "decoder"]
    assert decoder[-1] == "1x28x28" and decoder[0] == "50x4x4"
    assert rows[0][2] == "1,400"  # 5*5*50 weights + 50 biases + 2*50 batch norm
    assert "code: 120 (120x1x1)" in result.stdout
    assert "parameters: encoder 160,170, decoder 160,051, total 320,221" in result.stdout


def test_show_by_dataset_and_name() -> None:
    result = _run("arch", "show", "MNIST", "-a", "dcec-l2")
    assert result.exit_code == 0, result.output
    assert "code: 10, l2-normalised" in result.stdout
    assert [r[1] for r in _table(result.stdout)][:3] == ["32x14x14", "64x7x7", "128x3x3"]


def test_show_legacy_matches_new_format() -> None:
    new = _run("arch", "show", MNIST, "-a", "original-c5")
    for key in ("0", "1"):
        legacy = _run("arch", "show", LEGACY, "-a", key)
        assert legacy.exit_code == 0, legacy.output
        assert _table(legacy.stdout) == _table(new.stdout)
        assert "parameters: encoder 160,170, decoder 160,051, total 320,221" in legacy.stdout


def test_show_json_writes_out_the_mirror() -> None:
    result = _run("arch", "show", MNIST, "-a", "5", "--json")
    spec = json.loads(result.stdout)
    assert spec["name"] == "dcec-l2"
    assert [l["type"] for l in spec["decoder"]] == ["dense", "reshape", "conv_transpose", "conv_transpose",
                                                    "conv_transpose"]
    assert spec["decoder"][-1]["activation"] == "linear"  # dcec-l2 is trained on MSE


def test_validate(tmp_path: Path) -> None:
    result = _run("arch", "validate", MNIST)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["ok   0 mnist-scan (code 10, 294.8K params)",
                                          "ok   1 original-c5 (code 120, 320.2K params)",
                                          "ok   2 dcec (code 10, 276.0K params)",
                                          "ok   3 dec-dense (code 10, 3.3M params)",
                                          "ok   4 dcec-l2-bce (code 10, 276.0K params)",
                                          "ok   5 dcec-l2 (code 10, 276.0K params)"]
    archs = json.loads(Path(LEGACY).read_text())
    archs[1]["layers"][5]["filter_size"] = [9, 9]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(archs))
    result = _run("arch", "validate", str(bad))
    assert result.exit_code == 2
    assert result.stdout.splitlines() == [
        "ok   0 c-5 (code 120, 320.2K params)",
        "FAIL 1 c-5-indices: /layers/5/filter_size: 9 is larger than the 4x4 input (the output would be -4x-4)"]
    assert result.stderr.strip() == "error: 1 of 2 archs failed validation"


def test_errors_are_one_line_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('[{"name": "x", "input_shape": [1, 8, 8], "encoder": [{"type": "conv", "filters": 4, '
                   '"kernel_size": 3, "paddin": "same"}]}]')
    result = _run("arch", "show", str(bad))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f'error: {bad}: arch 0 "x": /encoder/0/paddin: unknown field')
    assert result.stderr.rstrip().endswith("did you mean 'padding'?")
    result = _run("arch", "show", MNIST, "-a", "7")
    assert result.exit_code == 2 and "arch index 7 is out of range" in result.stderr
    result = _run("arch", "show", "no-such-dataset")
    assert result.exit_code == 2 and "pass --archs FILE" in result.stderr


def test_schema_command_prints_the_schema() -> None:
    result = _run("arch", "schema")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == arch_schema()


def test_validate_applies_cross_field_rules(tmp_path: Path) -> None:
    base = {"input_shape": [1, 8, 8], "encoder": [{"type": "flatten"}, {"type": "dense", "units": 4}]}
    bad = tmp_path / "rules.json"
    bad.write_text(json.dumps([
        {**base, "name": "bce-linear", "output_activation": "linear", "training": {"recon_loss": "bce"}},
        {**base, "name": "umap-kld", "training": {"cluster": {"loss": "kld", "manifold": "umap"}}},
        {**base, "name": "fine", "output_activation": "sigmoid", "training": {"recon_loss": "bce"}}]))
    result = _run("arch", "validate", str(bad))
    assert result.exit_code == 2
    lines = result.stdout.splitlines()
    assert lines[0].startswith("FAIL 0 bce-linear: /training/recon_loss: Invalid value for argument `recon_loss`. "
                               "bce needs a sigmoid output")
    assert lines[1] == "FAIL 1 umap-kld: /training/cluster/manifold: manifold umap is a final clustering step: use " \
                       "it with loss none, selflabel (got loss kld)"
    assert lines[2].startswith("ok   2 fine")
    result = _run("arch", "show", str(bad))
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert f'{bad}: arch 0 "bce-linear": /training/recon_loss:' in result.stderr
