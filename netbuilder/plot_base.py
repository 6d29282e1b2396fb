"""What every plotting module shares: a pyplot-free Figure, the atomic PNG writer, categorical colours, labels."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .fileio import write_with

DPI = 100


def new_figure(figsize: tuple[float, float], layout: str | None = "constrained") -> Any:
    """A matplotlib Figure not owned by pyplot, at netbuilder's DPI."""
    # A bare Figure renders PNGs through Agg without ever resolving a backend, so no display is needed and
    # (unlike matplotlib.use("Agg")) the backend of a notebook or GUI app that imports netbuilder is left alone.
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, dpi=DPI, layout=layout)


def save_figure(fig: Any, path: str | Path) -> Path:
    """Write ``fig`` as a PNG atomically (write, then rename) and release it; returns ``path``."""
    path = Path(path)
    try:
        write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=DPI, facecolor="white"), suffix=".png")
    finally:
        fig.clf()  # a Figure not owned by pyplot is freed as soon as its references go; clf breaks the cycles
    return path


def palette(n: int) -> list[tuple[float, float, float, float]]:
    """n distinct categorical colours: tab10 / tab20 when they suffice, else evenly spaced turbo hues."""
    import matplotlib

    if n <= 10:
        return [matplotlib.colormaps["tab10"](i) for i in range(n)]
    if n <= 20:
        # tab20 in order pairs a dark and a light shade of each hue; darks first keeps the first 10 distinct.
        cm = matplotlib.colormaps["tab20"]
        return [cm(2 * i) for i in range(10)] + [cm(2 * i + 1) for i in range(n - 10)]
    cm = matplotlib.colormaps["turbo"]
    return [cm(x) for x in np.linspace(0.05, 0.95, n)]


def class_label(value: int, class_names: Sequence[str] | None) -> str:
    """The name of class ``value`` (its number when there are no names)."""
    if class_names is not None and 0 <= value < len(class_names):
        return str(class_names[value])
    return str(value)
