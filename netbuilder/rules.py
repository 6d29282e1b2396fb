"""Rules that span several fields of an arch and its settings, checked in one place.

``arch validate`` (and every load of an archs file) checks them on an arch's own ``training`` section, where a
violation names its JSON path; the stages and estimators check them again on the resolved settings before any
training. Each rule raises a one-line :class:`RuleViolation`. (Whether a score needs unit-length codes is the
score's own declaration, :attr:`netbuilder.core.scores.AnomalyScore.needs_unit_codes`, tested with
:func:`has_unit_codes`.)
"""
from __future__ import annotations

from typing import Any, Mapping

from .errors import NetbuilderError


class RuleViolation(NetbuilderError):
    """A broken cross-field rule; ``path`` is the JSON path (inside one arch) of the value that breaks it."""

    def __init__(self, path: tuple[str, ...], detail: str) -> None:
        self.path, self.detail = path, detail
        super().__init__(detail)


def has_unit_codes(spec: Mapping[str, Any]) -> bool:
    """Whether the arch's codes are unit-length: ``latent.l2_normalize``, or an ``l2normalize`` layer ending the
    encoder (the two ways an archs file can say it)."""
    if (spec.get("latent") or {}).get("l2_normalize"):
        return True
    encoder = spec.get("encoder") or []
    return bool(encoder) and isinstance(encoder[-1], dict) and encoder[-1].get("type") == "l2normalize"


def output_activation(spec: Mapping[str, Any]) -> str:
    """The decoder's output activation (the arch's ``output_activation``, sigmoid when unset)."""
    return spec.get("output_activation", "sigmoid")


def check_recon_loss(kind: str, spec: Mapping[str, Any], path: tuple[str, ...] = ()) -> None:
    """bce needs outputs in (0, 1): refuse it for an arch whose output activation is not a sigmoid."""
    out = output_activation(spec)
    if kind == "bce" and out != "sigmoid":
        raise RuleViolation(path, f"Invalid value for argument `recon_loss`. bce needs a sigmoid output; arch "
                                  f"'{spec.get('name')}' has output_activation {out!r}. Use recon_loss mse.")


# The settings that replace loss none's final k-means, with the value that leaves it alone.
FINAL_STEPS = {"manifold": "none", "cluster_method": "kmeans"}


def check_final_step(loss: str, settings: Mapping[str, Any], path: tuple[str, ...] = ()) -> None:
    """A manifold step or another clustering method is a final clustering: it only goes with an objective that
    starts from one (loss none, selflabel)."""
    from .core.objectives import OBJECTIVES

    cls = OBJECTIVES.get(loss)
    if cls is not None and cls.final_step:
        return
    users = ", ".join(n for n, c in OBJECTIVES.items() if c.final_step)
    for key, neutral in FINAL_STEPS.items():
        value = settings.get(key) or neutral
        if value != neutral:
            raise RuleViolation((*path, key), f"{key} {value} is a final clustering step: use it with loss "
                                              f"{users} (got loss {loss})")


def check_arch_training(spec: Mapping[str, Any]) -> None:
    """The cross-field rules on an arch's own ``training`` section (what ``arch validate`` runs)."""
    training = spec.get("training") or {}
    if "recon_loss" in training:
        check_recon_loss(training["recon_loss"], spec, ("training", "recon_loss"))
    cluster = training.get("cluster") or {}
    check_final_step(cluster.get("loss", "kld"), cluster, ("training", "cluster"))
