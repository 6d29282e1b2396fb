"""Stage 1: train the autoencoder on reconstruction, then save weights, codes and a manifest."""
from __future__ import annotations

import time
from typing import Any

from ..clustering import kmeans
from ..core.autoencoder import build_model, fit_autoencoder, loop_config
from ..rules import check_recon_loss
from ..fileio import remove, write_npy
from ..metrics import clustering_scores, format_values
from ..settings import PRETRAIN
from ..train import RunLog, encode_all, seed_everything
from ..train.loop import probe_interval, total_epochs
from .context import StageContext, prepare
from .evaluate import kmeans_probe
from .lock import stage_lock
from .persist import save_weights, write_manifest
from .workspace import MANIFEST

STAGE = "pretrain"


def run_pretrain(ctx: StageContext, *, seed: int = 0, progress: bool | None = None, resume: bool = False,
                 eval_every: int | None = None, echo: bool = True, **overrides: Any) -> dict[str, Any]:
    """Pretrain ``ctx``'s autoencoder; returns the manifest written to ``saved_params/.../pretrain/``.

    Holds ``<stage dir>/.lock`` while it runs, so two runs cannot write the same stage directory.
    """
    with stage_lock(ctx.ws.stage_dir(STAGE)):
        return _run_pretrain(ctx, seed=seed, progress=progress, resume=resume, eval_every=eval_every, echo=echo,
                             **overrides)


def _run_pretrain(ctx: StageContext, *, seed: int, progress: bool | None, resume: bool,
                  eval_every: int | None, echo: bool, **overrides: Any) -> dict[str, Any]:
    hp = PRETRAIN.resolve(overrides, ctx.spec.get("training"))
    check_recon_loss(hp["recon_loss"], ctx.spec)
    seed_everything(seed)
    model = build_model(ctx.spec, tuple(ctx.dataset.shape), str(ctx.arch_file)).to(ctx.device)
    out_dir = ctx.ws.stage_dir(STAGE)
    log = RunLog(ctx.ws.log_stem(STAGE), fresh=not resume, echo=echo)
    log.info(f"pretrain {ctx.dataset.name} ({len(ctx.dataset)} images) arch {ctx.arch_index} '{ctx.arch_name}' "
             f"on {ctx.device}; " + ", ".join(f"{k}={v}" for k, v in hp.items()) + f", seed={seed}")
    labels = ctx.dataset.labels
    k = ctx.n_clusters if labels is not None or (ctx.spec.get("clustering") or {}).get("n_clusters") else None
    probe = kmeans_probe(model, ctx.dataset.images, labels, k, ctx.device, seed=seed) if (labels is not None and k) else None
    epochs = total_epochs(loop_config(hp, seed, progress), len(ctx.dataset))  # min_steps may raise hp["epochs"]
    every = probe_interval(epochs, eval_every)

    def on_epoch_end(epoch: int) -> dict[str, Any] | None:
        if probe is not None and (epoch % every == 0 or epoch == epochs):
            return probe()
        return None

    checkpoint = out_dir / "checkpoint.pt"
    t0 = time.perf_counter()
    try:
        result = fit_autoencoder(model, ctx.dataset.images, hp, seed=seed, device=ctx.device, progress=progress,
                                 log=log, desc=STAGE, on_epoch_end=on_epoch_end, checkpoint=checkpoint,
                                 resume=resume, identity=ctx.resume_identity(hp, seed))
    except KeyboardInterrupt:
        log.info(ctx.interrupted_message(STAGE, checkpoint))
        raise
    train_s = time.perf_counter() - t0

    t1 = time.perf_counter()
    codes = encode_all(model, ctx.dataset.images, ctx.device)
    metrics: dict[str, Any] = {"recon_loss": result.history[-1]["loss"] if result.history else None}
    if k:
        pred, _ = kmeans(codes, k, n_init=10, seed=seed)
        metrics.update(clustering_scores(labels, pred))
    eval_s = time.perf_counter() - t1

    # A previous complete run's manifest no longer describes the files about to be replaced.
    remove(out_dir / MANIFEST)
    save_weights(out_dir / "weights.safetensors", model.state_dict())
    write_npy(out_dir / "codes.npy", codes)
    manifest = write_manifest(out_dir, {
        "stage": STAGE, "dataset": ctx.dataset_record(), "arch": ctx.arch_record(),
        "hyperparameters": hp, "seed": seed, "device": str(ctx.device), "steps": result.steps,
        "epochs_run": len(result.history),
        "metrics": metrics,
        "timings": {"train_s": round(train_s, 2), "eval_s": round(eval_s, 2),
                    "images_per_s": round(len(ctx.dataset) * len(result.history) / max(train_s, 1e-9), 1)},
        "files": {"weights": "weights.safetensors", "codes": "codes.npy"},
        "logs": {"log": str(log.log_path), "jsonl": str(log.jsonl_path)},
    })
    # The checkpoint only serves resuming an unfinished run; the complete stage no longer needs it.
    remove(out_dir / "checkpoint.pt")
    log.info("pretrain done: " + format_values(metrics) + f" ({train_s:.1f}s training)")
    return manifest


def pretrain(dataset: str, arch: str | int = 0, *, archs: str | None = None, data_dir: str | None = None,
             split: str = "all", image_size: int | None = None, window: int | None = None,
             stride: int | None = None, label_column: str | None = None, out: str = ".", device: str = "auto",
             seed: int = 0, progress: bool | None = None, resume: bool = False, eval_every: int | None = None,
             echo: bool = True, threads: int | None = None, **overrides: Any) -> dict[str, Any]:
    """Python API: ``pretrain("DIGITS", 0, epochs=30)``; options as on the command line."""
    ctx = prepare(dataset, arch, archs=archs, data_dir=data_dir, split=split, image_size=image_size, window=window,
                  stride=stride, label_column=label_column, out=out, device=device, progress=progress,
                  threads=threads)
    return run_pretrain(ctx, seed=seed, progress=progress, resume=resume, eval_every=eval_every, echo=echo, **overrides)
