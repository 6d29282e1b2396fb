"""Neighbour consistency (SCAN, Van Gansbeke et al. 2020): cluster heads on the encoder are trained so that every
sample and one of its nearest neighbours get the same cluster, while the clusters stay equally used.

The neighbours are mined once, before training, in the raw input (``neighbor_space input``: pixels, or the
standardised windows of a signal) or in the pretrained codes. Both the sample and its neighbour pass through the
loop's random shifts and rotations (``augment``), so the heads learn what a class has in common rather than the
pixels two neighbours share. Several heads are trained on the same encoder at once; the one with the lowest loss
over the last epoch gives the clusters (label-free, as in SCAN).

Chains (``chain_neighbors``, netbuilder's addition): nearest neighbours tie each sample only to its few closest,
so a class that is a long chain of gradually changing samples (an object photographed from 72 angles, a slowly
drifting process) can be cut in two wherever the equal-use term prefers. Two samples each among the other's 3
nearest are linked, and a sample's chain is everything linked to it through such links (the connected component
of the mutual-neighbour graph, as FINCH builds clusters from first-neighbour links). Half of each sample's
neighbour table is then drawn from its chain, so SCAN pulls the whole chain into one cluster. Mutual links at 3
neighbours are conservative: their chains were 100 % one class on COIL-20 and DIGITS and 97.6 % on MNIST; at 4,
MNIST's chains merge into one of 40,669 images. A chain larger than the mean cluster (n / k) cannot be one cluster
and is not used. Measured (README, 3 seeds): COIL-20 at 32 px, auto arch, ACC 0.782 → 0.997 (seed 0 on the same
weights: 0.793 → 0.999); MNIST's auto recipe 0.983 → 0.984; DIGITS 0.953 → 0.954.

On many, large enough images (at least ``self_label_min_size`` per cluster on average, at least
``self_label_min_side`` pixels on their shorter side) SCAN's clusters then become the labels of a self-labelling
run (:mod:`.selflabel`, SCAN's own last step) for ``self_label_epochs`` epochs at a tenth of the learning rate.
Measured (README): MNIST, the auto recipe over 3 seeds, ACC 0.975 → 0.983; MNIST's 10,000 test images (1,000 per
cluster), seed 0, 0.9664 → 0.9735. It lowered ACC on DIGITS' 8 px images (180 per cluster: 0.957 → 0.90–0.95
whatever its length or learning rate) and on MNIST downsampled to 16 px (7,000 per cluster: 0.9721 → 0.9639),
hence both rules.

Why it helps where UMAP + k-means on the same neighbours does not (measured on DIGITS, seed 0: pixel neighbours
are 96.5 % same-class at 10 neighbours, yet UMAP + k-means of the pixels gives ACC 0.88, merging ones and eights;
the auto arch's 10-dim codes are only 90 % same-class): the heads see the images themselves, shifted and rotated,
rather than a graph of them (README, Results).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.csgraph import connected_components
from torch import nn

from ...settings import Setting
from ..arrays import raw_rows
from ..neighbours import nearest_neighbours
from ...train.augment import random_affine
from ...train.batches import as_uint8_tensor, to_float_batch
from ...train.loop import epoch_steps
from .base import HeadPredictions, Objective, register_objective
from .selflabel import TEMPERATURE


def mutual_chains(neighbours: np.ndarray, k: int) -> np.ndarray:
    """Each row's chain: the label of its connected component in the graph that links two rows when each is among
    the other's ``k`` nearest (the first ``k`` columns of ``neighbours``)."""
    n = len(neighbours)
    k = min(k, neighbours.shape[1])
    graph = sp.csr_matrix((np.ones(n * k), (np.repeat(np.arange(n), k), neighbours[:, :k].ravel())), shape=(n, n))
    return connected_components(graph.minimum(graph.T), directed=False)[1]


def chain_neighbours(neighbours: np.ndarray, chains: np.ndarray, max_size: int, seed: int) -> np.ndarray:
    """``neighbours`` (``N × k``) with ``k`` more columns drawn at random (with replacement) from each row's chain,
    itself excluded. Rows whose chain has at most ``k + 1`` members (its members are then mostly among the row's
    own nearest) or more than ``max_size`` (larger than a cluster should be) repeat their nearest instead."""
    n, k = neighbours.shape
    order = np.argsort(chains, kind="stable")
    sizes = np.bincount(chains)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n) - starts[chains[order]]
    size = sizes[chains][:, None]
    # A draw among the other size - 1 members: skip over the row's own position in its chain.
    draw = np.random.default_rng(seed).integers(0, np.maximum(size - 1, 1), size=(n, k))
    draw += draw >= position[:, None]
    draw = np.minimum(draw, size - 1)   # a chain of one has no one else to draw (and is not used)
    drawn = order[starts[chains][:, None] + draw]
    use = (size > k + 1) & (size <= max_size)
    return np.concatenate([neighbours, np.where(use, drawn, neighbours)], axis=1)


def scan_loss(p: torch.Tensor, p_neighbour: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """SCAN's two terms for one head: ``-log <p_i, p_j>`` averaged over the pairs (consistency), and the
    negative entropy of the mean assignment (low when every cluster is used equally)."""
    consistency = -torch.log((p * p_neighbour).sum(1).clamp_min(1e-7)).mean()
    mean = p.mean(0)
    return consistency, (mean * torch.log(mean.clamp_min(1e-7))).sum()


# The self-labelling after SCAN: selflabel's rounds (3 of 3 epochs on MNIST) at a tenth of SCAN's learning rate,
# with the same shifts and rotations. Measured on MNIST's 10,000 test images: lr 1e-4 0.9735, 1e-3 0.9721.
SELF_LABEL_LOOP: dict[str, Any] = {"batch_size": 256, "lr": 1e-4, "augment": True, "relabel_every": 3,
                                   "max_steps": 0}


@register_objective
class NeighbourConsistency(HeadPredictions, Objective):
    """SCAN's clustering step on the pretrained encoder (see the module docstring)."""

    name = "scan"
    title = "autoencoder + neighbour consistency (SCAN)"
    trains = True
    settings = (
        Setting("scan_neighbors", 5, "Nearest neighbours each sample's cluster must agree with (scan).", int,
                minimum=1),
        Setting("chain_neighbors", 3, "Also draw as many neighbours again from each sample's chain: its connected "
                "component in the graph linking two samples when each is among the other's this many nearest (the "
                "poses of one object), when the chain is no larger than the mean cluster; 0: off (scan).", int,
                minimum=0),
        Setting("neighbor_space", "input", "Where the neighbours are mined: the raw input (pixels / standardised "
                "windows) or the pretrained codes (scan).", str, choices=("input", "codes")),
        Setting("entropy_weight", 2.0, "Weight of the equal-cluster-use term (scan).", float, minimum=0),
        Setting("self_label_epochs", 9, "Epochs of self-labelling after SCAN, started from its clusters and "
                "relabelled every 3 (scan; 0: off).", int, minimum=0),
        Setting("self_label_min_size", 500, "Self-label after SCAN only when the data has at least this many "
                "samples per cluster on average: on small data it lowers accuracy (scan).", int, minimum=1),
        Setting("self_label_min_side", 28, "Self-label after SCAN only on images at least this many pixels on "
                "their shorter side (not signals): on 8 and 16 px digits it lowered accuracy (scan).", int,
                minimum=1),
        Setting("heads", 10, "Cluster heads trained together; the lowest-loss one gives the clusters (scan).", int,
                minimum=1),
        TEMPERATURE,
    )
    loss_titles = {"consistency": "-log agreement with a neighbour", "entropy": "negative entropy of cluster use"}
    # SCAN's heads start from chance: it needs far more steps than the refinements that start from k-means
    # (200 epochs of batch 128 = 3,000 steps on DIGITS' 1,797 images). max_steps keeps about that many on larger
    # data: 6 epochs of MNIST's 70,000 images (ACC 0.9744 after the first, 0.9772 after the sixth; README).
    loop_defaults = {"epochs": 200, "batch_size": 128, "lr": 1e-3, "augment": True, "max_steps": 3000}

    def start(self, model: nn.Module, images: Any, codes: np.ndarray, init_pred: np.ndarray,
              centres: np.ndarray, seed: int) -> None:
        self.model, self.seed = model, int(seed)
        self.centres = centres
        space = codes if self.hp["neighbor_space"] == "codes" else raw_rows(images)
        k, chain_k = int(self.hp["scan_neighbors"]), int(self.hp["chain_neighbors"])
        nearest = nearest_neighbours(space, max(k, chain_k))
        neighbours = nearest[:, :k]
        chained = ""
        if chain_k:
            chains = mutual_chains(nearest, chain_k)
            neighbours = chain_neighbours(neighbours, chains, len(space) // self.k, self.seed)
            chained = f" and {k} from its chain ({chains.max() + 1} chains of mutual {chain_k}-nearest neighbours)"
        self.neighbours = torch.from_numpy(neighbours)
        self.say(f"scan: {k} nearest neighbours per sample{chained}, mined in the {self.hp['neighbor_space']}")
        with torch.random.fork_rng(devices=[]):  # the heads' initial weights, without touching the global stream
            torch.manual_seed(self.seed)
            self.heads = nn.ModuleList(nn.Linear(codes.shape[1], self.k) for _ in range(int(self.hp["heads"])))
        self.heads.to(self.device)
        # float64 on the device: no host sync per step, and the same sums as adding Python floats.
        self.head_loss = torch.zeros(len(self.heads), dtype=torch.float64, device=self.device)
        self.epoch_steps = epoch_steps(len(codes), int(self.hp["batch_size"]), bool(self.hp.get("drop_last")))
        self.step = 0
        self.source = as_uint8_tensor(images)

    def parameters(self) -> list[nn.Parameter]:
        return list(self.heads.parameters())

    def before_step(self, step: int) -> bool:
        self.step = step
        if step % self.epoch_steps == 0:
            self.head_loss.zero_()  # the heads are compared on the last epoch's losses
        return False

    def _logits(self, head: nn.Module, z: torch.Tensor) -> torch.Tensor:
        return head(z) / float(self.hp["temperature"])

    def loss(self, model, x, idx, rec):
        # One random neighbour per sample; the random numbers depend on the step only, so a resumed run repeats them.
        gen = torch.Generator().manual_seed(self.seed * 1000003 + self.step)
        nb_idx = self.neighbours[idx.cpu(), torch.randint(self.neighbours.shape[1], (len(idx),), generator=gen)]
        xn = to_float_batch(self.source[nb_idx], x.device)
        if bool(self.hp["augment"]):
            xn = random_affine(xn, gen)
        z, zn = model.encode(x), model.encode(xn)
        cons_sum = ent_sum = torch.zeros((), device=x.device)
        for h, head in enumerate(self.heads):
            cons, ent = scan_loss(self._logits(head, z).softmax(1), self._logits(head, zn).softmax(1))
            self.head_loss[h] += (cons.detach() + self.hp["entropy_weight"] * ent.detach()).double()
            cons_sum, ent_sum = cons_sum + cons, ent_sum + ent
        n = len(self.heads)
        loss = (cons_sum + float(self.hp["entropy_weight"]) * ent_sum) / n
        return {"loss": loss, "consistency": cons_sum / n, "entropy": ent_sum / n}

    def follow_up(self, n_samples: int) -> tuple[Objective, dict[str, Any]] | None:
        """Self-labelling from SCAN's clusters, on enough images that are large enough (module docstring)."""
        epochs = int(self.hp["self_label_epochs"])
        images = self.source.dim() == 4 and min(self.source.shape[2:]) >= int(self.hp["self_label_min_side"])
        if epochs <= 0 or not images or n_samples < int(self.hp["self_label_min_size"]) * self.k:
            return None
        from . import cluster_settings, objective_class

        hp = cluster_settings("selflabel").resolve({**SELF_LABEL_LOOP, "loss": "selflabel", "epochs": epochs,
                                                    "temperature": self.hp["temperature"]})
        self.say(f"scan: self-labelling for {epochs} epochs from its clusters")
        return objective_class("selflabel")(hp, self.k, alpha=self.alpha, device=self.device, log=self.say), hp

    def best_head(self) -> int:
        """The head with the lowest loss over the last epoch (head 0 before any training)."""
        return int(torch.argmin(self.head_loss)) if bool(self.head_loss.any()) else 0

    def head_logits(self, z: torch.Tensor) -> torch.Tensor:
        return self._logits(self.heads[self.best_head()], z)

    def report(self, labels: np.ndarray | None) -> dict[str, Any]:
        per_epoch = self.head_loss.cpu() / max(1, self.epoch_steps)
        return {"best_head": self.best_head(), "head_losses": [round(float(v), 4) for v in per_epoch]}

    def state_dict(self) -> dict[str, Any]:
        return {"heads": self.heads.state_dict(), "head_loss": self.head_loss.cpu().clone(),
                "centres": torch.from_numpy(np.ascontiguousarray(self.centres, dtype=np.float32))}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "heads" in state:
            self.heads.load_state_dict(state["heads"])
            self.head_loss = state["head_loss"].to(self.device, torch.float64)
            self.centres = state["centres"].numpy().copy()
