"""Learning-rate policies (`train.lr_policy`): the factor the configured rate is multiplied
by at each epoch.

A policy is a pure function of the epoch (0-based) and the epochs of a full training, so a
resumed job recomputes exactly the rate an uninterrupted one would use; nothing of it goes
into the checkpoint. Several enabled policies multiply; none leaves the rate constant.
"""
from __future__ import annotations

import math

from .registry import register


@register("lr_policy")
class StepDecay:
    """Multiply the rate by `gamma` every `step_size` epochs."""

    def __init__(self, step_size: int = 1, gamma: float = 0.5):
        if int(step_size) < 1:
            raise ValueError(f"StepDecay step_size must be >= 1, got {step_size}")
        if not 0.0 < float(gamma) <= 1.0:
            raise ValueError(f"StepDecay gamma must be in (0, 1], got {gamma}")
        self.step_size = int(step_size)
        self.gamma = float(gamma)

    def factor(self, epoch: int, epochs: int) -> float:
        return self.gamma ** (epoch // self.step_size)


@register("lr_policy")
class CosineDecay:
    """Half a cosine from 1 at the first epoch down towards `min_factor` at the last."""

    def __init__(self, min_factor: float = 0.0):
        if not 0.0 <= float(min_factor) <= 1.0:
            raise ValueError(f"CosineDecay min_factor must be in [0, 1], got {min_factor}")
        self.min_factor = float(min_factor)

    def factor(self, epoch: int, epochs: int) -> float:
        progress = min(epoch / max(1, epochs), 1.0)
        return self.min_factor + (1.0 - self.min_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))
