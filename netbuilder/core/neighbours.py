"""Exact k-nearest-neighbour search (Euclidean) for SCAN's neighbour tables.

Up to ``PLAIN_MAX_ROWS`` rows, or with rows of at most ``2 × PRUNE_DIMS`` values (little to prune), scikit-learn's
brute-force search does it. On more rows, every row's distance to every other row is the cost (MNIST's 70,000 ×
70,000 × 784 pixels: 80 s on two cores), and a search pruned by a lower bound gives the same neighbours in a
fraction of it:

1. Project the rows onto their ``PRUNE_DIMS`` leading principal axes, plus the length of what is left of each row
   as one more coordinate. The distance between two such projections is never more than the distance between the
   rows, so it is a lower bound.
2. Each row keeps the ``PRUNE_CANDIDATES`` rows nearest in the projection and gets their exact distances (float64).
3. Where the row's k-th exact distance is below the bound of the first row left out, no row left out can be nearer:
   the answer is exact. The few rows where it is not (1.6 % on MNIST) are searched against every row in full.

On MNIST's 70,000 images the neighbours are the same as scikit-learn's, row for row, in 29 s instead of 80 s
(README, MNIST section).
"""
from __future__ import annotations

import numpy as np
import torch
from sklearn.neighbors import NearestNeighbors

PLAIN_MAX_ROWS = 20_000   # at most this many rows: scikit-learn's brute force (seconds)
PRUNE_DIMS = 128          # principal axes of the lower bound (94 % of MNIST's pixel variance)
PRUNE_CANDIDATES = 64     # rows per row given an exact distance (98 % of MNIST's rows then need no full search)
_CHUNK = 512              # rows per block: a 512 × N block of bounds stays in memory at any N we load


def nearest_neighbours(features: np.ndarray, k: int) -> np.ndarray:
    """The indices (``N × k``) of each row's ``k`` nearest other rows in Euclidean distance, nearest first; a
    duplicate of a row counts as a neighbour, the row itself never does."""
    n = len(features)
    k = min(k, n - 1)
    if n <= PLAIN_MAX_ROWS or features.shape[1] <= 2 * PRUNE_DIMS or k >= PRUNE_CANDIDATES:
        return _plain(features, k)
    return _pruned(np.asarray(features, dtype=np.float32), k)


def _plain(features: np.ndarray, k: int) -> np.ndarray:
    n = len(features)
    _, idx = NearestNeighbors(n_neighbors=k + 1).fit(features).kneighbors(features)
    # A duplicate of the row may come before the row itself: drop the row's own index wherever it sits.
    own = idx == np.arange(n)[:, None]
    first = np.where(own.any(1), own.argmax(1), k)
    keep = np.ones_like(idx, dtype=bool)
    keep[np.arange(n), first] = False
    return idx[keep].reshape(n, k)


def _pruned(features: np.ndarray, k: int) -> np.ndarray:
    # float32 rows, float64 blocks: the arithmetic is float64 without a float64 copy of the data.
    x = torch.from_numpy(features)
    blocks = [slice(s, s + 8192) for s in range(0, len(x), 8192)]
    sq = torch.cat([(x[b].double() ** 2).sum(1) for b in blocks])
    mean = sum(x[b].double().sum(0) for b in blocks) / len(x)
    scatter = sum(x[b].double().T @ x[b].double() for b in blocks) - len(x) * torch.outer(mean, mean)
    axes = torch.linalg.eigh(scatter)[1][:, -PRUNE_DIMS:]
    z = torch.cat([_bound_coordinates(x[b].double(), mean, axes) for b in blocks]).float()
    z_sq = (z * z).sum(1)
    # float32 rounding of a projected distance is at most (dims × 2⁻²⁴) × (‖zi‖² + ‖zj‖²) ≈ 1e-5 × that sum:
    # the margin is ten times more.
    margin = 1e-4 * (z_sq + z_sq.max()).double()
    out = np.empty((len(x), k), dtype=np.int64)
    unsure = []
    for start in range(0, len(x), _CHUNK):
        rows = torch.arange(start, min(start + _CHUNK, len(x)))
        # ‖zi − zj‖² less the row's own ‖zi‖², which does not change the order within a row.
        bound = torch.addmm(z_sq[None, :], z[rows], z.T, alpha=-2)
        bound[torch.arange(len(rows)), rows] = float("inf")
        nearest, candidates = bound.topk(PRUNE_CANDIDATES + 1, dim=1, largest=False)
        out[rows], kth = _exact_order(x, sq, rows, candidates[:, :-1], k)
        left_out = nearest[:, -1].double() + z_sq[rows].double()
        unsure.extend(rows[kth >= left_out - margin[rows]].tolist())
    for start in range(0, len(unsure), _CHUNK // 4):   # a quarter: these blocks are float64
        rows = torch.tensor(unsure[start:start + _CHUNK // 4])
        mine = x[rows].double()
        # float64 distances: rounding (~1e-12) is far below any gap the exact order below has to resolve.
        full = torch.cat([torch.addmm(sq[b][None, :], mine, x[b].double().T, alpha=-2) for b in blocks], 1)
        full[torch.arange(len(rows)), rows] = float("inf")
        candidates = full.topk(PRUNE_CANDIDATES, dim=1, largest=False).indices
        out[rows], _ = _exact_order(x, sq, rows, candidates, k)
    return out


def _bound_coordinates(x: torch.Tensor, mean: torch.Tensor, axes: torch.Tensor) -> torch.Tensor:
    """Rows' coordinates on ``axes`` and, as one more coordinate, the length of the rest of the row: by the
    triangle inequality ‖ri − rj‖ ≥ |‖ri‖ − ‖rj‖|, so this tightens the bound at the cost of one dimension."""
    centred = x - mean
    projected = centred @ axes
    rest = ((centred * centred).sum(1) - (projected * projected).sum(1)).clamp_min(0).sqrt()
    return torch.cat([projected, rest[:, None]], 1)


def _exact_order(x: torch.Tensor, sq: torch.Tensor, rows: torch.Tensor, candidates: torch.Tensor,
                 k: int) -> tuple[np.ndarray, torch.Tensor]:
    """The ``k`` nearest of each row's candidates by exact float64 distance (ties in index order), and the k-th
    distance. ``sq``: every row's squared length."""
    nearest, kth = [], []
    # 32 rows at a time: their gathered candidates (32 × C × D float64) stay in cache, 2× faster than 512.
    for block in range(0, len(rows), 32):
        r, c = rows[block:block + 32], candidates[block:block + 32]
        dist = torch.baddbmm(sq[c][:, :, None], x[c].double(), x[r].double()[:, :, None],
                             alpha=-2).squeeze(2) + sq[r, None]
        by_index = c.sort(1)
        order = torch.sort(dist.gather(1, by_index.indices), dim=1, stable=True)
        nearest.append(by_index.values.gather(1, order.indices[:, :k]))
        kth.append(order.values[:, k - 1])
    return torch.cat(nearest).numpy(), torch.cat(kth)
