"""The shared training loop: loss goes down, runs repeat exactly, NaN stops cleanly, resume matches."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
import torch.nn.functional as F

from netbuilder.errors import NetbuilderError
from netbuilder.train import LoopConfig, RunLog, train
from netbuilder.train.runlog import read_jsonl


class TinyAE(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 2))
        self.dec = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 16), nn.Sigmoid())

    def encode(self, x):
        return self.enc(x)

    def forward(self, x):
        z = self.encode(x)
        return self.dec(z).view_as(x), z


def blobs(n: int = 256) -> np.ndarray:
    rng = np.random.default_rng(0)
    proto = rng.integers(0, 256, size=(2, 1, 4, 4))
    lab = rng.integers(0, 2, size=n)
    noise = rng.integers(-20, 20, size=(n, 1, 4, 4))
    return np.clip(proto[lab] + noise, 0, 255).astype(np.uint8)


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Exactly equal on CPU; on a GPU, equal up to float summation order."""
    return torch.equal(a, b) if a.device.type == "cpu" else torch.allclose(a, b, rtol=0, atol=1e-6)


def _fit(epochs: int, seed: int = 0, device: torch.device = torch.device("cpu"), **kw):
    torch.manual_seed(seed)
    model = TinyAE()
    cfg = LoopConfig(epochs=epochs, batch_size=32, lr=1e-2, seed=seed, progress=False)

    def loss_fn(x, idx):
        x_hat, _ = model(x)
        return {"loss": F.mse_loss(x_hat, x)}

    res = train(model, blobs(), loss_fn, cfg, device=device, **kw)
    return model, res


def _bounded_run(device, **bounds):
    """Train TinyAE on 256 images of batch 32 (8 steps per epoch) with the given LoopConfig bounds."""
    torch.manual_seed(0)
    model = TinyAE()
    loss_fn = lambda x, idx: {"loss": F.mse_loss(model(x)[0], x)}  # noqa: E731
    return train(model, blobs(), loss_fn, LoopConfig(batch_size=32, progress=False, **bounds), device=device)


def test_min_steps_raises_the_epochs_of_small_data_only(device):
    from netbuilder.settings import PRETRAIN

    res = _bounded_run(device, epochs=1, min_steps=20)  # 20 steps need 3 epochs
    assert res.steps == 24 and [r["epoch"] for r in res.history] == [1, 2, 3]
    assert _bounded_run(device, epochs=4, min_steps=20).steps == 32  # 4 epochs already give more than 20 steps
    # an arch's min_steps gives way to an explicitly given epoch count, not to one from the arch
    section = {"epochs": 20, "min_steps": 1000}
    assert PRETRAIN.resolve({}, section)["min_steps"] == 1000
    assert PRETRAIN.resolve({"epochs": 5}, section)["min_steps"] == 0
    assert PRETRAIN.resolve({"epochs": 5, "min_steps": 7}, section)["min_steps"] == 7
    # the pretraining takes max_steps too (the auto rule's images), and a given epoch count lifts it the same way
    assert PRETRAIN.resolve({}, {**section, "max_steps": 1000})["max_steps"] == 1000
    assert PRETRAIN.resolve({"epochs": 5}, {**section, "max_steps": 1000})["max_steps"] == 0


def test_max_steps_lowers_the_epochs_of_large_data_only(device):
    from netbuilder.train.loop import planned_epochs

    res = _bounded_run(device, epochs=10, max_steps=20)  # 20 steps need 3 epochs (24 steps): 10 are cut to 3
    assert res.steps == 24 and [r["epoch"] for r in res.history] == [1, 2, 3]
    assert planned_epochs(LoopConfig(epochs=2, max_steps=20), 8) == 2        # fewer steps than the cap: kept
    assert planned_epochs(LoopConfig(epochs=200, max_steps=3000), 547) == 6  # SCAN on MNIST's 70,000 images
    assert planned_epochs(LoopConfig(epochs=200, max_steps=3000), 15) == 200  # ... and on DIGITS' 1,797
    assert planned_epochs(LoopConfig(epochs=200, max_steps=0), 547) == 200   # 0: off
    # the auto rule's pretraining of images: about 1,000 steps whatever the data's size
    auto = dict(epochs=20, min_steps=1000, max_steps=1000)
    assert planned_epochs(LoopConfig(**auto), 274) == 4                       # MNIST, batch 256: 1,096 steps
    assert planned_epochs(LoopConfig(**auto), 8) == 125                       # DIGITS: 1,000 steps, as before
    assert planned_epochs(LoopConfig(**auto), 6) == 167                       # COIL-20 at 32 px: 1,002, as before


def test_loss_goes_down_and_history_is_logged(tmp_path, device):
    log = RunLog(tmp_path / "logs" / "pretrain")
    _, res = _fit(8, device=device, log=log)
    losses = [r["loss"] for r in res.history]
    assert len(losses) == 8 and res.steps == 8 * 8
    assert losses[-1] < 0.6 * losses[0]
    recs = read_jsonl(log.jsonl_path)
    assert [r["epoch"] for r in recs] == list(range(1, 9))
    assert "loss" in log.log_path.read_text()


def test_same_seed_same_weights_other_seed_differs(device):
    a, _ = _fit(3, seed=1, device=device)
    b, _ = _fit(3, seed=1, device=device)
    c, _ = _fit(3, seed=2, device=device)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert _same(pa, pb)
    assert any(not _same(pa, pc) for pa, pc in zip(a.parameters(), c.parameters()))


def test_nan_loss_stops_with_one_line_error(device):
    model = TinyAE()

    def loss_fn(x, idx):
        return {"loss": model(x)[0].sum() * float("nan")}

    with pytest.raises(NetbuilderError, match=r"epoch 1, batch 1.*lower learning rate"):
        train(model, blobs(), loss_fn, LoopConfig(epochs=1, progress=False), device=device)


def test_resume_from_checkpoint_matches_uninterrupted_run(tmp_path, device):
    ckpt = tmp_path / "ckpt.pt"
    straight, _ = _fit(4, device=device)
    _fit(2, device=device, checkpoint=ckpt)            # "killed" after epoch 2: only its checkpoint survives
    torch.manual_seed(123)               # a different process would start from other RNG state
    resumed = TinyAE()
    cfg = LoopConfig(epochs=4, batch_size=32, lr=1e-2, seed=0, progress=False)

    def loss_fn(x, idx):
        return {"loss": F.mse_loss(resumed(x)[0], x)}

    res = train(resumed, blobs(), loss_fn, cfg, device=device, checkpoint=ckpt, resume=True)
    assert [r["epoch"] for r in res.history] == [1, 2, 3, 4]
    for p1, p2 in zip(straight.parameters(), resumed.parameters()):
        assert _same(p1, p2)


def test_before_step_hook_can_stop_early(device):
    calls = []

    def hook(step):
        calls.append(step)
        return step >= 5

    _, res = _fit(10, device=device, before_step=hook)
    assert res.stopped_early and res.steps == 5 and len(res.history) == 1


def test_encode_all_runs_conv_nets_channels_last_and_restores_their_format():
    # The first conv reads 1 channel, so its weight (32×1×5×5) is contiguous in both formats: the check must look
    # at every conv, or the model stays contiguous (1.4-1.6x slower encoding on CPU).
    import copy

    from netbuilder.train import encode_all
    from netbuilder.train.batches import map_batches

    class ConvEnc(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.enc = nn.Sequential(nn.Conv2d(1, 32, 5, 2, 2), nn.ReLU(), nn.Conv2d(32, 64, 5, 2, 2), nn.ReLU(),
                                     nn.Flatten(), nn.Linear(64 * 7 * 7, 10))

        def encode(self, x):
            return self.enc(x)

    torch.manual_seed(0)
    model = ConvEnc()
    x = np.random.default_rng(0).integers(0, 256, (512, 1, 28, 28), dtype=np.uint8)
    codes = encode_all(model, x, "cpu")
    cl = torch.channels_last
    assert model.enc[2].weight.is_contiguous() and not model.enc[2].weight.is_contiguous(memory_format=cl)
    reference = copy.deepcopy(model).eval().to(memory_format=cl)
    np.testing.assert_array_equal(codes, map_batches(reference.encode, x, torch.device("cpu"), 1024, True))
    model.to(memory_format=cl)  # as the training loop holds it: left as it is
    encode_all(model, x, "cpu")
    assert model.enc[2].weight.is_contiguous(memory_format=cl)
