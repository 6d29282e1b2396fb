"""Numbers read from text and arrays, with one-line errors that name the file, line and column.

Every signal reader (UCR ``.ts``, Tennessee Eastman ``.dat``, ``series:`` CSV and ``.npy``) goes through
here, so a bad value is reported the same way everywhere: ``data.csv, line 7, column 3 (temp): 'abc' is
not a number``. NaN and infinity are refused: a NaN sensor value would poison the standardisation
statistics and every window that contains it, far from where the problem is.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import DatasetError


def where(path: str | Path, line: int, column: int | None = None, name: str | None = None) -> str:
    """``"data.csv, line 7, column 3 (temp)"``: the place of a value, for messages (1-based numbers)."""
    text = f"{path}, line {line}"
    if column is not None:
        text += f", column {column}"
        if name:
            text += f" ({name})"
    return text


def parse_number(text: str, path: str | Path, line: int, column: int | None = None,
                 name: str | None = None) -> float:
    """``float(text)``; a non-number or a NaN/infinite value raises :class:`DatasetError` naming its place."""
    try:
        value = float(text)
    except ValueError:
        shown = text.strip()
        hint = " (missing values are not supported)" if shown in ("", "?") else ""
        raise DatasetError(f"{where(path, line, column, name)}: '{shown}' is not a number{hint}") from None
    if not math.isfinite(value):
        raise DatasetError(f"{where(path, line, column, name)}: {text.strip()} is not a finite number "
                           f"(NaN and infinite values are not supported)")
    return value


def parse_numbers(fields: Sequence[str], path: str | Path, line: int, columns: Sequence[int] | None = None,
                  names: Sequence[str] | None = None) -> list[float]:
    """The numbers in ``fields`` (one line's values); ``columns`` are their 1-based column numbers (default
    1..n) and ``names`` their column names, used only in error messages."""
    try:
        values = [float(f) for f in fields]  # the fast path: one comprehension, no per-value bookkeeping
        if all(math.isfinite(v) for v in values):
            return values
    except ValueError:
        pass
    # Something is wrong: find the first bad field to name it.
    for i, text in enumerate(fields):
        parse_number(text, path, line, columns[i] if columns is not None else i + 1,
                     names[i] if names is not None else None)
    raise AssertionError("unreachable: a field failed the fast path but parsed alone")  # pragma: no cover


def check_finite(array: np.ndarray, path: str | Path) -> None:
    """Raise :class:`DatasetError` naming the first NaN/infinite entry of a ``T×C`` array (row = line)."""
    bad = ~np.isfinite(array)
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad.reshape(len(array), -1))[0])
        raise DatasetError(f"{path}, row {row + 1}, column {col + 1}: {array.reshape(len(array), -1)[row, col]} "
                           f"is not a finite number (NaN and infinite values are not supported)")


def read_table(path: Path, columns: int | None = None) -> np.ndarray:
    """A whitespace-separated table of numbers as float64 ``rows×columns``; every row must have as many
    values as the first (or ``columns``). Blank lines are skipped."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    rows: list[list[float]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        fields = raw.split()
        if not fields:
            continue
        expected = columns if columns is not None else (len(rows[0]) if rows else len(fields))
        if len(fields) != expected:
            raise DatasetError(f"{where(path, number)}: {len(fields)} values, expected {expected}")
        rows.append(parse_numbers(fields, path, number))
    if not rows:
        raise DatasetError(f"{path}: no data (the file is empty)")
    return np.asarray(rows, dtype=np.float64)
