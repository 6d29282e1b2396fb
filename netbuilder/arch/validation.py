"""Structural validation: run jsonschema and turn its most relevant error into one readable :class:`SpecError`.

jsonschema reports every violation with a machine-oriented message. The user needs one line that names the
JSON path and says what was expected and what was received, so this module describes the failing sub-schema
in words ("an integer >= 1", "one of 'same', 'valid'") and picks the error most likely to be the root cause
(an unknown key explains a missing required one, so it wins).
"""
from __future__ import annotations

from typing import Any, Mapping

import jsonschema

from .errors import JsonPath, SpecError, did_you_mean, show_value

# Lower is more relevant: a typo in a key or a layer type usually explains the other errors.
_PRIORITY = {"additionalProperties": 0, "required": 2}


def _resolve(schema: Any, defs: Mapping[str, Any]) -> Any:
    while isinstance(schema, dict) and "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _article(noun: str) -> str:
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun


def _bounds(schema: Mapping[str, Any]) -> str:
    parts = []
    if "minimum" in schema:
        parts.append(f">= {schema['minimum']}")
    if "exclusiveMinimum" in schema:
        parts.append(f"> {schema['exclusiveMinimum']}")
    if "maximum" in schema:
        parts.append(f"<= {schema['maximum']}")
    if "exclusiveMaximum" in schema:
        parts.append(f"< {schema['exclusiveMaximum']}")
    return " and ".join(parts)


def _noun(schema: Any, defs: Mapping[str, Any], plural: bool = False) -> str:
    """A noun phrase without article ("integer >= 1", "list of 2 integers >= 1")."""
    schema = _resolve(schema, defs)
    if not isinstance(schema, dict):
        return "values" if plural else "value"
    if "title" in schema and schema.get("type") in ("object", "array", None) and "enum" not in schema:
        title = schema["title"]
        return title + ("s" if plural and not title.endswith("s") else "")
    if "const" in schema:
        return show_value(schema["const"]).replace('"', "'")
    if "enum" in schema:
        return "one of " + ", ".join(show_value(v).replace('"', "'") for v in schema["enum"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = []
            for sub in schema[key]:
                sub = _resolve(sub, defs)
                if isinstance(sub, dict) and "enum" in sub:
                    options += [show_value(v).replace('"', "'") for v in sub["enum"]]
                else:
                    options.append(_phrase(sub, defs))
            return options[0] if len(options) == 1 else ", ".join(options[:-1]) + " or " + options[-1]
    kind = schema.get("type")
    bounds = _bounds(schema)
    suffix = f" {bounds}" if bounds else ""
    if kind == "integer":
        return ("integers" if plural else "integer") + suffix
    if kind == "number":
        return ("numbers" if plural else "number") + suffix
    if kind == "boolean":
        return "booleans" if plural else "boolean (true or false)"
    if kind == "string":
        return ("strings" if plural else "string") + (" (not empty)" if schema.get("minLength") else "")
    if kind == "array":
        lo, hi = schema.get("minItems"), schema.get("maxItems")
        head = "lists of" if plural else "list of"
        item_schema = _resolve(schema.get("items", {}), defs)
        if isinstance(item_schema, dict) and ("anyOf" in item_schema or "oneOf" in item_schema):
            items = "values, each " + _phrase(item_schema, defs)
        else:
            items = _noun(item_schema, defs, plural=True)
        if lo is not None and lo == hi:
            return f"{head} {lo} {items}"
        if lo is not None and hi is not None:
            return f"{head} {lo} to {hi} {items}"
        if lo == 1:
            return f"non-empty {head} {items}"
        if lo:
            return f"{head} at least {lo} {items}"
        return f"{head} {items}"
    if kind == "object":
        return "objects" if plural else "object"
    return "values" if plural else "value"


def _phrase(schema: Any, defs: Mapping[str, Any]) -> str:
    """The expected-value phrase with an article where it needs one."""
    noun = _noun(schema, defs)
    schema = _resolve(schema, defs)
    if isinstance(schema, dict) and ("const" in schema or "enum" in schema or "anyOf" in schema
                                      or "oneOf" in schema):
        return noun
    return _article(noun)


def describe(schema: Any, defs: Mapping[str, Any] | None = None) -> str:
    """What ``schema`` accepts, in words (e.g. ``"an integer >= 1 or a list of 2 integers >= 1"``)."""
    return _phrase(schema, defs or {})


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return "null" if value is None else type(value).__name__


def received(value: Any) -> str:
    """``received <value> (<its JSON type>)``."""
    if isinstance(value, dict):
        return "received an object"
    return f"received {show_value(value)} ({_json_type(value)})"


def _branch_matches(schema: Any, instance: Any, validator: jsonschema.protocols.Validator,
                    defs: Mapping[str, Any]) -> bool:
    schema = _resolve(schema, defs)
    kind = schema.get("type") if isinstance(schema, dict) else None
    return kind in ("array", "object") and validator.is_type(instance, kind)


def _convert(err: jsonschema.ValidationError, validator: jsonschema.protocols.Validator,
             defs: Mapping[str, Any]) -> SpecError:
    path: JsonPath = tuple(err.absolute_path)
    kind = err.validator
    schema = err.schema if isinstance(err.schema, dict) else {}
    if kind == "additionalProperties":
        allowed = list(schema.get("properties", {}))
        extra = next(k for k in err.instance if k not in allowed)
        what = f"the {schema['title']}" if "title" in schema else "this object"
        return SpecError(path + (extra,), f"unknown field '{extra}' in {what}, expected one of "
                                          f"{', '.join(allowed)}{did_you_mean(extra, allowed)}")
    if kind == "required":
        missing = next(k for k in err.validator_value if k not in err.instance)
        expected = describe(schema.get("properties", {}).get(missing, {}), defs)
        return SpecError(path + (missing,), f"expected {expected}, received nothing (the field is missing)", expected)
    if kind == "enum":
        choices = [c if isinstance(c, str) else show_value(c) for c in err.validator_value]
        title = schema.get("title")
        listed = ", ".join(choices)
        hint = did_you_mean(str(err.instance), choices) if isinstance(err.instance, str) else ""
        if title and isinstance(err.instance, str):
            return SpecError(path, f"unknown {title} '{err.instance}', expected one of {listed}{hint}",
                             f"one of {listed}")
        return SpecError(path, f"expected one of {listed}, {received(err.instance)}{hint}", f"one of {listed}")
    if kind in ("anyOf", "oneOf"):
        branches = [i for i, s in enumerate(err.validator_value) if _branch_matches(s, err.instance, validator, defs)]
        if len(branches) == 1:
            inner = [e for e in err.context if e.relative_schema_path and e.relative_schema_path[0] == branches[0]]
            if inner:
                return _convert(best_error(inner), validator, defs)
        hint = ""
        if isinstance(err.instance, str):
            words = [v for s in err.validator_value
                     for v in [*_resolve(s, defs).get("enum", []), _resolve(s, defs).get("const")]
                     if isinstance(v, str)]
            hint = did_you_mean(err.instance, words)
        expected = describe(schema, defs)
        return SpecError(path, f"expected {expected}, {received(err.instance)}{hint}", expected)
    expected = describe(schema, defs)
    if kind in ("minItems", "maxItems") and isinstance(err.instance, list):
        return SpecError(path, f"expected {expected}, received a list of {len(err.instance)} values", expected)
    return SpecError(path, f"expected {expected}, {received(err.instance)}", expected)


def _path_key(err: jsonschema.ValidationError) -> tuple:
    return tuple((0, p, "") if isinstance(p, int) else (1, 0, str(p)) for p in err.absolute_path)


def best_error(errors: list[jsonschema.ValidationError]) -> jsonschema.ValidationError:
    """The error to report: unknown keys first, then missing fields, then the first in document order."""
    return min(errors, key=lambda e: (_PRIORITY.get(e.validator, 3), _path_key(e)))


def check(instance: Any, validator: jsonschema.protocols.Validator, defs: Mapping[str, Any]) -> None:
    """Raise a :class:`SpecError` for the most relevant violation of ``validator``'s schema, if any."""
    errors = list(validator.iter_errors(instance))
    if errors:
        raise _convert(best_error(errors), validator, defs)
