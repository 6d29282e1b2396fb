"""The three evaluation protocols, stated explicitly: which images train, which set the threshold, which test.

``one-class`` (novelty detection; Deep SVDD's MNIST protocol)
    Train only on the normal (``target``) class's training images; test on held-out images of *all*
    classes; anomalies = the other classes. A dataset with a train/test split (MNIST, FASHION-MNIST,
    USPS, loaded with ``split="all"``) trains on the normal class of its train split and tests on the
    whole test split. Any other dataset (DIGITS, COIL20, ``folder:``, or one split chosen explicitly)
    holds out a stratified ``test_fraction`` (fixed seed) as the test set.
``contaminated`` (Aytekin et al. 2018)
    Train on everything, unlabelled: the ``target`` class is the anomaly and stays in the training data
    (optionally subsampled so that anomalies are ``anomaly_ratio`` of the data). Scores are evaluated on
    that same data (transductive). k-means uses ``k`` = the number of normal classes.
``unsupervised`` (PyOD convention)
    No labels at all: train and score on everything; ``contamination`` turns scores into labels. If the
    data happen to be labelled and a ``target`` is named, the labels are used for the report only.

A labelled threshold (``f1``/``accuracy``) needs a validation split with labels: a stratified
``val_fraction`` of the training side is held out (it neither trains the model nor is tested). That is
impossible in the ``unsupervised`` protocol. All random choices use the fixed seed :data:`SPLIT_SEED`, so
every run (and every training seed) sees the same split.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..datasets import Dataset
from ..errors import NetbuilderError

PROTOCOLS = ("one-class", "contaminated", "unsupervised")
SPLIT_SEED = 0
TEST_FRACTION = 0.3
VAL_FRACTION = 0.2


@dataclass
class ProtocolSplit:
    """Images of each part (uint8 N×C×H×W) and, where the protocol has them, binary labels (1 = anomaly).

    ``*_index`` are row indices into the dataset each part came from (``test_source`` says which).
    """

    protocol: str
    target: int | None
    target_name: str | None
    train_images: np.ndarray
    train_index: np.ndarray
    test_images: np.ndarray
    test_index: np.ndarray
    test_labels: np.ndarray | None = None
    test_classes: np.ndarray | None = None
    val_images: np.ndarray | None = None
    val_labels: np.ndarray | None = None
    val_index: np.ndarray | None = None
    n_clusters: int | None = None          # k for k-means: the number of normal classes, where known
    train_source: str = ""
    test_source: str = ""
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        """What a manifest says about the split (sizes and provenance, no arrays)."""
        out: dict[str, Any] = {
            "protocol": self.protocol, "target": self.target, "target_name": self.target_name,
            "train": {"n": int(len(self.train_images)), "source": self.train_source},
            "test": {"n": int(len(self.test_images)), "source": self.test_source,
                     "anomalies": None if self.test_labels is None else int(self.test_labels.sum())},
            "n_clusters": self.n_clusters, "split_seed": SPLIT_SEED, "notes": list(self.notes),
            "warnings": list(self.warnings),
        }
        if self.val_images is not None:
            out["validation"] = {"n": int(len(self.val_images)),
                                 "anomalies": int(self.val_labels.sum()) if self.val_labels is not None else None}
        return out


def class_listing(ds: Dataset) -> str:
    names = ds.class_names or [str(c) for c in np.unique(ds.labels)]
    return ", ".join(f"{i} {n}" if str(i) != str(n) else str(n) for i, n in enumerate(names))


def resolve_target(ds: Dataset, target: str | int | None, protocol: str) -> int:
    """The class index of ``target`` (a class name, exact then case-insensitive, or an index)."""
    if ds.labels is None:
        raise NetbuilderError(f"protocol '{protocol}' needs labelled data to know which class is normal, but "
                              f"{ds.name} has no labels (a folder needs one subfolder per class); use "
                              "--protocol unsupervised for unlabelled data")
    if target is None or str(target).strip() == "":
        raise NetbuilderError(f"protocol '{protocol}' needs --target CLASS (or --all-classes); classes of "
                              f"{ds.name}: {class_listing(ds)}")
    names = list(ds.class_names) if ds.class_names else [str(c) for c in range(int(ds.labels.max()) + 1)]
    key = str(target).strip()
    if key in names:
        return names.index(key)
    folded = [i for i, n in enumerate(names) if n.lower() == key.lower()]
    if len(folded) == 1:
        return folded[0]
    if key.lstrip("-").isdigit() and 0 <= int(key) < len(names):
        return int(key)
    raise NetbuilderError(f"unknown target class '{target}' for {ds.name}; classes: {class_listing(ds)}")


def class_name(ds: Dataset, index: int) -> str:
    return ds.class_names[index] if ds.class_names and 0 <= index < len(ds.class_names) else str(index)


def holdout(labels: np.ndarray | None, n: int, fraction: float, seed: int = SPLIT_SEED
            ) -> tuple[np.ndarray, np.ndarray]:
    """``(keep, held_out)`` sorted index arrays; stratified by ``labels`` (``round(fraction · n_c)`` per class)."""
    if not 0.0 < fraction < 1.0:
        raise NetbuilderError(f"invalid fraction {fraction}: expected a value between 0 and 1")
    rng = np.random.default_rng(seed)
    groups = [np.arange(n)] if labels is None else [np.flatnonzero(labels == c) for c in np.unique(labels)]
    out = []
    for g in groups:
        g = g[rng.permutation(len(g))]
        out.append(g[:int(round(fraction * len(g)))])
    held = np.sort(np.concatenate(out)) if out else np.zeros(0, np.int64)
    keep = np.setdiff1d(np.arange(n), held)
    return keep.astype(np.int64), held.astype(np.int64)


def _validation(split: ProtocolSplit, ds: Dataset, pool: np.ndarray, fraction: float) -> np.ndarray:
    """Hold out a stratified validation part of ``pool`` (indices into ``ds``); return what remains."""
    keep, held = holdout(ds.labels[pool], len(pool), fraction, SPLIT_SEED + 1)
    val = pool[held]
    split.val_images = ds.images[val]
    split.val_labels = _anomaly_labels(split.protocol, ds.labels[val], split.target)
    split.val_index = val
    return pool[keep]


def _anomaly_labels(protocol: str, classes: np.ndarray, target: int) -> np.ndarray:
    """1 = anomaly: every class but the target in one-class, the target class otherwise."""
    return (classes != target if protocol == "one-class" else classes == target).astype(np.int64)


def one_class(train_ds: Dataset, test_ds: Dataset | None, target: str | int, *, need_val: bool = False,
              test_fraction: float = TEST_FRACTION, val_fraction: float = VAL_FRACTION) -> ProtocolSplit:
    """Novelty detection: train on the target class only, test on held-out images of every class."""
    t = resolve_target(train_ds, target, "one-class")
    if test_ds is not None:
        if test_ds.labels is None:
            raise NetbuilderError(f"{test_ds.name} ({test_ds.split}): the test split has no labels")
        side = np.arange(len(train_ds))
        test_idx, test_from = np.arange(len(test_ds)), test_ds
        train_source = f"{train_ds.name} {train_ds.split} split, class {class_name(train_ds, t)}"
        test_source = f"{test_ds.name} {test_ds.split} split, all classes"
    else:
        side, test_idx = holdout(train_ds.labels, len(train_ds), test_fraction)
        test_from = train_ds
        train_source = f"{train_ds.name}, class {class_name(train_ds, t)}, outside the held-out test part"
        test_source = f"{train_ds.name}, stratified {test_fraction:.0%} held out (seed {SPLIT_SEED}), all classes"
    split = ProtocolSplit("one-class", t, class_name(train_ds, t), train_images=np.zeros(0), train_index=side,
                          test_images=test_from.images[test_idx], test_index=test_idx, n_clusters=1,
                          train_source=train_source, test_source=test_source)
    if need_val:
        side = _validation(split, train_ds, side, val_fraction)
    train_idx = side[train_ds.labels[side] == t]
    if len(train_idx) == 0:
        raise NetbuilderError(f"one-class: no training images of class {class_name(train_ds, t)} in {train_ds.name}")
    split.train_images, split.train_index = train_ds.images[train_idx], train_idx
    split.test_classes = test_from.labels[test_idx]
    split.test_labels = _anomaly_labels("one-class", split.test_classes, t)
    return split


def contaminated(ds: Dataset, target: str | int, *, anomaly_ratio: float | None = None, need_val: bool = False,
                 val_fraction: float = VAL_FRACTION) -> ProtocolSplit:
    """Train on all data (labels unused); the target class is the anomaly; evaluate on the same data."""
    t = resolve_target(ds, target, "contaminated")
    n_classes = ds.n_classes or int(np.unique(ds.labels).size)
    if n_classes < 2:
        raise NetbuilderError(f"contaminated: {ds.name} has a single class; need normal classes and an anomaly class")
    idx = np.arange(len(ds))
    notes = []
    if anomaly_ratio is not None:
        if not 0.0 < anomaly_ratio < 1.0:
            raise NetbuilderError(f"invalid anomaly ratio {anomaly_ratio}: expected a fraction between 0 and 1")
        normal, anomalous = idx[ds.labels != t], idx[ds.labels == t]
        want = int(round(anomaly_ratio / (1.0 - anomaly_ratio) * len(normal)))
        if want > len(anomalous):
            notes.append(f"only {len(anomalous)} images of class {class_name(ds, t)}: anomaly ratio "
                         f"{len(anomalous) / len(idx):.3f} instead of {anomaly_ratio}")
            want = len(anomalous)
        keep = np.random.default_rng(SPLIT_SEED).permutation(anomalous)[:want]
        idx = np.sort(np.concatenate([normal, keep]))
        notes.append(f"anomaly class subsampled to {want} images ({want / len(idx):.3f} of the data, seed {SPLIT_SEED})")
    split = ProtocolSplit("contaminated", t, class_name(ds, t), train_images=np.zeros(0), train_index=idx,
                          test_images=np.zeros(0), test_index=idx, n_clusters=n_classes - 1, notes=notes)
    counts = np.bincount(ds.labels[idx], minlength=n_classes)
    normal_counts = np.delete(counts, t)
    smallest = int(normal_counts[normal_counts > 0].min())
    if counts[t] >= 0.5 * smallest:
        # a quarter of the smallest normal class, as a fraction of the data, rounded down to 2 significant digits
        suggest = float(f"{0.25 * smallest / max(1, len(idx) - counts[t]):.1g}")
        split.warnings.append(
            f"the anomaly class {class_name(ds, t)} is not rare ({counts[t]} images, {counts[t] / len(idx):.1%} of the "
            f"data; the smallest normal class has {smallest}): k-means with k = {n_classes - 1} normal classes may "
            f"give it a centroid of its own; pass a smaller --anomaly-ratio (e.g. {suggest:g})")
    if need_val:
        idx = _validation(split, ds, idx, val_fraction)
    split.train_images, split.train_index = ds.images[idx], idx
    split.test_images, split.test_index = split.train_images, idx
    split.test_classes = ds.labels[idx]
    split.test_labels = _anomaly_labels("contaminated", split.test_classes, t)
    split.train_source = f"{ds.name} ({ds.split}), all classes, labels unused" + (
        ", minus the validation part" if need_val else "")
    split.test_source = "the training data (transductive)"
    return split


def unsupervised(ds: Dataset, target: str | int | None = None, *, n_clusters: int | None = None) -> ProtocolSplit:
    """Everything trains and is scored; labels (if any) only evaluate, with ``target`` as the anomaly class."""
    idx = np.arange(len(ds))
    split = ProtocolSplit("unsupervised", None, None, train_images=ds.images, train_index=idx,
                          test_images=ds.images, test_index=idx, n_clusters=n_clusters,
                          train_source=f"{ds.name} ({ds.split}), all images, no labels",
                          test_source="the training data (transductive)")
    if target is not None and str(target).strip() != "":
        if ds.labels is None:
            raise NetbuilderError(f"--target names the anomaly class for the report, which needs labels; {ds.name} "
                                  "has none: drop --target (the unsupervised protocol needs no labels)")
        t = resolve_target(ds, target, "unsupervised")
        split.target, split.target_name = t, class_name(ds, t)
        split.test_classes = ds.labels
        split.test_labels = _anomaly_labels("unsupervised", ds.labels, t)
        split.notes.append(f"labels used for the report only (anomaly = class {split.target_name})")
    return split


def make_split(protocol: str, ds: Dataset, target: str | int | None, *, test_ds: Dataset | None = None,
               need_val: bool = False, anomaly_ratio: float | None = None, n_clusters: int | None = None,
               test_fraction: float = TEST_FRACTION, val_fraction: float = VAL_FRACTION) -> ProtocolSplit:
    """Dispatch to :func:`one_class`, :func:`contaminated` or :func:`unsupervised`."""
    if protocol == "one-class":
        split = one_class(ds, test_ds, target, need_val=need_val, test_fraction=test_fraction,
                          val_fraction=val_fraction)
    elif protocol == "contaminated":
        split = contaminated(ds, target, anomaly_ratio=anomaly_ratio, need_val=need_val, val_fraction=val_fraction)
    elif protocol == "unsupervised":
        if need_val:
            raise NetbuilderError("the unsupervised protocol has no labels, so no labelled threshold (f1, accuracy); "
                                  "use --threshold contamination or a number")
        return unsupervised(ds, target, n_clusters=n_clusters)
    else:
        raise NetbuilderError(f"unknown protocol '{protocol}'; use one of: {', '.join(PROTOCOLS)}")
    if n_clusters is not None:
        split.n_clusters = n_clusters
    return split
