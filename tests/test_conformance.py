"""What every registered algorithm must do, checked the same way for each: the same seed
makes the same search; replaying its journal makes the same decisions as the live run;
it never proposes outside the space; failed jobs don't stop it; it stops at its budget.

A new algorithm gets these checks by registering itself and adding a small budget below."""
import json
import math
from pathlib import Path

import pytest

from automl_cli.algorithms import REGISTRY, get_algorithm, load_all
from automl_cli.backends.simulated import SimulatedBackend
from automl_cli.engine import Engine, EngineSettings
from automl_cli.simulate import METRIC, run_simulation
from automl_cli.space import parse_search_space
from automl_cli.store import Journal
from automl_cli.workers import Worker

load_all()

CONFIG = {"model": {"name": "M", "args": {"lr": 0.1, "act": "relu", "depth": 2, "drop": 0.0}, "search": [
    {"args": "lr", "type": "float", "targets": [1e-4, 1e-1], "log": True},
    {"args": "act", "type": "enum", "targets": [["relu"], ["tanh"], ["gelu"]]},
    {"args": "depth", "type": "int", "targets": [1, 5]},
    {"args": "drop", "type": "float", "targets": [0.0, 0.5]}]}}
SPACE = parse_search_space(CONFIG, Path("conformance.json"))
MAX_EPOCHS = 9
HYPERBAND = {"automl_R": 9, "automl_nu": 3, "epoch_multiplier": 1}
# small budgets that still exercise each algorithm's model (bohb, dehb: a second pass over the brackets)
BUDGETS = {
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


def objective(config, epoch, state):
    m = config["model"]["args"]
    if m["act"] == "gelu" and m["depth"] == 5:
        raise RuntimeError("this configuration always crashes")
    loss = (math.log10(m["lr"]) + 2.5) ** 2 + 0.3 * abs(m["depth"] - 3) + m["drop"] + {"relu": 0.5, "tanh": 0.0,
                                                                                        "gelu": 1.0}[m["act"]]
    return loss + 2.0 / epoch, 1.0


def run(name, seed=0, journal=None):
    algo = get_algorithm(name)(SPACE, max_epochs=MAX_EPOCHS, seed=seed, params=BUDGETS[name])
    backend = SimulatedBackend(objective, METRIC, lambda values: SPACE.apply(CONFIG, values), None)
    settings = EngineSettings("conformance", name, SPACE, [Worker(i + 1, ()) for i in range(3)], METRIC,
                              "minimize", MAX_EPOCHS, score="last")
    journal = journal or Journal(Path(":memory:"))
    Engine(settings, algo, backend, journal).run()
    return algo, settings, journal


def test_every_registered_algorithm_has_a_budget_here():
    assert set(REGISTRY) <= set(BUDGETS)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_conformance(name, tmp_path):
    journal = Journal(tmp_path / "journal.db")
    algo, settings, journal = run(name, seed=1, journal=journal)
    events = list(journal.events())
    started = [e.data for e in events if e.kind == "job_started"]
    finished = [e.data for e in events if e.kind == "job_finished"]

    # stops at its budget: it says it is done, everything it started ended, within its plan
    assert algo.is_done()
    assert len(finished) == len(started) > 0  # a job retried after a crash starts (and ends) twice
    planned = algo.planned_jobs()
    assert planned is None or len({job["job_id"] for job in started}) <= planned

    # never outside the space, and survives the configurations that crash
    assert all(SPACE.contains(job["params"]) for job in started)
    statuses = {job["status"] for job in finished}
    assert "completed" in statuses

    # the same seed makes the same search; another seed another
    again = [e.data for e in run(name, seed=1)[2].events() if e.kind == "job_started"]
    other = [e.data for e in run(name, seed=2)[2].events() if e.kind == "job_started"]
    key = lambda jobs: [(j["trial_id"], json.dumps(j["params"], sort_keys=True), j["start_epoch"], j["stop_epoch"])
                        for j in jobs]
    assert key(again) == key(started)
    assert key(other) != key(started)

    # replaying the journal into a fresh algorithm asks for the same trials (resume raises
    # ResumeMismatch otherwise) with the same parameters and epochs
    fresh = get_algorithm(name)(SPACE, max_epochs=MAX_EPOCHS, seed=1, params=BUDGETS[name])
    replay = Engine(settings, fresh, SimulatedBackend(objective, METRIC, dict, None), Journal(Path(":memory:")))
    replay.resume(events)
    for job in started:
        request = replay.requests[job["job_id"]]
        assert (request.trial_id, json.dumps(request.params, sort_keys=True), request.start_epoch,
                request.stop_epoch) == key([job])[0]
    assert fresh.is_done()
    journal.close()


def test_a_crashing_configuration_fails_its_job_and_nothing_else():
    result = run_simulation(SPACE, objective, lambda values: SPACE.apply(CONFIG, values), algorithm="random",
                            max_epochs=MAX_EPOCHS, n_workers=2, seed=0, params={"automl_max_recommendations": 40})
    failed = [j for j in result.jobs if j["status"] == "failed"]
    assert failed and all(j["params"]["M.act"] == ["gelu"] and j["params"]["M.depth"] == 5 for j in failed)


ADOPTING = sorted(name for name, cls in REGISTRY.items() if cls.can_adopt)


def test_the_full_training_algorithms_can_be_rebuilt():
    assert ADOPTING == ["bayesian", "bfbo", "grid", "random", "reinforcement"]


@pytest.mark.parametrize("name", ADOPTING)
def test_a_run_whose_replay_broke_is_rebuilt_and_then_replays(name):
    """--resume --rebuild: the journal up to a crash does not replay (a library changed the
    draws: here trial 1's parameters are not what the algorithm proposes); a fresh algorithm
    adopts its trials, finishes the search within its budget keeping every finished job, and
    the rebuilt journal replays exactly from then on."""
    from automl_cli.engine import ResumeMismatch
    from automl_cli.store import Event

    _, settings, journal = run(name, seed=1)
    events = list(journal.events())
    cut = [i for i, e in enumerate(events) if e.kind == "job_finished"][3]
    prefix = [Event(e.seq, e.time, e.kind, json.loads(json.dumps(e.data))) for e in events[:cut + 1]]
    first = next(e.data for e in prefix if e.kind == "job_started")
    other = next(p for p in (SPACE.sample(__import__("numpy").random.default_rng(s)) for s in range(50))
                 if p != first["params"])
    for event in prefix:
        if event.kind == "job_started" and event.data["trial_id"] == first["trial_id"]:
            event.data["params"] = other
    fresh = lambda: get_algorithm(name)(SPACE, max_epochs=MAX_EPOCHS, seed=1, params=BUDGETS[name])  # noqa: E731
    backend = lambda: SimulatedBackend(objective, METRIC, lambda values: SPACE.apply(CONFIG, values), None)  # noqa: E731
    with pytest.raises(ResumeMismatch, match="does not replay"):
        Engine(settings, fresh(), backend(), Journal(Path(":memory:"))).resume(prefix)

    algo, later = fresh(), Journal(Path(":memory:"))
    engine = Engine(settings, algo, backend(), later)
    engine.resume(prefix, rebuild=True)
    engine.run()
    added = list(later.events())
    assert algo.is_done() and added[0].kind == "run_rebuilt"
    whole = prefix + added
    trials = {e.data["trial_id"]: e.data["params"] for e in whole if e.kind == "job_started"}
    assert trials[first["trial_id"]] == other  # the job ran as the journal says, and stays
    assert len(trials) <= fresh().planned_jobs()
    if name == "grid":  # no grid point twice
        assert len({json.dumps(p, sort_keys=True) for p in trials.values()}) == len(trials)
    finished = {e.data["job_id"] for e in prefix if e.kind == "job_finished"}
    assert finished <= {e.data["job_id"] for e in whole if e.kind == "job_finished"}

    replay = Engine(settings, fresh(), backend(), Journal(Path(":memory:")))
    replay.resume(whole)  # adopts up to run_rebuilt, replays after it, and agrees with what ran
    for event in (e for e in added if e.kind == "job_started"):
        assert replay.requests[event.data["job_id"]].params == event.data["params"]
    assert replay.algorithm.is_done()


def test_an_algorithm_that_cannot_adopt_refuses_a_rebuild():
    from automl_cli.errors import UsageError

    _, settings, journal = run("hyperband", seed=1)
    fresh = get_algorithm("hyperband")(SPACE, max_epochs=MAX_EPOCHS, seed=1, params=BUDGETS["hyperband"])
    engine = Engine(settings, fresh, SimulatedBackend(objective, METRIC, dict, None), Journal(Path(":memory:")))
    with pytest.raises(UsageError, match="hyperband cannot be rebuilt"):
        engine.resume(list(journal.events()), rebuild=True)
