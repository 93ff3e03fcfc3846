"""The algorithm contract on plain functions: no processes, no files."""
import math
from pathlib import Path

import numpy as np
import pytest

from automl_cli.algorithms import REGISTRY, get_algorithm, load_all
from automl_cli.algorithms.base import Outcome
from automl_cli.errors import UsageError
from automl_cli.space import parse_search_space

load_all()

BRANIN_SPACE = parse_search_space({
    "x1": 0, "x2": 0,
    "search": [{"args": "x1", "type": "float", "targets": [-5, 10]},
               {"args": "x2", "type": "float", "targets": [0, 15]}]}, Path("t.json"))

MIXED_SPACE = parse_search_space({
    "model": {"name": "M", "args": {"lr": 0.1, "act": "relu", "depth": 2}, "search": [
        {"args": "lr", "type": "float", "targets": [1e-4, 1e-1], "log": True},
        {"args": "act", "type": "enum", "targets": [["relu"], ["tanh"], ["gelu"]]},
        {"args": "depth", "type": "int", "targets": [1, 5]}]}}, Path("t.json"))


def branin(p):
    x1, x2 = p["x1"], p["x2"]
    return ((x2 - 5.1 / (4 * math.pi ** 2) * x1 ** 2 + 5 / math.pi * x1 - 6) ** 2
            + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10)


def mixed(p):
    return (math.log10(p["M.lr"]) + 2.5) ** 2 + {"relu": 0.5, "tanh": 0.0, "gelu": 1.0}[p["M.act"][0]] \
        + 0.3 * abs(p["M.depth"] - 3)


def drive(name, space, objective, seed, budget=20, workers=1, fail=lambda p: False):
    """Run an algorithm to its end against an objective; returns the proposals in order and the best loss."""
    algo = get_algorithm(name)(space, max_epochs=1, seed=seed, params={"automl_max_recommendations": budget})
    proposals, best, job = [], math.inf, 0
    while not algo.is_done():
        batch = algo.suggest(workers)
        assert batch, "an unfinished algorithm with free workers and nothing running must propose"
        for request in batch:
            job += 1
            assert space.contains(request.params)
            proposals.append(request.params)
            if fail(request.params):
                algo.on_finished(Outcome(request.trial_id, job, "failed", None, 0, "crash"))
                continue
            loss = objective(request.params)
            best = min(best, loss)
            algo.on_finished(Outcome(request.trial_id, job, "completed", loss, 1))
    return proposals, best


def test_registry_lists_random_and_bayesian_and_rejects_unknown_names():
    assert {"random", "bayesian"} <= set(REGISTRY)
    with pytest.raises(UsageError, match=r"unknown algorithm 'hyperbandd' \(known: .*bayesian.*random"):
        get_algorithm("hyperbandd")


def test_unknown_or_bad_parameters_are_usage_errors():
    with pytest.raises(UsageError, match="has no parameter 'automl_R'"):
        get_algorithm("random")(BRANIN_SPACE, max_epochs=1, params={"automl_R": 3})
    with pytest.raises(UsageError, match="expected int"):
        get_algorithm("bayesian")(BRANIN_SPACE, max_epochs=1, params={"automl_max_recommendations": 2.5})


@pytest.mark.parametrize("name", ["random", "bayesian", "bfbo"])
def test_seeded_runs_repeat_exactly_and_stop_at_their_budget(name):
    first, _ = drive(name, MIXED_SPACE, mixed, seed=3, budget=12, workers=2)
    again, _ = drive(name, MIXED_SPACE, mixed, seed=3, budget=12, workers=2)
    other, _ = drive(name, MIXED_SPACE, mixed, seed=4, budget=12, workers=2)
    assert first == again
    assert first != other
    assert len(first) == 12


@pytest.mark.parametrize("name", ["random", "bayesian", "bfbo"])
def test_failed_jobs_count_against_the_budget_and_the_search_goes_on(name):
    proposals, best = drive(name, MIXED_SPACE, mixed, seed=0, budget=12,
                            fail=lambda p: p["M.act"] == ["gelu"])
    assert len(proposals) == 12 and math.isfinite(best)


def test_gp_beats_random_on_branin_over_several_seeds():
    seeds = range(6)
    bayes = [drive("bayesian", BRANIN_SPACE, branin, s)[1] for s in seeds]
    rand = [drive("random", BRANIN_SPACE, branin, s)[1] for s in seeds]
    # global minimum 0.398; 20 evaluations
    assert np.median(bayes) < np.median(rand)
    assert sum(b < r for b, r in zip(bayes, rand)) >= 5
    assert np.median(bayes) < 0.8


def test_gp_handles_log_ranges_enums_and_ints():
    seeds = range(4)
    bayes = [drive("bayesian", MIXED_SPACE, mixed, s, budget=20)[1] for s in seeds]
    rand = [drive("random", MIXED_SPACE, mixed, s, budget=20)[1] for s in seeds]
    assert np.median(bayes) <= np.median(rand)
    assert np.median(bayes) < 0.25


def test_bayesian_with_parallel_workers_never_proposes_a_pending_point_twice():
    proposals, _ = drive("bayesian", BRANIN_SPACE, branin, seed=0, budget=16, workers=4)
    keys = [tuple(sorted(p.items())) for p in proposals]
    assert len(set(keys)) == len(keys)
