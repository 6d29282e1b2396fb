"""``netbuilder run``: pretrain → cluster → metrics → visualize, skipping stages whose outputs are complete."""
from __future__ import annotations

import json
import time
from typing import Any

import click

from ..cli_options import CLUSTERS_OPTION
from ..clustering import CLUSTER_METHODS
from ..core.objectives import objective_names
from ..datasets.cli import dataset_options
from .context import StageContext, prepare


def is_current(ctx: StageContext, stage: str, seed: int, hyperparameters: dict[str, Any] | None = None) -> bool:
    """A stage counts as done when its manifest is complete and was made from the same arch, data and seed,
    and, when given, the same resolved ``hyperparameters`` (so a run with ``--pretrain-epochs 2`` is not
    mistaken for the arch's full run)."""
    m = ctx.ws.manifest(stage)
    if not (bool(m) and m["arch"]["spec"] == ctx.spec and m["dataset"]["fingerprint"] == ctx.dataset.fingerprint
            and m.get("seed") == seed):
        return False
    # Compared after a JSON round trip: the manifest holds JSON values (lists, not tuples).
    wanted = json.loads(json.dumps(hyperparameters or {}))
    return all(m["hyperparameters"].get(k) == v for k, v in wanted.items())


def same_cluster_count(manifest: dict[str, Any], clusters: int | str | None) -> bool:
    """Whether a complete clustering stage was made with the ``--clusters`` asked for (None: anything goes)."""
    if clusters == "auto":
        return bool(manifest.get("clusters_auto"))
    return clusters is None or (not manifest.get("clusters_auto") and manifest.get("n_clusters") == clusters)


def run_all(dataset: str, arch: str | int = 0, *, loss: str | None = None, archs: str | None = None,
            data_dir: str | None = None, split: str = "all", image_size: int | None = None,
            window: int | None = None, stride: int | None = None, label_column: str | None = None, out: str = ".",
            device: str = "auto", seed: int = 0, force: bool = False, visualize: bool = True,
            method: str = "tsne", n: int = 5000, progress: bool | None = None, echo: bool = True,
            pretrain_epochs: int | None = None, cluster_epochs: int | None = None,
            threads: int | None = None, clusters: int | str | None = None,
            cluster_method: str | None = None) -> dict[str, Any]:
    """Run every stage in order; returns {"pretrain": manifest, "cluster": manifest, "metrics": rows, "plots": {...}}."""
    from ..core.objectives import cluster_settings
    from ..settings import PRETRAIN
    from .cluster import default_loss, run_cluster, stage_name
    from .pretrain import run_pretrain
    from .report import collect, format_table

    ctx = prepare(dataset, arch, archs=archs, data_dir=data_dir, split=split, image_size=image_size, window=window,
                  stride=stride, label_column=label_column, out=out, device=device, progress=progress,
                  threads=threads)
    loss = loss or default_loss(ctx)
    out_info: dict[str, Any] = {}
    t0 = time.perf_counter()
    say = click.echo if echo else (lambda *_a, **_k: None)
    training = ctx.spec.get("training") or {}
    pre_hp = PRETRAIN.resolve({"epochs": pretrain_epochs}, training)
    ran_pretrain = force or not is_current(ctx, "pretrain", seed, pre_hp)
    if ran_pretrain:
        out_info["pretrain"] = run_pretrain(ctx, seed=seed, progress=progress, echo=echo, epochs=pretrain_epochs)
    else:
        say(f"pretrain: up to date ({ctx.ws.stage_dir('pretrain')}), skipped; --force reruns it")
        out_info["pretrain"] = ctx.ws.manifest("pretrain")
    stage = stage_name(loss)
    # A new pretrain invalidates every clustering made from the old one.
    # run_cluster's rule refuses a cluster_method that this loss does not take, with a clearer message.
    cluster_hp = cluster_settings(loss).resolve({"epochs": cluster_epochs, "loss": loss, "cluster_method": cluster_method},
                                                training.get("cluster"), strict=False)
    if ran_pretrain or not is_current(ctx, stage, seed, cluster_hp) or not same_cluster_count(ctx.ws.manifest(stage),
                                                                                              clusters):
        out_info["cluster"] = run_cluster(ctx, loss, seed=seed, progress=progress, echo=echo, epochs=cluster_epochs,
                                          clusters=clusters, cluster_method=cluster_method)
    else:
        say(f"{stage}: up to date ({ctx.ws.stage_dir(stage)}), skipped; --force reruns it")
        out_info["cluster"] = ctx.ws.manifest(stage)
    if ctx.dataset.labels is not None:
        rows = collect(ctx, seed=seed)
        out_info["metrics"] = rows
        say(format_table(rows, header=f"{ctx.dataset.name} / {ctx.arch_name} (seed {seed})"))
    if visualize:
        from .visualize import run_visualize

        out_info["plots"] = run_visualize(ctx, method=method, n=n, seed=seed)
        say(f"plots: {ctx.ws.plots_dir}")
    out_info["seconds"] = round(time.perf_counter() - t0, 1)
    say(f"done in {out_info['seconds']:.1f}s")
    return out_info


@click.command("run")
@click.option("-d", "--dataset", required=True, help="Dataset name or folder:PATH (case-insensitive).")
@click.option("-a", "--arch", default="0", show_default=True, help="Architecture index or name in the archs file, or auto (derived from the data's shape).")
@click.option("--archs", type=click.Path(dir_okay=False), default=None, help="Archs JSON file [default: the dataset's shipped file, else -a auto].")
@click.option("--out", default=".", show_default=True, type=click.Path(file_okay=False), help="Root for saved_params/, logs/, plots/.")
@dataset_options
@click.option("--loss", type=click.Choice(objective_names()), default=None, help="Clustering objective [default: the arch's, then kld].")
@click.option("--pretrain-epochs", type=click.IntRange(min=1), default=None, help="Override the pretrain epochs.")
@click.option("--cluster-epochs", type=click.IntRange(min=1), default=None, help="Override the cluster epochs.")
@CLUSTERS_OPTION
@click.option("--cluster-method", type=click.Choice(CLUSTER_METHODS), default=None,
              help="Final clustering step of loss none: kmeans, birch or agglomerative [default: the arch's, then kmeans].")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps.")
@click.option("--force", is_flag=True, help="Rerun stages even if their outputs are complete.")
@click.option("--visualize/--no-visualize", default=True, show_default=True, help="Write plots at the end.")
@click.option("--method", type=click.Choice(["tsne", "pca"]), default="tsne", show_default=True, help="2-D embedding for the plots.")
@click.option("--n", type=click.IntRange(min=10), default=5000, show_default=True, help="Points in the embedding plots.")
@click.option("--progress/--no-progress", default=None, help="Progress bars [default: on a terminal only].")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="CPU threads for torch [default: the arch's, then torch's].")
def run_cmd(dataset, arch, **kw) -> None:
    """Run the main job: pretrain → cluster → metrics → visualize (complete stages are skipped).

    Example: netbuilder run -d DIGITS
    """
    run_all(dataset, int(arch) if arch.isdigit() else arch, **kw)
