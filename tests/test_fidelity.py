"""Low fidelities that mislead (schedulers/fidelity.py): the rank agreement of each rung with
the rungs above, and what hyperband, hyperband_es and asha do when a rung ranks backwards."""
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from automl_cli.algorithms.base import CONTINUE, get_algorithm
from automl_cli.algorithms.schedulers.fidelity import FidelityTrust, spearman
from automl_cli.space import parse_search_space
from automl_cli.simulate import simulate

SPACE = parse_search_space({"x": 0.5, "search": [{"args": ["x"], "type": "float", "targets": [0.0, 1.0]}]},
                           Path("<test>"))
HB = {"automl_R": 27, "automl_nu": 3, "epoch_multiplier": 1, "automl_hyperband_iterations": 3}


def curves(trust: FidelityTrust, n: int, backwards: tuple[int, ...] = (), reach: tuple[int, ...] = (1, 3, 9, 27)):
    """n trials with final losses 0..n-1; at the epochs in `backwards` they rank in reverse."""
    for t in range(n):
        for epoch in reach:
            trust.record(t, epoch, float(n - t if epoch in backwards else t) + 0.01 * epoch)


@pytest.mark.parametrize("seed", range(5))
def test_spearman_matches_scipy_with_ties(seed):
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, 5, 12).astype(float), rng.normal(size=12)
    assert spearman(list(a), list(b)) == pytest.approx(spearmanr(a, b).statistic)
    assert spearman([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]) == 0.0


def test_rungs_are_trusted_until_they_have_enough_pairs_then_as_they_agree():
    trust = FidelityTrust([1, 3, 9, 27])
    curves(trust, 4, backwards=(1, 3))
    assert trust.agreement(1) is None and trust.first_trusted() == 1  # 4 pairs: not enough yet
    trust = FidelityTrust([1, 3, 9, 27])
    curves(trust, 8)
    assert trust.agreement(1) == pytest.approx(1.0) and trust.first_trusted() == 1
    trust = FidelityTrust([1, 3, 9, 27])
    curves(trust, 8, backwards=(3,))
    assert trust.agreement(3) == pytest.approx(-1.0) and trust.agreement(1) == pytest.approx(1.0)
    # rung 1 agrees with the top but feeds rung 3's decisions, so it decides nothing either
    assert not trust.trusted(1) and not trust.trusted(3) and trust.trusted(9) and trust.first_trusted() == 9
    assert "3 epochs -1.00 with 27 (8 pairs)" in trust.summary()


def test_a_rung_is_judged_against_the_highest_rung_with_enough_pairs_before_the_top_has_them():
    trust = FidelityTrust([1, 3, 9, 27])
    curves(trust, 8, backwards=(1,), reach=(1, 3, 9))  # none reached the top yet
    assert trust.reference(1) == 9 and trust.agreement(1) == pytest.approx(-1.0)
    assert trust.reference(9) is None and trust.first_trusted() == 3
    curves(trust, 8, reach=(27,))  # now they have: the top is the reference
    assert trust.reference(1) == 27


def hyperband(name="hyperband", **params):
    return get_algorithm(name)(SPACE, max_epochs=27, seed=0, params={**HB, **params})


def test_hyperband_keeps_its_schedule_where_low_rungs_agree():
    algo = hyperband()
    curves(algo.fidelity, 10)
    assert [algo._choose(i)[0].s for i in range(6)] == [3, 2, 1, 3, 2, 1]


def test_hyperband_replaces_brackets_that_decide_at_misleading_rungs():
    algo = hyperband()
    curves(algo.fidelity, 10, backwards=(1, 3))
    bracket, why = algo._choose(0)
    assert bracket.s == 0 and "in place of a bracket starting at 1 epochs" in why  # a full-fidelity bracket
    algo.runs.append(type("Run", (), {"bracket": bracket})())
    assert algo._choose(1)[0].s == 1  # then the most aggressive bracket whose first rung is trusted
    assert algo._choose(2) == (algo.schedule[2], "")  # a trusted bracket runs as scheduled


def test_dehb_has_a_full_fidelity_bracket_already_and_replaces_with_the_trusted_one():
    algo = hyperband("dehb")
    curves(algo.fidelity, 10, backwards=(1,))
    assert [b.s for b in algo.schedule] == [3, 2, 1, 0]
    assert algo._choose(0)[0].s == 2 and algo._choose(1)[0].s == 2


def test_hyperband_es_stops_nothing_before_the_first_trusted_rung():
    algo = hyperband("hyperband_es", automl_early_stop_threshold=0.5, automl_min_early_stop_epochs=3)
    assert algo.on_metrics(99, 1, 3, 5.0) != CONTINUE  # nothing known: the threshold stops it
    curves(algo.fidelity, 10, backwards=(1, 3))
    assert algo.on_metrics(99, 2, 3, 5.0) == CONTINUE  # epoch 3 ranks backwards
    assert algo.on_metrics(99, 2, 9, 5.0) != CONTINUE


def test_asha_probes_then_starts_new_trials_at_the_first_trusted_rung():
    algo = get_algorithm("asha")(SPACE, max_epochs=27, seed=0, params={"automl_max_concurrent": 1})
    for _ in range(5):  # the probe: trained to 9 epochs with no decision below, to measure those rungs
        job = algo.suggest(1)[0]
        assert (job.stop_epoch, job.rung) == (9, 2) and "a probe of 5" in job.note
        algo.running.clear()
    curves(algo.fidelity, 10)
    assert algo.suggest(1)[0].stop_epoch == 1  # the rungs agree: ASHA as it was
    algo.running.clear()
    algo.fidelity = type(algo.fidelity)(algo.rung_epochs)
    curves(algo.fidelity, 10, backwards=(1, 3))
    job = algo.suggest(1)[0]
    assert (job.stop_epoch, job.rung, job.start_epoch) == (9, 2, 0) and "misleading" in job.note


def notes(run):
    return [j.note or "" for j in run.view.jobs.values()]


def test_replays_and_leaves_a_problem_whose_low_rungs_agree_alone():
    """Same seed, same run; on a problem whose epochs rank alike, the schedule is TAO's."""
    def objective(config, epoch, state):
        return (config["x"] - 0.3) ** 2 + 1.0 / epoch, 1.0

    runs = [simulate("hyperband", [{"args": ["x"], "type": "float", "targets": [0.0, 1.0]}], objective,
                     max_epochs=27, time_budget=27 * 30, seed=3, params=HB) for _ in range(2)]
    assert runs[0].jobs == runs[1].jobs and len(runs[0].jobs) > 100
    assert not any("in place of" in n for n in notes(runs[0]))


@pytest.mark.parametrize("name", ["hyperband", "dehb"])
def test_on_crossing_curves_brackets_that_start_at_backwards_rungs_are_replaced(name):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.problems import crossing_curves

    problem = crossing_curves()
    run = simulate(name, problem.search, problem.objective, max_epochs=27, time_budget=27 * 40, seed=3, params=HB)
    replaced = [n for n in notes(run) if "in place of a bracket starting at 1 epochs" in n]
    assert replaced and "1 epochs -" in replaced[0] and "trusted from 9 epochs" in replaced[0]
    if name == "dehb":
        assert any("rungs found misleading" in n for n in notes(run))


@pytest.mark.parametrize("name", ["asha", "dehb", "hyperband_es"])
def test_the_same_seed_makes_the_same_decisions_where_rungs_mislead(name):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.problems import crossing_curves

    problem = crossing_curves()
    params = {"automl_max_concurrent": 1, "automl_min_top_configs": 1000} if name == "asha" else dict(
        HB, **({"automl_early_stop_threshold": 2.0} if name == "hyperband_es" else {}))
    runs = [simulate(name, problem.search, problem.objective, max_epochs=27, time_budget=27 * 25, seed=5,
                     params=params) for _ in range(2)]
    assert runs[0].jobs == runs[1].jobs and notes(runs[0]) == notes(runs[1])
    assert any("misleading" in n or "in place of" in n for n in notes(runs[0]))
