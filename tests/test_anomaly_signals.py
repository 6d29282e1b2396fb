"""``netbuilder anomaly`` on one's own sensor recording (``series:`` CSV, generated here): --window/--stride reach
the data, the detector saves its training standardisation and window, and ``--model`` scores a new recording in
that standardisation — so a constant offset on one channel is found rather than standardised away."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from netbuilder.cli import main
from netbuilder.datasets import load_dataset
from netbuilder.errors import DatasetError

T, CHANNELS = 800, 3


def _recording(seed: int, offset: float = 0.0) -> np.ndarray:
    """Three noisy sinusoids of different periods; ``offset`` (in standard deviations of channel 0) shifts
    channel 0 over the whole recording."""
    rng = np.random.default_rng(seed)
    t = np.arange(T)[:, None]
    x = np.sin(2 * np.pi * t / np.array([25.0, 40.0, 60.0])) + 0.1 * rng.standard_normal((T, CHANNELS))
    x[:, 0] += offset * x[:, 0].std()
    return 10.0 + 2.0 * x


def _csv(path: Path, values: np.ndarray) -> Path:
    path.write_text("a,b,c\n" + "".join(",".join(f"{v:.6f}" for v in row) + "\n" for row in values))
    return path


def _flagged_share(out: Path, stage: Path, data: Path) -> float:
    res = CliRunner().invoke(main, ["anomaly", "-d", f"series:{data}", "--model", str(stage), "--out", str(out),
                                    "--no-progress"])
    assert res.exit_code == 0, res.output
    rows = next((out / "predictions" / stage.name).glob("*.csv")).read_text().splitlines()[1:]
    return float(np.mean([int(r.split(",")[2]) for r in rows]))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sig")
    train = _csv(tmp / "normal.csv", _recording(0))
    res = CliRunner().invoke(main, ["anomaly", "-d", f"series:{train}", "--protocol", "unsupervised",
                                    "--window", "32", "--stride", "4", "--epochs", "15", "--contamination", "0.02",
                                    "--no-progress", "--out", str(tmp / "out"), "--device", "cpu"])
    assert res.exit_code == 0, res.output
    stage = next((tmp / "out" / "saved_params").glob("*/*/anomaly-unsupervised-none-recon"))
    return tmp, stage


def test_detector_saves_the_window_and_standardisation(trained):
    tmp, stage = trained
    saved = json.loads((stage / "standardizer.json").read_text())
    assert saved["window"] == 32 and len(saved["mean"]) == CHANNELS
    assert json.loads((stage / "manifest.json").read_text())["files"]["standardizer"] == "standardizer.json"
    # the windows really were 32 samples, 4 apart
    assert json.loads((stage / "manifest.json").read_text())["dataset"]["shape"] == [CHANNELS, 32]
    assert saved["mean"] == pytest.approx([10.0] * CHANNELS, abs=0.1)
    plots = list((tmp / "out" / "plots").rglob("*.png"))
    assert [p.name for p in plots] == ["scores.png"]  # the histogram; the image grid is not drawn for signals


def test_estimator_takes_standardised_windows_with_the_auto_arch():
    from netbuilder.anomaly import AutoencoderAnomalyDetector

    rng = np.random.default_rng(0)
    x = rng.standard_normal((120, CHANNELS, 32)).astype(np.float32)
    det = AutoencoderAnomalyDetector(arch="auto", epochs=2, progress=False, device="cpu").fit(x)
    assert det.spec_["input_shape"] == [CHANNELS, 32] and det.input_shape_ == (CHANNELS, 32)
    assert det.decision_function(x + 5.0).min() > det.decision_function(x).max()
    with pytest.raises(Exception, match="signal windows N×C×L"):
        det.decision_function(x[0])


def test_tep_report_refuses_a_window_option(tmp_path):
    res = CliRunner().invoke(main, ["anomaly", "-d", "TEP", "--protocol", "one-class", "--all-classes",
                                    "--window", "32", "--data-dir", str(tmp_path), "--out", str(tmp_path)])
    assert res.exit_code != 0 and "input_shape" in res.output


def test_new_recording_is_scored_in_the_training_standardisation(trained):
    tmp, stage = trained
    same = _flagged_share(tmp / "p1", stage, _csv(tmp / "again.csv", _recording(1)))
    shifted = _flagged_share(tmp / "p2", stage, _csv(tmp / "shifted.csv", _recording(1, offset=3.0)))
    # its own standardisation would remove a constant offset entirely and flag both alike
    assert same < 0.2 and shifted > 0.9, (same, shifted)


def test_restandardized_undoes_the_own_statistics(tmp_path):
    ds = load_dataset(f"series:{_csv(tmp_path / 'r.csv', _recording(2, offset=1.0))}", window=16, stride=16)
    mean, std = np.array([9.0, 10.0, 11.0]), np.array([1.0, 2.0, 4.0])
    raw = ds.images.astype(np.float64) * ds.std[:, None] + ds.mean[:, None]
    again = ds.restandardized(mean, std)
    np.testing.assert_allclose(again.images, (raw - mean[:, None]) / std[:, None], rtol=1e-5, atol=1e-5)
    assert again.fingerprint != ds.fingerprint and again.mean.tolist() == mean.tolist()
    with pytest.raises(DatasetError, match="3 channels"):
        ds.restandardized(mean[:2], std[:2])
    digits = load_dataset("DIGITS")
    with pytest.raises(DatasetError, match="no standardisation"):
        digits.restandardized(mean, std)


def test_ucr_one_class_trains_on_the_train_file_and_tests_on_the_test_file(tmp_path):
    """ucr: has an official split: one-class trains on the TRAIN file's target class, tests on the TEST file."""
    folder = tmp_path / "ucr" / "Toy"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    t = np.arange(40)
    for part, n in {"TRAIN": 40, "TEST": 30}.items():
        labels = np.arange(n) % 2
        x = np.where(labels[:, None] == 0, np.sin(t / 3.0), np.sign(np.sin(t / 7.0))) * 2.0 \
            + 0.1 * rng.standard_normal((n, 40))
        lines = ["@problemName Toy", "@univariate true", "@equalLength true", "@classLabel true a b", "@data"] + \
            [",".join(f"{v:.5f}" for v in row) + f":{'ab'[c]}" for row, c in zip(x, labels)]
        (folder / f"Toy_{part}.ts").write_text("\n".join(lines) + "\n")
    res = CliRunner().invoke(main, ["anomaly", "-d", "ucr:Toy", "--data-dir", str(tmp_path), "--protocol",
                                    "one-class", "--target", "a", "--epochs", "20", "--no-plots", "--no-progress",
                                    "--json", "--out", str(tmp_path / "out"), "--device", "cpu"])
    assert res.exit_code == 0, res.output
    row = json.loads(res.stdout)
    # 20 TRAIN series of class a; all 30 TEST series scored, the 15 of class b are the anomalies
    assert row["n_train"] == 20 and row["n_test"] == 30 and row["n_anomalies"] == 15
    assert row["auc"] > 0.9
