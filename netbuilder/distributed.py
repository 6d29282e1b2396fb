"""Multi-process training on ``torch.distributed`` (started by ``torchrun``); a no-op in a single process.

Under ``torchrun --nproc_per_node N -m netbuilder ...`` every rank runs the same command on the same data:

* each training batch (drawn from one permutation shared by all ranks) is split across the ranks, and the
  gradients are averaged with one ``all_reduce`` per step, weighted by each rank's share of the batch, so that
  N processes take exactly the steps one process would, on the same batches;
* whole-dataset passes (codes for k-means, the DEC target, metrics) are split into N contiguous blocks and
  all-gathered, so every rank sees every code and computes the same centroids;
* only rank 0 writes: :mod:`netbuilder.fileio` skips writes on other ranks, logs and progress bars are
  rank 0's, and stages end with a barrier so the next stage reads complete files.

Backends: gloo for CPU tensors, NCCL for CUDA tensors (``cpu:gloo,cuda:nccl`` when CUDA is present).
Model weights stay identical on every rank because every rank applies the same averaged gradient; buffers
(batch-norm statistics) are broadcast from rank 0 after every step.
"""
from __future__ import annotations

import contextlib
import os
from typing import Iterable, Iterator

import torch
import torch.distributed as dist
from torch import nn


def active() -> bool:
    """Whether this process is one of several ranks of an initialised process group."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if active() else 0


def world_size() -> int:
    """Number of ranks (1 without a process group)."""
    return dist.get_world_size() if active() else 1


def local_rank() -> int:
    """The rank on this machine (``LOCAL_RANK`` from torchrun), which picks the GPU."""
    return int(os.environ.get("LOCAL_RANK", "0")) if active() else 0


def is_main() -> bool:
    """True on rank 0 (and in a single process): the one process that writes files and prints."""
    return rank() == 0


def init_from_env() -> bool:
    """Join the process group torchrun describes in the environment (``WORLD_SIZE`` > 1); idempotent.

    Returns whether this process now runs as one of several ranks.
    """
    if active():
        return True
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or not dist.is_available():
        return False
    if not dist.is_initialized():
        backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend=backend)
    return active()


def shutdown() -> None:
    """Leave the process group (at exit; a no-op in a single process)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    """Wait for every rank (no-op in a single process)."""
    if active():
        dist.barrier()


@contextlib.contextmanager
def main_first() -> Iterator[None]:
    """Run the block on rank 0 first, then on the other ranks (e.g. to build a cache once, then read it)."""
    if not active():
        yield
        return
    if not is_main():
        dist.barrier()
    try:
        yield
    finally:
        if is_main():
            dist.barrier()


def shard_range(n: int) -> tuple[int, int]:
    """This rank's contiguous block ``[start, stop)`` of ``n`` rows (blocks differ in size by at most one)."""
    r, w = rank(), world_size()
    return n * r // w, n * (r + 1) // w


def gather_rows(local: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's ``local`` rows in rank order (blocks may differ in length). CPU in, CPU out."""
    if not active():
        return local
    w = world_size()
    n = torch.tensor([local.shape[0]], dtype=torch.int64)
    sizes = [torch.zeros_like(n) for _ in range(w)]
    dist.all_gather(sizes, n)
    longest = int(max(int(s) for s in sizes))
    padded = torch.zeros((longest,) + tuple(local.shape[1:]), dtype=local.dtype)
    padded[:local.shape[0]] = local
    parts = [torch.empty_like(padded) for _ in range(w)]
    dist.all_gather(parts, padded.contiguous())
    return torch.cat([p[:int(s)] for p, s in zip(parts, sizes)])


def all_reduce_sum_(*tensors: torch.Tensor) -> None:
    """Sum each tensor over the ranks, in place."""
    if not active():
        return
    for t in tensors:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)


def average_gradients(params: Iterable[nn.Parameter], weight: float) -> None:
    """Replace each gradient by ``sum over ranks of weight_r * grad_r`` in one flattened all-reduce.

    With ``weight`` = this rank's share of the global batch, the result is the gradient of the loss over the
    whole batch (for losses that are means over rows), the same as one process computing it.
    """
    if not active():
        return
    params = [p for p in params if p.requires_grad]
    if not params:
        return
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params])
    flat.mul_(weight)
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    offset = 0
    for p in params:
        n = p.numel()
        chunk = flat[offset:offset + n].view(p.shape)
        if p.grad is None:
            p.grad = chunk.clone()
        else:
            p.grad.copy_(chunk)
        offset += n


def broadcast_module(module: nn.Module, buffers_only: bool = False) -> None:
    """Copy rank 0's parameters (unless ``buffers_only``) and buffers to every rank."""
    broadcast_tensors(list(module.buffers()) if buffers_only else list(module.parameters()) + list(module.buffers()))


def broadcast_tensors(tensors: Iterable[torch.Tensor]) -> None:
    """Copy rank 0's values of ``tensors`` to every rank, in place."""
    if not active():
        return
    with torch.no_grad():
        for t in tensors:
            if t.is_contiguous():
                dist.broadcast(t.data, src=0)
            else:  # e.g. channels-last conv weights: collectives want dense tensors
                tmp = t.detach().contiguous()
                dist.broadcast(tmp, src=0)
                t.data.copy_(tmp)
