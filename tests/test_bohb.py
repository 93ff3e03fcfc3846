"""BOHB: the unit-cube KDE (mass, peaks, categories, missing coordinates, sampling) and the
algorithm (random until a budget has enough results, the largest such budget, proposals
that concentrate where results were good, failures counted as bad, exact replays)."""
import math
from pathlib import Path

import numpy as np
import pytest

from automl_cli.algorithms import get_algorithm
from automl_cli.algorithms.proposers.base import Result
from automl_cli.algorithms.schedulers.hyperband import Rung
from automl_cli.algorithms.models.kde import UnitKDE
from automl_cli.errors import UsageError
from automl_cli.simulate import simulate
from automl_cli.space import parse_search_space

GRID = np.linspace(0.0, 1.0, 20001)


def integral(values):
    return float(np.trapezoid(values, GRID))


# -- the density -------------------------------------------------------------------------------

@pytest.mark.parametrize("data", [[0.5], [0.0, 0.02, 0.9], [0.3, 0.3, 0.3], [1.0, 0.97, 0.5, 0.51, 0.49]])
def test_a_numeric_density_integrates_to_one_on_the_unit_interval(data):
    kde = UnitKDE([0]).fit(np.array(data)[:, None])
    assert integral(np.exp(kde.log_pdf(GRID[:, None]))) == pytest.approx(1.0, abs=1e-3)


def test_a_mixed_density_sums_to_one_over_categories_and_the_interval():
    kde = UnitKDE([0, 3]).fit(np.array([[0.1, 1 / 6], [0.15, 0.5], [0.8, 0.5], [0.2, 5 / 6]]))
    total = sum(integral(np.exp(kde.log_pdf(np.column_stack([GRID, np.full_like(GRID, (k + 0.5) / 3)]))))
                for k in range(3))
    assert total == pytest.approx(1.0, abs=1e-3)


def test_the_density_peaks_near_the_data():
    rng = np.random.default_rng(0)
    kde = UnitKDE([0]).fit(np.clip(rng.normal(0.3, 0.05, size=(40, 1)), 0, 1))
    density = kde.log_pdf(GRID[:, None])
    assert abs(GRID[np.argmax(density)] - 0.3) < 0.05
    assert kde.log_pdf(np.array([0.3])) > kde.log_pdf(np.array([0.8])) + 5


def test_identical_points_get_the_minimum_bandwidth_not_zero():
    kde = UnitKDE([0, 4]).fit(np.array([[0.4, 0.375]] * 5))
    assert kde.bandwidths.tolist() == [1e-3, 1e-3]
    assert np.isfinite(kde.log_pdf(np.array([0.4, 0.375])))


def test_the_clip_keeps_numeric_bandwidths_from_collapsing_and_shrinks_with_more_points():
    clones = np.array([[0.4, 0.375]] * 4)
    kde = UnitKDE([0, 4], clip=1 / 3).fit(clones)
    assert kde.bandwidths[0] == pytest.approx(1 / (3 * 6))  # 4 points: 1 / (3 (4 + 2))
    assert kde.bandwidths[1] == 1e-3  # a choice's lambda is not clipped
    many = UnitKDE([0], clip=1 / 3).fit(np.full((500, 1), 0.4))
    assert many.bandwidths[0] == pytest.approx(1 / 300)  # min(100, N + 2) caps the divisor
    spread = UnitKDE([0], clip=1 / 3).fit(np.linspace(0, 1, 50)[:, None])
    assert spread.bandwidths[0] > 1 / (3 * 52)  # a wide sample keeps its reference-rule width


def test_aitchison_aitken_gives_the_data_category_the_most_mass_and_the_rest_alike():
    n = 4
    units = (np.array([2, 2, 2, 2, 1, 2, 0]) + 0.5) / n  # mostly category 2
    kde = UnitKDE([n]).fit(units[:, None])
    mass = np.exp(kde.log_pdf(((np.arange(n) + 0.5) / n)[:, None]))
    assert mass.sum() == pytest.approx(1.0)
    assert np.argmax(mass) == 2
    assert mass[3] < mass[1] and mass[3] < mass[0]  # never seen: only the kernel's spill-over
    # the order of categories means nothing: an unseen neighbour of 2 gets no more than an unseen far one
    lonely = UnitKDE([5]).fit(np.array([[0.5], [0.5], [0.5], [0.1]]))
    far, near = np.exp(lonely.log_pdf(np.array([[0.9], [0.7]])))
    assert far == pytest.approx(near)
    # any coordinate inside a category's cell means that category
    assert kde.log_pdf(np.array([0.51])) == pytest.approx(kde.log_pdf(np.array([0.74])))


def test_a_nan_coordinate_is_left_out_of_that_points_kernel():
    # one point without y: the density it adds does not depend on y
    only_x = UnitKDE([0, 0]).fit(np.array([[0.4, np.nan]]))
    assert only_x.log_pdf(np.array([0.4, 0.1])) == pytest.approx(only_x.log_pdf(np.array([0.4, 0.9])))
    assert integral(np.exp(only_x.log_pdf(np.column_stack([GRID, np.full_like(GRID, 0.3)])))) == pytest.approx(1, abs=1e-3)
    # a query without y gets the marginal over x: the integral of the joint over y
    kde = UnitKDE([0, 0]).fit(np.array([[0.2, 0.5], [0.6, 0.1], [0.3, np.nan], [0.25, 0.9]]))
    joint = np.exp(kde.log_pdf(np.column_stack([np.full_like(GRID, 0.25), GRID])))
    assert np.exp(kde.log_pdf(np.array([0.25, np.nan]))) == pytest.approx(integral(joint), rel=1e-3)
    # NaN never leaks into the bandwidth
    assert np.all(np.isfinite(kde.bandwidths))


def test_samples_stay_in_the_cube_follow_the_kernel_and_keep_nan():
    data = np.array([[0.0, 0.125, np.nan], [1.0, 0.875, 0.5], [0.999, 0.125, 0.2]])
    kde = UnitKDE([0, 4, 0]).fit(data)
    samples = kde.sample(np.random.default_rng(1), 5000, bandwidth_factor=50.0)
    finite = samples[~np.isnan(samples)]
    assert finite.min() >= 0.0 and finite.max() <= 1.0
    assert set(np.round(samples[:, 1] * 8).astype(int)) <= {1, 3, 5, 7}  # choices sit at cell centres
    assert np.isnan(samples[:, 2]).mean() == pytest.approx(1 / 3, abs=0.03)  # from the point without it

    one = UnitKDE([0, 3]).fit(np.array([[0.5, 0.5]]))
    one.bandwidths = np.array([0.02, 0.3])
    drawn = one.sample(np.random.default_rng(2), 20000, bandwidth_factor=2.0)
    assert np.std(drawn[:, 0]) == pytest.approx(0.04, rel=0.05)  # the widened Gaussian
    assert np.mean(drawn[:, 1] == 0.5) == pytest.approx(1 - 0.6, abs=0.02)  # kept with 1 - widened lambda
    assert np.mean(drawn[:, 1] == 0.5 / 3) == pytest.approx(0.3, abs=0.02)  # else another category, evenly


def test_sampling_repeats_with_the_same_generator():
    kde = UnitKDE([0, 3]).fit(np.array([[0.1, 0.5], [0.7, 0.2], [0.4, 0.9]]))
    a = kde.sample(np.random.default_rng(5), 50, 3.0)
    b = kde.sample(np.random.default_rng(5), 50, 3.0)
    assert np.array_equal(a, b)


# -- the algorithm ------------------------------------------------------------------------------

XY = [{"args": ["x"], "type": "float", "targets": [0, 1]}, {"args": ["y"], "type": "float", "targets": [0, 1]}]
OPTIMUM = np.array([0.3, 0.7])
HB = {"automl_R": 27, "automl_nu": 3, "epoch_multiplier": 1}


def bowl(config, epoch, state):
    """A quadratic bowl at OPTIMUM, blurred at low epochs by a decaying offset."""
    distance = (config["x"] - OPTIMUM[0]) ** 2 + (config["y"] - OPTIMUM[1]) ** 2
    return distance + 0.5 / epoch, 1.0


def first_rung_jobs(result):
    return [j for j in result.jobs if j["start_epoch"] == 0]


def notes(result):
    return [result.view.jobs[j["job_id"]].note for j in first_rung_jobs(result)]


def test_each_proposal_models_the_largest_budget_with_enough_results_known_when_its_job_starts():
    result = simulate("bohb", XY, bowl, max_epochs=27, n_workers=1, seed=0, params=HB)
    seen = {"random": 0, "model": 0}
    for job, note in zip(first_rung_jobs(result), notes(result)):
        # one worker: every job that ended before this one started is known to the model
        known = {}
        for other in result.jobs:
            if other["end_time"] is not None and other["end_time"] <= job["start_time"] and other is not job:
                known[other["stop_epoch"]] = known.get(other["stop_epoch"], 0) + 1
        # two parameters need 3 + 2 = 5 results; 15% of n (rounded down) are good, at least 3 in each set
        enough = [epochs for epochs, count in known.items() if count >= 5]
        if not enough:
            assert note.endswith(": new, random")
            seen["random"] += 1
        elif not note.endswith("random (random fraction)"):
            n = known[max(enough)]
            good, bad = max(3, 15 * n // 100), max(3, n - 15 * n // 100)
            assert note.endswith(f"new, KDE at {max(enough)} epochs from {good} good vs {bad} bad")
            seen["model"] += 1
    # the first five jobs of bracket 1 are random; the sixth already models the five 1-epoch results
    assert seen["random"] == 5 and seen["model"] >= 20  # of 42 first-rung jobs, a third random by design


def test_model_proposals_concentrate_near_the_optimum_where_random_ones_do_not():
    result = simulate("bohb", XY, bowl, max_epochs=27, n_workers=2, seed=3,  # enough random ones to compare
                      params={**HB, "automl_hyperband_iterations": 3, "automl_random_fraction": 1 / 3})
    near = {"model": [], "random": []}
    for job, note in zip(first_rung_jobs(result), notes(result)):
        point = np.array([job["config"]["x"], job["config"]["y"]])
        near["model" if "KDE" in note else "random"].append(np.linalg.norm(point - OPTIMUM) < 0.15)
    model, rand = np.mean(near["model"]), np.mean(near["random"])
    print(f"within 0.15 of the optimum: model {model:.0%} of {len(near['model'])}, "
          f"random {rand:.0%} of {len(near['random'])}")
    assert len(near["model"]) >= 40 and len(near["random"]) >= 40
    assert rand < 0.15  # pi * 0.15^2 = 7% of the square
    assert model > 0.5 and model > 3 * rand


def test_the_same_seed_gives_the_same_jobs_and_another_seed_does_not():
    def run(seed):
        result = simulate("bohb", XY, bowl, max_epochs=27, n_workers=3, seed=seed,
                          params={**HB, "automl_hyperband_iterations": 2})
        return [(j["trial_id"], j["params"], j["start_epoch"], j["stop_epoch"], result.view.jobs[j["job_id"]].note)
                for j in result.jobs]

    first = run(7)
    assert any("KDE" in job[-1] for job in first)
    assert run(7) == first
    assert run(8) != first


MIXED = [{"args": ["opt"], "type": "enum", "targets": ["adam", "sgd", "rmsprop"]},
         {"args": ["momentum"], "type": "float", "targets": [0.5, 0.99], "condition": {"param": "opt", "in": ["sgd"]}},
         {"args": ["lr"], "type": "float", "targets": [1e-5, 1e-1], "log": True},
         {"args": ["depth"], "type": "int", "targets": [1, 9], "step": 2},
         {"args": ["width"], "type": "int", "targets": [16, 512], "log": True}]


def mixed_space():
    template = {"opt": None, "momentum": None, "lr": None, "depth": None, "width": None}
    return parse_search_space({**template, "search": MIXED}, Path("<test>"))


def mixed_loss(config, epoch, state):
    """Best: sgd, momentum 0.9, lr 1e-3, depth 5, width 128."""
    loss = abs(math.log10(config["lr"]) + 3) + abs(config["depth"] - 5) / 4 + abs(math.log2(config["width"] / 128)) / 3
    loss += {"adam": 0.5, "sgd": abs((config["momentum"] or 0.0) - 0.9), "rmsprop": 1.0}[config["opt"]]
    return loss + 1.0 / epoch, 1.0


def test_enum_int_log_and_conditional_spaces_give_valid_configurations_from_the_model():
    space = mixed_space()
    result = simulate("bohb", MIXED, mixed_loss, max_epochs=27, n_workers=2, seed=1,
                      params={**HB, "automl_hyperband_iterations": 2})
    for job in result.jobs:
        assert space.contains(job["params"]), job["params"]
    model_made = [j for j, n in zip(first_rung_jobs(result), notes(result)) if "KDE" in n]
    assert len(model_made) >= 20
    assert {j["config"]["opt"] for j in model_made} >= {"sgd"}
    assert any(j["config"]["momentum"] is not None for j in model_made)  # the conditional one too


def observe(algo, trial, rung, loss):
    """A result at `rung` as the hyperband scheduler hands it to its proposer."""
    algo.proposer.observe(Result(trial, algo.trials[trial], rung.epochs, loss, "completed" if loss is not None
                                 else "failed", rung))


def test_failed_jobs_count_among_the_bad_configurations():
    algo = get_algorithm("bohb")(mixed_space(), max_epochs=9, seed=0,
                                 params={"automl_R": 9, "epoch_multiplier": 1, "automl_min_points_in_model": 2})
    rung = Rung(9, 9, 9)
    rng = np.random.default_rng(0)
    for i in range(10):
        trial = algo.add_trial(algo.space.sample(rng))
        observe(algo, trial, rung, None if i < 4 else float(i))
    assert algo.proposer.model_budget() == 9
    model = algo.proposer._fit()
    # 10 results: good = max(2, 1) = 2 best, bad = max(2, 9) = 9 worst, which holds all four failures
    assert (model.n_good, model.n_bad) == (2, 9)
    failed_points = [algo.space.to_units(algo.trials[t]) for t in range(1, 5)]
    bad = [tuple(np.nan_to_num(p, nan=-1)) for p in model.bad.data]
    good = [tuple(np.nan_to_num(p, nan=-1)) for p in model.good.data]
    for point in failed_points:
        assert tuple(np.nan_to_num(point, nan=-1)) in bad
        assert tuple(np.nan_to_num(point, nan=-1)) not in good


def test_bohb_proposals_around_clustered_good_results_still_move():
    # the good results sit within 1e-4 of each other: the paper's 1e-3 floor would draw
    # every candidate within ~0.003 of them; the clip lets proposals move
    space = parse_search_space({"x": 0, "search": XY[:1]}, Path("t"))
    algo = get_algorithm("bohb")(space, max_epochs=9, seed=0,
                                 params={"automl_R": 9, "epoch_multiplier": 1, "automl_random_fraction": 0.0})
    rung = Rung(9, 9, 9)
    for i, x in enumerate([0.5, 0.5001, 0.5002, 0.1, 0.9, 0.2, 0.8, 0.3]):
        trial = algo.add_trial({"x": x})
        observe(algo, trial, rung, float(i))
    model = algo.proposer._fit()
    assert model.n_good == 2 and model.good.bandwidths[0] == pytest.approx(1 / (3 * 4))
    picks = [algo.proposer._best_candidate(model)[0] for _ in range(30)]
    assert max(abs(p - 0.5) for p in picks) > 0.01


def test_the_largest_budget_with_enough_results_wins_and_a_thin_top_budget_is_skipped():
    algo = get_algorithm("bohb")(parse_search_space({"x": 0, "y": 0, "search": XY}, Path("t")), max_epochs=9,
                                 seed=0, params={"automl_R": 9, "epoch_multiplier": 1})
    rng = np.random.default_rng(0)

    def add(epochs, count):
        for _ in range(count):
            observe(algo, algo.add_trial(algo.space.sample(rng)), Rung(1, epochs, epochs), float(rng.random()))

    assert algo.proposer.model_budget() is None
    add(1, 4)
    assert algo.proposer.model_budget() is None  # 2 parameters: 3 + 2 = 5 needed
    add(1, 1)
    assert algo.proposer.model_budget() == 1
    add(9, 4)
    add(3, 5)
    assert algo.proposer.model_budget() == 3
    add(9, 1)
    assert algo.proposer.model_budget() == 9


def test_parameters_are_checked_and_explained():
    space = parse_search_space({"x": 0, "y": 0, "search": XY}, Path("t"))
    cls = get_algorithm("bohb")
    for bad in ({"automl_top_n_percent": 100}, {"automl_random_fraction": 1.5}, {"automl_bandwidth_factor": 0.5},
                {"automl_kde_samples": 0}):
        with pytest.raises(UsageError):
            cls(space, max_epochs=27, params=bad)
    lines = cls(space, max_epochs=27, params=HB).explain()
    assert lines[0].startswith("hyperband R=27 nu=3")
    assert "at least 3 per density (auto: parameters + 1)" in lines[-1] and "64 candidates" in lines[-1]


def test_an_all_random_fraction_never_uses_the_model():
    result = simulate("bohb", XY, bowl, max_epochs=27, n_workers=1, seed=0, params={**HB, "automl_random_fraction": 1.0})
    assert not any("KDE" in n for n in notes(result))
