"""SyntheticShapes2D: a 2-D segmentation data set drawn from a seed, in memory.

Each grayscale image holds one to three filled ellipses (rotated) or rectangles. They are
only a little brighter than the background, and their outline is drawn in relief, lit from
the top-left: a bright rim on the top-left side, a dark shadow just outside the
bottom-right side (as in DIC microscopy or an embossed picture). The background carries a
smooth intensity bias (a ramp rising towards the bottom-right, like a coil's bias field in
MRI, plus a random broad bump) larger than the shapes' contrast, and Gaussian noise. No
global threshold separates the shapes: the network has to learn local contrast and the
relief within a few epochs, and how well it does depends on its hyperparameters.

The fixed lighting direction and bias direction are deliberate: real images have a
canonical orientation, and they make flip augmentation a real choice (flipped samples
show a lighting the validation data never has, which costs accuracy in a short training)
rather than a no-op.

No download and no files: the same arguments give the same tensors on every machine.
"""
from __future__ import annotations

import numpy as np
import torch

from .registry import register


@register("dataset")
class SyntheticShapes2D:
    """`image`: float32 N x 1 x S x S; `label`: int64 N x S x S with 0 = background, 1 = shape."""

    def __init__(self, num_samples: int = 96, image_size: int = 32, seed: int = 0, noise: float = 0.1):
        n, size = int(num_samples), int(image_size)
        if n < 1 or size < 8:
            raise ValueError(f"SyntheticShapes2D needs num_samples >= 1 and image_size >= 8, got {n}, {size}")
        rng = np.random.default_rng(int(seed))
        images = np.empty((n, 1, size, size), np.float32)
        labels = np.empty((n, size, size), np.int64)
        for i in range(n):
            images[i, 0], labels[i] = _draw(rng, size, float(noise))
        self.image = torch.from_numpy(images)
        self.label = torch.from_numpy(labels)

    def __len__(self) -> int:
        return self.image.shape[0]

    def __getitem__(self, index) -> dict:
        return {"image": self.image[index], "label": self.label[index]}


def _shift_down_right(a: np.ndarray, step: int) -> np.ndarray:
    out = np.zeros_like(a)
    out[step:, step:] = a[:-step, :-step]
    return out


def _draw(rng: np.random.Generator, size: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    y, x = (np.mgrid[0:size, 0:size].astype(np.float64) + 0.5) / size
    mask = np.zeros((size, size), bool)
    for _ in range(int(rng.integers(1, 4))):
        cy, cx = rng.uniform(0.15, 0.85, 2)
        ry, rx = rng.uniform(0.07, 0.2, 2)
        if rng.random() < 0.5:
            angle = rng.uniform(0.0, np.pi)
            u = (y - cy) * np.cos(angle) + (x - cx) * np.sin(angle)
            v = -(y - cy) * np.sin(angle) + (x - cx) * np.cos(angle)
            mask |= (u / ry) ** 2 + (v / rx) ** 2 <= 1.0
        else:
            mask |= (np.abs(y - cy) <= ry) & (np.abs(x - cx) <= rx)
    ramp = rng.uniform(0.6, 1.0) * (0.6 * y + 0.4 * x)
    by, bx, width = rng.uniform(0.0, 1.0), rng.uniform(0.0, 1.0), rng.uniform(0.25, 0.5)
    bump = rng.uniform(-0.2, 0.2) * np.exp(-((y - by) ** 2 + (x - bx) ** 2) / (2 * width ** 2))
    contrast = rng.uniform(0.05, 0.2)
    inside = mask.astype(np.float64)
    # >0 on the lit top-left rim, <0 in the shadow just outside the bottom-right edge
    lit = inside - _shift_down_right(inside, max(1, size // 16))
    image = (rng.uniform(0.2, 0.4) + ramp + bump + contrast * inside + rng.uniform(0.15, 0.3) * lit
             + rng.normal(0.0, noise, (size, size)))
    return image.astype(np.float32), mask.astype(np.int64)
