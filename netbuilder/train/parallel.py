"""How the training loop shares its work between processes: one policy object instead of branches in the loop.

:class:`SingleProcess` does nothing extra. :class:`DataParallel` (under torchrun) splits each batch of the
shared permutation across the ranks, averages gradients with one all-reduce per step, keeps batch-norm buffers
in step with rank 0, and sums the epoch's loss totals over the ranks, so N processes take exactly the steps of
one process on the same batches.
"""
from __future__ import annotations

from typing import Iterable

import torch
from torch import nn

from .. import distributed


class SingleProcess:
    """The policy of a run in one process: every hook is a no-op."""

    def start(self, model: nn.Module, params: list[nn.Parameter]) -> None:
        """Before the first step (after a resume)."""

    def shard(self, idx: torch.Tensor) -> tuple[torch.Tensor, float] | None:
        """This process's rows of a batch and their share of it; None skips the batch."""
        return idx, 1.0

    def after_backward(self, params: Iterable[nn.Parameter], share: float) -> None:
        """Between ``backward`` and the optimizer step."""

    def after_step(self, model: nn.Module) -> None:
        """After the optimizer step."""

    def epoch_totals(self, sums: dict[str, float], count: int) -> tuple[dict[str, float], int]:
        """The epoch's loss sums and row count over every process."""
        return sums, count


class DataParallel(SingleProcess):
    """The policy under torch.distributed (see the module docstring)."""

    def __init__(self, model: nn.Module) -> None:
        self.rank, self.world = distributed.rank(), distributed.world_size()
        self.has_buffers = any(True for _ in model.buffers())

    def start(self, model: nn.Module, params: list[nn.Parameter]) -> None:
        # Every rank starts from rank 0's weights (the same seed gives the same ones; this makes it certain).
        distributed.broadcast_module(model)
        in_model = {id(p) for p in model.parameters()}
        distributed.broadcast_tensors([p for p in params if id(p) not in in_model])  # e.g. a clustering head

    def shard(self, idx: torch.Tensor) -> tuple[torch.Tensor, float] | None:
        if len(idx) < self.world:
            return None  # a final batch smaller than the number of ranks
        mine = idx[self.rank::self.world]
        return mine, len(mine) / len(idx)

    def after_backward(self, params: Iterable[nn.Parameter], share: float) -> None:
        distributed.average_gradients(params, share)

    def after_step(self, model: nn.Module) -> None:
        if self.has_buffers:
            distributed.broadcast_module(model, buffers_only=True)

    def epoch_totals(self, sums: dict[str, float], count: int) -> tuple[dict[str, float], int]:
        names = sorted(sums)
        totals = torch.tensor([sums[k] for k in names] + [float(count)], dtype=torch.float64)
        distributed.all_reduce_sum_(totals)
        return dict(zip(names, totals[:-1].tolist())), int(totals[-1])


def parallel_policy(model: nn.Module) -> SingleProcess:
    """The policy for this process: data-parallel under torchrun, else single-process."""
    return DataParallel(model) if distributed.active() else SingleProcess()
