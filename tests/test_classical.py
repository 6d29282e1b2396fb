"""Unknown cluster counts (``--clusters auto``) and the classical route (``--cluster-method``) on DIGITS codes.

One pretrain of the shipped digits-dense-l2 arch at its defaults (~20 s on one thread) feeds every stage test.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from netbuilder import clustering
from netbuilder.cli import main
from netbuilder.core.kselect import select_k
from netbuilder.errors import NetbuilderError
from netbuilder.stages.cluster import cluster
from netbuilder.stages.pretrain import pretrain
from netbuilder.stages.run import run_all

ARCH = "digits-dense-l2"


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    out = tmp_path_factory.mktemp("classical")
    pretrain("DIGITS", ARCH, out=str(out), echo=False, progress=False, device="cpu")
    return out


def test_clusters_auto_picks_ten_on_digits_codes(pretrained):
    res = CliRunner().invoke(main, ["cluster", "-d", "DIGITS", "-a", ARCH, "--out", str(pretrained),
                                    "--clusters", "auto", "--device", "cpu", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "10  " in res.output and "<- chosen" in res.output      # the curve is printed
    stage = pretrained / "saved_params" / "DIGITS" / ARCH / "cluster-none"
    m = json.loads((stage / "manifest.json").read_text())
    auto = m["clusters_auto"]
    assert m["n_clusters"] == 10 and auto["k"] == 10 and m["metrics"]["clusters"] == 10
    assert auto["ks"] == list(range(2, 21)) and len(auto["gaps"]) == 19
    assert auto["gaps"][8] == max(auto["gaps"])                    # k = 10 is the 9th candidate
    plot = pretrained / "plots" / "DIGITS" / ARCH / "clusters-auto.png"
    assert plot.read_bytes()[:4] == b"\x89PNG" and plot.stat().st_size > 20_000


@pytest.mark.parametrize("method, bar", [("birch", 0.45), ("agglomerative", 0.62)])
def test_classical_methods_through_the_stage(pretrained, method, bar):
    # Measured on these codes (seed 0), Intel Xeon: k-means 0.705, BIRCH 0.659, Ward 0.700. The codes differ
    # between CPU families, and BIRCH's fixed subcluster radius makes it the most sensitive: 0.530 on an AMD EPYC.
    m = cluster("DIGITS", ARCH, out=str(pretrained), cluster_method=method, echo=False, progress=False,
                device="cpu")
    assert m["hyperparameters"]["cluster_method"] == method
    assert m["metrics"]["clusters"] == 10 and m["metrics"]["acc"] > bar  # chance is about 0.11


def test_run_reruns_the_cluster_stage_for_another_method(pretrained):
    info = run_all("DIGITS", ARCH, out=str(pretrained), visualize=False, echo=False, progress=False, device="cpu",
                   cluster_method="agglomerative", clusters=8)
    assert info["cluster"]["n_clusters"] == 8 and info["cluster"]["hyperparameters"]["cluster_method"] == "agglomerative"


def test_another_method_needs_loss_none(pretrained):
    with pytest.raises(NetbuilderError, match="final clustering step"):
        cluster("DIGITS", ARCH, "kld", out=str(pretrained), cluster_method="birch", echo=False)
    with pytest.raises(NetbuilderError, match="clusters"):
        cluster("DIGITS", ARCH, out=str(pretrained), clusters="many", echo=False)


def test_select_k_finds_separated_blobs():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(6, 5)) * 10
    x = np.concatenate([c + rng.normal(size=(80, 5)) for c in centres])
    sel = select_k(x, k_max=12)
    assert sel.k == 6 and sel.ks == list(range(2, 13)) and "<- chosen" in sel.table()
    with pytest.raises(NetbuilderError, match="needs more than"):
        select_k(x[:15], k_max=20)


def test_agglomerative_subsamples_large_inputs(monkeypatch):
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(size=(300, 3)) + off for off in (0, 20, 40)]).astype(np.float32)
    monkeypatch.setattr(clustering, "AGGLOMERATIVE_MAX", 100)
    pred, centres = clustering.classical_cluster(x, "agglomerative", 3, seed=0)
    assert centres.shape == (3, 3)
    assert all(len(np.unique(pred[i * 300:(i + 1) * 300])) == 1 for i in range(3))  # each blob whole
    with pytest.raises(NetbuilderError, match="cluster_method"):
        clustering.classical_cluster(x, "dbscan", 3)
