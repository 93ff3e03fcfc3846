"""Imports every module that registers components, so `registry.build` finds them all."""
from . import data, losses, lr_policies, metrics, models, optimizers, transforms  # noqa: F401
