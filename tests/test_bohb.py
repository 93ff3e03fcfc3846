"""BOHB: the unit-cube KDE (mass, peaks, categories, missing coordinates, sampling) and the
algorithm (random until a budget has enough results, the largest such budget, proposals
that concentrate where results were good, failures counted as bad, exact replays)."""
import math
from pathlib import Path

import numpy as np
import pytest

from automl_cli.algorithms import get_algorithm
from automl_cli.algorithms.brackets import Rung
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
