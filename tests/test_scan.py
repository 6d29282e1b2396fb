"""The neighbour-consistency (SCAN) objective: neighbour mining, its two loss terms, head selection, resuming,
and clustering generated patterns with every cluster kept in use."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from netbuilder.core.estimator import DeepClustering
from netbuilder.core.objectives import cluster_settings
from netbuilder.core.arrays import raw_rows
from netbuilder.core.neighbours import nearest_neighbours
from netbuilder.core.objectives.scan import NeighbourConsistency, chain_neighbours, mutual_chains, scan_loss
from netbuilder.metrics import cluster_acc


def test_mutual_chains_link_rows_through_chains_of_mutual_neighbours():
    # Two evenly spaced lines (10 and 8 points) far apart, and a pair far from both.
    x = np.concatenate([np.arange(10.0), 100 + np.arange(8.0), [500.0, 501.0]])[:, None].astype(np.float32)
    nearest = nearest_neighbours(x, 3)
    chains = mutual_chains(nearest, 2)
    assert len(set(chains[:10])) == 1 and len(set(chains[10:18])) == 1 and len(set(chains[18:])) == 1
    assert len(set(chains)) == 3
    # With one mutual neighbour only, the ends of a line pair off and the line breaks into pieces.
    assert len(set(mutual_chains(nearest, 1)[:10])) > 1


def test_chain_neighbours_draw_from_the_chain_except_tiny_and_oversized_ones():
    x = np.concatenate([np.arange(10.0), 100 + np.arange(8.0), [500.0, 501.0, 1000.0]])[:, None].astype(np.float32)
    nearest = nearest_neighbours(x, 2)
    chains = mutual_chains(nearest, 2)
    assert (chains == chains[20]).sum() == 1                                  # the far point: a chain of one
    out = chain_neighbours(nearest, chains, max_size=10, seed=0)
    assert out.shape == (21, 4) and np.array_equal(out[:, :2], nearest)
    drawn = out[:18, 2:]
    assert all(i not in row for i, row in enumerate(drawn))                  # never the row itself
    assert np.array_equal(chains[drawn], np.repeat(chains[:18, None], 2, 1))  # always from the row's chain
    assert (np.abs(drawn - np.arange(18)[:, None]) > 2).any()                # and beyond its nearest
    assert np.array_equal(out[18:, 2:], nearest[18:])   # chains of 2 (at most k + 1) and 1: the nearest again
    capped = chain_neighbours(nearest, chains, max_size=9, seed=0)
    assert np.array_equal(capped[:10, 2:], nearest[:10])   # the 10-long chain is larger than a cluster may be
    assert np.array_equal(capped[10:18], out[10:18])
    assert np.array_equal(out, chain_neighbours(nearest, chains, max_size=10, seed=0))
    assert not np.array_equal(out, chain_neighbours(nearest, chains, max_size=10, seed=1))


def test_raw_rows_scale_images_and_keep_signals():
    img = np.full((2, 1, 2, 2), 255, np.uint8)
    assert np.allclose(raw_rows(img), 1.0) and raw_rows(img).shape == (2, 4)
    sig = np.full((2, 3, 4), -2.5, np.float32)
    assert np.allclose(raw_rows(sig), -2.5) and raw_rows(sig).shape == (2, 12)


def test_scan_loss_terms():
    one_hot = torch.eye(4)
    cons, ent = scan_loss(one_hot, one_hot)
    assert cons.item() == pytest.approx(0.0, abs=1e-6)          # agreeing, confident pairs cost nothing
    assert ent.item() == pytest.approx(-np.log(4), abs=1e-6)    # four clusters used equally: lowest value
    cons, _ = scan_loss(one_hot, one_hot.roll(1, 0))
    assert cons.item() > 10                                     # confident disagreement is expensive
    _, ent = scan_loss(one_hot[[0, 0, 0, 0]], one_hot[[0, 0, 0, 0]])
    assert ent.item() == pytest.approx(0.0, abs=1e-6)           # one cluster for everything: highest value


def _blobs(n_per: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Four 8×8 patterns (bars in four places) with noise: easy for neighbours, not for the brightness."""
    rng = np.random.default_rng(seed)
    x, y = [], []
    for c in range(4):
        base = np.zeros((8, 8), np.float32)
        base[:, 2 * c:2 * c + 2] = 1.0
        for _ in range(n_per):
            x.append(np.clip(base + rng.normal(0, 0.15, (8, 8)), 0, 1))
            y.append(c)
    return (np.stack(x)[:, None] * 255).astype(np.uint8), np.array(y)


def _fit(x: np.ndarray, seed: int = 0, **cp) -> DeepClustering:
    params = {"epochs": 40, "batch_size": 64, "lr": 1e-3, "heads": 3, **cp}
    return DeepClustering(arch="auto", n_clusters=4, objective="scan", random_state=seed, epochs=5,
                          cluster_params=params).fit(x)


def test_scan_clusters_generated_patterns_and_reports_its_best_head():
    x, y = _blobs()
    est = _fit(x)
    assert cluster_acc(y, est.labels_) > 0.95
    assert np.bincount(est.labels_, minlength=4).min() > 30   # the entropy term keeps every cluster in use


def test_scan_is_repeatable_and_depends_on_the_seed():
    x, _ = _blobs(30)
    a, b = _fit(x, epochs=3), _fit(x, epochs=3)
    assert np.array_equal(a.labels_, b.labels_)
    for pa, pb in zip(a.model_.parameters(), b.model_.parameters()):
        assert torch.equal(pa, pb)
    c = _fit(x, seed=1, epochs=3)
    assert any(not torch.equal(pa, pc) for pa, pc in zip(a.model_.parameters(), c.model_.parameters()))


def test_best_head_is_the_lowest_loss_of_the_last_epoch():
    hp = cluster_settings("scan").resolve({"loss": "scan", "heads": 3, "batch_size": 10})
    obj = NeighbourConsistency(hp, 2)
    assert obj.hp["neighbor_space"] == "input"
    obj.epoch_steps, obj.head_loss = 5, torch.tensor([3.0, -1.0, 2.0])
    assert obj.best_head() == 1
    obj.before_step(10)                       # a new epoch starts: the sums restart
    assert not obj.head_loss.any() and obj.best_head() == 0
    obj.head_loss += torch.tensor([1.0, 2.0, 0.5])
    obj.before_step(11)                       # mid-epoch: kept
    assert obj.best_head() == 2 and obj.report(None)["best_head"] == 2


def test_scan_mines_neighbours_in_the_codes_when_asked(monkeypatch):
    import netbuilder.core.objectives.scan as scan

    seen = []
    real = scan.nearest_neighbours
    monkeypatch.setattr(scan, "nearest_neighbours", lambda f, k: seen.append(f.shape) or real(f, k))
    x, y = _blobs(30)
    _fit(x, epochs=2, neighbor_space="codes")
    _fit(x, epochs=2)
    assert seen[0][1] == 10 and seen[1][1] == 64   # the auto arch's 10-dim codes, then the 8×8 pixels


def test_scan_adds_chain_neighbours_unless_turned_off(monkeypatch):
    import netbuilder.core.objectives.scan as scan

    tables = []
    real = scan.chain_neighbours
    monkeypatch.setattr(scan, "chain_neighbours", lambda *a, **kw: tables.append(real(*a, **kw)) or tables[-1])
    x, y = _blobs(30)
    _fit(x, epochs=1)
    assert len(tables) == 1 and tables[0].shape == (120, 10)     # 5 nearest, then 5 from the chain
    chains = scan.mutual_chains(tables[0][:, :5], 3)
    assert all(len(set(y[chains == c])) == 1 for c in set(chains))   # on easy data every chain is one pattern
    assert np.array_equal(y[tables[0][:, 5:]], np.repeat(y[:, None], 5, 1))
    _fit(x, epochs=1, chain_neighbors=0)
    assert len(tables) == 1                                      # off: plain SCAN's table


def test_scan_brings_its_own_loop_defaults_and_leaves_the_others_alone():
    scan, kld = cluster_settings("scan").defaults(), cluster_settings("kld").defaults()
    assert (scan["epochs"], scan["batch_size"], scan["lr"], scan["augment"]) == (200, 128, 1e-3, True)
    assert (kld["epochs"], kld["batch_size"], kld["lr"], kld["augment"]) == (20, 256, 1e-4, False)
    assert cluster_settings().defaults()["epochs"] == 20          # the CLI's and the schema's generic default
    hp = cluster_settings("scan").resolve({"loss": "scan", "epochs": 7}, {"lr": 0.01})
    assert hp["epochs"] == 7 and hp["lr"] == 0.01                  # command line and arch section still win
    # SCAN's budget is steps: 3,000 of them caps the epochs of large data; a given epoch count lifts the cap
    assert scan["max_steps"] == 3000 and kld["max_steps"] == 0
    assert hp["max_steps"] == 0
    assert cluster_settings("scan").resolve({"loss": "scan", "epochs": 7, "max_steps": 50})["max_steps"] == 50


def test_self_labelling_follows_scan_only_on_large_enough_data():
    hp = cluster_settings("scan").resolve({"loss": "scan"})
    assert (hp["self_label_epochs"], hp["self_label_min_size"], hp["self_label_min_side"]) == (9, 500, 28)
    obj = NeighbourConsistency(hp, 4)
    obj.source = torch.zeros((1, 1, 28, 28), dtype=torch.uint8)   # what start() keeps: MNIST-sized images
    assert obj.follow_up(1999) is None                 # below 500 per cluster: SCAN alone
    obj.source = torch.zeros((1, 1, 16, 28), dtype=torch.uint8)
    assert obj.follow_up(2000) is None                 # shorter side below 28 px: SCAN alone
    obj.source = torch.zeros((1, 3, 64), dtype=torch.float32)
    assert obj.follow_up(2000) is None                 # signals: SCAN alone
    obj.source = torch.zeros((1, 3, 28, 32), dtype=torch.uint8)
    then, then_hp = obj.follow_up(2000)
    assert then.name == "selflabel" and then.k == 4
    assert (then_hp["epochs"], then_hp["lr"], then_hp["batch_size"], then_hp["augment"],
            then_hp["relabel_every"], then_hp["manifold"]) == (9, 1e-4, 256, True, 3, "none")
    off = NeighbourConsistency({**hp, "self_label_epochs": 0}, 4)
    off.source = obj.source
    assert off.follow_up(10**6) is None


def test_self_labelling_starts_from_scans_clusters_and_joins_the_histories(monkeypatch):
    from netbuilder.core.objectives.selflabel import SelfLabelling

    starts = []
    real_start = SelfLabelling.start
    monkeypatch.setattr(SelfLabelling, "start", lambda self, model, images, codes, init_pred, centres, seed:
                        starts.append(init_pred.copy()) or real_start(self, model, images, codes, init_pred,
                                                                      centres, seed))
    x, y = _blobs()                                    # 60 images per cluster
    scan_only = _fit(x)
    est = _fit(x, self_label_min_size=50, self_label_min_side=8, self_label_epochs=4)
    assert len(starts) == 1 and np.array_equal(starts[0], scan_only.labels_)   # SCAN's clusters, not k-means
    scan_epochs = [r for r in est.history_ if "consistency" in r]
    ce_epochs = [r for r in est.history_ if "ce" in r]
    assert len(scan_epochs) == 40 and len(ce_epochs) == 4
    assert ce_epochs[-1]["ce"] < ce_epochs[0]["ce"]    # the classifier learns SCAN's labels
    assert cluster_acc(y, est.labels_) > 0.95


def test_scan_without_its_follow_up_is_unchanged_on_small_data():
    x, _ = _blobs(30)                                   # 30 per cluster of 8 px images: below both rules
    a, b = _fit(x, epochs=3), _fit(x, epochs=3, self_label_epochs=0)
    assert np.array_equal(a.labels_, b.labels_)
    for pa, pb in zip(a.model_.parameters(), b.model_.parameters()):
        assert torch.equal(pa, pb)
