"""Where a stage reads and writes: ``<out>/saved_params/<DATASET>/<arch>/<stage>/``, ``<out>/logs/...``, ``<out>/plots/...``.

A stage directory counts as done only when its ``manifest.json`` exists and says ``"complete": true``;
the manifest is always the last file a stage writes.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import StageError

MANIFEST = "manifest.json"


def safe_name(name: str) -> str:
    """A file-system-safe directory name for a dataset or arch name (``folder:/a/b`` → ``folder-b-<hash>``)."""
    if name.lower().startswith("folder:"):
        path = name.split(":", 1)[1].rstrip("/")
        digest = hashlib.sha256(path.encode()).hexdigest()[:8]
        name = f"folder-{Path(path).name or 'root'}-{digest}"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "unnamed"


def manifest_problem(data: dict[str, Any]) -> str | None:
    """What is wrong with a complete manifest's structure (the fields later stages rely on), or None."""
    for key in ("dataset", "arch", "files", "hyperparameters", "metrics"):
        if not isinstance(data.get(key), dict):
            return f"'{key}' is missing or not an object"
    if not isinstance(data["dataset"].get("fingerprint"), str):
        return "'dataset.fingerprint' is missing or not a string"
    if not isinstance(data["arch"].get("spec"), dict):
        return "'arch.spec' is missing or not an object"
    for key, name in data["files"].items():
        if not isinstance(name, str) or not name or Path(name).name != name or name in (".", ".."):
            return f"'files.{key}' must be a plain file name in the stage directory, not {name!r}"
    return None


@dataclass(frozen=True)
class Workspace:
    """Paths of one (dataset, arch) pair under an output root."""

    root: Path
    dataset: str
    arch: str

    @classmethod
    def create(cls, out: str | Path, dataset: str, arch: str) -> "Workspace":
        return cls(Path(out), safe_name(dataset), safe_name(arch))

    def stage_dir(self, stage: str) -> Path:
        return self.root / "saved_params" / self.dataset / self.arch / stage

    def log_stem(self, stage: str) -> Path:
        return self.root / "logs" / self.dataset / self.arch / stage

    @property
    def plots_dir(self) -> Path:
        return self.root / "plots" / self.dataset / self.arch

    @property
    def dataset_dir(self) -> Path:
        return self.root / "saved_params" / self.dataset

    def manifest(self, stage: str) -> dict[str, Any] | None:
        """The stage's manifest if the stage completed, else None (a torn or partial stage counts as not run)."""
        path = self.stage_dir(stage) / MANIFEST
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError, OSError, RecursionError, ValueError):
            raise StageError(f"{path}: manifest is corrupt; delete {path.parent} and run the stage again") from None
        if not isinstance(data, dict) or not data.get("complete"):
            return None
        problem = manifest_problem(data)
        if problem:
            raise StageError(f"{path}: manifest is corrupt ({problem}); delete {path.parent} and run the stage again")
        return data

    def cluster_stages(self) -> list[str]:
        """Names of the completed ``cluster-<loss>`` stages, in a stable order."""
        base = self.root / "saved_params" / self.dataset / self.arch
        if not base.exists():
            return []
        from ..core.objectives import objective_names, stage_name

        order = {stage_name(n): i for i, n in enumerate(objective_names())}
        found = [p.name for p in base.iterdir() if p.name.startswith("cluster-") and self.manifest(p.name)]
        return sorted(found, key=lambda s: (order.get(s, 9), s))
