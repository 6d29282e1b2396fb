"""Stage 3: the metrics table — raw pixels (or raw series) + k-means and + UMAP + k-means, autoencoder + k-means,
and each clustering stage (plus the extra rows a stage's objective reports, e.g. dcca's best activation map)."""
from __future__ import annotations

import json
import time
from typing import Any, Callable

import numpy as np

from ..clustering import kmeans, manifold_embed
from ..errors import StageError
from ..fileio import write_json
from ..metrics import clustering_scores
from ..core.arrays import raw_rows
from ..core.objectives import OBJECTIVES, cluster_settings, objective_names, stage_name
from .context import StageContext, prepare
from .evaluate import raw_name

COLUMNS = ("acc", "nmi", "ari", "clusters")


#: Above this many samples the raw-input UMAP row is skipped: UMAP on MNIST's 70,000 x 784 pixels alone would add
#: minutes to a main job that otherwise takes six.
PIXEL_UMAP_LIMIT = 20_000


def _cached_baseline(ctx: StageContext, key: str, compute: Callable[[np.ndarray], np.ndarray],
                     **recorded: Any) -> dict[str, Any]:
    """The scores of ``compute(raw rows)``'s predictions, cached under ``key`` per dataset fingerprint (a raw-input
    baseline does not depend on the arch)."""
    cache = ctx.ws.dataset_dir / f"{key}.json"
    if cache.exists():
        try:
            data = json.loads(cache.read_text())
            if data.get("fingerprint") == ctx.dataset.fingerprint:
                return data["metrics"]
        except (json.JSONDecodeError, KeyError):
            pass
    x = raw_rows(ctx.dataset.images)
    t0 = time.perf_counter()
    metrics = clustering_scores(ctx.dataset.labels, compute(x))
    metrics["seconds"] = round(time.perf_counter() - t0, 2)
    write_json(cache, {"fingerprint": ctx.dataset.fingerprint, **recorded, "metrics": metrics})
    return metrics


def pixel_kmeans(ctx: StageContext, k: int, seed: int = 0, n_init: int = 10) -> dict[str, Any]:
    """k-means on raw pixels (signals: the standardised series)."""
    return _cached_baseline(ctx, f"pixels-kmeans-k{k}-seed{seed}",
                            lambda x: kmeans(x, k, n_init=n_init, seed=seed)[0], n_init=n_init)


def pixel_umap(ctx: StageContext, k: int, seed: int = 0, n_init: int = 10) -> dict[str, Any]:
    """UMAP + k-means on raw pixels with the manifold step's own defaults (``k`` components, min_dist 0, the
    ``manifold_neighbors`` default): the strongest five-line baseline a deep route has to beat; skipped above
    :data:`PIXEL_UMAP_LIMIT` samples."""
    n = len(ctx.dataset.images)
    if n > PIXEL_UMAP_LIMIT:
        return {"status": f"skipped: {n} samples > {PIXEL_UMAP_LIMIT}"}
    neighbors = int(cluster_settings("none")["manifold_neighbors"].default)

    def compute(x: np.ndarray) -> np.ndarray:
        return kmeans(manifold_embed(x, "umap", k, n_neighbors=neighbors, seed=seed), k, n_init=n_init,
                      seed=seed)[0]

    return _cached_baseline(ctx, f"pixels-umap-k{k}-n{neighbors}-seed{seed}", compute, n_neighbors=neighbors,
                            n_init=n_init)


def row_titles(signal: bool = False) -> dict[str, str]:
    """Row titles: the two baselines, then one row per registered clustering objective."""
    return {"pixels": f"{raw_name(signal)} + k-means", "pixels-umap": f"{raw_name(signal)} + UMAP + k-means",
            "pretrain": "autoencoder + k-means",
            **{stage_name(n): OBJECTIVES[n].title for n in objective_names()}}


def collect(ctx: StageContext, *, seed: int = 0, pixels: bool = True) -> list[dict[str, Any]]:
    """One row per method; stages that were not run appear as such instead of failing."""
    pre = ctx.ws.manifest("pretrain")
    if pre is None:
        raise StageError(f"nothing to report for {ctx.dataset.name} / {ctx.arch_name}: no pretrain output under "
                         f"{ctx.ws.stage_dir('pretrain')}; run `netbuilder pretrain -d {ctx.dataset.name} "
                         f"-a {ctx.arch_name}` first")
    if ctx.dataset.labels is None:
        raise StageError(f"{ctx.dataset.name} has no labels: ACC/NMI/ARI need ground truth "
                         "(use a folder with one subfolder per class)")
    k = ctx.n_clusters
    rows = []
    if pixels:
        rows.append({"method": "pixels", **pixel_kmeans(ctx, k, seed)})
        rows.append({"method": "pixels-umap", **pixel_umap(ctx, k, seed)})
    rows.append({"method": "pretrain", **pre.get("metrics", {})})
    for stage in (stage_name(n) for n in objective_names()):
        m = ctx.ws.manifest(stage)
        rows.append({"method": stage, **m["metrics"]} if m else {"method": stage, "status": "not run"})
        # Rows an objective adds to its own (e.g. dcca: the activation map with the best ACC), titled already.
        rows.extend(dict(r) for r in ((m or {}).get("objective") or {}).get("rows") or [])
    titles = row_titles(ctx.dataset.is_signal)
    for r in rows:
        r.setdefault("title", titles.get(r["method"], r["method"]))
    return rows


def format_table(rows: list[dict[str, Any]], header: str = "") -> str:
    """A plain-text table like the original project's, computed now."""
    lines = [header] if header else []
    w = max([34] + [len(r["title"]) + 2 for r in rows])
    lines.append(f"{'method':<{w}}{'ACC':>8}{'NMI':>8}{'ARI':>8}{'clusters':>10}")
    for r in rows:
        if r.get("status"):
            lines.append(f"{r['title']:<{w}}  {r['status']}")
            continue
        lines.append(f"{r['title']:<{w}}{r.get('acc', float('nan')):>8.4f}{r.get('nmi', float('nan')):>8.4f}"
                     f"{r.get('ari', float('nan')):>8.4f}{r.get('clusters', 0):>10d}")
    lines.append("ACC: Hungarian-matched accuracy; NMI: arithmetic-mean normalisation; ARI: adjusted Rand index.")
    return "\n".join(lines)


def metrics(dataset: str, arch: str | int = 0, *, archs: str | None = None, data_dir: str | None = None,
            split: str = "all", image_size: int | None = None, window: int | None = None,
            stride: int | None = None, label_column: str | None = None, out: str = ".", seed: int = 0,
            pixels: bool = True) -> list[dict[str, Any]]:
    """Python API: the metrics rows for a dataset/arch pair."""
    ctx = prepare(dataset, arch, archs=archs, data_dir=data_dir, split=split, image_size=image_size, window=window,
                  stride=stride, label_column=label_column, out=out, device="cpu", progress=False)
    return collect(ctx, seed=seed, pixels=pixels)
