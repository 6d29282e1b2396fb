"""The modules a spec becomes: :class:`Autoencoder` and the clustering head :class:`ClusteringLayer`."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ArchError
from .blocks import IndexStore, MaxIndexUnpool, MaxPoolWithIndices, RepeatUnpool
from .errors import fmt_shape
from .plan import Plan
from .registry import ShapeContext

__all__ = ["Autoencoder", "ClusteringLayer", "RepeatUnpool", "MaxIndexUnpool", "MaxPoolWithIndices"]


class Autoencoder(nn.Module):
    """An encoder/decoder pair built from a resolved spec and its shape plan (see :func:`build_autoencoder`).

    Codes are always flat: :meth:`encode` returns ``(N, code_dim)`` and :meth:`decode` accepts it.

    Max-unpooling (``MaxPool2D*`` in the original format, ``return_indices`` pools) needs the argmax positions
    of the *same* batch's pools, so :meth:`decode` only works right after :meth:`encode` of that batch (which
    :meth:`forward` does); decoding arbitrary codes, e.g. cluster centres, raises an :class:`ArchError`.
    """

    def __init__(self, spec: dict[str, Any], plan: Plan) -> None:
        super().__init__()
        self.spec = spec
        self.input_shape: tuple[int, ...] = tuple(plan.input_shape)
        self.code_shape: tuple[int, ...] = tuple(plan.code_shape)
        self.code_dim: int = int(plan.code_dim)
        self.l2_normalized: bool = plan.l2_normalized
        self._store = IndexStore()
        self.encoder = nn.Sequential(*[
            p.layer.build(p.input_shape, ShapeContext("encoder", i, plan.encoder, self._store))
            for i, p in enumerate(plan.encoder)])
        self.decoder = nn.Sequential(*[
            p.layer.build(p.input_shape, ShapeContext("decoder", i, plan.encoder, self._store))
            for i, p in enumerate(plan.decoder)])
        self._rows = [(p.part, p.layer.describe_for(p.input_shape), p.output_shape)
                      for p in plan.encoder + plan.decoder]
        self._unpool_keys = [m.key for m in self.decoder.modules() if isinstance(m, MaxIndexUnpool)]
        # The last encoder layer with a spatial output ([C, L] or [C, H, W]): where feature maps are read.
        spatial = [i for i, p in enumerate(plan.encoder) if len(p.output_shape) >= 2]
        self.maps_index: int | None = spatial[-1] if spatial else None
        self.maps_shape: tuple[int, ...] | None = tuple(plan.encoder[spatial[-1]].output_shape) if spatial else None

    @property
    def name(self) -> str:
        return str(self.spec.get("name", ""))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Codes of a batch ``x`` of shape ``(N, *input_shape)``, flattened to ``(N, code_dim)``."""
        self._check_input(x)
        return self.encoder(x).flatten(1)

    def _check_input(self, x: torch.Tensor) -> None:
        if tuple(x.shape[1:]) != self.input_shape:
            raise ArchError(f'arch "{self.name}" expects inputs of shape (N, {", ".join(map(str, self.input_shape))})'
                            f", received {tuple(x.shape)}")

    def encode_with_maps(self, x: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        """``(maps, z)``: the feature maps (see :meth:`feature_maps`) and the flat code, from one pass."""
        if self.maps_index is None:
            return None, self.encode(x)
        self._check_input(x)
        maps = self.encoder[:self.maps_index + 1](x)
        return maps, self.encoder[self.maps_index + 1:](maps).flatten(1)

    def feature_maps(self, x: torch.Tensor) -> torch.Tensor | None:
        """The last spatial activation of the encoder (``(N, C, L)`` or ``(N, C, H, W)``, e.g. the output of
        the last conv before ``flatten``), or ``None`` when the encoder has no spatial layer (dense archs)."""
        return self.encode_with_maps(x)[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Reconstructions from flat codes ``(N, code_dim)`` (or ``(N, *code_shape)``)."""
        n = z.shape[0]
        if z.dim() == 2 and z.shape[1] == self.code_dim:
            z = z.reshape(n, *self.code_shape)
        elif tuple(z.shape[1:]) != self.code_shape:
            raise ArchError(f'arch "{self.name}" decodes codes of shape (N, {self.code_dim}), received {tuple(z.shape)}')
        if self._unpool_keys and not all(self._store.has(k) for k in self._unpool_keys):
            raise ArchError(f'arch "{self.name}" unpools with the indices of its max pools, so decode() needs a '
                            "preceding encode() of the same batch; use forward(x), or an arch whose pools unpool "
                            "by repeating")
        try:
            return self.decoder(z)
        finally:
            self._store.clear()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x_hat, z)``: the reconstruction and the flat code."""
        z = self.encode(x)
        return self.decode(z), z

    def summary(self) -> list[dict[str, Any]]:
        """One row per encoder and decoder layer: part, layer description, output shape, parameter count."""
        rows = []
        modules = list(self.encoder) + list(self.decoder)
        for (part, text, shape), module in zip(self._rows, modules):
            params = sum(p.numel() for p in module.parameters())
            rows.append({"part": part, "layer": text, "output_shape": tuple(shape), "params": int(params)})
        return rows

    def extra_repr(self) -> str:
        return f"name={self.name!r}, input={fmt_shape(self.input_shape)}, code={self.code_dim}"


def _check_positive(name: str, value: Any, integer: bool) -> None:
    ok = (isinstance(value, (int, np.integer)) and not isinstance(value, bool)) if integer else \
        isinstance(value, (int, float, np.number)) and not isinstance(value, bool)
    if not ok or value <= 0:
        kind = "a strictly positive integer" if integer else "a strictly positive value"
        raise ValueError(f"Invalid value for argument `{name}`. Expected {kind}. Received {name}={value!r}.")


class ClusteringLayer(nn.Module):
    """Soft assignment of codes to learnable centroids with a Student-t kernel (DEC/DCEC).

    ``q_ij ∝ (1 + ||z_i − μ_j||² / α) ^ (−(α+1)/2)``, normalised over clusters ``j``.
    """

    def __init__(self, n_clusters: int, dim: int, alpha: float = 1.0,
                 centroids: torch.Tensor | np.ndarray | None = None) -> None:
        super().__init__()
        _check_positive("n_clusters", n_clusters, True)
        _check_positive("dim", dim, True)
        _check_positive("alpha", alpha, False)
        self.n_clusters, self.dim, self.alpha = int(n_clusters), int(dim), float(alpha)
        self.centroids = nn.Parameter(torch.empty(self.n_clusters, self.dim))
        if centroids is None:
            nn.init.xavier_uniform_(self.centroids)
        else:
            self.set_centroids(centroids)

    def set_centroids(self, centres: torch.Tensor | np.ndarray) -> None:
        """Overwrite the centroids (e.g. with k-means centres) in place."""
        values = torch.as_tensor(np.asarray(centres) if not isinstance(centres, torch.Tensor) else centres)
        if tuple(values.shape) != (self.n_clusters, self.dim):
            raise ValueError(f"Invalid value for argument `centres`. Expected shape ({self.n_clusters}, {self.dim}). "
                             f"Received shape {tuple(values.shape)}.")
        with torch.no_grad():
            self.centroids.copy_(values.to(self.centroids))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Soft assignments ``q`` of shape ``(N, n_clusters)``; every row sums to 1."""
        d2 = (z.unsqueeze(1) - self.centroids.unsqueeze(0)).pow(2).sum(-1)
        # Normalising in log space keeps rows valid even when every kernel value underflows.
        logits = -(self.alpha + 1.0) / 2.0 * torch.log1p(d2 / self.alpha)
        return torch.softmax(logits, dim=1)

    def extra_repr(self) -> str:
        return f"n_clusters={self.n_clusters}, dim={self.dim}, alpha={self.alpha}"
