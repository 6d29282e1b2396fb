"""Plots of signal windows (``N×C×L`` float arrays, standardised): the counterparts of the image grids of
:mod:`netbuilder.plots` for time series — members of each cluster as line plots, and reconstructions drawn over
their inputs. Same conventions: one Figure per call, written atomically, arrays in and a PNG out.

Multichannel windows draw every channel in one panel, channel ``c`` shifted down by ``OFFSET·c`` (the values are
standardised, so a few units keep the channels apart); more than ``MAX_CHANNELS`` channels draw only the first.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .plot_base import class_label, new_figure, palette, save_figure

OFFSET = 4.0
MAX_CHANNELS = 8


def _stacked(window: np.ndarray) -> np.ndarray:
    """One window ``C×L`` as lines ``C'×L`` ready to draw: channel ``c`` shifted down by ``OFFSET·c``."""
    w = np.asarray(window, dtype=np.float32)[:MAX_CHANNELS]
    return w - OFFSET * np.arange(len(w), dtype=np.float32)[:, None]


def _channel_note(n_channels: int) -> str:
    if n_channels == 1:
        return ""
    shown = min(n_channels, MAX_CHANNELS)
    return f" — channels 0-{shown - 1} of {n_channels}, each {OFFSET:g} lower than the previous"


def _check(series: np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(series)
    if arr.ndim != 3:
        raise ValueError(f"{what}: expected signal windows N×C×L, got shape {arr.shape}")
    return arr


def cluster_series_grid(series: np.ndarray, pred: np.ndarray, path: str | Path, per_cluster: int = 10, *,
                        labels: np.ndarray | None = None, class_names: Sequence[str] | None = None,
                        title: str | None = None, seed: int = 0) -> Path:
    """One panel per cluster: up to ``per_cluster`` random members as thin lines and the cluster mean as a thick
    one, titled with the cluster size (and, with ``labels``, its most common class and share)."""
    series = _check(series, "cluster_series_grid")
    pred = np.asarray(pred, dtype=np.int64)
    if len(pred) != len(series):
        raise ValueError(f"{len(pred)} predictions for {len(series)} windows")
    clusters = np.unique(pred)
    if not len(clusters):
        raise ValueError("cluster_series_grid needs at least one window")
    rng = np.random.default_rng(seed)
    ncol = min(4, len(clusters))
    nrow = -(-len(clusters) // ncol)
    fig = new_figure((4.0 * ncol, 2.6 * nrow + 0.6))
    axes = np.atleast_1d(fig.subplots(nrow, ncol, squeeze=False, sharex=True)).ravel()
    colours = palette(len(clusters))
    for ax, c, colour in zip(axes, clusters, colours):
        members = np.flatnonzero(pred == c)
        for i in np.sort(rng.choice(members, size=min(per_cluster, len(members)), replace=False)):
            for line in _stacked(series[i]):
                ax.plot(line, color=colour, alpha=0.45, linewidth=0.8)
        for line in _stacked(series[members].mean(0)):
            ax.plot(line, color="black", linewidth=1.6)
        text = f"cluster {c}: {len(members)} windows"
        if labels is not None:
            values, counts = np.unique(np.asarray(labels)[members], return_counts=True)
            top = int(np.argmax(counts))
            text += f"\nmostly '{class_label(int(values[top]), class_names)[:14]}' ({counts[top] / len(members):.0%})"
        ax.set_title(text, fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in axes[len(clusters):]:
        ax.set_axis_off()
    fig.suptitle((title or "members of each cluster") + "\nthin: random members; black: cluster mean"
                 + _channel_note(series.shape[1]), fontsize=10)
    return save_figure(fig, path)


def reconstruction_series_grid(originals: np.ndarray, reconstructions: Mapping[str, np.ndarray],
                               path: str | Path, n: int = 10, *, title: str | None = None) -> Path:
    """One panel per example (``n`` at most): the input in black with each model's reconstruction over it."""
    orig = _check(originals, "reconstruction_series_grid")[:n]
    recs = {k: _check(v, f"reconstructions '{k}'")[:n] for k, v in reconstructions.items()}
    for k, v in recs.items():
        if v.shape != orig.shape:
            raise ValueError(f"reconstructions '{k}' have shape {v.shape} but the originals {orig.shape}")
    ncol = min(5, max(1, len(orig)))
    nrow = -(-len(orig) // ncol)
    fig = new_figure((3.4 * ncol, 2.3 * nrow + 0.8))
    axes = np.atleast_1d(fig.subplots(nrow, ncol, squeeze=False, sharex=True)).ravel()
    colours = palette(max(1, len(recs)))
    for i, ax in enumerate(axes):
        if i >= len(orig):
            ax.set_axis_off()
            continue
        for j, line in enumerate(_stacked(orig[i])):
            ax.plot(line, color="black", linewidth=1.4, label="input" if j == 0 else None)
        for (name, rec), colour in zip(recs.items(), colours):
            for j, line in enumerate(_stacked(rec[i])):
                ax.plot(line, color=colour, linewidth=1.0, alpha=0.85, label=name if j == 0 else None)
        ax.set_title(f"example {i}", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0].legend(fontsize=7, loc="best")
    fig.suptitle((title or "reconstructions") + _channel_note(orig.shape[1]), fontsize=10)
    return save_figure(fig, path)
