"""Stage 1: train the autoencoder on reconstruction, then save weights, codes and a manifest."""
from __future__ import annotations

import time
from typing import Any

import torch
import torch.nn.functional as F

from ..clustering import kmeans
from ..metrics import clustering_scores
from ..train import LoopConfig, RunLog, encode_all, seed_everything, train
from ..fileio import write_npy
from .context import PRETRAIN_DEFAULTS, StageContext, prepare, resolve_hparams
from .evaluate import kmeans_probe
from .persist import save_weights, write_manifest

STAGE = "pretrain"


def reconstruction_loss(kind: str):
    """Per-batch mean reconstruction loss: ``mse`` or ``bce`` (the latter expects a sigmoid output)."""
    if kind == "mse":
        return F.mse_loss
    if kind == "bce":
        return lambda x_hat, x: F.binary_cross_entropy(x_hat.clamp(1e-6, 1 - 1e-6), x)
    from ..errors import NetbuilderError
    raise NetbuilderError(f"Invalid value for argument `recon_loss`. Expected mse or bce. Received recon_loss={kind!r}.")


def loop_config(hp: dict[str, Any], seed: int, progress: bool | None) -> LoopConfig:
    """The loop settings from resolved hyperparameters."""
    return LoopConfig(epochs=int(hp["epochs"]), batch_size=int(hp["batch_size"]), lr=float(hp["lr"]),
                      optimizer=hp["optimizer"], momentum=float(hp.get("momentum", 0.9)),
                      weight_decay=float(hp.get("weight_decay", 0.0)), schedule=hp.get("schedule", "none"),
                      seed=seed, augment=bool(hp.get("augment", False)), progress=progress)


def eval_interval(epochs: int, every: int | None) -> int:
    """Evaluate about ten times per run unless told otherwise."""
    return every if every else max(1, epochs // 10)


def run_pretrain(ctx: StageContext, *, seed: int = 0, progress: bool | None = None, resume: bool = False,
                 eval_every: int | None = None, echo: bool = True, **overrides: Any) -> dict[str, Any]:
    """Pretrain ``ctx``'s autoencoder; returns the manifest written to ``saved_params/.../pretrain/``."""
    hp = resolve_hparams(overrides, ctx.spec.get("training"), PRETRAIN_DEFAULTS)
    seed_everything(seed)
    model = ctx.build_model().to(ctx.device)
    out_dir = ctx.ws.stage_dir(STAGE)
    log = RunLog(ctx.ws.log_stem(STAGE), fresh=not resume, echo=echo)
    log.info(f"pretrain {ctx.dataset.name} ({len(ctx.dataset)} images) arch {ctx.arch_index} '{ctx.arch_name}' "
             f"on {ctx.device}; " + ", ".join(f"{k}={v}" for k, v in hp.items()) + f", seed={seed}")
    rec = reconstruction_loss(hp["recon_loss"])
    labels = ctx.dataset.labels
    k = ctx.n_clusters if labels is not None or (ctx.spec.get("clustering") or {}).get("n_clusters") else None
    probe = kmeans_probe(model, ctx.dataset.images, labels, k, ctx.device, seed=seed) if (labels is not None and k) else None
    every = eval_interval(int(hp["epochs"]), eval_every)
    cfg = loop_config(hp, seed, progress)

    def loss_fn(x: torch.Tensor, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        x_hat, _ = model(x)
        loss = rec(x_hat, x)
        return {"loss": loss}

    def on_epoch_end(epoch: int) -> dict[str, Any] | None:
        if probe is not None and (epoch % every == 0 or epoch == cfg.epochs):
            return probe()
        return None

    t0 = time.perf_counter()
    result = train(model, ctx.dataset.images, loss_fn, cfg, device=ctx.device, log=log, desc=STAGE,
                   on_epoch_end=on_epoch_end, checkpoint=out_dir / "checkpoint.pt", resume=resume)
    train_s = time.perf_counter() - t0

    t1 = time.perf_counter()
    codes = encode_all(model, ctx.dataset.images, ctx.device)
    metrics: dict[str, Any] = {"recon_loss": result.history[-1]["loss"] if result.history else None}
    if k:
        pred, _ = kmeans(codes, k, n_init=10, seed=seed)
        metrics.update(clustering_scores(labels, pred))
    eval_s = time.perf_counter() - t1

    save_weights(out_dir / "weights.safetensors", model.state_dict())
    write_npy(out_dir / "codes.npy", codes)
    manifest = write_manifest(out_dir, {
        "stage": STAGE, "dataset": ctx.dataset_record(), "arch": ctx.arch_record(),
        "hyperparameters": hp, "seed": seed, "device": str(ctx.device), "steps": result.steps,
        "metrics": metrics,
        "timings": {"train_s": round(train_s, 2), "eval_s": round(eval_s, 2),
                    "images_per_s": round(len(ctx.dataset) * len(result.history) / max(train_s, 1e-9), 1)},
        "files": {"weights": "weights.safetensors", "codes": "codes.npy"},
        "logs": {"log": str(log.log_path), "jsonl": str(log.jsonl_path)},
    })
    # The checkpoint only serves resuming an unfinished run; the complete stage no longer needs it.
    (out_dir / "checkpoint.pt").unlink(missing_ok=True)
    log.info("pretrain done: " + ", ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                                           for k, v in metrics.items()) + f" ({train_s:.1f}s training)")
    return manifest


def pretrain(dataset: str, arch: str | int = 0, *, archs: str | None = None, data_dir: str | None = None,
             split: str = "all", image_size: int | None = None, out: str = ".", device: str = "auto",
             seed: int = 0, progress: bool | None = None, resume: bool = False, eval_every: int | None = None,
             echo: bool = True, **overrides: Any) -> dict[str, Any]:
    """Python API: ``pretrain("DIGITS", 0, epochs=30)``; options as on the command line."""
    ctx = prepare(dataset, arch, archs=archs, data_dir=data_dir, split=split, image_size=image_size, out=out,
                  device=device, progress=progress)
    return run_pretrain(ctx, seed=seed, progress=progress, resume=resume, eval_every=eval_every, echo=echo, **overrides)
