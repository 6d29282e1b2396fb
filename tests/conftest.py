"""Test-wide settings: one compute thread (the tests use tiny models, where threads only add overhead).

The device tests (training loop, batches, mixed precision, torchrun, the anomaly estimator) take the ``device``
fixture: ``cpu`` unless ``NETBUILDER_TEST_DEVICE`` names another (``NETBUILDER_TEST_DEVICE=cuda pytest ...``, as
``bench/gpu_check.sh`` does). Asking for CUDA where there is none is an error, not a silent skip.
"""
import os

import pytest
import torch

torch.set_num_threads(1)

TEST_DEVICE = os.environ.get("NETBUILDER_TEST_DEVICE", "").strip() or "cpu"


def pytest_configure(config):
    dev = torch.device(TEST_DEVICE)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise pytest.UsageError(f"NETBUILDER_TEST_DEVICE={TEST_DEVICE} but CUDA is not available")


def pytest_report_header(config):
    return f"netbuilder test device: {TEST_DEVICE} (NETBUILDER_TEST_DEVICE)"


@pytest.fixture(scope="session")
def device() -> torch.device:
    """The device the device tests run on (``NETBUILDER_TEST_DEVICE``, default cpu)."""
    return torch.device(TEST_DEVICE)
