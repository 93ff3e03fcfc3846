"""Optimizers by name; args are torch's."""
import torch

from .registry import register

register("optimizer", "Adam")(torch.optim.Adam)
register("optimizer", "SGD")(torch.optim.SGD)
register("optimizer", "AdamW")(torch.optim.AdamW)
