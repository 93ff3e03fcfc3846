"""Errors a user can act on: each renders as one line and carries its exit code.

Exit codes follow SPEC.md: 1 the search ran but failed (or an admin command found no live
run to act on), 2 a usage or config error (nothing was started), 130 interrupted.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Union

PathPart = Union[str, int]


def json_path(parts: Iterable[PathPart]) -> str:
    """Render a location inside a JSON document as `$.train.model.search[0].targets`."""
    text = "$"
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


class AutomlError(Exception):
    """A failure reported to the user as one line, never as a traceback."""

    exit_code = 1


class UsageError(AutomlError):
    """Bad command-line input; nothing was started."""

    exit_code = 2


class ConfigError(UsageError):
    """A config file is broken: names the file, the JSON path and what was expected."""

    def __init__(self, file: Path | str, parts: Iterable[PathPart], message: str):
        self.file = str(file)
        self.parts = list(parts)
        self.path = json_path(self.parts)
        self.detail = message
        super().__init__(f"{self.file}: {self.path}: {message}")


class SearchFailed(AutomlError):
    """The search ran but produced no usable result."""

    exit_code = 1


class NoLiveRun(AutomlError):
    """An admin command (suspend, resume, abort, stop) found the run not running, or the run
    did not answer it; nothing was done."""

    exit_code = 1


class Interrupted(AutomlError):
    """The user stopped the run; it can be resumed."""

    exit_code = 130
