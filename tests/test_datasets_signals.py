"""Signal datasets (UCR/UEA ``.ts``, Tennessee Eastman, ``series:`` CSV/npy), windows, standardisation, and the
dataset registry. Everything is generated in tmp_path."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from netbuilder.datasets import DATASETS, get_spec, known_names, load_dataset, tep, to_float
from netbuilder.datasets.kinds import LOCATED, register_dataset, unregister_dataset
from netbuilder.datasets.signals import Standardizer, count_windows, sliding_windows, window_labels
from netbuilder.datasets.spec import OPTIONS
from netbuilder.errors import DatasetError
from netbuilder.train.batches import map_batches, to_float_batch

HEADER = "#comment line\n@problemName Toy\n@univariate {uni}\n@equalLength true\n@classLabel true b a\n@data\n"


def _series_line(dims: list[list[float]], label: str) -> str:
    return ":".join(",".join(repr(float(v)) for v in d) for d in dims) + f":{label}\n"


def _write_ucr(root, name, parts: dict[str, tuple[np.ndarray, list[str]]]) -> None:
    folder = root / "ucr" / name
    folder.mkdir(parents=True)
    for part, (x, labels) in parts.items():
        text = HEADER.format(uni="true" if x.shape[1] == 1 else "false")
        text += "".join(_series_line(list(s), lab) for s, lab in zip(x, labels))
        (folder / f"{name}_{part}.ts").write_text(text)


def _one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


# --- UCR/UEA .ts ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("channels", [1, 3])
def test_ts_univariate_and_multivariate(tmp_path, channels):
    rng = np.random.default_rng(0)
    train, test = rng.normal(5, 2, (4, channels, 7)), rng.normal(0, 1, (3, channels, 7))
    _write_ucr(tmp_path, "Toy", {"TRAIN": (train, ["a", "b", "a", "a"]), "TEST": (test, ["b", "b", "a"])})
    ds = load_dataset("ucr:Toy", data_dir=tmp_path, split="all")
    assert ds.images.shape == (7, channels, 7) and ds.images.dtype == np.float32 and ds.is_signal
    assert ds.shape == (channels, 7) and ds.name == "ucr:Toy"
    assert ds.class_names == ["b", "a"] and ds.labels.tolist() == [1, 0, 1, 1, 0, 0, 1]  # declared order
    # Statistics of the TRAIN file only, per channel, applied to both files.
    np.testing.assert_allclose(ds.mean, train.transpose(1, 0, 2).reshape(channels, -1).mean(1), rtol=1e-6)
    np.testing.assert_allclose(ds.std, train.transpose(1, 0, 2).reshape(channels, -1).std(1), rtol=1e-5)
    expected = (np.concatenate([train, test]) - ds.mean[:, None]) / ds.std[:, None]
    np.testing.assert_allclose(ds.images, expected, rtol=1e-4, atol=1e-5)
    test_only = load_dataset("ucr:Toy", data_dir=tmp_path, split="test")
    np.testing.assert_array_equal(test_only.images, ds.images[4:])
    np.testing.assert_array_equal(test_only.mean, ds.mean)
    assert len({ds.fingerprint, test_only.fingerprint, load_dataset("ucr:Toy", data_dir=tmp_path,
                                                                     split="train").fingerprint}) == 3


@pytest.mark.parametrize("line, fix, message", [
    ("1.0,abc,3.0:a\n", None, r"Toy_TRAIN\.ts, line 8, column 2: 'abc' is not a number$"),
    ("1.0,nan,3.0:a\n", None, r"Toy_TRAIN\.ts, line 8, column 2: nan is not a finite number"),
    ("1.0,2.0:a\n", None, r"Toy_TRAIN\.ts, line 8: 1 dimension\(s\) of lengths 2, expected 1 of length 3"),
    ("1.0,2.0,3.0:c\n", None, r"Toy_TRAIN\.ts, line 8: class label 'c' is not one of the declared b, a$"),
    ("1.0,?,3.0:a\n", None, r"line 8, column 2: '\?' is not a number \(missing values are not supported\)$"),
])
def test_ts_bad_line_names_file_and_line(tmp_path, line, fix, message):
    _write_ucr(tmp_path, "Toy", {"TRAIN": (np.ones((1, 1, 3)), ["a"]), "TEST": (np.ones((1, 1, 3)), ["b"])})
    path = tmp_path / "ucr" / "Toy" / "Toy_TRAIN.ts"
    path.write_text(path.read_text() + line)  # line 7 is the good series, line 8 the bad one
    with pytest.raises(DatasetError, match=message) as err:
        load_dataset("ucr:Toy", data_dir=tmp_path)
    _one_line(err)


def test_ts_missing_files_and_options(tmp_path):
    with pytest.raises(DatasetError, match=r"^ucr:Nope: missing Nope_TRAIN\.ts, Nope_TEST\.ts in ") as err:
        load_dataset("ucr:Nope", data_dir=tmp_path)
    _one_line(err)
    with pytest.raises(DatasetError, match=r"^Argument `window` does not apply to ucr:NAME \(it takes none\)\. "
                                           r"Received window=16\.$"):
        load_dataset("ucr:Nope", data_dir=tmp_path, window=16)


# --- Tennessee Eastman ------------------------------------------------------------------------------------

def _write_table(path, array: np.ndarray) -> None:
    path.write_text("".join("  " + "  ".join(f"{v:.6e}" for v in row) + "\n" for row in array))


@pytest.fixture()
def tep_root(tmp_path):
    """A generated TEP folder: transposed normal run, normal test run, fault 1 train + test, fault 2 train."""
    rng = np.random.default_rng(1)
    folder = tmp_path / "tep"
    folder.mkdir()
    runs = {"d00": rng.normal(10, 3, (100, 52)), "d00_te": rng.normal(50, 9, (960, 52)),
            "d01": rng.normal(0, 1, (48, 52)), "d01_te": rng.normal(0, 1, (960, 52)),
            "d02": rng.normal(0, 1, (48, 52))}
    for name, data in runs.items():
        _write_table(folder / f"{name}.dat", data.T if name == "d00" else data)  # d00.dat is stored 52 × T
    return tmp_path, {k: v.astype(np.float32) for k, v in runs.items()}


def test_tep_runs_and_fault_masks(tep_root):
    root, runs = tep_root
    normal = tep.normal_training_run(root)
    assert normal.data.shape == (100, 52) and normal.fault == 0 and not normal.faulty.any()
    np.testing.assert_allclose(normal.data, runs["d00"], rtol=1e-5)  # transposed back
    assert tep.normal_test_run(root).data.shape == (960, 52)
    assert tep.available_faults(root) == [1, 2]
    one = tep.fault_run(1, root)
    assert one.part == "test" and one.file.name == "d01_te.dat"
    assert not one.faulty[:160].any() and one.faulty[160:].all()
    train_one = tep.fault_run(1, root, part="train")
    assert train_one.file.name == "d01.dat" and train_one.faulty.all() and len(train_one.faulty) == 48
    two = tep.fault_run(2, root)  # no test run: the training run, faulty throughout
    assert two.part == "train" and two.faulty.all()
    with pytest.raises(DatasetError, match=r"^Invalid value for argument `fault`\. Expected an integer from 1 to "
                                           r"21\. Received fault=22\.$"):
        tep.fault_run(22, root)
    with pytest.raises(DatasetError, match=r"d03\.dat: missing"):
        tep.fault_run(3, root)
    scaler = tep.normal_standardizer(root)
    windows = one.windows(scaler, window=32, stride=16)
    faulty = one.window_faulty(window=32, stride=16)
    assert windows.shape == (count_windows(960, 32, 16), 52, 32) == (59, 52, 32)
    ends = np.arange(59) * 16 + 31
    np.testing.assert_array_equal(faulty, ends >= 160)


def test_tep_dataset_standardised_on_normal_training_run_only(tep_root):
    root, runs = tep_root
    ds = load_dataset("TEP", data_dir=root, window=16, stride=4)
    n_train, n_test = count_windows(100, 16, 4), count_windows(960, 16, 4)
    assert ds.images.shape == (n_train + n_test, 52, 16) and ds.labels is None and ds.n_classes is None
    # The statistics are d00's, not those of everything loaded (the test run has another mean and scale).
    np.testing.assert_allclose(ds.mean, runs["d00"].mean(0), rtol=1e-5)
    np.testing.assert_allclose(ds.std, runs["d00"].std(0), rtol=1e-4)
    everything = np.concatenate([runs["d00"], runs["d00_te"]])
    assert not np.allclose(ds.mean, everything.mean(0), rtol=1e-2)
    test = load_dataset("TEP", data_dir=root, split="test", window=16, stride=4)
    np.testing.assert_array_equal(test.images, ds.images[n_train:])
    np.testing.assert_array_equal(test.mean, ds.mean)
    assert load_dataset("TEP", data_dir=root, window=16, stride=8).fingerprint != ds.fingerprint
    with pytest.raises(DatasetError, match=r"^Invalid value for argument `stride`\. Expected a strictly positive "
                                           r"integer\. Received stride=0\.$"):
        load_dataset("TEP", data_dir=root, stride=0)
    with pytest.raises(DatasetError, match=r"^Argument `image_size` does not apply to TEP"):
        load_dataset("TEP", data_dir=root, image_size=8)


def test_tep_bad_value_names_line_and_column(tep_root):
    root, _ = tep_root
    path = root / "tep" / "d00_te.dat"
    lines = path.read_text().splitlines()
    fields = lines[4].split()
    fields[6] = "NaN"
    lines[4] = "  ".join(fields)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match=r"d00_te\.dat, line 5, column 7: NaN is not a finite number") as err:
        tep.normal_test_run(root)
    _one_line(err)


# --- series: CSV and npy ----------------------------------------------------------------------------------

def test_series_csv_windows_labels_and_normal_statistics(tmp_path):
    rng = np.random.default_rng(2)
    values = rng.normal(0, 1, (40, 2))
    values[30:] += 100  # the faulty part: far away, so statistics over everything would differ clearly
    labels = ["normal"] * 30 + ["fault"] * 10
    path = tmp_path / "rec.csv"
    path.write_text("temp,state,press\n" + "".join(f"{a},{s},{b}\n" for (a, b), s in zip(values.tolist(), labels)))
    ds = load_dataset(f"series:{path}", window=8, stride=4, label_column="state")
    assert ds.images.shape == (count_windows(40, 8, 4), 2, 8) == (9, 2, 8)
    assert ds.class_names == ["fault", "normal"]
    ends = np.arange(9) * 4 + 7
    np.testing.assert_array_equal(ds.labels, np.where(ends >= 30, 0, 1))  # the label at each window's last sample
    np.testing.assert_allclose(ds.mean, values[:30].mean(0), rtol=1e-5)
    np.testing.assert_allclose(ds.std, values[:30].std(0), rtol=1e-5)
    np.testing.assert_allclose(ds.images[0], ((values[:8] - ds.mean) / ds.std).T, rtol=1e-4, atol=1e-5)


def test_series_csv_without_header_and_label_column_named_label(tmp_path):
    plain = tmp_path / "plain.csv"
    plain.write_text("".join(f"{i},{2 * i}\n" for i in range(20)))
    ds = load_dataset(f"series:{plain}", window=5, stride=5)
    assert ds.images.shape == (4, 2, 5) and ds.labels is None
    np.testing.assert_allclose(ds.mean, [9.5, 19.0])  # unlabelled: fitted on the whole recording
    labelled = tmp_path / "labelled.csv"
    labelled.write_text("a;label\n" + "".join(f"{i};{int(i >= 10)}\n" for i in range(20)))
    ds = load_dataset(f"series:{labelled}", window=5, stride=5)
    assert ds.shape == (1, 5) and ds.labels.tolist() == [0, 0, 1, 1] and ds.class_names == ["0", "1"]
    np.testing.assert_allclose(ds.mean, [4.5])  # class 0 is the normal part
    with pytest.raises(DatasetError, match=r"^Invalid value for argument `label_column`\. Expected a column of "
                                           r".*labelled\.csv \(columns: a, label\)\. Received label_column='state'\.$"):
        load_dataset(f"series:{labelled}", label_column="state")


@pytest.mark.parametrize("row, message", [
    ("1.5,x7,0", r"rec\.csv, line 4, column 2 \(b\): 'x7' is not a number$"),
    ("1.5,inf,0", r"rec\.csv, line 4, column 2 \(b\): inf is not a finite number"),
    ("1.5,2", r"rec\.csv, line 4: 2 fields, expected 3$"),
])
def test_series_csv_bad_value_names_line_and_column(tmp_path, row, message):
    path = tmp_path / "rec.csv"
    path.write_text("a,b,label\n1,2,0\n3,4,0\n" + row + "\n5,6,1\n")
    with pytest.raises(DatasetError, match=message) as err:
        load_dataset(f"series:{path}", window=2, stride=1)
    _one_line(err)


def test_series_npy(tmp_path):
    data = np.arange(60, dtype=np.float64).reshape(20, 3)
    path = tmp_path / "rec.npy"
    np.save(path, data)
    ds = load_dataset(f"series:{path}", window=10, stride=5)
    assert ds.images.shape == (3, 3, 10) and ds.name == f"series:{path}"
    np.testing.assert_allclose(ds.mean, data.mean(0))
    np.save(path, np.where(np.arange(60).reshape(20, 3) == 13, np.nan, data))
    with pytest.raises(DatasetError, match=r"rec\.npy, row 5, column 2: nan is not a finite number") as err:
        load_dataset(f"series:{path}")
    _one_line(err)
    with pytest.raises(DatasetError, match=r"^Argument `label_column` does not apply to .*rec\.npy"):
        load_dataset(f"series:{path}", label_column="label")
    np.save(path, data)
    with pytest.raises(DatasetError, match=r"^Invalid value for argument `window`\. Expected at most the 20 samples "
                                           r"of series:.*rec\.npy\. Received window=64\.$"):
        load_dataset(f"series:{path}")  # the default window is longer than the recording


# --- windows, standardisation, batches --------------------------------------------------------------------

@pytest.mark.parametrize("length, window, stride, expected", [(10, 4, 2, 4), (10, 10, 3, 1), (9, 10, 1, 0),
                                                              (64, 8, 8, 8), (65, 8, 8, 8)])
def test_window_counts_and_shapes(length, window, stride, expected):
    rec = np.arange(length * 2, dtype=np.float64).reshape(length, 2)
    assert count_windows(length, window, stride) == expected
    if expected:
        w = sliding_windows(rec, window, stride)
        assert w.shape == (expected, 2, window) and w.dtype == np.float32 and w.flags.c_contiguous
        np.testing.assert_array_equal(w[-1, 1], rec[(expected - 1) * stride:(expected - 1) * stride + window, 1])
        np.testing.assert_array_equal(window_labels(np.arange(length), window, stride),
                                      np.arange(expected) * stride + window - 1)


def test_standardizer_constant_channel_is_only_centred():
    scaler = Standardizer.fit(np.array([[1.0, 5.0], [3.0, 5.0]]))
    assert scaler.mean.tolist() == [2.0, 5.0] and scaler.std.tolist() == [1.0, 1.0]
    assert scaler.apply(np.array([[3.0, 7.0]])).tolist() == [[1.0, 2.0]]


def test_float_signals_flow_through_batching_unscaled():
    x = np.random.default_rng(3).normal(0, 4, (5, 2, 8)).astype(np.float32)
    out = to_float_batch(torch.from_numpy(x), torch.device("cpu"))
    assert torch.equal(out, torch.from_numpy(x)) and out.data_ptr() != torch.from_numpy(x).data_ptr()
    np.testing.assert_array_equal(map_batches(lambda b: b * 1, x, torch.device("cpu"), batch_size=2), x)
    assert torch.equal(to_float(x), torch.from_numpy(x))
    images = np.array([[[[0, 255]]]], dtype=np.uint8)
    assert to_float_batch(torch.from_numpy(images), torch.device("cpu")).tolist() == [[[[0.0, 1.0]]]]


# --- the registry -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", [*DATASETS, *LOCATED])
def test_every_registered_kind(name, tmp_path):
    """Each kind is listed, found under every alias, declares known options, and fails on missing data with a
    one-line error (or, if bundled, loads with its declared shape and size)."""
    if name in LOCATED:
        kind = LOCATED[name]
        assert kind.usage in known_names() and kind.example.startswith(kind.prefix)
        assert set(kind.accepts) <= set(OPTIONS) and kind.modality in ("image", "signal")
        with pytest.raises(DatasetError, match=f"^'{kind.prefix}': give {kind.what}, e.g. ") as err:
            load_dataset(kind.prefix, data_dir=tmp_path)
        _one_line(err)
        with pytest.raises(DatasetError) as err:
            load_dataset(f"{kind.prefix.upper()}{tmp_path / 'nothing-here'}", data_dir=tmp_path, download=False)
        _one_line(err)
        return
    spec = DATASETS[name]
    assert spec.name in known_names() and set(spec.accepts) <= set(OPTIONS) and "all" in spec.sizes
    for alias in (spec.name, spec.dirname, *spec.aliases):
        assert get_spec(alias) is spec and get_spec(alias.lower().replace("-", "_")) is spec
    try:
        ds = load_dataset(name, data_dir=tmp_path, download=False, progress=False)
    except DatasetError as exc:
        assert "\n" not in str(exc) and not spec.bundled
        assert spec.locate(tmp_path) is None
    else:
        assert spec.bundled and ds.shape == spec.shape and len(ds) == spec.size


def test_register_dataset_decorator_and_collisions(tmp_path):
    @register_dataset("toy:", placeholder="N", what="a number", example="toy:3", description="n zeros",
                      modality="signal", options=("window",))
    def load_toy(location, root, split, download_ok, progress, *, window=None):
        n = int(location)
        from netbuilder.datasets import Dataset
        return Dataset(f"toy:{n}", np.zeros((n, 1, window or 4), np.float32), None, None, "fp", "", split)

    try:
        assert load_dataset("toy:3", window=2).images.shape == (3, 1, 2)
        assert known_names().endswith("ucr:NAME or toy:N")
        with pytest.raises(ValueError, match="already registered"):
            register_dataset("toy:", placeholder="N", what="", example="", description="")(load_toy)
        with pytest.raises(ValueError, match="already registered"):  # an alias of MNIST's
            register_dataset("M-NIST", **{k: getattr(get_spec("MNIST"), k) for k in (
                "dirname", "shape", "class_names", "sizes", "downloadable", "description", "locate")})(load_toy)
    finally:
        unregister_dataset("toy:")
    assert "toy:" not in known_names()
