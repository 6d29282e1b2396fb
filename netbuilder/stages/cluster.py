"""Stage 2: refine the pretrained encoder for clustering (DEC/IDEC KL loss, k-means loss, or plain k-means)."""
from __future__ import annotations

import io
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .. import distributed
from ..arch import ClusteringLayer
from ..clustering import dec_target, kmeans, manifold_embed, nearest, soft_assign
from ..errors import NetbuilderError, StageError
from ..fileio import remove, write_npy, write_text
from ..metrics import clustering_scores, format_values, rounded_scores
from ..train import RunLog, encode_all, seed_everything, train
from ..train.batches import map_batches
from .context import CLUSTER_DEFAULTS, StageContext, prepare, resolve_hparams
from .lock import stage_lock
from .persist import load_into, load_weights, save_weights, write_manifest
from .pretrain import check_resume_identity, interrupted_message, loop_config, reconstruction_loss, resume_identity
from .workspace import MANIFEST

LOSSES = ("kld", "kmeans", "none")


def stage_name(loss: str) -> str:
    return f"cluster-{loss}"


def default_loss(ctx: StageContext) -> str:
    """The arch's ``training.cluster.loss``, else kld."""
    return ((ctx.spec.get("training") or {}).get("cluster") or {}).get("loss") or CLUSTER_DEFAULTS["loss"]


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


def run_cluster(ctx: StageContext, loss: str = "kld", *, seed: int = 0, progress: bool | None = None,
                resume: bool = False, force: bool = False, echo: bool = True, clusters: int | None = None,
                **overrides: Any) -> dict[str, Any]:
    """Cluster ``ctx``'s pretrained codes with the given loss; returns the written manifest.

    ``kld`` and ``kmeans`` write ``checkpoint.pt`` every epoch (and keep it on Ctrl-C / SIGTERM);
    ``resume=True`` continues from it. The stage directory is locked while the stage runs.
    """
    if loss not in LOSSES:
        raise NetbuilderError(f"Invalid value for argument `loss`. Expected one of {', '.join(LOSSES)}. Received loss={loss!r}.")
    with stage_lock(ctx.ws.stage_dir(stage_name(loss))):
        return _run_cluster(ctx, loss, seed=seed, progress=progress, resume=resume, force=force, echo=echo,
                            clusters=clusters, **overrides)


def _run_cluster(ctx: StageContext, loss: str, *, seed: int, progress: bool | None, resume: bool, force: bool,
                 echo: bool, clusters: int | None, **overrides: Any) -> dict[str, Any]:
    model, pre_manifest = load_pretrained(ctx, force=force)
    section = dict((ctx.spec.get("training") or {}).get("cluster") or {})
    hp = resolve_hparams({**overrides, "loss": loss}, section, CLUSTER_DEFAULTS)
    if loss != "none" and overrides.get("manifold") is None:
        # The arch's manifold step belongs to its default final clustering (--loss none), not to kld/kmeans.
        hp["manifold"] = "none"
    hp["recon_loss"] = pre_manifest["hyperparameters"].get("recon_loss", "mse")
    k = clusters or ctx.n_clusters
    alpha = float((ctx.spec.get("clustering") or {}).get("alpha", 1.0))
    stage = stage_name(loss)
    out_dir = ctx.ws.stage_dir(stage)
    log = RunLog(ctx.ws.log_stem(stage), fresh=not resume, echo=echo)
    log.info(f"cluster {ctx.dataset.name} arch '{ctx.arch_name}' loss={loss} k={k} on {ctx.device}; "
             + ", ".join(f"{a}={b}" for a, b in hp.items()) + f", seed={seed}")
    seed_everything(seed)
    labels = ctx.dataset.labels
    images = ctx.dataset.images

    t0 = time.perf_counter()
    codes0 = encode_all(model, images, ctx.device)
    init_pred, centres = kmeans(codes0, k, n_init=int(hp["n_init"]), seed=seed)
    init_scores = clustering_scores(labels, init_pred)
    log.info("k-means init: " + format_values(init_scores))
    result_history: list[dict[str, Any]] = []
    steps = 0
    head = None
    checkpoint = out_dir / "checkpoint.pt"
    identity = {**resume_identity(ctx, hp, seed), "n_clusters": k, "alpha": alpha,
                "pretrain_created": pre_manifest.get("created")}
    extra_state = load_extra_state = None
    manifold = hp.get("manifold", "none")
    q_manifold = None
    if manifold != "none" and loss != "none":
        raise NetbuilderError(f"--manifold {manifold} is a final clustering step: use it with --loss none")
    if loss == "none":
        centres_out = centres
        if manifold != "none":
            # N2D: k-means on a UMAP embedding of the codes; centroids are reported back in code space.
            t_m = time.perf_counter()
            emb = manifold_embed(codes0, manifold, k, n_neighbors=int(hp["manifold_neighbors"]), seed=seed)
            init_pred, emb_centres = kmeans(emb, k, n_init=int(hp["n_init"]), seed=seed)
            centres_out = np.stack([codes0[init_pred == j].mean(0) if (init_pred == j).any() else centres[j]
                                    for j in range(k)]).astype(np.float32)
            q_manifold = soft_assign(emb, emb_centres, alpha)
            log.info(f"{manifold} embedding ({emb.shape[1]} dims) and k-means in {time.perf_counter() - t_m:.1f}s")
    else:
        rec = reconstruction_loss(hp["recon_loss"])
        cfg = loop_config(hp, seed, progress)
        if loss == "kld":
            head = ClusteringLayer(k, model.code_dim, alpha=alpha, centroids=centres).to(ctx.device)
            state = _DecState(model, head, images, ctx.device, int(hp["update_interval"]), float(hp["tol"]), log)
            gamma = float(hp["gamma"])

            def loss_fn(x: torch.Tensor, idx: torch.Tensor) -> dict[str, torch.Tensor]:
                x_hat, z = model(x)
                q = head(z)
                kl = F.kl_div(q.clamp_min(1e-12).log(), state.p[idx].to(x.device), reduction="batchmean")
                r = rec(x_hat, x)
                return {"loss": r + gamma * kl, "rec": r, "kl": kl}

            before_step = state.before_step
            params = list(model.parameters()) + list(head.parameters())

            def extra_state() -> dict[str, Any]:
                return {"identity": identity, "init_centres": torch.from_numpy(np.ascontiguousarray(centres)),
                        "head": head.state_dict(), **state.state_dict()}

            def load_extra_state(extra: dict[str, Any]) -> None:
                _check_identity(extra, identity, checkpoint, centres)
                head.load_state_dict(extra["head"])
                state.load_state_dict(extra)
        else:  # kmeans
            mu = torch.from_numpy(centres.copy()).to(ctx.device)  # a copy: mu moves, the init must not
            counts = torch.full((k,), 100.0, device=ctx.device)  # prior weight: centroids move slowly at first
            lam = float(hp["lambda"])

            def loss_fn(x: torch.Tensor, idx: torch.Tensor) -> dict[str, torch.Tensor]:
                x_hat, z = model(x)
                with torch.no_grad():
                    assign = torch.cdist(z.detach(), mu).argmin(dim=1)  # this batch's own assignments
                target = mu[assign].clone()
                km = (z - target).pow(2).sum(dim=1).mean()
                r = rec(x_hat, x)
                with torch.no_grad():  # DCN running-mean centroid update, over the whole batch (all ranks)
                    zd = z.detach().float()
                    sums = torch.zeros_like(mu).index_add_(0, assign, zd)
                    n_j = torch.bincount(assign, minlength=k).to(mu.dtype)
                    distributed.all_reduce_sum_(sums, n_j)
                    hit = n_j > 0
                    counts[hit] += n_j[hit]
                    mu[hit] += (sums[hit] - n_j[hit, None] * mu[hit]) / counts[hit, None]
                return {"loss": r + lam * km, "rec": r, "kmeans": km}

            before_step = None
            params = list(model.parameters())

            def extra_state() -> dict[str, Any]:
                return {"identity": identity, "init_centres": torch.from_numpy(np.ascontiguousarray(centres)),
                        "mu": mu.detach().cpu().clone(), "counts": counts.detach().cpu().clone()}

            def load_extra_state(extra: dict[str, Any]) -> None:
                _check_identity(extra, identity, checkpoint, centres)
                mu.copy_(extra["mu"].to(mu.device, mu.dtype))
                counts.copy_(extra["counts"].to(counts.device, counts.dtype))

        probe_every = max(1, cfg.epochs // 10)

        def on_epoch_end(epoch: int) -> dict[str, Any] | None:
            if labels is None or (epoch % probe_every and epoch != cfg.epochs):
                return None
            pred = _predict(model, head, mu if loss == "kmeans" else None, images, ctx.device)
            return rounded_scores(labels, pred)

        try:
            res = train(model, images, loss_fn, cfg, device=ctx.device, params=params, log=log, desc=stage,
                        before_step=before_step, on_epoch_end=on_epoch_end, checkpoint=checkpoint, resume=resume,
                        extra_state=extra_state, load_extra_state=load_extra_state)
        except KeyboardInterrupt:
            log.info(interrupted_message(f"cluster --loss {loss}", checkpoint, ctx))
            raise
        result_history, steps = res.history, res.steps
        centres_out = head.centroids.detach().cpu().numpy() if head is not None else mu.cpu().numpy()
    train_s = time.perf_counter() - t0

    codes = encode_all(model, images, ctx.device)
    if head is not None:
        q = map_batches(lambda x: head(model.encode(x)), images, ctx.device)
        pred = q.argmax(1).astype(np.int64)
    elif loss == "none":
        pred = init_pred
        q = q_manifold if q_manifold is not None else soft_assign(codes, centres_out, alpha)
    else:
        pred = nearest(codes, centres_out)
        q = soft_assign(codes, centres_out, alpha)
    confidence = q.max(axis=1)
    metrics = clustering_scores(labels, pred)

    # A previous complete run's manifest no longer describes the files about to be replaced.
    remove(out_dir / MANIFEST)
    tensors = dict(model.state_dict())
    tensors["clustering.centroids"] = torch.from_numpy(np.ascontiguousarray(centres_out))
    save_weights(out_dir / "weights.safetensors", tensors)
    write_npy(out_dir / "codes.npy", codes)
    write_npy(out_dir / "centroids.npy", centres_out.astype(np.float32))
    write_text(out_dir / "assignments.csv", assignments_csv(pred, confidence, labels))
    manifest = write_manifest(out_dir, {
        "stage": stage, "loss": loss, "n_clusters": k, "alpha": alpha,
        "dataset": ctx.dataset_record(), "arch": ctx.arch_record(),
        "pretrain": {"dir": str(ctx.ws.stage_dir("pretrain")), "created": pre_manifest.get("created"),
                     "metrics": pre_manifest.get("metrics")},
        "hyperparameters": hp, "seed": seed, "device": str(ctx.device), "steps": steps,
        "epochs_run": len(result_history), "init_metrics": init_scores, "metrics": metrics,
        "timings": {"train_s": round(train_s, 2)},
        "files": {"weights": "weights.safetensors", "codes": "codes.npy", "centroids": "centroids.npy",
                  "assignments": "assignments.csv"},
        "logs": {"log": str(log.log_path), "jsonl": str(log.jsonl_path)},
    })
    # The checkpoint only serves resuming an unfinished run; the complete stage no longer needs it.
    remove(checkpoint)
    log.info(f"{stage} done: " + format_values(metrics) + f" ({train_s:.1f}s)")
    return manifest


def _check_identity(extra: dict[str, Any], identity: dict[str, Any], checkpoint, centres: np.ndarray) -> None:
    """Refuse a checkpoint of another run; the k-means initialisation must be the one the checkpoint started from."""
    check_resume_identity(extra.get("identity"), identity, checkpoint)
    saved = extra.get("init_centres")
    if saved is not None and (tuple(saved.shape) != centres.shape
                              or not np.array_equal(saved.numpy(), centres.astype(saved.numpy().dtype))):
        raise StageError(f"{checkpoint}: the k-means initialisation differs from the one this checkpoint started "
                         "from (was the pretrain stage rerun?); run without --resume to start over")


def _predict(model, head, mu, images, device) -> np.ndarray:
    if head is not None:
        return map_batches(lambda x: head(model.encode(x)).argmax(1), images, device).astype(np.int64)
    codes = encode_all(model, images, device)
    return nearest(codes, mu.cpu().numpy())


class _DecState:
    """The DEC target distribution P, recomputed on the whole dataset every ``interval`` steps."""

    def __init__(self, model, head, images, device, interval: int, tol: float, log: RunLog) -> None:
        self.model, self.head, self.images, self.device = model, head, images, device
        self.interval, self.tol, self.log = max(1, interval), tol, log
        self.p: torch.Tensor = torch.empty(0)
        self.last_pred: np.ndarray | None = None

    def before_step(self, step: int) -> bool:
        if step % self.interval:
            return False
        self.model.eval()
        q = torch.from_numpy(map_batches(lambda x: self.head(self.model.encode(x)), self.images, self.device))
        self.model.train()
        self.p = dec_target(q)
        pred = q.argmax(1).numpy()
        stop = False
        if self.last_pred is not None:
            changed = float((pred != self.last_pred).mean())
            self.log.info(f"step {step}: target updated, {changed:.4%} of assignments changed")
            stop = changed < self.tol
            if stop:
                self.log.info(f"stopping: fewer than tol={self.tol} of assignments changed")
        self.last_pred = pred
        return stop

    def state_dict(self) -> dict[str, Any]:
        """The target P and the last predictions, for checkpoints."""
        return {"p": self.p.detach().cpu().clone(),
                "last_pred": torch.from_numpy(self.last_pred) if self.last_pred is not None else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.p = state["p"]
        lp = state.get("last_pred")
        self.last_pred = lp.numpy() if lp is not None else None


def cluster(dataset: str, arch: str | int = 0, loss: str | None = None, *, archs: str | None = None,
            data_dir: str | None = None, split: str = "all", image_size: int | None = None, out: str = ".",
            device: str = "auto", seed: int = 0, progress: bool | None = None, force: bool = False,
            resume: bool = False, echo: bool = True, clusters: int | None = None, threads: int | None = None,
            **overrides: Any) -> dict[str, Any]:
    """Python API: ``cluster("DIGITS", 0, loss="kld")``; options as on the command line."""
    ctx = prepare(dataset, arch, archs=archs, data_dir=data_dir, split=split, image_size=image_size, out=out,
                  device=device, progress=progress, threads=threads)
    loss = loss or default_loss(ctx)
    return run_cluster(ctx, loss, seed=seed, progress=progress, force=force, resume=resume, echo=echo,
                       clusters=clusters, **overrides)
