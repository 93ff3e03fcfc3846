"""Random search: the baseline every other algorithm must beat."""
from __future__ import annotations

from .base import Algorithm, JobRequest, Outcome, ParamSpec, TrialBook, register


@register
class RandomSearch(Algorithm):
    name = "random"
    summary = "independent draws from the search space (enum weights honoured), each trained in full"
    parameters = {
        "automl_max_recommendations": ParamSpec(20, "configurations to train", minimum=1),
    }

    def __init__(self, space, **kwargs):
        super().__init__(space, **kwargs)
        self.book = TrialBook(self.params["automl_max_recommendations"])

    def suggest(self, free_slots: int) -> list[JobRequest]:
        jobs = []
        for _ in range(min(free_slots, self.book.remaining())):
            params = self.space.sample(self.rng)
            jobs.append(JobRequest(self.book.add(params), params, self.max_epochs, note="random draw"))
        return jobs

    def on_finished(self, outcome: Outcome) -> None:
        self.book.finish(outcome)

    def is_done(self) -> bool:
        return self.book.done()

    def planned_jobs(self) -> int:
        return self.book.budget
