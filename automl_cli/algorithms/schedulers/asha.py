"""ASHA, asynchronous successive halving (Li et al., MLSys 2020).

Rungs at `min_epochs * nu^k` epochs, the last at the config's full epochs. There is no
barrier: whenever a worker is free, the best not-yet-promoted configuration in the top
1/nu of the highest rung that has one is promoted (it resumes from its checkpoint);
otherwise a new configuration starts at the bottom rung. The proposer chooses it (random
for `asha`; a model proposer, e.g. `asha+kde`, asynchronous BOHB, models the largest rung
with enough results) and hears every rung's result.
"""
from __future__ import annotations

from typing import Any

from ..base import CONTINUE, JobRequest, Outcome
from ..proposers.base import Result
from .base import Scheduler
from .fidelity import FidelityTrust
from .hyperband import rank


class ASHA(Scheduler):
    def __init__(self, space, **kwargs):
        super().__init__(space, **kwargs)
        nu, low = self.params["automl_nu"], self.params["automl_min_epochs"]
        self.rung_epochs: list[int] = []
        epochs = low
        while epochs < self.max_epochs:
            self.rung_epochs.append(epochs)
            epochs *= nu
        self.rung_epochs.append(self.max_epochs)
        self.results: list[dict[int, float | None]] = [{} for _ in self.rung_epochs]
        self.promoted: list[set[int]] = [set() for _ in self.rung_epochs]
        self.trials: dict[int, dict[str, Any]] = {}
        self.running: dict[int, int] = {}  # trial -> rung its job will reach
        self.stopped: set[int] = set()
        self.proposer = self.make_proposer(planned=self.params["automl_max_trials"] or None)
        self.fidelity = FidelityTrust(self.rung_epochs)  # which rungs rank like the ones above

    def suggest(self, free_slots: int) -> list[JobRequest]:
        jobs: list[JobRequest] = []
        cap = self.params["automl_max_concurrent"]  # 0: every worker the run has (the engine's free slots)
        room = free_slots if not cap else min(free_slots, cap - len(self.running))
        while len(jobs) < room and not self._enough_at_top():
            job = self._promotion() or self._new_trial()
            if job is None:
                break
            self.running[job.trial_id] = job.rung
            jobs.append(job)
        return jobs

    def _promotion(self) -> JobRequest | None:
        nu = self.params["automl_nu"]
        for k in range(len(self.rung_epochs) - 2, self._base_rung() - 1, -1):
            results = self.results[k]
            top = rank(results)[:len(results) // nu]
            for place, trial in enumerate(top, start=1):
                if trial not in self.promoted[k] and results[trial] is not None and trial not in self.stopped:
                    self.promoted[k].add(trial)
                    return JobRequest(trial, self.trials[trial], self.rung_epochs[k + 1], self.rung_epochs[k],
                                      note=f"rung {k + 1} ({self.rung_epochs[k + 1]} epochs): promoted, rank {place} "
                                           f"of {len(results)} in rung {k}", rung=k + 1)
        return None

    def _new_trial(self) -> JobRequest | None:
        limit = self.params["automl_max_trials"]
        if limit and len(self.trials) >= limit:
            return None
        base = self._start_rung()
        params, why = self.propose_new(self.rung_epochs[base], self.pending_configs())
        trial = len(self.trials) + 1
        self.trials[trial] = params
        self.take(trial, params)
        return JobRequest(trial, params, self.rung_epochs[base], 0,
                          note=f"rung {base} ({self.rung_epochs[base]} epochs): new, {why}{self._base_why(base)}",
                          rung=base)

    def pending_configs(self) -> list[dict[str, Any]]:
        return [self.trials[t] for t in self.running]

    # -- low rungs that mislead (fidelity.py) ---------------------------------------------
    def _base_rung(self) -> int:
        """The rung new configurations start at: the lowest whose ranking, and that of every
        rung above it, agrees with the rungs above (a rung found to rank unlike them takes
        no decisions; no promotion is made from it)."""
        return self.rung_epochs.index(self.fidelity.first_trusted())

    def _start_rung(self) -> int:
        """The rung a new configuration trains to: the first `min_pairs` go to the rung below
        the top undecided (a probe: every rung below is then measured on configurations no
        low rung chose, which promotions alone never give), the rest to the base rung."""
        probe = max(0, len(self.rung_epochs) - 2)
        return probe if len(self.trials) < self.fidelity.min_pairs else self._base_rung()

    def _base_why(self, base: int) -> str:
        if len(self.trials) <= self.fidelity.min_pairs and base:
            return f" (a probe of {self.fidelity.min_pairs}: trained to {self.rung_epochs[base]} epochs undecided, " \
                   "to measure how the rungs below rank)"
        return f" (starts above the rungs found misleading; {self.fidelity.summary()})" if base else ""

    def on_metrics(self, trial_id: int, job_id: int, epoch: int, loss: float) -> str:
        self.fidelity.record(trial_id, epoch, loss)
        return CONTINUE

    def on_finished(self, outcome: Outcome) -> None:
        if outcome.status != "failed":
            self.fidelity.record(outcome.trial_id, outcome.epochs, outcome.loss)
        k = self.running.pop(outcome.trial_id)
        if outcome.status == "stopped":
            self.stopped.add(outcome.trial_id)
        loss = outcome.loss if outcome.status != "failed" else None
        self.results[k][outcome.trial_id] = loss
        self.proposer.observe(Result(outcome.trial_id, self.trials[outcome.trial_id], self.rung_epochs[k], loss,
                                     outcome.status))

    def _enough_at_top(self) -> bool:
        if self.params["automl_max_trials"]:
            return False
        reached = sum(1 for loss in self.results[-1].values() if loss is not None)
        return reached >= self.params["automl_min_top_configs"]

    def is_done(self) -> bool:
        if self.running:
            return False
        if self._enough_at_top():
            return True
        limit = self.params["automl_max_trials"]
        if not limit or len(self.trials) < limit:
            return False
        nu = self.params["automl_nu"]
        base = self._base_rung()  # no promotion is made from a rung below it
        return not any(t not in self.promoted[k] and r[t] is not None and t not in self.stopped
                       for k, r in enumerate(self.results[:-1]) if k >= base for t in rank(r)[:len(r) // nu])

    def planned_jobs(self) -> int | None:
        return None
