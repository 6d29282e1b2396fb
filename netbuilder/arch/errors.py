"""Errors that know where inside an architecture they happened.

A :class:`SpecError` carries the JSON path (relative to one architecture object) of the offending value.
The file loader adds the file name and the arch's index and name in front, so the user sees one line such as
``archs/mnist.json: arch 1 "c-5": /layers/3/filter_size: 9 is larger than the 4x4 input``.
"""
from __future__ import annotations

import difflib
import json
from typing import Any, Iterable

from ..errors import ArchError

JsonPath = tuple[str | int, ...]


def pointer(path: Iterable[str | int]) -> str:
    """The JSON pointer (RFC 6901) of ``path``; the empty path is ``/``."""
    parts = [str(p).replace("~", "~0").replace("/", "~1") for p in path]
    return "/" + "/".join(parts) if parts else "/"


class SpecError(ArchError):
    """An :class:`ArchError` at ``path`` inside one architecture; ``detail`` says what was expected and received."""

    def __init__(self, path: Iterable[str | int] = (), detail: str = "", expected: str | None = None) -> None:
        self.path: JsonPath = tuple(path)
        self.detail = " ".join(str(detail).split("\n"))
        self.expected = expected  # what the value should have been, in words, when the error is about one value
        super().__init__(f"{pointer(self.path)}: {self.detail}" if self.path else self.detail)

    def under(self, *prefix: str | int) -> "SpecError":
        """The same error, relocated below ``prefix`` (a layer's error placed at its position in the arch)."""
        return SpecError(tuple(prefix) + self.path, self.detail, self.expected)


def show_value(value: Any, limit: int = 60) -> str:
    """A short JSON rendering of a received value, for messages."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def invalid_argument(name: str, expected: str, value: Any) -> str:
    """Keras-style message for a bad argument value."""
    return f"Invalid value for argument `{name}`. Expected {expected}. Received {name}={show_value(value)}."


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest choice (case-insensitive), or an empty string."""
    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    match = difflib.get_close_matches(str(word).lower(), list(lowered), n=1, cutoff=0.6)
    return f"; did you mean '{lowered[match[0]]}'?" if match else ""


def fmt_shape(shape: Iterable[int]) -> str:
    """``(50, 24, 24)`` → ``"50x24x24"``."""
    return "x".join(str(int(s)) for s in shape)
