"""DEHB: the DE operator on the unit cube, the first pass as plain successive halving, bred
trials at every rung later, selection against targets, determinism and failures."""
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from automl_cli.algorithms import get_algorithm
from automl_cli.algorithms.base import Outcome
from automl_cli.algorithms.proposers.base import Result
from automl_cli.algorithms.proposers.de import binomial_crossover, breed, rand1_mutant, repair
from automl_cli.errors import UsageError
from automl_cli.simulate import simulate
from automl_cli.space import parse_search_space

MIXED = parse_search_space({
    "model": {"name": "M", "args": {"lr": 0.1, "act": "relu", "depth": 2, "opt": "adam", "momentum": 0.9},
              "search": [
                  {"args": "lr", "type": "float", "targets": [1e-4, 1e-1], "log": True},
                  {"args": "act", "type": "enum", "targets": [["relu"], ["tanh"], ["gelu"]]},
                  {"args": "depth", "type": "int", "targets": [1, 9], "step": 2},
                  {"args": "opt", "type": "enum", "targets": ["adam", "sgd"]},
                  {"args": "momentum", "type": "float", "targets": [0.5, 0.99],
                   "condition": {"param": "M.opt", "in": ["sgd"]}}]}}, Path("t.json"))

TARGET = np.array([0.1, 0.2, 0.3, 0.4, 0.5])
MUTANT = np.array([0.9, 0.8, 0.7, 0.6, 0.55])


# -- the operator ---------------------------------------------------------------------------
def test_crossover_with_probability_zero_takes_exactly_one_coordinate_from_the_mutant():
    forced = set()
    for seed in range(40):
        child = binomial_crossover(TARGET, MUTANT, 0.0, np.random.default_rng(seed))
        from_mutant = np.flatnonzero(child == MUTANT)
        assert len(from_mutant) == 1
        assert np.array_equal(np.delete(child, from_mutant), np.delete(TARGET, from_mutant))
        forced.add(int(from_mutant[0]))
    assert forced == set(range(5))  # the forced coordinate is drawn, not fixed


def test_crossover_with_probability_one_is_the_mutant_and_in_between_mixes():
    assert np.array_equal(binomial_crossover(TARGET, MUTANT, 1.0, np.random.default_rng(0)), MUTANT)
    rng = np.random.default_rng(1)
    taken = np.mean([np.mean(binomial_crossover(TARGET, MUTANT, 0.5, rng) == MUTANT) for _ in range(2000)])
    assert 0.55 < taken < 0.65  # 0.5 of the coordinates plus the forced one: 0.5 + 0.5 / 5


def test_rand1_mutant_is_a_plus_f_times_b_minus_c_of_three_distinct_members():
    pool = np.array([[0.0], [1.0], [10.0], [100.0]])
    for seed in range(30):
        value = rand1_mutant(pool, 0.5, np.random.default_rng(seed))[0]
        matches = [(a, b, c) for a in pool[:, 0] for b in pool[:, 0] for c in pool[:, 0]
                   if len({a, b, c}) == 3 and math.isclose(a + 0.5 * (b - c), value)]
        assert matches
    with pytest.raises(ValueError):
        rand1_mutant(pool[:2], 0.5, np.random.default_rng(0))  # rand/1 needs three parents


def test_repair_redraws_out_of_bounds_and_nan_coordinates_and_keeps_the_rest():
    point = np.array([-0.2, 0.0, 0.5, 1.0, 1.7, np.nan])
    fixed = repair(point, np.random.default_rng(0))
    assert np.array_equal(fixed[1:4], point[1:4])
    assert np.all((fixed >= 0) & (fixed <= 1))
    assert fixed[0] != 0.0 and fixed[4] != 1.0  # redrawn, not clipped
    assert np.isnan(point[5])  # the input is left alone


def test_breed_with_full_crossover_is_the_mutant_and_stays_in_the_cube():
    pool = np.array([[0.5, 0.5], [0.9, 0.1], [0.1, 0.9]])
    child = breed(np.array([0.0, 0.0]), pool, 0.0, 1.0, np.random.default_rng(0))
    assert any(np.array_equal(child, row) for row in pool)  # F = 0: a itself
    rng = np.random.default_rng(2)
    for _ in range(200):
        child = breed(np.array([0.3, 0.3]), pool, 2.0, 1.0, rng)  # F = 2 leaves the cube often
        assert np.all((child >= 0) & (child <= 1))


def test_bred_configurations_of_a_mixed_space_are_always_valid_and_units_round_trip():
    rng = np.random.default_rng(0)
    configs = [MIXED.sample(rng) for _ in range(50)]
    for config in configs:  # enums at their cell centres, ints on their steps, log floats exact
        back = MIXED.from_units(MIXED.to_units(config), rng)
        assert back["M.act"] == config["M.act"] and back["M.depth"] == config["M.depth"]
        assert back["M.opt"] == config["M.opt"] and math.isclose(back["M.lr"], config["M.lr"])
    pool = np.array([MIXED.to_units(c) for c in configs])  # NaN where momentum is inactive
    seen_acts = set()
    for i in range(300):
        child = MIXED.from_units(breed(pool[i % 50], pool, 0.8, 0.5, rng), rng)
        assert MIXED.contains(child)
        seen_acts.add(child["M.act"][0])
    assert seen_acts == {"relu", "tanh", "gelu"}


# -- the algorithm, driven directly -------------------------------------------------------------
def loss_of(params, epochs):
    """Better with lr near 1e-2, tanh and depth 5; falls with epochs."""
    return (abs(math.log10(params["M.lr"]) + 2) + {"relu": 0.5, "tanh": 0.0, "gelu": 1.0}[params["M.act"][0]]
            + 0.1 * abs(params["M.depth"] - 5) + 1.0 / epochs)


def drive(seed=0, workers=1, iterations=2, fail=lambda params: False, R=27):
    """Run DEHB to its end, finishing jobs oldest first; returns the algorithm and the jobs."""
    algo = get_algorithm("dehb")(MIXED, max_epochs=R, seed=seed,
                                 params={"automl_R": R, "automl_nu": 3, "epoch_multiplier": 1,
                                         "automl_hyperband_iterations": iterations})
    running, jobs = [], []
    while not algo.is_done():
        running += algo.suggest(workers - len(running))
        request = running.pop(0)
        jobs.append(request)
        if fail(request.params):
            algo.on_finished(Outcome(request.trial_id, len(jobs), "failed", None, request.start_epoch, "crash"))
        else:
            loss = loss_of(request.params, request.stop_epoch)
            algo.on_finished(Outcome(request.trial_id, len(jobs), "completed", loss, request.stop_epoch))
    return algo, jobs


@pytest.mark.parametrize("workers", [1, 4])
def test_selection_keeps_the_better_of_each_trial_and_its_target(workers):
    # R = 27: the second bracket promotes its bred first rung into a level still filling,
    # where those trials join as members rather than compete with their old targets
    algo, jobs = drive(seed=1, workers=workers)
    losses = {(j.trial_id, j.stop_epoch): loss_of(j.params, j.stop_epoch) for j in jobs}
    assert algo.proposer.origins, "later brackets must breed"
    for resource, level in algo.proposer.levels.items():
        assert len(level.units) == level.capacity
        for slot in range(level.capacity):
            contenders = [losses[(t, level.epochs)] for t, o in algo.proposer.origins.items()
                          if o.level == resource and o.target == slot]
            # the member is a running minimum over the first filler and every trial bred against it
            assert level.losses[slot] <= min(contenders, default=math.inf)
            assert level.losses[slot] == losses[(level.trials[slot], level.epochs)]
            member = MIXED.to_units(algo.trials[level.trials[slot]])
            assert np.array_equal(level.units[slot], member, equal_nan=True)
    de = algo.proposer
    replaced = sum(level.trials[s] in de.origins for level in de.levels.values() for s in range(level.capacity))
    assert replaced > 0


def test_a_worse_trial_leaves_its_target_and_an_equal_or_better_one_replaces_it():
    algo, _ = drive(seed=2, iterations=1, R=9)
    resource, level = next(iter(algo.proposer.levels.items()))
    rung = next(r for b in algo.schedule for r in b.rungs if r.resource == resource)
    before = (list(level.trials), list(level.losses))

    def bred_trial(loss):
        params, origin = algo.proposer._breed(resource, np.array(level.units), "test")
        trial = algo.add_trial(params)
        algo.proposer.origins[trial] = origin
        algo.proposer.observe(Result(trial, algo.trials[trial], rung.epochs, loss, "completed", rung))
        return trial, origin.target

    trial, slot = bred_trial(level.losses[0] + 1.0)  # targets are taken in turn, from the first
    assert slot == 0 and level.trials[0] == before[0][0] and level.losses[0] == before[1][0]
    trial, slot = bred_trial(None)  # a failure replaces nothing
    assert slot == 1 and level.trials[1] == before[0][1]
    trial, slot = bred_trial(level.losses[2])  # a tie goes to the trial
    assert slot == 2 and level.trials[2] == trial and level.losses[2] == before[1][2]


def test_a_trial_promoted_to_the_full_budget_replaces_the_worst_member_when_no_worse():
    algo, _ = drive(seed=2, iterations=1, R=9)
    resource = max(algo.proposer.levels)
    level = algo.proposer.levels[resource]
    rung = next(r for b in algo.schedule for r in b.rungs if r.resource == resource)
    assert level.full and rung.epochs == 9

    def promoted(loss):
        trial = algo.add_trial(algo.space.sample(algo.rng))  # not bred: no origin at this level
        algo.proposer.observe(Result(trial, algo.trials[trial], rung.epochs, loss, "completed", rung))
        return trial

    members = list(level.trials)
    promoted(max(level.losses) + 1.0)  # worse than every member: nothing changes
    assert level.trials == members
    worst = max(range(level.capacity), key=lambda i: level.losses[i])
    trial = promoted(min(level.losses) - 1.0)
    assert level.trials[worst] == trial and level.losses[worst] == min(level.losses)
    assert [t for i, t in enumerate(level.trials) if i != worst] == [t for i, t in enumerate(members) if i != worst]


def test_the_target_is_never_one_of_its_own_parents():
    algo, _ = drive(seed=2, iterations=1, R=9)
    resource, level = next(iter(algo.proposer.levels.items()))
    members = np.array(level.units)
    for _ in range(6 * level.capacity):  # with the target allowed, a would be it 1 time in 9
        target = level.units[level.next_target]
        algo.proposer.factor, algo.proposer.crossover = 0.0, 1.0  # the trial is then parent a itself
        params, origin = algo.proposer._breed(resource, members, "test")
        # compare the learning rate: continuous, always active, so it names the parent
        # (b - c is NaN where momentum is inactive in either, and redrawn there)
        lr = MIXED.to_units(params)[0]
        assert lr != target[0]
        assert any(np.isclose(lr, m[0]) for m in members)


def test_failures_never_join_or_replace_and_the_search_goes_on():
    failing = lambda params: params["M.act"] == ["gelu"]  # noqa: E731
    algo, jobs = drive(seed=3, workers=3, fail=failing)
    assert any(failing(j.params) for j in jobs)
    for level in algo.proposer.levels.values():
        assert len(level.units) == len(level.losses) == len(level.trials) == level.capacity
        assert all(not failing(algo.trials[t]) for t in level.trials)
        assert all(math.isfinite(loss) for loss in level.losses)


def test_a_stopped_job_neither_joins_nor_replaces():
    algo = get_algorithm("dehb")(MIXED, max_epochs=9, params={"automl_R": 9, "epoch_multiplier": 1})
    [request, *_] = algo.suggest(1)
    algo.on_finished(Outcome(request.trial_id, 1, "stopped", 0.1, 0, "cut at the time budget"))
    assert algo.proposer.levels[Fraction(1)].units == []


def test_parameters_are_checked_and_explained():
    cls = get_algorithm("dehb")
    with pytest.raises(UsageError, match="at most 2"):
        cls(MIXED, max_epochs=9, params={"automl_mutation_factor": 2.5})
    with pytest.raises(UsageError, match="at most 1"):
        cls(MIXED, max_epochs=9, params={"automl_crossover_prob": 1.5})
    algo = cls(MIXED, max_epochs=27, params={"automl_R": 27, "epoch_multiplier": 1, "automl_crossover_prob": 0.9})
    line = algo.explain()[-1]
    assert "mutation factor 0.5" in line and "crossover probability 0.9" in line
    assert "27 at 1 epochs, 9 at 3 epochs, 6 at 9 epochs, 4 at 27 epochs" in line  # with the s = 0 bracket


# -- through the engine -------------------------------------------------------------------------
SEARCH = [{"args": ["x"], "type": "float", "targets": [0, 1]},
          {"args": ["y"], "type": "float", "targets": [0, 1]}]
HB = {"automl_R": 27, "automl_nu": 3, "epoch_multiplier": 1}


def curve(config, epoch, state):
    """Loss falls with epochs toward a floor set by x and y; one second per epoch."""
    return (config["x"] - 0.3) ** 2 + (config["y"] - 0.6) ** 2 + 1.0 / epoch, 1.0


def shape(result, bracket):
    return [(j.trial_id, j.start_epoch, j.stop_epoch, j.rung)
            for j in sorted(result.view.jobs.values(), key=lambda j: j.job_id) if j.bracket == bracket]


def test_the_first_bracket_is_plain_successive_halving():
    dehb = simulate("dehb", SEARCH, curve, max_epochs=27, n_workers=1, params={**HB, "automl_hyperband_iterations": 2})
    hb = simulate("hyperband", SEARCH, curve, max_epochs=27, n_workers=1, params=HB)
    assert shape(dehb, 1) == shape(hb, 1)  # the same trials, promotions resuming where they stopped
    assert all("random" in j.note or "promoted" in j.note for j in dehb.view.jobs.values() if j.bracket == 1)
    # every bracket runs Hyperband's table: the same number of jobs at each rung; dehb adds
    # the paper's s = 0 bracket (4 trainings in full) to each pass of TAO's three
    count = lambda r, b: sorted((j.rung, j.stop_epoch) for j in r.view.jobs.values() if j.bracket == b)  # noqa: E731
    for bracket in (1, 2, 3):
        assert count(dehb, bracket) == count(hb, bracket) == count(dehb, bracket + 4)
    assert count(dehb, 4) == count(dehb, 8) == [(0, 27)] * 4


@pytest.mark.parametrize("breed_full", [0, 1])
def test_later_brackets_breed_new_trials_at_higher_rungs_from_scratch(breed_full):
    result = simulate("dehb", SEARCH, curve, max_epochs=27, n_workers=2,
                      params={**HB, "automl_hyperband_iterations": 2, "automl_breed_full_budget": breed_full})
    jobs = sorted(result.view.jobs.values(), key=lambda j: j.job_id)
    first_epochs = {j.bracket: j.stop_epoch for j in reversed(jobs) if j.rung == 0}
    bred_high = [j for j in jobs if j.rung > 0 and j.start_epoch == 0 and j.stop_epoch > first_epochs[j.bracket]]
    bred_at = {j.stop_epoch for j in bred_high}
    if breed_full:  # the paper: the second pass breeds at every rung
        assert bred_at == {3, 9, 27}
    else:  # ours: every rung below 27 epochs; the 27-epoch rungs resume the rung below's best
        assert bred_at == {3, 9}
        full = [j for j in jobs if j.bracket > 1 and j.rung > 0 and j.stop_epoch == 27]
        assert len(full) == 2 * (1 + 1 + 2) - 1  # both passes' brackets but the first
        for j in full:  # each continues a trial of the rung below, from its checkpoint
            below = [k for k in jobs if k.trial_id == j.trial_id and k.stop_epoch == j.start_epoch]
            assert j.start_epoch > 0 and below and "promoted" in j.note
    assert all(j.bracket > 1 for j in bred_high)
    for j in bred_high:
        assert "DE trial against target" in j.note
        # parents: the best of the lower budget's whole population, not only this bracket's survivors
        assert "-epoch population's" in j.note.split("parents:")[1]
        earlier = [k for k in jobs if k.trial_id == j.trial_id and k.job_id < j.job_id]
        assert not earlier  # a new trial, trained from scratch
    assert all(0 <= j.params["x"] <= 1 and 0 <= j.params["y"] <= 1 for j in jobs)
    top = [j for j in result.jobs if j["stop_epoch"] == 27 and j["status"] == "completed"]
    assert result.best[1] == min(j["metrics"][-1] for j in top)


def test_free_workers_open_a_bracket_whose_population_is_full_before_one_that_would_start_blind():
    # With 8 workers the first bracket's 27 one-epoch jobs leave workers free long before
    # the 3- and 9-epoch populations fill. The schedule's next bracket would then start 9
    # random configurations at 3 epochs (and the s = 0 bracket 4 random full trainings); the
    # next pass's first bracket, whose one-epoch population fills first, goes ahead instead.
    result = simulate("dehb", SEARCH, curve, max_epochs=27, n_workers=8, params={**HB, "automl_hyperband_iterations": 3})
    jobs = sorted(result.view.jobs.values(), key=lambda j: j.job_id)
    random = [j for j in jobs if j.note.split(": ", 1)[1].startswith("new, random")]
    assert len(random) >= 27 and {j.stop_epoch for j in random} == {1}
    opened = [min((j for j in jobs if j.bracket == b), key=lambda j: j.job_id) for b in range(1, 13)]
    assert [j.stop_epoch for j in opened[:2]] == [1, 1]  # the schedule's second starts at 3 epochs
    # every bracket of the three passes still runs: three of each kind
    kinds = sorted(j.stop_epoch for j in opened)
    assert kinds == [1] * 3 + [3] * 3 + [9] * 3 + [27] * 3


def test_same_seed_same_jobs_and_another_seed_others():
    run = lambda seed: simulate("dehb", SEARCH, curve, max_epochs=27, n_workers=3, seed=seed,  # noqa: E731
                                params={**HB, "automl_hyperband_iterations": 2}).jobs
    key = lambda jobs: [(j["trial_id"], j["params"], j["start_epoch"], j["stop_epoch"], j["start_time"])  # noqa: E731
                        for j in jobs]
    first = run(4)
    assert key(first) == key(run(4))
    assert key(first) != key(run(5))


def test_a_failing_objective_does_not_crash_the_search():
    def objective(config, epoch, state):
        if config["x"] > 0.7:
            raise RuntimeError("diverged")
        return curve(config, epoch, state)

    result = simulate("dehb", SEARCH, objective, max_epochs=27, n_workers=4, seed=1,
                      params={**HB, "automl_hyperband_iterations": 2})
    failed = [j for j in result.jobs if j["status"] == "failed"]
    assert failed and all(j["config"]["x"] > 0.7 for j in failed)
    assert result.best[0]["x"] <= 0.7


def test_dehb_beats_hyperband_on_a_smooth_problem_over_several_seeds():
    params = {**HB, "automl_hyperband_iterations": 3}
    floor = lambda result: (result.best[0]["x"] - 0.3) ** 2 + (result.best[0]["y"] - 0.6) ** 2  # noqa: E731
    dehb = [floor(simulate("dehb", SEARCH, curve, max_epochs=27, seed=s, params=params)) for s in range(5)]
    hb = [floor(simulate("hyperband", SEARCH, curve, max_epochs=27, seed=s, params=params)) for s in range(5)]
    print(f"median regret: dehb {np.median(dehb):.2g}, hyperband {np.median(hb):.2g}")
    assert np.median(dehb) < np.median(hb)


def test_plan_says_higher_rungs_turn_into_bred_trials_trained_from_scratch():
    from automl_cli.plan import make_plan, render
    from automl_cli.space import parse_search_space

    space = parse_search_space({"x": 0.5, "search": [{"args": ["x"], "type": "float", "targets": [0.0, 1.0]}]},
                               Path("<test>"))
    params = {"automl_R": 9, "epoch_multiplier": 1}
    dehb = "\n".join(render(make_plan(space, "dehb", params, 9, 1, None, "")))
    assert "(+2, resuming, until the populations fill; then bred trials, trained from scratch)" in dehb
    assert "(+6, resuming: the rung below's best)" in dehb  # the full budget is always reached by promotion
    paper = "\n".join(render(make_plan(space, "dehb", {**params, "automl_breed_full_budget": 1}, 9, 1, None, "")))
    assert "(+6, resuming, until the populations fill; then bred trials, trained from scratch)" in paper
    hyperband = "\n".join(render(make_plan(space, "hyperband", params, 9, 1, None, "")))
    assert "(+2, resuming)" in hyperband and "bred" not in hyperband
