"""Optimizers by name. Their args are torch's own (`lr`, `weight_decay`, `momentum`, ...),
so a Clara config's optimizer section passes straight through."""
from __future__ import annotations

import torch

from .registry import register

register("optimizer", "Adam")(torch.optim.Adam)
register("optimizer", "AdamW")(torch.optim.AdamW)
register("optimizer", "SGD")(torch.optim.SGD)
