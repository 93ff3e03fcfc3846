"""Gaussian-process surrogate and expected improvement, on points of the unit cube.

scikit-learn fits the GP (Matern 5/2 with one length scale per coordinate, plus a noise
term, hyperparameters by maximum likelihood with restarts); this module adds what a search
needs around it: losses standardised before fitting, and expected improvement in closed
form.
"""
from __future__ import annotations

import warnings

import numpy as np
from scipy.stats import norm
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel


def fit_gp(x: np.ndarray, y: np.ndarray, seed: int, kernel=None) -> GaussianProcessRegressor:
    """A GP of losses `y` at unit-cube points `x` (rows). Given the `kernel_` of an earlier
    fit, its hyperparameters are kept and only the linear algebra is redone: maximising the
    likelihood costs far more than one solve once there are hundreds of points."""
    dims = x.shape[1]
    if kernel is None:
        kernel = (ConstantKernel(1.0, (1e-3, 1e3))
                  * Matern(length_scale=np.full(dims, 0.5), length_scale_bounds=(1e-2, 1e2), nu=2.5)
                  + WhiteKernel(1e-3, (1e-6, 1e-1)))
        gp = GaussianProcessRegressor(kernel=kernel, normalize_y=True, n_restarts_optimizer=3, random_state=seed)
    else:
        gp = GaussianProcessRegressor(kernel=kernel, normalize_y=True, optimizer=None)
    with warnings.catch_warnings():
        # a length scale at its bound is normal with few points; it is not an error
        warnings.simplefilter("ignore", ConvergenceWarning)
        gp.fit(x, y)
    return gp


def expected_improvement(gp: GaussianProcessRegressor, x: np.ndarray, best: float, xi: float = 0.0) -> np.ndarray:
    """E[max(best - f(x) - xi, 0)] under the GP, for minimisation; `xi` is in loss units."""
    mean, std = gp.predict(x, return_std=True)
    std = np.maximum(std, 1e-12)
    gain = best - mean - xi
    z = gain / std
    return gain * norm.cdf(z) + std * norm.pdf(z)
