"""Bad input sweep: every bad archs file, dataset file, weight file, manifest or option value gives one line
``error: ...`` on stderr, exit code 2, no traceback, and no partial output."""
from __future__ import annotations

import gzip
import json
import re
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from netbuilder.cli import main

SHIPPED_DIGITS = Path(__file__).resolve().parents[1] / "netbuilder" / "archs" / "digits.json"


def run_cli(args: list[str]):
    """Run the CLI in-process; returns (exit code, stdout, stderr)."""
    runner = CliRunner(mix_stderr=False) if "mix_stderr" in CliRunner.__init__.__code__.co_varnames else CliRunner()
    res = runner.invoke(main, args, catch_exceptions=True)
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        import traceback

        raise AssertionError("uncaught exception (a traceback for the user):\n"
                             + "".join(traceback.format_exception(res.exception)))
    return res.exit_code, res.stdout, res.stderr


def assert_one_line_error(args: list[str], *culprits: str) -> str:
    code, out, err = run_cli(args)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, (code, out, err)
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert "Traceback" not in err + out
    for c in culprits:
        assert c in lines[0], (c, lines[0])
    return lines[0]


def no_outputs(root: Path) -> bool:
    return not (root / "saved_params").exists() or not any(p.is_file() for p in (root / "saved_params").rglob("*"))


# ---------------------------------------------------------------- archs JSON

def _one_arch(**changes) -> list[dict]:
    spec = {"name": "t", "input_shape": [1, 8, 8],
            "encoder": [{"type": "flatten"}, {"type": "dense", "units": 16}, {"type": "dense", "units": 4}]}
    spec.update(changes)
    return [spec]


def _deep(n: int) -> str:
    return "[" * n + "]" * n


BAD_ARCHS: dict[str, bytes] = {
    "malformed": b'[{"name": "t", "encoder": [}',
    "truncated": json.dumps(_one_arch()).encode()[:-7],
    "empty": b"",
    "not_a_list": b"42",
    "list_of_numbers": b"[1, 2, 3]",
    "wrong_type_units": json.dumps(_one_arch(encoder=[{"type": "flatten"}, {"type": "dense", "units": "many"}])).encode(),
    "wrong_type_encoder": json.dumps(_one_arch(encoder="dense")).encode(),
    "bool_units": json.dumps(_one_arch(encoder=[{"type": "flatten"}, {"type": "dense", "units": True}])).encode(),
    "float_units": json.dumps(_one_arch(encoder=[{"type": "flatten"}, {"type": "dense", "units": 2.5}])).encode(),
    "huge_units": json.dumps(_one_arch(encoder=[{"type": "flatten"}, {"type": "dense", "units": 10**12}])).encode(),
    "huge_filters": json.dumps(_one_arch(encoder=[{"type": "conv", "filters": 10**12, "kernel_size": 3},
                                                  {"type": "flatten"}, {"type": "dense", "units": 4}])).encode(),
    "huge_int_literal": json.dumps(_one_arch(encoder=[{"type": "flatten"}, {"type": "dense", "units": 10**400}])).encode(),
    "huge_kernel": json.dumps(_one_arch(encoder=[{"type": "conv", "filters": 4, "kernel_size": 10**9},
                                                 {"type": "flatten"}, {"type": "dense", "units": 4}])).encode(),
    "negative_units": json.dumps(_one_arch(encoder=[{"type": "flatten"}, {"type": "dense", "units": -3}])).encode(),
    "zero_units": json.dumps(_one_arch(encoder=[{"type": "flatten"}, {"type": "dense", "units": 0}])).encode(),
    "negative_filters": json.dumps(_one_arch(encoder=[{"type": "conv", "filters": -1, "kernel_size": 3},
                                                      {"type": "flatten"}, {"type": "dense", "units": 4}])).encode(),
    "negative_input_shape": json.dumps(_one_arch(input_shape=[1, -8, 8])).encode(),
    "nan_constant": b'[{"name": "t", "encoder": [{"type": "dense", "units": NaN}]}]',
    "unknown_layer": json.dumps(_one_arch(encoder=[{"type": "flatten"}, {"type": "quantum", "units": 3}])).encode(),
    "deep_nesting_lists": _deep(10_000).encode(),
    "deep_nesting_in_spec": ('[{"name": "t", "encoder": ' + _deep(10_000) + "}]").encode(),
    "deep_nesting_dicts": ('{"a":' * 10_000 + "1" + "}" * 10_000).encode(),
    "non_utf8": b'[{"name": "t\xff\xfe"}]',
    "utf16": json.dumps(_one_arch()).encode("utf-16"),
    "duplicate_keys": b'[{"name": "t", "name": "u", "encoder": []}]',
}


@pytest.mark.parametrize("case", sorted(BAD_ARCHS))
def test_bad_archs_file_is_one_line_error(tmp_path, case):
    path = tmp_path / f"{case}.json"
    path.write_bytes(BAD_ARCHS[case])
    assert_one_line_error(["pretrain", "-d", "DIGITS", "--archs", str(path), "--epochs", "1",
                           "--out", str(tmp_path / "out"), "--no-progress"], path.name)
    assert no_outputs(tmp_path / "out")


@pytest.mark.parametrize("case", ["malformed", "deep_nesting_lists", "non_utf8", "huge_filters"])
def test_bad_archs_file_in_arch_check(tmp_path, case):
    path = tmp_path / f"{case}.json"
    path.write_bytes(BAD_ARCHS[case])
    code, out, err = run_cli(["arch", "check", str(path)])
    assert code != 0 and "Traceback" not in out + err


def test_missing_archs_file(tmp_path):
    assert_one_line_error(["pretrain", "-d", "DIGITS", "--archs", str(tmp_path / "nope.json"),
                           "--out", str(tmp_path / "out")], "nope.json")


# ---------------------------------------------------------------- CLI option values

@pytest.mark.parametrize("args, culprit", [
    (["--epochs", "0"], "--epochs"),
    (["--epochs", "-5"], "--epochs"),
    (["--epochs", "many"], "--epochs"),
    (["--lr", "-1"], "--lr"),
    (["--lr", "0"], "--lr"),
    (["--lr", "nan"], "lr"),
    (["--batch-size", "0"], "--batch-size"),
    (["--optimizer", "rmsprop"], "--optimizer"),
    (["--device", "cuda:7"], "cuda"),
    (["--device", "tpu"], "tpu"),
    (["-a", "99"], "99"),
    (["-a", "nosuch"], "nosuch"),
    (["--threads", "0"], "--threads"),
])
def test_bad_option_values(tmp_path, args, culprit):
    code, out, err = run_cli(["pretrain", "-d", "DIGITS", "--out", str(tmp_path / "out"), "--no-progress", *args])
    assert code == 2 and "Traceback" not in out + err
    # click's usage errors print "Usage:/Try:/Error:" (three lines; reported) rather than one "error:" line.
    errors = [ln for ln in err.splitlines() if ln.lower().startswith("error:")]
    assert len(errors) == 1 and culprit in errors[0], err
    assert no_outputs(tmp_path / "out")


def test_device_cuda_without_cuda(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    assert_one_line_error(["pretrain", "-d", "DIGITS", "--device", "cuda", "--out", str(tmp_path / "out")], "cuda")


def test_unknown_dataset(tmp_path):
    assert_one_line_error(["pretrain", "-d", "NOSUCHDATA", "--out", str(tmp_path / "out")], "NOSUCHDATA")


def test_cluster_before_pretrain(tmp_path):
    assert_one_line_error(["cluster", "-d", "DIGITS", "--out", str(tmp_path / "out")], "pretrain")


# ---------------------------------------------------------------- dataset files

def _idx_bytes(arr: np.ndarray, magic_type: int = 0x08) -> bytes:
    header = bytes([0, 0, magic_type, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def _mnist_dir(root: Path, images: dict[str, bytes] | None = None) -> Path:
    folder = root / "mnist"
    folder.mkdir(parents=True)
    good = {
        "train-images-idx3-ubyte.gz": _idx_bytes(np.zeros((6, 28, 28))),
        "train-labels-idx1-ubyte.gz": _idx_bytes(np.zeros(6)),
        "t10k-images-idx3-ubyte.gz": _idx_bytes(np.zeros((4, 28, 28))),
        "t10k-labels-idx1-ubyte.gz": _idx_bytes(np.zeros(4)),
    }
    good.update(images or {})
    for name, raw in good.items():
        (folder / name).write_bytes(gzip.compress(raw) if not raw.startswith(b"\x1f\x8b") and name != "raw" else raw)
    return folder


@pytest.mark.parametrize("case", ["truncated_gz", "not_gzip", "wrong_magic", "wrong_sizes", "label_count_mismatch",
                                  "empty"])
def test_bad_dataset_files(tmp_path, case):
    name = "train-images-idx3-ubyte.gz"
    if case == "truncated_gz":
        bad = {name: gzip.compress(_idx_bytes(np.zeros((6, 28, 28))))[:-40]}
    elif case == "not_gzip":
        bad = {name: b"\x1f\x8bthis is not gzip data at all"}
    elif case == "wrong_magic":
        bad = {name: b"\x12\x34\x56\x78" + _idx_bytes(np.zeros((6, 28, 28)))[4:]}
    elif case == "wrong_sizes":
        bad = {name: _idx_bytes(np.zeros((6, 28, 28)))[:-100]}
    elif case == "label_count_mismatch":
        bad = {"train-labels-idx1-ubyte.gz": _idx_bytes(np.zeros(5))}
        name = "train-labels-idx1-ubyte.gz"
    else:
        bad = {name: gzip.compress(b"")}
    _mnist_dir(tmp_path / "data", bad)
    line = assert_one_line_error(["pretrain", "-d", "MNIST", "--data-dir", str(tmp_path / "data"), "--split", "train",
                                  "--epochs", "1", "--out", str(tmp_path / "out"), "--no-progress"])
    assert "mnist" in line.lower() or name in line, line
    assert no_outputs(tmp_path / "out")


# ---------------------------------------------------------------- weight files, manifests, codes

@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A two-epoch DIGITS pretrain (seconds); tests copy it before breaking it."""
    out = tmp_path_factory.mktemp("pre")
    code, stdout, err = run_cli(["pretrain", "-d", "DIGITS", "-a", "digits-dense", "--epochs", "2",
                                 "--eval-every", "10",
                                 "--out", str(out), "--no-progress"])
    assert code == 0, err
    return out


def _copy(pretrained: Path, tmp_path: Path) -> tuple[Path, Path]:
    out = tmp_path / "out"
    shutil.copytree(pretrained, out)
    return out, out / "saved_params" / "DIGITS" / "digits-dense" / "pretrain"


def _cluster(out: Path, *extra: str) -> list[str]:
    return ["cluster", "-d", "DIGITS", "-a", "digits-dense", "--loss", "kmeans", "--epochs", "1", "--out", str(out),
            "--no-progress", *extra]


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "header_only"])
def test_corrupt_weights(pretrained, tmp_path, damage):
    out, stage = _copy(pretrained, tmp_path)
    w = stage / "weights.safetensors"
    raw = w.read_bytes()
    w.write_bytes({"truncate": raw[: len(raw) // 2], "garbage": b"\x00\x01garbage" * 100, "empty": b"",
                   "header_only": raw[:8]}[damage])
    assert_one_line_error(_cluster(out), "weights.safetensors")
    assert not (stage.parent / "cluster-kmeans" / "manifest.json").exists()


def test_missing_weights(pretrained, tmp_path):
    out, stage = _copy(pretrained, tmp_path)
    (stage / "weights.safetensors").unlink()
    assert_one_line_error(_cluster(out), "weights.safetensors")


def test_weights_of_another_arch_name_the_tensor_and_shapes(pretrained, tmp_path):
    """Pretrain of one arch, manifest edited to claim another: refused; with --force the tensor shapes are named."""
    out, stage = _copy(pretrained, tmp_path)
    archs = json.loads(SHIPPED_DIGITS.read_text())
    spec = next(a for a in archs if a["name"] == "digits-dense")
    spec = json.loads(json.dumps(spec))
    spec["encoder"][1]["units"] = 200  # 256 → 200: same tensor names, other shapes
    custom = tmp_path / "custom.json"
    custom.write_text(json.dumps([spec]))
    line = assert_one_line_error(_cluster(out, "--archs", str(custom)), "different")
    assert "--force" in line
    line = assert_one_line_error(_cluster(out, "--archs", str(custom), "--force"), "weights.safetensors")
    assert "shape" in line and "200" in line and "256" in line


@pytest.mark.parametrize("content", [b"{not json", b"", b"\xff\xfe\x00", b"[1, 2]", b'{"complete": true}',
                                     b'{"complete": true, "dataset": 3, "arch": {}, "files": {}}',
                                     b'{"complete": true, "dataset": {"fingerprint": "x"}, "arch": {"spec": {}}, '
                                     b'"files": {"weights": "../../../etc/passwd"}, "metrics": {}, '
                                     b'"hyperparameters": {}}',
                                     ("[" * 10_000 + "]" * 10_000).encode()])
def test_corrupt_manifest(pretrained, tmp_path, content):
    out, stage = _copy(pretrained, tmp_path)
    (stage / "manifest.json").write_bytes(content)
    code, stdout, err = run_cli(_cluster(out))
    assert code == 2 and "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:")
    assert "manifest" in lines[0] or "pretrain" in lines[0]


def test_incomplete_manifest_means_not_done(pretrained, tmp_path):
    out, stage = _copy(pretrained, tmp_path)
    m = json.loads((stage / "manifest.json").read_text())
    m["complete"] = False
    (stage / "manifest.json").write_text(json.dumps(m))
    assert_one_line_error(_cluster(out), "pretrain")


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_codes(pretrained, tmp_path, damage):
    from netbuilder.errors import NetbuilderError
    from netbuilder.stages.persist import load_array

    out, stage = _copy(pretrained, tmp_path)
    codes = stage / "codes.npy"
    raw = codes.read_bytes()
    codes.write_bytes(raw[: len(raw) // 3] if damage == "truncate" else b"\x93NUMPY garbage")
    with pytest.raises(NetbuilderError, match="codes.npy"):
        load_array(codes)


def test_corrupt_checkpoint_on_resume(pretrained, tmp_path):
    out, stage = _copy(pretrained, tmp_path)
    (stage / "checkpoint.pt").write_bytes(b"PK\x03\x04 not really a zip")
    assert_one_line_error(["pretrain", "-d", "DIGITS", "-a", "digits-dense", "--epochs", "2", "--out", str(out),
                           "--no-progress", "--resume"], "checkpoint.pt")


def test_bce_with_a_linear_output_is_one_line(tmp_path):
    from click.testing import CliRunner

    from netbuilder.cli import main

    arch = tmp_path / "a.json"
    arch.write_text('[{"name": "lin", "input_shape": [1, 8, 8], "output_activation": "linear", '
                    '"encoder": [{"type": "flatten"}, {"type": "dense", "units": 4}]}]')
    res = CliRunner().invoke(main, ["pretrain", "-d", "DIGITS", "--archs", str(arch), "--recon-loss", "bce",
                                    "--epochs", "1", "--out", str(tmp_path)])
    assert res.exit_code == 2
    assert "bce needs a sigmoid output" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "saved_params").exists() or not any((tmp_path / "saved_params").rglob("manifest.json"))


def test_absurd_arch_size_is_refused_before_allocating_in_anomaly(tmp_path):
    # pretrain is covered by the huge_* cases above; anomaly builds its model through the same builder
    path = tmp_path / "huge_units.json"
    path.write_bytes(BAD_ARCHS["huge_units"])
    line = assert_one_line_error(["anomaly", "-d", "DIGITS", "--protocol", "one-class", "--target", "0",
                                  "--score", "recon", "--epochs", "1", "--no-plots", "--archs", str(path),
                                  "--out", str(tmp_path / "o"), "--no-progress"],
                                 path.name, "parameters", "500,000,000")
    assert re.search(r"would have [\d,]+ parameters", line)  # the count itself is shown
    assert no_outputs(tmp_path / "o")


def test_builder_refuses_absurd_sizes():
    from netbuilder.arch import NetworkBuilder
    from netbuilder.errors import ArchError

    builder = NetworkBuilder(json.loads(BAD_ARCHS["huge_units"])[0])
    assert builder.dry_run().params > 500_000_000  # the plan itself allocates nothing
    with pytest.raises(ArchError, match="would have .* parameters"):
        builder.build()
