"""Transforms over a batch `{"image": float N x C x H x W, "label": long N x H x W}`.

Each transform is called as `transform(batch, generator)` and returns the batch. All
randomness comes from the torch.Generator passed in: the trainer keeps that generator in
its checkpoint, which is what lets a resumed run see exactly the augmentations an
uninterrupted one would have.

Random transforms draw the same amount of randomness whatever their probability, so that
changing one transform's probability does not shift the random stream of the others.
"""
from __future__ import annotations

from typing import Iterable

import torch

from .registry import register


def _per_sample(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A boolean per-sample mask shaped to broadcast over one field of the batch."""
    return mask.view((-1,) + (1,) * (like.dim() - 1)).to(like.device)


def _check_fields(batch: dict, fields: list[str], name: str) -> None:
    missing = [f for f in fields if f not in batch]
    if missing:
        raise KeyError(f"{name}: the batch has no field(s) {missing}; it has {sorted(batch)}")


def _probability(transform: str, value: float) -> float:
    """A transform's probability, checked to lie in [0, 1]."""
    probability = float(value)
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"{transform} probability must be in [0, 1], got {value}")
    return probability


@register("transform")
class ScaleIntensity:
    """Rescale each sample of each field to [0, 1] (min-max over the sample)."""

    def __init__(self, fields: Iterable[str] = ("image",)):
        self.fields = list(fields)

    def __call__(self, batch: dict, generator: torch.Generator) -> dict:
        _check_fields(batch, self.fields, "ScaleIntensity")
        for field in self.fields:
            x = batch[field].float()
            flat = x.flatten(1)
            low, high = flat.min(dim=1).values, flat.max(dim=1).values
            shape = (-1,) + (1,) * (x.dim() - 1)
            # a constant image becomes zeros instead of NaN
            batch[field] = (x - low.view(shape)) / (high - low).clamp_min(1e-8).view(shape)
        return batch


@register("transform")
class RandomAxisFlip:
    """With `probability`, flip a sample along one spatial axis picked at random (H or W).

    Every field of a sample gets the same flip, so image and label stay aligned. The
    spatial axes are the last two of each field, which covers images (N x C x H x W) and
    labels (N x H x W) alike.
    """

    def __init__(self, fields: Iterable[str] = ("image", "label"), probability: float = 0.5):
        self.fields = list(fields)
        self.probability = _probability("RandomAxisFlip", probability)

    def __call__(self, batch: dict, generator: torch.Generator) -> dict:
        _check_fields(batch, self.fields, "RandomAxisFlip")
        n = batch[self.fields[0]].shape[0]
        flip = torch.rand(n, generator=generator) < self.probability
        axis = torch.randint(0, 2, (n,), generator=generator)  # 0: H (dim -2), 1: W (dim -1)
        if not bool(flip.any()):
            return batch
        for field in self.fields:
            x = batch[field]
            for choice, dim in ((0, -2), (1, -1)):
                chosen = _per_sample(flip & (axis == choice), x)
                x = torch.where(chosen, torch.flip(x, dims=[dim]), x)
            batch[field] = x
        return batch


@register("transform")
class AddGaussianNoise:
    """With `probability`, add zero-mean Gaussian noise of `std` to a sample."""

    def __init__(self, fields: Iterable[str] = ("image",), probability: float = 0.5, std: float = 0.05):
        self.fields = list(fields)
        self.probability = _probability("AddGaussianNoise", probability)
        self.std = float(std)

    def __call__(self, batch: dict, generator: torch.Generator) -> dict:
        _check_fields(batch, self.fields, "AddGaussianNoise")
        for field in self.fields:
            x = batch[field]
            noisy = torch.rand(x.shape[0], generator=generator) < self.probability
            noise = torch.randn(x.shape, generator=generator, dtype=x.dtype) * self.std
            batch[field] = x + noise.to(x.device) * _per_sample(noisy, x)
        return batch
