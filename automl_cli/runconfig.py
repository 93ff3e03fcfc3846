"""Resolve a run's settings from the MMAR's config files and the command line.

Precedence, lowest first: defaults, config_automl.json, `--set KEY=VALUE` (later pairs
win, as in Clara's script where extra arguments follow the defaults), explicit options.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .algorithms.base import get_algorithm, resolve_params
from .run import DEFAULT_TRAIN_COMMAND, RunSettings, parse_train_command
from .errors import ConfigError, UsageError
from .mmar import AUTOML_CONFIG, MMAR, TRAIN_CONFIG
from .customize import customize
from .space import SearchSpace, parse_search_space
from .backends.slurm import check_commands
from .backends.slurm_script import SlurmOptions
from .workers import Worker, check_against_devices, count_gpus, parse_workers

# --set keys that are settings of the run rather than algorithm parameters
RUN_KEYS = {"run_id", "workers", "traceout", "trainconf", "automlconf", "algorithm", "seed", "automl_max_retries"}
# TAO's newer names for the Hyperband parameters
ALIASES = {"automl_max_epochs": "automl_R", "automl_reduction_factor": "automl_nu"}


def parse_set_pairs(pairs: tuple[str, ...]) -> dict[str, Any]:
    """`run_id=test1 workers=0:1` -> {"run_id": "test1", "workers": "0:1"}; numbers and
    booleans are read as JSON, the rest kept as text."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"bad --set item '{pair}': expected KEY=VALUE, e.g. run_id=test1 workers=0:1")
        if key in ("run_id", "workers", "trainconf", "automlconf", "traceout", "algorithm"):
            out[key] = value
            continue
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


@dataclass
class Loaded:
    """The checked configs of an MMAR, before any run-specific choice."""

    mmar: MMAR
    train_doc: dict
    train_path: Path
    resolved_train: dict
    automl_doc: dict
    automl_path: Path
    space: SearchSpace
    notes: list[str]  # how added parameters' ranges were derived
    max_epochs: int
    metric: str
    direction: str


def load_mmar(mmar_path: str, trainconf: str | None = None, automlconf: str | None = None) -> Loaded:
    """Load and check every config of the MMAR; raises ConfigError/UsageError on anything wrong."""
    mmar = MMAR.open(mmar_path)
    trainconf = trainconf or TRAIN_CONFIG
    train_doc, train_path = mmar.load_train_config(trainconf, resolve=False)
    resolved = mmar.load_train_config(trainconf, resolve=True)[0]
    # {mmar} and {epochs} in executor.args.train_command are filled per job, later
    per_job = {"mmar": "{mmar}", "epochs": "{epochs}"}
    automl_doc, automl_path = mmar.load_automl_config(automlconf or AUTOML_CONFIG, {"trainconf": trainconf, **per_job})
    space, notes = customize(parse_search_space(train_doc, train_path), train_doc, automl_doc, automl_path)
    if not len(space):
        raise ConfigError(train_path, [], 'nothing to search: no component has a "search" section '
                                          "(and config_automl.json adds no additional_automl_parameters)")
    epochs = resolved.get("epochs")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ConfigError(train_path, ["epochs"], f"expected the epochs of a full training (an integer >= 1), got {json.dumps(epochs)}")
    metric = automl_doc.get("metric", "val_mean_dice")
    direction = automl_doc.get("direction") or ("minimize" if "loss" in metric.lower() else "maximize")
    return Loaded(mmar, train_doc, train_path, resolved, automl_doc, automl_path, space, notes, epochs, metric,
                  direction)


def controller(loaded: Loaded, override: str | None) -> tuple[str, dict[str, Any]]:
    """The algorithm's name and parameters from config_automl.json's controller."""
    ctrl = loaded.automl_doc.get("controller", {})
    if "path" in ctrl and not override:
        raise ConfigError(loaded.automl_path, ["controller", "path"],
                          "custom controllers are not supported by this version yet; use a \"name\"")
    name = override or ctrl.get("name", "bayesian")
    args = {ALIASES.get(k, k): v for k, v in (ctrl.get("args") or {}).items()} if not override or override == ctrl.get("name") else {}
    return name, args


# executor.args every executor understands; SlurmExecutor's other args are SLURM options
_EXECUTOR_ARGS = {"train_command", "remove_search_augs", "grace_seconds"}
EXECUTORS = {"MMARExecutor": "local", "SlurmExecutor": "slurm"}


def slurm_options(loaded: Loaded, executor: dict, given: dict[str, Any]) -> SlurmOptions:
    """SlurmExecutor's args in config_automl.json, overridden by the --slurm-* options."""
    from_config = {k: v for k, v in (executor.get("args") or {}).items() if k not in _EXECUTOR_ARGS} \
        if executor.get("name") == "SlurmExecutor" else {}
    try:
        SlurmOptions.from_dict(from_config, where="executor.args.")
    except UsageError as exc:
        raise ConfigError(loaded.automl_path, ["executor", "args"], str(exc)) from None
    return SlurmOptions.from_dict({**from_config, **{k: v for k, v in given.items() if v is not None}})


def settings_for_run(loaded: Loaded, *, run_id: str | None, workers: str | None, algorithm: str | None,
                     traceout: str | None, set_values: dict[str, Any], warn, backend: str | None = None,
                     slurm: dict[str, Any] | None = None) -> tuple[RunSettings, list[Worker]]:
    """The RunSettings of `automl run`, with every input checked before anything starts."""
    if not run_id:
        raise UsageError("no run id: give --run-id ID or --set run_id=ID")
    if "/" in run_id or run_id in (".", "..") or not run_id.strip():
        raise UsageError(f"bad run id '{run_id}': it names a folder under automl/, so no '/'")
    executor = (loaded.automl_doc.get("executor") or {})
    if executor.get("name", "MMARExecutor") not in EXECUTORS:
        raise ConfigError(loaded.automl_path, ["executor", "name"],
                          f"unknown executor '{executor.get('name')}' (known: {', '.join(EXECUTORS)})")
    backend = backend or EXECUTORS[executor.get("name", "MMARExecutor")]
    options = None
    if backend == "slurm":
        # the tool runs on a login node: SLURM places jobs on GPUs (--gres), so the workers
        # are slots, one per SLURM job queued or running at a time
        options = slurm_options(loaded, executor, slurm or {})
        check_commands()
        given_workers = workers
        workers = ":".join("0" for _ in range(options.max_jobs))
        worker_list = [Worker(i, ()) for i in range(1, options.max_jobs + 1)]
        n_gpus = 0
    else:
        if any(v is not None for v in (slurm or {}).values()):
            raise UsageError("--slurm-* options need --backend slurm (or executor SlurmExecutor in config_automl.json)")
        given_workers = None
        workers = "0" if workers is None else workers
        worker_list = parse_workers(workers)
        n_gpus = count_gpus()
        if n_gpus:
            check_against_devices(worker_list, n_gpus)

    name, params = controller(loaded, algorithm)
    algo_cls = get_algorithm(name)
    for key, value in set_values.items():
        if key not in RUN_KEYS:
            params[ALIASES.get(key, key)] = value
    seed = set_values.get("seed", loaded.automl_doc.get("seed", 0))
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise UsageError(f"seed must be an integer, got {seed!r}")
    retries = set_values.get("automl_max_retries", loaded.automl_doc.get("automl_max_retries", 1))
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise UsageError(f"automl_max_retries must be an integer >= 0, got {retries!r}")
    resolve_params(algo_cls, params)  # fail now, not after the run folder exists

    exec_args = executor.get("args") or {}
    if "train_command" in exec_args:
        try:
            command = parse_train_command(exec_args["train_command"])
        except (UsageError, ValueError) as exc:
            raise ConfigError(loaded.automl_path, ["executor", "args", "train_command"], str(exc)) from None
    else:
        command = list(DEFAULT_TRAIN_COMMAND)
    # warnings only once every check has passed, so an error stays one line
    if backend == "slurm" and given_workers is not None:
        warn(f"--workers '{given_workers}' is ignored with --backend slurm: up to {options.max_jobs} SLURM jobs "
             "(--slurm-max-jobs) run at a time, each on the GPUs of --slurm-gres")
    elif n_gpus == 0:
        warn(f"no GPU visible: running {len(worker_list)} CPU worker(s) for the spec '{workers}'")
    if loaded.automl_doc.get("handlers"):
        names = ", ".join(h.get("name") or h.get("path", "?") for h in loaded.automl_doc["handlers"])
        warn(f"handlers are not run by this version yet; ignoring: {names}")

    settings = RunSettings(
        mmar=loaded.mmar, run_id=run_id, workers=worker_list, have_gpus=n_gpus > 0, space=loaded.space,
        train_config=loaded.train_doc, metric=loaded.metric, direction=loaded.direction,
        max_epochs=loaded.max_epochs, algorithm=name, algorithm_params=params, seed=seed,
        traceout=traceout or "file", train_command=command, max_retries=retries,
        remove_search_augs=bool(exec_args.get("remove_search_augs", True)),
        grace_seconds=float(exec_args.get("grace_seconds", 30.0)),
        config_files={"train": str(loaded.train_path), "automl": str(loaded.automl_path)},
        backend=backend, slurm=options)
    return settings, worker_list
