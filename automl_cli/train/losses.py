"""DiceLoss: one minus the soft Dice between predicted probabilities and the one-hot label.

The loss takes probabilities, not logits: the trainer applies the model's own final
activation first, so softmax and sigmoid networks are trained the way they predict.
"""
from __future__ import annotations

import torch
from torch.nn import functional as F

from .registry import register


@register("loss")
class DiceLoss:
    """Soft Dice per sample and class, averaged; `smooth` keeps empty classes finite.

    Background is left out by default because with two classes it is the complement of
    the foreground and would dominate the average with easy pixels.
    """

    def __init__(self, smooth: float = 1e-5, include_background: bool = False):
        self.smooth = float(smooth)
        self.include_background = bool(include_background)

    def __call__(self, probs: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        num_classes = probs.shape[1]
        target = F.one_hot(label.long(), num_classes).movedim(-1, 1).to(probs.dtype)
        if not self.include_background and num_classes > 1:
            probs, target = probs[:, 1:], target[:, 1:]
        spatial = tuple(range(2, probs.dim()))
        overlap = (probs * target).sum(spatial)
        total = probs.sum(spatial) + target.sum(spatial)
        dice = (2.0 * overlap + self.smooth) / (total + self.smooth)
        return 1.0 - dice.mean()


@register("loss")
class BCELoss:
    """Binary cross entropy of each class channel against the one-hot label, averaged.

    Per channel, so it reads softmax and sigmoid outputs alike (a sigmoid network's
    channels are independent probabilities, which a multi-class cross entropy would not
    accept). Probabilities are clamped away from 0 and 1 so the log stays finite.
    """

    def __init__(self, include_background: bool = True, eps: float = 1e-6):
        self.include_background = bool(include_background)
        self.eps = float(eps)

    def __call__(self, probs: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        num_classes = probs.shape[1]
        target = F.one_hot(label.long(), num_classes).movedim(-1, 1).to(probs.dtype)
        if not self.include_background and num_classes > 1:
            probs, target = probs[:, 1:], target[:, 1:]
        return F.binary_cross_entropy(probs.clamp(self.eps, 1.0 - self.eps), target)
