"""Random search: independent draws from the space, the baseline every other proposer must beat."""
from __future__ import annotations

from typing import Any

from ..catalogue import PROPOSERS
from .base import Proposer


class RandomProposer(Proposer):
    name = "random"
    parameters = PROPOSERS["random"].parameters

    def propose(self, epochs: int, pending: list[dict[str, Any]], bracket=None) -> tuple[dict[str, Any], str]:
        return self.space.sample(self.rng), "random draw"
