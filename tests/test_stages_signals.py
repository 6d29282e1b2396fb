"""The stages on signal datasets (generated in tmp_path): a 1-D pretrain whose loss goes down, `run` end to end on
a fake UCR folder (metrics with the raw-series row, plots), --window/--stride reaching a series: dataset, and the
derived signal arch."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from netbuilder.arch.auto_signal import signal_arch
from netbuilder.arch import resolve_spec
from netbuilder.cli import main
from netbuilder.errors import ArchError
from netbuilder.stages.pretrain import pretrain
from netbuilder.stages.run import run_all
from netbuilder.train.runlog import read_jsonl

LENGTH = 48


def _signals(n: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """Two classes: a bump early or late in the window (random amplitude and jitter) in noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    centre = np.where(labels == 0, 0.3, 0.7)[:, None] * LENGTH + rng.integers(-3, 4, (n, 1))
    t = np.arange(LENGTH)[None, :]
    x = rng.uniform(1.0, 2.0, (n, 1)) * np.exp(-0.5 * ((t - centre) / 3.0) ** 2) + 0.2 * rng.standard_normal((n, LENGTH))
    return x[:, None, :], [("early", "late")[c] for c in labels]


def _write_ucr(root: Path, name: str = "Toy") -> str:
    folder = root / "ucr" / name
    folder.mkdir(parents=True)
    for part, (n, seed) in {"TRAIN": (30, 0), "TEST": (30, 1)}.items():
        x, labels = _signals(n, seed)
        lines = [f"@problemName {name}", "@univariate true", "@equalLength true", "@classLabel true early late",
                 "@data"] + [",".join(f"{v:.5f}" for v in s[0]) + f":{lab}" for s, lab in zip(x, labels)]
        (folder / f"{name}_{part}.ts").write_text("\n".join(lines) + "\n")
    return f"ucr:{name}"


def test_signal_arch_rule():
    spec = signal_arch([3, 150], 2)
    convs = [layer for layer in spec["encoder"] if layer["type"] == "conv"]
    # 150 → 75 → 38 → 19 → 10 → 5: five stride-2 convs, kernel 5 then 3, filters doubling to 128.
    assert [c["filters"] for c in convs] == [32, 64, 128, 128, 128]
    assert [c["kernel_size"] for c in convs] == [5, 3, 3, 3, 3]
    assert spec["encoder"][-1]["units"] == 10 and signal_arch([1, 24], 12)["encoder"][-1]["units"] == 12
    assert spec["latent"] == {"l2_normalize": True} and spec["output_activation"] == "linear"
    assert spec["training"]["cluster"]["loss"] == "none" and spec["training"]["cluster"]["manifold"] == "umap"
    _, plan = resolve_spec(spec)
    assert plan.decoder[-1].output_shape == (3, 150)
    with pytest.raises(ArchError):
        signal_arch([1, 28, 28], 10)


def test_pretrain_on_signals_lowers_the_loss(tmp_path):
    name = _write_ucr(tmp_path)
    m = pretrain(name, data_dir=str(tmp_path), out=str(tmp_path / "out"), epochs=8, progress=False, echo=False,
                 device="cpu")
    assert m["arch"]["name"] == "auto" and m["dataset"]["shape"] == [1, LENGTH] and m["dataset"]["n"] == 60
    losses = [r["loss"] for r in read_jsonl(Path(m["logs"]["jsonl"])) if "epoch" in r]
    assert len(losses) == 8 and losses[-1] < 0.8 * losses[0]


def test_run_end_to_end_on_a_fake_ucr_folder(tmp_path):
    name = _write_ucr(tmp_path)
    out = run_all(name, data_dir=str(tmp_path), out=str(tmp_path / "out"), loss="dcca", pretrain_epochs=5,
                  cluster_epochs=2, method="pca", n=60, echo=False, device="cpu")
    rows = {r["method"]: r for r in out["metrics"]}
    assert rows["pixels"]["title"] == "raw series + k-means" and rows["pixels"]["acc"] > 0.5
    assert rows["cluster-dcca"]["clusters"] == 2 and "acc" in rows["cluster-dcca-best-map"]
    plots = out["plots"]
    for key in ("embedding-series", "embedding-pretrain", "embedding-cluster-dcca", "embedding-cluster-dcca-map",
                "reconstructions", "clusters-cluster-dcca", "curves"):
        assert Path(plots[key]).stat().st_size > 1000, key
    # The metrics command shows the same table, raw-series row included.
    res = CliRunner().invoke(main, ["metrics", "-d", name, "--data-dir", str(tmp_path), "--out",
                                    str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert "raw series + k-means" in res.output and "dcca: best map by ACC" in res.output


def test_window_and_stride_reach_a_series_dataset(tmp_path):
    rng = np.random.default_rng(0)
    values = rng.standard_normal((200, 2))
    labels = np.where(np.arange(200) < 100, "normal", "fault")
    csv = tmp_path / "rec.csv"
    csv.write_text("a,b,state\n" + "".join(f"{v[0]:.4f},{v[1]:.4f},{lab}\n" for v, lab in zip(values, labels)))
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["pretrain", "-d", f"series:{csv}", "--window", "20", "--stride", "10",
                                    "--label-column", "state", "--epochs", "1", "--out", str(out), "--device", "cpu",
                                    "--no-progress"])
    assert res.exit_code == 0, res.output
    manifest = json.loads(next(out.rglob("pretrain/manifest.json")).read_text())
    assert manifest["dataset"]["shape"] == [2, 20] and manifest["dataset"]["n"] == (200 - 20) // 10 + 1
    assert manifest["dataset"]["n_classes"] == 2
    # An option the dataset does not take is a one-line error, not silently ignored.
    res = CliRunner().invoke(main, ["pretrain", "-d", "DIGITS", "--window", "20", "--out", str(out)])
    assert res.exit_code != 0 and "`window` does not apply to DIGITS" in res.output
