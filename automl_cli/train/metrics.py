"""MeanDice: mean Dice of the foreground classes over a data set (prediction = argmax)."""
from __future__ import annotations

import torch

from .registry import register


@register("metric")
class MeanDice:
    higher_is_better = True

    def __init__(self, key: str = "val_mean_dice"):
        self.key = key

    def __call__(self, logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        """Per-sample mean foreground Dice; an empty class in both prediction and label counts as 1."""
        pred = logits.argmax(dim=1)
        scores = []
        for cls in range(1, logits.shape[1]):
            p, t = (pred == cls).float(), (label == cls).float()
            inter, total = (p * t).sum((1, 2)), p.sum((1, 2)) + t.sum((1, 2))
            scores.append(torch.where(total > 0, 2 * inter / total.clamp_min(1e-12), torch.ones_like(total)))
        return torch.stack(scores, dim=1).mean(dim=1)
