"""Where a run's folder is: the read path of `status`, `workers`, `summary`, `report` and the
admin commands.

It reads only what locating a run needs (config_automl.json's syntax and its MMARHandler
work_dir, environment.json's variables) and imports no search machinery, no numpy and no
JSON Schema validator, so the commands that only look at a run start about as fast as
`automl --help`; the full checks of the config files belong to the commands that use them
(`run`, `validate`, `plan`). A run stays readable after its config was edited, too.
"""
from __future__ import annotations

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


def find_run(mmar_path: str, run_id: str, automlconf: str | None = None) -> Path:
    """The folder of run `run_id`: under MMARHandler's work_dir when config_automl.json sets
    one, else (or if not found there) under <mmar>/automl."""
    mmar = MMAR.open(mmar_path)
    places = []
    for root in (work_dir_of(mmar, automlconf), mmar.runs_dir):
        if root not in places:
            places.append(root)
    for root in places:
        if (root / run_id / JOURNAL).is_file() or (root / run_id / BACKUP).is_file():  # a damaged run is found too
            return root / run_id
    raise UsageError(f"no run '{run_id}' in {' or '.join(str(p) for p in places)}")
