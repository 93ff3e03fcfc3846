"""The benchmark problems match their published optima and behave as multi-fidelity problems."""
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.problems import (  # noqa: E402
    ALL, augmented_branin, augmented_hartmann6, counting_ones, crossing_curves, mf_hartmann3, mixed12, regret,
)

OPTIMISERS = {
    "augmented_branin": [{"x1": -math.pi, "x2": 12.275}, {"x1": math.pi, "x2": 2.275}, {"x1": 9.42478, "x2": 2.475}],
    "augmented_hartmann6": [dict(zip([f"x{i}" for i in range(6)],
                                     (0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573)))],
    "mf_hartmann3": [{"x0": 0.114614, "x1": 0.555649, "x2": 0.852547}],
    "crossing_curves": [{"x0": 0.114614, "x1": 0.555649, "x2": 0.852547}],
    "counting_ones": [{**{f"c{i}": 1 for i in range(8)}, **{f"x{i}": 1.0 for i in range(8)}}],
    "mixed12": [{"lr": 10 ** -2.7, "weight_decay": 0.01, "momentum": 0.9, "dropout": 0.175, "warmup": 0.1,
                 "label_smoothing": 0.1, "batch_size": 64, "layers": 4, "width": 256, "optimizer": "adamw",
                 "activation": "gelu", "augment": "light"}],
}


def sample(problem, rng):
    config = {}
    for item in problem.search:
        name = item["args"][0]
        if item["type"] == "enum":
            config[name] = item["targets"][rng.integers(len(item["targets"]))][0]
        else:
            low, high = item["targets"]
            if item.get("log"):
                value = math.exp(math.log(low) + (math.log(high) - math.log(low)) * rng.random())
            else:
                value = low + (high - low) * rng.random()
            config[name] = round(value) if item["type"] == "int" else value
    return config


@pytest.mark.parametrize("name", sorted(ALL))
def test_known_optimisers_reach_the_optimum_and_nothing_beats_it(name):
    problem = ALL[name]()
    for config in OPTIMISERS[name]:
        assert problem.true_value(config) == pytest.approx(problem.optimum, abs=1e-4)
    rng = np.random.default_rng(0)
    assert min(problem.true_value(sample(problem, rng)) for _ in range(1000)) >= problem.optimum - 1e-6


@pytest.mark.parametrize("factory", [augmented_branin, augmented_hartmann6])
def test_full_fidelity_is_the_true_value_and_lower_fidelities_differ(factory):
    problem = factory()
    config = sample(problem, np.random.default_rng(1))
    value, seconds = problem.objective(config, problem.max_epochs, {})
    assert value == problem.true_value(config) and seconds > 0
    assert problem.objective(config, 1, {})[0] != value


def test_noise_repeats_for_the_same_config_and_state():
    for problem in (counting_ones(), mf_hartmann3()):
        config = sample(problem, np.random.default_rng(2))
        first = [problem.objective(config, e, s)[0] for s in [{}] for e in (1, 2, 3)]
        again = [problem.objective(config, e, s)[0] for s in [{}] for e in (1, 2, 3)]
        assert first == again


def test_mf_hartmann3_low_fidelity_ranks_like_the_top():
    problem = mf_hartmann3()
    rng = np.random.default_rng(3)
    configs = [sample(problem, rng) for _ in range(200)]
    low = [problem.objective(c, 3, {})[0] for c in configs]
    top = [problem.true_value(c) for c in configs]
    assert spearmanr(low, top).statistic > 0.5


def test_crossing_curves_low_fidelity_ranks_backwards_until_the_curves_cross():
    problem = crossing_curves()
    rng = np.random.default_rng(3)
    configs = [sample(problem, rng) for _ in range(200)]
    top = [problem.true_value(c) for c in configs]
    at = {e: spearmanr([problem.objective(c, e, {})[0] for c in configs], top).statistic for e in (1, 3, 9, 27)}
    assert at[1] < -0.8 and at[3] < -0.7  # epochs 1 and 3 rank the best configurations last
    assert at[9] > 0.8 and at[27] == pytest.approx(1.0)  # by epoch 9 the curves have crossed
    best = min(configs, key=problem.true_value)
    assert problem.objective(best, 3, {})[0] > np.median([problem.objective(c, 3, {})[0] for c in configs])


@pytest.mark.parametrize("name", sorted(ALL))
def test_every_epoch_costs_time_and_regret_is_zero_at_the_optimiser(name):
    problem = ALL[name]()
    config = sample(problem, np.random.default_rng(4))
    state = {}
    for epoch in range(1, problem.max_epochs + 1):
        value, seconds = problem.objective(config, epoch, state)
        assert math.isfinite(value) and seconds > 0
    assert regret(problem, OPTIMISERS[name][0]) == pytest.approx(0.0, abs=1e-4)
    assert regret(problem, config) >= -1e-6


def test_counting_ones_sharpens_with_budget():
    problem = counting_ones()
    config = sample(problem, np.random.default_rng(5))
    truth = problem.true_value(config)
    low = [problem.objective(config, 1, {"rng": np.random.default_rng(i)})[0] for i in range(200)]
    top = [problem.objective(config, problem.max_epochs, {"rng": np.random.default_rng(i)})[0] for i in range(200)]
    assert abs(np.mean(top) - truth) < 0.05
    assert np.std(top) < np.std(low)


def test_mixed12_mixes_every_kind_and_its_choices_matter():
    problem = mixed12()
    kinds = {(item["type"], bool(item.get("log"))) for item in problem.search}
    assert {("float", True), ("float", False), ("int", True), ("int", False), ("enum", False)} <= kinds
    assert len(problem.search) >= 10
    best = OPTIMISERS["mixed12"][0]
    # another optimizer is worse even at its own best learning rate
    assert problem.true_value({**best, "optimizer": "sgd", "lr": 0.1}) > problem.optimum
    # the best learning rate moves with the batch size (half a decade per 10x)
    assert problem.true_value({**best, "batch_size": 512}) > problem.optimum
    assert problem.true_value({**best, "batch_size": 512, "lr": 10 ** (-2.7 + 0.5 * math.log10(8))}) == \
        pytest.approx(problem.optimum, abs=1e-9)


def test_the_parallel_benchmark_reads_a_trajectory_as_documented():
    from benchmarks.quality import regret_at, run_ours_traced, time_to_reach

    trace = [[10.0, 3.0], [20.0, 0.5], [30.0, 2.0], [40.0, 0.1]]  # a multi-fidelity pick may get worse
    assert regret_at(trace, 5.0) == math.inf and regret_at(trace, 20.0) == 0.5 and regret_at(trace, 35.0) == 2.0
    assert time_to_reach(trace, 1.0, 100.0) == 40.0  # reached at 20, lost at 30: from 40 on
    assert time_to_reach(trace, 1.0, 25.0) == 20.0 and time_to_reach(trace, 0.01, 100.0) == math.inf
    problem = augmented_branin()
    entry = run_ours_traced(problem, "asha", 0, 2 * 27.0, 8)
    assert entry["utilisation"] > 0.99 and entry["horizon"] == 54.0
    assert all(when <= 54.0 for when, _ in entry["trace"])
