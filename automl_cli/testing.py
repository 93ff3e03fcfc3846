"""The algorithm conformance suite, for checking your own algorithm or controller.

Every algorithm of ours (each preset and each SCHEDULER+PROPOSER pair) passes these checks
in tests/test_conformance.py; yours can be held to the same ones. On a small search space
with a configuration that always crashes, in simulation (seconds, no training), with three
workers:

- it stops at its budget: it says it is done, every job it started ended, within its plan;
- it never proposes outside the space, and a crashing configuration stops nothing else;
- the same seed makes the same search, and another seed another;
- replaying its journal into a fresh instance asks for the same trials with the same
  parameters and epochs (this is what `automl run --resume` needs);
- `check_rebuild`, for an algorithm that can adopt trials (`can_adopt`): a run whose
  replay broke is rebuilt (`--resume --rebuild`) and then replays exactly.

Check an Algorithm subclass (automl_cli.algorithms.base) by handing a factory that makes
a fresh instance with a small budget:

    from automl_cli.testing import check_algorithm

    def make(space, max_epochs, seed):
        return MyAlgorithm(space, max_epochs=max_epochs, seed=seed, params={"budget": 10})

    check_algorithm(make)        # raises AssertionError saying what failed

A Clara-style controller (config_automl.json `controller.path`) is checked the same way:

    from automl_cli.testing import check_algorithm, controller_factory
    check_algorithm(controller_factory(MyController, max_rounds=10))

and a preset or pair by name: `check_algorithm(named("asha+kde"))` (small budgets for
ours are in `BUDGETS`; give `params` for anything else). Use it from pytest or plainly.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable

from .algorithms.base import Algorithm
from .backends.simulated import SimulatedBackend
from .engine import Engine, EngineSettings
from .simulate import METRIC
from .space import SearchSpace, parse_search_space
from .store import Journal
from .workers import Worker


def _require(holds: bool, failure: str) -> None:
    """One check of the suite: an AssertionError saying what failed (a plain `assert` would
    vanish under `python -O`, and the suite with it)."""
    if not holds:
        raise AssertionError(failure)

Factory = Callable[[SearchSpace, int, int], Algorithm]  # (space, max_epochs, seed) -> a fresh algorithm

CONFIG = {"model": {"name": "M", "args": {"lr": 0.1, "act": "relu", "depth": 2, "drop": 0.0}, "search": [
    {"args": "lr", "type": "float", "targets": [1e-4, 1e-1], "log": True},
    {"args": "act", "type": "enum", "targets": [["relu"], ["tanh"], ["gelu"]]},
    {"args": "depth", "type": "int", "targets": [1, 5]},
    {"args": "drop", "type": "float", "targets": [0.0, 0.5]}]}}
SPACE = parse_search_space(CONFIG, Path("conformance.json"))
MAX_EPOCHS = 9
WORKERS = 3
HYPERBAND = {"automl_R": 9, "automl_nu": 3, "epoch_multiplier": 1}
# small budgets that still exercise each algorithm's model (bohb, dehb: a second pass over the brackets)
BUDGETS: dict[str, dict[str, Any]] = {
    "random": {"automl_max_recommendations": 10},
    "bayesian": {"automl_max_recommendations": 10},
    "bfbo": {"automl_max_recommendations": 10},
    "hyperband": HYPERBAND,
    "hyperband_es": {**HYPERBAND, "automl_min_early_stop_epochs": 2, "automl_early_stop_threshold": 5.0},
    "bohb": {**HYPERBAND, "automl_hyperband_iterations": 3, "automl_min_points_in_model": 3},
    "dehb": {**HYPERBAND, "automl_hyperband_iterations": 3},
    "asha": {"automl_max_trials": 12, "automl_max_concurrent": 3, "automl_min_epochs": 1},
    "pbt": {"automl_population_size": 4, "automl_eval_interval": 3},
    "grid": {"grid_points": 2},
    "reinforcement": {"max_rounds": 12},
}


def budget(name: str) -> dict[str, Any]:
    """A small budget for one of our presets or pairs: the preset's above, or for a pair its
    scheduler's (the preset that uses it) with the proposer's model given enough results."""
    from .algorithms import catalogue

    entry = catalogue.entry(name)
    if entry.preset:
        return dict(BUDGETS[entry.name])
    scheduler_preset = {"full": "random", "hyperband": "hyperband", "hyperband_es": "hyperband_es",
                        "asha": "asha", "pbt": "pbt"}[entry.scheduler]
    params = dict(BUDGETS[scheduler_preset])
    if entry.proposer == "kde":  # a second pass over the brackets (more trials for asha), where the model leads
        params["automl_min_points_in_model"] = 3
        if entry.scheduler.startswith("hyperband"):
            params["automl_hyperband_iterations"] = 3
        if entry.scheduler == "asha":
            params["automl_max_trials"] = 20
    if entry.proposer == "gp" and entry.scheduler == "asha":
        params["automl_max_trials"] = 10  # as bayesian's budget: the GP leads after 6 (a fit per proposal is dear)
    return params


def objective(config: dict, epoch: int, state) -> tuple[float, float]:
    """The conformance problem: a smooth loss that falls with epochs, and one configuration
    (gelu at depth 5) that always crashes."""
    m = config["model"]["args"]
    if m["act"] == "gelu" and m["depth"] == 5:
        raise RuntimeError("this configuration always crashes")
    loss = (math.log10(m["lr"]) + 2.5) ** 2 + 0.3 * abs(m["depth"] - 3) + m["drop"] + {"relu": 0.5, "tanh": 0.0,
                                                                                        "gelu": 1.0}[m["act"]]
    return loss + 2.0 / epoch, 1.0


def named(name: str, params: dict[str, Any] | None = None, start_from: dict[str, Any] | None = None) -> Factory:
    """A factory for one of our presets or pairs (by default with its small budget);
    `start_from`: the config's own values to propose first (SearchSpace.written_values)."""
    from .algorithms import get_algorithm

    given = budget(name) if params is None else params
    return lambda space, max_epochs, seed: get_algorithm(name)(space, max_epochs=max_epochs, seed=seed,
                                                               params=given, start_from=start_from)


def controller_factory(controller_class: type, **args: Any) -> Factory:
    """A factory for a Clara-style controller class built with `args` (as config_automl.json's
    controller args), behind the Algorithm contract as a run puts it."""
    from .clara.controller import ControllerAlgorithm

    path = f"{controller_class.__module__}.{controller_class.__qualname__}"
    return lambda space, max_epochs, seed: ControllerAlgorithm(space, controller=controller_class(**args), path=path,
                                                               max_epochs=max_epochs, seed=seed, params=args)


def _backend() -> SimulatedBackend:
    return SimulatedBackend(objective, METRIC, lambda values: SPACE.apply(CONFIG, values), None)


def _settings(label: str) -> EngineSettings:
    return EngineSettings("conformance", label, SPACE, [Worker(i + 1, ()) for i in range(WORKERS)], METRIC,
                          "minimize", MAX_EPOCHS, score="last")


def run(make: Factory, seed: int = 0, journal: Journal | None = None, label: str = "algorithm"):
    """One simulated search with a fresh algorithm: (the algorithm, the engine settings, the journal)."""
    algo = make(SPACE, MAX_EPOCHS, seed)
    settings = _settings(label)
    journal = journal or Journal(Path(":memory:"))
    Engine(settings, algo, _backend(), journal).run()
    return algo, settings, journal


def _key(jobs: list[dict]) -> list[tuple]:
    return [(j["trial_id"], json.dumps(j["params"], sort_keys=True), j["start_epoch"], j["stop_epoch"]) for j in jobs]


def check_algorithm(make: Factory, label: str = "algorithm", journal_path: Path | None = None) -> None:
    """Every check of the suite on the algorithm `make` builds; an AssertionError says which failed.
    `journal_path`: where the first run's journal goes (default: in memory)."""
    journal = Journal(journal_path) if journal_path is not None else None
    algo, settings, journal = run(make, seed=1, journal=journal, label=label)
    try:
        events = list(journal.events())
    finally:
        journal.close()
    started = [e.data for e in events if e.kind == "job_started"]
    finished = [e.data for e in events if e.kind == "job_finished"]

    _require(algo.is_done(), f"{label}: the engine ran out of jobs but the algorithm does not say it is done")
    # a job retried after a crash starts (and ends) twice
    _require(len(finished) == len(started) > 0, f"{label}: {len(started)} jobs started, {len(finished)} ended")
    planned = algo.planned_jobs()
    ran = len({job["job_id"] for job in started})
    _require(planned is None or ran <= planned, f"{label}: ran {ran} jobs, more than the {planned} it planned")

    outside = [job["params"] for job in started if not SPACE.contains(job["params"])]
    _require(not outside, f"{label}: proposed outside the space: {outside[:1]}")
    _require("completed" in {job["status"] for job in finished}, f"{label}: no job completed")

    again = [e.data for e in run(make, seed=1, label=label)[2].events() if e.kind == "job_started"]
    other = [e.data for e in run(make, seed=2, label=label)[2].events() if e.kind == "job_started"]
    _require(_key(again) == _key(started), f"{label}: the same seed made another search")
    _require(_key(other) != _key(started), f"{label}: another seed made the same search")

    # replaying the journal into a fresh algorithm asks for the same trials (resume raises
    # ResumeMismatch otherwise) with the same parameters and epochs
    fresh = make(SPACE, MAX_EPOCHS, 1)
    replay = Engine(settings, fresh, SimulatedBackend(objective, METRIC, dict, None), Journal(Path(":memory:")))
    replay.resume(events)
    for job in started:
        request = replay.requests[job["job_id"]]
        got = (request.trial_id, json.dumps(request.params, sort_keys=True), request.start_epoch, request.stop_epoch)
        _require(got == _key([job])[0],
                 f"{label}: replaying the journal asked for {got}, the run had {_key([job])[0]}")
    _require(fresh.is_done(), f"{label}: after replaying a finished run the algorithm is not done")


def check_rebuild(make: Factory, label: str = "algorithm") -> dict[int, dict[str, Any]]:
    """--resume --rebuild: the journal up to a crash does not replay (as when a library changed
    the draws: here trial 1's parameters are not what the algorithm proposes); a fresh
    algorithm adopts its trials, finishes the search within its budget keeping every
    finished job, and the rebuilt journal replays exactly from then on. For an algorithm
    with `can_adopt`. Returns the rebuilt run's trials (trial id -> parameters)."""
    import numpy as np

    from .engine import ResumeMismatch
    from .store import Event

    _, settings, journal = run(make, seed=1, label=label)
    events = list(journal.events())
    cut = [i for i, e in enumerate(events) if e.kind == "job_finished"][3]
    prefix = [Event(e.seq, e.time, e.kind, json.loads(json.dumps(e.data))) for e in events[:cut + 1]]
    first = next(e.data for e in prefix if e.kind == "job_started")
    other = next(p for p in (SPACE.sample(np.random.default_rng(s)) for s in range(50)) if p != first["params"])
    for event in prefix:
        if event.kind == "job_started" and event.data["trial_id"] == first["trial_id"]:
            event.data["params"] = other
    fresh = lambda: make(SPACE, MAX_EPOCHS, 1)  # noqa: E731
    try:
        Engine(settings, fresh(), _backend(), Journal(Path(":memory:"))).resume(prefix)
    except ResumeMismatch as exc:
        _require("does not replay" in str(exc), f"{label}: {exc}")
    else:
        raise AssertionError(f"{label}: a journal whose trial 1 was changed replayed without complaint")

    algo, later = fresh(), Journal(Path(":memory:"))
    engine = Engine(settings, algo, _backend(), later)
    engine.resume(prefix, rebuild=True)
    engine.run()
    added = list(later.events())
    _require(algo.is_done() and added[0].kind == "run_rebuilt", f"{label}: the rebuilt run did not finish")
    whole = prefix + added
    trials = {e.data["trial_id"]: e.data["params"] for e in whole if e.kind == "job_started"}
    _require(trials[first["trial_id"]] == other, f"{label}: the adopted trial's parameters changed")
    planned = fresh().planned_jobs()
    _require(planned is None or len(trials) <= planned, f"{label}: the rebuilt run went past its budget")
    finished = {e.data["job_id"] for e in prefix if e.kind == "job_finished"}
    _require(finished <= {e.data["job_id"] for e in whole if e.kind == "job_finished"},
             f"{label}: the rebuilt run lost finished jobs")

    replay = Engine(settings, fresh(), _backend(), Journal(Path(":memory:")))
    replay.resume(whole)  # adopts up to run_rebuilt, replays after it, and agrees with what ran
    for event in (e for e in added if e.kind == "job_started"):
        _require(replay.requests[event.data["job_id"]].params == event.data["params"],
                 f"{label}: the rebuilt journal does not replay")
    _require(replay.algorithm.is_done(), f"{label}: after replaying the rebuilt run the algorithm is not done")
    return trials
