"""Clustering objectives, one module each; every module here is imported, so a new objective is one file.

See :mod:`netbuilder.core.objectives.base` for the interface and the registry.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import replace

from ...settings import MAX_STEPS, TRAINING, Setting, SettingsGroup
from .base import OBJECTIVES, Objective, objective_class, objective_names, register_objective, stage_name

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _info.name != "base":
        importlib.import_module(f"{__name__}.{_info.name}")


def cluster_settings(loss: str | None = None) -> SettingsGroup:
    """The clustering stage's settings: the training loop's (with the clustering defaults, or the objective
    ``loss``'s own ``loop_defaults``), the objective choice, the k-means initialisation, the ``--clusters auto``
    range, and the objective ``loss``'s own settings (every registered objective's when ``loss`` is None: the
    command-line options and the schema)."""
    from ..kselect import SETTINGS as AUTO_K

    names = objective_names()
    common = [Setting("loss", "kld", "Clustering objective: " + "; ".join(f"{n}: {OBJECTIVES[n].title}" for n in names)
                      + ".", str, choices=tuple(names)),
              Setting("n_init", 20, "Restarts of the k-means initialisation.", int, minimum=1), MAX_STEPS]
    own = [s for n in ([loss] if loss else names) for s in objective_class(n).settings]
    kind = f"clustering with loss {loss}" if loss else "clustering"
    loop = {"epochs": 20, "lr": 1e-4, **(objective_class(loss).loop_defaults if loss else {})}
    group = TRAINING.extended(kind, [*common, *AUTO_K, *own], **loop)
    if loss is None:
        # The generic group (command-line help, schema) names the objectives that bring their own loop defaults.
        notes: dict[str, list[str]] = {}
        for n in names:
            for key, value in objective_class(n).loop_defaults.items():
                notes.setdefault(key, []).append(f"{n}: {value}")
        for key, parts in notes.items():
            s = group.settings[key]
            group.settings[key] = replace(s, help=f"{s.help} (own default of {'; '.join(parts)})")
    return group


__all__ = ["cluster_settings", "OBJECTIVES", "Objective", "objective_class", "objective_names", "register_objective", "stage_name"]
