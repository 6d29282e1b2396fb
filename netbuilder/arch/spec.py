"""Reading architecture files: parse, validate the structure, convert the original format, merge defaults,
and infer every shape, so that a mistake is reported before any training with the path of the offending value.

Every error is one :class:`~netbuilder.errors.ArchError` line:
``<file>: arch <index> "<name>": <JSON path>: <what was expected>, received <what>``.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Iterable

from ..errors import ArchError
from ..rules import RuleViolation, check_arch_training
from .errors import JsonPath, SpecError, did_you_mean
from .legacy import convert_legacy, is_legacy
from .plan import Plan, plan_network
from .registry import LAYERS, layer_from_config
from .schema import schema_defs, validator_for
from .validation import check, received

SHIPPED_ARCHS = Path(str(resources.files("netbuilder") / "archs"))
"""The folder of the archs files shipped inside the package (``netbuilder/archs``, package data)."""


@dataclass
class ArchCheck:
    """The outcome of validating one arch of a file."""

    index: int
    name: str | None
    spec: dict[str, Any] | None = None
    plan: Plan | None = None
    error: ArchError | None = None
    detail: str | None = None  # the error without the file/arch prefix

    @property
    def ok(self) -> bool:
        return self.error is None


def _context(source: str | None, index: int | None, name: Any, input_shape: Iterable[int] | None = None) -> str:
    label = "arch" + (f" {index}" if index is not None else "")
    if isinstance(name, str) and name:
        label += f' "{name}"'
    if input_shape is not None:
        label += f" (input {'x'.join(str(s) for s in input_shape)})"
    return (f"{source}: " if source else "") + label + ": "


def _check_semantics(spec: dict[str, Any]) -> None:
    if spec["name"].strip().isdigit():
        raise SpecError(("name",), f"expected a name that is not only digits (digits select an arch by index), "
                                   f"received {json.dumps(spec['name'])}")


def _check_rules(spec: dict[str, Any]) -> None:
    """The cross-field rules of :mod:`netbuilder.rules`, reported at the JSON path of the offending value."""
    try:
        check_arch_training(spec)
    except RuleViolation as exc:
        raise SpecError(exc.path, exc.detail) from None


def _shape_list(input_shape: Iterable[int]) -> list[int]:
    try:
        shape = [int(s) for s in input_shape]
        ok = len(shape) in (1, 2, 3) and all(s >= 1 for s in shape) and all(float(s) == s for s in input_shape)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise SpecError(("input_shape",), f"expected [C, H, W], [C, L] or [D] of positive integers, received "
                                          f"{list(input_shape)!r} (the requested input shape)")
    return shape


_INTEGER_KEYS = {"batch_size", "epochs", "update_interval", "n_init", "n_clusters"}


def _integral(section: dict[str, Any]) -> dict[str, Any]:
    # JSON Schema accepts 256.0 as an integer; the training code should not have to.
    for key, value in section.items():
        if isinstance(value, dict):
            _integral(value)
        elif key in _INTEGER_KEYS and isinstance(value, float):
            section[key] = int(value)
    return section


def _output_layer_index(layers: list[dict[str, Any]]) -> int | None:
    """Index of the last layer of an explicit decoder that has an activation (it gets output_activation)."""
    for j in range(len(layers) - 1, -1, -1):
        cls = LAYERS.get(layers[j].get("type"))
        if cls is not None and "activation" in cls.fields:
            return j
    return None


def _merge_layers(spec: dict[str, Any], part: str, notes: dict[JsonPath, dict[str, str]]) -> list[dict[str, Any]]:
    """Full layer configs: built-in defaults ← the arch's ``defaults`` ← the layer's own fields."""
    defaults = spec.get("defaults") or {}
    layers = spec[part]
    output_index = _output_layer_index(layers) if part == "decoder" else None
    out = []
    for i, config in enumerate(layers):
        base = dict(defaults.get(config["type"], {}))
        for field in base:
            if field not in config:
                notes[(part, i)] = {**notes.get((part, i), {}), field: f"/defaults/{config['type']}/{field}"}
        if i == output_index:
            # The decoder's output layer suits the data range, whatever the other layers default to.
            base.update({"activation": spec.get("output_activation", "sigmoid"), "batch_norm": False})
            for field in ("activation", "batch_norm"):
                notes.get((part, i), {}).pop(field, None)
        try:
            out.append(layer_from_config({**base, **config}).get_config())
        except SpecError as exc:
            raise exc.under(part, i) from None
    return out


def _resolve(spec: dict[str, Any], input_shape: Iterable[int] | None,
             notes: dict[JsonPath, dict[str, str]]) -> tuple[dict[str, Any], Plan]:
    check(spec, validator_for("architecture"), schema_defs())
    _check_semantics(spec)
    _check_rules(spec)
    out: dict[str, Any] = {"name": spec["name"]}
    if "description" in spec:
        out["description"] = spec["description"]
    out["input_shape"] = _shape_list(input_shape if input_shape is not None else spec["input_shape"])
    out["encoder"] = _merge_layers(spec, "encoder", notes)
    decoder = spec.get("decoder", "mirror")
    out["decoder"] = "mirror" if decoder == "mirror" else _merge_layers(spec, "decoder", notes)
    out["output_activation"] = spec.get("output_activation", "sigmoid")
    out["latent"] = {"l2_normalize": bool((spec.get("latent") or {}).get("l2_normalize", False))}
    if "clustering" in spec:
        out["clustering"] = _integral({"alpha": 1.0, **spec["clustering"]})
    out["training"] = _integral(copy.deepcopy(spec.get("training") or {}))
    if spec.get("legacy"):
        out["legacy"] = True
    return out, plan_network(out)


def resolve_spec(raw: Any, input_shape: Iterable[int] | None = None) -> tuple[dict[str, Any], Plan]:
    """Validate one arch object (either format) and infer its shapes.

    Returns the resolved spec (original format converted, every layer's defaults filled in; plain JSON values
    only, so it compares equal after a JSON round trip) and its :class:`Plan`. ``input_shape`` replaces the
    spec's. Raises :class:`SpecError` whose path is relative to ``raw``.
    """
    if not isinstance(raw, dict):
        raise SpecError((), f"expected an architecture object, {received(raw)}")
    translate = None
    spec = raw
    if is_legacy(raw):
        check(raw, validator_for("legacy_architecture"), schema_defs())
        spec, translate = convert_legacy(raw)
    notes: dict[JsonPath, dict[str, str]] = {}
    try:
        return _resolve(spec, input_shape, notes)
    except SpecError as exc:
        detail = exc.detail
        field = exc.path[2] if len(exc.path) > 2 else None
        origin = notes.get(exc.path[:2], {}).get(field) if isinstance(field, str) else None
        if origin:
            detail += f" (the value comes from {origin})"
        path = translate(exc.path) if translate else exc.path
        raise SpecError(path, detail) from None


def resolve_with_context(raw: Any, *, source: str | None = None, index: int | None = None,
                         input_shape: Iterable[int] | None = None) -> tuple[dict[str, Any], Plan]:
    """:func:`resolve_spec` with errors prefixed by the file, the arch index and its name."""
    try:
        return resolve_spec(raw, input_shape)
    except SpecError as exc:
        name = raw.get("name") if isinstance(raw, dict) else None
        shown = input_shape if input_shape is not None and isinstance(raw, dict) and \
            list(input_shape) != list(raw.get("input_shape") or []) else None
        raise ArchError(_context(source, index, name, shown) + str(exc)) from None


def _no_constants(value: str) -> Any:
    raise ValueError(f"{value} is not valid JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {json.dumps(key)} in one object")
        out[key] = value
    return out


def read_arch_json(path: str | Path) -> Any:
    """The parsed JSON of an archs file; unreadable, non-UTF-8 or malformed files raise :class:`ArchError`."""
    source = str(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise ArchError(f"{source}: no such file") from None
    except IsADirectoryError:
        raise ArchError(f"{source}: is a directory, expected an archs JSON file") from None
    except OSError as exc:
        raise ArchError(f"{source}: cannot read the file ({exc.strerror})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ArchError(f"{source}: expected UTF-8 text, received byte 0x{data[exc.start]:02x} at line {line} "
                        f"(byte offset {exc.start})") from None
    if not text.strip():
        raise ArchError(f"{source}: the file is empty, expected a JSON list of architectures")
    try:
        return json.loads(text, parse_constant=_no_constants, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        raise ArchError(f"{source}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except ValueError as exc:
        raise ArchError(f"{source}: invalid JSON: {exc}") from None
    except RecursionError:
        raise ArchError(f"{source}: JSON nested too deeply to be an archs file") from None


def check_arch_file(path: str | Path) -> list[ArchCheck]:
    """Validate every arch of a file separately (for ``arch validate``); file-level problems raise ArchError."""
    source = str(path)
    data = read_arch_json(path)
    if isinstance(data, dict):
        archs = [data]
    elif isinstance(data, list) and data:
        archs = data
    elif isinstance(data, list):
        raise ArchError(f"{source}: expected at least one architecture, received an empty list")
    else:
        raise ArchError(f"{source}: expected a list of architectures or one architecture object, "
                        f"{received(data)}")
    checks: list[ArchCheck] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(archs):
        name = raw.get("name") if isinstance(raw, dict) else None
        item = ArchCheck(i, name if isinstance(name, str) else None)
        try:
            item.spec, item.plan = resolve_spec(raw)
            if item.spec["name"] in seen:
                raise SpecError(("name",), f"expected a name unique in the file, received {json.dumps(name)} "
                                           f"(also arch {seen[item.spec['name']]})")
            seen[item.spec["name"]] = i
        except SpecError as exc:
            item.spec, item.plan, item.detail = None, None, str(exc)
            item.error = ArchError(_context(source, i, name) + str(exc))
        checks.append(item)
    return checks


def load_arch_file(path: str | Path) -> list[dict[str, Any]]:
    """Read, validate and resolve every arch of an archs file (either format; a list or a single object).

    Shapes are inferred (without allocating weights) so every shape error is raised here, before any training.
    Raises the first :class:`ArchError`.
    """
    checks = check_arch_file(path)
    for item in checks:
        if item.error is not None:
            raise item.error
    return [item.spec for item in checks if item.spec is not None]


def shipped_arch_files() -> list[str]:
    """Names of the archs files shipped with the package."""
    return sorted(p.name for p in SHIPPED_ARCHS.glob("*.json")) if SHIPPED_ARCHS.is_dir() else []


def dataset_arch_file(dataset: str) -> Path | None:
    """The archs file of a dataset name (``MNIST`` → mnist.json), or None when it has none.

    Looked up in ``./archs`` (so a local file can replace a shipped one) and then among the shipped files;
    names are case-insensitive and ``-``/``_`` are ignored (``COIL-20`` → ``coil20.json``). Datasets given by
    location (``folder:PATH``) and names that look like paths have none.
    """
    given = str(dataset)
    if ":" in given or "/" in given or "\\" in given or given.lower().endswith(".json"):
        return None
    key = given.lower().replace("-", "").replace("_", "")
    for folder in (Path.cwd() / "archs", SHIPPED_ARCHS):
        candidate = folder / f"{key}.json"
        if candidate.is_file():
            return candidate
    return None


def resolve_arch_file(file_or_dataset: str) -> Path:
    """An existing archs file as is; otherwise the archs file of a dataset name (see :func:`dataset_arch_file`)."""
    given = str(file_or_dataset)
    path = Path(given)
    if path.is_file():
        return path
    if path.is_dir():
        raise ArchError(f"{given}: is a directory, expected an archs JSON file or a dataset name")
    found = dataset_arch_file(given)
    if found is not None:
        return found
    shipped = ", ".join(shipped_arch_files()) or "none"
    if ":" in given:  # e.g. folder:/data/x: datasets given by location have no shipped archs
        raise ArchError(f"dataset '{given}' has no shipped archs file; pass --archs FILE (shipped: {shipped})")
    if path.suffix.lower() == ".json" or "/" in given or "\\" in given:
        raise ArchError(f"{given}: no such file (shipped archs files: {shipped})")
    raise ArchError(f"'{given}' is neither an archs file nor a dataset with a shipped archs file (shipped: "
                    f"{shipped}); pass --archs FILE")


def select_arch(specs: list[dict[str, Any]], key: str | int, source: str = "") -> tuple[int, dict[str, Any]]:
    """The arch at index ``key`` (an int or a digit string) or named ``key`` (exact, then case-insensitive)."""
    where = f"{source}: " if source else ""
    names = [str(s.get("name")) for s in specs]
    listing = ", ".join(f"{i} {n}" for i, n in enumerate(names)) or "none"
    if isinstance(key, bool):
        key = str(key)
    if isinstance(key, int) or (isinstance(key, str) and key.strip().isdigit()):
        index = int(key)
        if 0 <= index < len(specs):
            return index, specs[index]
        raise ArchError(f"{where}arch index {index} is out of range, expected 0 to {len(specs) - 1} "
                        f"(available: {listing})")
    if key in names:
        index = names.index(key)
        return index, specs[index]
    folded = [i for i, n in enumerate(names) if n.lower() == str(key).lower()]
    if len(folded) == 1:
        return folded[0], specs[folded[0]]
    raise ArchError(f"{where}no arch named '{key}'{did_you_mean(str(key), names)} (available: {listing})")
