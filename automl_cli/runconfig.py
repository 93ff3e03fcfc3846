"""Resolve a run's settings from the MMAR's config files and the command line.

Precedence, lowest first: defaults, config_automl.json, `--set KEY=VALUE` (later pairs
win, as in Clara's script where extra arguments follow the defaults), explicit options.
"""
from __future__ import annotations

import json
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .algorithms.base import Algorithm, get_algorithm, resolve_params
from .algorithms.catalogue import BUDGET_PASSES, initial_design_line
from .clara.clara_api import is_clara_controller
from .clara.clara_api.adapters import ClaraHandlerAdapter
from .clara.components import (CLARA_CONTROLLERS, algorithm_name, build, controller_algorithm, controller_class,
                               load_handlers)
from .clara.mmar_handler import JobLayout, MMARHandler
from .durations import format_duration, parse_duration
from .errors import ConfigError, UsageError
from .mmar import AUTOML_CONFIG, MMAR, TRAIN_CONFIG
from .runfolder import automl_variables, runs_root
from .trainers import TRAINERS, check_train_config, check_train_config_isolated
from .customize import customize
from .space import SearchSpace, parse_search_space
from .backends import registry as backends
from .backends.base import PlacementRequest
from .workers import Worker

# --set keys that are settings of the run rather than algorithm parameters
RUN_KEYS = {"run_id", "workers", "traceout", "trainconf", "automlconf", "algorithm", "seed", "automl_max_retries",
            "automl_job_timeout", "automl_time_budget", "automl_time_budget_hard", "automl_start_from_config"}
# With a time budget, schedules that would end after one pass are lengthened (unless the
# user set how long they run) so that the budget, not the schedule, ends the search: the
# Hyperband family gets BUDGET_PASSES passes over its brackets (algorithms/catalogue.py)
# a run id names <runs>/<id>/, its SLURM jobs and its control files: no path separators,
# spaces or shell characters (Clara's examples use names like a, test1, trn_autoML_Enum)
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+@=-]{0,99}")
# TAO's newer names for the Hyperband parameters
ALIASES = {"automl_max_epochs": "automl_R", "automl_reduction_factor": "automl_nu"}


DEFAULT_TRAIN_COMMAND = [sys.executable, "-m", "automl_cli", "train", "-m", "{mmar}", "--trainconf", "{trainconf}",
                         "--epochs", "{epochs}"]


@dataclass
class RunSettings:
    """Everything a run needs, resolved from the command line and the config files."""

    mmar: MMAR
    run_id: str
    workers: list[Worker]
    have_gpus: bool
    space: SearchSpace
    train_config: dict  # config_train.json as written (variables not substituted)
    metric: str
    direction: str
    max_epochs: int
    algorithm: str
    algorithm_params: dict[str, Any]
    seed: int = 0
    traceout: str = "file"
    train_command: list[str] = field(default_factory=lambda: list(DEFAULT_TRAIN_COMMAND))
    remove_search_augs: bool = True
    grace_seconds: float = 30.0
    max_retries: int = 1
    job_timeout: float | str = "auto"  # automl_job_timeout: seconds without an epoch before a job is hung
    config_files: dict[str, str] = field(default_factory=dict)
    backend: str = "local"  # a name in backends/registry.py
    backend_options: Any = None  # what the backend's BackendKind.place gave (SLURM: SlurmOptions)
    runs_root: Path | None = None  # where run folders go (MMARHandler's work_dir); default <mmar>/automl
    job_train_config: str = TRAIN_CONFIG  # the applied config's name in a job's config/ (train_config_file)
    variables: dict[str, Any] = field(default_factory=dict)  # --set values of the config's {VAR}s
    copy_whole_mmar: bool = False  # jobs copy the whole MMAR (key_mmar_content_only false), not link it
    # the configuration as written (SearchSpace.written_values), proposed first; None: off
    # (automl_start_from_config false, or a user's controller, which proposes on its own)
    start_from: dict[str, Any] | None = None
    handlers: list[tuple[str, Any]] = field(default_factory=list)  # (label, instance): Clara's event handlers
    invocation: dict[str, Any] = field(default_factory=dict)  # the options and --set pairs given (resume.invocation)
    time_budget: float | None = None  # seconds of the run's own time, over its sessions (docs/usage.md)
    time_budget_hard: bool = False  # at the budget running jobs are stopped too, not left to finish
    notes: list[str] = field(default_factory=list)  # what the settings code decided, for trace.log
    # the schedule was lengthened to run until the time budget ends it: its job count says nothing
    open_ended: bool = False

    @property
    def run_dir(self) -> Path:
        return (self.runs_root or self.mmar.runs_dir) / self.run_id


def parse_train_command(text: str) -> list[str]:
    """executor.args.train_command: a shell-like line with {mmar} and {epochs} placeholders."""
    if "{epochs}" not in text:
        raise UsageError("executor.args.train_command must contain {epochs} (the epoch the job trains up to)")
    return shlex.split(text)


def parse_set_pairs(pairs: tuple[str, ...], warn: Callable[[str], None] | None = None) -> dict[str, Any]:
    """`run_id=test1 workers=0:1` -> {"run_id": "test1", "workers": "0:1"}; numbers and
    booleans are read as JSON, the rest kept as text.

    A bare word (no "=") is what Clara's commands/automl.sh passes after its pairs (`$*`,
    e.g. the run's name): with `warn` it is ignored with a one-line warning, as Clara did;
    without, it is an error. An empty key (`=x`) is always an error."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep and key and warn is not None:
            warn(f"ignoring '{pair}' among --set pairs (not KEY=VALUE)")
            continue
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
    variables: dict[str, Any] = field(default_factory=dict)  # --set values of the config's {VAR}s


def config_variables(mmar: MMAR, train_doc: dict, values: dict[str, Any]) -> dict[str, Any]:
    """The --set pairs that give a {VAR} of the training config rather than a run setting or
    an algorithm parameter: environment.json's variables and the config's own top-level
    values (Clara's `--set DATA_ROOT=/data`, `--set epochs=3`)."""
    names = set(mmar.environment()) - {"MMAR_ROOT"}
    names |= {k for k, v in train_doc.items() if isinstance(v, (str, int, float, bool))}
    return {k: v for k, v in values.items() if k in names and k not in RUN_KEYS}


def load_mmar(mmar_path: str, trainconf: str | None = None, automlconf: str | None = None,
              set_values: dict[str, Any] | None = None) -> Loaded:
    """Load and check every config of the MMAR; raises ConfigError/UsageError on anything wrong."""
    mmar = MMAR.open(mmar_path)
    trainconf = trainconf or TRAIN_CONFIG
    train_doc, train_path = mmar.load_train_config(trainconf, resolve=False)
    variables = config_variables(mmar, train_doc, set_values or {})
    resolved = mmar.load_train_config(trainconf, resolve=True, extra=variables)[0]
    automl_doc, automl_path = mmar.load_automl_config(automlconf or AUTOML_CONFIG, automl_variables(trainconf))
    space, notes = customize(parse_search_space(train_doc, train_path), train_doc, automl_doc, automl_path)
    if not len(space):
        raise ConfigError(train_path, [], 'nothing to search: no component has a "search" section '
                                          "(and config_automl.json adds no additional_automl_parameters)")
    epochs = resolved.get("epochs")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ConfigError(train_path, ["epochs"], f"expected the epochs of a full training (an integer >= 1), got {json.dumps(epochs)}")
    metric = automl_doc.get("metric", "val_mean_dice")
    direction = automl_doc.get("direction") or ("minimize" if "loss" in metric.lower() else "maximize")
    searched = sorted(set(variables) & {place for p in space.params for place in p.places()})
    if searched:
        raise UsageError(f"--set {searched[0]}=...: {searched[0]} is searched, so the search chooses its value")
    return Loaded(mmar, train_doc, train_path, resolved, automl_doc, automl_path, space, notes, epochs, metric,
                  direction, variables)


def controller(loaded: Loaded, override: str | None) -> tuple[str, dict[str, Any]]:
    """The algorithm's name (ours, Clara's mapped onto ours, or a user's module.Class) and
    its parameters, from config_automl.json's controller or --algorithm."""
    ctrl = loaded.automl_doc.get("controller", {})
    args = {ALIASES.get(k, k): v for k, v in (ctrl.get("args") or {}).items()}
    if override:
        name = CLARA_CONTROLLERS.get(override, override)
        get_algorithm(name)  # an unknown --algorithm is a usage error listing the known
        same = "name" in ctrl and CLARA_CONTROLLERS.get(ctrl["name"], ctrl["name"]) == name
        return name, args if same else {}
    if "path" in ctrl:
        return ctrl["path"], args
    return algorithm_name(ctrl.get("name", "bayesian"), loaded.automl_path, ["controller", "name"]), args


def custom_controller(loaded: Loaded, override: str | None) -> type | None:
    """The user's controller class when config_automl.json names one by path (and
    --algorithm does not replace it)."""
    ctrl = loaded.automl_doc.get("controller", {})
    if override or "path" not in ctrl:
        return None
    return controller_class(ctrl["path"], loaded.mmar.root, loaded.automl_path)


def make_algorithm(loaded: Loaded, settings: RunSettings, override: str | None) -> Algorithm:
    """The run's algorithm: one of ours, or a user's controller behind ControllerAlgorithm."""
    cls = custom_controller(loaded, override)
    common = dict(max_epochs=settings.max_epochs, seed=settings.seed, params=settings.algorithm_params,
                  direction=settings.direction)
    if cls is None:
        return get_algorithm(settings.algorithm)(settings.space, start_from=settings.start_from, **common)
    instance = build(cls, settings.algorithm, settings.algorithm_params, loaded.automl_path, ["controller"])
    return controller_algorithm(cls, instance, settings.space, settings.algorithm, settings.handlers, **common)


def job_layout(handlers: list[tuple[str, Any]]) -> JobLayout:
    return next((h.layout for _, h in handlers if isinstance(h, MMARHandler)), JobLayout())


def runs_dir(mmar: MMAR, layout: JobLayout) -> Path:
    """Where run folders go: MMARHandler's work_dir (relative: to the MMAR), else <mmar>/automl."""
    return runs_root(mmar, layout.work_dir)


def check_trainer(loaded: Loaded, *, isolated: bool = False) -> list[str]:
    """The trainer's checks of config_train.json (trainers.check_train_config): what would
    fail in every job, raised as a ConfigError before anything starts. The trainer is
    executor.args.trainer ("auto": by the config's form); with "auto" and a train_command of
    the user's own, the trainer is theirs and the config is not checked. `isolated` checks
    in a child process, so a search that runs for days does not hold torch and MONAI, which
    checking imports, in its memory."""
    exec_args = (loaded.automl_doc.get("executor") or {}).get("args") or {}
    chosen = exec_args.get("trainer", "auto")
    if chosen not in ("auto", *TRAINERS):
        raise ConfigError(loaded.automl_path, ["executor", "args", "trainer"],
                          f"unknown trainer {json.dumps(chosen)} (known: auto, {', '.join(TRAINERS)})")
    command = exec_args.get("train_command")
    if chosen == "auto" and isinstance(command, str):
        chosen = _our_trainer_in(command)
        if chosen is None:
            return ["trainer: your own (executor.args.train_command), so config_train.json is not checked against "
                    'one of ours; set executor.args.trainer to "reference" or "clara4" to check it']
        if chosen not in ("auto", *TRAINERS):
            raise ConfigError(loaded.automl_path, ["executor", "args", "train_command"],
                              f"unknown --trainer {json.dumps(chosen)} (known: auto, {', '.join(TRAINERS)})")
    check = check_train_config_isolated if isolated else check_train_config
    return check(loaded.resolved_train, loaded.train_path, chosen, metric=loaded.metric)


def _our_trainer_in(command: str) -> str | None:
    """The trainer a train_command runs when it runs `automl train` (`python -m automl_cli
    train ...`, `automl train ...`): its --trainer, else "auto"; None for any other program."""
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    for i, word in enumerate(words[:-1]):
        if words[i + 1] == "train" and ((word == "automl_cli" and i > 0 and words[i - 1] == "-m")
                                        or Path(word).name == "automl"):
            rest = words[i + 2:]
            for k, option in enumerate(rest):
                if option == "--trainer" and k + 1 < len(rest):
                    return rest[k + 1]
                if option.startswith("--trainer="):
                    return option.partition("=")[2]
            return "auto"
    return None


def check_executor(loaded: Loaded) -> dict:
    """config_automl.json's executor, its name checked."""
    executor = loaded.automl_doc.get("executor") or {}
    known = backends.executors()
    if "path" in executor:
        raise ConfigError(loaded.automl_path, ["executor", "path"], "a user's own executor is not supported: jobs "
                          "run through executor.args.train_command (any program following docs/trainer.md); "
                          f"use a \"name\" ({', '.join(known)})")
    if executor.get("name", "MMARExecutor") not in known:
        raise ConfigError(loaded.automl_path, ["executor", "name"],
                          f"unknown executor '{executor.get('name')}' (known: {', '.join(known)})")
    return executor


def time_budget(loaded: Loaded, given: Any, hard: Any, *, option: bool = False) -> tuple[float | None, bool]:
    """The run's time budget in seconds (None: none) and whether it is hard: `given` (the
    --time-budget option, or --set automl_time_budget with `option` False), else
    config_automl.json's automl_time_budget; a bad value is one line naming where it was."""
    if given is None and "automl_time_budget" in loaded.automl_doc:
        try:
            seconds = parse_duration(loaded.automl_doc["automl_time_budget"])
        except ValueError as exc:
            raise ConfigError(loaded.automl_path, ["automl_time_budget"], str(exc)) from None
    elif given is None:
        seconds = None
    else:
        try:
            seconds = parse_duration(given)
        except ValueError as exc:
            where = "--time-budget" if option else "automl_time_budget"
            raise UsageError(f"bad {where}: {exc}") from None
    if hard is None:
        hard = loaded.automl_doc.get("automl_time_budget_hard", False)
        if not isinstance(hard, bool):
            raise ConfigError(loaded.automl_path, ["automl_time_budget_hard"], f"expected true or false, got "
                              f"{json.dumps(hard)}")
    elif not isinstance(hard, bool):
        raise UsageError(f"automl_time_budget_hard must be true or false, got {hard!r}")
    return seconds, hard


def fill_budget(name: str, params: dict[str, Any], max_epochs: int, budget: float | None) -> list[str]:
    """With a time budget, lengthen a schedule that would end after one pass, unless the
    user set its length (in `params`, which this changes): the Hyperband family runs its
    brackets BUDGET_PASSES times over, PBT trains its members up to the config's epochs.
    Algorithms that train a set number of configurations (automl_max_recommendations)
    keep it: they end at the budget or at that number, whichever comes first. Returns
    what it did, for trace.log."""
    if budget is None:
        return []
    try:
        cls = get_algorithm(name)
    except UsageError:  # a user's controller decides for itself
        return []
    spec = getattr(cls, "parameters", {})
    notes = []
    if "automl_hyperband_iterations" in spec and "automl_hyperband_iterations" not in params:
        params["automl_hyperband_iterations"] = BUDGET_PASSES
        notes.append(f"time budget {format_duration(budget)}: automl_hyperband_iterations raised to {BUDGET_PASSES} "
                     "(the brackets run over again until the budget ends the search; set it to choose)")
    if "automl_max_generations" in spec and "automl_max_generations" not in params:
        interval = params.get("automl_eval_interval", spec["automl_eval_interval"].default)
        needed = -(-max_epochs // interval) if isinstance(interval, int) and interval > 0 else None
        if needed and needed > spec["automl_max_generations"].default:
            params["automl_max_generations"] = needed
            notes.append(f"time budget {format_duration(budget)}: automl_max_generations raised to {needed} (members "
                         f"train up to the config's {max_epochs} epochs; set it to choose)")
    return notes


def settings_for_run(loaded: Loaded, *, run_id: str | None, workers: str | None, algorithm: str | None,
                     traceout: str | None, set_values: dict[str, Any], warn, backend: str | None = None,
                     slurm: dict[str, Any] | None = None, budget: Any = None, budget_hard: Any = None,
                     budget_option: bool = False, fill: bool = True) -> tuple[RunSettings, list[Worker]]:
    """The RunSettings of `automl run`, with every input checked before anything starts.
    `budget`, `budget_hard`: the time budget given (time_budget); `fill`: lengthen the
    schedule for it (fill_budget; not for a resumed run that started without a budget,
    whose schedule is fixed)."""
    if not run_id:
        raise UsageError("no run id: give --run-id ID or --set run_id=ID")
    if not _RUN_ID.fullmatch(run_id):
        raise UsageError(f"bad run id {run_id!r}: it names a folder, SLURM jobs and files, so use letters, digits "
                         "and . _ - + @ = (starting with a letter or digit, at most 100 characters)")
    executor = check_executor(loaded)
    backend = backend or backends.executors()[executor.get("name", "MMARExecutor")]
    placement = backends.get(backend).place(PlacementRequest(loaded, executor, workers, slurm or {}))
    worker_list = placement.workers

    name, params = controller(loaded, algorithm)
    custom = custom_controller(loaded, algorithm)
    for key, value in set_values.items():
        if key not in RUN_KEYS and key not in loaded.variables:
            params[ALIASES.get(key, key)] = value
    seed = run_seed(loaded, set_values)
    retries = set_values.get("automl_max_retries", loaded.automl_doc.get("automl_max_retries", 1))
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise UsageError(f"automl_max_retries must be an integer >= 0, got {retries!r}")
    job_timeout = set_values.get("automl_job_timeout", loaded.automl_doc.get("automl_job_timeout", "auto"))
    if job_timeout != "auto" and (isinstance(job_timeout, bool) or not isinstance(job_timeout, (int, float))
                                  or not job_timeout >= 0):
        raise UsageError(f"automl_job_timeout must be a number of seconds >= 0 (0: never) or \"auto\", "
                         f"got {job_timeout!r}")
    seconds, hard = time_budget(loaded, budget, budget_hard, option=budget_option)
    start = set_values.get("automl_start_from_config", loaded.automl_doc.get("automl_start_from_config", True))
    if not isinstance(start, bool):
        raise UsageError(f"automl_start_from_config must be true or false, got {start!r}")
    passes_given = "automl_hyperband_iterations" in params
    notes = fill_budget(name, params, loaded.max_epochs, seconds) if fill and custom is None else []
    if custom is None:
        resolve_params(get_algorithm(name), params)  # fail now, not after the run folder exists
    handlers = load_handlers(loaded.automl_doc, loaded.mmar.root, loaded.automl_path)
    layout = job_layout(handlers)

    exec_args = executor.get("args") or {}
    if "train_command" in exec_args:
        try:
            command = parse_train_command(exec_args["train_command"])
        except (UsageError, ValueError) as exc:
            raise ConfigError(loaded.automl_path, ["executor", "args", "train_command"], str(exc)) from None
    else:
        command = list(DEFAULT_TRAIN_COMMAND) + (["--trainer", exec_args["trainer"]] if exec_args.get("trainer") else [])
    # warnings only once every check has passed, so an error stays one line
    for warning in placement.warnings:
        warn(warning)

    settings = RunSettings(
        mmar=loaded.mmar, run_id=run_id, workers=worker_list, have_gpus=placement.have_gpus, space=loaded.space,
        train_config=loaded.train_doc, metric=loaded.metric, direction=loaded.direction,
        max_epochs=loaded.max_epochs, algorithm=name, algorithm_params=params, seed=seed,
        traceout=traceout or "file", train_command=command, max_retries=retries, job_timeout=job_timeout,
        remove_search_augs=bool(exec_args.get("remove_search_augs", True)),
        grace_seconds=float(exec_args.get("grace_seconds", 30.0)),
        config_files={"train": str(loaded.train_path), "automl": str(loaded.automl_path)},
        backend=backend, backend_options=placement.options, runs_root=runs_dir(loaded.mmar, layout),
        job_train_config=layout.job_train_config, copy_whole_mmar=layout.copy_whole_mmar, handlers=handlers,
        variables=loaded.variables, time_budget=seconds, time_budget_hard=hard, notes=notes,
        open_ended=not passes_given and "automl_hyperband_iterations" in params,
        start_from=loaded.space.written_values(loaded.resolved_train) if start and custom is None else None)
    return settings, worker_list


def run_seed(loaded: Loaded, set_values: dict[str, Any]) -> int:
    """The run's seed: --set seed=N, else config_automl.json's, else 0; an integer >= 0
    (the generators take no negative seed)."""
    seed = set_values.get("seed", loaded.automl_doc.get("seed", 0))
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise UsageError(f"seed must be an integer >= 0, got {seed!r}")
    return seed


def describe_components(loaded: Loaded) -> list[str]:
    """`automl validate`'s account of config_automl.json's components, each built (so a
    broken one fails here, as it would at the start of a run)."""
    name, params = controller(loaded, None)
    cls = custom_controller(loaded, None)
    budget, hard = time_budget(loaded, None, None)
    if cls is None:
        clara = loaded.automl_doc.get("controller", {}).get("name")
        alias = f" (Clara's {clara})" if clara in CLARA_CONTROLLERS else ""
        filled = fill_budget(name, params, loaded.max_epochs, budget)
        resolved = resolve_params(get_algorithm(name), params)
        design = initial_design_line(name, resolved, len(loaded.space))
        lines = [f"algorithm {name}{alias} {json.dumps(resolved)}", *filled, *([design] if design else [])]
    else:
        build(cls, name, params, loaded.automl_path, ["controller"])
        ctrl = loaded.automl_doc.get("controller", {})
        api = ", written against Clara's API" if is_clara_controller(cls) else ""
        ignored = f" (name {ctrl['name']} ignored: path given)" if "name" in ctrl else ""
        lines = [f"controller {name} (your own{api}, from {sys.modules[cls.__module__].__file__}) "
                 f"args {json.dumps(params)}{ignored}"]
    if budget is not None:
        lines.append(f"time budget {format_duration(budget)}: no new job after it; running jobs "
                     + ("are stopped then (with their checkpoints)" if hard else "finish"))
    executor = check_executor(loaded)
    lines.append(f"executor {executor.get('name', 'MMARExecutor')}: each job's output goes to <job>/train.log")
    handlers = load_handlers(loaded.automl_doc, loaded.mmar.root, loaded.automl_path)
    layout = job_layout(handlers)
    lines.append("handlers: " + (", ".join(label + (" (Clara's API)" if isinstance(h, ClaraHandlerAdapter) else "")
                                           for label, h in handlers) or "none"))
    lines.append(f"runs go to {runs_dir(loaded.mmar, layout)}; jobs get config/{layout.job_train_config}, "
                 + ("a copy of the whole MMAR" if layout.copy_whole_mmar else "copies of config/ and commands/, "
                    "links to the rest"))
    return lines
