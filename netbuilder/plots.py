"""Plotting functions: arrays in, a PNG file out.

Every function draws on its own :class:`matplotlib.figure.Figure` (never the pyplot state machine, so
nothing leaks between calls or threads and no GUI backend is ever touched), writes the PNG atomically
(a crash never leaves a half-written plot) and releases the figure before returning.

Images are ``N×C×H×W`` arrays, uint8 in ``[0, 255]`` or float in ``[0, 1]`` (floats outside that range are
clipped for display); ``C == 1`` is drawn in grey levels, ``C == 3`` as RGB.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, NamedTuple, Sequence

import numpy as np

from .plot_base import class_label, new_figure, palette, save_figure

_PAD = 2  # pixels of blank space between tiles of an image strip


# --------------------------------------------------------------------------------------------- helpers

def _as_float_images(images: np.ndarray) -> np.ndarray:
    """N×C×H×W (uint8 or float) → N×H×W×C float32 in [0, 1]."""
    arr = np.asarray(images)
    if arr.ndim == 3:  # N×H×W: a single channel without its axis
        arr = arr[:, None]
    if arr.ndim != 4 or arr.shape[1] not in (1, 3):
        raise ValueError(f"images must be N×C×H×W with C = 1 or 3, got shape {arr.shape}")
    if arr.dtype == np.uint8:
        out = arr.astype(np.float32) / 255.0
    else:
        out = np.clip(arr.astype(np.float32), 0.0, 1.0)
    return np.ascontiguousarray(out.transpose(0, 2, 3, 1))


def _strip(images: np.ndarray, ncol: int) -> np.ndarray:
    """Tile N×H×W×C images (N ≤ ncol) side by side into one H×W' array; gaps and empty cells are NaN."""
    n, h, w, c = images.shape
    out = np.full((h, ncol * w + (ncol - 1) * _PAD, c), np.nan, dtype=np.float32)
    for i in range(min(n, ncol)):
        x0 = i * (w + _PAD)
        out[:, x0:x0 + w] = images[i]
    return out


def _show_strip(ax: Any, strip: np.ndarray, *, cmap: str = "gray", vmin: float = 0.0, vmax: float = 1.0):
    """Draw a strip; NaN (gaps, empty cells) shows as white in every colour map."""
    import matplotlib

    if strip.shape[2] == 1:
        cm = matplotlib.colormaps[cmap].with_extremes(bad="white")
        im = ax.imshow(np.ma.masked_invalid(strip[:, :, 0]), cmap=cm, vmin=vmin, vmax=vmax,
                       interpolation="nearest")
    else:
        im = ax.imshow(np.where(np.isnan(strip), 1.0, strip), interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    return im


def _cell_width(ncol: int, max_width: float = 16.0) -> float:
    """Inches per tile: about one inch, less when many columns would make the figure too wide."""
    return min(1.0, max_width / max(ncol, 1))


def _row_label(ax: Any, text: str) -> None:
    ax.set_ylabel(text, rotation=0, ha="right", va="center", fontsize=10, labelpad=8)


def _cell_titles(ax: Any, titles: Sequence[str], w: int, fontsize: float = 8) -> None:
    for i, t in enumerate(titles):
        if t:
            ax.text(i * (w + _PAD) + w / 2, -1.0, t, ha="center", va="bottom", fontsize=fontsize, clip_on=False)


# ------------------------------------------------------------------------------------------- embeddings

def embedding_2d(x: np.ndarray, method: str = "tsne", seed: int = 0) -> np.ndarray:
    """Project ``N×…`` data to ``N×2`` float32 with t-SNE (``"tsne"``) or PCA (``"pca"``).

    t-SNE starts from a PCA initialisation (stable layouts across runs) and, for inputs wider than 50
    dimensions, works on the first 50 principal components (the usual de-noising step, and much faster).
    """
    from sklearn.decomposition import PCA

    if method not in ("tsne", "pca"):
        raise ValueError(f"method must be 'tsne' or 'pca', got {method!r}")
    data = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
    n, d = data.shape
    if n < 3:
        raise ValueError(f"need at least 3 points for a 2-D embedding, got {n}")
    if d < 2:
        data = np.concatenate([data, np.zeros((n, 2 - d), np.float32)], axis=1)
        d = 2
    if method == "pca":
        return PCA(n_components=2, random_state=seed).fit_transform(data).astype(np.float32)
    from sklearn.manifold import TSNE

    if d > 50 and n > 50:
        data = PCA(n_components=50, random_state=seed).fit_transform(data)
    # Perplexity must stay below the number of points; 30 is the customary value for thousands of points.
    perplexity = float(min(30.0, max(2.0, (n - 1) / 3.0)))
    tsne = TSNE(n_components=2, init="pca", perplexity=perplexity, random_state=seed, learning_rate="auto")
    return tsne.fit_transform(data).astype(np.float32)


def _match_clusters(labels: np.ndarray, pred: np.ndarray) -> dict[int, int]:
    """Cluster id → the class it overlaps most under the Hungarian one-to-one matching (as ACC uses)."""
    from scipy.optimize import linear_sum_assignment

    classes, t = np.unique(labels, return_inverse=True)
    clusters, p = np.unique(pred, return_inverse=True)
    counts = np.zeros((len(clusters), len(classes)), dtype=np.int64)
    np.add.at(counts, (p, t), 1)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return {int(clusters[r]): int(classes[c]) for r, c in zip(rows, cols)}


def category_colours(labels: np.ndarray | None, pred: np.ndarray | None
                     ) -> tuple[dict[int, tuple[float, ...]], dict[int, tuple[float, ...]]]:
    """Colours of each class and each cluster: (class → RGBA, cluster → RGBA); a side without data is empty.

    Every cluster that the Hungarian matching (as in ACC) pairs with a class gets that class's colour;
    the surplus clusters (more clusters than classes) get palette colours no class uses. Classes come in
    sorted order, clusters in the order of the class each one matches (surplus ones last).
    """
    classes = [] if labels is None else [int(c) for c in np.unique(labels)]
    clusters = [] if pred is None else [int(c) for c in np.unique(pred)]
    pal = palette(max(len(classes), len(clusters)))
    label_colours = {c: pal[i] for i, c in enumerate(classes)}
    if labels is None:
        return label_colours, {c: pal[i] for i, c in enumerate(clusters)}
    if pred is None:
        return label_colours, {}
    match = _match_clusters(np.asarray(labels), np.asarray(pred))
    spare = iter(pal[len(classes):])
    # Ordered like the classes they match, so both legends list the same colours in the same order.
    ordered = sorted(clusters, key=lambda c: (classes.index(match[c]) if c in match else len(classes), c))
    return label_colours, {c: label_colours[match[c]] if c in match else next(spare) for c in ordered}


def _marker_size(n: int) -> float:
    # About 3 pt² at 5000 points; larger for small sets so a few dozen points stay visible.
    return float(np.clip(15000.0 / max(n, 1), 2.0, 30.0))


def _scatter_panel(ax: Any, emb: np.ndarray, values: np.ndarray, colours: dict[int, Any], names: dict[int, str],
                   title: str, legend_title: str, order: np.ndarray, fig: Any, short_names: dict[int, str],
                   short_title: str) -> None:
    n = len(values)
    point_colours = np.array([colours[int(v)] for v in values[order]])
    ax.scatter(emb[order, 0], emb[order, 1], c=point_colours, s=_marker_size(n), alpha=0.7, linewidths=0,
               rasterized=True)
    ax.set_title(title, fontsize=11)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_aspect("equal", adjustable="datalim")
    keys = list(colours)  # in the caller's order: clusters follow the classes they match
    if len(keys) <= 20:
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], marker="o", linestyle="", markersize=7, color=colours[k], label=names[k])
                   for k in keys]
        ax.legend(handles=handles, title=legend_title, loc="upper left", bbox_to_anchor=(1.0, 1.0),
                  frameon=False, fontsize=8, title_fontsize=9, handletextpad=0.2, borderaxespad=0.2,
                  ncol=1 if len(keys) <= 12 else 2, columnspacing=0.6)
    else:
        # Too many categories for a readable legend: a colour key indexed like the categories instead.
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import BoundaryNorm, ListedColormap

        cmap = ListedColormap([colours[k] for k in keys])
        norm = BoundaryNorm(np.arange(len(keys) + 1) - 0.5, len(keys))
        cb = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, fraction=0.05, pad=0.02)
        step = math.ceil(len(keys) / 20)  # at most about 20 tick labels stay legible
        ticks = list(range(0, len(keys), step))
        cb.set_ticks(ticks, labels=[short_names[keys[i]][:14] for i in ticks], fontsize=7)
        cb.set_label(short_title, fontsize=9)


def scatter_pair(emb: np.ndarray, labels: np.ndarray | None, pred: np.ndarray | None, title: str,
                 path: str | Path, class_names: Sequence[str] | None = None, *,
                 label_title: str = "true label", pred_title: str = "predicted cluster", seed: int = 0) -> Path:
    """A 2-D embedding coloured by true label (left) and by predicted cluster (right); returns ``path``.

    Each predicted cluster takes the colour of the class it is matched to (the Hungarian matching behind
    ACC), so a good clustering looks like the same picture twice and a mistake stands out as a colour
    change. Points are drawn in a random order so that no class is systematically hidden under another.
    With ``labels`` None only the cluster panel is drawn (and with ``pred`` None only the label panel).
    """
    emb = np.asarray(emb, dtype=np.float32)
    if emb.ndim != 2 or emb.shape[1] != 2:
        raise ValueError(f"emb must be N×2, got shape {emb.shape}")
    if labels is None and pred is None:
        raise ValueError("scatter_pair needs labels, predictions or both")
    for name, arr in (("labels", labels), ("pred", pred)):
        if arr is not None and len(arr) != len(emb):
            raise ValueError(f"{name} has {len(arr)} entries for {len(emb)} points")
    order = np.random.default_rng(seed).permutation(len(emb))
    labels = None if labels is None else np.asarray(labels, dtype=np.int64)
    pred = None if pred is None else np.asarray(pred, dtype=np.int64)
    label_colours, cluster_colours = category_colours(labels, pred)

    # (values, colours, legend names, panel title, legend title, short names and title for a colour bar)
    panels: list[tuple[np.ndarray, dict[int, Any], dict[int, str], str, str, dict[int, str], str]] = []
    if labels is not None:
        names = {c: class_label(c, class_names) for c in label_colours}
        panels.append((labels, label_colours, names, f"coloured by {label_title}", label_title, names, label_title))
    if pred is not None:
        sizes = dict(zip(*(v.tolist() for v in np.unique(pred, return_counts=True))))
        if labels is not None:
            match = _match_clusters(labels, pred)
            names = {c: f"{c} ≈ {class_label(match[c], class_names)} ({sizes[c]})" if c in match
                     else f"{c} (unmatched, {sizes[c]})" for c in cluster_colours}
            key_title = f"{pred_title} ≈ class (size)"
        else:
            names = {c: f"{c} ({sizes[c]})" for c in cluster_colours}
            key_title = f"{pred_title} (size)"
        panels.append((pred, cluster_colours, names, f"coloured by {pred_title}", key_title,
                       {c: str(c) for c in cluster_colours},
                       pred_title + (" (colour of matched class)" if labels is not None else "")))

    fig = new_figure((6.6 * len(panels), 5.6))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (values, colours, names, panel_title, key_title, short, short_title) in zip(axes, panels):
        _scatter_panel(ax, emb, values, colours, names, panel_title, key_title, order, fig, short, short_title)
    fig.suptitle(title, fontsize=13)
    return save_figure(fig, path)


# ------------------------------------------------------------------------------------------ image grids

@dataclass
class _Row:
    """One strip of tiles: a label on the left, optional titles above the tiles, and how to colour them."""

    images: np.ndarray            # N×H×W×C float
    label: str = ""
    titles: Sequence[str] = ()
    cmap: str = "gray"
    vmin: float = 0.0
    vmax: float = 1.0
    heat: bool = False            # part of a shared colour scale (gets the colorbar)
    gap: float = 0.0              # extra inches above the row: separates wrapped blocks


def _rows_figure(rows: list[_Row], ncol: int, path: str | Path, title: str | None,
                 colorbar_label: str | None = None) -> Path:
    # Placed by hand in inches rather than by a layout engine: every strip has a fixed aspect ratio, and
    # the layout engines then shrink the axes and push the row labels off the page.
    h, w = rows[0].images.shape[1:3]
    cw = _cell_width(ncol)
    scale = cw / w  # inches per image pixel
    strip_w, strip_h = (ncol * w + (ncol - 1) * _PAD) * scale, h * scale
    left = 1.9 if any(r.label for r in rows) else 0.15
    heat = any(r.heat for r in rows)
    right = 1.15 if heat else 0.15
    top, bottom = (0.45 if title else 0.08), 0.1
    tops = []  # distance from the figure top to each strip's top edge
    y = top
    for r in rows:
        y += r.gap + (0.22 if any(r.titles) else 0.07)
        tops.append(y)
        y += strip_h
    width, height = left + strip_w + right, y + bottom
    fig = new_figure((width, height), layout=None)
    mappable = None
    for row, y_top in zip(rows, tops):
        ax = fig.add_axes((left / width, 1 - (y_top + strip_h) / height, strip_w / width, strip_h / height))
        im = _show_strip(ax, _strip(row.images, ncol), cmap=row.cmap, vmin=row.vmin, vmax=row.vmax)
        if row.label:
            _row_label(ax, row.label)
        if row.titles:
            _cell_titles(ax, row.titles, w)
        if row.heat:
            mappable = im
    if mappable is not None:
        span_top, span_bottom = tops[0], tops[-1] + strip_h
        cax = fig.add_axes(((left + strip_w + 0.15) / width, 1 - span_bottom / height, 0.18 / width,
                            (span_bottom - span_top) / height))
        cb = fig.colorbar(mappable, cax=cax)
        cb.ax.tick_params(labelsize=8)
        if colorbar_label:
            cb.set_label(colorbar_label, fontsize=10)
    if title:
        fig.suptitle(title, fontsize=13, y=1 - 0.1 / height, va="top")
    return save_figure(fig, path)


def image_grid(images: np.ndarray, path: str | Path, nrow: int | None = None, *, titles: Sequence[str] | None = None,
               row_labels: Sequence[str] | None = None, title: str | None = None) -> Path:
    """Images in ``nrow`` rows (filled row by row; default: a near-square grid); returns ``path``.

    ``titles`` label single images, ``row_labels`` label whole rows (on the left).
    """
    imgs = _as_float_images(images)
    n = len(imgs)
    if n == 0:
        raise ValueError("image_grid needs at least one image")
    nrow = nrow or max(1, round(math.sqrt(n)))
    ncol = math.ceil(n / nrow)
    rows = []
    for r in range(nrow):
        part = slice(r * ncol, (r + 1) * ncol)
        if len(imgs[part]) == 0:
            break
        rows.append(_Row(imgs[part], label=row_labels[r] if row_labels and r < len(row_labels) else "",
                         titles=list(titles[part]) if titles is not None else ()))
    return _rows_figure(rows, ncol, path, title)


def reconstruction_grid(originals: np.ndarray, reconstructions: np.ndarray | Mapping[str, np.ndarray],
                        path: str | Path, n: int = 10, *, title: str | None = None, ncol: int = 10) -> Path:
    """Originals above their reconstructions, ``n`` examples; returns ``path``.

    ``reconstructions`` is one array (row label "reconstruction") or a mapping of row label → array to
    compare several models on the same examples. More than ``ncol`` examples wrap into further blocks.
    """
    recs = {"reconstruction": reconstructions} if not isinstance(reconstructions, Mapping) else dict(reconstructions)
    orig = _as_float_images(originals)[:n]
    recs_f = {k: _as_float_images(v)[:n] for k, v in recs.items()}
    for k, v in recs_f.items():
        if v.shape != orig.shape:
            raise ValueError(f"reconstructions '{k}' have shape {v.shape[:1] + v.shape[3:] + v.shape[1:3]} "
                             f"but the originals {orig.shape[:1] + orig.shape[3:] + orig.shape[1:3]}")
    ncol = max(1, min(ncol, len(orig)))
    rows = []
    for start in range(0, len(orig), ncol):
        part = slice(start, start + ncol)
        rows.append(_Row(orig[part], label="original", gap=0.25 if start else 0.0))
        rows.extend(_Row(v[part], label=k) for k, v in recs_f.items())
    return _rows_figure(rows, ncol, path, title)


def cluster_samples_grid(images: np.ndarray, pred: np.ndarray, path: str | Path, per_cluster: int = 10, *,
                         labels: np.ndarray | None = None, class_names: Sequence[str] | None = None,
                         title: str | None = None, seed: int = 0) -> Path:
    """One row of random members per cluster, labelled with the cluster id and size; returns ``path``.

    With ``labels`` the row label also names the cluster's most common class and its share, which makes
    a mixed cluster obvious without reading every image.
    """
    pred = np.asarray(pred, dtype=np.int64)
    if len(pred) != len(images):
        raise ValueError(f"{len(pred)} predictions for {len(images)} images")
    rng = np.random.default_rng(seed)
    rows = []
    for c in np.unique(pred):
        members = np.flatnonzero(pred == c)
        pick = np.sort(rng.choice(members, size=min(per_cluster, len(members)), replace=False))
        label = f"cluster {c}\n{len(members)} images"
        if labels is not None:
            values, counts = np.unique(np.asarray(labels)[members], return_counts=True)
            top = int(np.argmax(counts))
            label += f"\nmostly '{class_label(int(values[top]), class_names)[:14]}' ({counts[top] / len(members):.0%})"
        rows.append(_Row(_as_float_images(images[pick]), label=label))
    if not rows:
        raise ValueError("cluster_samples_grid needs at least one image")
    return _rows_figure(rows, per_cluster, path, title)


class HeatmapResult(NamedTuple):
    """What :func:`error_heatmap_grid` wrote and the colour scale it used for every error map."""

    path: Path
    vmin: float
    vmax: float


def pixel_errors(originals: np.ndarray, reconstructions: np.ndarray) -> np.ndarray:
    """Per-pixel squared error ``N×H×W`` (mean over channels), both inputs scaled to [0, 1] first."""
    a = np.asarray(originals)
    b = np.asarray(reconstructions)
    if a.shape != b.shape:
        raise ValueError(f"originals {a.shape} and reconstructions {b.shape} differ in shape")
    a = a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else a.astype(np.float32)
    b = b.astype(np.float32) / 255.0 if b.dtype == np.uint8 else b.astype(np.float32)
    if a.ndim == 3:
        return (a - b) ** 2
    return ((a - b) ** 2).mean(axis=1)


def error_heatmap_grid(originals: np.ndarray, reconstructions: np.ndarray, path: str | Path,
                       titles: Sequence[str] | None = None, *, errors: np.ndarray | None = None,
                       vmin: float | None = None, vmax: float | None = None, title: str | None = None,
                       ncol: int = 10, cmap: str = "magma", second: str = "reconstruction") -> HeatmapResult:
    """Original / reconstruction / per-pixel error rows with ONE colour scale for all error maps (``second``
    names the middle row, e.g. "nearest training image" for the knn score).

    The error maps share ``vmin``/``vmax`` (default: the global min and max of ``errors``) and one colorbar,
    so a brighter map means a larger error, comparable across the whole grid. ``errors`` (``N×H×W``)
    defaults to :func:`pixel_errors`; pass ``vmin``/``vmax`` to keep the scale of another figure (e.g. to
    compare normal and anomalous images). ``titles`` (e.g. anomaly scores) go above each example.
    """
    err = pixel_errors(originals, reconstructions) if errors is None else np.asarray(errors, dtype=np.float32)
    orig = _as_float_images(originals)
    rec = _as_float_images(reconstructions)
    if err.shape != orig.shape[:3]:
        raise ValueError(f"errors have shape {err.shape}, expected {orig.shape[:3]}")
    lo = float(np.min(err)) if vmin is None else float(vmin)
    hi = float(np.max(err)) if vmax is None else float(vmax)
    if not hi > lo:  # a constant map (e.g. perfect reconstructions) still needs a non-empty colour range
        hi = lo + 1e-12
    ncol = max(1, min(ncol, len(orig)))
    rows = []
    for start in range(0, len(orig), ncol):
        part = slice(start, start + ncol)
        rows.append(_Row(orig[part], label="original", titles=list(titles[part]) if titles is not None else (),
                         gap=0.25 if start else 0.0))
        rows.append(_Row(rec[part], label=second))
        rows.append(_Row(err[part][..., None], label="squared error", cmap=cmap, vmin=lo, vmax=hi, heat=True))
    out = _rows_figure(rows, ncol, path, title, colorbar_label="per-pixel squared error")
    return HeatmapResult(out, lo, hi)


def pca_scatter(x: np.ndarray, labels: np.ndarray | None, pred: np.ndarray | None, path: str | Path, *,
                dims: int = 2, title: str = "", class_names: Sequence[str] | None = None, seed: int = 0) -> Path:
    """The first 2 or 3 principal components of ``x`` (N × d), coloured by cluster and, when ``labels`` exist,
    by label (the colours of :func:`category_colours`); 3-D panels use matplotlib's ``3d`` projection."""
    from sklearn.decomposition import PCA

    if dims not in (2, 3):
        raise ValueError(f"dims must be 2 or 3, got {dims}")
    data = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
    if data.shape[1] < dims:  # fewer features than axes: pad with zeros so PCA still has `dims` components
        data = np.concatenate([data, np.zeros((len(data), dims - data.shape[1]), np.float32)], axis=1)
    pca = PCA(n_components=dims, random_state=seed).fit(data)
    emb = pca.transform(data)
    share = ", ".join(f"PC{i + 1} {v:.0%}" for i, v in enumerate(pca.explained_variance_ratio_))
    if dims == 2:
        return scatter_pair(emb, labels, pred, f"{title}\nPCA ({share} of the variance)", path,
                            class_names=class_names, seed=seed)
    label_colours, cluster_colours = category_colours(labels, pred)
    panels = [(v, c, t) for v, c, t in ((labels, label_colours, "true label"), (pred, cluster_colours, "cluster"))
              if v is not None]
    if not panels:
        raise ValueError("pca_scatter needs labels, predictions or both")
    import mpl_toolkits.mplot3d  # noqa: F401  (registers the "3d" projection on older matplotlib)

    order = np.random.default_rng(seed).permutation(len(emb))
    fig = new_figure((6.0 * len(panels), 5.4))
    for i, (values, colours, what) in enumerate(panels, start=1):
        ax = fig.add_subplot(1, len(panels), i, projection="3d")
        values = np.asarray(values, dtype=np.int64)
        ax.scatter(*emb[order].T, c=np.array([colours[int(v)] for v in values[order]]), s=_marker_size(len(emb)),
                   alpha=0.7, linewidths=0, depthshade=False, rasterized=True)
        ax.set(title=f"coloured by {what}", xlabel="PC1", ylabel="PC2", zlabel="PC3")
        ax.tick_params(labelsize=6)
        if len(colours) <= 20:
            from matplotlib.lines import Line2D

            names = {c: class_label(c, class_names) if what == "true label" else str(c) for c in colours}
            ax.legend(handles=[Line2D([], [], marker="o", linestyle="", color=colours[c], label=names[c])
                               for c in colours], title=what, loc="upper left", fontsize=7, title_fontsize=8,
                      frameon=False, ncol=1 if len(colours) <= 12 else 2)
    fig.suptitle(f"{title}\nPCA 3-D ({share} of the variance)", fontsize=12)
    return save_figure(fig, path)
