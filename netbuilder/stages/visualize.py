"""Stage 4: look at the result — embeddings, PCA of the codes (2-D and 3-D), reconstructions, samples per cluster and training curves as PNGs.

Everything is written under ``<out>/plots/<DATASET>/<arch>/``. The stage only reads what earlier stages
saved (codes, assignments, weights, epoch logs); it trains nothing.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import numpy as np
import torch

from .. import charts, plot_signals, plots
from ..clustering import kmeans
from ..core.arrays import raw_rows
from ..core.objectives import OBJECTIVES
from ..datasets.cli import dataset_options
from ..errors import NetbuilderError, StageError
from ..metrics import clustering_scores
from ..train import reconstruct_all
from ..train.batches import map_batches, subsample
from ..train.runlog import read_jsonl
from ..cli_options import COMMON_OPTIONS, apply_options, arch_key
from .context import StageContext, prepare
from .persist import load_array, load_into, load_weights

METHODS = ("tsne", "pca")


def _stage_title(stage: str) -> str:
    """``cluster-<name>: <the objective's title>`` for a clustering stage's embedding panel."""
    cls = OBJECTIVES.get(stage.split("-", 1)[-1])
    return f"{stage}: {cls.title}" if cls else stage


def _require_pretrain(ctx: StageContext) -> dict[str, Any]:
    manifest = ctx.ws.manifest("pretrain")
    if manifest is None:
        raise StageError(f"nothing to visualize for {ctx.dataset.name} / {ctx.arch_name}: no pretrain output under "
                         f"{ctx.ws.stage_dir('pretrain')}; run `netbuilder pretrain -d {ctx.dataset.name} "
                         f"-a {ctx.arch_name}` first")
    fingerprint = (manifest.get("dataset") or {}).get("fingerprint")
    if fingerprint and fingerprint != ctx.dataset.fingerprint:
        # Codes of other data would be plotted against these labels and images: silently wrong pictures.
        raise StageError(f"{ctx.ws.stage_dir('pretrain')}: made from different data than {ctx.dataset.name} "
                         f"loads now; rerun `netbuilder pretrain -d {ctx.dataset.name} -a {ctx.arch_name}`")
    return manifest


def _codes(ctx: StageContext, stage: str, n: int) -> np.ndarray:
    path = ctx.ws.stage_dir(stage) / "codes.npy"
    codes = load_array(path)
    if codes.ndim != 2 or codes.shape[0] != n:
        raise StageError(f"{path}: expected {n} codes, found an array of shape {codes.shape}; rerun the {stage} stage")
    return codes


def _assignments(ctx: StageContext, stage: str, n: int) -> np.ndarray:
    path = ctx.ws.stage_dir(stage) / "assignments.csv"
    try:
        pred = np.loadtxt(path, delimiter=",", skiprows=1, usecols=1, dtype=np.int64, ndmin=1)
    except (OSError, ValueError) as exc:
        raise StageError(f"{path}: cannot read cluster assignments ({exc})") from None
    if pred.shape != (n,):
        raise StageError(f"{path}: {pred.shape[0]} assignments for {n} images; rerun the {stage} stage")
    return pred


def _load_model(ctx: StageContext, stage: str):
    path = ctx.ws.stage_dir(stage) / "weights.safetensors"
    model = ctx.build_model()
    tensors = load_weights(path)
    tensors.pop("clustering.centroids", None)  # the clustering head is not part of the autoencoder
    load_into(model, tensors, path)
    return model.to(ctx.device)


def best_channel_maps(model, images: np.ndarray, channel: int, device) -> np.ndarray:
    """The flattened activation maps of one channel (dcca's best-separated one) for ``images``, in eval mode."""
    model.eval()
    with torch.no_grad():
        return map_batches(lambda x: model.feature_maps(x)[:, channel].flatten(1)
                           if model.maps_index is not None else model.encode(x), images, device)


def _score_title(labels: np.ndarray | None, pred: np.ndarray) -> str:
    if labels is None:
        return f"{len(np.unique(pred))} clusters"
    s = clustering_scores(labels, pred)
    return f"ACC {s['acc']:.3f} · NMI {s['nmi']:.3f} ({s['clusters']} clusters)"


def _examples(labels: np.ndarray | None, n: int) -> np.ndarray:
    """Positions of ``n`` examples: one per class in turn when labels exist, so every class shows up."""
    if labels is None:
        return np.arange(n)
    by_class = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    out: list[int] = []
    depth = 0
    while len(out) < n and any(depth < len(m) for m in by_class):
        out.extend(int(m[depth]) for m in by_class if depth < len(m) and len(out) < n)
        depth += 1
    return np.asarray(out, dtype=np.int64)


def _number_of_clusters(ctx: StageContext, stages: list[str]) -> int | None:
    try:
        return ctx.n_clusters
    except StageError:
        # Unlabelled data without an arch setting: the clustering stages know what k they used.
        for stage in stages:
            k = (ctx.ws.manifest(stage) or {}).get("n_clusters")
            if k:
                return int(k)
        return None


def run_visualize(ctx: StageContext, *, method: str = "tsne", n: int = 5000, seed: int = 0,
                  echo: bool = False) -> dict[str, str]:
    """Write the plots of ``ctx``'s saved stages; returns plot name → PNG path."""
    if method not in METHODS:
        raise NetbuilderError(f"Invalid value for argument `method`. Expected tsne or pca. Received method={method!r}.")
    if n < 3:
        raise NetbuilderError(f"Invalid value for argument `n`: need at least 3 points to plot, got {n}.")
    _require_pretrain(ctx)
    data = ctx.dataset
    stages = ctx.ws.cluster_stages()
    k = _number_of_clusters(ctx, stages)
    out_dir = ctx.ws.plots_dir
    written: dict[str, str] = {}
    say = click.echo if echo else (lambda *_: None)

    # One subset for every embedding, so the panels of different stages show the same points.
    idx = subsample(len(data), n, seed)
    if k and len(idx) < k:
        raise NetbuilderError(f"Invalid value for argument `n`: {len(idx)} images cannot show {k} clusters; "
                              f"use --n {k} or more.")
    labels = data.labels[idx] if data.labels is not None else None
    names = data.class_names
    where = f"{data.name} / {ctx.arch_name}"
    how = f"{'t-SNE' if method == 'tsne' else 'PCA'}, n={len(idx)}"

    def embed(name: str, x: np.ndarray, pred: np.ndarray | None, what: str) -> None:
        say(f"{name}: {what} ({how}) ...")
        emb = plots.embedding_2d(x, method, seed)
        score = _score_title(labels, pred) if pred is not None else "no clusters"
        title = f"{where}: {what} ({how})\n{score}"
        path = plots.scatter_pair(emb, labels, pred, title, out_dir / f"{name}.png", class_names=names, seed=seed)
        written[name] = str(path)

    def pca(stage: str, codes: np.ndarray, pred: np.ndarray | None, what: str) -> None:
        say(f"{stage}: PCA 2-D and 3-D of the codes ...")
        for dims in (2, 3):
            name = f"pca{dims}d-{stage}"
            written[name] = str(plots.pca_scatter(codes, labels, pred, out_dir / f"{name}.png", dims=dims,
                                                  title=f"{where}: {what}, n={len(idx)}", class_names=names,
                                                  seed=seed))

    raw = raw_rows(data.images[idx])
    raw_pred = kmeans(raw, k, n_init=10, seed=seed)[0] if k else None
    if labels is not None or raw_pred is not None:
        name, what = ("series", "raw series, k-means on series") if data.is_signal else \
            ("pixels", "raw pixels, k-means on pixels")
        embed(f"embedding-{name}", raw, raw_pred, what)
    del raw

    pre_codes = _codes(ctx, "pretrain", len(data))[idx]
    pre_pred = kmeans(pre_codes, k, n_init=10, seed=seed)[0] if k else None
    if labels is not None or pre_pred is not None:
        embed("embedding-pretrain", pre_codes, pre_pred, "pretrained codes, k-means on codes")
        pca("pretrain", pre_codes, pre_pred, "pretrained codes, k-means on codes")

    full_preds: dict[str, np.ndarray] = {}
    for stage in stages:
        full_preds[stage] = _assignments(ctx, stage, len(data))
        codes = _codes(ctx, stage, len(data))[idx]
        embed(f"embedding-{stage}", codes, full_preds[stage][idx], _stage_title(stage))
        channel = (((ctx.ws.manifest(stage) or {}).get("objective")) or {}).get("best_channel")
        if channel is not None:
            maps = best_channel_maps(_load_model(ctx, stage), data.images[idx], int(channel), ctx.device)
            embed(f"embedding-{stage}-map", maps, full_preds[stage][idx],
                  f"{stage}: activation maps of channel {channel}, the best-separated")
        pca(stage, codes, full_preds[stage][idx], _stage_title(stage))

    # Reconstructions of the same examples by every distinct model (cluster-none keeps the pretrained weights).
    say("reconstructions ...")
    ex = idx[_examples(labels, min(10, len(idx)))]
    originals = data.images[ex]
    recs = {"pretrain": reconstruct_all(_load_model(ctx, "pretrain"), originals, ctx.device)}
    for stage in stages:
        if stage != "cluster-none":
            recs[stage] = reconstruct_all(_load_model(ctx, stage), originals, ctx.device)
    draw_recs = plot_signals.reconstruction_series_grid if data.is_signal else plots.reconstruction_grid
    written["reconstructions"] = str(draw_recs(originals, recs, out_dir / "reconstructions.png", n=len(ex),
                                               title=f"{where}: reconstructions"))

    # Samples per cluster of the best stage: the highest ACC when labels exist, else the most refined loss.
    best: tuple[str, np.ndarray, np.ndarray, np.ndarray | None] | None = None
    if stages:
        def acc(name: str) -> float:
            return float(((ctx.ws.manifest(name) or {}).get("metrics") or {}).get("acc", -1.0))

        # reversed: on equal ACC, the later (more refined) stage in cluster_stages() order wins.
        stage = max(reversed(stages), key=acc) if data.labels is not None else stages[-1]
        best = (stage, data.images, full_preds[stage], data.labels)
    elif pre_pred is not None:
        best = ("pretrain", data.images[idx], pre_pred, labels)
    if best is not None:
        stage, images, pred, sample_labels = best
        say(f"samples per cluster ({stage}) ...")
        name = f"clusters-{stage}"
        draw_members = plot_signals.cluster_series_grid if data.is_signal else plots.cluster_samples_grid
        written[name] = str(draw_members(
            images, pred, out_dir / f"{name}.png", per_cluster=10, labels=sample_labels, class_names=names,
            seed=seed, title=f"{where}: random members of each cluster ({stage})"))

    records = {s: read_jsonl(ctx.ws.log_stem(s).with_suffix(".jsonl")) for s in ["pretrain", *stages]}
    if any("epoch" in r for recs_ in records.values() for r in recs_):
        say("training curves ...")
        written["curves"] = str(charts.training_curves(records, out_dir / "curves.png",
                                                      title=f"{where}: training curves"))
    return written


def visualize(dataset: str, arch: str | int = 0, *, archs: str | Path | None = None, data_dir: str | Path | None = None,
              split: str = "all", image_size: int | None = None, window: int | None = None,
              stride: int | None = None, label_column: str | None = None, out: str | Path = ".", method: str = "tsne",
              n: int = 5000, seed: int = 0, device: str = "auto") -> dict[str, str]:
    """Python API: ``visualize("DIGITS", 0, method="pca")``; returns plot name → written PNG path.

    Needs the pretrain stage; plots every completed clustering stage. Embeddings use the same random
    subset of ``n`` images (``seed``) for raw pixels, pretrained codes and each clustering stage.
    """
    ctx = prepare(dataset, arch, archs=archs, data_dir=data_dir, split=split, image_size=image_size, window=window,
                  stride=stride, label_column=label_column, out=out, device=device, progress=False)
    return run_visualize(ctx, method=method, n=n, seed=seed)


@click.command("visualize")
@apply_options(COMMON_OPTIONS)
@dataset_options
@click.option("--method", type=click.Choice(list(METHODS)), default="tsne", show_default=True,
              help="2-D embedding: t-SNE (slow, ~20 s for 5000 points) or PCA (instant).")
@click.option("--n", "n", type=click.IntRange(min=3), default=5000, show_default=True,
              help="Images in the embedding plots (a fixed random subset).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the subset, k-means and t-SNE.")
@click.option("--device", default="auto", show_default=True, help="Device for reconstructions: auto, cpu, cuda, mps.")
def visualize_cmd(dataset, arch, archs, out, method, n, seed, device, **data) -> None:
    """Write PNGs of embeddings, reconstructions, cluster samples and training curves.

    Needs `netbuilder pretrain` first. Output: <out>/plots/<DATASET>/<arch>/. Example:
    netbuilder visualize -d MNIST -a dcec-l2 --method pca
    """
    ctx = prepare(dataset, arch_key(arch), archs=archs, out=out, device=device, progress=None, **data)
    written = run_visualize(ctx, method=method, n=n, seed=seed, echo=True)
    click.echo(f"wrote {len(written)} plots:")
    for path in written.values():
        click.echo(f"  {path}")
