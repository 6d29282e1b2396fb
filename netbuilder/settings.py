"""Settings with one owner: every hyperparameter declared once, with its default, valid range and help.

A :class:`Setting` is the single source of truth for one value; a :class:`SettingsGroup` is the set of values of
one kind of run (pretraining, clustering, anomaly training). From these declarations come the command-line
options (:mod:`netbuilder.cli_options`), the ``training`` section of the archs JSON Schema, the checks of
``arch validate``, the Python keyword arguments and the manifest records. :func:`SettingsGroup.resolve` applies
the one precedence rule: built-in defaults ← the arch's ``training`` section ← explicit options.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Iterable, Mapping

from .errors import NetbuilderError

_KINDS = {int: "integer", float: "number", bool: "boolean", str: "string"}


@dataclass(frozen=True)
class Setting:
    """One hyperparameter: its name (a Python keyword, a JSON key and, dashed, a CLI option), default and range."""

    name: str
    default: Any
    help: str
    kind: type = float
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_min: bool = False
    exclusive_max: bool = False
    cli: str | None = None          # the option name when it differs from --<name-with-dashes>
    # another setting: given as an override, it turns this one off (0) unless this one is given too; for budgets
    # such as min_steps, whose own default may be set by an objective (SCAN's max_steps 3000)
    yields_to: str | None = None

    @property
    def option(self) -> str:
        return self.cli or "--" + self.name.replace("_", "-")

    def check(self, value: Any) -> Any:
        """``value`` converted to the setting's type, or a Keras-style one-line :class:`NetbuilderError`."""
        if value is None:
            return None
        if self.choices is not None:
            if value not in self.choices:
                raise self._invalid(value, f"one of {', '.join(self.choices)}")
            return value
        if self.kind is bool:
            if not isinstance(value, bool):
                raise self._invalid(value, "true or false")
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self._invalid(value, f"{'an integer' if self.kind is int else 'a number'}")
        if self.kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise self._invalid(value, "an integer")
            value = int(value)
        else:
            value = float(value)
            if not math.isfinite(value):
                raise self._invalid(value, "a finite number")
        if not self._in_range(value):
            raise self._invalid(value, self.range_text())
        return value

    def _in_range(self, v: float) -> bool:
        lo, hi = self.minimum, self.maximum
        if lo is not None and (v <= lo if self.exclusive_min else v < lo):
            return False
        return not (hi is not None and (v >= hi if self.exclusive_max else v > hi))

    def range_text(self) -> str:
        """The valid range in words ("a value > 0", "a value in [0, 1)")."""
        lo, hi = self.minimum, self.maximum
        if lo == 0 and self.exclusive_min and hi is None:
            return "a strictly positive value"
        if lo is not None and hi is not None:
            return f"a value in {'(' if self.exclusive_min else '['}{lo:g}, {hi:g}{')' if self.exclusive_max else ']'}"
        if lo is not None:
            return f"a value {'>' if self.exclusive_min else '>='} {lo:g}"
        if hi is not None:
            return f"a value {'<' if self.exclusive_max else '<='} {hi:g}"
        return "a value"

    def _invalid(self, value: Any, expected: str) -> NetbuilderError:
        return NetbuilderError(f"Invalid value for argument `{self.name}`. Expected {expected}. "
                               f"Received {self.name}={value!r}.")

    def json_schema(self) -> dict[str, Any]:
        """This setting's JSON Schema fragment, with its help as the description."""
        if self.choices is not None:
            out: dict[str, Any] = {"title": self.name.replace("_", " "), "enum": list(self.choices)}
        else:
            out = {"type": _KINDS[self.kind]}
            if self.minimum is not None:
                out["exclusiveMinimum" if self.exclusive_min else "minimum"] = self.minimum
            if self.maximum is not None:
                out["exclusiveMaximum" if self.exclusive_max else "maximum"] = self.maximum
        out["description"] = f"{self.help} Default: {self.default}."
        return out

    def with_default(self, default: Any) -> "Setting":
        """The same setting with another default (e.g. fewer epochs for the clustering stage)."""
        return replace(self, default=default)


class SettingsGroup:
    """The settings of one kind of run, in declaration order; resolves and checks values."""

    def __init__(self, kind: str, settings: Iterable[Setting]) -> None:
        self.kind = kind
        self.settings: dict[str, Setting] = {}
        for s in settings:
            if s.name in self.settings and self.settings[s.name] != s:
                raise ValueError(f"setting {s.name!r} declared twice with different meanings in {kind}")
            self.settings[s.name] = s

    def __iter__(self):
        return iter(self.settings.values())

    def __contains__(self, name: str) -> bool:
        return name in self.settings

    def __getitem__(self, name: str) -> Setting:
        return self.settings[name]

    def defaults(self) -> dict[str, Any]:
        """Every setting at its built-in default."""
        return {s.name: s.default for s in self}

    def resolve(self, overrides: Mapping[str, Any] | None = None, section: Mapping[str, Any] | None = None,
                *, strict: bool = True) -> dict[str, Any]:
        """Built-in defaults ← ``section`` (an arch's ``training`` part) ← ``overrides`` (None = not given); a
        setting that ``yields_to`` another is turned off (0) when only that other one is given.

        Every value is checked against its declaration; with ``strict`` an override this group does not know is
        an error (a typo in a Python keyword argument must not be silently ignored). Section keys of other
        groups (e.g. ``cluster`` or ``threads`` in the pretraining section) are skipped.
        """
        out = self.defaults()
        for key, value in (section or {}).items():
            if key in self.settings and not isinstance(value, dict):
                out[key] = self.settings[key].check(value)
        for key, value in (overrides or {}).items():
            if key not in self.settings:
                if strict and value is not None:
                    raise NetbuilderError(f"Unknown argument `{key}` for {self.kind}. Expected one of: "
                                          f"{', '.join(self.settings)}.")
                continue
            if value is not None:
                out[key] = self.settings[key].check(value)
        given = {k for k, v in (overrides or {}).items() if v is not None}
        for s in self:
            if s.yields_to in given and s.name not in given:
                out[s.name] = 0
        return out

    def check_section(self, section: Mapping[str, Any] | None) -> None:
        """Check an arch's section (values only: unknown keys are the JSON Schema's business)."""
        for key, value in (section or {}).items():
            if key in self.settings and not isinstance(value, dict):
                self.settings[key].check(value)

    def json_schema(self, extra: Mapping[str, Any] | None = None, description: str = "") -> dict[str, Any]:
        """A closed JSON Schema object of these settings (plus ``extra`` properties)."""
        props = {s.name: s.json_schema() for s in self}
        props.update(extra or {})
        return {"title": f"{self.kind} settings", "type": "object", "properties": props,
                "additionalProperties": False, "description": description}

    def extended(self, kind: str, settings: Iterable[Setting] = (), **defaults: Any) -> "SettingsGroup":
        """A new group: these settings followed by ``settings``, with the defaults named in ``defaults`` replaced."""
        return SettingsGroup(kind, [s.with_default(defaults[s.name]) if s.name in defaults else s
                                    for s in [*self, *settings]])


POSITIVE = dict(minimum=0, exclusive_min=True)

# Training-loop settings shared by every kind of run. Defaults here are the pretraining ones.
TRAINING = SettingsGroup("training", [
    Setting("epochs", 50, "Passes over the data.", int, minimum=1),
    Setting("batch_size", 256, "Images per optimisation step.", int, minimum=1),
    Setting("lr", 1e-3, "Learning rate.", float, **POSITIVE),
    Setting("optimizer", "adam", "adam, or sgd with Nesterov momentum.", str, choices=("adam", "sgd")),
    Setting("momentum", 0.9, "Momentum of sgd.", float, minimum=0, maximum=1, exclusive_max=True),
    Setting("weight_decay", 0.0, "L2 weight decay.", float, minimum=0),
    Setting("schedule", "none", "Learning-rate schedule: constant, cosine decay to 0, or x0.1 at 50% and 75%.",
            str, choices=("none", "cosine", "step")),
    Setting("augment", False, "Random shifts/rotations of training batches.", bool),
    Setting("amp", False, "Mixed precision: float16 with loss scaling on CUDA (bfloat16 autocast on CPU).", bool),
    Setting("checkpoint_every", 1, "Epochs between checkpoints of a stage (for --resume).", int, minimum=1),
    Setting("drop_last", False, "Skip the last, smaller batch of each epoch.", bool),
])

RECON_LOSS = Setting("recon_loss", "mse", "Reconstruction loss; bce needs a sigmoid output.", str,
                     choices=("mse", "bce"))

# A training budget in steps: the epochs of small datasets are raised until they give this many steps. Only the
# pretraining takes it: the clustering objectives plan their own schedules in epochs (relabelling, target updates).
MIN_STEPS = Setting("min_steps", 0, "At least this many optimisation steps: on data too small for the arch's epochs "
                    "to give them, the epochs are raised until they do (0: off; a given --epochs turns it off).",
                    int, minimum=0, yields_to="epochs")

# A training budget in steps from above: the epochs of large datasets are lowered until they give about this many
# steps. The clustering objectives whose schedule is set in steps take it (SCAN's 3,000 steps are 200 epochs of
# DIGITS' 1,797 images but 6 of MNIST's 70,000), and so does the pretraining (the auto rule's, which only
# initialises SCAN: 4 epochs of MNIST instead of 20).
MAX_STEPS = Setting("max_steps", 0, "At most about this many optimisation steps: on data large enough for the "
                    "epochs to give more, the epochs are lowered to the fewest that give them (0: off; a given "
                    "--epochs turns it off).", int, minimum=0, yields_to="epochs")

# Pretraining: the autoencoder on reconstruction (also the training of the anomaly detectors).
PRETRAIN = TRAINING.extended("pretraining", [RECON_LOSS, MIN_STEPS, MAX_STEPS])

# An arch's training section also pins the CPU thread count: a run environment value, not a hyperparameter.
THREADS = Setting("threads", None, "CPU threads for torch; 1 makes small nets give the same numbers on any machine.",
                  int, minimum=1)
