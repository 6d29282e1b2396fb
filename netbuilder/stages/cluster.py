"""Stage 2: refine the pretrained encoder for clustering with a registered objective (see
:mod:`netbuilder.core.objectives`), then save codes, centroids, assignments and a manifest."""
from __future__ import annotations

import io
from typing import Any

import numpy as np
import torch

from ..core.clustering import fit_clustering
from ..core.kselect import KSelection, select_k
from ..core.objectives import cluster_settings, objective_class, stage_name
from ..rules import check_final_step
from ..errors import NetbuilderError, StageError
from ..fileio import remove, write_npy, write_text
from ..metrics import clustering_scores, format_values
from ..train import RunLog, encode_all, seed_everything
from .context import StageContext, prepare
from .lock import stage_lock
from .persist import load_into, save_weights, load_weights, write_manifest
from .workspace import MANIFEST


def default_loss(ctx: StageContext) -> str:
    """The arch's ``training.cluster.loss``, else kld."""
    return ((ctx.spec.get("training") or {}).get("cluster") or {}).get("loss") or cluster_settings()["loss"].default


def pretrain_command(ctx: StageContext) -> str:
    return f"netbuilder pretrain -d {ctx.dataset.name} -a {ctx.arch_name}"


def load_pretrained(ctx: StageContext, force: bool = False):
    """The pretrained model of ``ctx``; refuses a pretrain of another arch or dataset unless ``force``."""
    manifest = ctx.ws.manifest("pretrain")
    if manifest is None:
        raise StageError(f"no pretrained model for {ctx.dataset.name} / {ctx.arch_name} under "
                         f"{ctx.ws.stage_dir('pretrain')}; run `{pretrain_command(ctx)}` first")
    if not force:
        if manifest["dataset"]["fingerprint"] != ctx.dataset.fingerprint:
            raise StageError(f"{ctx.ws.stage_dir('pretrain')}: pretrained on different data (fingerprint "
                             f"{manifest['dataset']['fingerprint'][:12]} vs {ctx.dataset.fingerprint[:12]}); "
                             f"rerun `{pretrain_command(ctx)}` or pass --force")
        if manifest["arch"]["spec"] != ctx.spec:
            raise StageError(f"{ctx.ws.stage_dir('pretrain')}: pretrained with a different version of arch "
                             f"'{ctx.arch_name}'; rerun `{pretrain_command(ctx)}` or pass --force")
    model = ctx.build_model()
    path = ctx.ws.stage_dir("pretrain") / manifest["files"]["weights"]
    load_into(model, load_weights(path), path)
    return model.to(ctx.device), manifest


def assignments_csv(pred: np.ndarray, confidence: np.ndarray, labels: np.ndarray | None) -> str:
    """index,cluster,confidence[,label] rows."""
    buf = io.StringIO()
    buf.write("index,cluster,confidence" + (",label" if labels is not None else "") + "\n")
    for i in range(len(pred)):
        row = f"{i},{pred[i]},{confidence[i]:.5f}"
        if labels is not None:
            row += f",{labels[i]}"
        buf.write(row + "\n")
    return buf.getvalue()


def choose_clusters(ctx: StageContext, model: Any, hp: dict[str, Any], log: RunLog) -> KSelection:
    """``--clusters auto``: choose k from the pretrained codes, log the curve and plot it to
    ``plots/<DATASET>/<arch>/clusters-auto.png``."""
    from .. import charts

    codes = encode_all(model, ctx.dataset.images, ctx.device)
    sel = select_k(codes, k_max=int(hp["auto_k_max"]), n_neighbors=int(hp["auto_neighbors"]))
    for line in sel.table().splitlines():
        log.info(line)
    path = charts.cluster_count_curve(sel.ks, sel.gaps, sel.eigenvalues, sel.k, ctx.ws.plots_dir / "clusters-auto.png",
                                     title=f"{ctx.dataset.name} / {ctx.arch_name}: number of clusters")
    log.info(f"clusters auto: k={sel.k} (plot: {path})")
    return sel


def run_cluster(ctx: StageContext, loss: str = "kld", *, seed: int = 0, progress: bool | None = None,
                resume: bool = False, force: bool = False, echo: bool = True, clusters: int | str | None = None,
                **overrides: Any) -> dict[str, Any]:
    """Cluster ``ctx``'s pretrained codes with the objective ``loss``; returns the written manifest.

    ``clusters``: the number of clusters, ``"auto"`` (see :mod:`netbuilder.core.kselect`), or None (the arch's,
    then the number of classes).

    Objectives that train write ``checkpoint.pt`` every ``checkpoint_every`` epochs; ``resume=True`` continues
    from it. The stage directory is locked while the stage runs.
    """
    objective_class(loss)
    check_final_step(loss, overrides)
    if isinstance(clusters, str) and clusters != "auto":
        raise NetbuilderError(f"Invalid value for argument `clusters`. Expected an integer >= 2 or 'auto'. "
                              f"Received clusters={clusters!r}.")
    with stage_lock(ctx.ws.stage_dir(stage_name(loss))):
        return _run_cluster(ctx, loss, seed=seed, progress=progress, resume=resume, force=force, echo=echo,
                            clusters=clusters, **overrides)


def _run_cluster(ctx: StageContext, loss: str, *, seed: int, progress: bool | None, resume: bool, force: bool,
                 echo: bool, clusters: int | str | None, **overrides: Any) -> dict[str, Any]:
    model, pre_manifest = load_pretrained(ctx, force=force)
    section = (ctx.spec.get("training") or {}).get("cluster")
    hp = cluster_settings(loss).resolve({**overrides, "loss": loss}, section)
    recon_loss = pre_manifest["hyperparameters"].get("recon_loss", "mse")
    hp["recon_loss"] = recon_loss
    alpha = float((ctx.spec.get("clustering") or {}).get("alpha", 1.0))
    stage = stage_name(loss)
    out_dir = ctx.ws.stage_dir(stage)
    log = RunLog(ctx.ws.log_stem(stage), fresh=not resume, echo=echo)
    auto = clusters == "auto"
    k = "auto" if auto else (clusters or ctx.n_clusters)
    log.info(f"cluster {ctx.dataset.name} arch '{ctx.arch_name}' loss={loss} k={k} on {ctx.device}; "
             + ", ".join(f"{a}={b}" for a, b in hp.items()) + f", seed={seed}")
    selection = choose_clusters(ctx, model, hp, log) if auto else None
    k = selection.k if selection else k
    seed_everything(seed)
    labels = ctx.dataset.labels
    checkpoint = out_dir / "checkpoint.pt"
    identity = {**ctx.resume_identity(hp, seed), "n_clusters": k, "alpha": alpha,
                "pretrain_created": pre_manifest.get("created")}
    objective = objective_class(loss)(hp, k, alpha=alpha, device=ctx.device, log=log.info)
    try:
        res = fit_clustering(model, ctx.dataset.images, objective, hp, seed=seed, device=ctx.device,
                             recon_loss=recon_loss, labels=labels, progress=progress, log=log, desc=stage,
                             checkpoint=checkpoint, resume=resume, identity=identity)
    except KeyboardInterrupt:
        log.info(ctx.interrupted_message(f"cluster --loss {loss}", checkpoint))
        raise
    metrics = clustering_scores(labels, res.pred)

    # A previous complete run's manifest no longer describes the files about to be replaced.
    remove(out_dir / MANIFEST)
    tensors = dict(model.state_dict())
    tensors["clustering.centroids"] = torch.from_numpy(np.ascontiguousarray(res.centroids))
    save_weights(out_dir / "weights.safetensors", tensors)
    write_npy(out_dir / "codes.npy", res.codes)
    write_npy(out_dir / "centroids.npy", res.centroids.astype(np.float32))
    write_text(out_dir / "assignments.csv", assignments_csv(res.pred, res.q.max(axis=1), labels))
    manifest = write_manifest(out_dir, {
        "stage": stage, "loss": loss, "n_clusters": k, "alpha": alpha,
        "clusters_auto": selection.record() if selection else None,
        "dataset": ctx.dataset_record(), "arch": ctx.arch_record(),
        "pretrain": {"dir": str(ctx.ws.stage_dir("pretrain")), "created": pre_manifest.get("created"),
                     "metrics": pre_manifest.get("metrics")},
        "hyperparameters": hp, "seed": seed, "device": str(ctx.device), "steps": res.steps,
        "epochs_run": len(res.history), "init_metrics": clustering_scores(labels, res.init_pred),
        "metrics": metrics, "objective": res.report, "timings": {"train_s": round(res.seconds, 2)},
        "files": {"weights": "weights.safetensors", "codes": "codes.npy", "centroids": "centroids.npy",
                  "assignments": "assignments.csv"},
        "logs": {"log": str(log.log_path), "jsonl": str(log.jsonl_path)},
    })
    # The checkpoint only serves resuming an unfinished run; the complete stage no longer needs it.
    remove(checkpoint)
    log.info(f"{stage} done: " + format_values(metrics) + f" ({res.seconds:.1f}s)")
    return manifest


def cluster(dataset: str, arch: str | int = 0, loss: str | None = None, *, archs: str | None = None,
            data_dir: str | None = None, split: str = "all", image_size: int | None = None,
            window: int | None = None, stride: int | None = None, label_column: str | None = None, out: str = ".",
            device: str = "auto", seed: int = 0, progress: bool | None = None, force: bool = False,
            resume: bool = False, echo: bool = True, clusters: int | str | None = None, threads: int | None = None,
            **overrides: Any) -> dict[str, Any]:
    """Python API: ``cluster("DIGITS", 0, loss="kld")``; options as on the command line."""
    ctx = prepare(dataset, arch, archs=archs, data_dir=data_dir, split=split, image_size=image_size, window=window,
                  stride=stride, label_column=label_column, out=out, device=device, progress=progress,
                  threads=threads)
    loss = loss or default_loss(ctx)
    return run_cluster(ctx, loss, seed=seed, progress=progress, force=force, resume=resume, echo=echo,
                       clusters=clusters, **overrides)
