"""The one training loop every stage uses.

A stage supplies a loss function ``loss_fn(x, idx) -> {"loss": total, other parts...}`` over a float batch ``x``
and the dataset indices ``idx`` of its rows, plus optional hooks; the loop owns batching, the optimizer and
schedule, progress bars, logs, NaN checks and checkpoints. Batches are drawn from a uint8 array and converted
to float one batch at a time, so a dataset is never held as a float copy.
"""
from __future__ import annotations

import contextlib
import math
import signal
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .. import distributed
from ..errors import NetbuilderError
from ..metrics import format_values
from ..settings import MAX_STEPS, MIN_STEPS, TRAINING
from .augment import random_affine
from .batches import BatchSource
from .checkpoint import load_checkpoint, save_checkpoint
from .parallel import parallel_policy
from .runlog import RunLog

LossFn = Callable[[torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]
StepHook = Callable[[int], bool | None]
EpochHook = Callable[[int], dict[str, Any] | None]


_D = TRAINING.defaults()


@dataclass
class LoopConfig:
    """Hyperparameters of one training run (all stages share these); the defaults, ranges and meanings of the
    hyperparameters are declared once in :data:`netbuilder.settings.TRAINING`."""

    epochs: int = _D["epochs"]
    batch_size: int = _D["batch_size"]
    lr: float = _D["lr"]
    optimizer: str = _D["optimizer"]
    momentum: float = _D["momentum"]
    weight_decay: float = _D["weight_decay"]
    schedule: str = _D["schedule"]
    seed: int = 0
    augment: bool = _D["augment"]
    channels_last: bool | None = None  # None = automatic (on for conv nets on CPU)
    progress: bool | None = None       # None = only on a terminal
    checkpoint_every: int = _D["checkpoint_every"]
    drop_last: bool = _D["drop_last"]
    amp: bool = _D["amp"]
    min_steps: int = MIN_STEPS.default  # raise the epochs until they give this many steps (pretraining only)
    max_steps: int = MAX_STEPS.default  # lower the epochs to the fewest that give this many steps (0: off)

    def to_dict(self) -> dict[str, Any]:
        """The config as a plain dict (for manifests)."""
        return asdict(self)


@dataclass
class TrainResult:
    """What a run produced: per-epoch records, the number of steps, and whether a hook stopped it early."""

    history: list[dict[str, Any]] = field(default_factory=list)
    steps: int = 0
    stopped_early: bool = False
    seconds: float = 0.0


def make_optimizer(params: Iterable[nn.Parameter], cfg: LoopConfig) -> torch.optim.Optimizer:
    """Adam (default) or SGD with Nesterov momentum."""
    params = list(params)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.momentum > 0,
                               weight_decay=cfg.weight_decay)
    raise NetbuilderError(f"Invalid value for argument `optimizer`. Expected adam or sgd. Received optimizer={cfg.optimizer!r}.")


def make_scheduler(opt: torch.optim.Optimizer, cfg: LoopConfig, steps_per_epoch: int):
    """Per-step LR schedule: constant, cosine decay to 0, or ×0.1 at 50% and 75% of training."""
    total = max(1, cfg.epochs * steps_per_epoch)
    if cfg.schedule == "none":
        return None
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    if cfg.schedule == "step":
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.1 ** ((s >= 0.5 * total) + (s >= 0.75 * total)))
    raise NetbuilderError(f"Invalid value for argument `schedule`. Expected none, cosine or step. Received schedule={cfg.schedule!r}.")


def wants_channels_last(model: nn.Module, device: torch.device, cfg: LoopConfig) -> bool:
    """Channels-last speeds up conv nets on CPU (measured ~1.9× on the original 50-filter net)."""
    if cfg.channels_last is not None:
        return cfg.channels_last
    return device.type == "cpu" and any(isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) for m in model.modules())


def autocast_context(device: torch.device, enabled: bool):
    """The autocast region of a training step (float16 on CUDA, bfloat16 elsewhere), or a no-op."""
    if not enabled:
        return contextlib.nullcontext()
    dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    return torch.autocast(device_type=device.type, dtype=dtype)


class _StopRequest:
    """Turns SIGTERM into KeyboardInterrupt at the next batch boundary (the last checkpoint written stays)."""

    def __init__(self) -> None:
        self.requested = False
        self._old = None

    def __enter__(self) -> "_StopRequest":
        try:
            self._old = signal.signal(signal.SIGTERM, self._handler)
        except ValueError:  # not in the main thread
            self._old = None
        return self

    def _handler(self, signum, frame) -> None:  # noqa: ANN001
        self.requested = True

    def __exit__(self, *exc) -> None:
        if self._old is not None:
            signal.signal(signal.SIGTERM, self._old)


def epoch_steps(n: int, batch_size: int, drop_last: bool) -> int:
    """Optimisation steps per epoch over ``n`` samples (a batch larger than the data is the whole data)."""
    bs = max(1, min(int(batch_size), n))
    return n // bs if drop_last and n >= bs else math.ceil(n / bs)


def planned_epochs(cfg: LoopConfig, steps_per_epoch: int) -> int:
    """``cfg.epochs``, raised to the fewest epochs that give ``cfg.min_steps`` steps when they give fewer, and
    lowered to the fewest that give ``cfg.max_steps`` (when set) when they give more."""
    per_epoch = max(1, steps_per_epoch)
    epochs = max(cfg.epochs, math.ceil(cfg.min_steps / per_epoch))
    if cfg.max_steps > 0:
        epochs = min(epochs, math.ceil(cfg.max_steps / per_epoch))
    return epochs


def total_epochs(cfg: LoopConfig, n: int) -> int:
    """The epochs :func:`train` runs over ``n`` samples: ``cfg.epochs`` within the bounds of ``cfg.min_steps`` and
    ``cfg.max_steps``."""
    return planned_epochs(cfg, epoch_steps(n, cfg.batch_size, cfg.drop_last))


def probe_interval(epochs: int, every: int | None = None) -> int:
    """Epochs between the ACC probes of a run of ``epochs`` (those it actually trains): ``every``, else about ten
    probes per run."""
    return every if every else max(1, epochs // 10)


def train(model: nn.Module, images: np.ndarray | torch.Tensor, loss_fn: LossFn, cfg: LoopConfig, *,
          device: torch.device, params: Iterable[nn.Parameter] | None = None, log: RunLog | None = None,
          before_step: StepHook | None = None, on_epoch_end: EpochHook | None = None,
          desc: str = "train", checkpoint: str | Path | None = None, resume: bool = False,
          extra_state: Callable[[], dict[str, Any]] | None = None,
          load_extra_state: Callable[[dict[str, Any]], None] | None = None) -> TrainResult:
    """Train ``model`` by minimising ``loss_fn`` over shuffled batches of ``images``.

    ``before_step(step)`` runs before every optimisation step (e.g. to refresh a DEC target) and may return
    True to stop training. ``on_epoch_end(epoch)`` may return metrics to log for that epoch. With
    ``checkpoint`` set, a checkpoint is written after every ``cfg.checkpoint_every``-th completed epoch;
    SIGTERM and Ctrl-C stop at the next batch boundary with KeyboardInterrupt, losing the epoch in progress
    (the checkpoint keeps the last one written). ``resume=True`` continues from it (the epoch order and
    augmentation repeat exactly, because the shuffling generator is re-seeded from ``seed`` and the epoch).

    Under torch.distributed the work is shared as :mod:`netbuilder.train.parallel` describes, so the steps are
    those of a single process. ``cfg.amp`` trains under autocast.
    """
    log = log or RunLog(None)
    n = int(images.shape[0])
    if n == 0:
        raise NetbuilderError("cannot train on an empty dataset")
    bs = max(1, min(cfg.batch_size, n))
    steps_per_epoch = epoch_steps(n, cfg.batch_size, cfg.drop_last)
    epochs = planned_epochs(cfg, steps_per_epoch)
    if epochs != cfg.epochs:
        bound = f"fewer than min_steps={cfg.min_steps}" if epochs > cfg.epochs else f"more than max_steps={cfg.max_steps}"
        log.info(f"{desc}: {cfg.epochs} epochs of {steps_per_epoch} steps are {bound}; training {epochs} epochs")
        cfg = replace(cfg, epochs=epochs)
    model.to(device)
    par = parallel_policy(model)
    params = list(params if params is not None else model.parameters())
    cl = wants_channels_last(model, device, cfg)
    if cl:
        model.to(memory_format=torch.channels_last)
    source = BatchSource(images, device, cl)
    opt = make_optimizer(params, cfg)
    sched = make_scheduler(opt, cfg, steps_per_epoch)
    scaler = torch.amp.GradScaler("cuda") if cfg.amp and device.type == "cuda" else None

    result = TrainResult()
    start_epoch = 0
    if resume and checkpoint is not None and Path(checkpoint).exists():
        state = load_checkpoint(checkpoint, model, opt, sched)
        start_epoch = state["epoch"]
        result.steps = state["steps"]
        result.history = state.get("history", [])
        if load_extra_state is not None:
            load_extra_state(state.get("extra", {}))
        log.info(f"resumed {desc} from {checkpoint} at epoch {start_epoch}")
    par.start(model, params)

    def _save(epoch: int) -> None:
        if checkpoint is not None:
            save_checkpoint(checkpoint, model, opt, sched, epoch=epoch, steps=result.steps, history=result.history,
                            extra=extra_state() if extra_state else {})

    t0 = time.perf_counter()
    model.train()
    with _StopRequest() as stop:
        for epoch in range(start_epoch, cfg.epochs):
            gen = torch.Generator().manual_seed(cfg.seed * 100003 + epoch)
            perm = source.order(gen)
            sums: dict[str, float] = {}
            count = 0
            t_epoch = time.perf_counter()
            bar = tqdm(range(steps_per_epoch), desc=f"{desc} {epoch + 1}/{cfg.epochs}", leave=False,
                       disable=((not cfg.progress) if cfg.progress is not None else None) if distributed.is_main()
                       else True, unit="batch")
            try:
                for b in bar:
                    if before_step is not None and before_step(result.steps):
                        result.stopped_early = True
                        break
                    mine = par.shard(perm[b * bs:(b + 1) * bs])
                    if mine is None:
                        continue
                    idx, share = mine
                    idx = source.prepare_index(idx)
                    x = source.batch(idx)
                    if cfg.augment:
                        x = random_affine(x, gen)
                    with autocast_context(device, cfg.amp):
                        parts = loss_fn(x, idx)
                    loss = parts["loss"]
                    if not torch.isfinite(loss):
                        raise NetbuilderError(
                            f"{desc}: loss became {loss.item()} at epoch {epoch + 1}, batch {b + 1}; "
                            f"the last good checkpoint is kept; try a lower learning rate (--lr {cfg.lr / 10:g})")
                    opt.zero_grad(set_to_none=True)
                    (scaler.scale(loss) if scaler is not None else loss).backward()
                    par.after_backward(params, share)
                    if scaler is not None:
                        scaler.step(opt)
                        scaler.update()
                    else:
                        opt.step()
                    par.after_step(model)
                    if sched is not None:
                        sched.step()
                    result.steps += 1
                    k = len(idx)
                    count += k
                    for name, val in parts.items():
                        sums[name] = sums.get(name, 0.0) + float(val.detach()) * k
                    if b % 10 == 0:
                        bar.set_postfix({name: f"{v / count:.4f}" for name, v in sums.items()})
                    if stop.requested:
                        raise KeyboardInterrupt
            except KeyboardInterrupt:
                # The epoch in progress is lost; the checkpoint holds the last complete one.
                log.info(f"{desc}: interrupted during epoch {epoch + 1}; resume with --resume")
                raise
            finally:
                bar.close()
            sums, count = par.epoch_totals(sums, count)
            record: dict[str, Any] = {"epoch": epoch + 1, "step": result.steps}
            record.update({name: v / max(count, 1) for name, v in sums.items()})
            record["lr"] = opt.param_groups[0]["lr"]
            record["seconds"] = round(time.perf_counter() - t_epoch, 3)
            record["images_per_s"] = round(count / max(record["seconds"], 1e-9), 1)
            if on_epoch_end is not None:
                extra = on_epoch_end(epoch + 1)
                if extra:
                    record.update(extra)
            result.history.append(record)
            log.record({"stage": desc, **record})
            log.info(f"{desc} epoch {epoch + 1}/{cfg.epochs} "
                     + format_values({k: v for k, v in record.items() if k != "epoch"}, sep=" "))
            if result.stopped_early:
                break
            if checkpoint is not None and ((epoch + 1) % max(1, cfg.checkpoint_every) == 0):
                _save(epoch + 1)
    source.close()
    if cl:
        model.to(memory_format=torch.contiguous_format)
    result.seconds = time.perf_counter() - t0
    model.eval()
    return result
