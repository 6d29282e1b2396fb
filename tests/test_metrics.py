"""ACC with Hungarian matching, NMI and ARI on hand-checked examples."""
import numpy as np
import pytest

from netbuilder.clustering import dec_target, kmeans, student_t
from netbuilder.metrics import cluster_acc, clustering_scores


def test_acc_is_invariant_to_cluster_renaming():
    y = np.array([0, 0, 1, 1, 2, 2])
    assert cluster_acc(y, np.array([2, 2, 0, 0, 1, 1])) == 1.0


def test_acc_counts_the_best_matching():
    y = np.array([0, 0, 0, 1, 1, 1])
    pred = np.array([1, 1, 0, 0, 0, 0])  # best map: 1->0 (2 right), 0->1 (3 right)
    assert cluster_acc(y, pred) == pytest.approx(5 / 6)


def test_acc_with_more_clusters_than_classes():
    y = np.array([0, 0, 1, 1])
    assert cluster_acc(y, np.array([0, 1, 2, 3])) == pytest.approx(0.5)


def test_scores_flag_degenerate_clustering():
    s = clustering_scores(np.array([0, 1, 0, 1]), np.zeros(4, dtype=int))
    assert s["degenerate"] and s["clusters"] == 1 and s["nmi"] == pytest.approx(0.0) and s["acc"] == 0.5


def test_kmeans_handles_duplicate_points():
    codes = np.zeros((20, 3), dtype=np.float32)
    codes[10:] = 1.0
    labels, centres = kmeans(codes, 3, n_init=2, seed=0)
    assert labels.shape == (20,) and centres.shape == (3, 3)
    assert len(set(labels[:10])) == 1 and len(set(labels[10:])) == 1 and labels[0] != labels[10]


def test_student_t_and_dec_target_by_hand():
    import torch
    z = torch.tensor([[0.0, 0.0]])
    mu = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    q = student_t(z, mu, alpha=1.0)
    # (1+0)^-1 = 1 and (1+1)^-1 = 0.5 → normalised 2/3, 1/3
    assert torch.allclose(q, torch.tensor([[2 / 3, 1 / 3]]))
    p = dec_target(torch.tensor([[0.9, 0.1], [0.2, 0.8]]))
    assert torch.allclose(p.sum(1), torch.ones(2))
    assert p[0, 0] > 0.9 and p[1, 1] > 0.8  # sharper than q
