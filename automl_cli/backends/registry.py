"""The backends a run can use, by name.

A registration says where a backend's code lives ("package.module:attr", imported only
when a run uses it, so `automl --help` and the read-only commands never import SLURM's
code) and which of config_automl.json's executors selects it. The object there is a
`base.BackendKind`: how the backend places the run's workers from the settings, and how
it makes the Backend for a run. Adding a backend is its file and one `register` line:

    register("mine", "my_package.my_backend:KIND", executor="MyExecutor")

after which `--backend mine` (and executor.name "MyExecutor") select it.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import UsageError

if TYPE_CHECKING:
    from .base import BackendKind


@dataclass(frozen=True)
class Registration:
    name: str
    target: str  # "package.module:attr" of the backend's BackendKind
    executor: str | None = None  # the executor.name of config_automl.json that selects it


_REGISTRY: dict[str, Registration] = {}


def register(name: str, target: str, *, executor: str | None = None) -> None:
    """Make backend `name` selectable (`--backend name`; executor.name `executor`). Its
    module is imported when a run first uses it."""
    module, sep, attr = target.partition(":")
    if not sep or not module or not attr:
        raise ValueError(f"backend {name!r}: target {target!r} is not 'package.module:attr'")
    _REGISTRY[name] = Registration(name, target, executor)


def unregister(name: str) -> None:
    _REGISTRY.pop(name, None)


def names() -> list[str]:
    """The registered backends, in the order they were registered."""
    return list(_REGISTRY)


def executors() -> dict[str, str]:
    """config_automl.json's executor names -> the backend each selects."""
    return {r.executor: r.name for r in _REGISTRY.values() if r.executor}


def get(name: str) -> "BackendKind":
    """The BackendKind of backend `name` (its module imported now); an unknown name is a
    one-line usage error naming the known ones."""
    registration = _REGISTRY.get(name)
    if registration is None:
        raise UsageError(f"unknown backend {name!r} (known: {', '.join(_REGISTRY)})")
    module, _, attr = registration.target.partition(":")
    return getattr(importlib.import_module(module), attr)


register("local", "automl_cli.backends.local:KIND", executor="MMARExecutor")
register("slurm", "automl_cli.backends.slurm:KIND", executor="SlurmExecutor")
