"""reinforcement: the policy's maths, what it learns, and the enum-only grid."""
import json
import math
import statistics
from pathlib import Path

import numpy as np
import pytest

from automl_cli.algorithms import get_algorithm, load_all
from automl_cli.algorithms.base import Outcome
from automl_cli.algorithms.models.policy import Policy
from automl_cli.space import parse_search_space

load_all()

# one choice rewards (b), and the float rewards the region near 8 (unit coordinate 0.8)
TOY = parse_search_space({"act": "a", "x": 0.0, "search": [
    {"args": "act", "type": "enum", "targets": [["a"], ["b"], ["c"]]},
    {"args": "x", "type": "float", "targets": [0, 10]}]}, Path("toy.json"))


def toy_loss(p):
    return {"a": 1.0, "b": 0.0, "c": 1.0}[p["act"][0]] + 4 * (p["x"] / 10 - 0.8) ** 2


MIXED = parse_search_space({"model": {"name": "M", "args": {"lr": 0.1, "act": "relu", "depth": 2, "drop": 0.0},
                                      "search": [
    {"args": "lr", "type": "float", "targets": [1e-5, 1e-1], "log": True},
    {"args": "act", "type": "enum", "targets": [["relu"], ["tanh"], ["gelu"], ["elu"]]},
    {"args": "depth", "type": "int", "targets": [1, 8]},
    {"args": "drop", "type": "float", "targets": [0.0, 0.5]}]}}, Path("mixed.json"))


def mixed_loss(p):
    return ((math.log10(p["M.lr"]) + 2.0) ** 2 + {"relu": 0.5, "tanh": 0.0, "gelu": 1.0, "elu": 0.8}[p["M.act"][0]]
            + 0.3 * abs(p["M.depth"] - 6) + 2 * (p["M.drop"] - 0.1) ** 2)


def drive(name, space, loss, seed, budget, workers=1, every=None):
    """Run to the end, the oldest running job finishing first; returns the best loss and
    `every(algo)` after each finished job."""
    params = {"max_rounds": budget} if name == "reinforcement" else {"automl_max_recommendations": budget}
    algo = get_algorithm(name)(space, max_epochs=1, seed=seed, params=params)
    running, best, job, seen = [], math.inf, 0, []
    while not algo.is_done():
        running += algo.suggest(workers - len(running))
        request = running.pop(0)
        job += 1
        assert space.contains(request.params)
        value = loss(request.params)
        best = min(best, value)
        algo.on_finished(Outcome(request.trial_id, job, "completed", value, 1))
        if every:
            seen.append(every(algo))
    return best, seen


def test_grad_log_prob_matches_finite_differences_for_choices_clipped_gaussians_and_conditions():
    space = parse_search_space({"opt": "sgd", "lr": 0.1, "mom": 0.9, "depth": 1, "search": [
        {"args": "opt", "type": "enum", "targets": [["adam"], ["sgd"], ["rms"]], "weights": [1, 2, 3]},
        {"args": "lr", "type": "float", "targets": [1e-5, 1e-1], "log": True},
        {"args": "mom", "type": "float", "targets": [0.5, 0.99], "condition": {"param": "opt", "in": ["sgd"]}},
        {"args": "depth", "type": "int", "targets": [1, 9]}]}, Path("g.json"))
    policy = Policy(space, init_std=0.3, min_std=0.05, max_std=0.5, exploration=0.2)
    rng = np.random.default_rng(0)
    actions = [np.array([1, 0.3, 0.7, 0.5]),  # all interior, mom active
               np.array([1, 0.0, 1.0, 0.2]),  # lr clipped at 0, mom at 1
               np.array([0, 1.0, 0.4, 0.0]),  # mom inactive (adam): no term for it
               np.array([2, 0.95, 0.0, 1.0])]
    checked = 0
    for _ in range(5):
        theta = policy.initial + rng.normal(0, 0.4, len(policy.initial))
        for action in actions:
            analytic = policy.grad_log_prob(theta, action)
            numeric = np.zeros_like(theta)
            for i in range(len(theta)):
                up, down = theta.copy(), theta.copy()
                up[i] += 1e-6
                down[i] -= 1e-6
                numeric[i] = (policy.log_prob(up, action) - policy.log_prob(down, action)) / 2e-6
            np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-6)
            checked += 1
    mom = policy.slices[2]
    assert not policy.grad_log_prob(theta, actions[2])[mom].any()  # inactive: the policy is not blamed for it
    assert checked == 20


def test_policy_learns_the_rewarding_choice_and_moves_its_mean_toward_the_rewarding_region():
    def state(algo):
        policy = algo.proposer.policy
        theta = algo.proposer.theta
        return policy.choice_probabilities(theta[policy.slices[0]])[1], theta[policy.slices[1]][0]

    runs = [drive("reinforcement", TOY, toy_loss, seed, budget=60, workers=2, every=state)[1] for seed in range(5)]
    p_b = [statistics.mean(run[k][0] for run in runs) for k in (0, 19, 59)]
    distance = [statistics.mean(abs(run[k][1] - 0.8) for run in runs) for k in (0, 19, 59)]
    assert p_b[0] < 0.4 and p_b[0] < p_b[1] < p_b[2] and p_b[2] > 0.8  # from 1/3 at the start
    assert distance[0] > 0.25 and distance[2] < 0.15  # the mean starts at 0.5
    assert all(run[-1][0] > 0.6 for run in runs)


def test_reinforcement_beats_random_search_median_over_seeds():
    budget = 50
    learned = [drive("reinforcement", MIXED, mixed_loss, seed, budget)[0] for seed in range(9)]
    random = [drive("random", MIXED, mixed_loss, seed, budget)[0] for seed in range(9)]
    # measured over 40 seeds: medians 0.04 against 0.31; reinforcement better in 33
    assert statistics.median(learned) < 0.6 * statistics.median(random)


def test_four_free_slots_get_four_distinct_configurations_and_updates_wait_for_results():
    algo = get_algorithm("reinforcement")(MIXED, max_epochs=5, seed=0, params={"max_rounds": 10})
    batch = algo.suggest(4)
    assert len(batch) == 4 and len({json.dumps(r.params, sort_keys=True) for r in batch}) == 4
    assert all(MIXED.contains(r.params) and r.stop_epoch == 5 for r in batch)
    assert [r.trial_id for r in batch] == [1, 2, 3, 4]
    assert algo.proposer.updates == 0 and algo.planned_jobs() == 10
    assert len(algo.suggest(20)) == 6 and algo.suggest(1) == [] and not algo.is_done()


def test_failed_jobs_teach_the_policy_to_avoid_them_and_outliers_are_bounded():
    def fresh_with_history(losses):
        algo = get_algorithm("reinforcement")(TOY, max_epochs=1, seed=0, params={"max_rounds": 20})
        requests = algo.suggest(len(losses) + 1)
        for job, (request, loss) in enumerate(zip(requests, losses), start=1):
            algo.on_finished(Outcome(request.trial_id, job, "completed", loss, 1))
        return algo, requests[-1]

    # a failure before any result says nothing
    algo = get_algorithm("reinforcement")(TOY, max_epochs=1, seed=0, params={"max_rounds": 5})
    request = algo.suggest(1)[0]
    algo.on_finished(Outcome(request.trial_id, 1, "failed", None, 0, "crash"))
    assert algo.proposer.updates == 0 and np.array_equal(algo.proposer.theta, algo.proposer.policy.initial)

    # after results, a failure counts as the worst so far: its choice becomes less likely
    algo, last = fresh_with_history([1.0, 2.0, 0.5])
    choice = algo.proposer.policy.slices[0]
    index = TOY.params[0].choice_index(last.params["act"])
    before = algo.proposer.policy.choice_probabilities(algo.proposer.theta[choice])[index]
    algo.on_finished(Outcome(last.trial_id, 9, "failed", None, 0, "crash"))
    after = algo.proposer.policy.choice_probabilities(algo.proposer.theta[choice])[index]
    assert after < before and np.isfinite(algo.proposer.theta).all()

    # a diverged training (loss 1e7) moves the policy as far as a merely bad one (1e3): the advantage is clipped
    diverged, last = fresh_with_history([1.0, 1.1, 0.9])
    bad, _ = fresh_with_history([1.0, 1.1, 0.9])
    diverged.on_finished(Outcome(last.trial_id, 9, "completed", 1e7, 1))
    bad.on_finished(Outcome(last.trial_id, 9, "completed", 1e3, 1))
    np.testing.assert_allclose(diverged.proposer.theta, bad.proposer.theta, atol=1e-3)
    assert not np.array_equal(diverged.proposer.theta, fresh_with_history([1.0, 1.1, 0.9])[0].proposer.theta)


def test_a_space_of_choices_only_runs_every_combination_exactly_once():
    space = parse_search_space({"opt": "adam", "act": "relu", "amp": False, "search": [
        {"args": "opt", "type": "enum", "targets": [["adam"], ["sgd"], ["rms"]]},
        {"args": "act", "type": "enum", "targets": [["relu"], ["tanh"]]},
        {"args": "amp", "type": "bool"}]}, Path("choices.json"))
    algo = get_algorithm("reinforcement")(space, max_epochs=3, seed=0, params={"max_rounds": 5})
    assert algo.planned_jobs() == 12
    assert "full grid" in algo.explain()[0] and "12 combinations" in algo.explain()[0]
    proposed, job = [], 0
    while not algo.is_done():
        batch = algo.suggest(3)
        proposed += [r.params for r in batch]
        for request in batch:
            job += 1
            algo.on_finished(Outcome(request.trial_id, job, "completed", float(job), 3))
    keys = [json.dumps(p, sort_keys=True) for p in proposed]
    assert len(keys) == len(set(keys)) == 12
    assert {(p["opt"][0], p["act"][0], p["amp"][0]) for p in proposed} == {
        (o, a, b) for o in ("adam", "sgd", "rms") for a in ("relu", "tanh") for b in (False, True)}


@pytest.mark.parametrize("value", [-0.1, 0.995])
def test_parameters_out_of_range_are_usage_errors(value):
    from automl_cli.errors import UsageError

    with pytest.raises(UsageError, match="baseline_decay"):
        get_algorithm("reinforcement")(TOY, max_epochs=1, params={"baseline_decay": value})
