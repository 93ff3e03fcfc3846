"""Bayesian optimisation: a Gaussian-process surrogate of the loss and expected improvement.

The first few configurations are random (the GP needs points to stand on); each later one
maximises expected improvement over the unit-cube encoding of the space (log ranges in log
scale, enums one-hot). Jobs still running count as pending points whose loss is assumed to
be the best seen so far ("constant liar"), so parallel workers are not handed the same
idea twice. Failed jobs are left out of the model: a made-up penalty would bend it.
"""
from __future__ import annotations

import json

import numpy as np

from .base import FullTrainings, ParamSpec, register
from .models.gp import expected_improvement, fit_gp

_RANDOM_CANDIDATES = 1000
_KERNEL_FIT_POINTS = 200  # kernel hyperparameters are fitted on at most this many points
_LOCAL_CANDIDATES = 100  # around each of the best few points, then again around the best candidates


@register
class BayesianSearch(FullTrainings):
    name = "bayesian"
    summary = "Gaussian process (Matern 5/2, ARD) + expected improvement, one config at a time, full training each"
    parameters = {
        "automl_max_recommendations": ParamSpec(20, "configurations to train", minimum=1),
        "automl_initial_random": ParamSpec(0, "random configurations before the GP leads (0: picked from the space's size)",
                                           minimum=0),
    }

    def __init__(self, space, **kwargs):
        super().__init__(space, **kwargs)
        auto = min(10, max(3, len(space) + 2))
        self.n_initial = min(self.book.budget, self.params["automl_initial_random"] or auto)
        self.kernel = None  # the last fitted kernel, reused until the data has grown enough
        self.kernel_fitted_on = 0

    def next_config(self) -> tuple[dict, str]:
        if len(self.book.proposed) < self.n_initial:
            return self.space.sample(self.rng), "initial random design"
        return self._propose()

    def _propose(self) -> tuple[dict, str]:
        done = [(tid, loss) for tid, loss in self.book.losses.items() if loss is not None and np.isfinite(loss)]
        if len(done) < 2:
            return self.space.sample(self.rng), "random (too few finished jobs for the GP)"
        configs = [self.book.proposed[tid - 1] for tid, _ in done]
        losses = np.array([loss for _, loss in done], dtype=float)
        pending = [self.book.proposed[tid - 1] for tid in sorted(self.book.running)]
        x = np.array([self.space.encode(c) for c in configs + pending])
        y = np.concatenate([losses, np.full(len(pending), losses.min())])
        seed = int(self.rng.integers(2**31 - 1))
        if self.kernel is None or len(done) >= max(self.kernel_fitted_on + 10, 1.2 * self.kernel_fitted_on):
            # the likelihood search is cubic in the points: fit the kernel on a sample of them
            sample = self.rng.permutation(len(y))[:_KERNEL_FIT_POINTS]
            self.kernel, self.kernel_fitted_on = fit_gp(x[sample], y[sample], seed=seed).kernel_, len(done)
        gp = fit_gp(x, y, seed=seed, kernel=self.kernel)

        best, xi = float(losses.min()), 0.01 * float(np.std(losses) or 1.0)
        ranked = np.argsort(losses)[:5]
        candidates = [self.space.sample(self.rng) for _ in range(_RANDOM_CANDIDATES)]
        for i in ranked:
            candidates += [self.space.perturb(configs[i], self.rng, 0.1, 0.2) for _ in range(_LOCAL_CANDIDATES // 5)]
        ei = expected_improvement(gp, np.array([self.space.encode(c) for c in candidates]), best, xi)
        # refine: look closer around the most promising candidates
        top = np.argsort(-ei)[:10]
        refined = [self.space.perturb(candidates[i], self.rng, 0.02, 0.05)
                   for i in top for _ in range(_LOCAL_CANDIDATES // 10)]
        candidates += refined
        ei = np.concatenate([ei, expected_improvement(gp, np.array([self.space.encode(c) for c in refined]), best, xi)])

        seen = {_key(c) for c in self.book.proposed}
        for i in np.argsort(-ei):
            if _key(candidates[i]) not in seen:
                return candidates[i], f"GP expected improvement {ei[i]:.3g}"
        return self.space.sample(self.rng), "random (every candidate was already tried)"


def _key(params: dict) -> str:
    return json.dumps(params, sort_keys=True)
