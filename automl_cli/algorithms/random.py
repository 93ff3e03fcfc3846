"""Random search: the baseline every other algorithm must beat."""
from __future__ import annotations

from .base import FullTrainings, ParamSpec, register


@register
class RandomSearch(FullTrainings):
    name = "random"
    summary = "independent draws from the search space (enum weights honoured), each trained in full"
    parameters = {
        "automl_max_recommendations": ParamSpec(20, "configurations to train", minimum=1),
    }

    def next_config(self) -> tuple[dict, str]:
        return self.space.sample(self.rng), "random draw"
