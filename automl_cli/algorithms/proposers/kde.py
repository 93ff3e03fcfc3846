"""BOHB's model (Falkner, Klein & Hutter, ICML 2018): new configurations from a TPE-style
model of good vs bad results instead of uniform draws. `bohb` is Hyperband with this
proposer; with ASHA it is asynchronous BOHB (`asha+kde`), with full trainings it is TPE.

Every result at a rung is kept with the rung's budget (its epochs), as the configuration's
unit coordinates (`SearchSpace.to_units`) and its loss. To start a configuration: with
probability `automl_random_fraction` it is drawn at random (so the search keeps exploring
and the model cannot lock the search out of a region). Otherwise the model uses the
largest budget holding at least N_min + 2 results, splits them into the best N_good and
the worst N_bad, fits a density l(x) to the good and g(x) to the bad (`models/kde.py`),
draws `automl_kde_samples` candidates from l with every bandwidth widened by
`automl_bandwidth_factor`, and takes the candidate with the largest l(x)/g(x). Without a
budget that has enough results, the configuration is random.

Where ours differs from the paper (and from its reference code, hpbandster):
- Inactive conditional parameters are left out of a kernel product (a NaN coordinate)
  rather than imputed with made-up values; a candidate missing such a parameter draws it
  at random when it becomes active (`SearchSpace.from_units`).
- A choice parameter's kernel is widened by the bandwidth factor too when sampling (the
  paper widens all bandwidths; hpbandster only the numeric ones), capped at uniform, and a
  move goes to one of the *other* categories, as the Aitchison-Aitken kernel says.
- The split: N_good = max(N_min, q*N) best and N_bad = max(N_min, N - q*N) worst, with q*N
  rounded down, so until q*N reaches N_min the bad set includes the good results too (both
  must hold N_min points to be a density at all). The paper's bad set is the N - N_good
  left after the good ones (at least N_min), and hpbandster's is taken from just after the
  good ones, so it may miss the very worst. The paper's split measured no better (80
  seeds, random fraction 1/3: 0.101 / 0.22 / 2.62 / 0.020 against ours 0.118 / 0.186 /
  2.54 / 0.023 on Branin / Hartmann-6 / Counting Ones / MF-Hartmann-3).
- A numeric bandwidth is at least 1 / (3 min(100, N + 2)) for a density of N points
  (`BANDWIDTH_CLIP`: TPE's "magic clip", a third of it, so a candidate drawn with the
  default widening x3 moves at least TPE's width). The paper's floor is 1e-3: once its
  few good results sit close together the good density is a spike and every proposal
  lands next to them, so the search creeps (measured: on augmented Branin, seed 4, 12
  full trainings in a row at regret 3.1-3.3, each a small step from the last). With the
  clip, 40 seeds of the benchmark (benchmarks/QUALITY.md): median regret 0.25 -> 0.11 on Branin, 0.235 -> 0.18 on
  Hartmann-6, 0.060 -> 0.023 on MF-Hartmann-3, 2.67 on Counting Ones before and after.
- `automl_random_fraction` defaults to 0.2, not the paper's 1/3. The clip above gives the
  model exploration of its own, and a third of every bracket drawn blind cost more than it
  protected. Measured (benchmarks/QUALITY.md, 80 seeds, median regret, Branin / Hartmann-6
  / Counting Ones / MF-Hartmann-3): 1/3: 0.118 / 0.186 / 2.54 / 0.023; 0.2: 0.064 / 0.160 /
  2.37 / 0.0096; 0.1: 0.066 / 0.131 / 2.33 / 0.013; 0: 0.060 / 0.117 / 2.30 / 0.024, but
  with 0 (and 0.1) more MF-Hartmann-3 seeds stay in its second basin (regret > 0.5: 7 and 3
  of 80; 0 with 0.2, 1 with 1/3), which is what the random configurations are for.
- bohb's brackets follow TAO's schedule (`schedulers/hyperband.py`), which omits Hyperband's
  s = 0 bracket (measured: its 4 random full trainings per pass cost more than they find).
As in the reference code: each configuration is proposed when a worker takes its job,
from every result known then (with one worker, those of the same rung's earlier jobs too),
failed jobs count with an infinite loss (so they land among the
bad configurations and a crashing region is avoided), integers live on the unit interval
like floats and are rounded when decoded, and jobs still running are not modelled.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..catalogue import PROPOSERS
from ..models.kde import UnitKDE
from .base import Proposer, Result

RANDOM_NOTE = "random"
BANDWIDTH_CLIP = 1 / 3  # numeric bandwidths >= BANDWIDTH_CLIP / min(100, N + 2); see the module docstring


class _Model:
    """The good and bad densities fitted at one budget, with what they were fitted on."""

    def __init__(self, epochs: int, good: UnitKDE, bad: UnitKDE, n_good: int, n_bad: int):
        self.epochs, self.good, self.bad, self.n_good, self.n_bad = epochs, good, bad, n_good, n_bad

    def describe(self) -> str:
        return f"KDE at {self.epochs} epochs from {self.n_good} good vs {self.n_bad} bad"


class KDEProposer(Proposer):
    name = "kde"
    parameters = PROPOSERS["kde"].parameters

    def __init__(self, space, rng, params, **kwargs):
        super().__init__(space, rng, params, **kwargs)
        self.min_points = self.params["automl_min_points_in_model"] or len(space.params) + 1
        self.n_choices = [len(p.choices) if p.is_choice else 0 for p in space.params]
        self.results: dict[int, list[tuple[np.ndarray, float]]] = {}  # epochs -> (unit point, loss)
        self._fitted: tuple[int, _Model | None] | None = None  # (results seen, the model fitted on them)

    def explain(self) -> list[str]:
        p = self.params
        auto = " (auto: parameters + 1)" if not p["automl_min_points_in_model"] else ""
        return [
            f"kde model (BOHB's): the top {p['automl_top_n_percent']}% of a budget's results are good, the rest bad; "
            f"at least {self.min_points} per density{auto}, so a budget needs {self.min_points + 2} results; "
            f"{p['automl_kde_samples']} candidates from the good density with bandwidths x "
            f"{p['automl_bandwidth_factor']:g}; {p['automl_random_fraction']:.0%} of configurations random"]

    def observe(self, result: Result) -> None:
        # a failure is the worst result there is: it belongs with the bad configurations
        loss = result.loss
        value = loss if loss is not None and not math.isnan(loss) else math.inf
        self.results.setdefault(result.epochs, []).append((self.space.to_units(result.params), value))

    def propose(self, epochs: int, pending: list[dict[str, Any]], bracket=None) -> tuple[dict[str, Any], str]:
        # refitted whenever a result arrived since the last fit (between the jobs of one
        # rung, with one worker); several jobs handed out at once share the fit
        seen = sum(len(results) for results in self.results.values())
        if self._fitted is None or self._fitted[0] != seen:
            self._fitted = (seen, self._fit())
        model = self._fitted[1]
        if model is None or self.rng.random() < self.params["automl_random_fraction"]:
            return self.space.sample(self.rng), RANDOM_NOTE if model is None else f"{RANDOM_NOTE} (random fraction)"
        return self.space.from_units(self._best_candidate(model), self.rng), model.describe()

    # -- the model -------------------------------------------------------------------------
    def model_budget(self) -> int | None:
        """The largest budget (epochs) with enough results for a model, or None."""
        enough = [epochs for epochs, results in self.results.items() if len(results) >= self.min_points + 2]
        return max(enough) if enough else None

    def _fit(self) -> _Model | None:
        epochs = self.model_budget()
        if epochs is None:
            return None
        results = self.results[epochs]
        # stable sort: ties keep the order results arrived in, so a replay splits them alike
        order = sorted(range(len(results)), key=lambda i: results[i][1])
        points = np.array([results[i][0] for i in order]).reshape(len(results), len(self.n_choices))
        n_good, n_bad = self._split(len(results))
        good = UnitKDE(self.n_choices, clip=BANDWIDTH_CLIP).fit(points[:n_good])
        bad = UnitKDE(self.n_choices, clip=BANDWIDTH_CLIP).fit(points[len(points) - n_bad:])
        return _Model(epochs, good, bad, n_good, n_bad)

    def _split(self, n: int) -> tuple[int, int]:
        from_fraction = self.params["automl_top_n_percent"] * n // 100
        return max(self.min_points, from_fraction), max(self.min_points, n - from_fraction)

    def _best_candidate(self, model: _Model) -> np.ndarray:
        candidates = model.good.sample(self.rng, self.params["automl_kde_samples"],
                                       self.params["automl_bandwidth_factor"])
        with np.errstate(invalid="ignore"):  # -inf - -inf where both densities vanish
            ratio = model.good.log_pdf(candidates) - model.bad.log_pdf(candidates)
        ratio = np.where(np.isnan(ratio), -np.inf, ratio)
        return candidates[int(np.argmax(ratio))]
