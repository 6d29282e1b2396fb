"""Memory-mapped (streamed) image arrays: shuffled chunk order, the same results as in memory, mixed precision."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from netbuilder.arch import build_autoencoder
from netbuilder.train import LoopConfig, train
from netbuilder.train import batches as batches_mod
from netbuilder.train.batches import BatchSource, encode_all, is_streamed

SPEC = {"name": "tiny", "input_shape": [1, 8, 8], "encoder": [{"type": "flatten"}, {"type": "dense", "units": 16, "activation": "relu"},
                                    {"type": "dense", "units": 4}]}


@pytest.fixture
def memmapped(tmp_path):
    rng = np.random.default_rng(0)
    images = (rng.random((1000, 1, 8, 8)) * 255).astype(np.uint8)
    path = tmp_path / "images.npy"
    np.save(path, images)
    return images, np.load(path, mmap_mode="r")


@pytest.fixture
def small_windows(monkeypatch):
    # 64-byte rows: chunks of 50 rows, windows of 200 rows, so 1,000 rows span many of each.
    monkeypatch.setattr(batches_mod, "STREAM_CHUNK_BYTES", 50 * 64)
    monkeypatch.setattr(batches_mod, "STREAM_WINDOW_BYTES", 200 * 64)


def test_streamed_order_is_a_permutation_of_local_windows(memmapped, small_windows):
    _, mm = memmapped
    assert is_streamed(mm)
    src = BatchSource(mm, torch.device("cpu"))
    order = src.order(torch.Generator().manual_seed(0)).numpy()
    assert sorted(order.tolist()) == list(range(1000))
    assert not np.array_equal(order, np.arange(1000))
    # each window of 200 positions draws from 4 chunks of 50 rows only: sequential-ish reads
    for w in range(0, 1000, 200):
        assert len(np.unique(order[w:w + 200] // 50)) == 4
    rows = src.batch(src.prepare_index(torch.tensor([7, 3, 500])))
    assert rows.shape == (3, 1, 8, 8) and float(rows.max()) <= 1.0


def test_streamed_training_and_encoding_match_in_memory(memmapped, small_windows, device):
    images, mm = memmapped
    torch.manual_seed(0)
    model = build_autoencoder(SPEC, input_shape=(1, 8, 8)).to(device)
    codes_mem = encode_all(model, images, device)
    codes_mm = encode_all(model, mm, device)
    np.testing.assert_allclose(codes_mm, codes_mem, rtol=0, atol=1e-6)

    def loss_fn(x, idx):
        return {"loss": torch.nn.functional.mse_loss(model(x)[0], x)}

    result = train(model, mm, loss_fn, LoopConfig(epochs=3, batch_size=100, progress=False), device=device)
    losses = [r["loss"] for r in result.history]
    assert result.steps == 30 and losses[-1] < losses[0]


def test_in_memory_batches_on_the_device_match_cpu(memmapped, device, monkeypatch):
    # On CUDA a small dataset is copied to the GPU once as uint8; a larger one is batched from pinned memory.
    images, _ = memmapped
    idx = torch.tensor([7, 3, 500, 999])
    want = BatchSource(images, torch.device("cpu")).batch(idx)
    src = BatchSource(images, device)
    assert src.data.dtype == torch.uint8 and src.data.device.type == device.type
    got = src.batch(src.prepare_index(idx))
    assert got.device.type == device.type and got.dtype == torch.float32
    torch.testing.assert_close(got.cpu(), want, rtol=0, atol=0)
    monkeypatch.setattr(batches_mod, "GPU_RESIDENT_BYTES", 1000)
    host = BatchSource(images, device)
    assert host.data.device.type == "cpu"
    torch.testing.assert_close(host.batch(idx).cpu(), want, rtol=0, atol=0)


def test_amp_trains_on_the_device(memmapped, device):
    # float16 autocast with loss scaling on CUDA, bfloat16 autocast on CPU; the loss comes back float32.
    images, _ = memmapped
    torch.manual_seed(0)
    model = build_autoencoder(SPEC, input_shape=(1, 8, 8))
    dtypes = []

    def loss_fn(x, idx):
        x_hat, _ = model(x)
        dtypes.append(x_hat.dtype)
        return {"loss": torch.nn.functional.mse_loss(x_hat.float(), x)}

    result = train(model, images, loss_fn, LoopConfig(epochs=3, batch_size=100, amp=True, progress=False),
                   device=device)
    want = torch.float16 if device.type == "cuda" else torch.bfloat16
    assert set(dtypes) == {want}
    losses = [r["loss"] for r in result.history]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert next(model.parameters()).dtype == torch.float32
