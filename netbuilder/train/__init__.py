"""Training machinery shared by every stage: one loop, devices and seeds, run logs, batch helpers."""
from .device import resolve_device, seed_everything, seeded
from .loop import LoopConfig, TrainResult, train
from .runlog import RunLog
from .batches import encode_all, reconstruct_all

__all__ = ["LoopConfig", "TrainResult", "train", "RunLog", "resolve_device", "seed_everything", "seeded",
           "encode_all", "reconstruct_all"]
