"""Charts of numbers: training curves per stage, the compare leaderboard, the cluster-count curve."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .plot_base import new_figure, palette, save_figure

# Record fields of the epoch logs that are bookkeeping, not loss parts.
_META_KEYS = {"stage", "epoch", "step", "lr", "seconds", "images_per_s", "acc", "nmi", "ari", "clusters",
              "degenerate"}
_BASE_LOSS_TITLES = {"loss": "total loss", "rec": "reconstruction loss"}


def _loss_titles() -> dict[str, str]:
    """Titles of the loss parts in epoch logs: the reconstruction parts, then each clustering objective's."""
    from .core.objectives import OBJECTIVES

    out = dict(_BASE_LOSS_TITLES)
    for cls in OBJECTIVES.values():
        out.update(cls.loss_titles)
    return out


def _epoch_records(records: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    # Keep the last record per epoch: a resumed run may log an epoch twice.
    by_epoch: dict[int, Mapping[str, Any]] = {}
    for r in records:
        if isinstance(r.get("epoch"), (int, float)):
            by_epoch[int(r["epoch"])] = r
    return [by_epoch[e] for e in sorted(by_epoch)]


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def training_curves(records_by_stage: Mapping[str, Sequence[Mapping[str, Any]]], path: str | Path, *,
                    title: str | None = None) -> Path:
    """Loss parts and ACC/NMI per epoch, one subplot each, one colour per stage; returns ``path``.

    Stages after ``pretrain`` start from the pretrained model, so their epochs are drawn after pretrain's
    last epoch (a dotted line marks where clustering starts): the x axis reads as one training timeline.
    """
    stages = {s: _epoch_records(r) for s, r in records_by_stage.items()}
    stages = {s: r for s, r in stages.items() if r}
    if not stages:
        raise ValueError("training_curves needs at least one epoch record")
    offset = {s: 0 for s in stages}
    pre_end = int(stages["pretrain"][-1]["epoch"]) if "pretrain" in stages else 0
    for s in stages:
        if s != "pretrain":
            offset[s] = pre_end

    loss_keys: list[str] = []
    for recs in stages.values():
        for r in recs:
            for k, v in r.items():
                if k not in _META_KEYS and _is_number(v) and k not in loss_keys:
                    loss_keys.append(k)
    titles = _loss_titles()
    loss_keys.sort(key=lambda k: (list(titles).index(k) if k in titles else 99, k))
    metric_keys = [k for k in ("acc", "nmi") if any(_is_number(r.get(k)) for recs in stages.values() for r in recs)]
    # A stage whose only loss is "loss" (pretrain) is pure reconstruction: draw it on the reconstruction
    # panel too, so that panel shows whether clustering degrades the reconstructions.
    rec_alias = {s: "loss" if "rec" in loss_keys and not any(
        k in r for r in recs for k in loss_keys if k != "loss") else "rec" for s, recs in stages.items()}
    panels = [(k, titles.get(k, k)) for k in loss_keys] + [(k, k.upper()) for k in metric_keys]

    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig = new_figure((4.6 * ncols + 1.8, 3.4 * nrows + 0.6))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    from matplotlib.ticker import MaxNLocator

    pal = palette(max(10, len(stages)))
    colour = {s: pal[i] for i, s in enumerate(stages)}
    for ax, (key, panel_title) in zip(axes, panels):
        lows, highs = [], []
        for s, recs in stages.items():
            field = rec_alias[s] if key == "rec" else key
            pts = [(int(r["epoch"]) + offset[s], float(r[field])) for r in recs if _is_number(r.get(field))]
            if not pts:
                continue
            xs, ys = zip(*pts)
            lows.append(min(ys))
            highs.append(max(ys))
            ax.plot(xs, ys, color=colour[s], marker="o" if len(pts) <= 30 else None, markersize=3.5,
                    linewidth=1.6, label=s)
        if pre_end and len(stages) > 1:
            ax.axvline(pre_end + 0.5, color="0.6", linestyle=":", linewidth=1)
            # Losses fall and metrics rise, so the free corner at the boundary is the top for losses and
            # the bottom for metrics.
            at_top = key in loss_keys
            ax.text(pre_end + 0.5, 0.98 if at_top else 0.02, "clustering ", transform=ax.get_xaxis_transform(),
                    rotation=90, ha="right", va="top" if at_top else "bottom", fontsize=7, color="0.45")
        if key in loss_keys and lows and min(lows) > 0 and max(highs) > 10 * min(lows):
            ax.set_yscale("log")  # a loss falling over orders of magnitude; a linear scale would flatten the tail
        if key in metric_keys:
            lo, hi = ax.get_ylim()
            ax.set_ylim(max(0.0, lo), min(1.0, hi) if hi > 0.05 else 1.0)
        ax.set_title(panel_title, fontsize=11)
        ax.set_xlabel("epoch", fontsize=9)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        ax.tick_params(which="both", labelsize=8)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=colour[s], linewidth=2, label=s) for s in stages]
    fig.legend(handles=handles, loc="outside right upper", title="stage", frameon=False, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=13)
    return save_figure(fig, path)


# ------------------------------------------------------------------------------------------ leaderboard

def leaderboard_bars(names: Sequence[str], values: Sequence[float], errors: Sequence[float],
                     seconds: Sequence[float], seconds_errors: Sequence[float], path: str | Path, *,
                     value_label: str, title: str | None = None) -> Path:
    """Two panels sharing the y axis (one row per entry, best first as given): a score with error bars, and the
    time each entry took with error bars; returns ``path``. NaN values draw no bar (e.g. a score a single
    seed cannot give)."""
    n = len(names)
    if n == 0 or not (len(values) == len(errors) == len(seconds) == len(seconds_errors) == n):
        raise ValueError("leaderboard_bars needs one value, error, time and time error per name")
    fig = new_figure((10.0, 1.2 + 0.45 * n))
    ax_score, ax_time = fig.subplots(1, 2, sharey=True, gridspec_kw={"width_ratios": [3, 2]})
    y = np.arange(n)
    colours = palette(max(n, 1))
    # Horizontal bars keep long arch names readable; the first entry goes on top.
    for ax, vals, errs, label in ((ax_score, values, errors, value_label),
                                  (ax_time, seconds, seconds_errors, "training time per seed (s)")):
        v = np.asarray(vals, dtype=float)
        e = np.nan_to_num(np.asarray(errs, dtype=float))
        ax.barh(y, np.nan_to_num(v), xerr=e, color=colours[:n], alpha=0.85, capsize=3,
                error_kw={"elinewidth": 1, "ecolor": "0.25"})
        for yi, vi, ei in zip(y, v, e):
            if math.isfinite(vi):  # the value beside its error bar, not on it
                ax.text(vi + ei, yi, f"  {vi:.3g}", va="center", ha="left", fontsize=8)
        ax.margins(x=0.12)
        ax.set_xlabel(label, fontsize=9)
        ax.grid(True, axis="x", alpha=0.3)
        ax.tick_params(labelsize=8)
    finite = [float(x) + float(e) for x, e in zip(values, np.nan_to_num(np.asarray(errors, float))) if math.isfinite(x)]
    if finite and 0 <= min(finite) and max(finite) <= 1.0:
        ax_score.set_xlim(0, 1.08)  # scores in [0, 1] (ACC, rank scores) on their full scale
    ax_score.set_yticks(y, [str(s) for s in names])
    ax_score.invert_yaxis()
    if title:
        fig.suptitle(title, fontsize=12)
    return save_figure(fig, path)


# ---------------------------------------------------------------------------------------- cluster count

def cluster_count_curve(ks: Sequence[int], gaps: Sequence[float], eigenvalues: Sequence[float], chosen: int,
                        path: str | Path, *, title: str | None = None) -> Path:
    """How ``--clusters auto`` chose: the Laplacian's smallest eigenvalues (left) and the gap after each
    candidate k (right), the chosen k highlighted; returns ``path``."""
    fig = new_figure((10.0, 3.8))
    ax_ev, ax_gap = fig.subplots(1, 2)
    idx = np.arange(1, len(eigenvalues) + 1)
    ax_ev.plot(idx, eigenvalues, marker="o", markersize=4, color="0.3")
    ax_ev.axvline(chosen + 0.5, color="tab:red", linestyle=":", linewidth=1.2)
    ax_ev.set(title="smallest eigenvalues of the normalised Laplacian", xlabel="i", ylabel="λ_i")
    colours = ["tab:red" if k == chosen else "tab:blue" for k in ks]
    ax_gap.bar(list(ks), list(gaps), color=colours)
    ax_gap.set(title=f"eigengap λ(k+1) − λ(k): chose k = {chosen}", xlabel="k (clusters)", ylabel="gap")
    from matplotlib.ticker import MaxNLocator

    for ax in (ax_ev, ax_gap):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        ax.tick_params(labelsize=8)
        ax.title.set_fontsize(10)
    if title:
        fig.suptitle(title, fontsize=12)
    return save_figure(fig, path)
