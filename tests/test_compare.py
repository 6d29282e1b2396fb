"""``netbuilder compare`` on DIGITS with two tiny archs: the leaderboard, resuming, and bad archs refused up front."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from netbuilder.cli import main
from netbuilder.stages import leaderboard as lb

DENSE = {"type": "dense", "activation": "linear"}
TINY = [
    {"name": "tiny-a", "input_shape": [1, 8, 8],
     "encoder": [{"type": "flatten"}, {"type": "dense", "units": 32}, {**DENSE, "units": 10}],
     "clustering": {"n_clusters": 10}, "training": {"batch_size": 128, "cluster": {"loss": "none"}, "threads": 1}},
    {"name": "tiny-b", "input_shape": [1, 8, 8],
     "encoder": [{"type": "flatten"}, {"type": "dense", "units": 16}, {**DENSE, "units": 5}],
     "clustering": {"n_clusters": 10},
     "training": {"batch_size": 128, "cluster": {"loss": "kld", "update_interval": 1}, "threads": 1}},
    # Valid as written (32×32 input), but three 2× poolings leave nothing of DIGITS' 8×8 images.
    {"name": "too-deep", "input_shape": [1, 32, 32],
     "encoder": [{"type": "conv", "filters": 4, "kernel_size": 3, "padding": "same"}, {"type": "maxpool", "pool_size": 2},
                 {"type": "conv", "filters": 4, "kernel_size": 3, "padding": "same"}, {"type": "maxpool", "pool_size": 2},
                 {"type": "conv", "filters": 4, "kernel_size": 3, "padding": "same"}, {"type": "maxpool", "pool_size": 2},
                 {"type": "conv", "filters": 4, "kernel_size": 3, "padding": "same"}, {"type": "maxpool", "pool_size": 2},
                 {"type": "flatten"}, {**DENSE, "units": 4}],
     "clustering": {"n_clusters": 10}},
]


def invoke(*args: str):
    return CliRunner().invoke(main, ["compare", "-d", "DIGITS", *args])


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    archs = root / "tiny.json"
    archs.write_text(json.dumps(TINY))
    args = ("--archs", str(archs), "-a", "tiny-a,1", "--seeds", "2", "--epochs", "2", "--cluster-epochs", "2",
            "--out", str(root / "out"), "--json")
    first = invoke(*args)
    assert first.exit_code == 0, first.output
    return root, args, first


def manifests(out):
    return {str(p): json.loads(p.read_text())["created"] for p in sorted(out.glob("compare/**/manifest.json"))}


def test_leaderboard_lists_every_arch_with_scores(compared):
    root, _, first = compared
    res = json.loads(first.stdout)
    assert {r["arch"] for r in res["rows"]} == {"tiny-a", "tiny-b"}
    for r in res["rows"]:
        assert r["seeds"] == [0, 1]
        for key in ("acc", "acc_std", "nmi", "ari", "silhouette", "stability", "recon_loss", "train_s",
                    "label_free_score", "params"):
            assert isinstance(r[key], (int, float)), key
    assert [r["acc"] for r in res["rows"]] == sorted((r["acc"] for r in res["rows"]), reverse=True)
    assert res["agreement"]["chosen"] in ("tiny-a", "tiny-b") and 0 <= res["agreement"]["per_seed_hits"] <= 1
    # Seeds run under separate roots with the normal stage layout.
    for seed in (0, 1):
        for arch in ("tiny-a", "tiny-b"):
            assert (root / "out" / "compare" / "DIGITS" / f"seed-{seed}" / "saved_params" / "DIGITS" / arch /
                    "pretrain" / "manifest.json").exists()
    plots = root / "out" / "plots" / "DIGITS"
    assert json.loads((plots / "compare.json").read_text())["rows"] == res["rows"]
    assert "| tiny-" in (plots / "compare.md").read_text()
    assert (plots / "compare.png").read_bytes()[:4] == b"\x89PNG"
    assert "[4/4] tiny-b seed 1: ACC" in first.stderr and "(trained," in first.stderr


def test_rerun_reuses_every_stage(compared):
    root, args, first = compared
    before = manifests(root / "out")
    assert len(before) == 8  # 2 archs × 2 seeds × (pretrain + cluster)
    again = invoke(*args)
    assert again.exit_code == 0, again.output
    assert manifests(root / "out") == before
    assert again.stderr.count("(reused,") == 4
    assert json.loads(again.stdout)["rows"] == json.loads(first.stdout)["rows"]


@pytest.mark.parametrize("arch, expected", [
    ("tiny-a,nope", "no arch named 'nope'"),
    ("0,7", "arch index 7 is out of range"),
    ("tiny-a,tiny-b,too-deep", "too-deep"),
    ("tiny-a,,1", "expected comma-separated arch indices or names"),
    ("auto,nope", "no arch named 'nope'"),
])
def test_bad_arch_is_one_line_error_before_training(tmp_path, arch, expected):
    archs = tmp_path / "tiny.json"
    archs.write_text(json.dumps(TINY))
    result = invoke("--archs", str(archs), "-a", arch, "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and result.output.startswith("error: ") and expected in result.output
    assert not (tmp_path / "out" / "compare").exists()


def test_invalid_arch_in_file_is_refused(tmp_path):
    archs = tmp_path / "bad.json"
    archs.write_text(json.dumps([TINY[0], {**TINY[1], "encoder": [{"type": "dense", "units": -3}]}]))
    result = invoke("--archs", str(archs), "-a", "0", "--out", str(tmp_path / "out"))
    assert result.exit_code == 2 and result.output.count("\n") == 1 and 'arch 1 "tiny-b"' in result.output
    assert not (tmp_path / "out" / "compare").exists()


def test_agreement_statistics():
    # Three archs, two seeds: "b" is best by ACC and by both label-free criteria.
    pred = np.arange(20) % 4
    runs = [{"arch": a, "seed": s, "acc": acc + 0.01 * s, "silhouette": sil, "pred": p, "train_s": 1.0}
            for a, acc, sil, p in (("a", 0.5, 0.1, np.roll(pred, 1)), ("b", 0.9, 0.4, pred), ("c", 0.7, 0.2, pred[::-1]))
            for s in (0, 1)]
    runs[0]["pred"] = np.zeros(20, dtype=int)  # arch "a" is unstable across seeds
    rows = lb.rank(lb.summarise(runs, ["a", "b", "c"]))
    assert [r["arch"] for r in rows] == ["b", "c", "a"]
    agree = lb.agreement(rows, runs)
    assert agree["chosen"] == "b" and agree["chosen_is_best"] and agree["per_seed_hits"] == 1.0
    assert agree["acc_regret"] == 0 and agree["spearman_score_acc"] == pytest.approx(1.0)
    assert math.isnan(lb.stability([pred]))


def test_auto_arch_joins_a_comparison(tmp_path):
    archs = tmp_path / "tiny.json"
    archs.write_text(json.dumps(TINY))
    result = invoke("--archs", str(archs), "-a", "tiny-a,auto,0", "--seeds", "1", "--epochs", "1", "--cluster-epochs",
                    "1", "--out", str(tmp_path / "out"), "--json")
    assert result.exit_code == 0, result.output
    rows = {r["arch"]: r for r in json.loads(result.stdout)["rows"]}
    assert set(rows) == {"tiny-a", "auto"}
    # The derived arch for 8×8 digits: conv 32@3 s2 + dense 10 (README's rule), planned for this dataset.
    assert rows["auto"]["params"] > rows["tiny-a"]["params"] > 0
    assert (tmp_path / "out" / "compare" / "DIGITS" / "seed-0" / "saved_params" / "DIGITS" / "auto" / "pretrain" /
            "manifest.json").exists()
