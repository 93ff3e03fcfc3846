"""SyntheticShapes2D: a segmentation data set drawn from a seed, in memory.

Each image holds one to three ellipses or rectangles whose brightness is only a little
above a background that carries a smooth intensity ramp and noise, so a threshold does
not solve it and the network has to learn shape and context. No download, no files: the
same seed gives the same data on every machine.
"""
from __future__ import annotations

import numpy as np
import torch

from .registry import register


@register("dataset")
class SyntheticShapes2D:
    def __init__(self, num_samples: int = 96, image_size: int = 32, seed: int = 0, noise: float = 0.1):
        rng = np.random.default_rng(seed)
        n, size = int(num_samples), int(image_size)
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
        images = np.empty((n, 1, size, size), np.float32)
        labels = np.zeros((n, size, size), np.int64)
        for i in range(n):
            mask = np.zeros((size, size), bool)
            for _ in range(rng.integers(1, 4)):
                cy, cx = rng.uniform(0.15, 0.85, 2)
                ry, rx = rng.uniform(0.06, 0.22, 2)
                if rng.random() < 0.5:
                    mask |= ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
                else:
                    mask |= (np.abs(yy - cy) <= ry) & (np.abs(xx - cx) <= rx)
            ramp = rng.uniform(-0.3, 0.3) * yy + rng.uniform(-0.3, 0.3) * xx
            image = 0.3 + ramp + rng.uniform(0.15, 0.35) * mask + rng.normal(0.0, noise, (size, size))
            images[i, 0], labels[i] = image, mask
        self.image = torch.from_numpy(images)
        self.label = torch.from_numpy(labels)

    def __len__(self) -> int:
        return len(self.image)
