"""Every run of an MMAR as one row each: what `automl runs` prints and the dashboard's index
page shows, read from the journals (safe while the runs go on)."""
from __future__ import annotations

from pathlib import Path

COLUMNS = ("run", "algorithm", "status", "jobs", "best", "started", "duration")


def run_row(run_dir: Path, load=None) -> dict:
    """One run as `automl runs` shows it, from its journal; a damaged journal is a row that
    says so. `load(run_dir)` gives the RunView (default RunView.load; the dashboard passes
    its cache)."""
    import datetime as dt
    import time

    from .control import is_running
    from .runfolder import started_at
    from .status import RunView
    from .store import DamagedJournal

    def stamp(when):
        return None if when is None else dt.datetime.fromtimestamp(when).astimezone().isoformat(timespec="seconds")

    try:
        view = (load or RunView.load)(run_dir)
    except DamagedJournal:
        started = started_at(run_dir)
        return {"run_id": run_dir.name, "folder": str(run_dir), "algorithm": None, "status": "damaged", "jobs": {},
                "planned_jobs": None, "metric": None, "best": None, "started": stamp(started), "ended": None,
                "seconds": None}
    status = view.status
    if status == "running" and not is_running(run_dir):
        status = "interrupted"  # the journal says running, but no `automl run` holds the folder: --resume continues it
    best = view.best()
    started = view.started or started_at(run_dir)
    ended = view.ended if view.status != "running" else None
    return {"run_id": view.run_id or run_dir.name, "folder": str(run_dir), "algorithm": view.settings.get("algorithm"),
            "status": status, "jobs": dict(sorted(view.counts().items())),
            "planned_jobs": view.settings.get("planned_jobs"), "metric": view.metric_name if view.settings else None,
            "best": None if best is None else {"job": best.name, "value": best.metric, "epoch": best.best_epoch},
            "started": stamp(started), "ended": stamp(ended),
            "seconds": None if status == "interrupted" else round((ended or time.time()) - started, 1)}


def row_cells(row: dict) -> list[str]:
    """A row's cells under COLUMNS, as text."""
    jobs = ", ".join(f"{n} {s}" for s, n in row["jobs"].items()) or "0"
    if row["planned_jobs"]:
        jobs += f" of {row['planned_jobs']}"
    best = "-" if row["best"] is None else f"{row['best']['value']:.4f} {row['best']['job']}"
    return [row["run_id"], row["algorithm"] or "?", row["status"], jobs, best, local_time(row["started"]),
            duration(row["seconds"])]


def local_time(iso: str | None) -> str:
    return "-" if iso is None else iso[:19].replace("T", " ")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
