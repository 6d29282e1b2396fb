"""Choose the number of clusters without labels: the eigengap of the codes' k-nearest-neighbour graph.

The method (von Luxburg, *A tutorial on spectral clustering*, 2007, §8.3): build the symmetric kNN
connectivity graph of the codes exactly as scikit-learn's ``SpectralClustering(affinity="nearest_neighbors")``
does (each point joined to its ``n_neighbors`` nearest, itself included, symmetrised as ½(A + Aᵀ)), take the
smallest eigenvalues λ₁ ≤ λ₂ ≤ … of its symmetric normalised Laplacian L = I − D^-½ A D^-½, and choose the k in
``k_min..k_max`` with the largest gap λ_{k+1} − λ_k. A graph of k disconnected groups has exactly k zero
eigenvalues; k groups joined by few edges keep k small eigenvalues followed by a jump, which the gap finds.

It reads the graph of the codes only, not any clustering of them, so the choice does not depend on the final
clustering method, and it is deterministic (no random restarts: Lanczos starts from a fixed vector). Pure
functions on NumPy arrays; no files.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..errors import NetbuilderError
from ..settings import Setting

METHOD = "eigengap"
K_MIN = 2

# Settings of `--clusters auto`; the clustering stage's settings include them (CLI options, schema, manifest).
SETTINGS = (
    Setting("auto_k_max", 20, "Largest number of clusters --clusters auto considers (from 2).", int, minimum=3),
    Setting("auto_neighbors", 10, "Neighbours per code in the kNN graph whose eigengap --clusters auto reads "
            "(10: scikit-learn's spectral-clustering default).", int, minimum=2),
)


@dataclass
class KSelection:
    """The curve one choice was made from: ``gaps[i]`` = λ_{k+1} − λ_k for ``k = ks[i]``."""

    k: int
    ks: list[int]
    gaps: list[float]
    eigenvalues: list[float] = field(default_factory=list)   # λ₁ … λ_{k_max+1}
    method: str = METHOD
    n_neighbors: int = 10

    def record(self) -> dict[str, Any]:
        """JSON-ready record for a manifest (values rounded to 6 decimals)."""
        out = asdict(self)
        out["gaps"] = [round(g, 6) for g in self.gaps]
        out["eigenvalues"] = [round(v, 6) for v in self.eigenvalues]
        return out

    def table(self) -> str:
        """The curve as text: one ``k  gap`` line per candidate, the chosen one marked."""
        lines = [f"clusters auto: {self.method} of the {self.n_neighbors}-NN graph's normalised Laplacian "
                 f"(k = {self.ks[0]}..{self.ks[-1]})", "   k  gap λ(k+1)−λ(k)"]
        lines += [f"{k:4d}  {g:.5f}" + ("  <- chosen" if k == self.k else "") for k, g in zip(self.ks, self.gaps)]
        return "\n".join(lines)


def knn_affinity(codes: np.ndarray, n_neighbors: int):
    """The symmetric kNN connectivity matrix (sparse CSR) that ``SpectralClustering`` builds."""
    from sklearn.neighbors import kneighbors_graph

    x = np.ascontiguousarray(codes, dtype=np.float32).reshape(len(codes), -1)
    a = kneighbors_graph(x, n_neighbors=n_neighbors, mode="connectivity", include_self=True)
    return (0.5 * (a + a.T)).tocsr()


def laplacian_spectrum(affinity: Any, m: int) -> np.ndarray:
    """The ``m`` smallest eigenvalues (ascending) of the symmetric normalised Laplacian of ``affinity``."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    d = np.asarray(affinity.sum(axis=1)).ravel()
    scale = sp.diags(1.0 / np.sqrt(d))
    norm_adj = (scale @ affinity @ scale).tocsr()
    # The spectrum of a graph is the union of its components' spectra. Computed per component because Lanczos
    # from one start vector finds a repeated eigenvalue once: c separate groups (c zero eigenvalues of L, the
    # clearest case of all) would otherwise look like fewer.
    n_comp, comp = connected_components(norm_adj, directed=False)
    if n_comp == 1:
        mu = _largest(norm_adj, m)
    else:
        parts = [np.flatnonzero(comp == c) for c in range(n_comp)]
        mu = np.concatenate([_largest(norm_adj[p][:, p], min(m, len(p))) for p in parts])
    return np.sort(np.clip(1.0 - mu, 0.0, 2.0))[:m]


def _largest(sym: Any, m: int) -> np.ndarray:
    """The ``m`` largest eigenvalues of the sparse symmetric matrix ``sym`` (of L = I − sym: the smallest)."""
    from scipy.sparse.linalg import eigsh

    n = sym.shape[0]
    if n <= 10 * m:
        # A handful of points: Lanczos needs n well above m; the dense solver is exact and instant here.
        return np.linalg.eigvalsh(sym.toarray())[::-1][:m].astype(np.float64)
    # No shift-invert factorisation needed for the top of the spectrum; a fixed start vector makes it repeatable.
    return np.asarray(eigsh(sym, k=m, which="LA", v0=np.ones(n), tol=1e-6, return_eigenvectors=False),
                      dtype=np.float64)


def select_k(codes: np.ndarray, *, k_max: int = 20, n_neighbors: int = 10, k_min: int = K_MIN) -> KSelection:
    """Choose the number of clusters of ``codes`` (N × d) by the largest eigengap for k in ``k_min..k_max``."""
    n = len(codes)
    if k_max < k_min:
        raise NetbuilderError(f"Invalid value for argument `auto_k_max`. Expected a value >= {k_min}. "
                              f"Received auto_k_max={k_max}.")
    if n <= max(k_max + 1, n_neighbors):
        raise NetbuilderError(f"--clusters auto needs more than {max(k_max + 1, n_neighbors)} samples "
                              f"(auto_k_max={k_max}, auto_neighbors={n_neighbors}); got {n}")
    vals = laplacian_spectrum(knn_affinity(codes, n_neighbors), k_max + 1)
    ks = list(range(k_min, k_max + 1))
    gaps = [float(vals[k] - vals[k - 1]) for k in ks]          # vals[k-1] is λ_k (1-based)
    k = ks[int(np.argmax(gaps))]
    return KSelection(k=k, ks=ks, gaps=gaps, eigenvalues=[float(v) for v in vals], n_neighbors=n_neighbors)
