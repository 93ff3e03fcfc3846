"""Hyperband (Li et al. 2018) with TAO's schedule: random configurations, successive halving.

All the work is in `brackets.SuccessiveHalving`; this file names the algorithm.
"""
from __future__ import annotations

from .base import register
from .brackets import SuccessiveHalving


@register
class Hyperband(SuccessiveHalving):
    name = "hyperband"
    summary = "successive-halving brackets (TAO's tables), random configurations, promoted jobs resume"
