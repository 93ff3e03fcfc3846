"""Errors a user can act on: each renders as one line and carries its exit code.

Exit codes, the same for every command: 1 the search ran but failed (or an admin command found no live
run to act on), 2 a usage or config error (nothing was started), 130 interrupted.
"""
from __future__ import annotations

import errno
import os
import sys
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


class DiskFull(AutomlError):
    """A file of the run could not be written: the disk is full (or a quota or a file size
    limit is reached). The run stops its jobs (they checkpoint), ends in one line and exit 1;
    `--resume` continues it once there is room."""

    exit_code = 1
    raised = False  # this process has said it (once is enough: every write fails on a full disk)
    pending: "DiskFull | None" = None  # found while another error was handled: said at the next write

    @classmethod
    def report(cls, error: "DiskFull", cause: BaseException) -> None:
        """A writer found no room (`cause`: its OSError or SQLite error). Raise `error`, the
        run's one line, unless this process has raised a DiskFull already (later failures are
        left unsaid, so the run's stop completes: jobs asked to checkpoint, files closed) or
        another error is on its way up (`cause` happened while one was handled): then it waits
        for the next write made outside any error handling (see check)."""
        if cls.raised:
            return
        if cause.__context__ is not None:
            cls.pending = cls.pending or error
            return
        cls.raised = True
        raise error from None

    @classmethod
    def check(cls) -> None:
        """Before a write: a full disk found while another error was handled, and not said
        since, is raised now, unless an error is on its way up still."""
        if cls.pending is not None and not cls.raised and sys.exc_info()[1] is None:
            error, cls.pending = cls.pending, None
            cls.raised = True
            raise error

    @classmethod
    def said(cls) -> None:
        """A DiskFull is on its way up (raised without report): later failures stay quiet."""
        cls.raised = True


# errno values that mean "no room to write" (EFBIG: a file size limit, e.g. ulimit -f)
_NO_ROOM = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_SQLITE_FULL, _SQLITE_IOERR = 13, 10


def disk_full(exc: BaseException, path: Path | str | None = None) -> DiskFull | None:
    """The one-line error for `exc`, raised while writing `path`, when it says there is no
    room to write (OSError ENOSPC, EDQUOT or EFBIG; SQLite's "database or disk is full" or a
    write I/O error; shutil.copytree's collected errors); None for any other error."""
    if isinstance(exc, OSError) and exc.errno in _NO_ROOM:
        return DiskFull(f"{os.strerror(exc.errno).lower()} writing {path or exc.filename or 'a file'}")
    code = getattr(exc, "sqlite_errorcode", None)
    if (code is not None and (code & 0xFF) in (_SQLITE_FULL, _SQLITE_IOERR)) or "database or disk is full" in str(exc):
        why = "no space left on device" if code is None or (code & 0xFF) == _SQLITE_FULL else _io_error()
        return DiskFull(f"{why} writing {path or 'the journal'}")
    if type(exc).__name__ == "Error" and type(exc).__module__ == "shutil" and exc.args and isinstance(exc.args[0], list):
        for entry in exc.args[0]:  # copytree: (source, target, why) per file it could not copy
            if isinstance(entry, tuple) and len(entry) == 3:
                for number in _NO_ROOM:
                    if os.strerror(number) in str(entry[2]):
                        return DiskFull(f"{os.strerror(number).lower()} writing {path or entry[1]}")
    return None


def _io_error() -> str:
    """What SQLite's write I/O error most likely was: SQLite reports a full disk as such, but a
    file size limit (EFBIG) only as an I/O error."""
    import resource

    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if limit != resource.RLIM_INFINITY:
        return f"file too large (the file size limit, ulimit -f, is {limit} bytes)"
    return "disk I/O error"
