"""The one error type netbuilder raises for user mistakes.

Anything that is the user's fault (a bad archs file, a missing dataset, a stage run out of order) raises
:class:`NetbuilderError`. The CLI turns it into one line on stderr and exit code 2, never a traceback.
"""
from __future__ import annotations


class NetbuilderError(Exception):
    """A user-facing error: its message is a complete, one-line explanation."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        # One line, always: the CLI prints str(self) as is.
        super().__init__(" ".join(str(message).split("\n")))


class ArchError(NetbuilderError):
    """An architecture file or spec is invalid."""


class DatasetError(NetbuilderError):
    """A dataset is unknown, missing, corrupt or unreadable."""


class StageError(NetbuilderError):
    """A stage cannot run (e.g. a previous stage's output is missing)."""
