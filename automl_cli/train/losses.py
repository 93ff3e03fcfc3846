"""DiceLoss: one minus the soft Dice of the predicted probabilities and the one-hot label."""
from __future__ import annotations

import torch
from torch.nn import functional as F

from .registry import register


@register("loss")
class DiceLoss:
    def __init__(self, smooth: float = 1e-5, include_background: bool = False):
        self.smooth = smooth
        self.include_background = include_background

    def __call__(self, probs: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        target = F.one_hot(label, probs.shape[1]).permute(0, 3, 1, 2).float()
        if not self.include_background:
            probs, target = probs[:, 1:], target[:, 1:]
        dims = (2, 3)
        overlap = (probs * target).sum(dims)
        total = probs.sum(dims) + target.sum(dims)
        return 1.0 - ((2 * overlap + self.smooth) / (total + self.smooth)).mean()
