"""Command-line options shared by the stage, anomaly and visualize commands (one definition each).

Hyperparameter options are generated from the settings declarations in :mod:`netbuilder.settings` (and the
clustering objectives' own settings), so an option's type, range and help have one owner.
"""
from __future__ import annotations

import keyword
from typing import Any, Callable

import click

from .settings import Setting, SettingsGroup

COMMON_OPTIONS = [
    click.option("-d", "--dataset", required=True,
                 help="Dataset: MNIST, COIL20, DIGITS, FASHION-MNIST, USPS or folder:PATH (case-insensitive)."),
    click.option("-a", "--arch", default="0", show_default=True,
                 help="Architecture index or name in the archs file, or auto (derived from the data's shape)."),
    click.option("--archs", "archs", type=click.Path(dir_okay=False), default=None,
                 help="Archs JSON file [default: the dataset's shipped file, else -a auto]."),
    click.option("--out", default=".", show_default=True, type=click.Path(file_okay=False),
                 help="Root for saved_params/, logs/ and plots/."),
]

# Options of a run that are not hyperparameters (they are not recorded as settings of the arch).
RUN_OPTIONS = [
    click.option("--seed", type=int, default=0, show_default=True, help="Random seed (runs repeat exactly on CPU)."),
    click.option("--device", default="auto", show_default=True,
                 help="auto, cpu, cuda, cuda:N or mps (under torchrun, cuda means each rank's own GPU)."),
    click.option("--progress/--no-progress", default=None, help="Progress bars [default: on a terminal only]."),
    click.option("--threads", type=click.IntRange(min=1), default=None,
                 help="CPU threads for torch [default: the arch's training.threads, then torch's choice]."),
]


class ClusterCount(click.ParamType):
    """``--clusters``: an integer >= 2, or ``auto`` (chosen from the codes; see :mod:`netbuilder.core.kselect`)."""

    name = "INTEGER|auto"

    def convert(self, value: Any, param: Any, ctx: Any) -> int | str:
        if isinstance(value, int) or str(value).strip().lower() != "auto":
            try:
                k = int(value)
            except (TypeError, ValueError):
                self.fail(f"{value!r} is neither an integer nor auto", param, ctx)
            if k < 2:
                self.fail(f"{k} is not >= 2", param, ctx)
            return k
        return "auto"


CLUSTERS_OPTION = click.option(
    "--clusters", type=ClusterCount(), default=None,
    help="Number of clusters, or auto: the largest eigengap of the codes' kNN graph for k in 2..auto-k-max "
         "(curve printed, plotted to plots/<DATASET>/<arch>/clusters-auto.png) [default: arch, then classes].")


def _param(name: str) -> str:
    return name + "_" if keyword.iskeyword(name) else name


def setting_option(s: Setting) -> Callable:
    """The click option of one setting: its type and range, and help naming where the default comes from."""
    help_text = f"{s.help} [default: the arch's, then {s.default}]"
    if s.kind is bool:
        flag = s.option
        return click.option(f"{flag}/--no-{flag[2:]}", _param(s.name), default=None, help=help_text)
    if s.choices is not None:
        kind: Any = click.Choice(list(s.choices))
    elif s.kind is int:
        kind = click.IntRange(min=s.minimum, max=s.maximum, min_open=s.exclusive_min, max_open=s.exclusive_max)
    else:
        kind = click.FloatRange(min=s.minimum, max=s.maximum, min_open=s.exclusive_min, max_open=s.exclusive_max)
    return click.option(s.option, _param(s.name), type=kind, default=None, help=help_text)


def settings_options(group: SettingsGroup, exclude: tuple[str, ...] = ()) -> list[Callable]:
    """One click option per setting of ``group`` (generated: the settings own defaults, ranges and help)."""
    return [setting_option(s) for s in group if s.name not in exclude]


def pop_settings(kwargs: dict[str, Any], group: SettingsGroup) -> dict[str, Any]:
    """Take ``group``'s settings out of a command's keyword arguments (None: not given on the command line)."""
    return {s.name: kwargs.pop(_param(s.name)) for s in group if _param(s.name) in kwargs}


def set_threads(threads: int | None) -> None:
    """Set torch's CPU thread count (see :func:`netbuilder.stages.context.apply_threads`)."""
    from .stages.context import apply_threads

    apply_threads(threads)


def apply_options(options: list[Callable]) -> Callable:
    """Decorate a click command with ``options`` in order."""
    def deco(f: Callable) -> Callable:
        for opt in reversed(options):
            f = opt(f)
        return f
    return deco


def arch_key(arch: str) -> str | int:
    """``-a`` value: an index when it is all digits, else a name."""
    return int(arch) if arch.isdigit() else arch
