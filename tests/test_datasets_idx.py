"""IDX reader/writer: round trips, and every way a file can be broken names the file."""
from __future__ import annotations

import gzip

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from netbuilder.datasets.idx import read_idx, write_idx
from netbuilder.errors import DatasetError


@pytest.mark.parametrize("name", ["images-idx3-ubyte.gz", "images-idx3-ubyte"])
def test_round_trip_uint8_images(tmp_path, name):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(7, 28, 28), dtype=np.uint8)
    path = tmp_path / name
    write_idx(path, images)
    assert path.read_bytes()[:2] == (b"\x1f\x8b" if name.endswith(".gz") else b"\x00\x00")
    back = read_idx(path)
    assert back.dtype == np.uint8 and back.shape == (7, 28, 28)
    np.testing.assert_array_equal(back, images)
    back[0, 0, 0] = 1  # the result is a normal writable array
    assert [p.name for p in tmp_path.iterdir()] == [name]  # atomic write left no temporary file


def test_round_trip_labels_and_wider_types(tmp_path):
    labels = np.array([5, 0, 4, 1, 9], dtype=np.uint8)
    write_idx(tmp_path / "labels.gz", labels)
    np.testing.assert_array_equal(read_idx(tmp_path / "labels.gz"), labels)
    wide = np.arange(-6, 6, dtype=np.int32).reshape(3, 4) * 100000
    write_idx(tmp_path / "wide", wide)
    raw = (tmp_path / "wide").read_bytes()
    assert raw[:4] == bytes([0, 0, 0x0C, 2]) and len(raw) == 4 + 8 + 12 * 4  # big-endian int32, 2 dims
    back = read_idx(tmp_path / "wide")
    assert back.dtype == np.int32 and back.dtype.isnative
    np.testing.assert_array_equal(back, wide)


def test_truncated_gzip_names_the_file(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    write_idx(path, np.zeros((50, 28, 28), dtype=np.uint8) + 7)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte\.gz: truncated or corrupt gzip"):
        read_idx(path)


def test_short_raw_payload_and_trailing_bytes(tmp_path):
    path = tmp_path / "t10k-images-idx3-ubyte"
    write_idx(path, np.ones((4, 5, 6), dtype=np.uint8))
    data = path.read_bytes()
    path.write_bytes(data[:-10])
    with pytest.raises(DatasetError, match=r"t10k-images-idx3-ubyte: truncated IDX file \(header says 4x5x6, "
                                           r"payload has 110 of 120 bytes\)"):
        read_idx(path)
    path.write_bytes(data + b"\x00")
    with pytest.raises(DatasetError, match="longer than its header says"):
        read_idx(path)
    path.write_bytes(data[:6])
    with pytest.raises(DatasetError, match="ends after 2 of 12 bytes"):
        read_idx(path)


def test_wrong_magic(tmp_path):
    path = tmp_path / "labels.gz"
    with gzip.open(path, "wb") as fh:
        fh.write(b"\x12\x34\x08\x01" + b"\x00" * 20)
    with pytest.raises(DatasetError, match=r"labels\.gz: not an IDX file \(bad magic number 0x12340801\)"):
        read_idx(path)
    path.write_bytes(b"\x00\x00\x07\x01\x00\x00\x00\x01x")  # unknown type code 0x07
    with pytest.raises(DatasetError, match="bad magic number 0x00000701"):
        read_idx(path)


def test_missing_file_is_a_dataset_error(tmp_path):
    with pytest.raises(DatasetError, match=r"nothere\.gz: cannot read"):
        read_idx(tmp_path / "nothere.gz")


@settings(max_examples=30, deadline=None)
@given(arr=st.sampled_from([np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]).flatmap(
    lambda dt: arrays(dt, st.lists(st.integers(0, 5), min_size=1, max_size=4).map(tuple))),
    compress=st.booleans())
def test_round_trip_property(tmp_path_factory, arr, compress):
    path = tmp_path_factory.mktemp("idx") / ("a.gz" if compress else "a")
    write_idx(path, arr)
    back = read_idx(path)
    assert back.shape == arr.shape and back.dtype == arr.dtype
    np.testing.assert_array_equal(back, arr)
