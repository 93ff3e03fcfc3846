"""The GP's hyperparameter samples and the acquisition averaged over them."""
import math

import numpy as np
import torch

from automl_cli.algorithms.models.gp import _NOISE_BOUNDS, GP, GPEnsemble, log_expected_improvement

from test_algorithms import branin


def _data(n, seed=0, dims=3):
    rng = np.random.default_rng(seed)
    x = rng.random((n, dims))
    return x, np.sum((x - 0.3) ** 2, axis=1) + np.sin(6 * x[:, 0])


def _log_length_spread(n):
    x, y = _data(n)
    gp = GP.fit(x, y)
    samples = np.array(gp.posterior_samples(np.random.default_rng(1), 200))
    return samples[:, :x.shape[1]].std(axis=0).mean()


def test_length_scale_samples_are_wide_with_few_points_and_narrow_with_many():
    few, many = _log_length_spread(6), _log_length_spread(80)
    assert few > 2 * many
    assert many > 0.01  # samples, not copies of the fit


def test_samples_centre_on_the_fit_and_keep_a_coordinate_at_its_bound_fixed():
    x, y = _data(30)
    fitted = GP.fit(x, y)
    samples = np.array(fitted.posterior_samples(np.random.default_rng(2), 400))
    assert np.allclose(np.median(samples, axis=0), fitted.theta, atol=0.15)
    # the noise at its floor (as on a noiseless benchmark): held there, the rest still drawn
    floor = np.log(_NOISE_BOUNDS[0])
    at_floor = fitted.with_theta(np.concatenate([fitted.theta[:-1], [floor]]))
    samples = np.array(at_floor.posterior_samples(np.random.default_rng(2), 50))
    assert np.allclose(samples[:, -1], floor)
    assert samples[:, 0].std() > 0.01


def test_the_averaged_acquisition_is_the_log_of_the_mean_improvement_over_the_samples():
    rng = np.random.default_rng(3)
    x, y = _data(25)
    gp = GP.fit(x, y)
    pending = rng.random((2, 3))
    models = [m.with_fantasies(pending) for m in [gp] + [gp.with_theta(t) for t in gp.posterior_samples(rng, 5)]]
    query = torch.as_tensor(rng.random((9, 3)))
    each = torch.stack([log_expected_improvement(*m.predict(query), y.min()) for m in models])
    expected = torch.log(torch.exp(each).mean(0))
    assert torch.allclose(GPEnsemble(models).log_ei(y.min())(query), expected, atol=1e-8)
    means, stds = GPEnsemble(models).predict(query)
    for k, m in enumerate(models):
        mean, std = m.predict(query)
        assert torch.allclose(means[k], mean) and torch.allclose(stds[k], std)


def test_noiseless_losses_are_modelled_as_noiseless_even_where_they_span_a_wide_range():
    # Branin's losses span 0.4-300; late in a search most points sit near a minimum and
    # differ by far less than 1e-3 of that spread. A noise floor of 1e-6 of the variance (a
    # noise of 1e-3 of the spread) blurred the model there; the fit must take the data as
    # exact, as it is.
    rng = np.random.default_rng(3)
    minimum = np.array([(math.pi + 5) / 15, 2.275 / 15])
    x = np.concatenate([rng.random((15, 2)), np.clip(minimum + 0.03 * rng.standard_normal((25, 2)), 0, 1)])
    y = np.array([branin({"x1": 15 * a - 5, "x2": 15 * b}) for a, b in x])
    gp = GP.fit(x, y)
    assert float(gp.noise) < 1e-7
    with torch.no_grad():
        mean, _ = gp.predict(x)
    assert np.abs(mean.numpy() - y).max() < 1e-4 * y.std()
