"""``netbuilder arch``: show an architecture's layers and shapes, validate files, print the JSON schema."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ..errors import ArchError
from .auto import auto_arch, is_auto, parse_shape
from .builder import build_autoencoder
from .errors import fmt_shape
from .schema import schema_text
from .spec import ArchCheck, check_arch_file, resolve_arch_file, resolve_with_context, select_arch


def human_count(n: int) -> str:
    """``1234567`` → ``"1.2M"``, ``23456`` → ``"23.5K"``, ``850`` → ``"850"``."""
    if n < 1000:
        return str(n)
    if n < 1_000_000:
        return f"{n / 1e3:.1f}K"
    return f"{n / 1e6:.1f}M"


def _pick(checks: list[ArchCheck], key: str, source: str) -> ArchCheck:
    # Select among all archs, valid or not, so that a broken neighbour does not hide the one asked for.
    index, _ = select_arch([{"name": c.name if c.name is not None else ""} for c in checks], key, source)
    return checks[index]


def _auto_check(input_shape: str | None, clusters: int | None) -> ArchCheck:
    """The auto arch for ``--input-shape`` and ``--clusters``, validated like an arch of a file."""
    if input_shape is None:
        raise click.UsageError("auto needs --input-shape, e.g. --input-shape 3x64x64")
    spec, plan = resolve_with_context(auto_arch(parse_shape(input_shape), clusters), source="auto")
    return ArchCheck(0, spec["name"], spec, plan)


SHAPE_HELP = "Input shape CxHxW (images), CxL (signals) or D (vectors), e.g. 3x64x64."
CLUSTERS_HELP = "Number of clusters k: the code has max(10, k) units [default: unknown, code 10]."


def format_table(rows: list[list[str]], right: set[int]) -> list[str]:
    """Left/right-aligned plain-text columns."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    return lines


@click.group("arch")
def arch() -> None:
    """Architecture files: show an arch's layers and shapes, validate files, print the JSON schema.

    \b
    Examples:
      netbuilder arch show MNIST -a 1
      netbuilder arch show MNIST -a dcec-l2
      netbuilder arch validate my_archs.json
      netbuilder arch show auto --input-shape 3x64x64 --clusters 5
      netbuilder arch new --input-shape 3x64x64 > my_archs.json
      netbuilder arch schema > archs.schema.json
    """


@arch.command("show")
@click.argument("file_or_dataset")
@click.option("-a", "--arch", "key", default="0", show_default=True, help="Index or name of the arch in the file.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the resolved spec as JSON, the mirrored decoder written out as an explicit layer list.")
@click.option("--input-shape", default=None, help=SHAPE_HELP + " For auto only.")
@click.option("--clusters", type=click.IntRange(min=1), default=None, help=CLUSTERS_HELP + " For auto only.")
def show(file_or_dataset: str, key: str, as_json: bool, input_shape: str | None, clusters: int | None) -> None:
    """Print an arch's layers with output shapes and parameter counts, its code size and totals.

    FILE_OR_DATASET is an archs file, a dataset name with a shipped file (MNIST → netbuilder/archs/mnist.json),
    or auto: the arch derived from --input-shape and --clusters (what -a auto trains).
    """
    if is_auto(file_or_dataset) and not Path(file_or_dataset).is_file():
        path, item = "auto", _auto_check(input_shape, clusters)
    elif input_shape is not None or clusters is not None:
        raise click.UsageError("--input-shape and --clusters apply to auto only")
    else:
        path = resolve_arch_file(file_or_dataset)
        item = _pick(check_arch_file(path), key, str(path))
    if item.error is not None:
        raise item.error
    assert item.spec is not None and item.plan is not None
    if as_json:
        spec: dict[str, Any] = dict(item.spec)
        spec["decoder"] = item.plan.decoder_configs()
        click.echo(json.dumps(spec, indent=2))
        return
    model = build_autoencoder(item.spec)
    rows = model.summary()
    title = f'{path}: arch {item.index} "{item.spec["name"]}"'
    click.echo(title + (f" - {item.spec['description']}" if item.spec.get("description") else ""))
    table = [["part", "layer", "output shape", "params"], ["input", "", fmt_shape(model.input_shape), ""]]
    table += [[r["part"], r["layer"], fmt_shape(r["output_shape"]), f"{r['params']:,}"] for r in rows]
    for line in format_table(table, right={2, 3}):
        click.echo(line)
    enc = sum(r["params"] for r in rows if r["part"] == "encoder")
    dec = sum(r["params"] for r in rows if r["part"] == "decoder")
    code = f"code: {model.code_dim}" + (f" ({fmt_shape(model.code_shape)})" if len(model.code_shape) > 1 else "")
    click.echo(code + (", l2-normalised" if model.l2_normalized else ""))
    click.echo(f"parameters: encoder {enc:,}, decoder {dec:,}, total {enc + dec:,}")
    if item.spec.get("training"):
        click.echo("training: " + ", ".join(f"{k} {json.dumps(v)}" for k, v in item.spec["training"].items()))
    if item.spec.get("clustering"):
        c = item.spec["clustering"]
        click.echo(f"clustering: {c['n_clusters']} clusters, alpha {c['alpha']}")


@arch.command("validate")
@click.argument("files", nargs=-1, required=True)
@click.pass_context
def validate(ctx: click.Context, files: tuple[str, ...]) -> None:
    """Check every arch of each FILE (structure and shapes); exit code 2 if any is invalid."""
    failed = total = 0
    for file in files:
        if len(files) > 1:
            click.echo(f"{file}:")
        try:
            checks = check_arch_file(file)
        except ArchError as exc:
            click.echo(f"FAIL {exc}")
            failed += 1
            total += 1
            continue
        for item in checks:
            total += 1
            if item.ok:
                assert item.spec is not None and item.plan is not None
                click.echo(f"ok   {item.index} {item.spec['name']} (code {item.plan.code_dim}, "
                           f"{human_count(item.plan.params)} params)")
            else:
                failed += 1
                click.echo(f"FAIL {item.index} {item.name or '?'}: {item.detail}")
    if failed:
        click.echo(f"error: {failed} of {total} archs failed validation", err=True)
        ctx.exit(2)


@arch.command("new")
@click.option("--input-shape", required=True, help=SHAPE_HELP)
@click.option("--clusters", type=click.IntRange(min=1), default=None, help=CLUSTERS_HELP)
def new(input_shape: str, clusters: int | None) -> None:
    """Print an archs file holding the auto arch for --input-shape: a starting point to edit.

    \b
    Example:
      netbuilder arch new --input-shape 3x64x64 --clusters 5 > my_archs.json
      netbuilder run -d folder:photos --archs my_archs.json
    """
    check = _auto_check(input_shape, clusters)  # validated before it is printed
    assert check.spec is not None
    click.echo(json.dumps([auto_arch(check.spec["input_shape"], clusters)], indent=2))


@arch.command("schema")
def schema() -> None:
    """Print the JSON Schema of archs files (for editors: "$schema" or yaml/json language-server settings)."""
    click.echo(schema_text(), nl=False)
