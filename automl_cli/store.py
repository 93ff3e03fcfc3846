"""The run journal: every event of a run, appended to SQLite in the run folder.

The engine is the one writer. Status, the final result and (later) resume are all read
from here, so what the user sees is what happened. WAL mode lets `automl status` read from
another shell while the run writes.
"""
from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

JOURNAL = "journal.db"

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
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(_SCHEMA)

    def append(self, kind: str, when: float | None = None, **data: Any) -> Event:
        """Add an event stamped `when` (default: now); returns it."""
        now = time.time() if when is None else when
        cur = self.db.execute("INSERT INTO events (time, kind, data) VALUES (?, ?, ?)",
                              (now, kind, json.dumps(data)))
        self.db.commit()
        return Event(cur.lastrowid, now, kind, data)

    def events(self, after: int = 0) -> Iterator[Event]:
        try:
            rows = self.db.execute("SELECT seq, time, kind, data FROM events WHERE seq > ? ORDER BY seq", (after,))
        except sqlite3.OperationalError as exc:
            # a reader (automl status) that opens the journal of a run still creating it finds
            # no table yet: no events so far, not an error
            if "no such table" in str(exc):
                return
            raise
        for seq, when, kind, data in rows:
            yield Event(seq, when, kind, json.loads(data))

    def close(self) -> None:
        self.db.close()
