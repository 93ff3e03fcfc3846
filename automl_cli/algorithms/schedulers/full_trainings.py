"""Full trainings: each configuration the proposer chooses is trained once, in full, for a
budget of `automl_max_recommendations` configurations (or as many as a budget-setting
proposer says: a grid's size, Clara's max_rounds)."""
from __future__ import annotations

from typing import Any

from ...errors import UsageError
from ..base import JobRequest, Outcome, TrialBook
from ..proposers.base import Result
from .base import Scheduler


class FullTrainings(Scheduler):
    can_adopt = True

    def __init__(self, space, **kwargs):
        super().__init__(space, **kwargs)
        given = self.params.get("automl_max_recommendations")
        self.proposer = self.make_proposer(planned=given)
        self.book = TrialBook(self.proposer.budget() or given)

    def suggest(self, free_slots: int) -> list[JobRequest]:
        count = min(free_slots, self.book.remaining())
        if self.proposer.batch:
            # the config's own values go first and the batch is chosen around them as pending
            jobs = [self._job(*self.propose_new(self.max_epochs, []))] if count and self.starts_from_config() else []
            count -= len(jobs)
            batch = self.proposer.propose_batch(count, self.max_epochs, self.pending_configs()) if count else []
            return jobs + [self._job(params, note) for params, note in batch]
        jobs = []
        for _ in range(count):  # one at a time: each proposal sees the one before as pending
            params, note = self.propose_new(self.max_epochs, self.pending_configs())
            jobs.append(self._job(params, note))
        return jobs

    def _job(self, params: dict[str, Any], note: str) -> JobRequest:
        trial_id = self.book.add(params)
        self.take(trial_id, params)
        return JobRequest(trial_id, params, self.max_epochs, note=note)

    def pending_configs(self) -> list[dict[str, Any]]:
        return [self.book.proposed[tid - 1] for tid in sorted(self.book.running)]

    def on_finished(self, outcome: Outcome) -> None:
        self.book.finish(outcome)
        self.proposer.observe(Result(outcome.trial_id, self.book.proposed[outcome.trial_id - 1], self.max_epochs,
                                     self.book.losses[outcome.trial_id], outcome.status))

    def adopt(self, request: JobRequest) -> None:
        """A trial of a rebuilt run: it counts against the budget, and its result will be heard."""
        if request.trial_id != len(self.book.proposed) + 1:
            raise UsageError(f"{self.name} cannot adopt trial {request.trial_id} after {len(self.book.proposed)} "
                             "trials: a rebuilt run's trials must come in order")
        self.proposer.adopt(request.trial_id, request.params)
        self.book.add(request.params)
        self._start_taken = True  # the run already had its first configuration

    def is_done(self) -> bool:
        return self.book.done()

    def planned_jobs(self) -> int:
        return self.book.budget
