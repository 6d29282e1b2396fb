"""``netbuilder compare``: train every (arch, seed) pair with :func:`run_all`, then rank the archs with and
without labels (the statistics are in :mod:`netbuilder.stages.leaderboard`).

Each seed runs under its own output root ``<out>/compare/<DATASET>/seed-<n>/``, so the stage directories of
different seeds never collide and ``run_all`` skips every stage a previous (possibly killed) compare
completed with the same arch, data, seed and hyperparameters. The leaderboard is written to
``<out>/plots/<DATASET>/compare.{png,json,md}``.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import click
import numpy as np

from ..arch import load_arch_file, resolve_arch_file, select_arch
from ..arch.auto import AUTO, auto_spec, is_auto
from ..arch.spec import dataset_arch_file, resolve_with_context
from ..errors import NetbuilderError
from ..fileio import write_json, write_text
from ..datasets.cli import dataset_options
from . import leaderboard as lb
from .context import StageContext, prepare
from .run import run_all
from .workspace import Workspace, safe_name

SILHOUETTE_SAMPLE = 3000  # points per silhouette: O(n²) distances, and 3,000 estimate it to about ±0.01


@dataclass(frozen=True)
class Candidate:
    """One arch to compare: its index and name in the archs file (index ``"auto"``: the arch derived from the
    data's shape, no file), and its parameter count on this dataset."""

    index: int | str
    name: str
    params: int


def arch_keys(value: str) -> list[str]:
    """The entries of ``-a``: ``"0,2,dcec-l2,auto"`` → their keys; ``"all"`` stays one key."""
    keys = [k.strip() for k in value.split(",")]
    if not all(keys):
        raise NetbuilderError(f"-a {value!r}: expected comma-separated arch indices or names, 'auto', or 'all'")
    return keys


def parse_arch_list(value: str, specs: Sequence[dict[str, Any]], source: str) -> list[int | str]:
    """``"0,2,dcec-l2,auto"``, ``"all"`` or ``"all,auto"`` → arch indices (in the given order, duplicates
    dropped; ``"auto"`` kept as such); a bad entry raises the one-line error of :func:`select_arch`."""
    indices: list[int | str] = []
    for key in arch_keys(value):
        if key.lower() == "all":
            found: list[int | str] = list(range(len(specs)))
        else:
            found = [AUTO if is_auto(key) else select_arch(specs, int(key) if key.isdigit() else key, source)[0]]
        indices.extend(i for i in found if i not in indices)
    return indices


def seed_root(out: str | Path, dataset_dir: str, seed: int) -> Path:
    """The output root of one seed's runs."""
    return Path(out) / "compare" / dataset_dir / f"seed-{seed}"


def compare_dir(out: str | Path, dataset_dir: str) -> Path:
    """Where the leaderboard files go."""
    return Path(out) / "plots" / dataset_dir


def silhouette(stage_dir: Path, seed: int) -> tuple[float, np.ndarray]:
    """Silhouette of a cluster stage's final codes under its assignments (subsampled), and the assignments."""
    from sklearn.metrics import silhouette_score

    codes = np.load(stage_dir / "codes.npy")
    pred = np.loadtxt(stage_dir / "assignments.csv", delimiter=",", skiprows=1, usecols=1, dtype=np.int64, ndmin=1)
    if len(np.unique(pred)) < 2:  # undefined for one cluster: ranks last
        return math.nan, pred
    sample = min(len(pred), SILHOUETTE_SAMPLE)
    return float(silhouette_score(codes.reshape(len(codes), -1), pred, sample_size=sample, random_state=seed)), pred


def stage_times(ws: Workspace) -> dict[str, str]:
    """Creation time of every complete stage of ``ws`` (to tell trained stages from reused ones)."""
    stages = ["pretrain", *ws.cluster_stages()]
    return {s: m.get("created") for s in stages if (m := ws.manifest(s))}


def run_record(info: dict[str, Any], ws: Workspace, seed: int) -> dict[str, Any]:
    """The leaderboard's record of one (arch, seed) run, read from its manifests and outputs."""
    pre, clu = info["pretrain"], info["cluster"]
    sil, pred = silhouette(ws.stage_dir(clu["stage"]), seed)
    # Training time from the manifests, so a rerun that reuses the stages reports what they cost.
    train_s = pre["timings"]["train_s"] + pre["timings"].get("eval_s", 0.0) + clu["timings"]["train_s"]
    rec: dict[str, Any] = {"arch": pre["arch"]["name"], "seed": seed, "stage": clu["stage"],
                           "train_s": round(train_s, 2), "recon_loss": pre["metrics"].get("recon_loss"),
                           "silhouette": sil, "clusters": clu["metrics"].get("clusters"), "pred": pred}
    rec.update({k: clu["metrics"][k] for k in lb.LABEL_METRICS if k in clu["metrics"]})
    return rec


def _fmt(row: dict[str, Any], key: str, digits: int = 3) -> str:
    v = row.get(key)
    if v is None or not math.isfinite(v):
        return "–"
    std = row.get(f"{key}_std")
    return f"{v:.{digits}f}" + (f" ± {std:.{digits}f}" if std is not None and math.isfinite(std) else "")


def table(rows: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Leaderboard headers and cells (mean ± std over seeds)."""
    labelled = all("acc" in r for r in rows)
    headers = ["#", "arch"] + (["ACC", "NMI", "ARI"] if labelled else []) + \
        ["label-free", "silhouette", "stability", "recon loss", "train s", "params"]
    cells = []
    for i, r in enumerate(rows, 1):
        cells.append([str(i), r["arch"]] + ([_fmt(r, k) for k in lb.LABEL_METRICS] if labelled else []) +
                     [f"{r['label_free_score']:.2f}", _fmt(r, "silhouette"), _fmt(r, "stability"),
                      _fmt(r, "recon_loss", 4), _fmt(r, "train_s", 1), f"{r['params']:,}"])
    return headers, cells


def agreement_text(agree: dict[str, Any] | None) -> str:
    """One sentence on how the label-free choice fares against the labels."""
    if agree is None:
        return "No labels: the ranking is the label-free score."
    rho = agree["spearman_score_acc"]
    return (f"Label-free choice: {agree['chosen']} (best mean ACC: {agree['best_acc']}; ACC regret "
            f"{agree['acc_regret']:.3f}); it picks the best-ACC arch in {agree['per_seed_hits']:.0%} of "
            f"{agree['seeds']} seeds; Spearman(label-free score, ACC) across archs = "
            f"{'n/a' if math.isnan(rho) else f'{rho:+.2f}'}.")


def markdown(title: str, headers: list[str], cells: list[list[str]], notes: Sequence[str]) -> str:
    """A Markdown page: title, table, notes."""
    lines = [f"# {title}", "", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(c) + " |" for c in cells]
    return "\n".join(lines + [""] + [f"{n}  " for n in notes]) + "\n"


def check_archs(dataset: str, arch_list: str, *, archs: str | None, out: str,
                **data: Any) -> tuple[Path, list[Candidate], StageContext]:
    """The archs file, the archs of ``arch_list`` and the first one's context, all checked before any training:
    the whole file validates (as every stage requires), every entry names an arch, every arch fits the data
    (``data``: the dataset options of :func:`prepare`, e.g. ``split``, ``image_size``, ``window``)."""
    if arch_list.strip().lower() == "all" and not archs and dataset_arch_file(dataset) is None:
        arch_list = AUTO  # own data with no archs file: "all" the archs there are is the derived one
    only_auto = all(is_auto(k) for k in arch_keys(arch_list))
    arch_file = Path(AUTO) if only_auto and not archs else resolve_arch_file(archs or dataset)
    specs = [] if only_auto and not archs else load_arch_file(arch_file)
    indices = parse_arch_list(arch_list, specs, str(arch_file))
    ctx = prepare(dataset, indices[0], archs=None if is_auto(indices[0]) else str(arch_file), out=out, device="cpu",
                  progress=False, **data)
    # Shapes depend on the data (e.g. a conv stack too deep for 8×8 images): plan each arch for it now.
    shape = tuple(ctx.dataset.shape)

    def candidate(i: int | str) -> Candidate:
        spec = auto_spec(shape, ctx.dataset.n_classes) if is_auto(i) else specs[int(i)]
        plan = resolve_with_context(spec, source=str(arch_file), index=None if is_auto(i) else int(i),
                                    input_shape=shape)[1]
        return Candidate(i, spec["name"], int(plan.params))

    cands = [candidate(i) for i in indices]
    return arch_file, cands, ctx


def train_pairs(dataset: str, arch_file: Path, cands: Sequence[Candidate], ds_dir: str, seeds: int,
                say: Callable[[str], None], **run_kw: Any) -> list[dict[str, Any]]:
    """Run every (seed, arch) pair with :func:`run_all` (complete stages are reused); one record per pair."""
    pairs = [(s, c) for s in range(seeds) for c in cands]
    runs = []
    for n, (seed, cand) in enumerate(pairs, 1):
        root = seed_root(run_kw["out"], ds_dir, seed)
        ws = Workspace(root, ds_dir, safe_name(cand.name))
        say(f"[{n}/{len(pairs)}] {cand.name} seed {seed}: running")
        before = stage_times(ws)
        t = time.perf_counter()
        info = run_all(dataset, cand.index, archs=None if is_auto(cand.index) else str(arch_file),
                       **{**run_kw, "out": str(root)}, seed=seed,
                       visualize=False, progress=False, echo=False)
        rec = run_record(info, ws, seed)
        runs.append(rec)
        after = stage_times(ws)
        reused = [s for s in ("pretrain", rec["stage"]) if s in before and before[s] == after.get(s)]
        how = "reused" if len(reused) == 2 else "reused pretrain" if reused else "trained"
        shown = f"ACC {rec['acc']:.3f}, " if "acc" in rec else ""
        say(f"[{n}/{len(pairs)}] {cand.name} seed {seed}: {shown}silhouette {rec['silhouette']:.3f} "
            f"({how}, {time.perf_counter() - t:.1f}s)")
    return runs


def compare(dataset: str, arch_list: str = "all", *, archs: str | None = None, seeds: int = 3,
            epochs: int | None = None, cluster_epochs: int | None = None, out: str = ".",
            data_dir: str | None = None, split: str = "all", image_size: int | None = None,
            window: int | None = None, stride: int | None = None, label_column: str | None = None,
            device: str = "auto", say: Callable[[str], None] | None = click.echo) -> dict[str, Any]:
    """Python API: train every (arch, seed) pair (reusing complete stages), write and return the leaderboard:
    ``{"rows": [...], "runs": [...], "agreement": {...} | None, "files": {...}, "text": ..., ...}``.

    Every arch of ``arch_list`` is checked (name or index, validity, shapes for this dataset) before anything
    trains; a bad one raises a one-line :class:`NetbuilderError`. ``say`` gets the progress lines (None: quiet).
    """
    data = dict(data_dir=data_dir, split=split, image_size=image_size, window=window, stride=stride,
                label_column=label_column)
    arch_file, cands, ctx = check_archs(dataset, arch_list, archs=archs, out=out, **data)
    ds_dir = ctx.ws.dataset
    t0 = time.perf_counter()
    runs = train_pairs(dataset, arch_file, cands, ds_dir, seeds, say or (lambda _m: None), out=out, device=device,
                       pretrain_epochs=epochs, cluster_epochs=cluster_epochs, **data)
    rows = lb.rank(lb.summarise(runs, [c.name for c in cands]))
    for r in rows:
        r["params"] = next(c.params for c in cands if c.name == r["arch"])
    agree = lb.agreement(rows, runs)
    wall = time.perf_counter() - t0

    overrides = "".join(f"; {what} epochs {n}" for what, n in (("pretrain", epochs), ("cluster", cluster_epochs)) if n)
    notes = [agreement_text(agree), f"Rule: {lb.RULE}.",
             f"Mean ± std over seeds 0..{seeds - 1}; train s from the stage manifests; this compare took {wall:.0f}s wall.",
             f"Runs: {seed_root(out, ds_dir, 0).parent}/seed-N/. Archs: {arch_file}{overrides}."]
    dest = compare_dir(out, ds_dir)
    files = {"json": dest / "compare.json", "md": dest / "compare.md", "png": dest / "compare.png"}
    result = _json_safe({"dataset": ctx.dataset.name, "archs_file": str(arch_file), "seeds": seeds, "epochs": epochs,
                         "cluster_epochs": cluster_epochs, "rule": lb.RULE, "rows": rows, "agreement": agree,
                         "runs": [{k: v for k, v in r.items() if k != "pred"} for r in runs],
                         "wall_s": round(wall, 1), "files": {k: str(v) for k, v in files.items()}})
    headers, cells = table(rows)
    title = f"{ds_dir}: {len(cands)} archs × {seeds} seeds"
    write_json(files["json"], result)
    write_text(files["md"], markdown(title, headers, cells, notes))
    _figure(rows, files["png"], title)
    result["text"] = "\n".join(_plain(headers, cells) + notes + [f"written: {dest}/compare.{{png,json,md}}"])
    return result


def _json_safe(obj: Any) -> Any:
    """``obj`` with NaN and infinities as None (JSON has no NaN; e.g. the stability of a single seed)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def _plain(headers: list[str], cells: list[list[str]]) -> list[str]:
    from ..arch.cli import format_table

    return format_table([headers] + cells, right=set(range(2, len(headers))))


def _figure(rows: Sequence[dict[str, Any]], path: Path, title: str) -> None:
    """ACC (or the label-free score) per arch with error bars over seeds, and training time beside it."""
    from ..charts import leaderboard_bars

    labelled = all("acc" in r for r in rows)
    key = "acc" if labelled else "label_free_score"
    leaderboard_bars([r["arch"] for r in rows], [r[key] for r in rows], [r.get(f"{key}_std", 0.0) for r in rows],
                     [r["train_s"] for r in rows], [r["train_s_std"] for r in rows], path,
                     value_label="ACC (mean ± std over seeds)" if labelled else "label-free score (rank average)",
                     title=title)


@click.command("compare")
@click.option("-d", "--dataset", required=True, help="Dataset name or folder:PATH (case-insensitive).")
@click.option("-a", "--arch", "arch_list", default="all", show_default=True,
              help="Comma-separated arch indices or names (0,2,dcec-l2), 'auto' (the arch derived from the "
                   "data's shape), or all (auto when the dataset has no archs file).")
@click.option("--archs", type=click.Path(dir_okay=False), default=None, help="Archs JSON file [default: archs/<dataset>.json].")
@click.option("--seeds", type=click.IntRange(min=1), default=3, show_default=True, help="Seeds 0..N-1 per arch.")
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Override the pretrain epochs of every arch.")
@click.option("--cluster-epochs", type=click.IntRange(min=1), default=None, help="Override the cluster epochs of every arch.")
@click.option("--out", default=".", show_default=True, type=click.Path(file_okay=False),
              help="Root: runs go to compare/<DATASET>/seed-N/, the leaderboard to plots/<DATASET>/compare.*.")
@dataset_options
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps.")
@click.option("--json", "as_json", is_flag=True, help="Print the leaderboard as JSON (progress lines go to stderr).")
def compare_cmd(dataset, arch_list, as_json, **kw) -> None:
    """Rank archs over seeds: ACC/NMI/ARI when labels exist, plus label-free silhouette and seed stability.

    Complete stages are reused, so a killed compare resumes where it stopped.
    Example: netbuilder compare -d DIGITS -a all --seeds 3
    """
    import json

    # With --json, stdout carries only the JSON; the progress lines go to stderr.
    res = compare(dataset, arch_list, say=lambda m: click.echo(m, err=as_json), **kw)
    if as_json:
        click.echo(json.dumps({k: v for k, v in res.items() if k != "text"}, indent=2, default=str))
    else:
        click.echo(res["text"])
