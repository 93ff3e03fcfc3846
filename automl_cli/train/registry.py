"""Component registries: a config names a component, the registry builds it.

A Clara component is `{"name": ..., "args": {...}}`; other keys beside them ("search",
"apply") belong to the search and are ignored here.
"""
from __future__ import annotations

from typing import Any, Callable

REGISTRIES: dict[str, dict[str, Callable[..., Any]]] = {
    "model": {}, "loss": {}, "optimizer": {}, "transform": {}, "dataset": {}, "metric": {},
}


def register(kind: str, name: str | None = None):
    """Class decorator: make `cls` buildable by `name` (default: its class name)."""
    def add(cls):
        REGISTRIES[kind][name or cls.__name__] = cls
        return cls
    return add


def build(kind: str, component: dict, **extra: Any) -> Any:
    """Build the component a config names; `extra` are arguments the trainer supplies
    (e.g. the model's parameters for an optimizer)."""
    from . import components  # noqa: F401  (registers the built-in components)

    name = component.get("name")
    known = REGISTRIES[kind]
    if name not in known:
        raise ValueError(f"unknown {kind} '{name}' (known: {', '.join(sorted(known))})")
    return known[name](**extra, **(component.get("args") or {}))
