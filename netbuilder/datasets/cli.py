"""``netbuilder datasets`` (list what is registered and where it was found) and the shared dataset options."""
from __future__ import annotations

from typing import Callable

import click

from .paths import ENV_DATA, resolve_data_dir
from .kinds import DATASETS, LOCATED
from .registry import SPLITS, list_datasets


def dataset_options(func: Callable) -> Callable:
    """Add ``--data-dir``, ``--split``, ``--image-size`` and the signal options ``--window``, ``--stride`` and
    ``--label-column`` to a command; they arrive as the keyword arguments ``data_dir``, ``split``,
    ``image_size``, ``window``, ``stride`` and ``label_column``, ready for :func:`load_dataset` (which refuses
    an option the dataset does not take)."""
    options = [
        click.option("--data-dir", "data_dir", type=click.Path(file_okay=False), default=None,
                     help=f"Dataset root (default: ${ENV_DATA}, else ./datasets)."),
        click.option("--split", "split", type=click.Choice(list(SPLITS), case_sensitive=False), default="all",
                     show_default=True, help="Which part of datasets that have a train/test split."),
        click.option("--image-size", "image_size", type=click.IntRange(min=1), default=None,
                     help="Resize every image to this many pixels square."),
        click.option("--window", "window", type=click.IntRange(min=1), default=None,
                     help="Signal recordings (TEP, series:): samples per window [default: the dataset's]."),
        click.option("--stride", "stride", type=click.IntRange(min=1), default=None,
                     help="Signal recordings (TEP, series:): samples between window starts [default: the "
                          "dataset's]."),
        click.option("--label-column", "label_column", default=None,
                     help="series: CSV: the column holding per-sample labels [default: none]."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _how(row: dict) -> str:
    """How a dataset gets there: downloaded, bundled with a dependency, or placed by hand."""
    if row["downloadable"]:
        return "yes"
    spec = DATASETS.get(row["name"])
    return "bundled" if spec is not None and spec.bundled else "by hand"


def _format_rows(rows: list[dict]) -> str:
    header = ("name", "shape", "classes", "size", "download", "location")
    table = [header] + [(
        r["name"],
        "x".join(str(d) for d in r["shape"]),
        str(r["n_classes"]) if r["n_classes"] else "-",  # 0: unlabelled (TEP's normal runs)
        f"{r['size']:,}",
        _how(r),
        r["location"],
    ) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header) - 1)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths)) + "  " + row[-1] for row in table]
    return "\n".join(line.rstrip() for line in lines)


@click.command("datasets")
@click.option("--data-dir", "data_dir", type=click.Path(file_okay=False), default=None,
              help=f"Dataset root (default: ${ENV_DATA}, else ./datasets).")
def datasets(data_dir: str | None) -> None:
    """List the registered datasets: shape (C×H×W, or C×L for signal windows), classes, size and where each
    was found.

    Also: -d folder:PATH (PNG/JPEG images), series:PATH (a CSV or .npy recording) and ucr:NAME (UCR/UEA .ts).
    """
    root = resolve_data_dir(data_dir)
    click.echo(f"data root: {root}")
    click.echo(_format_rows(list_datasets(root)))
    for kind in LOCATED.values():
        click.echo(f"also: {kind.usage}  ({kind.description})")


__all__ = ["dataset_options", "datasets"]
