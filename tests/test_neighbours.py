"""Exact nearest-neighbour search: scikit-learn's on small data, the pruned search on large data, and both
giving the same neighbours, duplicates included."""
from __future__ import annotations

import numpy as np
import pytest

from netbuilder.core import neighbours
from netbuilder.core.neighbours import _plain, _pruned, nearest_neighbours


def test_nearest_neighbours_exclude_the_row_itself_even_among_duplicates():
    x = np.array([[0.0], [0.0], [1.0], [1.1], [5.0]], np.float32)
    nb = nearest_neighbours(x, 2)
    assert nb.shape == (5, 2)
    assert all(i not in row for i, row in enumerate(nb))
    assert nb[0, 0] == 1 and nb[1, 0] == 0          # the duplicate is the nearest other row
    assert set(nb[2]) == {3, 0} or set(nb[2]) == {3, 1}
    assert nearest_neighbours(x[:2], 5).shape == (2, 1)  # never more neighbours than other rows


def _low_rank(n: int, d: int, rank: int, noise: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, rank)) @ rng.normal(size=(rank, d)) + noise * rng.normal(size=(n, d))).astype(
        np.float32)


@pytest.mark.parametrize("rank, noise", [(8, 0.1), (40, 1.0)])
def test_pruned_search_finds_exactly_the_plain_searchs_neighbours(monkeypatch, rank, noise):
    # Few axes and candidates: with (8, 0.1) the bound settles almost every row, with (40, 1.0) (more structure
    # than axes, and strong noise) many rows fall back to the full search. Both must give the exact neighbours.
    monkeypatch.setattr(neighbours, "PRUNE_DIMS", 10)
    monkeypatch.setattr(neighbours, "PRUNE_CANDIDATES", 12)
    x = _low_rank(3000, 60, rank, noise)
    assert np.array_equal(_pruned(x, 5), _plain(x, 5))


def test_pruned_search_keeps_duplicates_and_never_the_row_itself(monkeypatch):
    monkeypatch.setattr(neighbours, "PRUNE_DIMS", 10)
    x = _low_rank(2000, 60, 8, 0.1)
    x[1000:1010] = x[0]                  # ten copies of row 0
    nb = _pruned(x, 5)
    assert all(i not in row for i, row in enumerate(nb))
    assert set(nb[0]) <= set(range(1000, 1010))
    assert all(set(nb[i]) <= {0, *range(1000, 1010)} - {i} for i in range(1000, 1010))


def test_large_inputs_take_the_pruned_search(monkeypatch):
    seen = []
    monkeypatch.setattr(neighbours, "PLAIN_MAX_ROWS", 500)
    monkeypatch.setattr(neighbours, "PRUNE_DIMS", 10)
    monkeypatch.setattr(neighbours, "_pruned", lambda f, k: seen.append(f.shape) or _pruned(f, k))
    x = _low_rank(1000, 60, 8, 0.1)
    assert np.array_equal(nearest_neighbours(x, 5), _plain(x, 5))
    assert seen == [(1000, 60)]
    nearest_neighbours(x[:400], 5)       # at most PLAIN_MAX_ROWS rows: scikit-learn's search
    nearest_neighbours(x[:, :20], 5)     # too few columns to prune with 10 axes
    assert seen == [(1000, 60)]
