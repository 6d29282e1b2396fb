"""``netbuilder anomaly``: train an autoencoder anomaly detector under a stated protocol and report."""
from __future__ import annotations

import json
import time

import click

from ..datasets.cli import dataset_options
from ..errors import NetbuilderError
from ..cli_options import COMMON_OPTIONS, RUN_OPTIONS, apply_options, arch_key, pop_settings, set_threads, settings_options
from ..settings import PRETRAIN
from .protocols import PROTOCOLS, TEST_FRACTION, VAL_FRACTION
from .report import METRIC_COLUMNS, format_table, part_columns, parts_text, summary_line
from .tep_report import ENSEMBLE
from ..core.scores import SCORE_TITLES, SCORES

# The detector trains in memory: there is no checkpoint to resume.
NOT_FOR_DETECTOR = ("checkpoint_every",)
_FRACTION = click.FloatRange(min=0, max=1, min_open=True, max_open=True)


@click.command("anomaly")
@apply_options(COMMON_OPTIONS)
@dataset_options
@click.option("--protocol", type=click.Choice(PROTOCOLS), default=None,
              help="Required. one-class: train on the --target class only, test on held-out images of all "
                   "classes (others = anomalies). contaminated: train on everything unlabelled, --target is the "
                   "anomaly class, k-means k = number of normal classes. unsupervised: no labels; "
                   "--contamination turns scores into labels.")
@click.option("--target", default=None,
              help="The normal class (one-class) or the anomaly class (contaminated, and the report of "
                   "unsupervised): a class name or index.")
@click.option("--all-classes", is_flag=True, help="Run every class as --target; print a table (per class and mean).")
@click.option("--score", type=click.Choice(SCORES), default=None,
              help="; ".join(f"{name}: {title}" for name, title in SCORE_TITLES.items())
              + " (cosine and clusters need an l2 arch; clusters trains the encoder to cluster, as the cluster "
              "stage's SCAN does; dcca trains a 2-cluster k-means-loss autoencoder; knn trains nothing)."
              " [default: knn for one-class on images, else recon]")
@click.option("--threshold", default="contamination", show_default=True,
              help="contamination (percentile of the training scores), f1 or accuracy (best on a labelled "
                   "validation split), or a number.")
@click.option("--contamination", type=click.FloatRange(min=0, max=0.5, min_open=True), default=0.1,
              show_default=True, help="Expected fraction of anomalies (for --threshold contamination).")
@click.option("--anomaly-ratio", type=_FRACTION, default=None,
              help="contaminated: subsample the anomaly class to this fraction of the data [default: keep all].")
@click.option("--clusters", type=click.IntRange(min=1), default=None,
              help="k of the k-means (cosine/centroid) [default: normal classes; unsupervised: the arch's].")
@click.option("--test-fraction", type=_FRACTION, default=TEST_FRACTION, show_default=True,
              help="Held-out test part for datasets without a train/test split (one-class).")
@click.option("--val-fraction", type=_FRACTION, default=VAL_FRACTION, show_default=True,
              help="Labelled validation part of the training side (--threshold f1/accuracy).")
@apply_options(RUN_OPTIONS)
@apply_options(settings_options(PRETRAIN, exclude=NOT_FOR_DETECTOR))
@click.option("--cluster-epochs", type=click.IntRange(min=1), default=None,
              help="Epochs of the clustering stage of --score dcca (k-means loss) or clusters (SCAN) [default: the "
                   "cluster stage's].")
@click.option("--far", type=_FRACTION, default=0.01, show_default=True,
              help="-d TEP --protocol one-class --all-classes (the fault-detection report): the false-alarm rate "
                   "the thresholds are set at, on held-out normal data.")
@click.option("--ensemble", type=click.IntRange(min=1, max=50), default=ENSEMBLE, show_default=True,
              help="-d TEP --protocol one-class --all-classes: autoencoders trained from different seeds per fit, "
                   "reconstructing with their mean (steadier residuals; each one adds a training).")
@click.option("--plots/--no-plots", default=True, show_default=True, help="Write the plots.")
@click.option("--json", "as_json", is_flag=True, help="Print the result (or the table) as JSON.")
@click.option("--model", "model_dir", type=click.Path(file_okay=False, exists=True), default=None,
              help="Instead of training: score -d DATASET with the detector saved in this run directory "
                   "(its saved threshold); writes <out>/predictions/<run>/<dataset>.csv.")
@click.option("-v", "--verbose", is_flag=True, help="Echo the training log lines.")
def anomaly_cmd(dataset, arch, archs, out, data_dir, split, image_size, window, stride, label_column, protocol,
                target, all_classes, score, threshold, contamination, anomaly_ratio, clusters, test_fraction,
                val_fraction, seed, device, progress, cluster_epochs, far, ensemble, plots, as_json, model_dir,
                verbose, **hp) -> None:
    """Anomaly detection with an autoencoder, under a stated protocol.

    \b
    Examples (the two MNIST tables of README):
      netbuilder anomaly -d MNIST --protocol one-class --all-classes   # score knn, no training: seconds
      netbuilder anomaly -d MNIST -a dcec-l2 --protocol one-class --score recon --all-classes
      netbuilder anomaly -d MNIST --split test -a dcec-l2 --protocol contaminated --anomaly-ratio 0.01 \\
          --contamination 0.01 --score cosine --all-classes --epochs 100
      netbuilder anomaly -d folder:cracks --archs my_archs.json --protocol one-class --target Negative
      netbuilder anomaly -d folder:new_images --model saved_params/.../anomaly-one-class-Negative-knn
      netbuilder anomaly -d TEP --protocol one-class --all-classes --far 0.01   # fault detection vs PCA

    Output: <out>/saved_params/<DATASET>/<arch>/anomaly-<protocol>-<target>-<score>/ (weights, threshold.json,
    scores.csv, report.json, manifest.json) and plots in <out>/plots/<DATASET>/<arch>/anomaly-.../.
    """
    from .experiment import resolve_score, run_all_classes, run_anomaly
    from .predict import predict_dataset

    t0 = time.perf_counter()
    threads = hp.pop("threads", None)
    set_threads(threads)
    train_options = {k: v for k, v in pop_settings(hp, PRETRAIN).items() if k not in NOT_FOR_DETECTOR}
    unused = sorted(k for k, v in hp.items() if v is not None)  # shared options this command does not take yet
    if unused:
        raise NetbuilderError(f"netbuilder anomaly does not use --{unused[0].replace('_', '-')}")
    if model_dir is not None:
        res = predict_dataset(model_dir, dataset, data_dir=data_dir, split=split, image_size=image_size,
                              window=window, stride=stride, label_column=label_column, out=out, device=device,
                              progress=progress)
        click.echo(json.dumps(res, indent=2) if as_json else f"{res['summary']}\nscores: {res['csv']}")
        return
    if protocol is None:
        raise NetbuilderError("--protocol is required: one-class, contaminated or unsupervised (see --help)")
    if all_classes and target is not None:
        raise NetbuilderError("give either --target or --all-classes, not both")
    score = resolve_score(score, protocol, dataset)
    echo = (lambda m: click.echo(m, err=True)) if as_json else click.echo
    warn = lambda m: click.echo(m, err=True)  # noqa: E731
    if all_classes and protocol == "one-class" and is_tep(dataset):
        # Process data: a fault-detection report (faults 1-21 against normal operation), not a class table.
        from .tep_outputs import report_text
        from .tep_report import run_tep_report

        if window is not None:
            raise NetbuilderError("the TEP report's window is its arch's input length: change input_shape in the "
                                  "archs file rather than passing --window")
        report = run_tep_report(arch_key(arch), score, archs=archs, data_dir=data_dir, out=out, far=far,
                                stride=stride, ensemble=ensemble, threads=threads, train_options=train_options,
                                seed=seed, device=device, progress=progress, plots=plots, verbose=verbose,
                                echo=echo)
        click.echo(json.dumps(report, indent=2) if as_json else report_text(report))
        return
    options = dict(threshold=threshold, contamination=contamination, anomaly_ratio=anomaly_ratio,
                   clusters=clusters, test_fraction=test_fraction, val_fraction=val_fraction,
                   train_options=train_options,
                   cluster_epochs=cluster_epochs, seed=seed, device=device, progress=progress, plots=plots,
                   verbose=verbose)
    common = dict(archs=archs, data_dir=data_dir, split=split, image_size=image_size, window=window, stride=stride,
                  label_column=label_column, out=out)
    if all_classes:
        table = run_all_classes(dataset, arch_key(arch), protocol, score, echo=_warn_router(echo, warn),
                                **common, **options)
        wall = time.perf_counter() - t0
        if as_json:
            click.echo(json.dumps({**table, "wall_time_s": round(wall, 1)}, indent=2))
            return
        head = (f"{table['dataset']} / {table['arch']}: protocol {protocol}, score {score}, "
                f"threshold {threshold} (seed {seed})")
        click.echo(format_table(table["rows"], header=head, columns=METRIC_COLUMNS + part_columns(table["rows"])))
        click.echo(f"table: {table['path']}")
        click.echo(f"wall time: {wall:.1f} s for {len(table['rows'])} targets")
        return
    row = run_anomaly(dataset, arch_key(arch), protocol, target, score, echo=_warn_router(echo, warn),
                      **common, **options)
    wall = time.perf_counter() - t0
    if as_json:
        click.echo(json.dumps({**row, "wall_time_s": round(wall, 1)}, indent=2))
        return
    m = row["metrics"]
    what = f"target {row['class']}" if row["class"] is not None else "no target"
    click.echo(f"anomaly {protocol}, {what}, score {score}: {row['n_train']} training images, "
               f"{row['n_test']} test images" + (f" ({row['n_anomalies']} anomalies)" if row["n_anomalies"] is not None
                                                 else ""))
    if m.get("n_anomalies") is not None:
        click.echo(summary_line(m))
        if part_columns([row]):   # a combined score: what each part alone gives
            click.echo("parts: " + parts_text(row, "ROC AUC "))
    else:
        click.echo(f"{m['flagged']} of {m['n']} flagged as anomalous at threshold {m['threshold']:.6g}")
    click.echo(f"saved: {row['dir']}")
    if row["plots"]:
        click.echo(f"plots: {', '.join(row['plots'].values())}")
    click.echo(f"wall time: {wall:.1f} s")


def is_tep(dataset: str) -> bool:
    """Whether ``dataset`` names the registered Tennessee Eastman dataset (any alias or spelling)."""
    from ..datasets import get_spec

    try:
        return get_spec(dataset).name == "TEP"
    except NetbuilderError:  # folder:, series:, ... or unknown: not TEP (the normal route reports the latter)
        return False


def _warn_router(echo, warn):
    """Warnings go to stderr, everything else through ``echo``."""
    return lambda m: warn(m) if m.startswith("warning:") else echo(m)
