"""How well each rung's ranking predicts the top rung's: the multi-fidelity schedulers'
guard against low fidelities that mislead (issue #22 item 5).

Successive halving keeps what its low rungs like. Where cheap epochs rank configurations
wrongly (learning curves that cross late; a low fidelity that is a biased copy of the full
one), it keeps the wrong ones and ends worse than random search. So the schedulers measure,
as the search goes, whether their low rungs can be trusted:

- every job reports each epoch (`on_metrics`); the loss a trial had at each rung's epochs
  is kept, and a trial that reached the top rung (by promotion, or trained in full) pairs
  each of its lower rungs' losses with its top loss;
- a rung's *agreement* is the Spearman rank correlation of those pairs (1: the rung ranks
  as the top does; 0: no better than chance; < 0: backwards), once it has `MIN_PAIRS` pairs;
  until then, against the highest rung above it that has as many (a rung that ranks
  backwards shows it there first, as fewer trials reach each higher rung); with none, the
  rung is trusted, as plain successive halving trusts it;
- a rung is *distrusted* when its agreement is, with confidence, below `TRUST` (the upper
  bound of a one-sided 95% interval is); decisions are taken only at trusted rungs, and a
  rung below a distrusted one is distrusted too (its decisions feed that rung's).

The schedulers act on it: Hyperband runs, in place of a bracket that decides at a
distrusted rung, one that starts at a trusted rung (and keeps a full-fidelity bracket in
every pass); hyperband_es stops no job before the first trusted rung's epochs; ASHA starts
new configurations at the first trusted rung. All of it is a function of the results
reported so far, in the order the engine reports them, so a replayed journal rebuilds it
exactly.
"""
from __future__ import annotations

import math

import numpy as np

MIN_PAIRS = 5  # pairs a rung needs before its agreement is believed
# A rung is distrusted only when its agreement is below TRUST with confidence: the one-sided
# upper bound (Z) of Spearman's rho through Fisher's z (standard error 1.06 / sqrt(n - 3),
# Fieller et al. 1957) is below it. Measured (benchmarks/QUALITY.md, "Misleading low
# fidelities"): the point estimate alone distrusted Branin's low rungs for bohb on 23 of 80
# seeds, whose top-rung trials are near-optimal configurations that no rung ranks reliably
# among themselves; crossing_curves' epochs 1 and 3 (rho about -0.95) are distrusted within
# the first pass.
TRUST = 0.0
Z = 1.645


def spearman(a: list[float], b: list[float]) -> float:
    """Spearman's rank correlation (average ranks for ties); 0 when either side is constant."""
    ra, rb = _ranks(np.asarray(a, float)), _ranks(np.asarray(b, float))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denominator = float(np.sqrt((ra ** 2).sum() * (rb ** 2).sum()))
    return float((ra * rb).sum() / denominator) if denominator > 0 else 0.0


def _ranks(values: np.ndarray) -> np.ndarray:
    """0-based ranks, ties sharing their average rank."""
    from scipy.stats import rankdata

    return rankdata(values, method="average") - 1.0


class FidelityTrust:
    """The losses trials had at the rungs' epochs, and what they say about each rung."""

    def __init__(self, rung_epochs: list[int], min_pairs: int = MIN_PAIRS, trust: float = TRUST):
        self.rung_epochs = sorted(set(rung_epochs))
        self.top = self.rung_epochs[-1]
        self.min_pairs, self.trust = min_pairs, trust
        self.losses: dict[int, dict[int, float]] = {}  # trial -> rung epochs -> loss there
        # each rung's upper bound, until a loss changes: schedulers ask at every suggestion,
        # and a simulated run of thousands of jobs spent most of its time recomputing them
        self._bounds: dict[int, float | None] = {}
        # (lower, higher rung epochs) -> the trials with a loss at both, in the order they got it
        self._both: dict[tuple[int, int], dict[int, None]] = {}

    def record(self, trial_id: int, epoch: int, loss: float | None) -> None:
        if loss is not None and epoch in self.rung_epochs and np.isfinite(loss):
            losses = self.losses.setdefault(trial_id, {})
            if losses.get(epoch) != float(loss):
                if epoch not in losses:
                    for other in losses:
                        self._both.setdefault((min(epoch, other), max(epoch, other)), {})[trial_id] = None
                losses[epoch] = float(loss)
                self._bounds.clear()

    def pairs(self, epoch: int, reference: int | None = None) -> tuple[list[float], list[float]]:
        """(loss at `epoch`, loss at `reference`, the top by default) of every trial that has both."""
        reference = self.top if reference is None else reference
        trials = self._both.get((min(epoch, reference), max(epoch, reference)), {})
        return [self.losses[t][epoch] for t in trials], [self.losses[t][reference] for t in trials]

    def reference(self, epoch: int) -> int | None:
        """The rung `epoch` is judged against: the top once enough trials reached it from
        `epoch`, else the highest rung above that has enough (fewer trials reach the top than
        the rung below it, and a low rung that ranks backwards shows it there first); None
        while no rung above has enough."""
        return next((e for e in reversed(self.rung_epochs) if e > epoch
                     and len(self.pairs(epoch, e)[0]) >= self.min_pairs), None)

    def agreement(self, epoch: int) -> float | None:
        """The rank correlation of rung `epoch` with its reference rung; None until it has one."""
        if epoch == self.top:
            return 1.0
        reference = self.reference(epoch)
        return None if reference is None else spearman(*self.pairs(epoch, reference))

    def upper_bound(self, epoch: int) -> float | None:
        """The one-sided upper confidence bound of the agreement of rung `epoch`."""
        if epoch not in self._bounds:
            self._bounds[epoch] = self._upper_bound(epoch)
        return self._bounds[epoch]

    def _upper_bound(self, epoch: int) -> float | None:
        rho = self.agreement(epoch)
        if rho is None or epoch == self.top:
            return rho
        n = len(self.pairs(epoch, self.reference(epoch))[0])
        z = math.atanh(min(0.9999, max(-0.9999, rho))) + Z * 1.06 / math.sqrt(max(1, n - 3))
        return math.tanh(z)

    def trusted(self, epoch: int) -> bool:
        """Whether decisions at `epoch` can be taken: no rung from it up to the top is known,
        with confidence, to rank below the trust level."""
        for e in self.rung_epochs:
            if epoch <= e < self.top:
                bound = self.upper_bound(e)
                if bound is not None and bound < self.trust:
                    return False
        return True

    def first_trusted(self) -> int:
        """The lowest rung epochs whose decisions can be taken (the top at worst)."""
        return next(e for e in self.rung_epochs if self.trusted(e))

    def summary(self) -> str:
        parts = []
        for e in self.rung_epochs[:-1]:
            reference = self.reference(e)
            if reference is None:
                parts.append(f"{e} epochs ?")
            else:
                parts.append(f"{e} epochs {self.agreement(e):+.2f} with {reference} "
                             f"({len(self.pairs(e, reference)[0])} pairs)")
        return "rank agreement with higher rungs: " + ", ".join(parts)
