"""The run journal: every event of a run, appended to SQLite in the run folder.

The engine is the one writer. Status, the final result and --resume all read from here,
so what the user sees is what happened. WAL mode lets `automl status` read from
another shell while the run writes.
"""
from __future__ import annotations

import json
import os
import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from .errors import DiskFull, UsageError, disk_full
from .files import commit_file

JOURNAL = "journal.db"
# a copy of the journal, taken with SQLite's backup API when the run starts or resumes, at
# each job's end and at the run's end: what `automl recover` restores a damaged journal from
BACKUP = "journal.db.bak"
# a job folder: <worker>_<attempt>_J<job>
_JOB_FOLDER = re.compile(r"W\d+_\d+_J\d+")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq   INTEGER PRIMARY KEY AUTOINCREMENT,
    time  REAL NOT NULL,
    kind  TEXT NOT NULL,
    data  TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class Event:
    seq: int
    time: float
    kind: str
    data: dict[str, Any]


class Journal:
    """Append-only event log of one run."""

    def __init__(self, path: Path, *, readonly: bool = False):
        self.path = Path(path)
        if readonly:
            self.db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=10)
        else:
            self.db = sqlite3.connect(self.path, timeout=10)
            try:
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=NORMAL")
                self.db.executescript(_SCHEMA)
            except sqlite3.Error as exc:
                self.db.close()
                error = disk_full(exc, self.path)
                if error is None:
                    raise
                DiskFull.said()
                raise error from None
        self.full = False  # a write found the disk full: later events are not written
        self.last_seq = 0  # of the last event this writer appended

    def append(self, kind: str, when: float | None = None, **data: Any) -> Event:
        """Add an event stamped `when` (default: now); returns it. The first event the disk
        has no room for raises DiskFull (the transaction rolled back: the journal keeps every
        event before it, which is what --resume continues from); later ones are not written."""
        now = time.time() if when is None else when
        DiskFull.check()
        if self.full:
            return Event(self.last_seq, now, kind, data)
        try:
            cur = self.db.execute("INSERT INTO events (time, kind, data) VALUES (?, ?, ?)",
                                  (now, kind, json.dumps(data)))
            self.db.commit()
        except sqlite3.Error as exc:
            error = disk_full(exc, self.path)
            if error is None:
                raise
            self.full = True
            try:
                self.db.rollback()
            except sqlite3.Error:
                pass
            DiskFull.report(error, exc)
            return Event(self.last_seq, now, kind, data)
        self.last_seq = cur.lastrowid
        return Event(cur.lastrowid, now, kind, data)

    def events(self, after: int = 0) -> Iterator[Event]:
        """The events after seq `after`, in order. A journal SQLite cannot read (truncated,
        overwritten) raises DamagedJournal."""
        try:
            rows = self.db.execute("SELECT seq, time, kind, data FROM events WHERE seq > ? ORDER BY seq", (after,))
        except sqlite3.OperationalError as exc:
            # a reader (automl status) that opens the journal of a run still creating it finds
            # no table yet: no events so far, not an error
            if "no such table" in str(exc):
                return
            raise DamagedJournal(self.path, str(exc)) from None
        except sqlite3.DatabaseError as exc:
            raise DamagedJournal(self.path, str(exc)) from None
        while True:
            try:
                row = rows.fetchone()
            except sqlite3.DatabaseError as exc:
                raise DamagedJournal(self.path, str(exc)) from None
            if row is None:
                return
            seq, when, kind, data = row
            try:
                values = json.loads(data)
            except (TypeError, ValueError):
                raise DamagedJournal(self.path, f"event {seq} is not JSON") from None
            yield Event(seq, when, kind, values)

    def backup(self, target: Path) -> None:
        """Copy the journal to `target` atomically (SQLite's backup API into a temporary
        file, committed over the last copy by files.commit_file): a reader never sees half a copy."""
        target = Path(target)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.unlink(missing_ok=True)
        copy = sqlite3.connect(tmp)
        try:
            self.db.backup(copy)
            copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        finally:
            copy.close()
        commit_file(tmp, target)

    def close(self) -> None:
        self.db.close()


class DamagedJournal(UsageError):
    """A journal that cannot be read whole: one line naming it, and what to do; nothing
    was changed (exit 2)."""

    def __init__(self, path: Path, reason: str):
        self.path = Path(path)
        self.reason = reason
        run_dir = self.path.parent
        mmar = run_dir.parent.parent if run_dir.parent.name == "automl" else "MMAR"
        copy = _describe_copy(run_dir / BACKUP)
        if copy:
            then = (f"`automl recover -m {mmar} --run-id {run_dir.name}` restores its copy {copy} "
                    "and says what was lost")
        else:
            then = f"there is no copy of it to recover from ({run_dir / BACKUP} is missing)"
        super().__init__(f"the journal {self.path} is damaged ({reason}); nothing was changed; {then}")


def _describe_copy(path: Path) -> str | None:
    """`of 2024-05-01 12:00:03 (57 events)`, or None without a readable copy."""
    try:
        last, count = _last_seq(path)
    except (OSError, sqlite3.Error, DamagedJournal):
        return None
    return f"of {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(path.stat().st_mtime))} ({count} events)"


def _last_seq(path: Path) -> tuple[int, int]:
    """The last seq and the number of events of a journal file (raises on a broken one)."""
    if not path.is_file():
        raise FileNotFoundError(path)
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        last, count = db.execute("SELECT COALESCE(MAX(seq), 0), COUNT(*) FROM events").fetchone()
    finally:
        db.close()
    return last, count


def job_folders(run_dir: Path) -> list[str]:
    """The job folders in a run folder, by name."""
    try:
        return sorted(p.name for p in Path(run_dir).iterdir() if p.is_dir() and _JOB_FOLDER.fullmatch(p.name))
    except OSError:
        return []


def read_events(run_dir: Path, *, check: bool = False) -> list[Event]:
    """Every event of the run in `run_dir`, read-only, or DamagedJournal when the journal
    cannot be the run's whole record: SQLite cannot read it, it holds fewer events than its
    own last copy, or (`check`: before a resume) it is missing or holds no start while the
    folder holds the run's job folders or a copy. The copy is read first: during a live run
    it never holds more than the journal read after it."""
    run_dir = Path(run_dir)
    path, backup = run_dir / JOURNAL, run_dir / BACKUP
    try:
        floor = _last_seq(backup)[0]
    except (OSError, sqlite3.Error):
        floor = 0
    if not path.is_file():
        if floor or (check and job_folders(run_dir)):
            raise DamagedJournal(path, "it is missing, but the run folder holds the run's "
                                       + ("copy of it" if floor else "job folders"))
        return []
    journal = Journal(path, readonly=True)
    try:
        if check:
            try:
                verdict = journal.db.execute("PRAGMA quick_check").fetchone()[0]
            except sqlite3.DatabaseError as exc:
                raise DamagedJournal(path, str(exc)) from None
            if verdict != "ok":
                raise DamagedJournal(path, f"SQLite's check says: {verdict}")
        events = list(journal.events())
    finally:
        journal.close()
    last = events[-1].seq if events else 0
    if last < floor:
        raise DamagedJournal(path, f"it ends at event {last}, but its copy {backup.name} holds events up to {floor}: "
                                   "it was truncated")
    if check and not any(e.kind == "run_started" for e in events):
        folders = job_folders(run_dir)
        if folders:
            raise DamagedJournal(path, f"it holds no start of the run, but the run folder holds job folders "
                                       f"({', '.join(folders[:3])}{', ...' if len(folders) > 3 else ''})")
    return events


def recover_journal(run_dir: Path) -> str:
    """Put the journal's last copy in place of a damaged journal (kept beside it, renamed
    journal.db.damaged-<time>, with its -wal), and say what the copy does not know. The
    caller holds the run's lock. An intact journal is left as it is."""
    run_dir = Path(run_dir)
    path, backup = run_dir / JOURNAL, run_dir / BACKUP
    try:
        read_events(run_dir, check=True)
    except DamagedJournal as exc:
        damage = exc.reason
    else:
        if path.is_file():
            raise UsageError(f"the journal {path} is not damaged; nothing was changed (recover restores a damaged "
                             "journal from its copy)")
        damage = None
    try:
        copy = Journal(backup, readonly=True)
        try:
            if copy.db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise sqlite3.DatabaseError("SQLite's check failed")
            events = list(copy.events())
        finally:
            copy.close()
    except (OSError, sqlite3.Error, DamagedJournal) as exc:
        reason = "it is missing" if not backup.is_file() else f"it is damaged too: {getattr(exc, 'reason', exc)}"
        raise UsageError(f"cannot recover the journal {path}: its copy {backup} cannot be used ({reason}); "
                         "nothing was changed") from None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    kept = None
    if path.exists():
        kept = path.with_name(f"{JOURNAL}.damaged-{stamp}")
        os.replace(path, kept)
    for suffix in ("-wal", "-shm"):
        side = path.with_name(JOURNAL + suffix)
        if side.exists():
            if kept is not None and suffix == "-wal" and side.stat().st_size:  # events not yet in the file
                os.replace(side, kept.with_name(kept.name + suffix))
            else:
                side.unlink()
    tmp = run_dir / f".{JOURNAL}.recovering"
    tmp.unlink(missing_ok=True)
    source = sqlite3.connect(f"file:{backup}?mode=ro", uri=True)
    target = sqlite3.connect(tmp)
    try:
        source.backup(target)
        target.execute("PRAGMA journal_mode=WAL")
    finally:
        target.close()
        source.close()
    commit_file(tmp, path)

    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(events[-1].time)) if events else "?"
    known, ended = {}, set()
    for event in events:
        if event.kind == "job_started":
            known[Path(event.data["dir"]).name] = event.data["name"]
        elif event.kind == "job_finished":
            ended.add(event.data["job_id"])
    running = sorted({e.data["name"] for e in events if e.kind == "job_started" and e.data["job_id"] not in ended})
    unknown = [f for f in job_folders(run_dir) if f not in known]
    lines = [f"restored {path} from its copy {backup.name} ({len(events)} events, the last at {when})"
             + (f"; the damaged journal is kept as {kept.name}" if kept else "") + (f" (it was: {damage})" if damage else "")]
    lost = []
    if running:
        lost.append(f"the copy has {', '.join(running)} still running: --resume continues them from their "
                    "checkpoints (epochs their metrics files hold are read back)")
    if unknown:
        lost.append(f"it does not know the job folder(s) {', '.join(unknown)}: --resume trains those jobs again "
                    "(the algorithm asks for them again; their folders are replaced)")
    lines.append("lost: what happened after the copy was taken" + ("; " + "; ".join(lost) if lost else
                                                                    " (no job's work: every job folder is known)"))
    return "\n".join(lines)
