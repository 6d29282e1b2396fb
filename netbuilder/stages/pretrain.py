"""Stage 1: train the autoencoder on reconstruction, then save weights, codes and a manifest."""
from __future__ import annotations

import time
from typing import Any

import torch
import torch.nn.functional as F

from ..clustering import kmeans
from ..metrics import clustering_scores, format_values
from ..train import LoopConfig, RunLog, encode_all, seed_everything, train
from ..errors import NetbuilderError, StageError
from ..fileio import remove, write_npy
from .context import PRETRAIN_DEFAULTS, StageContext, prepare, resolve_hparams
from .evaluate import kmeans_probe
from .lock import stage_lock
from .persist import save_weights, write_manifest
from .workspace import MANIFEST

STAGE = "pretrain"


def _bce(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    # Outside autocast and in float32: BCE is unsafe in float16 (autocast refuses it on CUDA).
    with torch.autocast(device_type=x.device.type, enabled=False):
        return F.binary_cross_entropy(x_hat.float().clamp(1e-6, 1 - 1e-6), x.float())


def reconstruction_loss(kind: str):
    """Per-batch mean reconstruction loss: ``mse`` or ``bce`` (the latter expects a sigmoid output)."""
    if kind == "mse":
        return F.mse_loss
    if kind == "bce":
        return _bce
    raise NetbuilderError(f"Invalid value for argument `recon_loss`. Expected mse or bce. Received recon_loss={kind!r}.")


def check_recon_loss(kind: str, spec: dict[str, Any]) -> None:
    """BCE needs outputs in (0, 1): refuse it for an arch whose output activation is not a sigmoid."""
    out = spec.get("output_activation", "sigmoid")
    if kind == "bce" and out != "sigmoid":
        raise NetbuilderError(f"Invalid value for argument `recon_loss`. bce needs a sigmoid output; arch "
                              f"'{spec.get('name')}' has output_activation {out!r}. Use --recon-loss mse.")


def loop_config(hp: dict[str, Any], seed: int, progress: bool | None) -> LoopConfig:
    """The loop settings from resolved hyperparameters (non-finite or non-positive values are one-line errors)."""
    import math

    for key, kind, positive in (("epochs", int, True), ("batch_size", int, True), ("lr", float, True),
                                ("momentum", float, False), ("weight_decay", float, False)):
        value = hp.get(key)
        if value is None and key not in ("epochs", "batch_size", "lr"):
            continue
        try:
            num = kind(value)
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(num) \
                and (num > 0 if positive else num >= 0)
        except (TypeError, ValueError, OverflowError):
            ok = False
        if not ok:
            raise NetbuilderError(f"Invalid value for argument `{key}`. Expected a finite "
                                  f"{'positive' if positive else 'non-negative'} number. Received {key}={value!r}.")
    return LoopConfig(epochs=int(hp["epochs"]), batch_size=int(hp["batch_size"]), lr=float(hp["lr"]),
                      optimizer=hp["optimizer"], momentum=float(hp.get("momentum", 0.9)),
                      weight_decay=float(hp.get("weight_decay", 0.0)), schedule=hp.get("schedule", "none"),
                      seed=seed, augment=bool(hp.get("augment", False)), progress=progress,
                      amp=bool(hp.get("amp", False)))


def eval_interval(epochs: int, every: int | None) -> int:
    """Evaluate about ten times per run unless told otherwise."""
    return every if every else max(1, epochs // 10)


def run_pretrain(ctx: StageContext, *, seed: int = 0, progress: bool | None = None, resume: bool = False,
                 eval_every: int | None = None, echo: bool = True, **overrides: Any) -> dict[str, Any]:
    """Pretrain ``ctx``'s autoencoder; returns the manifest written to ``saved_params/.../pretrain/``.

    Holds ``<stage dir>/.lock`` while it runs, so two runs cannot write the same stage directory.
    """
    with stage_lock(ctx.ws.stage_dir(STAGE)):
        return _run_pretrain(ctx, seed=seed, progress=progress, resume=resume, eval_every=eval_every, echo=echo,
                             **overrides)


def build_model_checked(ctx: StageContext):
    """``ctx.build_model()`` with build failures as one-line errors (the builder itself refuses absurd sizes,
    before allocating, with an ArchError)."""
    try:
        return ctx.build_model()
    except (MemoryError, OverflowError) as exc:
        raise StageError(f"{ctx.arch_file}: arch '{ctx.arch_name}' is too large to build ({type(exc).__name__})") from None
    except (RuntimeError, TypeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise StageError(f"{ctx.arch_file}: cannot build arch '{ctx.arch_name}' ({first})") from None


def resume_identity(ctx: StageContext, hp: dict[str, Any], seed: int) -> dict[str, Any]:
    """What must not change between an interrupted run and its resumption (kept in the checkpoint)."""
    return {"dataset_fingerprint": ctx.dataset.fingerprint, "arch_spec": ctx.spec,
            "hyperparameters": {k: v for k, v in hp.items() if k != "epochs"}, "seed": seed}


def check_resume_identity(saved: dict[str, Any] | None, expected: dict[str, Any], checkpoint: Any) -> None:
    """Refuse to resume a checkpoint made with another dataset, arch, seed or hyperparameters."""
    if not saved:
        return  # checkpoints written before identities were recorded
    for key, what in (("dataset_fingerprint", "different data"), ("arch_spec", "a different arch"),
                      ("seed", "a different --seed"), ("hyperparameters", "different hyperparameters")):
        if key in saved and saved[key] != expected[key]:
            detail = ""
            if key == "hyperparameters" and isinstance(saved[key], dict):
                diff = sorted(k for k in set(saved[key]) | set(expected[key])
                              if saved[key].get(k) != expected[key].get(k))
                detail = f" ({', '.join(f'{k}: {saved[key].get(k)!r} vs {expected[key].get(k)!r}' for k in diff[:3])})"
            elif key == "seed":
                detail = f" ({saved[key]} vs {expected[key]})"
            raise StageError(f"{checkpoint}: this checkpoint was made with {what}{detail}; "
                             "run with the same options, or without --resume to start over")


def interrupted_message(stage_cmd: str, checkpoint: Any, ctx: StageContext) -> str:
    """The one line printed when a run is stopped by Ctrl-C or SIGTERM."""
    if checkpoint.exists():
        return (f"{stage_cmd} interrupted; completed epochs are saved in {checkpoint}; resume with "
                f"`netbuilder {stage_cmd} -d {ctx.dataset.name} -a {ctx.arch_name} --out {ctx.ws.root} ... --resume`")
    return f"{stage_cmd} interrupted before the first checkpoint; nothing to resume"


def _run_pretrain(ctx: StageContext, *, seed: int, progress: bool | None, resume: bool,
                  eval_every: int | None, echo: bool, **overrides: Any) -> dict[str, Any]:
    hp = resolve_hparams(overrides, ctx.spec.get("training"), PRETRAIN_DEFAULTS)
    check_recon_loss(hp["recon_loss"], ctx.spec)
    seed_everything(seed)
    model = build_model_checked(ctx).to(ctx.device)
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

    checkpoint = out_dir / "checkpoint.pt"
    identity = resume_identity(ctx, hp, seed)
    t0 = time.perf_counter()
    try:
        result = train(model, ctx.dataset.images, loss_fn, cfg, device=ctx.device, log=log, desc=STAGE,
                       on_epoch_end=on_epoch_end, checkpoint=checkpoint, resume=resume,
                       extra_state=lambda: {"identity": identity},
                       load_extra_state=lambda extra: check_resume_identity(extra.get("identity"), identity,
                                                                            checkpoint))
    except KeyboardInterrupt:
        log.info(interrupted_message(STAGE, checkpoint, ctx))
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
             split: str = "all", image_size: int | None = None, out: str = ".", device: str = "auto",
             seed: int = 0, progress: bool | None = None, resume: bool = False, eval_every: int | None = None,
             echo: bool = True, threads: int | None = None, **overrides: Any) -> dict[str, Any]:
    """Python API: ``pretrain("DIGITS", 0, epochs=30)``; options as on the command line."""
    ctx = prepare(dataset, arch, archs=archs, data_dir=data_dir, split=split, image_size=image_size, out=out,
                  device=device, progress=progress, threads=threads)
    return run_pretrain(ctx, seed=seed, progress=progress, resume=resume, eval_every=eval_every, echo=echo, **overrides)
