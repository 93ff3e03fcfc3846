"""files.py: the one atomic write (temp file, fsync, rename, fsync of the folder)."""
from __future__ import annotations

import json
import os
import stat

import pytest

from automl_cli import files


def test_json_written_whole_and_no_temporary_left(tmp_path):
    path = tmp_path / "status.json"
    files.write_json_atomic(path, {"a": 1})
    files.write_json_atomic(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]


def test_the_file_and_then_its_folder_are_fsynced(tmp_path, monkeypatch):
    synced = []
    real = os.fsync

    def record(fd):
        synced.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real(fd)

    monkeypatch.setattr(files.os, "fsync", record)
    files.write_text_atomic(tmp_path / "x.txt", "hello")
    assert synced == ["file", "dir"]
    assert (tmp_path / "x.txt").read_text() == "hello"


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "summary.json"
    path.write_text("old")

    def fail(handle):
        handle.write(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        files.write_atomic(path, fail)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_unique_temporary_names_carry_the_pid(tmp_path, monkeypatch):
    seen = []
    real = files.commit_file
    monkeypatch.setattr(files, "commit_file", lambda tmp, path: (seen.append(tmp.name), real(tmp, path)))
    files.write_atomic(tmp_path / "model.pt", lambda h: h.write(b"w"), unique=True)
    assert seen == [f".model.pt.{os.getpid()}.tmp"]
