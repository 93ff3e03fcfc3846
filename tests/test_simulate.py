"""The simulated backend and the public simulate() API: the real engine on a virtual clock."""
import math

import pytest

from automl_cli.algorithms import REGISTRY, load_all
from automl_cli.simulate import simulate

load_all()

SEARCH = [{"args": ["x1"], "type": "float", "targets": [-5, 10]},
          {"args": ["x2"], "type": "float", "targets": [0, 15]},
          {"args": ["opt", "act"], "type": "enum", "targets": [["adam", "relu"], ["sgd", "tanh"]]}]


def branin(config):
    x1, x2 = config["x1"], config["x2"]
    return ((x2 - 5.1 / (4 * math.pi ** 2) * x1 ** 2 + 5 / math.pi * x1 - 6) ** 2
            + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10)


def curve(config, epoch, state):
    """A learning curve that approaches branin from above; epochs take 1-10 s by x1."""
    state["calls"] = state.get("calls", 0) + 1
    extra = 0.0 if config["opt"] == "adam" else 5.0
    return branin(config) + extra + 50.0 / epoch, 1.0 + (config["x1"] + 5) * 0.6


def overlaps(jobs) -> bool:
    spans = sorted((j["start_time"], j["end_time"]) for j in jobs)
    return any(b_start < a_end for (a_start, a_end), (b_start, b_end) in zip(spans, spans[1:]))


@pytest.mark.parametrize("algorithm", sorted(REGISTRY))
def test_every_algorithm_runs_with_one_and_eight_workers(algorithm):
    params = {"automl_max_recommendations": 16} if "automl_max_recommendations" in REGISTRY[algorithm].parameters else {}
    one = simulate(algorithm, SEARCH, curve, max_epochs=4, n_workers=1, seed=0, params=params)
    eight = simulate(algorithm, SEARCH, curve, max_epochs=4, n_workers=8, seed=0, params=params)
    for result in (one, eight):
        assert result.jobs and all(j["status"] in ("completed", "stopped") for j in result.jobs)
        config, metric = result.best
        assert set(config) == {"x1", "x2", "opt", "act"}
        observed = [m for j in result.jobs for m in j["metrics"]]
        assert metric in observed
        if algorithm in ("random", "bayesian"):
            assert metric == min(observed)
        for j in result.jobs:
            ran = len(j["metrics"])
            assert ran == j["stop_epoch"] - j["start_epoch"] or (j["status"] == "stopped" and ran < j["stop_epoch"])
    assert not overlaps(one.jobs)
    assert overlaps(eight.jobs)
    assert eight.elapsed < one.elapsed


def test_enum_values_reach_the_objective_as_config_keys_and_state_is_per_trial():
    seen = []

    def objective(config, epoch, state):
        seen.append((config["opt"], config["act"]))
        state.setdefault("epochs", []).append(epoch)
        assert state["epochs"] == list(range(1, epoch + 1))
        return 1.0, 1.0

    simulate("random", SEARCH, objective, max_epochs=3, n_workers=2, params={"automl_max_recommendations": 6})
    assert set(seen) <= {("adam", "relu"), ("sgd", "tanh")}


def test_time_budget_cuts_running_jobs_at_the_budget():
    result = simulate("random", SEARCH, lambda c, e, s: (branin(c), 10.0), max_epochs=5, n_workers=3,
                      time_budget=125.0, params={"automl_max_recommendations": 100})
    assert result.elapsed == 125.0
    assert max(j["end_time"] for j in result.jobs) == 125.0
    cut = [j for j in result.jobs if j["status"] == "stopped"]
    assert len(cut) == 3 and all(len(j["metrics"]) == 2 for j in cut)  # 2 epochs done at 100 s, 3rd cut
    assert sum(j["status"] == "completed" for j in result.jobs) == 6  # 2 rounds of 3 workers x 50 s


def test_jobs_that_end_together_at_the_budget_all_complete():
    """Four workers, jobs of 50 s, a budget of 100 s: all of the second round ends on the
    budget. Before: the first job's last epoch was delivered alone, the clock stood at the
    budget, and the engine cut the other three in their last epoch (so a benchmark at an
    eighth of the time lost 7 of 8 trainings where one worker lost none)."""
    result = simulate("random", SEARCH, lambda c, e, s: (branin(c), 10.0), max_epochs=5, n_workers=4,
                      time_budget=100.0, params={"automl_max_recommendations": 100})
    assert [j["status"] for j in result.jobs] == ["completed"] * 8
    assert all(len(j["metrics"]) == 5 and j["end_time"] == (50.0 if j["job_id"] <= 4 else 100.0)
               for j in result.jobs)


def test_maximize_and_failures():
    def objective(config, epoch, state):
        if config["opt"] == "sgd":
            raise RuntimeError("diverged")
        return -branin(config), 1.0

    result = simulate("bayesian", SEARCH, objective, max_epochs=2, n_workers=2, direction="maximize",
                      params={"automl_max_recommendations": 12})
    failed = [j for j in result.jobs if j["status"] == "failed"]
    assert failed and all(j["config"]["opt"] == "sgd" for j in failed)
    assert result.best[1] == max(max(j["metrics"]) for j in result.jobs if j["status"] == "completed")
    assert result.best[0]["opt"] == "adam"
    trace = result.incumbent_trace()
    assert [t[1] for t in trace] == sorted(t[1] for t in trace)  # improving


def test_same_seed_same_search():
    a = simulate("bayesian", SEARCH, curve, max_epochs=2, n_workers=4, seed=5, params={"automl_max_recommendations": 12})
    b = simulate("bayesian", SEARCH, curve, max_epochs=2, n_workers=4, seed=5, params={"automl_max_recommendations": 12})
    assert [j["config"] for j in a.jobs] == [j["config"] for j in b.jobs]
    assert [(j["start_time"], j["end_time"]) for j in a.jobs] == [(j["start_time"], j["end_time"]) for j in b.jobs]
