"""The scheduler side of an algorithm: an Algorithm (base.py's contract) that decides when
to run what and asks its proposer (proposers/base.py) which configuration to try. A preset
or a pair is a scheduler class with `proposer_class` set (presets.py makes them)."""
from __future__ import annotations

from typing import Any, ClassVar

from ..base import Algorithm
from ..proposers.base import Proposer


class Scheduler(Algorithm):
    proposer_class: ClassVar[type[Proposer]]

    def make_proposer(self, planned: int | None = None) -> Proposer:
        """The proposer, bound to the space, the parameters and this algorithm's generator."""
        return self.proposer_class(self.space, self.rng, self.params, algorithm=self.name,
                                   max_epochs=self.max_epochs, planned=planned)

    # the trace's note for the configuration as the user wrote it
    START_NOTE = "the config's own values"

    def starts_from_config(self) -> bool:
        """Whether the next new configuration is the config's own (the first one only, and
        not for a proposer whose configurations are fixed in advance, e.g. a grid)."""
        return (self.start_from is not None and not getattr(self, "_start_taken", False)
                and self.proposer.takes_start)

    def propose_new(self, epochs: int, pending: list[dict[str, Any]], bracket=None) -> tuple[dict[str, Any], str]:
        """The proposer's next configuration, or first the config's own values. A parameter
        the config gives no usable value for is drawn from the algorithm's generator, so a
        replay draws it alike; the note names those."""
        if not self.starts_from_config():
            return self.proposer.propose(epochs, pending, bracket)
        self._start_taken = True
        self._start_pending = True
        params, drawn = self.space.complete(self.start_from, self.rng)
        return params, self.START_NOTE + (f" ({', '.join(drawn)} drawn: not usable as written)" if drawn else "")

    def take(self, trial_id: int, params: dict[str, Any]) -> None:
        """Tell the proposer of trial `trial_id`: one it did not propose (the config's own
        values) it takes as it takes a rebuilt run's trial, using up that turn (a Sobol
        point) and modelling its result like any other."""
        if getattr(self, "_start_pending", False):
            self._start_pending = False
            self.proposer.adopt(trial_id, params)
        else:
            self.proposer.added(trial_id, params)

    def schedule_lines(self) -> list[str]:
        """The scheduler's own lines for `explain`."""
        return []

    def explain(self) -> list[str]:
        return self.schedule_lines() + self.proposer.explain()

    def pending_configs(self) -> list[dict[str, Any]]:
        """The configurations of the jobs running now (a model's pending points)."""
        return []
