"""The clustering-objective registry: one class per way of clustering the latent space.

An objective declares its own settings (CLI options and schema entries are generated from them), holds its
state (centroids, counts, a DEC target) with ``state_dict``/``load_state_dict`` for checkpoints, supplies the
loss the training loop minimises, and predicts cluster assignments. Registering one::

    @register_objective
    class MyObjective(Objective):
        name = "mine"
        title = "autoencoder + my loss"
        settings = (Setting("my_weight", 0.1, "Weight of my term.", float, minimum=0),)

        def loss(self, model, x, idx, rec): ...

The stage directory (``cluster-<name>``), the ``--loss`` choices, the metrics row and the plot titles all come
from here.
"""
from __future__ import annotations

from typing import Any, Callable, ClassVar

import numpy as np
import torch
from torch import nn

from ...errors import NetbuilderError
from ...settings import Setting

OBJECTIVES: dict[str, type["Objective"]] = {}


class Objective:
    """Base class. Subclasses set ``name``, ``title`` and ``settings`` and override the hooks they need.

    The life cycle, driven by :func:`netbuilder.core.clustering.fit_clustering`: ``start`` with the k-means
    initialisation of the pretrained codes; then, if ``trains``, the training loop calls ``before_step`` and
    ``loss`` for every batch (with ``parameters()`` optimised besides the model's); finally ``predict``. If
    ``follow_up`` names another objective, it runs next, started from these predictions.
    """

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    settings: ClassVar[tuple[Setting, ...]] = ()
    trains: ClassVar[bool] = True
    final_step: ClassVar[bool] = False   # whether the manifold / cluster_method settings apply (check_final_step)
    loss_titles: ClassVar[dict[str, str]] = {}   # titles of the loss parts it logs, for the curves
    # Training-loop defaults this objective needs instead of the clustering stage's (an arch's section and the
    # command line still override them).
    loop_defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, hp: dict[str, Any], n_clusters: int, *, alpha: float = 1.0,
                 device: torch.device | str = "cpu", log: Callable[[str], None] | None = None) -> None:
        self.hp = hp
        self.k = int(n_clusters)
        self.alpha = float(alpha)
        self.device = torch.device(device)
        self.say = log or (lambda _m: None)

    # -------------------------------------------------------------------------------------- life cycle

    def start(self, model: nn.Module, images: Any, codes: np.ndarray, init_pred: np.ndarray,
              centres: np.ndarray, seed: int) -> None:
        """Set up the state from the pretrained codes and their k-means clustering."""

    def parameters(self) -> list[nn.Parameter]:
        """Parameters trained besides the model's (e.g. DEC's centroids)."""
        return []

    def before_step(self, step: int) -> bool:
        """Runs before every optimisation step; True stops training."""
        return False

    def loss(self, model: nn.Module, x: torch.Tensor, idx: torch.Tensor,
             rec: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> dict[str, torch.Tensor]:
        """``{"loss": total, <parts>...}`` for one batch."""
        raise NotImplementedError(f"objective {self.name!r} does not train")

    def centroids(self) -> np.ndarray:
        """The cluster centres in code space (``k × code_dim``)."""
        raise NotImplementedError

    def predict(self, model: nn.Module, images: Any, codes: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Hard assignments and soft assignments (``N × k``, rows sum to 1) of the training ``images``
        (``codes``: their current codes, when the caller has them). By default: the nearest centroid, and
        Student-t soft assignments to the centroids."""
        from ...clustering import nearest, soft_assign
        from ...train import encode_all

        codes = encode_all(model, images, self.device) if codes is None else codes
        centres = self.centroids()
        return nearest(codes, centres), soft_assign(codes, centres, self.alpha)

    def follow_up(self, n_samples: int) -> tuple["Objective", dict[str, Any]] | None:
        """An objective (and its resolved settings) to run after this one on ``n_samples`` samples, starting from
        this one's clusters instead of k-means; None by default."""
        return None

    def report(self, labels: np.ndarray | None) -> dict[str, Any]:
        """What the stage's manifest records about the fitted objective (under ``objective``), after the final
        ``predict``. A ``rows`` list of ``{"method", "title", <scores>}`` adds rows to the metrics table. None
        by default."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """The state a checkpoint must keep to resume training exactly."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output."""


class HeadPredictions:
    """Mixin for objectives whose clusters come from a classifier head on the encoder: the soft assignments are
    the head's softmax on the codes of ``self.model`` (kept in eval mode meanwhile), and the reported centres are
    the mean code of each predicted cluster. Subclasses set ``self.model`` and ``self.centres`` in ``start`` and
    define ``head_logits``."""

    def head_logits(self, z: torch.Tensor) -> torch.Tensor:
        """The head's logits for a batch of codes."""
        raise NotImplementedError

    def _probabilities(self, images: Any) -> np.ndarray:
        from ...train.batches import map_batches

        was_training = self.model.training
        self.model.eval()
        try:
            return map_batches(lambda x: self.head_logits(self.model.encode(x)).softmax(1), images, self.device)
        finally:
            self.model.train(was_training)

    def centroids(self) -> np.ndarray:
        return self.centres

    def predict(self, model: nn.Module, images: Any, codes: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        from ...clustering import class_means

        q = self._probabilities(images)
        pred = q.argmax(1).astype(np.int64)
        if codes is not None:
            # The centres the stage reports and plots: the mean code of each final cluster.
            self.centres = class_means(codes, pred, self.k, fallback=self.centres)
        return pred, q


def register_objective(cls: type[Objective]) -> type[Objective]:
    """Class decorator: add ``cls`` to :data:`OBJECTIVES` under ``cls.name``."""
    if not cls.name or cls.name in OBJECTIVES:
        raise ValueError(f"objective name {cls.name!r} is empty or already registered")
    OBJECTIVES[cls.name] = cls
    return cls


# The order objectives appear in tables and plots: the built-in ones first, then any others by name.
_ORDER = ("none", "kmeans", "kld")


def objective_names() -> list[str]:
    """Registered objective names in display order."""
    return sorted(OBJECTIVES, key=lambda n: (_ORDER.index(n) if n in _ORDER else len(_ORDER), n))


def objective_class(name: str) -> type[Objective]:
    """The registered objective called ``name``, or a one-line error listing the choices."""
    try:
        return OBJECTIVES[name]
    except KeyError:
        raise NetbuilderError(f"Invalid value for argument `loss`. Expected one of {', '.join(objective_names())}. "
                              f"Received loss={name!r}.") from None


def stage_name(name: str) -> str:
    """The stage directory of an objective: ``cluster-<name>``."""
    return f"cluster-{name}"
