"""Component registries: a config names a component, the registry builds it.

A Clara component is `{"name": ..., "args": {...}}`. Other keys next to them ("search",
"apply", ...) belong to the search and are ignored here, so a config with its search
sections still in place trains as it is written; the trainer itself reads "disabled"
(loop.py), leaving a disabled component out rather than building it.

This module imports no torch itself: the components register themselves when
`components` is imported, which `build` does on first use.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, TypeVar

KINDS = ("model", "loss", "optimizer", "transform", "dataset", "metric", "lr_policy")

REGISTRIES: dict[str, dict[str, Callable[..., Any]]] = {kind: {} for kind in KINDS}

T = TypeVar("T")


def _registry(kind: str) -> dict[str, Callable[..., Any]]:
    if kind not in REGISTRIES:
        raise ValueError(f"unknown component kind '{kind}' (known: {', '.join(KINDS)})")
    return REGISTRIES[kind]


def register(kind: str, name: str | None = None) -> Callable[[T], T]:
    """Decorator: make a class or factory buildable under `name` (default: its __name__)."""
    registry = _registry(kind)

    def add(factory: T) -> T:
        key = name or factory.__name__  # type: ignore[attr-defined]
        # Two components under one name would make a config mean different things
        # depending on import order.
        if key in registry and registry[key] is not factory:
            raise ValueError(f"{kind} '{key}' is registered twice")
        registry[key] = factory  # type: ignore[assignment]
        return factory

    return add


def known(kind: str) -> list[str]:
    """The names a config may use for `kind`, sorted."""
    _load_builtins()
    return sorted(_registry(kind))


def build(kind: str, component: dict, **extra: Any) -> Any:
    """Build the component `{"name": ..., "args": {...}}` names.

    `extra` are arguments the trainer supplies rather than the config (an optimizer's
    parameters). Unknown names and arguments the component does not take are ValueErrors
    that say what was wrong, so a bad config fails in one readable line.
    """
    _load_builtins()
    registry = _registry(kind)
    if not isinstance(component, dict) or "name" not in component:
        raise ValueError(f"a {kind} must be an object with a \"name\", got {component!r}")
    name = component["name"]
    if name not in registry:
        raise ValueError(f"unknown {kind} '{name}' (known: {', '.join(sorted(registry))})")
    args = component.get("args") or {}
    if not isinstance(args, dict):
        raise ValueError(f"{kind} '{name}': \"args\" must be an object, got {args!r}")
    factory = registry[name]
    try:
        # Checked against the signature before the call, so that a TypeError raised deep
        # inside a constructor is never mistaken for a config mistake.
        inspect.signature(factory).bind(**extra, **args)
    except TypeError as exc:
        raise ValueError(f"{kind} '{name}': {exc}") from exc
    except ValueError:
        pass  # no introspectable signature (a builtin): let the call speak for itself
    return factory(**extra, **args)


def _load_builtins() -> None:
    from . import components  # noqa: F401  (importing registers every built-in component)
