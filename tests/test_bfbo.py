"""bfbo: a Sobol start that fills the workers, then batches whose members believe the ones before them."""
import pytest
import numpy as np
import torch

from automl_cli.algorithms import get_algorithm
from automl_cli.algorithms.base import Outcome
from automl_cli.algorithms.models.gp import GP, GPEnsemble, believe

from test_algorithms import BRANIN_SPACE, branin, drive


def bfbo(seed=0, budget=24, **params):
    return get_algorithm("bfbo")(BRANIN_SPACE, max_epochs=1, seed=seed,
                                 params={"automl_max_recommendations": budget, **params})


def finish(algo, batch, job=0):
    for job, request in enumerate(batch, start=job + 1):
        algo.on_finished(Outcome(request.trial_id, job, "completed", branin(request.params), 1))


def test_the_first_batch_is_a_sobol_design_that_fills_every_worker():
    algo = bfbo(automl_initial_random=8)
    batch = algo.suggest(8)
    assert len(batch) == 8 and all("Sobol" in r.note for r in batch)
    units = np.array([BRANIN_SPACE.to_units(r.params) for r in batch])
    # 8 Sobol points put exactly one point in each of the 8 slices of every axis; random points rarely do
    for axis in range(2):
        assert sorted(np.floor(units[:, axis] * 8).astype(int).tolist()) == list(range(8))


def test_bayesian_starts_from_the_same_kind_of_sobol_design_one_point_at_a_time():
    algo = get_algorithm("bayesian")(BRANIN_SPACE, max_epochs=1, seed=0,
                                     params={"automl_max_recommendations": 20, "automl_initial_random": 8})
    batch = [algo.suggest(1)[0] for _ in range(8)]
    assert all("Sobol" in r.note for r in batch)
    units = np.array([BRANIN_SPACE.to_units(r.params) for r in batch])
    for axis in range(2):
        assert sorted(np.floor(units[:, axis] * 8).astype(int).tolist()) == list(range(8))


def test_a_model_batch_is_diverse_and_each_member_says_what_it_believed():
    algo = bfbo(automl_initial_random=6)
    finish(algo, algo.suggest(6))
    batch = algo.suggest(4)
    assert [r.note.split(":")[0] for r in batch] == [f"batch member {i}/4" for i in range(1, 5)]
    assert "believing" not in batch[0].note and "believing 3 running or chosen" in batch[3].note
    units = np.array([BRANIN_SPACE.to_units(r.params) for r in batch])
    gaps = [np.linalg.norm(units[i] - units[j]) for i in range(4) for j in range(i)]
    assert min(gaps) > 0.02  # without the beliefs log EI would put all four on one peak


def test_a_believed_point_spends_the_improvement_there_and_the_best_to_beat_is_the_belief():
    rng = np.random.default_rng(0)
    x = rng.random((12, 2))
    y = ((x - 0.3) ** 2).sum(1)
    gp = GP.fit(x, y)
    best = float(y.min())
    plain = GPEnsemble([gp]).log_ei(best)
    grid = torch.as_tensor(np.stack(np.meshgrid(np.linspace(0, 1, 41), np.linspace(0, 1, 41)), -1).reshape(-1, 2))
    chosen = grid[int(plain(grid).argmax())][None].numpy()  # the first member: log EI's peak
    models, bests = believe([gp], chosen, best)
    believed = GPEnsemble(models).log_ei(bests)
    at = torch.as_tensor(chosen)
    assert float(believed(at)) < float(plain(at)) - 1  # little left to gain where it believes the mean
    assert np.linalg.norm(grid[int(believed(grid).argmax())].numpy() - chosen) > 0.02  # the peak moves on
    # the model predicts a loss below the best there: that believed loss is the one to beat
    mean_there = float(gp.predict(at)[0])
    assert mean_there < best and bests == [pytest.approx(mean_there, abs=1e-9)]
    assert torch.allclose(models[0].predict(torch.as_tensor(x))[0], gp.predict(torch.as_tensor(x))[0],
                          atol=1e-3 * float(np.ptp(y)))


def test_batches_of_four_find_branins_minimum_about_as_well_as_one_at_a_time():
    seeds = range(4)
    batched = [drive("bfbo", BRANIN_SPACE, branin, s, budget=24, workers=4)[1] for s in seeds]
    rand = [drive("random", BRANIN_SPACE, branin, s, budget=24, workers=4)[1] for s in seeds]
    assert np.median(batched) < np.median(rand)
    assert np.median(batched) < 0.6  # global minimum 0.398


def test_the_gp_expects_the_worst_seen_where_it_has_no_data():
    """The prior mean is the worst loss seen: far from every point the model predicts that,
    not the average, so expected improvement is not drawn to the corners of the cube."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0.3, 0.5, size=(12, 6))  # every point in one small box
    y = np.sum((x - 0.4) ** 2, axis=1) + rng.uniform(0, 1, size=12)
    gp = GP.fit(x, y)
    mean, std = gp.predict(np.ones((1, 6)))  # a corner, far from the data
    assert float(mean[0]) == pytest.approx(y.max(), rel=0.02)
    near, _ = gp.predict(x[:1])
    assert float(near[0]) < y.max()
