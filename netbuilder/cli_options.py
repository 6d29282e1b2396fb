"""Command-line options shared by the stage, anomaly and visualize commands (one definition each)."""
from __future__ import annotations

from typing import Callable

import click

COMMON_OPTIONS = [
    click.option("-d", "--dataset", required=True,
                 help="Dataset: MNIST, COIL20, DIGITS, FASHION-MNIST, USPS or folder:PATH (case-insensitive)."),
    click.option("-a", "--arch", default="0", show_default=True,
                 help="Architecture index or name in the archs file."),
    click.option("--archs", "archs", type=click.Path(dir_okay=False), default=None,
                 help="Archs JSON file [default: archs/<dataset>.json]."),
    click.option("--out", default=".", show_default=True, type=click.Path(file_okay=False),
                 help="Root for saved_params/, logs/ and plots/."),
]

TRAIN_OPTIONS = [
    click.option("--epochs", type=click.IntRange(min=1), default=None, help="Epochs [default: arch, then built-in]."),
    click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Batch size [default: arch, then 256]."),
    click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None, help="Learning rate."),
    click.option("--optimizer", type=click.Choice(["adam", "sgd"]), default=None, help="Adam, or SGD with Nesterov momentum."),
    click.option("--schedule", type=click.Choice(["none", "cosine", "step"]), default=None, help="Learning-rate schedule."),
    click.option("--augment/--no-augment", default=None, help="Random shifts/rotations of training batches."),
    click.option("--seed", type=int, default=0, show_default=True, help="Random seed (runs repeat exactly on CPU)."),
    click.option("--device", default="auto", show_default=True,
                 help="auto, cpu, cuda, cuda:N or mps (under torchrun, cuda means each rank's own GPU)."),
    click.option("--amp/--no-amp", default=None,
                 help="Mixed precision: float16 with loss scaling on CUDA (bfloat16 autocast on CPU, rarely faster)."),
    click.option("--progress/--no-progress", default=None, help="Progress bars [default: on a terminal only]."),
    click.option("--threads", type=click.IntRange(min=1), default=None,
                 help="CPU threads for torch [default: torch's choice, usually one per core]."),
]


def set_threads(threads: int | None) -> None:
    """Set torch's CPU thread count (see :func:`netbuilder.stages.context.apply_threads`)."""
    from .stages.context import apply_threads

    apply_threads(threads)


def apply_options(options: list[Callable]) -> Callable:
    """Decorate a click command with ``options`` in order."""
    def deco(f: Callable) -> Callable:
        for opt in reversed(options):
            f = opt(f)
        return f
    return deco


def arch_key(arch: str) -> str | int:
    """``-a`` value: an index when it is all digits, else a name."""
    return int(arch) if arch.isdigit() else arch
