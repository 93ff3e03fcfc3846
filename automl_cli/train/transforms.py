"""Transforms over a batch `{"image": N x C x H x W, "label": N x H x W}`.

Each draws from the torch.Generator it is given, so a run (and a resumed run) sees the
same augmentations.
"""
from __future__ import annotations

import torch

from .registry import register


def _spatial(tensor: torch.Tensor, image_like: bool) -> tuple[int, int]:
    """The (H, W) dims of a field: images carry a channel dim, labels do not."""
    return (2, 3) if image_like else (1, 2)


@register("transform")
class ScaleIntensity:
    """Rescale each image to [0, 1]."""

    def __init__(self, fields=("image",)):
        self.fields = list(fields)

    def __call__(self, batch: dict, generator: torch.Generator) -> dict:
        for field in self.fields:
            x = batch[field]
            flat = x.flatten(1)
            low, high = flat.min(1).values, flat.max(1).values
            shape = (-1,) + (1,) * (x.dim() - 1)
            batch[field] = (x - low.view(shape)) / (high - low).clamp_min(1e-8).view(shape)
        return batch


@register("transform")
class RandomAxisFlip:
    """With `probability`, flip a sample along a random spatial axis (all fields alike)."""

    def __init__(self, fields=("image", "label"), probability: float = 0.5):
        self.fields = list(fields)
        self.probability = float(probability)

    def __call__(self, batch: dict, generator: torch.Generator) -> dict:
        n = batch[self.fields[0]].shape[0]
        flip = torch.rand(n, generator=generator) < self.probability
        axis = torch.randint(0, 2, (n,), generator=generator)
        for field in self.fields:
            x = batch[field].clone()
            h_dim, w_dim = _spatial(x, field != "label")
            for i in torch.nonzero(flip).flatten().tolist():
                x[i] = torch.flip(x[i], dims=[(h_dim if axis[i] == 0 else w_dim) - 1])
            batch[field] = x
        return batch


@register("transform")
class AddGaussianNoise:
    """With `probability`, add N(0, std) noise to a sample."""

    def __init__(self, fields=("image",), probability: float = 0.5, std: float = 0.05):
        self.fields = list(fields)
        self.probability = float(probability)
        self.std = float(std)

    def __call__(self, batch: dict, generator: torch.Generator) -> dict:
        for field in self.fields:
            x = batch[field]
            noisy = torch.rand(x.shape[0], generator=generator) < self.probability
            noise = torch.randn(x.shape, generator=generator) * self.std
            batch[field] = x + noise * noisy.view((-1,) + (1,) * (x.dim() - 1))
        return batch
