"""Writing a file so that a reader, or the file system after a power cut, sees either the
old file or the whole new one, never half of one."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, IO


def temporary_beside(path: Path) -> Path:
    """The temporary name a new version of `path` is written under: in the same folder, so
    the rename that puts it in place stays on one file system (and so is atomic)."""
    return path.with_name(f".{path.name}.tmp")


def commit_file(tmp: Path, path: Path) -> None:
    """Put the complete file `tmp` in place of `path`. The data is fsynced before the
    rename, so the name never points at a file whose data had not reached the disk, and the
    folder after it, so the rename itself survives a power cut."""
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    fsync_directory(path.parent)


def fsync_directory(directory: Path) -> None:
    # a rename is an entry in the folder: until the folder is on disk, a power cut can undo it
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:  # a file system that does not open folders (rare): the rename stands unsynced
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems (e.g. some network mounts) refuse fsync on a folder
    finally:
        os.close(fd)


def write_atomic(path: Path, write: Callable[[IO[bytes]], None], *, unique: bool = False) -> None:
    """Write `path` through `write(handle)` into a temporary file, then commit it. A failed
    write (a full disk) leaves no temporary file behind and `path` as it was. `unique`: a
    temporary name of this process's own, for files that several processes may write."""
    path = Path(path)
    tmp = temporary_beside(path)
    if unique:
        tmp = tmp.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as handle:
            write(handle)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:
        commit_file(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    write_atomic(path, lambda handle: handle.write(text.encode()))


def write_json_atomic(path: Path, data: Any) -> None:
    """JSON, indented, written atomically (status.json, summary.json, control requests)."""
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")
