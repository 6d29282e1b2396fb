"""Per-run logs: a human-readable log file and a JSON-lines file of epoch records."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any


class RunLog:
    """Appends lines to ``<stem>.log`` and records to ``<stem>.jsonl``.

    Logs are append-only streams rather than atomic files: a crash keeps every line written so far,
    which is what one wants when reading why a run died. A fresh run (``fresh=True``) truncates both.
    """

    def __init__(self, stem: str | Path | None, fresh: bool = True, echo: bool = False) -> None:
        from .. import distributed

        self.stem = Path(stem) if stem is not None else None
        # Under torch.distributed only rank 0 writes and prints (the other ranks log the same numbers).
        self.writes = distributed.is_main()
        self.echo = echo and self.writes
        if self.stem is not None and self.writes:
            self.stem.parent.mkdir(parents=True, exist_ok=True)
            mode = "w" if fresh else "a"
            open(self.log_path, mode, encoding="utf-8").close()
            open(self.jsonl_path, mode, encoding="utf-8").close()

    @property
    def log_path(self) -> Path:
        assert self.stem is not None
        return self.stem.with_suffix(".log")

    @property
    def jsonl_path(self) -> Path:
        assert self.stem is not None
        return self.stem.with_suffix(".jsonl")

    def info(self, message: str) -> None:
        """Write a timestamped line to the human log (and to the console when ``echo``)."""
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}"
        if self.stem is not None and self.writes:
            with open(self.log_path, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")
        if self.echo:
            print(message, flush=True)

    def record(self, record: dict[str, Any]) -> None:
        """Append one JSON record (e.g. an epoch's losses and metrics)."""
        if self.stem is None or not self.writes:
            return
        with open(self.jsonl_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, default=float) + "\n")


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read a JSON-lines log; a torn last line (from a killed run) is skipped."""
    out = []
    p = Path(path)
    if not p.exists():
        return out
    for line in p.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out
