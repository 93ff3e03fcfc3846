"""Algorithm classes for the names in catalogue.py: each preset (random, bayesian, bohb,
...) and each SCHEDULER+PROPOSER pair is its scheduler's class bound to its proposer's,
with the preset's fixed options. New pairs are a name, not a class of their own."""
from __future__ import annotations

import importlib

from . import catalogue
from .base import REGISTRY, Algorithm

_PAIRS: dict[str, type[Algorithm]] = {}  # pair name -> class, made on first use


def _load(where: str) -> type:
    module, _, attr = where.partition(":")
    return getattr(importlib.import_module(f"{__package__}.{module}"), attr)


def build(entry: catalogue.Entry) -> type[Algorithm]:
    """The Algorithm class of a preset or pair: its scheduler, bound to its proposer."""
    scheduler = _load(catalogue.SCHEDULERS[entry.scheduler].where)
    proposer = _load(catalogue.PROPOSERS[entry.proposer].where)
    attributes = {
        "name": entry.name,
        "summary": entry.summary,
        "parameters": entry.parameters,
        "proposer_class": proposer,
        "can_adopt": scheduler.can_adopt and proposer.can_adopt,
        "scheduler_name": entry.scheduler,
        "proposer_name": entry.proposer,
        "__module__": __name__,
        "__doc__": f"{entry.name}: the {entry.scheduler} scheduler with the {entry.proposer} proposer.",
        **entry.options,
    }
    return type(entry.name.replace("+", "_"), (scheduler,), attributes)


def load_all() -> None:
    """Every preset into base.REGISTRY (once)."""
    for name, entry in catalogue.PRESETS.items():
        if name not in REGISTRY:
            REGISTRY[name] = build(entry)


def algorithm_class(name: str) -> type[Algorithm]:
    """The class of a preset or pair; a pair that is a preset is the preset's class."""
    entry = catalogue.entry(name)  # a UsageError for unknown names and invalid pairs
    load_all()
    if entry.preset:
        return REGISTRY[entry.name]
    if name not in _PAIRS:
        _PAIRS[name] = build(entry)
    return _PAIRS[name]


def all_names() -> list[str]:
    """Every preset, then every pair that is not one (what the conformance suite runs)."""
    return list(catalogue.PRESETS) + [e.name for e in catalogue.pairs()]
