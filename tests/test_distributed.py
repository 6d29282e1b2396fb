"""torchrun with 2 processes against one process: same steps, same files, same metrics.

On CPU (the default) the ranks use gloo; with ``NETBUILDER_TEST_DEVICE=cuda`` they use NCCL, one GPU each, and the
torchrun tests need two GPUs.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from netbuilder import distributed
from netbuilder.stages.cluster import cluster
from netbuilder.stages.pretrain import pretrain

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed not built")

STAGES = Path("saved_params") / "DIGITS" / "digits-dense"
TEST_DEVICE = os.environ.get("NETBUILDER_TEST_DEVICE", "").strip() or "cpu"
needs_two_gpus = pytest.mark.skipif(TEST_DEVICE.startswith("cuda") and torch.cuda.device_count() < 2,
                                    reason="2 NCCL ranks need 2 GPUs")


def _torchrun(out: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "netbuilder", *args, "-d", "DIGITS", "-a", "digits-dense", "--out", str(out), "--no-progress",
           "--device", "cuda" if TEST_DEVICE.startswith("cuda") else TEST_DEVICE]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    single, multi = tmp_path_factory.mktemp("single"), tmp_path_factory.mktemp("multi")
    pre = pretrain("DIGITS", "digits-dense", out=str(single), epochs=2, echo=False, progress=False, device=TEST_DEVICE)
    clu = {loss: cluster("DIGITS", "digits-dense", loss, out=str(single), epochs=2, echo=False, progress=False,
                         device=TEST_DEVICE)
           for loss in ("kmeans", "kld")}
    p1 = _torchrun(multi, "pretrain", "--epochs", "2")
    p2 = _torchrun(multi, "cluster", "--loss", "kmeans", "--epochs", "2")
    p3 = _torchrun(multi, "cluster", "--loss", "kld", "--epochs", "2")
    return single, multi, pre, clu, p1.stdout + p2.stdout + p3.stdout


def _manifest(root: Path, stage: str) -> dict:
    return json.loads((root / STAGES / stage / "manifest.json").read_text())


@needs_two_gpus
@pytest.mark.parametrize("stage", ["pretrain", "cluster-kmeans", "cluster-kld"])
def test_two_processes_match_one(runs, stage):
    # kmeans: the running centroids are updated from all ranks' rows; kld: the target P from all-gathered codes
    single, multi, pre, clu, _ = runs
    one, two = (pre if stage == "pretrain" else clu[stage.split("-")[1]]), _manifest(multi, stage)
    assert two["steps"] == one["steps"] > 0
    for key in ("acc", "nmi", "ari"):
        assert two["metrics"][key] == pytest.approx(one["metrics"][key], abs=0.02)
    codes1 = np.load(single / STAGES / stage / "codes.npy")
    codes2 = np.load(multi / STAGES / stage / "codes.npy")
    assert codes1.shape == codes2.shape == (1797, 10)
    # Same batches, averaged gradients: the weights agree up to float summation order.
    assert np.abs(codes1 - codes2).max() < 1e-3


@needs_two_gpus
def test_same_output_layout_and_rank0_writes_once(runs):
    single, multi, *_ , stdout = runs
    assert _files(multi) == _files(single)
    # Only rank 0 prints its result line (and logs each epoch once).
    assert stdout.count("pretrain (autoencoder + k-means)") == 1
    log = (multi / "logs" / "DIGITS" / "digits-dense" / "pretrain.jsonl").read_text().splitlines()
    assert len(log) == 2


def test_helpers_are_no_ops_in_one_process():
    assert not distributed.active()
    assert (distributed.rank(), distributed.world_size(), distributed.is_main()) == (0, 1, True)
    assert distributed.shard_range(10) == (0, 10)
    t = torch.arange(6.0).reshape(3, 2)
    assert distributed.gather_rows(t) is t


@needs_two_gpus
def test_anomaly_under_torchrun_matches_one_process(tmp_path):
    from netbuilder.anomaly.experiment import load_inputs, run_target

    args = ["--protocol", "one-class", "--target", "0", "--score", "recon", "--no-plots", "--json"]
    proc = _torchrun(tmp_path / "multi", "anomaly", *args)
    two = json.loads(proc.stdout)
    inputs = load_inputs("DIGITS", "digits-dense", "one-class", out=str(tmp_path / "single"), progress=False)
    one = run_target(inputs, "one-class", "0", plots=False, progress=False, device=TEST_DEVICE)
    assert two["metrics"]["auc"] == pytest.approx(one["auc"], abs=0.02)
    assert two["metrics"]["auc"] > 0.9
