"""Reliability: SIGKILL + --resume gives the same result, cluster resume, stage locks, NaN stops cleanly."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from netbuilder.errors import NetbuilderError, StageError

STAGE_REL = Path("saved_params") / "DIGITS" / "digits-dense"


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONHASHSEED="0")
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1]) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _pretrain_cmd(out: Path, epochs: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "netbuilder", "pretrain", "-d", "DIGITS", "-a", "digits-dense",
            "--epochs", str(epochs),
            "--eval-every", str(epochs), "--threads", "1", "--out", str(out), "--no-progress", *extra]


def _jsonl(out: Path) -> list[dict]:
    path = out / "logs" / "DIGITS" / "digits-dense" / "pretrain.jsonl"
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return rows


def _weights(stage: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(stage / "weights.safetensors"))


def test_sigkill_mid_run_then_resume_matches_uninterrupted(tmp_path):
    epochs = 20
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    ref = subprocess.Popen(_pretrain_cmd(straight, epochs), env=_env(), stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE)
    proc = subprocess.Popen(_pretrain_cmd(killed, epochs), env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    stage = killed / STAGE_REL / "pretrain"
    deadline = time.monotonic() + 60
    try:
        while len(_jsonl(killed)) < 2 or not (stage / "checkpoint.pt").exists():
            assert proc.poll() is None, "the run finished before it could be killed; raise the epochs"
            assert time.monotonic() < deadline, "the run did not reach epoch 2 in time"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)  # mid-epoch, or even mid-checkpoint-write
    finally:
        proc.wait()
    done_before_kill = len(_jsonl(killed))
    assert done_before_kill < epochs
    # Nothing half-written: no weights/codes/manifest, only a complete checkpoint (+ stale lock). A checkpoint is
    # written unnamed, then named ``.checkpoint.pt.<hex>.tmp`` and renamed onto checkpoint.pt: a kill between those
    # two system calls leaves that complete file under its temporary name (seen once in CI), and the next run's
    # lock removes it (the last assertion below checks the folder after the resume).
    left = sorted(p.name for p in stage.iterdir())
    temps = [n for n in left if n.endswith(".tmp")]
    for name in temps:
        assert name.startswith(".checkpoint.pt."), left
        assert torch.load(stage / name, map_location="cpu", weights_only=True)["epoch"] >= 1   # complete
    assert set(left) - set(temps) <= {"checkpoint.pt", ".lock"}, left
    ckpt = torch.load(stage / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert 1 <= ckpt["epoch"] <= done_before_kill

    res = subprocess.run(_pretrain_cmd(killed, epochs, "--resume"), env=_env(), capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert "resumed pretrain" in res.stdout and f"at epoch {ckpt['epoch']}" in res.stdout
    assert ref.wait(timeout=120) == 0, ref.stderr.read()

    # Resume skipped the checkpointed epochs: the log holds them once from the first run, then the rest.
    epochs_logged = [r["epoch"] for r in _jsonl(killed)]
    assert epochs_logged[-(epochs - ckpt["epoch"]):] == list(range(ckpt["epoch"] + 1, epochs + 1))
    assert epochs_logged.count(1) == 1

    m_ref = json.loads((straight / STAGE_REL / "pretrain" / "manifest.json").read_text())
    m_res = json.loads((stage / "manifest.json").read_text())
    assert m_res["metrics"] == m_ref["metrics"]
    assert m_res["steps"] == m_ref["steps"]
    w_ref, w_res = _weights(straight / STAGE_REL / "pretrain"), _weights(stage)
    assert w_ref.keys() == w_res.keys()
    for k in w_ref:
        assert torch.equal(w_ref[k], w_res[k]), k
    assert np.array_equal(np.load(stage / "codes.npy"), np.load(straight / STAGE_REL / "pretrain" / "codes.npy"))
    assert sorted(p.name for p in stage.iterdir()) == ["codes.npy", "manifest.json", "weights.safetensors"]


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    from netbuilder.stages.pretrain import pretrain

    out = tmp_path_factory.mktemp("pre")
    pretrain("DIGITS", "digits-dense", out=str(out), epochs=3, eval_every=10, echo=False, progress=False)
    return out


def _interrupt_after(monkeypatch, module, epoch_to_die: int) -> None:
    """Make ``module.train`` raise KeyboardInterrupt at the end of ``epoch_to_die`` (before its checkpoint)."""
    real = module.train

    def train(*args, on_epoch_end=None, **kw):
        def hook(epoch):
            if epoch == epoch_to_die:
                raise KeyboardInterrupt
            return on_epoch_end(epoch) if on_epoch_end else None
        return real(*args, on_epoch_end=hook, **kw)

    monkeypatch.setattr(module, "train", train)


@pytest.mark.parametrize("loss", ["kld", "kmeans"])
def test_cluster_interrupted_and_resumed_matches_uninterrupted(pretrained, tmp_path, monkeypatch, loss):
    import shutil

    import netbuilder.core.clustering as core_clustering
    import netbuilder.stages.cluster as cl

    hp = dict(epochs=4, batch_size=256, echo=False, progress=False, **({"update_interval": 5} if loss == "kld" else {}))
    straight = tmp_path / "straight"
    shutil.copytree(pretrained, straight)
    m_ref = cl.cluster("DIGITS", "digits-dense", loss, out=str(straight), **hp)

    killed = tmp_path / "killed"
    shutil.copytree(pretrained, killed)
    stage = killed / STAGE_REL / f"cluster-{loss}"
    with monkeypatch.context() as mp:
        _interrupt_after(mp, core_clustering, 3)
        with pytest.raises(KeyboardInterrupt):
            cl.cluster("DIGITS", "digits-dense", loss, out=str(killed), **hp)
    assert (stage / "checkpoint.pt").exists() and not (stage / "manifest.json").exists()
    assert not (stage / ".lock").exists()
    assert torch.load(stage / "checkpoint.pt", weights_only=True)["epoch"] == 2
    m_res = cl.cluster("DIGITS", "digits-dense", loss, out=str(killed), resume=True, **hp)
    assert m_res["metrics"] == m_ref["metrics"] and m_res["steps"] == m_ref["steps"]
    ref_dir = straight / STAGE_REL / f"cluster-{loss}"
    assert (stage / "assignments.csv").read_text() == (ref_dir / "assignments.csv").read_text()
    assert np.array_equal(np.load(stage / "centroids.npy"), np.load(ref_dir / "centroids.npy"))
    assert not (stage / "checkpoint.pt").exists()


def test_cluster_resume_refuses_other_options(pretrained, tmp_path, monkeypatch):
    import shutil

    import netbuilder.core.clustering as core_clustering
    import netbuilder.stages.cluster as cl

    out = tmp_path / "o"
    shutil.copytree(pretrained, out)
    with monkeypatch.context() as mp:
        _interrupt_after(mp, core_clustering, 2)
        with pytest.raises(KeyboardInterrupt):
            cl.cluster("DIGITS", "digits-dense", "kmeans", out=str(out), epochs=3, echo=False, progress=False)
    with pytest.raises(StageError, match="checkpoint.pt.*different"):
        cl.cluster("DIGITS", "digits-dense", "kmeans", out=str(out), epochs=3, lr=0.5, resume=True, echo=False,
                   progress=False)


# ---------------------------------------------------------------- locks

def test_second_run_on_same_stage_dir_is_refused(pretrained, tmp_path):
    import shutil

    from netbuilder.stages.cluster import cluster

    out = tmp_path / "o"
    shutil.copytree(pretrained, out)
    stage = out / STAGE_REL / "cluster-kmeans"
    stage.mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (stage / ".lock").write_text(f"{holder.pid}\n")
        with pytest.raises(StageError) as err:
            cluster("DIGITS", "digits-dense", "kmeans", out=str(out), epochs=1, echo=False, progress=False)
        msg = str(err.value)
        assert f"pid {holder.pid}" in msg and "another netbuilder run" in msg and str(stage / ".lock") in msg
        assert "\n" not in msg
        assert (stage / ".lock").read_text().strip() == str(holder.pid)  # not stolen
        assert not (stage / "manifest.json").exists()
    finally:
        holder.kill()
        holder.wait()


def test_stale_lock_is_taken_over_with_a_warning(pretrained, tmp_path, capsys):
    import shutil

    from netbuilder.stages.cluster import cluster

    out = tmp_path / "o"
    shutil.copytree(pretrained, out)
    stage = out / STAGE_REL / "cluster-kmeans"
    stage.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (stage / ".lock").write_text(f"{dead.pid}\n")
    (stage / ".codes.npy.1234abcd.tmp").write_bytes(b"half")  # left by a killed writer
    cluster("DIGITS", "digits-dense", "kmeans", out=str(out), epochs=1, echo=False, progress=False)
    assert "stale lock" in capsys.readouterr().err
    assert sorted(p.name for p in stage.iterdir()) == ["assignments.csv", "centroids.npy", "codes.npy",
                                                       "manifest.json", "weights.safetensors"]


def test_lock_is_released_after_an_error(tmp_path):
    from netbuilder.stages.lock import stage_lock

    with pytest.raises(RuntimeError):
        with stage_lock(tmp_path / "s"):
            assert (tmp_path / "s" / ".lock").read_text().strip() == str(os.getpid())
            raise RuntimeError("boom")
    assert not (tmp_path / "s" / ".lock").exists()
    with stage_lock(tmp_path / "s"):
        with pytest.raises(StageError, match="another netbuilder run"):
            with stage_lock(tmp_path / "s"):
                pass


# ---------------------------------------------------------------- numerics

def test_nan_loss_stops_with_epoch_and_batch_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    import netbuilder.core.autoencoder as core_ae
    import netbuilder.stages.pretrain as pre

    real = core_ae.reconstruction_loss
    calls = {"n": 0}

    def poisoned(kind):
        base = real(kind)

        def loss(x_hat, x):
            calls["n"] += 1
            out = base(x_hat, x)
            return out * float("nan") if calls["n"] == 29 * 2 + 5 else out  # epoch 3, batch 5 (29 batches/epoch)
        return loss

    monkeypatch.setattr(core_ae, "reconstruction_loss", poisoned)
    with pytest.raises(NetbuilderError) as err:
        pre.pretrain("DIGITS", "digits-dense", out=str(tmp_path), epochs=5, eval_every=10, echo=False, progress=False)
    msg = str(err.value)
    assert "epoch 3" in msg and "batch 5" in msg and "--lr" in msg and "\n" not in msg
    stage = tmp_path / STAGE_REL / "pretrain"
    assert torch.load(stage / "checkpoint.pt", weights_only=True)["epoch"] == 2
    assert not (stage / "manifest.json").exists() and not (stage / "weights.safetensors").exists()
    assert not (stage / ".lock").exists()


def test_checkpoint_restores_numpy_and_python_rng(tmp_path):
    import random

    from torch import nn

    from netbuilder.train.checkpoint import load_checkpoint, save_checkpoint

    model = nn.Linear(2, 2)
    opt = torch.optim.Adam(model.parameters())
    np.random.seed(3)
    random.seed(4)
    save_checkpoint(tmp_path / "c.pt", model, opt, None, epoch=1, steps=1, history=[], extra={})
    expected = (np.random.rand(3), random.random(), torch.rand(2))
    np.random.seed(99)
    random.seed(99)
    torch.manual_seed(99)
    load_checkpoint(tmp_path / "c.pt", model, opt, None)
    got = (np.random.rand(3), random.random(), torch.rand(2))
    assert np.array_equal(expected[0], got[0]) and expected[1] == got[1] and torch.equal(expected[2], got[2])
