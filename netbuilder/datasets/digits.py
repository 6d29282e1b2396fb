"""DIGITS: scikit-learn's bundled 8×8 digits (1,797 images, values 0..16), scaled to 0..255. No download."""
from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from .base import Dataset
from .checksum import file_digest, fingerprint
from .kinds import register_dataset


def data_file() -> Path | None:
    """The ``digits.csv.gz`` that ships inside scikit-learn, found without importing sklearn (slow)."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"
    return path if path.is_file() else None


def locate(root: Path) -> Path | None:
    return data_file()


@register_dataset(
    "DIGITS", dirname="digits", shape=(1, 8, 8), class_names=tuple(str(d) for d in range(10)),
    sizes={"all": 1797}, downloadable=False, description="scikit-learn's 8x8 digits, bundled (no download)",
    locate=locate, bundled=True,
)
def load(root: Path, split: str, download_ok: bool, progress: bool) -> Dataset:
    """Read the csv (64 pixel columns then the label); pixels 0..16 become round(v * 255 / 16)."""
    path = data_file()
    if path is None:
        raise DatasetError("DIGITS: scikit-learn's digits.csv.gz was not found; install scikit-learn")
    try:
        with gzip.open(path, "rt") as fh:
            table = np.loadtxt(fh, delimiter=",", dtype=np.float64)
    except (OSError, EOFError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot read ({exc})") from exc
    if table.ndim != 2 or table.shape[1] != 65:
        raise DatasetError(f"{path}: expected 65 columns, got shape {table.shape}")
    pixels = np.clip(np.rint(table[:, :64] * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    return Dataset(name="DIGITS", images=pixels.reshape(-1, 1, 8, 8), labels=table[:, 64].astype(np.int64),
                   class_names=[str(d) for d in range(10)],
                   fingerprint=fingerprint([(path.name, file_digest(path))]), source=str(path), split=split)

