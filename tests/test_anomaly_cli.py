"""``netbuilder anomaly`` through click on a generated ``folder:`` dataset of RGB PNGs (a toy crack set:
``Negative/`` plain textures, ``Positive/`` with a dark stripe), plus ``--model`` prediction and the errors."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from netbuilder.cli import main

ARCHS = [
    {"name": "tiny-l2", "input_shape": [3, 16, 16],
     "encoder": [{"type": "flatten"}, {"type": "dense", "units": 32},
                 {"type": "dense", "units": 4, "activation": "linear"}],
     "latent": {"l2_normalize": True}, "training": {"batch_size": 16, "lr": 0.003}},
    {"name": "tiny", "input_shape": [3, 16, 16],
     "encoder": [{"type": "flatten"}, {"type": "dense", "units": 4, "activation": "linear"}]},
]


@pytest.fixture(scope="module")
def cracks(tmp_path_factory):
    root = tmp_path_factory.mktemp("data") / "cracks"
    rng = np.random.default_rng(0)
    for cls, n in (("Negative", 50), ("Positive", 20)):
        (root / cls).mkdir(parents=True)
        for i in range(n):
            tint = rng.integers(140, 210, size=3)
            img = np.clip(tint[None, None, :] + rng.normal(0, 6, size=(16, 16, 3)), 0, 255)
            if cls == "Positive":
                r = rng.integers(2, 13)
                img[r:r + 2, :, :] = rng.integers(10, 60)
            Image.fromarray(img.astype(np.uint8), "RGB").save(root / cls / f"{i}.png")
    archs = root.parent / "archs.json"
    archs.write_text(json.dumps(ARCHS))
    return root, archs


def _run(args, out):
    result = CliRunner().invoke(main, ["anomaly", *args, "--device", "cpu", "--out", str(out)])
    return result


def test_folder_rgb_one_class_report_files_and_predict(cracks, tmp_path):
    root, archs = cracks
    res = _run(["-d", f"folder:{root}", "--archs", str(archs), "-a", "tiny-l2", "--protocol", "one-class",
                "--target", "Negative", "--score", "recon", "--epochs", "30"], tmp_path)
    assert res.exit_code == 0, res.output
    assert "target Negative" in res.output and "ROC AUC" in res.output and "wall time" in res.output
    stage = next((tmp_path / "saved_params").glob("folder-cracks-*/tiny-l2/anomaly-one-class-Negative-recon"))
    for name in ("weights.safetensors", "threshold.json", "scores.csv", "report.json", "train_scores.npy"):
        assert (stage / name).is_file(), name
    manifest = json.loads((stage / "manifest.json").read_text())
    assert manifest["complete"] and manifest["protocol"]["protocol"] == "one-class"
    assert manifest["dataset"]["shape"] == [3, 16, 16]
    report = json.loads((stage / "report.json").read_text())
    # 30% held out, stratified: 15 Negative + 6 Positive test images; a stripe is easy to spot
    assert report["metrics"]["n"] == 21 and report["metrics"]["n_anomalies"] == 6
    assert report["metrics"]["auc"] >= 0.9
    header = (stage / "scores.csv").read_text().splitlines()[0]
    assert header == "index,score,anomaly,label,class,file"
    plots = stage.parents[3] / "plots" / stage.parent.parent.name / "tiny-l2" / stage.name
    for name in ("scores.png", "roc.png", "extremes.png"):
        assert (plots / name).read_bytes()[:4] == b"\x89PNG", name

    # --model: score the whole folder with the saved detector and its saved threshold
    threshold = json.loads((stage / "threshold.json").read_text())["threshold"]
    res = _run(["-d", f"folder:{root}", "--model", str(stage)], tmp_path)
    assert res.exit_code == 0, res.output
    assert f"saved threshold {threshold:.6g}" in res.output and "ROC AUC" in res.output
    csv = next((tmp_path / "predictions" / stage.name).glob("*.csv")).read_text().splitlines()
    assert len(csv) == 71 and csv[0] == "index,score,anomaly,file"
    flagged = sum(int(line.split(",")[2]) for line in csv[1:])
    scores = np.array([float(line.split(",")[1]) for line in csv[1:]])
    assert flagged == int((scores > threshold).sum())


def test_one_class_on_images_defaults_to_knn_and_other_protocols_to_recon(cracks, tmp_path):
    from netbuilder.core.scores import default_score

    root, archs = cracks
    res = _run(["-d", f"folder:{root}", "--archs", str(archs), "--protocol", "one-class", "--target", "Negative",
                "--no-plots", "--json"], tmp_path)
    assert res.exit_code == 0, res.output
    row = json.loads(res.stdout)
    assert row["dir"].endswith("anomaly-one-class-Negative-knn") and row["auc"] >= 0.9
    assert row["hyperparameters"]["epochs"] == 0  # nothing was trained
    res = _run(["-d", f"folder:{root}", "--model", row["dir"]], tmp_path)  # the saved reference images score anew
    assert res.exit_code == 0 and "ROC AUC" in res.output, res.output
    assert [default_score(p, m) for p, m in (("one-class", "image"), ("one-class", "signal"),
                                              ("contaminated", "image"), ("unsupervised", "image"))] == \
        ["knn", "recon", "recon", "recon"]


def test_all_classes_json_table(cracks, tmp_path):
    root, archs = cracks
    res = _run(["-d", f"folder:{root}", "--archs", str(archs), "--protocol", "one-class", "--all-classes",
                "--score", "recon", "--epochs", "5", "--no-plots", "--json", "--threshold", "f1"], tmp_path)
    assert res.exit_code == 0, res.output
    table = json.loads(res.stdout)
    assert [r["class"] for r in table["rows"]] == ["Negative", "Positive"]
    assert table["mean"]["auc"] == pytest.approx(np.mean([r["auc"] for r in table["rows"]]))
    assert table["wall_time_s"] >= 0 and all(r["threshold_method"] == "f1" for r in table["rows"])
    assert Path(table["path"]).is_file()
    # the table records how it was made: the resolved training settings with the command-line override
    saved = json.loads(Path(table["path"]).read_text())
    assert saved["hyperparameters"]["epochs"] == 5 and "batch_size" in saved["hyperparameters"]
    assert saved["options"]["contamination"] == pytest.approx(0.1) and saved["split"] == "all"
    assert all("hyperparameters" not in r for r in saved["rows"])


def test_text_table_and_contaminated_centroid(cracks, tmp_path):
    root, archs = cracks
    res = _run(["-d", f"folder:{root}", "--archs", str(archs), "--protocol", "contaminated", "--all-classes",
                "--score", "centroid", "--anomaly-ratio", "0.1", "--epochs", "3", "--no-plots"], tmp_path)
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert any(line.startswith("mean") for line in lines) and "wall time" in lines[-1]


@pytest.mark.parametrize("args, message", [
    (["--protocol", "one-class", "--target", "Negative", "-a", "tiny", "--score", "cosine"],
     "l2 archs in .*: tiny-l2"),
    (["--protocol", "one-class", "--target", "Cracked"], "unknown target class 'Cracked'.*classes: 0 Negative, 1 Positive"),
    (["--target", "Negative"], "--protocol is required"),
    (["--protocol", "unsupervised", "--threshold", "accuracy"], "no labelled threshold"),
])
def test_one_line_errors(cracks, tmp_path, args, message):
    root, archs = cracks
    res = _run(["-d", f"folder:{root}", "--archs", str(archs), *args], tmp_path)
    assert res.exit_code == 2, res.output
    err = res.stderr if hasattr(res, "stderr") else res.output
    assert len(err.strip().splitlines()) == 1
    assert re.search(message, err), err


def test_one_class_on_an_unlabelled_folder_explains(cracks, tmp_path):
    root, archs = cracks
    res = _run(["-d", f"folder:{root / 'Negative'}", "--archs", str(archs), "--protocol", "one-class",
                "--target", "0"], tmp_path)
    assert res.exit_code == 2 and "needs labelled data" in res.output and "--protocol unsupervised" in res.output
    res = _run(["-d", f"folder:{root / 'Negative'}", "--archs", str(archs), "--protocol", "unsupervised",
                "--epochs", "2", "--no-plots"], tmp_path)
    assert res.exit_code == 0 and "5 of 50 flagged" in res.output, res.output


def test_cosine_accepts_an_explicit_l2normalize_layer(cracks, tmp_path):
    # Unit-length codes said either way (latent.l2_normalize or a last l2normalize layer) satisfy the cosine score,
    # on the command line and in the estimator alike.
    from netbuilder.anomaly import AutoencoderAnomalyDetector

    root, _ = cracks
    spec = {"name": "explicit-l2", "input_shape": [3, 16, 16],
            "encoder": [{"type": "flatten"}, {"type": "dense", "units": 4, "activation": "linear"},
                        {"type": "l2normalize"}]}
    archs = tmp_path / "explicit.json"
    archs.write_text(json.dumps([spec]))
    result = _run(["-d", f"folder:{root}", "--archs", str(archs), "--protocol", "one-class", "--target", "Negative",
                   "--score", "cosine", "--epochs", "1", "--clusters", "2", "--no-plots", "--json"], tmp_path / "o")
    assert result.exit_code == 0, result.output
    x = np.zeros((8, 3, 16, 16), np.uint8)
    x[4:] = 200
    det = AutoencoderAnomalyDetector(spec, score="cosine", epochs=1, n_clusters=2, device="cpu").fit(x)
    assert det.centroids_.shape == (2, 4)


def test_dataset_options_it_does_not_take_are_refused(cracks, tmp_path):
    root, archs = cracks
    result = _run(["-d", f"folder:{root}", "--archs", str(archs), "--protocol", "one-class", "--target", "Negative",
                   "--window", "16"], tmp_path / "o")
    # the signal options now reach the loader, which names what a folder takes
    assert result.exit_code == 2 and "Argument `window` does not apply to folder:PATH" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_combined_score_reports_each_part(cracks, tmp_path):
    root, archs = cracks
    res = _run(["-d", f"folder:{root}", "--archs", str(archs), "--protocol", "contaminated", "--all-classes",
                "-a", "tiny-l2", "--score", "cosine+clusters", "--anomaly-ratio", "0.2", "--epochs", "3",
                "--cluster-epochs", "1"], tmp_path)
    assert res.exit_code == 0, res.output
    head = next(line for line in res.output.splitlines() if line.split()[:3] == ["target", "ROC", "AUC"])
    assert "AUC cosine" in head and "AUC clusters" in head, res.output
    table = json.loads(Path(re.search(r"table: (\S+)", res.output).group(1)).read_text())
    for row in table["rows"]:
        assert 0.0 <= row["auc_cosine"] <= 1.0 and 0.0 <= row["auc_clusters"] <= 1.0
    assert table["mean"]["auc_clusters"] == pytest.approx(np.mean([r["auc_clusters"] for r in table["rows"]]))
    saved = Path(table["rows"][0]["dir"])
    assert (saved / "part1-clusters" / "weights.safetensors").is_file() and (saved / "scores.csv").is_file()
    assert json.loads((saved / "manifest.json").read_text())["files"]["parts"] == ["part0-cosine", "part1-clusters"]
