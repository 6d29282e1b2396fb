"""Registry, names, data-dir precedence, MNIST/USPS/DIGITS loading, Dataset helpers and the CLI."""
from __future__ import annotations

import bz2
import hashlib

import click
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from netbuilder.datasets import (DATASETS, Dataset, idxsets, list_datasets, load_dataset, resolve_data_dir,
                                 to_float, usps)
from netbuilder.datasets.cli import dataset_options, datasets
from netbuilder.datasets.idx import write_idx
from netbuilder.errors import DatasetError

KNOWN = "known: MNIST, COIL20, DIGITS, FASHION-MNIST, USPS, TEP, folder:PATH, series:PATH or ucr:NAME"


@pytest.fixture()
def fake_mnist(tmp_path, monkeypatch):
    """A tiny MNIST under ``tmp_path/mnist`` whose checksums are patched in as the canonical ones."""
    rng = np.random.default_rng(3)
    folder = tmp_path / "mnist"
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": (np.arange(20) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": np.array([1, 1, 1, 2, 3, 9], dtype=np.uint8),
    }
    for name, arr in arrays.items():
        write_idx(folder / name, arr)
        sha = hashlib.sha256((folder / name).read_bytes()).hexdigest()
        monkeypatch.setitem(idxsets.MNIST_FILES, name, idxsets.Checksum(sha256=sha))
    monkeypatch.delenv("NETBUILDER_DATA", raising=False)
    return tmp_path, arrays


# --- DIGITS ---------------------------------------------------------------------------------------------

def test_digits_shape_labels_and_scaling():
    ds = load_dataset("DIGITS")
    assert ds.name == "DIGITS" and ds.split == "all"
    assert ds.images.shape == (1797, 1, 8, 8) and ds.images.dtype == np.uint8 and ds.images.flags.c_contiguous
    assert ds.images.min() == 0 and ds.images.max() == 255
    # 0..16 mapped with rounding: only the 17 values round(k * 255 / 16) occur
    assert set(np.unique(ds.images).tolist()) <= {round(k * 255 / 16) for k in range(17)}
    assert ds.n_classes == 10 and ds.class_names == [str(d) for d in range(10)]
    assert np.bincount(ds.labels).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    assert ds.shape == (1, 8, 8) and len(ds) == 1797
    assert load_dataset("digits").fingerprint == ds.fingerprint


def test_digits_image_size_and_split():
    assert load_dataset("Digits", image_size=16).images.shape == (1797, 1, 16, 16)
    with pytest.raises(DatasetError, match=r"^DIGITS has no 'train' split \(only all\)$"):
        load_dataset("DIGITS", split="train")
    with pytest.raises(DatasetError, match="unknown split 'dev'"):
        load_dataset("DIGITS", split="dev")


# --- names ----------------------------------------------------------------------------------------------

def test_unknown_name_lists_known_ones():
    with pytest.raises(DatasetError) as err:
        load_dataset("CIFAR10")
    assert str(err.value) == f"unknown dataset 'CIFAR10'; {KNOWN}"
    assert list(DATASETS) == ["MNIST", "COIL20", "DIGITS", "FASHION-MNIST", "USPS", "TEP"]


@pytest.mark.parametrize("name", ["fashion-mnist", "FASHION_MNIST", "FashionMNIST", "fmnist"])
def test_fashion_aliases(name, tmp_path):
    with pytest.raises(DatasetError, match=r"^FASHION-MNIST: missing in .*md5 8d4fb7e6c68d591d4c3dfef9ec88bf0d"):
        load_dataset(name, data_dir=tmp_path, download=False)


@pytest.mark.parametrize("name", ["MNIST", "mnist", "Mnist"])
def test_mnist_case_insensitive(name, fake_mnist):
    root, _ = fake_mnist
    assert load_dataset(name, data_dir=root).name == "MNIST"


# --- MNIST from generated files -------------------------------------------------------------------------

def test_mnist_splits_order_and_fingerprint(fake_mnist):
    root, arrays = fake_mnist
    full = load_dataset("MNIST", data_dir=root)
    assert full.images.shape == (26, 1, 28, 28) and full.images.dtype == np.uint8
    np.testing.assert_array_equal(full.images[:20, 0], arrays["train-images-idx3-ubyte.gz"])
    np.testing.assert_array_equal(full.images[20:, 0], arrays["t10k-images-idx3-ubyte.gz"])
    assert full.labels.dtype == np.int64 and full.labels[20:].tolist() == [1, 1, 1, 2, 3, 9]
    assert full.source == str(root / "mnist") and full.n_classes == 10
    train = load_dataset("MNIST", data_dir=root, split="train")
    test = load_dataset("MNIST", data_dir=root, split="TEST")
    assert (len(train), len(test), train.split, test.split) == (20, 6, "train", "test")
    assert len({full.fingerprint, train.fingerprint, test.fingerprint}) == 3
    assert load_dataset("MNIST", data_dir=root).fingerprint == full.fingerprint
    small = load_dataset("MNIST", data_dir=root, image_size=14)
    assert small.images.shape == (26, 1, 14, 14) and small.fingerprint != full.fingerprint
    assert load_dataset("MNIST", data_dir=root, image_size=28).fingerprint == full.fingerprint  # no-op resize


def test_mnist_checksum_mismatch_names_file_and_expected(fake_mnist):
    root, _ = fake_mnist
    path = root / "mnist" / "train-labels-idx1-ubyte.gz"
    expected = idxsets.MNIST_FILES["train-labels-idx1-ubyte.gz"].sha256
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(DatasetError) as err:
        load_dataset("MNIST", data_dir=root, download=False)
    got = hashlib.sha256(path.read_bytes()).hexdigest()
    assert str(err.value).startswith(f"{path}: sha256 mismatch (expected {expected}, got {got})")


def test_real_checksums_reject_generated_files(tmp_path):
    # With the canonical table untouched, a generated file is caught before it is parsed.
    write_idx(tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz", np.zeros((2, 28, 28), np.uint8))
    write_idx(tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz", np.zeros(2, np.uint8))
    with pytest.raises(DatasetError, match=r"t10k-images-idx3-ubyte\.gz: sha256 mismatch \(expected "
                                           r"8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"):
        load_dataset("MNIST", data_dir=tmp_path, split="test", download=False)


def test_mnist_uncompressed_copies_are_accepted(fake_mnist):
    import gzip

    root, arrays = fake_mnist
    for name in list(arrays):
        gz = root / "mnist" / name
        (root / "mnist" / name[:-3]).write_bytes(gzip.decompress(gz.read_bytes()))
        gz.unlink()
    ds = load_dataset("MNIST", data_dir=root, download=False)
    assert ds.images.shape == (26, 1, 28, 28)
    np.testing.assert_array_equal(ds.images[:20, 0], arrays["train-images-idx3-ubyte.gz"])


def test_mnist_label_count_mismatch(fake_mnist):
    root, _ = fake_mnist
    name = "t10k-labels-idx1-ubyte.gz"
    write_idx(root / "mnist" / name, np.zeros(5, np.uint8))
    idxsets.MNIST_FILES[name] = idxsets.Checksum(
        sha256=hashlib.sha256((root / "mnist" / name).read_bytes()).hexdigest())  # restored by monkeypatch
    with pytest.raises(DatasetError, match=r"t10k-labels-idx1-ubyte\.gz: expected 6 labels"):
        load_dataset("MNIST", data_dir=root, split="test")


# --- data dir precedence --------------------------------------------------------------------------------

def test_data_dir_precedence(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NETBUILDER_DATA", raising=False)
    assert resolve_data_dir() == tmp_path / "datasets"
    monkeypatch.setenv("NETBUILDER_DATA", str(tmp_path / "env"))
    assert resolve_data_dir() == tmp_path / "env"
    assert resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_data_dir("rel") == tmp_path / "rel"


def test_env_is_used_and_argument_wins(fake_mnist, monkeypatch, tmp_path_factory):
    root, _ = fake_mnist
    monkeypatch.setenv("NETBUILDER_DATA", str(root))
    assert load_dataset("MNIST", download=False).source == str(root / "mnist")
    empty = tmp_path_factory.mktemp("empty")
    with pytest.raises(DatasetError, match=f"MNIST: missing in {empty / 'mnist'}"):
        load_dataset("MNIST", data_dir=empty, download=False)


# --- USPS from a generated LIBSVM file ------------------------------------------------------------------

def test_usps_libsvm_parsing(tmp_path, monkeypatch):
    lines = []
    for digit in (3, 0):
        feats = " ".join(f"{i}:{-1 + 2 * (i - 1) / 255:.6f}" for i in range(1, 257))
        lines.append(f"{digit + 1} {feats}")
    lines.append("10 1:1 256:-1")  # sparse: absent features are 0, i.e. mid grey
    folder = tmp_path / "usps"
    folder.mkdir()
    for name, text in (("usps.bz2", "\n".join(lines[:2]) + "\n"), ("usps.t.bz2", lines[2] + "\n")):
        data = bz2.compress(text.encode())
        (folder / name).write_bytes(data)
        monkeypatch.setitem(usps.USPS_FILES, name, hashlib.md5(data).hexdigest())
    ds = load_dataset("usps", data_dir=tmp_path)
    assert ds.images.shape == (3, 1, 16, 16) and ds.labels.tolist() == [3, 0, 9]
    assert ds.images[0, 0].ravel().tolist() == list(range(256))
    assert ds.images[2, 0, 0, 0] == 255 and ds.images[2, 0, 15, 15] == 0 and ds.images[2, 0, 5, 5] == 128
    assert len(load_dataset("USPS", data_dir=tmp_path, split="test")) == 1


# --- Dataset helpers ------------------------------------------------------------------------------------

def test_to_float_per_batch():
    batch = np.array([[[[0, 51, 255]]]], dtype=np.uint8)
    out = to_float(batch)
    assert out.dtype == torch.float32 and out.shape == (1, 1, 1, 3)
    assert torch.allclose(out, torch.tensor([[[[0.0, 0.2, 1.0]]]]))
    assert torch.equal(to_float(torch.from_numpy(batch)), out)
    ro = batch.copy()
    ro.flags.writeable = False
    assert torch.equal(to_float(ro), out)
    with pytest.raises(DatasetError, match="expects a uint8 batch"):
        to_float(torch.zeros(2))


def test_subset_and_validation():
    images = np.arange(4 * 2 * 2, dtype=np.uint8).reshape(4, 1, 2, 2)
    ds = Dataset("X", images, np.array([0, 1, 1, 0]), ["a", "b"], "f" * 64, "here", "all")
    sub = ds.subset([3, 1])
    assert sub.images.shape == (2, 1, 2, 2) and sub.labels.tolist() == [0, 1]
    assert sub.images[0, 0, 0, 0] == 12 and sub.fingerprint == ds.fingerprint and sub.class_names == ["a", "b"]
    assert len(ds.subset(np.array([True, False, True, False]))) == 2 and len(ds.subset(slice(1, 3))) == 2
    unlabelled = Dataset("Y", images, None, None, "", "", "all")
    assert unlabelled.n_classes is None and unlabelled.subset([0]).labels is None
    assert Dataset("Z", images, np.array([0, 5, 5, 5]), None, "", "", "all").n_classes == 2
    with pytest.raises(DatasetError, match="uint8"):
        Dataset("W", images.astype(np.float32), None, None, "", "", "all")
    with pytest.raises(DatasetError, match="4 images but labels of shape"):
        Dataset("W", images, np.zeros(3), None, "", "", "all")


# --- listing and CLI ------------------------------------------------------------------------------------

def test_list_datasets(fake_mnist):
    root, _ = fake_mnist
    rows = {r["name"]: r for r in list_datasets(root)}
    assert list(rows) == ["MNIST", "COIL20", "DIGITS", "FASHION-MNIST", "USPS", "TEP"]
    assert rows["MNIST"] == {"name": "MNIST", "shape": (1, 28, 28), "n_classes": 10, "size": 70000,
                             "location": str(root / "mnist"), "downloadable": True}
    assert rows["COIL20"]["location"] == "not present" and rows["COIL20"]["size"] == 1440
    assert rows["COIL20"]["n_classes"] == 20 and rows["COIL20"]["shape"] == (1, 128, 128)
    assert rows["USPS"]["size"] == 9298 and rows["USPS"]["shape"] == (1, 16, 16)
    assert rows["DIGITS"]["downloadable"] is False and rows["DIGITS"]["location"].endswith("digits.csv.gz")


def _cli():
    try:
        from netbuilder.cli import main
    except ImportError:  # another part of the CLI is not written yet: test the command on its own
        return datasets, []
    return main, ["datasets"]


def test_cli_lists_datasets(fake_mnist):
    root, _ = fake_mnist
    cmd, prefix = _cli()
    result = CliRunner().invoke(cmd, prefix + ["--data-dir", str(root)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"data root: {root}"
    assert lines[1].split() == ["name", "shape", "classes", "size", "download", "location"]
    assert lines[2].split() == ["MNIST", "1x28x28", "10", "70,000", "yes", str(root / "mnist")]
    assert lines[3].split() == ["COIL20", "1x128x128", "20", "1,440", "yes", "not", "present"]
    assert lines[4].split()[:5] == ["DIGITS", "1x8x8", "10", "1,797", "bundled"]
    assert lines[6].split()[:4] == ["USPS", "1x16x16", "10", "9,298"]
    assert lines[7].split()[:6] == ["TEP", "52x64", "-", "168", "by", "hand"]
    assert [line.split()[1] for line in lines if line.startswith("also:")] == ["folder:PATH", "series:PATH",
                                                                               "ucr:NAME"]


def test_cli_uses_env(fake_mnist, monkeypatch):
    root, _ = fake_mnist
    monkeypatch.setenv("NETBUILDER_DATA", str(root))
    result = CliRunner().invoke(datasets, [])
    assert result.exit_code == 0 and f"data root: {root}" in result.output


def test_dataset_options_pass_through(fake_mnist):
    root, _ = fake_mnist
    seen = {}

    @click.command()
    @click.option("-d", "--dataset", "name")
    @dataset_options
    def stage(name, data_dir, split, image_size, window, stride, label_column):
        ds = load_dataset(name, data_dir=data_dir, split=split, image_size=image_size, window=window, stride=stride,
                          label_column=label_column)
        seen.update(shape=ds.images.shape, split=split)

    result = CliRunner().invoke(stage, ["-d", "mnist", "--data-dir", str(root), "--split", "TRAIN",
                                        "--image-size", "7"])
    assert result.exit_code == 0, result.output
    assert seen == {"shape": (20, 1, 7, 7), "split": "train"}
    result = CliRunner().invoke(stage, ["-d", "x", "--split", "dev"])
    assert result.exit_code == 2 and "'dev' is not one of" in result.output


def test_cli_missing_root_lists_everything_not_present(tmp_path):
    cmd, prefix = _cli()
    result = CliRunner().invoke(cmd, prefix + ["--data-dir", str(tmp_path / "nothing-here")])
    assert result.exit_code == 0, result.output
    assert result.output.count("not present") == 5  # all but the bundled DIGITS
