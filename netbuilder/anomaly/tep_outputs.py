"""Files of the TEP fault-detection report: the reusable detector (weights, standardisation, thresholds, PCA
model), the per-sample scores, the report (JSON and markdown), the score-against-time plot and the manifest
(written last: its presence marks the run complete). Every file is written atomically (:mod:`netbuilder.fileio`).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from ..datasets.checksum import file_digest, fingerprint
from ..fileio import remove, write_json, write_text, write_with
from ..stages.persist import save_weights, write_manifest
from ..stages.workspace import MANIFEST, Workspace
from . import process

FILES = {"weights": "weights.safetensors", "standardizer": "standardizer.json", "threshold": "threshold.json",
         "pca": "pca.json", "residual": "residual_t2.json", "scores": "scores.npz", "report": "report.json",
         "markdown": "report.md"}


def verdict_line(report: dict[str, Any]) -> str:
    """One sentence on the pre-registered comparison (empty when the report has no such rows)."""
    v = report.get("verdict")
    if not v:
        return ""
    return (f"{v['detector']} vs {v['baseline']}: mean FDR {v['fdr_gain']:+.3f} at FAR {v['far']:.3f} on d00_te.dat "
            f"(goal: {v['goal']}): {'met' if v['met'] else 'not met'}")


def _markdown(report: dict[str, Any]) -> str:
    rows = report["rows"]
    ensemble = report.get("ensemble", 1)
    ae = (f"Autoencoder rows: {ensemble} networks per fit (seeds {report['seed']} + 1000·m), reconstructing with "
          f"their mean. " if ensemble > 1 else "")
    lines = [f"# TEP fault detection: {report['arch']} ({report['score']}) vs PCA", "",
             f"{ae}Threshold: {1 - report['far_target']:.3g} quantile of the out-of-fold scores of "
             f"{report['n_oof_samples']} samples of d00.dat ({report['folds']} contiguous blocks, each scored by "
             f"detectors fitted on the rest less the window before it); the detectors reported are fitted on all "
             f"{report['n_fit_samples']} samples of d00.dat. "
             f"Window {report['window']} (a window's score belongs to its last sample; the first "
             f"{report['window'] - 1} samples of each run are unscored and excluded). Delay: samples from the onset "
             f"to the first of {report['alarm_run']} consecutive alarms. Means over faults "
             f"{', '.join(map(str, rows[0]['mean']['faults']))}.", "",
             "| detector | mean FDR | mean AUC | mean delay | FAR on d00_te | threshold |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        m = r["mean"]
        delay = "-" if m["delay"] is None else f"{m['delay']:.1f}"
        lines.append(f"| {r['name']} | {m['fdr']:.3f} | {m['auc']:.3f} | {delay} | {r['far']:.3f} | "
                     f"{r['threshold']:.4g} |")
    if verdict_line(report):
        lines += ["", verdict_line(report) + "."]
    lines += ["", "Per fault (run evaluated: test = dNN_te.dat, train = dNN.dat):", "", "```",
              process.format_table(rows, report["faults"]), "```", ""]
    return "\n".join(lines)


def report_text(report: dict[str, Any]) -> str:
    """What ``netbuilder anomaly -d TEP ... --all-classes`` prints: the summary, the per-fault table, paths."""
    skipped = ", ".join(map(str, report["excluded_from_mean"]))
    head = (f"TEP fault detection, {report['arch']} ({report['score']}) vs PCA ({report['pca']['n_components']} "
            f"components, {report['pca']['explained_variance']:.0%} variance): thresholds at "
            f"{report['far_target']:.3g} false alarms on held-out normal data; means over "
            f"{len(report['rows'][0]['mean']['faults'])} faults (not {skipped})")
    lines = [head, process.summary_table(report["rows"]), *filter(None, [verdict_line(report)]), "",
             process.format_table(report["rows"], report["faults"]),
             f"report: {report['dir']}"]
    if report["plots"]:
        lines.append(f"plots: {', '.join(report['plots'].values())}")
    lines.append(f"wall time: {report['wall_time_s']:.1f} s (training {report['train_s']:.1f} s)")
    return "\n".join(lines)


def save_report(report: dict[str, Any], ws: Workspace, stage: str, *, spec: dict[str, Any], runs: Any,
                detector: Any, pca: Any, scores: dict[str, dict[str, np.ndarray]], plots: bool,
                t0: float) -> dict[str, Any]:
    """Write every file of the report into ``ws``'s ``stage`` directory (and plots); returns ``report`` with
    ``dir``, ``plots`` and ``wall_time_s`` added."""
    out_dir = ws.stage_dir(stage)
    remove(out_dir / MANIFEST)  # a rerun is incomplete until its manifest is written again
    save_weights(out_dir / FILES["weights"], detector.model.state_dict())
    write_json(out_dir / FILES["standardizer"], {**detector.scaler.record(),
                                                 "fitted_on": f"d00.dat samples 0..{report['n_fit_samples'] - 1}"})
    write_json(out_dir / FILES["threshold"], {
        "far_target": report["far_target"], "window": report["window"], "score": report["score"],
        "thresholds": {r["name"]: r["threshold"] for r in report["rows"]}, "spec": spec,
        "hyperparameters": report["hyperparameters"],
        "rule": "alarm iff score > threshold; the score of the window ending at sample t belongs to t",
        "threshold_from": f"{1 - report['far_target']:.6g} quantile of {report['folds']}-fold out-of-fold "
                          f"scores of d00.dat", "fold_blocks": report["fold_blocks"]})
    residual = {"mean": detector.residual_mean.tolist(), "precision": detector.residual_precision.tolist()}
    write_json(out_dir / FILES["residual"], residual)
    pca.save(out_dir / FILES["pca"])
    arrays = {f"{name}/{run}": s.astype(np.float32) for name, per_run in scores.items() for run, s in per_run.items()}
    write_with(out_dir / FILES["scores"], lambda tmp: _savez(tmp, arrays))
    plot_files = _plot(report, ws, stage, runs, scores) if plots else {}
    report = {**report, "dir": str(out_dir), "plots": {k: str(v) for k, v in plot_files.items()},
              "wall_time_s": round(time.perf_counter() - t0, 1)}
    write_json(out_dir / FILES["report"], report)
    write_text(out_dir / FILES["markdown"], _markdown(report))
    source = fingerprint((path.name, file_digest(path)) for path in runs.files())
    first = report["rows"][0]
    write_manifest(out_dir, {
        "stage": stage, "protocol": {"protocol": "one-class", "target": "normal operation (d00.dat)"},
        "score": report["score"],
        "dataset": {"name": "TEP", "fingerprint": source, "source": str(runs.train.file.parent),
                    "shape": [len(detector.scaler.mean), report["window"]]},
        "arch": {"file": report["arch_file"], "index": report["arch_index"], "name": spec["name"], "spec": spec},
        "hyperparameters": report["hyperparameters"], "seed": report["seed"], "device": report["device"],
        "metrics": {"far": first["far"], **{k: first["mean"][k] for k in process.SUMMARY_COLUMNS}},
        "timings": {"train_s": report["train_s"], "total_s": report["wall_time_s"]},
        "files": dict(FILES), "plots": report["plots"],
        "logs": {"log": str(ws.log_stem(stage).with_suffix(".log"))}})
    return report


def _savez(path: Path, arrays: dict[str, np.ndarray]) -> None:
    # Through a file handle: np.savez(path) appends ".npz" to a temporary name that lacks it.
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)


def _plot(report: dict[str, Any], ws: Workspace, stage: str, runs: Any,
          scores: dict[str, dict[str, np.ndarray]]) -> dict[str, Path]:
    from .plots import score_timelines
    from .tep_report import PLOT_FAULTS, onset

    names = [r["name"] for r in report["rows"]]
    # The autoencoder's window score and residual T² against the classical residual statistic.
    shown_rows = [names[0], *(n for n in names if n.endswith("residual T²")), names[-1]]
    shown = [f for f in PLOT_FAULTS if f in runs.faults] or sorted(runs.faults)[:4]
    panels = [("normal test run d00_te.dat", {n: scores[n]["d00_te"] for n in shown_rows}, None)]
    for f in shown:
        run = runs.faults[f]
        fdr = {n: r["per_fault"][f]["fdr"] for n, r in zip(names, report["rows"])}
        panels.append((f"fault {f} ({run.file.name}): FDR " + ", ".join(f"{n} {fdr[n]:.2f}" for n in shown_rows),
                       {n: scores[n][f"d{f:02d}"] for n in shown_rows}, onset(run)))
    thresholds = {r["name"]: r["threshold"] for r in report["rows"]}
    path = score_timelines(panels, thresholds, ws.plots_dir / stage / "scores_time.png",
                           title=f"TEP: score against time, thresholds at {report['far_target']:.3g} false alarms")
    return {"scores_time": path}
