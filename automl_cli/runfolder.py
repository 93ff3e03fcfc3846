"""Where a run's folder is: the read path of `runs`, `status`, `workers`, `summary`, `report` and
the admin commands.

It reads only what locating a run needs (config_automl.json's syntax and its MMARHandler
work_dir, environment.json's variables) and imports no search machinery, no numpy and no
JSON Schema validator, so the commands that only look at a run start about as fast as
`automl --help`; the full checks of the config files belong to the commands that use them
(`run`, `validate`, `plan`). A run stays readable after its config was edited, too.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from .errors import ConfigError, UsageError
from .mmar import AUTOML_CONFIG, MMAR, TRAIN_CONFIG, load_document, substitute
from .store import BACKUP, JOURNAL


def automl_variables(trainconf: str) -> dict[str, str]:
    """What config_automl.json may name besides environment.json's variables: {trainconf}
    (the training config in use); {mmar} and {epochs} stay for the train command, filled per job."""
    return {"trainconf": trainconf, "mmar": "{mmar}", "epochs": "{epochs}"}


def runs_root(mmar: MMAR, work_dir: str | None) -> Path:
    """Where run folders go: MMARHandler's work_dir (relative: to the MMAR), else <mmar>/automl."""
    if work_dir is None:
        return mmar.runs_dir
    path = Path(work_dir).expanduser()
    return (path if path.is_absolute() else mmar.root / path).resolve()


def work_dir_of(mmar: MMAR, automlconf: str | None = None) -> Path:
    """The runs folder config_automl.json names, read without building any component."""
    path = mmar.config_file(automlconf or AUTOML_CONFIG)
    doc = load_document(path)
    handlers = doc.get("handlers")
    for index, spec in enumerate(handlers if isinstance(handlers, list) else []):
        args: Any = spec.get("args") if isinstance(spec, dict) else None
        if not isinstance(args, dict) or spec.get("name") != "MMARHandler" or "work_dir" not in args:
            continue  # anything else malformed is for the commands that build the handlers to say
        where = ["handlers", index, "args", "work_dir"]
        variables = {**mmar.environment(check_schema=False), **automl_variables(TRAIN_CONFIG)}
        work_dir = substitute(args["work_dir"], variables, path, where)
        if not isinstance(work_dir, str) or not work_dir.strip():
            raise ConfigError(path, where, f"expected a non-empty string, got {work_dir!r}")
        return runs_root(mmar, work_dir)
    return mmar.runs_dir


LATEST = "latest"  # --run-id latest: the newest run of the MMAR


def run_places(mmar: MMAR, automlconf: str | None = None) -> list[Path]:
    """Where runs are looked for, in order: MMARHandler's work_dir, then <mmar>/automl."""
    places = []
    for root in (work_dir_of(mmar, automlconf), mmar.runs_dir):
        if root not in places:
            places.append(root)
    return places


def _is_run(folder: Path) -> bool:
    return (folder / JOURNAL).is_file() or (folder / BACKUP).is_file()  # a damaged run is found too


def run_folders(mmar: MMAR, automlconf: str | None = None) -> list[Path]:
    """Every run folder of the MMAR, newest first; a run id found in two places is the one
    find_run would pick (the earlier place)."""
    found: dict[str, Path] = {}
    for root in run_places(mmar, automlconf):
        if root.is_dir():
            for folder in sorted(root.iterdir()):
                if folder.name not in found and folder.is_dir() and _is_run(folder):
                    found[folder.name] = folder
    return sorted(found.values(), key=started_at, reverse=True)


def started_at(run_dir: Path) -> float:
    """When the run started: its journal's first event (the copy's when the journal is
    unreadable), else the folder's change time; read without replaying the journal."""
    for name in (JOURNAL, BACKUP):
        try:
            db = sqlite3.connect(f"file:{run_dir / name}?mode=ro", uri=True, timeout=10)
        except sqlite3.Error:
            continue
        try:
            row = db.execute("SELECT time FROM events ORDER BY seq LIMIT 1").fetchone()
        except sqlite3.Error:
            row = None
        finally:
            db.close()
        if row is not None:
            return float(row[0])
    return run_dir.stat().st_mtime


def find_run(mmar_path: str, run_id: str, automlconf: str | None = None, *, latest: bool = True) -> Path:
    """The folder of run `run_id`: under MMARHandler's work_dir when config_automl.json sets
    one, else (or if not found there) under <mmar>/automl. `latest` is the newest run, unless
    a run is named so (or `latest` is False: `automl run` names a run, it never picks one);
    an unknown id is one line listing the runs there are."""
    mmar = MMAR.open(mmar_path)
    places = run_places(mmar, automlconf)
    for root in places:
        if _is_run(root / run_id):
            return root / run_id
    runs = run_folders(mmar, automlconf)
    where = " or ".join(str(p) for p in places)
    if run_id == LATEST and latest:
        if runs:
            return runs[0]
        raise UsageError(f"no runs yet in {where}")
    if not runs:
        raise UsageError(f"no run '{run_id}' in {where}: there are no runs yet")
    shown = ", ".join(r.name for r in runs[:10]) + (f" and {len(runs) - 10} more" if len(runs) > 10 else "")
    raise UsageError(f"no run '{run_id}' in {where}; runs there, newest first: {shown} (automl runs lists them)")
