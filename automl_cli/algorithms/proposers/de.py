"""DEHB's proposer (Awad, Mallik & Hutter, IJCAI 2021): configurations from differential
evolution (DE) instead of random sampling. `dehb` is Hyperband with this proposer (and the
s = 0 bracket). DE takes part in Hyperband's promotions (a higher rung's places are bred),
so it pairs with the bracket schedulers only.

What the paper does: it keeps one DE subpopulation per budget level, sized by the most
configurations any Hyperband bracket runs at that budget. The first Hyperband iteration is
plain successive halving and fills the subpopulations with what it evaluates. From then on
every configuration is a DE trial: rand/1 mutation `a + F (b - c)` with a, b, c drawn from a
parent pool, binomial crossover with the next target of the level's subpopulation (taken in
turn), and selection: the trial replaces its target when it is at least as good. A
bracket's first rung breeds from the level's own subpopulation; a higher rung breeds from
the best configurations of the rung below in the same bracket, so good regions found on
small budgets flow upward; when that pool is too small for mutation the global population
(all subpopulations together) supplements it. The paper trains every trial from scratch
at its budget.

Ours, on `schedulers/hyperband.py` with TAO's schedule plus the paper's s = 0 bracket (dehb):
- A level fills as soon as it has seen `capacity` evaluated configurations (failures and
  stopped jobs, e.g. cut at a time budget, do not count, and never replace a member);
  until then a bracket's first rung is random and its promotions are Hyperband's, which
  resume from the trial's checkpoint. After that, bred trials are new trials trained
  from scratch at their rung's epochs, as in the paper.
- The parents are never the target itself (classic DE's rule, and the authors' code's).
- The parent pool of a rung is the best members (as many as the rung runs) of the
  population one budget below (for a bracket's first rung, of its own level's population),
  as the authors' code does: the best the lower budget has seen in any bracket, not only in
  this one. While that population is still filling, it is the rung below's survivors in
  this bracket. When the pool has fewer than three members we top it up
  with distinct members drawn from the global population (the paper's code adds mutants of
  the global population instead); with too few even there, with uniform random points.
- A trial is bred when a worker takes its job, from the populations as they stand then,
  as the authors' code does (its `ask`): with one worker each trial's parents include the
  winner of the selection just before it, the paper's immediate (asynchronous) update.
- Crossover always takes one randomly chosen coordinate from the mutant (Storn and
  Price's j_rand); coordinates outside [0, 1], or NaN where a parameter was inactive in
  a parent, are replaced by uniform random values, so decoding never guesses.
- **The full budget is reached by promotion, not breeding** (`automl_breed_full_budget`
  = 0, our default): a bracket's last rung, where configurations train in full, runs the
  best of the rung below, resumed from their checkpoints, as Hyperband does; DE breeds
  every lower rung (and the s = 0 bracket, which starts at the full budget) as in the
  paper. A promoted trial that beats the worst member of the full-budget population
  replaces it, so that population (the s = 0 bracket's parents) holds the best trained in
  full. Why: a full training is the costliest job there is, and the paper spends it on a
  new mutant no budget has seen, whose parents' results are its only evidence; the
  configurations a user gets come from these trainings. Promoting spends it on
  configurations that already won at the budget below, and resuming saves the epochs they
  already trained. Measured on the benchmark (benchmarks/QUALITY.md, 40 seeds, median
  regret, breeding -> promoting): Branin 0.535 -> 0.126, Hartmann-6 0.676 -> 0.596,
  Counting Ones 2.43 -> 1.89, MF-Hartmann-3 0.062 -> 0.029. Promoting at every rung
  instead (DE for first rungs only) was worse (0.18, 0.72, 2.46, 0.050): the lower rungs'
  breeding is what carries good regions up. `= 1` breeds as the paper does.
- The s = 0 bracket that TAO's tables leave out is kept, as in the paper: without it the
  top level's subpopulation would hold 2 members for R = 27, nu = 3 (with it, 4).
- Parallel workers: brackets overlap as in the hyperband scheduler. A bracket whose first
  level is still filling would start random configurations (`ready` says no), so while
  earlier brackets run, the scheduler opens a later bracket whose level is full first, or
  the cheapest (docs/algorithms.md has the measurements). Several trials may be bred
  against the same target before either finishes; each is compared with the target's loss
  when it finishes.
All randomness comes from the scheduler's generator, in an order fixed by the calls the engine makes, so
a replayed journal breeds the same trials.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np

from ..catalogue import PROPOSERS
from .base import Proposer, Result

if TYPE_CHECKING:
    from ..schedulers.hyperband import Bracket, Rung, SuccessiveHalving

PARENTS = 3  # rand/1 needs three distinct parents


# -- the DE operator, on points of the unit cube (one coordinate per parameter) ----------------
def rand1_mutant(pool: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    """a + F (b - c) for three distinct members a, b, c of `pool` (rows)."""
    a, b, c = pool[rng.choice(len(pool), size=PARENTS, replace=False)]
    return a + factor * (b - c)


def binomial_crossover(target: np.ndarray, mutant: np.ndarray, prob: float,
                       rng: np.random.Generator) -> np.ndarray:
    """Each coordinate from the mutant with probability `prob`, and one chosen at random
    always, so the trial never equals its target."""
    from_mutant = rng.random(len(target)) < prob
    from_mutant[rng.integers(len(target))] = True
    return np.where(from_mutant, mutant, target)


def repair(point: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Coordinates outside [0, 1] or NaN replaced by uniform random values (the paper's fix)."""
    bad = ~((point >= 0.0) & (point <= 1.0))  # NaN compares false both ways
    out = point.copy()
    out[bad] = rng.random(int(bad.sum()))
    return out


def breed(target: np.ndarray, pool: np.ndarray, factor: float, prob: float,
          rng: np.random.Generator) -> np.ndarray:
    """One DE rand/1/bin trial point against `target`, parents from `pool`."""
    mutant = rand1_mutant(pool, factor, rng)
    return repair(binomial_crossover(target, mutant, prob, rng), rng)


# -- bookkeeping ------------------------------------------------------------------------------
@dataclass
class Subpopulation:
    """The DE population of one budget level: members in the order they joined."""

    capacity: int
    epochs: int
    units: list[np.ndarray] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    trials: list[int] = field(default_factory=list)  # the trial each member came from
    next_target: int = 0

    @property
    def full(self) -> bool:
        return len(self.units) >= self.capacity

    def best(self, count: int) -> np.ndarray:
        """The `count` members with the lowest losses (ties: the earlier member)."""
        order = sorted(range(len(self.losses)), key=lambda i: (self.losses[i], i))[:count]
        return np.array([self.units[i] for i in order])

    def take_target(self) -> int:
        """Targets are taken in turn, cycling through the members."""
        index = self.next_target
        self.next_target = (index + 1) % self.capacity
        return index


@dataclass(frozen=True)
class Origin:
    """Why a bred trial exists: the level and target it competes with, and its parents."""

    level: Fraction
    target: int  # index in the level's population
    target_trial: int  # the member it was at breeding time
    parents: str


class DEProposer(Proposer):
    name = "de"
    parameters = PROPOSERS["de"].parameters
    can_adopt = False  # the bracket schedulers cannot rebuild a run
    takes_part_in_promotion = True

    def __init__(self, space, rng, params, **kwargs):
        super().__init__(space, rng, params, **kwargs)
        self.factor = self.params["automl_mutation_factor"]
        self.crossover = self.params["automl_crossover_prob"]
        self.breed_full = bool(self.params["automl_breed_full_budget"])
        self.origins: dict[int, Origin] = {}  # bred trial -> what it competes with
        self._origin: Origin | None = None  # of the bred trial about to be added (`added` files it)

    def attach(self, scheduler: SuccessiveHalving) -> None:
        """Bound to the bracket scheduler whose promotions it takes part in: the populations
        follow its schedule, and breeding reads its trials."""
        self.scheduler = scheduler
        self.full_epochs = max(rung.epochs for bracket in scheduler.schedule for rung in bracket.rungs)
        self.levels = self._subpopulations(scheduler.schedule)

    @staticmethod
    def _subpopulations(schedule: list[Bracket]) -> dict[Fraction, Subpopulation]:
        """One per budget level, as large as the most configurations a bracket runs there."""
        levels: dict[Fraction, Subpopulation] = {}
        for bracket in schedule:
            for rung in bracket.rungs:
                level = levels.setdefault(rung.resource, Subpopulation(rung.n, rung.epochs))
                level.capacity = max(level.capacity, rung.n)
        return dict(sorted(levels.items()))

    # -- the proposer's part ---------------------------------------------------------------
    def propose(self, epochs: int, pending: list[dict[str, Any]], bracket=None) -> tuple[dict[str, Any], str]:
        level = self.levels[bracket.rungs[0].resource]
        if not level.full:
            self._origin = None
            return self.space.sample(self.rng), (f"random: the {level.epochs}-epoch population has "
                                                 f"{len(level.units)} of {level.capacity}")
        # the parents: as many of the level's best as the rung runs, as the population stands now
        pool = level.best(bracket.rungs[0].n)
        params, self._origin = self._breed(bracket.rungs[0].resource, pool,
                                           f"the {level.epochs}-epoch population's {len(pool)} best")
        return params, "bred"  # describe_trial names the origin

    def ready(self, bracket) -> bool:
        return self.levels[bracket.rungs[0].resource].full

    def added(self, trial_id: int, params: dict[str, Any]) -> None:
        if self._origin is not None:  # the scheduler adds what propose or fill just returned
            self.origins[trial_id], self._origin = self._origin, None

    def promote(self, bracket_index: int, rung: int, survivors: list[int]) -> list[int | None]:
        target = self.scheduler.brackets[bracket_index].rungs[rung]
        if not self.levels[target.resource].full:
            return survivors  # the first pass: Hyperband's promotion, resuming
        if self._promotes_into(target):
            return survivors  # the full budget: the rung below's best, resuming
        return [None] * len(survivors)  # bred by `fill` when a worker takes each

    def fill(self, bracket_index: int, rung: int, survivors: list[int]) -> tuple[dict[str, Any], str]:
        brackets = self.scheduler.brackets
        lower = self.levels[brackets[bracket_index].rungs[rung - 1].resource]
        if lower.full:  # the best the lower budget has seen in any bracket, as the paper's code does
            pool, parents = lower.best(len(survivors)), f"the {lower.epochs}-epoch population's {len(survivors)} best"
        else:
            pool = np.array([self.space.to_units(self.scheduler.trials[t]) for t in survivors])
            parents = f"rung {rung - 1}'s {len(survivors)} best"
        params, origin = self._breed(brackets[bracket_index].rungs[rung].resource, pool, parents)
        self._origin = origin  # `added` files it under the new trial
        return params, "bred"  # describe_trial names the origin

    def observe(self, result: Result) -> None:
        if result.loss is None or result.status == "stopped":
            return  # a failure has no loss, a stopped job's is from fewer epochs than the level's
        trial_id, loss, rung = result.trial_id, result.loss, result.rung
        origin = self.origins.get(trial_id)
        if origin is not None and origin.level == rung.resource:
            self._select(trial_id, origin, loss)
            return
        # a random trial, or one promoted to this level
        level = self.levels[rung.resource]
        if not level.full:  # the first pass fills the population with what it evaluates
            level.units.append(self.space.to_units(self.scheduler.trials[trial_id]))
            level.losses.append(loss)
            level.trials.append(trial_id)
        elif trial_id not in level.trials:  # promoted into a full population: it competes with the worst
            worst = max(range(len(level.losses)), key=lambda i: (level.losses[i], i))
            if loss <= level.losses[worst]:
                level.units[worst] = self.space.to_units(self.scheduler.trials[trial_id])
                level.losses[worst] = loss
                level.trials[worst] = trial_id

    def _promotes_into(self, rung: Rung) -> bool:
        return not self.breed_full and rung.epochs == self.full_epochs

    def rung_entry(self, rung: Rung, added: int) -> str:
        if self._promotes_into(rung):
            return f"+{added}, resuming: the rung below's best"
        return f"+{added}, resuming, until the populations fill; then bred trials, trained from scratch"

    def describe_trial(self, trial_id: int, default: str) -> str:
        origin = self.origins.get(trial_id)
        if origin is not None:
            level = self.levels[origin.level]
            return (f"DE trial against target {origin.target + 1} of {level.capacity} in the {level.epochs}-epoch "
                    f"population (trial {origin.target_trial}); parents: {origin.parents}")
        return default

    def explain(self) -> list[str]:
        sizes = ", ".join(f"{level.capacity} at {level.epochs} epochs" for level in self.levels.values())
        return [
            f"de proposer (DEHB's): rand/1/bin with mutation factor {self.factor:g} and crossover probability "
            f"{self.crossover:g}; one population per budget ({sizes}); random and promoted until a "
            "population is full, bred (trained from scratch) after"
            + ("" if self.breed_full else f"; the {self.full_epochs}-epoch rungs always promote the rung below's best")]

    # -- DE --------------------------------------------------------------------------------
    def _breed(self, resource: Fraction, pool: np.ndarray, parents: str) -> tuple[dict[str, Any], Origin]:
        """A configuration bred against the level's next target, and its origin."""
        level = self.levels[resource]
        target = level.take_target()
        # DE's parents differ from the target (Storn and Price's rand/1; the authors' code too):
        # a parent equal to it pulls the trial back toward the point it competes with
        pool = np.array([row for row in pool if not _same(row, level.units[target])]).reshape(-1, pool.shape[1])
        if len(pool) < PARENTS:
            parents += ", topped up from all populations"
            pool = self._top_up(pool, level.units[target])
        point = breed(level.units[target], pool, self.factor, self.crossover, self.rng)
        return self.space.from_units(point, self.rng), Origin(resource, target, level.trials[target], parents)

    def _top_up(self, pool: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Enough distinct parents for rand/1: the pool, then members of all populations
        not already in it (nor the target), then uniform random points."""
        rows = list(pool)
        others = [u for level in self.levels.values() for u in level.units
                  if not any(_same(u, r) for r in [*rows, target])]
        picks = self.rng.choice(len(others), size=min(PARENTS - len(rows), len(others)), replace=False)
        rows += [others[i] for i in picks]
        rows += [self.rng.random(len(self.space.params)) for _ in range(PARENTS - len(rows))]
        return np.array(rows)

    def _select(self, trial_id: int, origin: Origin, loss: float) -> None:
        """The trial replaces its target when at least as good."""
        level = self.levels[origin.level]
        if loss <= level.losses[origin.target]:
            level.units[origin.target] = self.space.to_units(self.scheduler.trials[trial_id])
            level.losses[origin.target] = loss
            level.trials[origin.target] = trial_id


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal points, NaN (an inactive parameter) equal to NaN."""
    return bool(np.array_equal(a, b, equal_nan=True))
