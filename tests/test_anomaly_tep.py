"""The TEP fault-detection report on a generated TEP folder (no real data): a normal training run, a normal test
run, fault 1 as a test run with a clear shift after sample 160, fault 2 as an unshifted "fault" training run.
Also the pure metrics of :mod:`netbuilder.anomaly.process` and the PCA baseline."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from netbuilder.anomaly import process
from netbuilder.anomaly.pca_baseline import PCABaseline
from netbuilder.anomaly.tep_report import WindowDetector, purged_folds, run_tep_report
from netbuilder.cli import main
from netbuilder.errors import NetbuilderError

WINDOW = 16
TINY = [{"name": "tiny-tep", "input_shape": [52, WINDOW],
         "defaults": {"conv": {"padding": "same", "activation": "leaky_relu", "batch_norm": True}},
         "encoder": [{"type": "conv", "filters": 4, "kernel_size": 3, "stride": 2},
                     {"type": "conv", "filters": 8, "kernel_size": 3, "stride": 2},
                     {"type": "conv", "filters": 8, "kernel_size": 3}, {"type": "flatten"},
                     {"type": "dense", "units": 4, "activation": "linear"}],
         "output_activation": "linear", "training": {"batch_size": 32, "epochs": 3, "threads": 1}}]


def _write(path, array: np.ndarray) -> None:
    path.write_text("".join("  " + "  ".join(f"{v:.5e}" for v in row) + "\n" for row in array))


@pytest.fixture(scope="module")
def fake_tep(tmp_path_factory):
    """Independent Gaussian samples around per-variable operating points; fault 1 shifts 10 variables by 4
    standard deviations from index 160 of its test run (tep.FAULT_ONSET); fault 2 is normal data labelled faulty."""
    root = tmp_path_factory.mktemp("data")
    folder = root / "tep"
    folder.mkdir()
    rng = np.random.default_rng(0)
    centre, scale = rng.normal(50, 10, 52), rng.uniform(0.5, 2.0, 52)

    def normal(n):
        return centre + scale * rng.normal(size=(n, 52))

    fault1 = normal(400)
    fault1[160:, :10] += 4 * scale[:10]
    _write(folder / "d00.dat", normal(400).T)  # stored variables × samples, as Braatz's
    _write(folder / "d00_te.dat", normal(600))
    _write(folder / "d01_te.dat", fault1)
    _write(folder / "d02.dat", normal(200))
    archs = root / "archs.json"
    archs.write_text(json.dumps(TINY))
    return root, archs


@pytest.fixture(scope="module")
def report(fake_tep, tmp_path_factory):
    root, archs = fake_tep
    return run_tep_report(0, archs=str(archs), data_dir=str(root), out=str(tmp_path_factory.mktemp("out")),
                          far=0.05, device="cpu", progress=False)


def test_report_rows_metrics_and_files(report):
    assert [r["name"] for r in report["rows"]] == ["AE recon", "AE last-sample", "AE residual T²", "PCA T²",
                                                   "PCA SPE"]
    assert report["faults"] == [1, 2] and report["fault_parts"] == {1: "test", 2: "train"}
    assert report["n_fit_samples"] == 400 and report["folds"] == 5 and report["window"] == WINDOW
    # out-of-fold scores for every sample but the first window's unscored ones
    assert report["n_oof_samples"] == 400 - (WINDOW - 1)
    assert 1 <= report["pca"]["n_components"] <= 52
    for row in report["rows"]:
        assert set(row) >= {"name", "threshold", "far", "per_fault", "mean"}
        one, two = row["per_fault"][1], row["per_fault"][2]
        assert set(one) == {"fdr", "auc", "delay", "n_faulty", "n_alarms"}
        assert one["n_faulty"] == 400 - 160 and two["n_faulty"] == 200 - (WINDOW - 1)
        # the shift is found, plain noise is not
        assert one["fdr"] > two["fdr"] + 0.4 and two["fdr"] < 0.3, row["name"]
        # (> 0.8, not more: on isotropic noise PCA SPE sees only the part of the shift off a random subspace)
        assert one["auc"] > 0.8 and 0.3 < two["auc"] < 0.7, row["name"]
        assert one["delay"] is not None and one["delay"] < WINDOW, row["name"]
        assert row["mean"]["faults"] == [1, 2]
    assert report["rows"][0]["per_fault"][1]["fdr"] > 0.9
    for row in report["rows"]:
        # i.i.d. normal data: the false-alarm rate on the normal test run is near the 5 % target
        assert row["far"] <= 0.2, row
    d = report["dir"]
    import pathlib
    for name in ("weights.safetensors", "standardizer.json", "threshold.json", "pca.json", "residual_t2.json",
                 "scores.npz",
                 "report.json", "report.md", "manifest.json"):
        assert (pathlib.Path(d) / name).is_file(), name
    saved = json.loads((pathlib.Path(d) / "threshold.json").read_text())
    assert saved["thresholds"]["PCA SPE"] == report["rows"][-1]["threshold"] and saved["window"] == WINDOW
    with np.load(pathlib.Path(d) / "scores.npz") as z:
        oof = z["PCA SPE/d00_oof"]
    assert np.isnan(oof[:WINDOW - 1]).all() and not np.isnan(oof[WINDOW - 1:]).any()
    assert json.loads((pathlib.Path(d) / "manifest.json").read_text())["complete"]
    assert pathlib.Path(report["plots"]["scores_time"]).is_file()
    rows = {r["name"]: r for r in report["rows"]}
    v = report["verdict"]
    assert (v["detector"], v["baseline"]) == ("AE residual T²", "PCA SPE")
    assert v["fdr_gain"] == rows["AE residual T²"]["mean"]["fdr"] - rows["PCA SPE"]["mean"]["fdr"]
    assert v["met"] == (v["fdr_gain"] >= 0.05 and v["far"] <= 0.02)
    assert "AE residual T² vs PCA SPE: mean FDR" in (pathlib.Path(d) / "report.md").read_text()


def test_verdict_needs_the_gain_and_the_false_alarm_limit():
    from netbuilder.anomaly.tep_report import verdict

    def rows(fdr_ae, far_ae, fdr_pca):
        return [{"name": "AE residual T²", "far": far_ae, "mean": {"fdr": fdr_ae}},
                {"name": "PCA SPE", "far": 0.0, "mean": {"fdr": fdr_pca}}]
    assert verdict(rows(0.80, 0.01, 0.72))["met"]
    assert not verdict(rows(0.76, 0.01, 0.72))["met"]   # gain 0.04 < 0.05
    assert not verdict(rows(0.90, 0.03, 0.72))["met"]   # FAR over 0.02
    assert verdict(rows(0.80, 0.01, 0.72)[:1]) is None  # no baseline row


def test_cli_json_and_missing_directory(fake_tep, tmp_path):
    root, archs = fake_tep
    args = ["anomaly", "-d", "TEP", "--protocol", "one-class", "--all-classes", "--archs", str(archs),
            "--device", "cpu", "--no-plots", "--no-progress", "--out", str(tmp_path)]
    res = CliRunner().invoke(main, [*args, "--data-dir", str(root), "--json", "--epochs", "1"])
    assert res.exit_code == 0, res.output
    table = json.loads(res.stdout)
    assert table["hyperparameters"]["epochs"] == 1 and len(table["rows"]) == 5 and "wall_time_s" in table
    res = CliRunner().invoke(main, [*args, "--data-dir", str(tmp_path / "nowhere")])
    assert res.exit_code == 2
    err = res.stderr.strip()
    assert len(err.splitlines()) == 1 and "no TEP directory" in err


def test_per_sample_scores_threshold_and_delay():
    s = process.samples_from_windows(np.array([1.0, 2.0, 3.0]), 6, 4)
    assert np.isnan(s[:3]).all() and s[3:].tolist() == [1.0, 2.0, 3.0]
    assert process.far_threshold(np.r_[np.nan, np.arange(101.0)], 0.01) == pytest.approx(99.0)
    assert process.alarm_rate(np.array([np.nan, 1.0, 3.0]), 2.0) == 0.5
    alarms = np.array([0, 1, 0, 0, 1, 1, 1, 0], dtype=bool)
    assert process.detection_delay(alarms, 2, alarm_run=3) == 2
    assert process.detection_delay(alarms, 0, alarm_run=1) == 1
    assert process.detection_delay(alarms, 5, alarm_run=3) is None
    with pytest.raises(NetbuilderError, match=r"^Invalid value for argument `far`"):
        process.far_threshold(np.ones(3), 1.5)


def test_pca_baseline_t2_and_spe():
    rng = np.random.default_rng(1)
    # 3 strong directions in 6 variables plus small noise: 90 % of the variance needs exactly those 3
    basis = np.linalg.qr(rng.normal(size=(6, 3)))[0].T   # 3 orthonormal directions, equally strong
    x = rng.normal(size=(500, 3)) @ basis * 3 + rng.normal(scale=0.05, size=(500, 6))
    pca = PCABaseline.fit(x, 0.9)
    assert pca.n_components == 3 and pca.explained >= 0.9
    assert pca.t2(x).mean() == pytest.approx(pca.n_components, rel=0.05)  # E[T²] = a on the fitting data
    off = x[:5] + 10 * (np.eye(6)[0] - pca.components @ (pca.components.T @ np.eye(6)[0]))
    assert (pca.spe(off) > 10 * pca.spe(x).max()).all()     # a move off the principal subspace: SPE
    np.testing.assert_allclose(pca.statistic("spe", x), pca.spe(x))
    with pytest.raises(NetbuilderError, match="unknown PCA statistic"):
        pca.statistic("q", x)


def test_purged_folds_leave_every_scored_window_unseen():
    blocks = purged_folds(500, 5, 64)
    assert [(a, b) for a, b, _ in blocks] == [(0, 100), (100, 200), (200, 300), (300, 400), (400, 500)]
    for a, b, purge in blocks:
        fitted = set(range(purge)) | set(range(b, 500))
        # the window ending at any scored sample t in [a, b) covers t-63 .. t: none of it was fitted on
        assert all(not fitted & set(range(max(0, t - 63), t + 1)) for t in range(a, b))
    with pytest.raises(NetbuilderError, match=r"^Invalid value for argument `folds`"):
        purged_folds(500, 1, 64)


def test_residual_t2_weighs_directions_by_their_normal_spread():
    """An identity 'model' with a fixed offset on channel 0: the residual of channel 0 varies 10 times more than
    that of channel 1, so T² flags a unit residual on channel 1 and not one on channel 0."""
    import torch
    from netbuilder.datasets.signals import Standardizer

    rng = np.random.default_rng(2)

    class Noisy(torch.nn.Module):
        def forward(self, x):
            noise = torch.as_tensor(rng.normal(size=x.shape[:2]) * [1.0, 0.1], dtype=x.dtype)
            return (x + noise[:, :, None],)

    det = WindowDetector(Noisy(), Standardizer(np.zeros(2, np.float32), np.ones(2, np.float32)), 4, "recon",
                         None, "cpu")
    det.fit_residuals(rng.normal(size=(400, 2, 4)).astype(np.float32))
    r = np.array([[1.0, 0.0], [0.0, 1.0]]) - det.residual_mean
    t2 = np.einsum("ij,jk,ik->i", r, det.residual_precision, r)
    assert t2[1] > 20 * t2[0]
    scores = det.residual_t2(rng.normal(size=(10, 2)))
    assert np.isnan(scores[:3]).all() and (scores[3:] >= 0).all()


def test_ensemble_of_one_is_the_plain_network_and_more_reconstruct_with_their_mean():
    import torch

    from netbuilder.core.autoencoder import MeanReconstruction, build_model, fit_autoencoder, fit_ensemble
    from netbuilder.settings import PRETRAIN
    from netbuilder.train import seeded

    spec = TINY[0]
    x = np.random.default_rng(1).normal(size=(64, 52, WINDOW)).astype(np.float32)
    hp = PRETRAIN.resolve({"epochs": 2}, spec["training"])
    one = fit_ensemble(spec, x, hp, size=1, seed=3, device=torch.device("cpu"), progress=False)
    with seeded(3):
        plain = build_model(spec, x.shape[1:])
        fit_autoencoder(plain, x, hp, seed=3, device=torch.device("cpu"), progress=False)
    assert not isinstance(one, MeanReconstruction)
    for a, b in zip(one.state_dict().values(), plain.state_dict().values()):
        assert torch.equal(a, b)
    three = fit_ensemble(spec, x, hp, size=3, seed=3, device=torch.device("cpu"), progress=False)
    assert isinstance(three, MeanReconstruction) and len(three.members) == 3 and not three.training
    # member 0 is the plain network; the others start from other seeds
    assert torch.equal(next(iter(three.members[0].state_dict().values())), next(iter(plain.state_dict().values())))
    assert not torch.equal(three.members[0](torch.from_numpy(x))[0], three.members[1](torch.from_numpy(x))[0])
    with torch.no_grad():
        xt = torch.from_numpy(x)
        mean = sum(m(xt)[0] for m in three.members) / 3
        out, code = three(xt)
        assert torch.allclose(out, mean, atol=1e-6) and torch.equal(code, three.members[0](xt)[1])
    with pytest.raises(Exception, match="Expected an integer >= 1"):
        fit_ensemble(spec, x, hp, size=0, seed=3, device=torch.device("cpu"))


def test_report_records_the_ensemble_and_refuses_it_for_code_scores(report, fake_tep, tmp_path):
    root, archs = fake_tep
    assert report["ensemble"] == 3
    import pathlib
    assert "3 networks per fit" in (pathlib.Path(report["dir"]) / "report.md").read_text()
    with pytest.raises(NetbuilderError, match="add --ensemble 1"):
        run_tep_report(0, "cosine", archs=str(archs), data_dir=str(root), out=str(tmp_path), device="cpu",
                       progress=False)
