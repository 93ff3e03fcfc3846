"""The Hyperband scheduler: synchronous successive-halving brackets (hyperband, and with a
model proposer bohb, dehb, hyperband+gp; hyperband_es adds early stopping).

Schedule (TAO's, which reproduces the guide's Tables 2 and 3): `smax` is the largest s
with nu^s <= R, found with integers (a float log miscounts at exact powers: log(243)/log(3)
is 4.999...). For s = smax down to 1 a bracket starts `n = floor((smax+1)/(s+1)) * nu^s`
configurations at resource `r = R / nu^s`; its rung i keeps `floor(n / nu^i)` of them at
resource `r * nu^i`, i = 0..s. The paper's last bracket (s = 0, no pruning) is not run.
A job at resource r trains up to `round(r * epoch_multiplier)` epochs; a configuration
promoted to the next rung resumes from its own checkpoint.

A new configuration is chosen when a worker takes its job, not when its bracket or rung
opens, as hpbandster and the DEHB package do: a model-based subclass then proposes it from
every result known at that moment (with one worker, the results of the same rung's earlier
jobs too) rather than from those known when the bracket opened.

The proposer chooses every new configuration and hears every rung's result; a proposer
that takes part in promotion (DE) also chooses which places of a higher rung are new trials
and fills them (`promote`, `fill`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from ..base import CONTINUE, JobRequest, Outcome
from ..catalogue import BUDGET_PASSES, HYPERBAND_PARAMETERS  # noqa: F401 (re-exported for the schedulers that extend it)
from ..proposers.base import Result
from .base import Scheduler
from .fidelity import FidelityTrust


def integer_log(value: int, base: int) -> int:
    """The largest s with base**s <= value, exactly."""
    if base < 2 or value < 1:
        raise ValueError(f"need base >= 2 and value >= 1, got base {base}, value {value}")
    s, power = 0, base
    while power <= value:
        s, power = s + 1, power * base
    return s


@dataclass(frozen=True)
class Rung:
    n: int  # configurations in this rung
    resource: Fraction  # r * nu^i
    epochs: int  # what a job of this rung trains up to


@dataclass(frozen=True)
class Bracket:
    s: int
    rungs: tuple[Rung, ...]


def hyperband_schedule(R: int, nu: int, epoch_multiplier: int, full_bracket: bool = False) -> list[Bracket]:
    """The brackets of Hyperband(R, nu), in the order they run (s = smax first); with
    `full_bracket`, also the paper's last bracket (s = 0: configurations trained in full)."""
    smax = integer_log(R, nu)
    brackets = []
    for s in range(smax, -1 if full_bracket else 0, -1):
        n = ((smax + 1) // (s + 1)) * nu ** s
        r = Fraction(R, nu ** s)
        rungs = tuple(Rung(n // nu ** i, r * nu ** i, max(1, round(r * nu ** i * epoch_multiplier)))
                      for i in range(s + 1))
        brackets.append(Bracket(s, rungs))
    return brackets


@dataclass(frozen=True)
class AutoAdjustment:
    R: int
    epoch_multiplier: int
    steps: list[str]


def auto_epoch_multiplier(max_epoch: int, R: int, nu: int) -> AutoAdjustment:
    """The guide's auto-adjustment: epoch_multiplier = max_epoch^(log nu / log R), lowering
    R by one while that is below 3; the multiplier is then rounded down (a value within
    1e-9 of an integer counts as that integer, so 27^(1/3) is 3)."""
    steps = []
    while True:
        exact = max_epoch ** (math.log(nu) / math.log(R)) if R > 1 else float(max_epoch)
        near = round(exact)
        value = near if abs(exact - near) < 1e-9 else math.floor(exact)
        steps.append(f"R={R}: {max_epoch}^(log {nu}/log {R}) = {exact:.4f}")
        if value >= 3 or R <= nu:
            return AutoAdjustment(R, max(1, value), steps)
        R -= 1


def resolve_hyperband(params: dict[str, Any], max_epochs: int) -> tuple[int, int, int, list[str]]:
    """R, nu, epoch_multiplier and the reasons, with the auto-adjustment when no multiplier is given."""
    R, nu, multiplier = params["automl_R"], params["automl_nu"], params["epoch_multiplier"]
    if multiplier is not None:
        return R, nu, multiplier, [f"epoch_multiplier {multiplier} as given"]
    adjusted = auto_epoch_multiplier(max_epochs, R, nu)
    steps = adjusted.steps if len(adjusted.steps) <= 4 else adjusted.steps[:2] + ["..."] + adjusted.steps[-1:]
    top = adjusted.R * adjusted.epoch_multiplier
    # what it means first (how long the best configurations train), how it was worked out after
    if top > max_epochs:
        why = [f"the top rung trains {top} epochs, {top / max_epochs:.3g}x the config's {max_epochs} (the guide's "
               "auto-adjustment; set epoch_multiplier to choose)"]
    elif top < max_epochs:
        why = [f"the top rung trains {top} epochs, fewer than the config's {max_epochs} (the guide's "
               "auto-adjustment; set epoch_multiplier to choose)"]
    else:
        why = [f"the top rung trains the config's {max_epochs} epochs"]
    why += [f"chosen: R={adjusted.R}, epoch_multiplier={adjusted.epoch_multiplier} "
            f"(auto-adjusted from the config's {max_epochs} epochs) by the guide's rule epoch_multiplier = "
            "max_epoch^(log nu / log R), R lowered by one while that is below 3:"] + steps
    return adjusted.R, nu, adjusted.epoch_multiplier, why


@dataclass
class _BracketRun:
    """A bracket in progress: its trials in the current rung and what they scored."""

    bracket: Bracket
    index: int
    why: str = ""  # why this bracket runs in place of the schedule's (misleading low rungs)
    rung: int = 0
    size: int = 0  # jobs the current rung runs
    members: list[int] = field(default_factory=list)  # trial ids in the current rung, as they are made
    parents: list[int] = field(default_factory=list)  # the rung below's best, which this rung was made from
    # jobs of this rung not yet handed out; None: a new trial, chosen when a worker takes it
    queued: list[JobRequest | None] = field(default_factory=list)
    running: set[int] = field(default_factory=set)
    losses: dict[int, float | None] = field(default_factory=dict)  # this rung's results
    done: bool = False


def rank(losses: dict[int, float | None]) -> list[int]:
    """Trials best first; failures (None) last; ties broken by the earlier trial."""
    return sorted(losses, key=lambda t: (losses[t] is None, losses[t] if losses[t] is not None else 0.0, t))


class SuccessiveHalving(Scheduler):
    """Hyperband's brackets run in order; when a bracket waits at its rung barrier, free
    workers start the next bracket, so brackets overlap across workers (one the proposer
    is not ready for may wait its turn: `_bring_forward`). The proposer chooses each new
    configuration."""

    full_bracket = False  # TAO's tables leave out the s = 0 bracket; the DEHB paper keeps it (a preset option)

    def __init__(self, space, **kwargs):
        super().__init__(space, **kwargs)
        self.R, self.nu, self.epoch_multiplier, self.adjustment = resolve_hyperband(self.params, self.max_epochs)
        self.schedule = hyperband_schedule(self.R, self.nu, self.epoch_multiplier, self.full_bracket)
        self.iterations = self.params["automl_hyperband_iterations"]
        self.brackets = self.schedule * self.iterations  # the order they run in (a bracket that decides
        # at a rung found misleading is replaced when it opens: _choose)
        self.full_fidelity = hyperband_schedule(self.R, self.nu, self.epoch_multiplier, True)[-1]
        self.fidelity = FidelityTrust([r.epochs for b in self.schedule for r in b.rungs])
        self.runs: list[_BracketRun] = []
        self.trials: dict[int, dict[str, Any]] = {}  # trial id -> params
        self.trial_epochs: dict[int, int] = {}  # epochs each trial's checkpoint holds
        self.stopped: set[int] = set()  # trials stopped early: never promoted
        self.proposer = self.make_proposer()
        self.breeds = self.proposer.takes_part_in_promotion
        if self.breeds:
            self.proposer.attach(self)

    # -- where the proposer takes part ------------------------------------------------------
    def promote(self, bracket_index: int, rung: int, survivors: list[int]) -> list[int | None]:
        """The trials that run rung `rung` of bracket `bracket_index`, given the best of the
        rung below (best first). Hyperband promotes them as they are; a proposer taking part
        in promotion may leave places (None) for new trials it fills when a worker takes them."""
        return self.proposer.promote(bracket_index, rung, survivors) if self.breeds else survivors

    def rung_entry(self, rung: Rung, added: int) -> str:
        """How a job reaches `rung` (`added` epochs above the rung below), for `automl plan`:
        a promotion resumes its trial."""
        return self.proposer.rung_entry(rung, added) if self.breeds else f"+{added}, resuming"

    def describe_trial(self, trial_id: int, default: str) -> str:
        """Why a new or bred trial's job exists, for the trace (`default` says it generically)."""
        return self.proposer.describe_trial(trial_id, default) if self.breeds else default

    def pending_configs(self) -> list[dict[str, Any]]:
        return [self.trials[t] for run in self.runs for t in sorted(run.running) if t in self.trials]

    def add_trial(self, params: dict[str, Any]) -> int:
        trial_id = len(self.trials) + 1
        self.trials[trial_id] = params
        return trial_id

    @property
    def until_budget(self) -> bool:
        """The passes are a time budget's (runconfig.fill_budget): it, not the schedule, ends the search."""
        return self.iterations >= BUDGET_PASSES

    def passes(self) -> str:
        """How often the brackets run, in words."""
        return "over and over until the time budget ends the search" if self.until_budget else \
            f"{self.iterations} times over"

    # -- the contract --------------------------------------------------------------------
    def schedule_lines(self) -> list[str]:
        lines = [f"hyperband R={self.R} nu={self.nu} epoch_multiplier={self.epoch_multiplier}: "
                 + "; ".join(self.adjustment)]
        for number, bracket in enumerate(self.schedule, start=1):
            lines.append(f"bracket {number}: " + " -> ".join(f"{r.n} x {r.epochs} epochs" for r in bracket.rungs))
        if self.iterations > 1:
            lines.append(f"the {len(self.schedule)} brackets run {self.passes()}")
        lines.append("a bracket that would decide at a rung found to rank configurations unlike the rungs above "
                     f"(Spearman rank correlation below {self.fidelity.trust:g} with 95% confidence, over at least "
                     f"{self.fidelity.min_pairs} trials that reached both) is replaced by one that starts at a "
                     "trusted rung, and every pass then keeps a full-fidelity bracket")
        return lines

    def planned_jobs(self) -> int:
        return sum(r.n for b in self.brackets for r in b.rungs)

    def suggest(self, free_slots: int) -> list[JobRequest]:
        jobs: list[JobRequest] = []
        while len(jobs) < free_slots:
            run = next((r for r in self.runs if r.queued), None)
            if run is None:
                if len(self.runs) == len(self.brackets):
                    break
                self._bring_forward(len(self.runs))
                run = self._open(len(self.runs))
                continue
            request = run.queued.pop(0) or self._make_trial(run)
            run.running.add(request.trial_id)
            jobs.append(request)
        return jobs

    def on_metrics(self, trial_id: int, job_id: int, epoch: int, loss: float) -> str:
        self.fidelity.record(trial_id, epoch, loss)
        return CONTINUE

    def on_finished(self, outcome: Outcome) -> None:
        if outcome.status in ("completed", "stopped"):
            self.fidelity.record(outcome.trial_id, outcome.epochs, outcome.loss)
        run = next(r for r in self.runs if outcome.trial_id in r.running)
        run.running.discard(outcome.trial_id)
        loss = outcome.loss if outcome.status in ("completed", "stopped") else None
        if outcome.status == "stopped":
            self.stopped.add(outcome.trial_id)
        self.trial_epochs[outcome.trial_id] = outcome.epochs
        run.losses[outcome.trial_id] = loss
        rung = run.bracket.rungs[run.rung]
        self.proposer.observe(Result(outcome.trial_id, self.trials[outcome.trial_id], rung.epochs, loss, outcome.status,
                                     rung))
        if len(run.losses) == run.size:
            self._advance(run)

    def is_done(self) -> bool:
        return len(self.runs) == len(self.brackets) and all(r.done for r in self.runs)

    # -- bookkeeping -----------------------------------------------------------------------
    def _choose(self, index: int) -> tuple[Bracket, str]:
        """The bracket to run as the `index`-th: the schedule's, unless it takes decisions at a
        rung whose ranking has been found not to predict the top rung's. Then, if this pass
        has run no full-fidelity bracket and the schedule has none, the full-fidelity one (it
        measures every rung without a low-fidelity choice in the way); otherwise the most
        aggressive bracket whose first rung is trusted."""
        planned = self.brackets[index]
        if self.fidelity.trusted(planned.rungs[0].epochs):
            return planned, ""
        start = index - index % len(self.schedule)
        has_full = any(b.s == 0 for b in self.schedule) or any(r.bracket.s == 0 for r in self.runs[start:index])
        trusted = [b for b in self.schedule if self.fidelity.trusted(b.rungs[0].epochs)]
        choice = self.full_fidelity if not has_full or not trusted else trusted[0]
        why = (f"runs in place of a bracket starting at {planned.rungs[0].epochs} epochs "
               f"({self.fidelity.summary()}, trusted from {self.fidelity.first_trusted()} epochs)")
        return choice, why

    def _bring_forward(self, index: int) -> None:
        """With workers free while earlier brackets still run, the bracket opened next is
        the first not yet opened that the proposer is ready to start well, or, if none is,
        the one with the cheapest first rung (its blind jobs cost least); it moves to
        `index`, the others keep their order. With nothing running (one worker) the
        schedule's order stands."""
        if not any(r.running for r in self.runs):
            return
        waiting = self.brackets[index:]
        pick = next((j for j, b in enumerate(waiting) if self.proposer.ready(b)), None)
        if pick is None:
            pick = min(range(len(waiting)), key=lambda j: (waiting[j].rungs[0].resource, j))
        self.brackets[index:] = [waiting[pick]] + waiting[:pick] + waiting[pick + 1:]

    def _open(self, index: int) -> _BracketRun:
        bracket, why = self._choose(index)
        self.brackets[index] = bracket
        size = bracket.rungs[0].n
        run = _BracketRun(bracket, index, why=why, size=size, queued=[None] * size)
        self.runs.append(run)
        return run

    def _make_trial(self, run: _BracketRun) -> JobRequest:
        """The job of a new trial for an open place of the run's current rung."""
        rung = run.bracket.rungs[run.rung]
        if run.rung == 0 and run.why and self.breeds:
            # DE's populations were filled by what the misleading rungs kept: a bracket run in
            # their place starts from random configurations, which then compete for places there
            params = self.space.sample(self.rng)
            default = "new, random: the populations were filled by rungs found misleading"
        elif run.rung == 0:
            params, why = self.propose_new(rung.epochs, self.pending_configs(), run.bracket)
            default = f"new, {why}"
        else:  # a place a promotion left open
            params, why = self.proposer.fill(run.index, run.rung, run.parents)
            default = f"bred from rung {run.rung - 1}'s best"
        trial_id = self.add_trial(params)
        self.take(trial_id, params)
        if run.why and not run.members and run.rung == 0:  # the bracket's first job says why it runs
            default = f"{default}; this bracket {run.why}"
        run.members.append(trial_id)
        note = self._note(run, self.describe_trial(trial_id, default))
        return JobRequest(trial_id, params, rung.epochs, 0, note=note, bracket=run.index + 1, rung=run.rung)

    def _advance(self, run: _BracketRun) -> None:
        """The rung is complete: promote its best to the next rung, or close the bracket."""
        if run.rung == len(run.bracket.rungs) - 1:
            run.done = True
            return
        nxt = run.bracket.rungs[run.rung + 1]
        eligible = [t for t in rank(run.losses) if run.losses[t] is not None and t not in self.stopped]
        survivors = eligible[:nxt.n]
        run.rung += 1
        if not survivors:  # every job of the rung failed or was stopped: nothing to promote
            run.members, run.losses, run.size, run.done = [], {}, 0, True
            return
        places = self.promote(run.index, run.rung, survivors)
        run.members, run.losses, run.size, run.parents = [t for t in places if t is not None], {}, len(places), survivors
        for trial in places:
            if trial is None:  # a new trial, made (and trained from scratch) when a worker takes it
                run.queued.append(None)
                continue
            why = f"promoted, rank {survivors.index(trial) + 1} of {len(eligible)} in rung {run.rung - 1}"
            # a promoted trial resumes from its checkpoint
            run.queued.append(JobRequest(trial, self.trials[trial], nxt.epochs, self.trial_epochs.get(trial, 0),
                                         note=self._note(run, why), bracket=run.index + 1, rung=run.rung))

    def _note(self, run: _BracketRun, why: str) -> str:
        rung = run.bracket.rungs[run.rung]
        of = "" if self.until_budget else f"/{len(self.brackets)}"  # no last bracket worth naming
        return f"bracket {run.index + 1}{of} rung {run.rung} ({rung.n} x {rung.epochs} epochs): {why}"
