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

    def schedule_lines(self) -> list[str]:
        """The scheduler's own lines for `explain`."""
        return []

    def explain(self) -> list[str]:
        return self.schedule_lines() + self.proposer.explain()

    def pending_configs(self) -> list[dict[str, Any]]:
        """The configurations of the jobs running now (a model's pending points)."""
        return []
