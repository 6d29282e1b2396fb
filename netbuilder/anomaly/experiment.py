"""One anomaly-detection experiment on a named dataset: protocol split → detector → report, files, plots.

Outputs of a run (``<stage>`` = ``anomaly-<protocol>-<target>-<score>``):

* ``<out>/saved_params/<DATASET>/<arch>/<stage>/``: ``weights.safetensors``, ``centroids.npy`` (cosine,
  centroid, dcca), ``train_scores.npy``, ``threshold.json`` (threshold, how it was chosen, score statistics,
  the detector's parameters and arch spec: everything ``predict`` needs), ``scores.csv`` (the test images:
  index, score, prediction, label, class, file), ``report.json`` and ``manifest.json`` (written last: its
  presence marks the run complete).
* ``<out>/plots/<DATASET>/<arch>/<stage>/``: ``scores.png`` (histograms + threshold), ``roc.png``,
  ``extremes.png`` (most anomalous / most typical test images, reconstructions, error maps).
* ``<out>/logs/<DATASET>/<arch>/<stage>.log`` / ``.jsonl``: the training log.

``run_all_classes`` loops the target over every class and also writes
``<out>/saved_params/<DATASET>/<arch>/anomaly-<protocol>-all-<score>/table.json``.
"""
from __future__ import annotations

import io
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..arch import choose_arch
from ..core.score_mixes import part_folder
from ..core.scores import SCORE_TITLES, SCORES, default_score, get_score
from ..datasets import Dataset, Standardizer, get_spec, load_dataset
from ..datasets.registry import dataset_modality, located_kind
from ..errors import NetbuilderError
from ..fileio import remove, write_json, write_text
from ..rules import has_unit_codes
from ..stages.persist import write_manifest
from ..stages.workspace import MANIFEST, Workspace, safe_name
from .estimator import AutoencoderAnomalyDetector, TrainingCollapseWarning, not_l2_message
from .protocols import PROTOCOLS, TEST_FRACTION, VAL_FRACTION, ProtocolSplit, class_name, make_split
from .report import METRIC_COLUMNS, evaluate, mean_row, part_columns, parts_text
from .threshold import LABELLED, ThresholdWarning, check_contamination, parse_threshold

# A signal detector's training standardisation, saved beside its weights (see predict_dataset).
STANDARDIZER = "standardizer.json"
Echo = Callable[[str], None]


@dataclass
class Inputs:
    """The loaded data and arch of a run (loaded once for ``--all-classes``)."""

    data: Dataset                 # train side (or everything)
    test: Dataset | None          # the official test split (one-class on MNIST & co.), else None
    spec: dict[str, Any]
    arch_file: Path
    arch_index: int
    ws: Workspace
    auto: bool = False            # -a auto: the detector gets the derived spec itself


def has_official_split(name: str) -> bool:
    """Whether the dataset ``name`` (registered or located, e.g. ``ucr:NAME``) has both a train and a test split."""
    kind = located_kind(name)
    splits = kind.splits if kind is not None else tuple(get_spec(name).sizes)
    return "train" in splits and "test" in splits


def load_inputs(dataset: str, arch: str | int = 0, protocol: str = "one-class", score: str = "recon", *,
                archs: str | None = None,
                data_dir: str | None = None, split: str = "all", image_size: int | None = None, out: str = ".",
                progress: bool | None = None, window: int | None = None, stride: int | None = None,
                label_column: str | None = None) -> Inputs:
    """Resolve the arch (before loading any data, so a bad arch or an arch unfit for ``score`` fails fast) and
    load the data the protocol needs (``window``, ``stride``, ``label_column``: signal recordings, see
    :func:`~netbuilder.datasets.load_dataset`)."""
    choice = choose_arch(dataset, arch, archs)  # -a auto (always l2): the spec is derived from the data below
    spec = choice.spec
    if spec is not None and get_score(score).needs_unit_codes and not has_unit_codes(spec):
        l2 = [s["name"] for s in choice.specs if has_unit_codes(s)]
        raise NetbuilderError(not_l2_message(spec, str(choice.file), l2, score))
    split = (split or "all").lower()
    how = dict(data_dir=data_dir, image_size=image_size, progress=progress if progress is not None else True,
               window=window, stride=stride, label_column=label_column)
    test = None
    if protocol == "one-class" and split == "all" and has_official_split(dataset):
        data = load_dataset(dataset, split="train", **how)
        test = load_dataset(dataset, split="test", **how)
        ws_name = data.name
    else:
        data = load_dataset(dataset, split=split, **how)
        ws_name = data.name if split == "all" else f"{data.name}-{split}"
    spec = choice.resolve(data.shape, data.n_classes)
    return Inputs(data, test, spec, choice.file, choice.index, Workspace.create(out, ws_name, spec["name"]),
                  auto=choice.auto)


def stage_name(protocol: str, target_name: str | None, score: str) -> str:
    """``anomaly-<protocol>-<target>-<score>`` (target ``none`` without one, ``all`` for the summary)."""
    return f"anomaly-{protocol}-{safe_name(target_name) if target_name is not None else 'none'}-{score}"


def _dataset_record(ds: Dataset) -> dict[str, Any]:
    return {"name": ds.name, "fingerprint": ds.fingerprint, "split": ds.split, "n": len(ds),
            "shape": list(ds.shape), "n_classes": ds.n_classes}


def scores_csv(split: ProtocolSplit, scores: np.ndarray, threshold: float, source: Dataset) -> str:
    """index,score,anomaly[,label,class][,file] — one row per test image (``anomaly`` = the prediction,
    ``label`` = the truth, 1 = anomaly; ``index`` is the row in the dataset the test images came from)."""
    labelled = split.test_labels is not None
    files = source.files if source.files else None
    buf = io.StringIO()
    buf.write("index,score,anomaly" + (",label,class" if labelled else "") + (",file" if files else "") + "\n")
    for i, (idx, s) in enumerate(zip(split.test_index, scores)):
        row = f"{int(idx)},{s:.8g},{int(s > threshold)}"
        if labelled:
            row += f",{int(split.test_labels[i])},{_csv(class_name(source, int(split.test_classes[i])))}"
        if files:
            row += f",{_csv(files[int(idx)])}"
        buf.write(row + "\n")
    return buf.getvalue()


def _csv(text: str) -> str:
    return f'"{text}"' if any(c in text for c in ',"\n') and not text.startswith('"') else text


def run_target(inputs: Inputs, protocol: str, target: str | int | None, score: str = "recon", *,
               threshold: str | float = "contamination", contamination: float = 0.1,
               anomaly_ratio: float | None = None, clusters: int | None = None,
               test_fraction: float = TEST_FRACTION, val_fraction: float = VAL_FRACTION,
               train_options: dict[str, Any] | None = None, cluster_epochs: int | None = None, seed: int = 0,
               device: str = "auto", progress: bool | None = None, plots: bool = True, verbose: bool = False,
               echo: Echo | None = None) -> dict[str, Any]:
    """One protocol run for one target on loaded ``inputs``; returns the table row (metrics, sizes, paths)."""
    t0 = time.perf_counter()
    say = echo or (lambda _m: None)
    method = parse_threshold(threshold)
    if method == "contamination":
        check_contamination(contamination)
    split = make_split(protocol, inputs.data, target, test_ds=inputs.test, need_val=method in LABELLED,
                       anomaly_ratio=anomaly_ratio, n_clusters=clusters, test_fraction=test_fraction,
                       val_fraction=val_fraction)
    for w in split.warnings:
        say(f"warning: {w}")
    stage = stage_name(protocol, split.target_name, score)
    ws = inputs.ws
    out_dir, plot_dir = ws.stage_dir(stage), ws.plots_dir / stage
    remove(out_dir / MANIFEST)  # a rerun is incomplete until its manifest is written again
    arch = inputs.spec if inputs.auto else inputs.arch_index  # -a auto: the derived spec itself
    detector = AutoencoderAnomalyDetector(
        arch=arch, archs=str(inputs.arch_file), score=score, contamination=contamination,
        threshold=method, n_clusters=split.n_clusters, cluster_epochs=cluster_epochs, seed=seed, device=device,
        progress=progress, verbose=verbose,
        log_stem=str(ws.log_stem(stage)), **(train_options or {}))
    with warnings.catch_warnings():
        # reported below, once each, as "warning:" lines
        warnings.simplefilter("ignore", ThresholdWarning)
        warnings.simplefilter("ignore", TrainingCollapseWarning)
        detector.fit(split.train_images, X_val=split.val_images, y_val=split.val_labels)
    for w in detector.fit_warnings_:
        say(f"warning: {w}")
    train_s = time.perf_counter() - t0
    thr = detector.threshold_
    if split.test_images is split.train_images:
        test_scores = detector.decision_scores_
    else:
        test_scores = detector.decision_function(split.test_images)
    source = inputs.test if inputs.test is not None and protocol == "one-class" else inputs.data
    if split.test_labels is not None:
        metrics = evaluate(split.test_labels, test_scores, thr)
    else:
        metrics = {"n": int(len(test_scores)), "n_anomalies": None, "flagged": int((test_scores > thr).sum()),
                   "threshold": thr, "auc": None, "ap": None, "acc": None, "f1": None}
    parts = {}
    if split.test_labels is not None:   # a combined score: each part's own AUC beside the combination's
        parts = {f"auc_{name}": evaluate(split.test_labels, s, thr)["auc"]
                 for name, s in detector.part_scores(split.test_images).items()}
        metrics.update(parts)
    info = detector.threshold_info_
    if info.warning:
        say(f"warning: {info.warning}")

    detector.save(out_dir)
    if inputs.data.mean is not None:
        # New recordings are scored in this standardisation, not one fitted on themselves (predict_dataset).
        scaler = Standardizer(mean=inputs.data.mean, std=inputs.data.std)
        write_json(out_dir / STANDARDIZER, {**scaler.record(), "window": int(inputs.data.images.shape[-1])})
    write_text(out_dir / "scores.csv", scores_csv(split, test_scores, thr, source))
    report = {"protocol": split.record(), "score": score, "threshold": info.to_dict(), "metrics": metrics,
              "output_variation": detector.output_variation_, "error_vs_mean_image": detector.error_vs_mean_, "warnings": split.warnings + detector.fit_warnings_ + (
                  [info.warning] if info.warning else [])}
    write_json(out_dir / "report.json", report)
    plot_files = _plots(detector, split, test_scores, thr, plot_dir, source, inputs, score) if plots else {}
    seconds = time.perf_counter() - t0
    write_manifest(out_dir, _manifest(inputs, split, detector, metrics, stage, seed, train_s, seconds, plot_files))
    return {"target": split.target, "class": split.target_name, **{k: metrics.get(k) for k in ("auc", "ap", "acc", "f1")},
            **parts,
            "threshold": thr, "threshold_method": info.method, "warning": info.warning,
            "output_variation": None if (ov := detector.output_variation_) is None else round(ov, 4),
            "n_train": int(len(split.train_images)), "n_test": int(metrics["n"]),
            "n_anomalies": metrics.get("n_anomalies"), "flagged": metrics["flagged"], "seconds": round(seconds, 2),
            "dir": str(out_dir), "plots": {k: str(v) for k, v in plot_files.items()}, "metrics": metrics,
            "hyperparameters": detector.hyperparameters_}


def _manifest(inputs: Inputs, split: ProtocolSplit, det: AutoencoderAnomalyDetector, metrics: dict[str, Any],
              stage: str, seed: int, train_s: float, seconds: float, plot_files: dict[str, Path]) -> dict[str, Any]:
    data = {"train": _dataset_record(inputs.data)}
    if inputs.test is not None:
        data["test"] = _dataset_record(inputs.test)
    return {
        "stage": stage, "protocol": split.record(), "score": det.score,
        "dataset": _dataset_record(inputs.data), "datasets": data,
        "arch": {"file": str(inputs.arch_file), "index": inputs.arch_index, "name": inputs.spec["name"],
                 "spec": inputs.spec},
        "hyperparameters": det.hyperparameters_, "seed": seed, "device": str(det.device_),
        "threshold": det.threshold_info_.to_dict(), "train_scores": det.train_stats_,
        "validation_scores": det.val_stats_, "metrics": metrics,
        "timings": {"train_s": round(train_s, 2), "total_s": round(seconds, 2)},
        "files": {"weights": "weights.safetensors", "threshold": "threshold.json", "scores": "scores.csv",
                  "report": "report.json", "train_scores": "train_scores.npy",
                  **({"centroids": "centroids.npy"} if det.centroids_ is not None else {}),
                  **({"parts": [part_folder(i, p.name) for i, p in enumerate(det.parts_)]} if det.parts_ else {}),
                  **({"standardizer": STANDARDIZER} if inputs.data.mean is not None else {})},
        "plots": {k: str(v) for k, v in plot_files.items()},
        "logs": {"log": str(inputs.ws.log_stem(stage).with_suffix(".log"))},
    }


def _plots(det: AutoencoderAnomalyDetector, split: ProtocolSplit, scores: np.ndarray, thr: float, plot_dir: Path,
           source: Dataset, inputs: Inputs, score: str) -> dict[str, Path]:
    from .plots import extremes_grid, roc_curve_plot, score_histogram

    what = (f"{source.name if not source.name.startswith('folder:') else Path(source.source).name} / "
            f"{inputs.spec['name']}, {split.protocol}" + (f", target {split.target_name}" if split.target_name else ""))
    files = {"histogram": score_histogram(scores, split.test_labels, thr, plot_dir / "scores.png",
                                          title=f"{what}: test scores", xlabel=f"{score}: {SCORE_TITLES[score]}")}
    y = split.test_labels
    if y is not None and 0 < y.sum() < len(y):
        files["roc"] = roc_curve_plot(y, scores, plot_dir / "roc.png", threshold=thr, title=f"{what}: ROC")
    if split.test_images.ndim != 4:  # signal windows: the grid draws images
        return files
    captions = None
    if split.test_classes is not None:
        captions = [class_name(source, int(c))[:10] for c in split.test_classes]
    files["extremes"] = extremes_grid(split.test_images, scores, det.compared_with, plot_dir / "extremes.png",
                                      captions=captions, title=f"{what}, score {score}",
                                      second=get_score(score).counterpart_title).path
    return files


def resolve_score(score: str | None, protocol: str, dataset: str) -> str:
    """``score``, or when it is ``None`` the default for ``protocol`` on ``dataset``'s modality
    (:func:`~netbuilder.core.scores.default_score`)."""
    return score or default_score(protocol, dataset_modality(dataset))


def run_anomaly(dataset: str, arch: str | int = 0, protocol: str = "one-class", target: str | int | None = None,
                score: str | None = None, *, archs: str | None = None, data_dir: str | None = None, split: str = "all",
                image_size: int | None = None, window: int | None = None, stride: int | None = None,
                label_column: str | None = None, out: str = ".", echo: Echo | None = None,
                **options: Any) -> dict[str, Any]:
    """Python API of ``netbuilder anomaly`` for one target: ``run_anomaly("DIGITS", 0, "one-class", 0)``.

    ``options`` are :func:`run_target`'s (threshold, contamination, anomaly_ratio, clusters, train_options,
    seed, device, plots, ...). ``score=None``: :func:`~netbuilder.core.scores.default_score`. Returns the result
    row (metrics, threshold, sizes, output paths, seconds).
    """
    score = resolve_score(score, protocol, dataset)
    _check(protocol, score, options)
    inputs = load_inputs(dataset, arch, protocol, score, archs=archs, data_dir=data_dir, split=split,
                         image_size=image_size, out=out, progress=options.get("progress"), window=window,
                         stride=stride, label_column=label_column)
    return run_target(inputs, protocol, target, score, echo=echo, **options)


_TABLE_OPTIONS = ("contamination", "anomaly_ratio", "clusters", "test_fraction", "val_fraction", "cluster_epochs")


def run_all_classes(dataset: str, arch: str | int = 0, protocol: str = "one-class", score: str | None = None, *,
                    archs: str | None = None, data_dir: str | None = None, split: str = "all",
                    image_size: int | None = None, window: int | None = None, stride: int | None = None,
                    label_column: str | None = None, out: str = ".", echo: Echo | None = None,
                    **options: Any) -> dict[str, Any]:
    """Every class in turn as the target; returns ``{"rows": [...], "mean": {...}, "wall_time_s": ...}`` and
    writes it to ``.../anomaly-<protocol>-all-<score>/table.json`` (``score=None``: as :func:`run_anomaly`)."""
    score = resolve_score(score, protocol, dataset)
    _check(protocol, score, options)
    if protocol == "unsupervised":
        raise NetbuilderError("--all-classes needs a protocol with target classes (one-class or contaminated); "
                              "the unsupervised protocol uses no labels")
    t0 = time.perf_counter()
    say = echo or (lambda _m: None)
    inputs = load_inputs(dataset, arch, protocol, score, archs=archs, data_dir=data_dir, split=split,
                         image_size=image_size, out=out, progress=options.get("progress"), window=window,
                         stride=stride, label_column=label_column)
    if inputs.data.labels is None:
        raise NetbuilderError(f"--all-classes needs labelled data; {inputs.data.name} has no labels")
    n_classes = inputs.data.n_classes or int(inputs.data.labels.max()) + 1
    rows = []
    for t in range(n_classes):
        row = run_target(inputs, protocol, t, score, echo=echo, **options)
        rows.append(row)
        parts = parts_text(row)
        say(f"target {row['class']}: ROC AUC {_f(row['auc'])}{f' (parts: {parts})' if parts else ''}  "
            f"AP {_f(row['ap'])}  acc {_f(row['acc'])}  F1 {_f(row['f1'])}  "
            f"({row['n_train']} training images, {row['seconds']:.1f} s)")
    wall = time.perf_counter() - t0
    table = {"dataset": inputs.data.name, "arch": inputs.spec["name"], "protocol": protocol, "score": score,
             "threshold": str(options.get("threshold", "contamination")), "seed": options.get("seed", 0),
             "split": inputs.data.split, "options": {k: options.get(k) for k in _TABLE_OPTIONS},
             # the same for every target: the resolved training settings (arch defaults + command-line overrides)
             "hyperparameters": rows[0]["hyperparameters"] if rows else {},
             "rows": [{k: v for k, v in r.items() if k not in ("metrics", "plots", "hyperparameters")} for r in rows],
             "mean": mean_row(rows, METRIC_COLUMNS + part_columns(rows)), "wall_time_s": round(wall, 1)}
    path = inputs.ws.stage_dir(f"anomaly-{protocol}-all-{score}") / "table.json"
    write_json(path, table)
    table["path"] = str(path)
    return table


def _f(v: Any) -> str:
    return "n/a" if v is None else f"{v:.4f}"


def _check(protocol: str, score: str, options: dict[str, Any]) -> None:
    """Argument errors before any data is loaded."""
    if protocol not in PROTOCOLS:
        raise NetbuilderError(f"unknown protocol '{protocol}'; use one of: {', '.join(PROTOCOLS)}")
    if score not in SCORES:
        raise NetbuilderError(f"unknown score '{score}'; use one of: {', '.join(SCORES)}")
    method = parse_threshold(options.get("threshold", "contamination"))
    if method == "contamination":
        check_contamination(options.get("contamination", 0.1))
    if method in LABELLED and protocol == "unsupervised":
        raise NetbuilderError("the unsupervised protocol has no labels, so no labelled threshold (f1, accuracy); "
                              "use --threshold contamination or a number")
    if options.get("anomaly_ratio") is not None and protocol != "contaminated":
        raise NetbuilderError("--anomaly-ratio applies to the contaminated protocol only")
