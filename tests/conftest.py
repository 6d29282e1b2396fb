"""Test-wide settings: one compute thread (the tests use tiny models, where threads only add overhead)."""
import torch

torch.set_num_threads(1)
