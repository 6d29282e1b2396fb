"""Helpers shared by the benchmarks: machine description, peak RSS, datasets with a fallback, markdown tables."""
from __future__ import annotations

import datetime as _dt
import os
import platform
import resource
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Sequence

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data"


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (``ru_maxrss`` is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (falls back to :func:`platform.processor`)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> list[str]:
    """The SIMD flags that matter for dense float32 throughput."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                have = set(line.split(":", 1)[1].split())
                return [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile") if f in have]
    except OSError:
        pass
    return []


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on, and how the benchmark was invoked."""
    import torch

    return {
        "cpu_model": cpu_model(),
        "cpu_flags": cpu_flags(),
        "cpu_count": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "load_average_start": load_average(),
        "command": " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv]),
    }


def load_images(name: str = "MNIST", shape: tuple[int, ...] = (70000, 1, 28, 28), seed: int = 0):
    """``(uint8 images, info)``: the real dataset from ``$NETBUILDER_DATA`` (never downloaded) or, when it is
    missing, random uint8 images of the same shape; ``info`` says which, and how long loading took."""
    import numpy as np

    os.environ.setdefault("NETBUILDER_DATA", str(DEFAULT_DATA))
    from netbuilder.datasets import load_dataset

    t0 = time.perf_counter()
    try:
        ds = load_dataset(name, download=False, progress=False)
        seconds = time.perf_counter() - t0
        images = ds.images
        info = {"source": "real", "dataset": name, "data_dir": os.environ["NETBUILDER_DATA"],
                "shape": list(images.shape), "load_s": round(seconds, 3),
                "load_images_per_s": round(images.shape[0] / max(seconds, 1e-9), 1)}
    except Exception as exc:  # noqa: BLE001 - any failure means "no real data here"
        images = np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)
        info = {"source": "random", "dataset": name, "data_dir": os.environ["NETBUILDER_DATA"],
                "shape": list(shape), "load_s": None, "load_images_per_s": None,
                "why": f"{type(exc).__name__}: {exc}"}
    return images, info


def md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub markdown table."""
    def cell(v: Any) -> str:
        return "" if v is None else str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def median(values: Sequence[float]) -> float:
    s = sorted(values)
    n = len(s)
    if n == 0:
        return float("nan")
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def quantile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile (``q`` in [0, 1])."""
    s = sorted(values)
    if not s:
        return float("nan")
    pos = q * (len(s) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)
