"""Resolve what a stage works on: the dataset, the architecture, the device, the output paths, the hyperparameters."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..arch import build_autoencoder, choose_arch
from ..datasets import Dataset, load_dataset
from ..errors import StageError
from ..train import resolve_device
from .workspace import Workspace


@dataclass
class StageContext:
    """Everything a stage needs, resolved once: dataset, arch spec, device, workspace paths."""

    dataset: Dataset
    arch_file: Path
    arch_index: int
    spec: dict[str, Any]
    ws: Workspace
    device: torch.device

    @property
    def arch_name(self) -> str:
        return self.spec["name"]

    @property
    def n_clusters(self) -> int:
        """Clusters: the arch's clustering section, else the dataset's number of classes."""
        k = (self.spec.get("clustering") or {}).get("n_clusters")
        if k:
            return int(k)
        if self.dataset.n_classes:
            return int(self.dataset.n_classes)
        raise StageError(f"{self.arch_name}: the number of clusters is unknown (unlabelled data); "
                         "set \"clustering\": {\"n_clusters\": K} in the arch or pass --clusters K")

    def build_model(self):
        """A fresh autoencoder for this arch, shaped for this dataset's images."""
        return build_autoencoder(self.spec, input_shape=tuple(self.dataset.shape), source=str(self.arch_file))

    def dataset_record(self) -> dict[str, Any]:
        """What a manifest says about the data."""
        d = self.dataset
        return {"name": d.name, "fingerprint": d.fingerprint, "split": d.split, "n": len(d),
                "shape": list(d.shape), "n_classes": d.n_classes}

    def resume_identity(self, hp: dict[str, Any], seed: int) -> dict[str, Any]:
        """What must not change between an interrupted run and its resumption (kept in the checkpoint)."""
        return {"dataset_fingerprint": self.dataset.fingerprint, "arch_spec": self.spec,
                "hyperparameters": {k: v for k, v in hp.items() if k != "epochs"}, "seed": seed}

    def interrupted_message(self, stage_cmd: str, checkpoint: Path) -> str:
        """The one line logged when a run is stopped by Ctrl-C or SIGTERM."""
        if checkpoint.exists():
            return (f"{stage_cmd} interrupted; completed epochs are saved in {checkpoint}; resume with "
                    f"`netbuilder {stage_cmd} -d {self.dataset.name} -a {self.arch_name} --out {self.ws.root} ... "
                    "--resume`")
        return f"{stage_cmd} interrupted before the first checkpoint; nothing to resume"

    def arch_record(self) -> dict[str, Any]:
        """What a manifest says about the architecture (the resolved spec itself, not just a name)."""
        return {"file": str(self.arch_file), "index": self.arch_index, "name": self.arch_name, "spec": self.spec}


def prepare(dataset: str, arch: str | int = 0, *, archs: str | Path | None = None, data_dir: str | Path | None = None,
            split: str = "all", image_size: int | None = None, out: str | Path = ".", device: str = "auto",
            progress: bool | None = None, threads: int | None = None, window: int | None = None,
            stride: int | None = None, label_column: str | None = None) -> StageContext:
    """Load the dataset and the arch, pick the device and thread count; errors are one-line NetbuilderErrors.

    ``window``, ``stride`` and ``label_column`` go to :func:`load_dataset` (signal recordings). The auto arch
    (``-a auto``, or no archs file given or shipped) is derived from the data's shape (:mod:`netbuilder.arch.auto`).
    Started by torchrun, this joins the process group (see :mod:`netbuilder.distributed`)."""
    from .. import distributed

    distributed.init_from_env()
    choice = choose_arch(dataset, arch, archs)  # -a auto: the spec is derived from the data's shape below
    apply_threads(threads or choice.training.get("threads"))
    dev = resolve_device(device)
    data = load_dataset(dataset, data_dir=data_dir, split=split, image_size=image_size,
                        progress=progress if progress is not None else True, window=window, stride=stride,
                        label_column=label_column)
    spec = choice.resolve(data.shape, data.n_classes)
    ws = Workspace.create(out, data.name if split == "all" else f"{data.name}-{split}", spec["name"])
    return StageContext(dataset=data, arch_file=choice.file, arch_index=choice.index, spec=spec, ws=ws, device=dev)


def apply_threads(threads: int | None) -> None:
    """Set torch's CPU thread count. Float sums depend on it, so pinning it (e.g. to 1 for small nets) makes
    results independent of the machine's core count."""
    if threads:
        torch.set_num_threads(int(threads))
