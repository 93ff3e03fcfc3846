"""Bayesian optimisation: a Gaussian-process model of the loss and log expected improvement.

The first few configurations are a scrambled Sobol design (the GP needs points to stand on,
and Sobol points cover the space evenly where random ones clump); each later one
maximises log EI over the unit-cube encoding of the space (log ranges in log scale, enums
one-hot), by gradient from the best of many candidates (models/acquisition.py). The GP's
hyperparameters are refitted (MAP, models/gp.py) at every proposal while there are few
points, and then as the data grows by a fifth. Jobs still running are pending points: the
model is told its own prediction there ("kriging believer"), which flattens the
improvement around them, so parallel workers are not handed the same idea twice. Failed
jobs are left out of the model: a made-up penalty would bend it.
"""
from __future__ import annotations

from typing import Any

from typing import TYPE_CHECKING

import numpy as np

from .base import FullTrainings, ParamSpec, config_key, register

if TYPE_CHECKING:
    from .models.gp import GP

# The GP machinery (torch, scipy.stats) is imported where it is first used, not here: every
# command loads the algorithm registry, and `automl status` should not wait seconds for torch.

_FIT_POINTS = 300  # beyond this, the model sees the best and a sample of the rest (cubic cost)
_REFIT_EVERY_STEP = 60  # below this many points the hyperparameters are refitted at each step


class GPSearch(FullTrainings):
    """What bayesian and bfbo share: the data, the model, the initial design."""

    parameters = {
        "automl_max_recommendations": ParamSpec(20, "configurations to train", minimum=1),
        "automl_initial_random": ParamSpec(0, "configurations of the initial (Sobol) design before the GP "
                                              "leads (0: picked from the space's size)", minimum=0),
    }

    def __init__(self, space, **kwargs):
        super().__init__(space, **kwargs)
        auto = min(10, max(3, len(space) + 2))
        self.n_initial = min(self.book.budget, self.params["automl_initial_random"] or auto)
        self.theta = None  # the last fitted hyperparameters, reused until the data has grown enough
        self.theta_points = 0
        from scipy.stats import qmc

        # one scrambled Sobol sequence for the initial design, seeded from the run's generator so it replays
        self.sobol = qmc.Sobol(d=len(space), scramble=True, seed=int(self.rng.integers(2 ** 31)))

    def initial_point(self, taken: set[str]) -> tuple[dict[str, Any], str]:
        """The next point of the Sobol design (even cover of the space; random points clump)."""
        for _ in range(100):  # an enum-only space repeats Sobol cells; skip configurations already run
            config = self.space.from_units(self.sobol.random(1)[0], self.rng)
            if config_key(config) not in taken:
                return config, "initial design (Sobol)"
        return self.space.sample(self.rng), "initial design (random: the Sobol cells were all taken)"

    def observations(self) -> tuple[list[dict[str, Any]], np.ndarray]:
        done = [(tid, loss) for tid, loss in self.book.losses.items() if loss is not None and np.isfinite(loss)]
        configs = [self.book.proposed[tid - 1] for tid, _ in done]
        return configs, np.array([loss for _, loss in done], dtype=float)

    def model(self, configs: list[dict], losses: np.ndarray) -> GP:
        from .models.gp import GP

        x = np.array([self.space.encode(c) for c in configs])
        if len(losses) > _FIT_POINTS:  # keep the best and a random sample of the rest
            order = np.argsort(losses)
            keep = np.concatenate([order[:_FIT_POINTS // 3],
                                   self.rng.choice(order[_FIT_POINTS // 3:], _FIT_POINTS - _FIT_POINTS // 3,
                                                   replace=False)])
            x, losses = x[keep], losses[keep]
        stale = self.theta is None or len(losses) < _REFIT_EVERY_STEP or len(losses) >= 1.2 * self.theta_points
        if stale:
            gp = GP.fit(x, losses, start=self.theta)
            self.theta, self.theta_points = gp.theta, len(losses)
            return gp
        return GP(x, losses, self.theta)

    def adopt(self, request) -> None:
        """A trial of a rebuilt run: an initial-design one takes its Sobol point's turn."""
        super().adopt(request)
        if len(self.book.proposed) <= self.n_initial:
            self.sobol.fast_forward(1)

    def pending(self) -> list[dict[str, Any]]:
        return [self.book.proposed[tid - 1] for tid in sorted(self.book.running)]

    def seen(self) -> set[str]:
        return {config_key(c) for c in self.book.proposed}


@register
class BayesianSearch(GPSearch):
    name = "bayesian"
    summary = "Gaussian process (Matern 5/2, ARD, MAP) + log expected improvement, one config at a time, full training each"

    def next_config(self) -> tuple[dict, str]:
        from .models.acquisition import maximize
        from .models.gp import log_expected_improvement

        if len(self.book.proposed) < self.n_initial:
            return self.initial_point(self.seen())
        configs, losses = self.observations()
        if len(losses) < 2:
            return self.space.sample(self.rng), "random (too few finished jobs for the GP)"
        gp = self.model(configs, losses)
        pending = self.pending()
        if pending:
            gp = gp.with_fantasies(np.array([self.space.encode(c) for c in pending]))
        best = float(losses.min())
        anchors = [configs[i] for i in np.argsort(losses)[:5]]
        found = maximize(lambda x: log_expected_improvement(*gp.predict(x), best), self.space, self.rng,
                         anchors=anchors, seen=self.seen())
        if found is None:
            return self.space.sample(self.rng), "random (every candidate was already tried)"
        config, value = found
        return config, f"GP log expected improvement {value:.3g}" + (f" ({len(pending)} pending)" if pending else "")
