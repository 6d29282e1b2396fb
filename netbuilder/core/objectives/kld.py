"""DEC/IDEC: the KL divergence between Student-t soft assignments Q and the sharpened target P."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...arch import ClusteringLayer
from ...clustering import dec_target
from ...settings import Setting
from ...train.batches import map_batches
from .base import Objective, register_objective


@register_objective
class KLDivergence(Objective):
    """L = L_rec + γ·KL(P‖Q); P is recomputed on the whole dataset every ``update_interval`` steps and
    training stops once fewer than ``tol`` of the assignments change between two updates."""

    name = "kld"
    title = "autoencoder + KLD (DEC/IDEC)"
    settings = (
        Setting("gamma", 0.1, "Weight of the KL term (kld).", float, minimum=0),
        Setting("update_interval", 140, "Batches between DEC target updates (kld).", int, minimum=1),
        Setting("tol", 0.001, "Stop when fewer than this fraction of assignments change between target updates (kld).",
                float, minimum=0),
    )
    loss_titles = {"kl": "KL term (DEC target)"}

    def start(self, model: nn.Module, images: Any, codes: np.ndarray, init_pred: np.ndarray,
              centres: np.ndarray, seed: int) -> None:
        self.head = ClusteringLayer(self.k, model.code_dim, alpha=self.alpha, centroids=centres).to(self.device)
        self.model, self.images = model, images
        self.p: torch.Tensor = torch.empty(0)
        self.last_pred: np.ndarray | None = None

    def parameters(self) -> list[nn.Parameter]:
        return list(self.head.parameters())

    def _soft(self, images: Any) -> np.ndarray:
        return map_batches(lambda x: self.head(self.model.encode(x)), images, self.device)

    def before_step(self, step: int) -> bool:
        """Every ``update_interval`` steps: a new target P, and the stopping test."""
        if step % max(1, int(self.hp["update_interval"])):
            return False
        self.model.eval()
        q = torch.from_numpy(self._soft(self.images))
        self.model.train()
        self.p = dec_target(q)
        pred = q.argmax(1).numpy()
        stop = False
        tol = float(self.hp["tol"])
        if self.last_pred is not None:
            changed = float((pred != self.last_pred).mean())
            self.say(f"step {step}: target updated, {changed:.4%} of assignments changed")
            stop = changed < tol
            if stop:
                self.say(f"stopping: fewer than tol={tol} of assignments changed")
        self.last_pred = pred
        return stop

    def loss(self, model, x, idx, rec):
        x_hat, z = model(x)
        q = self.head(z)
        kl = F.kl_div(q.clamp_min(1e-12).log(), self.p[idx].to(x.device), reduction="batchmean")
        r = rec(x_hat, x)
        return {"loss": r + float(self.hp["gamma"]) * kl, "rec": r, "kl": kl}

    def centroids(self) -> np.ndarray:
        return self.head.centroids.detach().cpu().numpy()

    def predict(self, model: nn.Module, images: Any, codes: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        q = self._soft(images)
        return q.argmax(1).astype(np.int64), q

    def state_dict(self) -> dict[str, Any]:
        return {"head": self.head.state_dict(), "p": self.p.detach().cpu().clone(),
                "last_pred": torch.from_numpy(self.last_pred) if self.last_pred is not None else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.head.load_state_dict(state["head"])
        self.p = state["p"]
        lp = state.get("last_pred")
        self.last_pred = lp.numpy() if lp is not None else None
