"""The classical fault-detection baseline for process data: PCA with Hotelling's T² and the SPE (Q) statistic.

PCA is fitted on standardised normal samples (``T×C``, one row per time step, no windows). The number of
principal components is the smallest that explains at least ``variance`` (default 90 %) of the variance of
the fitting data — the usual cumulative-percent-variance rule of the TEP literature. Then for a sample ``x``:

* ``T² = Σ_{i<a} t_i² / λ_i`` with ``t = Pᵀx`` the scores on the ``a`` retained components and ``λ_i`` their
  variances (the variation *inside* the normal model, scaled by how much it normally varies);
* ``SPE = ‖x − P Pᵀ x‖²``, the squared residual off the principal subspace (variation the normal model does
  not have: the ``Q`` statistic).

Thresholds are not taken from the F / χ² approximations here: the report sets every statistic's threshold
the same way, as an empirical quantile of held-out normal scores (see :mod:`netbuilder.anomaly.process`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import NetbuilderError
from ..fileio import write_json

DEFAULT_VARIANCE = 0.90
STATISTICS = ("t2", "spe")
TITLES = {"t2": "PCA T²", "spe": "PCA SPE"}


@dataclass(frozen=True)
class PCABaseline:
    """A fitted PCA monitor: ``mean`` (C,), ``components`` (C×a, orthonormal columns), ``variances`` (a,)
    of the retained components, and the ``explained`` fraction of the fitting data's variance they hold."""

    mean: np.ndarray
    components: np.ndarray
    variances: np.ndarray
    explained: float

    @classmethod
    def fit(cls, samples: np.ndarray, variance: float = DEFAULT_VARIANCE) -> "PCABaseline":
        """Fit on normal ``samples`` (``T×C``, already standardised): keep the fewest components that explain
        at least ``variance`` of the total variance (in (0, 1])."""
        if not 0.0 < variance <= 1.0:
            raise NetbuilderError(f"Invalid value for argument `variance`. Expected a value in (0, 1]. "
                                  f"Received variance={variance!r}.")
        x = np.asarray(samples, dtype=np.float64)
        if x.ndim != 2 or len(x) < 2:
            raise NetbuilderError(f"PCA needs at least 2 samples × channels, got shape {x.shape}")
        mean = x.mean(axis=0)
        # SVD of the centred data: right singular vectors are the principal axes, s²/(n-1) their variances.
        _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
        var = s ** 2 / (len(x) - 1)
        total = float(var.sum())
        if total <= 0:
            raise NetbuilderError("PCA: the fitting samples do not vary")
        cumulative = np.cumsum(var) / total
        # The tolerance keeps variance=1.0 from asking for one more component than exists (rounding).
        a = int(min(np.searchsorted(cumulative, variance - 1e-12) + 1, len(var)))
        # A component with (numerically) zero variance would divide T² by zero: never keep one.
        a = max(1, min(a, int((var > var[0] * 1e-12).sum())))
        return cls(mean=mean, components=vt[:a].T.copy(), variances=var[:a].copy(), explained=float(cumulative[a - 1]))

    @property
    def n_components(self) -> int:
        return int(self.components.shape[1])

    def _centred(self, samples: np.ndarray) -> np.ndarray:
        x = np.asarray(samples, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.mean):
            raise NetbuilderError(f"PCA was fitted on {len(self.mean)} channels, got samples of shape {x.shape}")
        return x - self.mean

    def t2(self, samples: np.ndarray) -> np.ndarray:
        """Hotelling's T² of every sample (``T×C`` → ``(T,)``)."""
        t = self._centred(samples) @ self.components
        return (t * t / self.variances).sum(axis=1)

    def spe(self, samples: np.ndarray) -> np.ndarray:
        """The squared prediction error (Q) of every sample (``T×C`` → ``(T,)``)."""
        xc = self._centred(samples)
        residual = xc - (xc @ self.components) @ self.components.T
        return (residual * residual).sum(axis=1)

    def statistic(self, name: str, samples: np.ndarray) -> np.ndarray:
        """``t2`` or ``spe`` of ``samples`` by name."""
        if name not in STATISTICS:
            raise NetbuilderError(f"unknown PCA statistic '{name}'; use one of: {', '.join(STATISTICS)}")
        return self.t2(samples) if name == "t2" else self.spe(samples)

    def record(self) -> dict[str, Any]:
        """What the report says about the model (sizes, not arrays)."""
        return {"n_components": self.n_components, "explained_variance": round(self.explained, 4),
                "n_channels": int(len(self.mean))}

    def save(self, path: str | Path) -> Path:
        """Write the model as JSON (mean, components, variances; atomically) for reuse."""
        write_json(path, {**self.record(), "mean": self.mean.tolist(), "components": self.components.tolist(),
                          "variances": self.variances.tolist()})
        return Path(path)
