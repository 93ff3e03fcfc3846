"""The metrics file a trainer appends to, one JSON line per epoch (docs/trainer.md): read
as it grows by the local and SLURM backends, and whole by a resumed run for the epochs a
dead run never read."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# where a job's trainer writes it, inside the job folder (AUTOML_METRICS_FILE)
METRICS_FILE = "models/metrics.jsonl"


class MetricsTail:
    """Follows one metrics file: each `read()` returns the lines completed since the last.
    A line the trainer is still writing waits for the next read; a line that is not a JSON
    object comes back as {"unreadable": its first 200 characters} (no epoch: the engine
    says so and goes on)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.offset = 0
        self.partial = ""

    def read(self, *, to_the_end: bool = False) -> list[dict[str, Any]]:
        """The new lines; `to_the_end`: the last one too, though it has no newline (the
        file of a job that has ended, written by nobody any more)."""
        try:
            with open(self.path, "r") as handle:
                handle.seek(self.offset)
                chunk = handle.read()
                self.offset = handle.tell()
        except FileNotFoundError:
            return []
        lines = (self.partial + chunk).split("\n")
        self.partial = "" if to_the_end else lines.pop()
        return [_values(line.strip()) for line in lines if line.strip()]


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """Every line of a metrics file nobody writes any more (see MetricsTail)."""
    return MetricsTail(path).read(to_the_end=True)


def _values(line: str) -> dict[str, Any]:
    try:
        values = json.loads(line)
    except json.JSONDecodeError:
        values = None
    return values if isinstance(values, dict) else {"unreadable": line[:200]}
