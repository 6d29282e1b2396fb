"""Command-line wrappers of the stages; each option's help says where its default comes from."""
from __future__ import annotations

import json
from typing import Any

import click

from ..cli_options import (CLUSTERS_OPTION, COMMON_OPTIONS, RUN_OPTIONS, apply_options, arch_key, pop_settings,
                           settings_options)
from ..core.objectives import cluster_settings
from ..datasets.cli import dataset_options
from ..settings import PRETRAIN

def _print_metrics(prefix: str, metrics: dict[str, Any]) -> None:
    shown = ", ".join(f"{k.upper()} {v:.4f}" for k, v in metrics.items() if k in ("acc", "nmi", "ari"))
    click.echo(f"{prefix}: {shown or 'done'} ({metrics.get('clusters', '?')} clusters)")


@click.command("pretrain")
@apply_options(COMMON_OPTIONS)
@dataset_options
@apply_options(RUN_OPTIONS)
@apply_options(settings_options(PRETRAIN))
@click.option("--eval-every", type=click.IntRange(min=1), default=None, help="Epochs between ACC/NMI probes [default: epochs/10].")
@click.option("--resume", is_flag=True, help="Continue an interrupted run from its last checkpoint.")
def pretrain_cmd(dataset, arch, archs, out, data_dir, split, image_size, window, stride, label_column, seed, device,
                 progress, resume, eval_every, threads, **hp) -> None:
    """Train the autoencoder on reconstruction; saves weights, codes and a manifest.

    Output: <out>/saved_params/<DATASET>/<arch>/pretrain/. Example: netbuilder pretrain -d MNIST -a dcec-l2
    """
    from .pretrain import pretrain

    m = pretrain(dataset, arch_key(arch), archs=archs, data_dir=data_dir, split=split, image_size=image_size,
                 window=window, stride=stride, label_column=label_column, out=out, device=device, seed=seed,
                 progress=progress, resume=resume, eval_every=eval_every,
                 threads=threads, **pop_settings(hp, PRETRAIN))
    _print_metrics("pretrain (autoencoder + k-means)", m["metrics"])


@click.command("cluster")
@apply_options(COMMON_OPTIONS)
@dataset_options
@apply_options(RUN_OPTIONS)
@apply_options(settings_options(cluster_settings()))
@CLUSTERS_OPTION
@click.option("--force", is_flag=True, help="Use the pretrain output even if it was made with another arch or data.")
@click.option("--resume", is_flag=True, help="Continue an interrupted run of a training objective from its last checkpoint.")
def cluster_cmd(dataset, arch, archs, out, data_dir, split, image_size, window, stride, label_column, seed, device,
                progress, force, resume, clusters, threads, **hp) -> None:
    """Refine the pretrained encoder for clustering; saves codes, centroids and assignments.csv.

    Options that belong to one objective say so in brackets, e.g. (kld). Needs `netbuilder pretrain` first.
    Output: <out>/saved_params/<DATASET>/<arch>/cluster-<loss>/.
    """
    from .cluster import cluster

    settings = pop_settings(hp, cluster_settings())
    loss = settings.pop("loss")
    m = cluster(dataset, arch_key(arch), loss, archs=archs, data_dir=data_dir, split=split, image_size=image_size,
                window=window, stride=stride, label_column=label_column, out=out, device=device, seed=seed,
                progress=progress, force=force, resume=resume, clusters=clusters,
                threads=threads, **settings)
    _print_metrics(m["stage"], m["metrics"])


@click.command("metrics")
@apply_options(COMMON_OPTIONS)
@dataset_options
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the pixel k-means baseline.")
@click.option("--no-pixels", is_flag=True, help="Skip the raw-pixel k-means baseline row.")
def metrics_cmd(dataset, arch, archs, out, as_json, seed, no_pixels, **data) -> None:
    """Print ACC / NMI / ARI for raw pixels, the pretrained codes and every clustering stage that was run."""
    from .report import format_table, metrics

    rows = metrics(dataset, arch_key(arch), archs=archs, out=out, seed=seed, pixels=not no_pixels, **data)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        click.echo(format_table(rows, header=f"{dataset} / arch {arch}"))


def register(group: click.Group) -> None:
    """Add the stage commands to the top-level CLI."""
    for cmd in (pretrain_cmd, cluster_cmd, metrics_cmd):
        group.add_command(cmd)
    from .visualize import visualize_cmd
    group.add_command(visualize_cmd)
    from .run import run_cmd
    group.add_command(run_cmd)
    from .compare import compare_cmd
    group.add_command(compare_cmd)
    from ..anomaly.cli import anomaly_cmd
    group.add_command(anomaly_cmd)
