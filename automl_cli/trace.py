"""trace.log and the console: a timestamped line per event, and a live table in a terminal.

`traceout` is Clara's: `file` writes trace.log (the console then shows only the key
events: jobs ending, new best, errors), `console` prints every trace line instead of
writing the file, `both` does both. In a terminal a live table of running jobs sits under
the lines; elsewhere (CI, SLURM logs) the console gets plain lines only, never control codes.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .errors import DiskFull, UsageError, disk_full
from .status import RunView, _clock

TRACEOUT = ("file", "console", "both")


def stamp() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S")


class Trace:
    """Writes trace lines to trace.log and/or the console, and keeps the live view."""

    def __init__(self, run_dir: Path, traceout: str = "file", stream: TextIO | None = None,
                 live: bool | None = None):
        if traceout not in TRACEOUT:
            raise UsageError(f"bad traceout '{traceout}': expected one of {', '.join(TRACEOUT)}")
        self.stream = stream or sys.stdout
        self.to_console = traceout in ("console", "both")
        self.path = run_dir / "trace.log"
        self.file = open(self.path, "a", buffering=1) if traceout in ("file", "both") else None
        is_tty = self.stream.isatty() if live is None else live
        self.console = Console(file=self.stream, force_terminal=is_tty, no_color=not is_tty,
                               highlight=False, soft_wrap=True)
        self.live = None
        if is_tty:
            from rich.live import Live  # a terminal's live table only: `automl --help` and the read path skip it

            self.live = Live(console=self.console, auto_refresh=False, transient=True)
        if self.live:
            self.live.start()

    def __call__(self, message: str, *, level: str = "INFO", key: bool = False) -> None:
        line = f"{stamp()} {level:<5} {message}"
        DiskFull.check()
        failed = None
        if self.file:
            try:
                self.file.write(line + "\n")
            except OSError as exc:
                failed = exc
                self._lost(exc)
        if failed is not None:
            key = True  # the file has not got it: the console must
        if self.to_console or key or level != "INFO":
            if self.live:
                self.live.console.print(line, markup=False)
            else:
                self.stream.write(line + "\n")
                self.stream.flush()
        if failed is not None:
            DiskFull.report(disk_full(failed, self.path), failed)

    def _lost(self, exc: OSError) -> None:
        """trace.log has no room: it gets no more lines (the console still does)."""
        if disk_full(exc, self.path) is None:
            raise exc
        file, self.file = self.file, None
        try:
            file.close()
        except OSError:
            pass

    def show(self, view: RunView) -> None:
        """Redraw the live table (terminals only)."""
        if self.live:
            self.live.update(_table(view), refresh=True)

    def close(self) -> None:
        if self.live:
            self.live.stop()
            self.live = None
        if self.file:
            file, self.file = self.file, None
            try:
                file.close()
            except OSError as exc:  # its last lines had no room
                error = disk_full(exc, self.path)
                if error is None:
                    raise
                DiskFull.report(error, exc)


def add_plain_row(table: Table, *cells: str) -> None:
    """A table row shown as written: values like [true,"softmax"] are not rich markup."""
    table.add_row(*(Text(str(cell)) for cell in cells))


def _table(view: RunView) -> Table:
    best = view.best()
    planned = view.settings.get("planned_jobs") or "?"
    done = sum(1 for j in view.jobs.values() if j.ended is not None)
    title = Text(f"run {view.run_id} · {view.settings.get('algorithm')} · jobs {done}/{planned} done"
             f" · best {view.metric_name} " + (f"{best.metric:.4f} ({best.name})" if best else "-")
             + f" · eta {_clock(view.eta()) or '?'}")
    table = Table(title=title, title_justify="left", expand=False, caption=_control_caption(view),
                  caption_justify="left")
    for column in ("job", "worker", "gpus", "trial", "rung", "epoch", "progress", view.metric_name, "eta"):
        table.add_column(column)
    for job in view.running():
        span = max(1, job.stop_epoch)
        filled = int(20 * job.epoch / span)
        last = job.epochs.get(job.epoch, {}).get(view.metric_name)
        add_plain_row(table, job.name, job.worker, ",".join(map(str, job.gpus)) or "cpu", str(job.trial_id), job.place,
                      f"{job.epoch}/{job.stop_epoch}", "█" * filled + "·" * (20 - filled),
                      "-" if last is None else f"{last:.4f}", _clock(job.eta()) or "?")
    return table


def _control_caption(view: RunView) -> Text | None:
    """What the admin commands changed (suspended workers, a requested stop), under the table."""
    notes = view.control_notes()
    return Text("; ".join(notes)) if notes else None
