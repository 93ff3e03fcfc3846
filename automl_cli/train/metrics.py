"""MeanDice: the mean Dice of the foreground classes over a validation set.

A metric accumulates over batches (`reset`, `update`, `value`) so that its value does not
depend on how the set is cut into batches.
"""
from __future__ import annotations

import torch

from .registry import register


@register("metric")
class MeanDice:
    """Prediction = argmax over channels. Each sample's score is the mean over foreground
    classes of 2|P∩T| / (|P|+|T|); the set's value is the mean over samples.

    A class absent from both prediction and label scores 1: predicting nothing where
    there is nothing is right, and 0 would punish empty slices that are common in practice.
    """

    higher_is_better = True

    def __init__(self, key: str = "val_mean_dice"):
        self.key = str(key)
        self.reset()

    def reset(self) -> None:
        self._sum = 0.0
        self._count = 0

    def update(self, logits: torch.Tensor, label: torch.Tensor) -> None:
        scores = self.per_sample(logits, label)
        # Summed in float64 on the host: the set's value is then independent of the device
        # and of float32 rounding in long sums.
        self._sum += float(scores.double().sum())
        self._count += int(scores.numel())

    def value(self) -> float:
        return self._sum / self._count if self._count else float("nan")

    @staticmethod
    def per_sample(logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        pred = logits.argmax(dim=1)
        spatial = tuple(range(1, pred.dim()))
        scores = []
        for cls in range(1, logits.shape[1]):
            p, t = pred == cls, label == cls
            inter = (p & t).sum(spatial).double()
            total = (p.sum(spatial) + t.sum(spatial)).double()
            scores.append(torch.where(total > 0, 2.0 * inter / total.clamp_min(1.0), torch.ones_like(total)))
        if not scores:  # a one-class model has no foreground to score
            return torch.full((logits.shape[0],), float("nan"), dtype=torch.float64)
        return torch.stack(scores, dim=1).mean(dim=1)
