"""Bayesian optimisation: a Gaussian-process model of the loss and log expected improvement.

The first few configurations are a scrambled Sobol design (the GP needs points to stand on,
and Sobol points cover the space evenly where random ones clump); each later one
maximises log EI over the unit-cube encoding of the space (log ranges in log scale, enums
one-hot), by gradient from the best of many candidates (models/acquisition.py). The GP's
hyperparameters are refitted (MAP, models/gp.py) at every proposal while there are few
points, and then as the data grows by a fifth. Jobs still running are pending points: the
model is told its own prediction there ("kriging believer"), which flattens the
improvement around them, so parallel workers are not handed the same idea twice; where
it predicts a loss below the best, that believed loss is the one to beat (else the
believed point would keep its own improvement, and the next worker would be sent next
to it). Failed jobs are left out of the model: a made-up penalty would bend it.

In a multi-fidelity scheduler (Hyperband, ASHA) results come at several budgets; the GP
models the largest budget holding at least as many finite results as the initial design
(else the one holding the most, once it has two), as BOHB's KDE models the largest budget
with enough results, and its hyperparameters are refitted when that budget changes. With
full trainings there is one budget, and this is the `bayesian` preset unchanged.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from ..base import config_key
from ..catalogue import PROPOSERS, initial_design
from .base import Proposer, Result

if TYPE_CHECKING:
    from ..models.gp import GP

# The GP machinery (torch, scipy.stats) is imported where it is first used, not here: a run
# of hyperband or asha loads this module too (presets.py names every proposer) and should
# not wait seconds for torch it never uses.

_FIT_POINTS = 300  # beyond this, the model sees the best and a sample of the rest (cubic cost)
_REFIT_EVERY_STEP = 60  # below this many points the hyperparameters are refitted at each step
_HYPER_SAMPLES = 7  # hyperparameter draws beside the MAP fit, for the acquisition's average
_SAMPLED_UP_TO = 150  # with more points than this the data pins the hyperparameters down: the MAP fit alone


class GPModel(Proposer):
    """What the gp and gp_batch proposers share: the data, the model, the initial design."""

    parameters = PROPOSERS["gp"].parameters

    def __init__(self, space, rng, params, **kwargs):
        super().__init__(space, rng, params, **kwargs)
        self.n_initial, self.initial_why = initial_design(len(space), self.planned, self.params["automl_initial_random"])
        self.proposed: list[dict[str, Any]] = []  # every configuration proposed or adopted, in order
        self.results: list[tuple[int, dict[str, Any], float]] = []  # (epochs, config, loss), finite, as they came
        self.theta = None  # the last fitted hyperparameters, reused until the data has grown enough
        self.theta_points = 0
        self.theta_epochs: int | None = None  # the budget they were fitted at
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

    def added(self, trial_id: int, params: dict[str, Any]) -> None:
        self.proposed.append(params)

    def observe(self, result: Result) -> None:
        # failures are left out (a made-up penalty would bend the model), and so are jobs
        # stopped early: their loss is from fewer epochs than their budget
        if result.status == "completed" and result.loss is not None and math.isfinite(result.loss):
            self.results.append((result.epochs, result.params, float(result.loss)))

    def model_budget(self) -> int | None:
        """The budget the GP models: the largest with as many results as the initial design,
        else the one with the most (the larger on a tie) once it has two; None before."""
        counts: dict[int, int] = {}
        for epochs, _, _ in self.results:
            counts[epochs] = counts.get(epochs, 0) + 1
        enough = [e for e, n in counts.items() if n >= self.n_initial]
        if enough:
            return max(enough)
        most = max(counts.items(), key=lambda item: (item[1], item[0]), default=None)
        return most[0] if most is not None and most[1] >= 2 else None

    def observations(self) -> tuple[list[dict[str, Any]], np.ndarray, int | None]:
        epochs = self.model_budget()
        done = [(config, loss) for e, config, loss in self.results if e == epochs]
        return [c for c, _ in done], np.array([loss for _, loss in done], dtype=float), epochs

    def model(self, configs: list[dict], losses: np.ndarray, epochs: int | None = None) -> GP:
        from ..models.gp import GP

        x = np.array([self.space.encode(c) for c in configs])
        if len(losses) > _FIT_POINTS:  # keep the best and a random sample of the rest
            order = np.argsort(losses)
            keep = np.concatenate([order[:_FIT_POINTS // 3],
                                   self.rng.choice(order[_FIT_POINTS // 3:], _FIT_POINTS - _FIT_POINTS // 3,
                                                   replace=False)])
            x, losses = x[keep], losses[keep]
        # hyperparameters fitted at another budget are a poor start for this one's losses
        same_budget = epochs == self.theta_epochs
        stale = (self.theta is None or len(losses) < _REFIT_EVERY_STEP or len(losses) >= 1.2 * self.theta_points
                 or not same_budget)
        if stale:
            gp = GP.fit(x, losses, start=self.theta if same_budget else None)
            self.theta, self.theta_points, self.theta_epochs = gp.theta, len(losses), epochs
            return gp
        return GP(x, losses, self.theta)

    def plausible(self, gp: GP) -> list[GP]:
        """The MAP fit and, while the data is few, fits under hyperparameters drawn from their
        posterior: the acquisition averages over them. One MAP fit can be sure of itself too
        early: on Branin one seed spent 27 of its 40 trainings within 0.003 of a point on a
        bound of the space, the fit's length scales telling it nothing better was near
        (benchmarks/QUALITY.md)."""
        if len(gp.z) > _SAMPLED_UP_TO:
            return [gp]
        return [gp] + [gp.with_theta(theta) for theta in gp.posterior_samples(self.rng, _HYPER_SAMPLES)]

    def adopt(self, trial_id: int, params: dict[str, Any]) -> None:
        """A trial of a rebuilt run: an initial-design one takes its Sobol point's turn."""
        self.proposed.append(params)
        if len(self.proposed) <= self.n_initial:
            self.sobol.fast_forward(1)

    def explain(self) -> list[str]:
        of = f"{self.planned} configurations" if self.planned is not None else "an open number of configurations"
        return [f"initial design: {self.n_initial} Sobol points of {of} ({self.initial_why})"]

    def seen(self) -> set[str]:
        return {config_key(c) for c in self.proposed}

    @staticmethod
    def on_budget(epochs: int | None, asked: int) -> str:
        """Which budget the model stands on, when it is not the one a job is asked to train to."""
        return "" if epochs is None or epochs == asked else f" (GP of the {epochs}-epoch results)"

    def believer_choice(self, models: list[GP], configs: list[dict], losses: np.ndarray, around: list[dict],
                        taken: set[str]) -> tuple[dict[str, Any], float] | None:
        """The configuration (not in `taken`) with the highest log EI averaged over `models`,
        each told its own prediction at `around` (the configurations running or already
        chosen: kriging believer), and that value; None when every candidate was tried."""
        from ..models.acquisition import maximize
        from ..models.gp import GPEnsemble, believe

        models, best = believe(models, np.array([self.space.encode(c) for c in around]), float(losses.min()))
        ensemble = GPEnsemble(models)
        anchors = [configs[i] for i in np.argsort(losses)[:5]]
        return maximize(ensemble.log_ei(best), self.space, self.rng, anchors=anchors, seen=taken,
                        mean=ensemble.mean())


class GPProposer(GPModel):
    name = "gp"

    def propose(self, epochs: int, pending: list[dict[str, Any]], bracket=None) -> tuple[dict, str]:
        if len(self.proposed) < self.n_initial:
            return self.initial_point(self.seen())
        configs, losses, budget = self.observations()
        if len(losses) < 2:
            return self.space.sample(self.rng), "random (too few finished jobs for the GP)"
        models = self.plausible(self.model(configs, losses, budget))
        found = self.believer_choice(models, configs, losses, pending, self.seen())
        if found is None:
            return self.space.sample(self.rng), "random (every candidate was already tried)"
        config, value = found
        return config, (f"GP log expected improvement {value:.3g}" + (f" ({len(pending)} pending)" if pending else "")
                        + self.on_budget(budget, epochs))
