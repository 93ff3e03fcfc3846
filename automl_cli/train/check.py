"""What `automl validate` (and the start of `automl run`) checks of a config the reference
trainer will train: the mistakes that would make every job fail.

- the sections the trainer reads exist: `train.model`, `train.loss`, `train.optimizer`,
  `train.data`, `validate.data`, `validate.metric` (`train.transforms`,
  `validate.transforms` and `train.lr_policy` are optional);
- each component is `{"name": ..., "args": {...}}` with a name its registry knows
  (`registry.py`), and each of its args is an init arg of that class (a misspelt name or
  arg names the known ones);
- a `"disabled"` is true or false, and what training needs (the model, the optimizer, the
  data sets, the metric, one loss) is not switched off for good;
- the metric config_automl.json searches by is one the trainer writes (the validation
  metric's `key`, or `train_loss`).

The config is checked as written, search sections and all: a search only sets args the
component already has (space.py checks that), and a component a search may switch on or
off (`"@disabled"` in its search or its `apply`) is checked whatever its written state.
The values themselves are left to the trainer, since a search changes them job by job.

This module imports no torch itself: the registries are loaded (and torch with them) when
`check_reference` runs, since checking init args needs the classes.
"""
from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from . import registry

# (section path, registry kind, what it is called in messages); one component each
_SINGLE = ((("train", "model"), "model", "model"),
           (("train", "optimizer"), "optimizer", "optimizer"),
           (("train", "data"), "dataset", "data set"),
           (("validate", "data"), "dataset", "data set"),
           (("validate", "metric"), "metric", "metric"))
# one component or a list of them; required or not
_MANY = ((("train", "loss"), "loss", "loss", True),
         (("train", "transforms"), "transform", "transform", False),
         (("validate", "transforms"), "transform", "transform", False),
         (("train", "lr_policy"), "lr_policy", "learning-rate policy", False))
# args the trainer gives a component itself: the config must not
_SUPPLIED = {"optimizer": {"params": "the model's parameters"}}
_DISABLED = "@disabled"


def check_reference(config: dict, path: Path, metric: str | None = None) -> list[str]:
    """Check `config` (config_train.json with its variables substituted) against the
    reference trainer's components, and that its metrics lines carry `metric` (the one
    config_automl.json searches by) when given. Raises ConfigError (file, JSON path, one
    line) on the first problem; returns what will be trained, as short lines for `automl
    validate`."""
    path = Path(path)
    if not isinstance(config, dict):
        raise ConfigError(path, [], "expected an object")
    for section in ("train", "validate"):
        if not isinstance(config.get(section), dict):
            got = "is missing" if section not in config else f"is {_kind(config[section])}"
            raise ConfigError(path, [section] if section in config else [],
                              f'the reference trainer needs a "{section}" section (an object); it {got}')
    batch = config.get("batch_size", 8)
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ConfigError(path, ["batch_size"], f"expected an integer >= 1, got {json.dumps(batch)}")

    names: dict[tuple, list[str]] = {}
    for where, kind, label in _SINGLE:
        component = _section(config, where, path, label)
        if isinstance(component, list):
            raise ConfigError(path, list(where), f"expected one {label} (an object), got a list: the reference "
                                                 f"trainer trains with exactly one {label}")
        _component(component, list(where), kind, label, path)
        if component.get("disabled") is True and not _switchable(component):
            raise ConfigError(path, [*where, "disabled"], f"the {label} is disabled, but training needs it")
        names[where] = [component["name"]]
    for where, kind, label, required in _MANY:
        if not required and (_missing(config, where) or _at(config, where) is None):
            names[where] = []
            continue
        section = _section(config, where, path, label)
        items = section if isinstance(section, list) else [section]
        if required and not items:
            raise ConfigError(path, list(where), f"expected a {label} or a list of them, got []")
        for i, component in enumerate(items):
            at = [*where, i] if isinstance(section, list) else list(where)
            _component(component, at, kind, label, path)
        off = [c.get("disabled") is True and not _switchable(c) for c in items]
        if required and all(off):
            raise ConfigError(path, list(where), f"every {label} is disabled (and no search switches one on); "
                                                 "at least one must be enabled")
        names[where] = [c["name"] + (" (disabled)" if o else "") for c, o in zip(items, off)]

    key = _metric_key(config["validate"]["metric"])
    if metric is not None and key is not None and metric not in (key, "train_loss"):
        at = ["validate", "metric", "args", "key"] if "key" in (config["validate"]["metric"].get("args") or {}) \
            else ["validate", "metric"]
        raise ConfigError(path, at, f"the trainer writes '{key}' (and 'train_loss') each epoch, but the search's "
                                    f"metric is '{metric}' (config_automl.json): every job would end without it")

    def listed(where: tuple) -> str:
        return " + ".join(names[where]) or "none"

    parts = [f"model {listed(('train', 'model'))}", f"loss {listed(('train', 'loss'))}",
             f"optimizer {listed(('train', 'optimizer'))}"]
    if names[("train", "lr_policy")]:
        parts.append(f"lr policy {listed(('train', 'lr_policy'))}")
    parts += [f"data {listed(('train', 'data'))} / {listed(('validate', 'data'))}",
              f"metric {listed(('validate', 'metric'))}" + (f" ({key})" if key else ""),
              f"{len(names[('train', 'transforms')])} train and {len(names[('validate', 'transforms')])} validate "
              "transform(s)"]
    return [f"trainer reference: {', '.join(parts)}; every name and arg is known"]


def _component(component: Any, at: list, kind: str, label: str, path: Path) -> None:
    """One `{"name", "args"}`: a known name, args that are init args of its class."""
    if not isinstance(component, dict) or not isinstance(component.get("name"), str):
        extra = ' (a "path" to your own class works only with a train_command of your own)' \
            if isinstance(component, dict) and "path" in component else ""
        raise ConfigError(path, at, f'expected a {label} {{"name": ..., "args": {{...}}}}, got '
                                    f"{_short(component)}{extra}")
    name = component["name"]
    known = registry.known(kind)
    if name not in known:
        raise ConfigError(path, [*at, "name"], f"unknown {label} '{name}' (known: {', '.join(known)})")
    args = component.get("args", {})
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise ConfigError(path, [*at, "args"], f"expected an object of {name}'s args, got {_short(args)}")
    if "disabled" in component and not isinstance(component["disabled"], bool):
        raise ConfigError(path, [*at, "disabled"], f"expected true or false, got {_short(component['disabled'])}")
    factory = registry.REGISTRIES[kind][name]
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return  # no introspectable signature: the trainer's own call will judge
    parameters = signature.parameters
    supplied = _SUPPLIED.get(kind, {})
    for arg in args:
        if arg in supplied:
            raise ConfigError(path, [*at, "args", arg], f"{name}'s '{arg}' is given by the trainer "
                                                        f"({supplied[arg]}); remove it from the config")
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    accepted = [p.name for p in parameters.values()
                if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
                and p.name not in supplied and p.name != "self"]
    for arg in args:
        if arg not in accepted:
            raise ConfigError(path, [*at, "args", arg], f"{name} has no arg '{arg}' (its args: "
                                                        f"{', '.join(accepted) or 'none'})")
    missing = [p.name for p in parameters.values() if p.default is inspect.Parameter.empty
               and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
               and p.name not in supplied and p.name not in args]
    if missing:
        raise ConfigError(path, [*at, "args"], f"{name} needs the arg(s) {', '.join(missing)}")


def _metric_key(component: dict) -> str | None:
    """The key the metric's value is written under: its `key` arg, else the class's default."""
    args = component.get("args") or {}
    if "key" in args:
        return str(args["key"])
    try:
        default = inspect.signature(registry.REGISTRIES["metric"][component["name"]]).parameters["key"].default
    except (KeyError, TypeError, ValueError):
        return None
    return None if default is inspect.Parameter.empty else str(default)


def _switchable(component: dict) -> bool:
    """Does a search switch this component on or off (its own "@disabled" item, or an apply)?"""
    apply = component.get("apply")
    if isinstance(apply, dict) and _DISABLED in apply:
        return True
    for item in component.get("search") or []:
        written = item.get("args") if isinstance(item, dict) else None
        written = [written] if isinstance(written, str) else written if isinstance(written, list) else []
        if any(isinstance(a, str) and a.partition("#")[0] == _DISABLED for a in written):
            return True
    return False


def _section(config: dict, where: tuple, path: Path, label: str) -> Any:
    node: Any = config
    for depth, key in enumerate(where):
        if not isinstance(node, dict) or key not in node:
            raise ConfigError(path, list(where[:depth]), f'the reference trainer needs "{".".join(where)}" (the '
                                                         f"{label}); the config has no {'.'.join(where[:depth + 1])}")
        node = node[key]
    return node


def _missing(config: dict, where: tuple) -> bool:
    node: Any = config
    for key in where:
        if not isinstance(node, dict) or key not in node:
            return True
        node = node[key]
    return False


def _at(config: dict, where: tuple) -> Any:
    node: Any = config
    for key in where:
        node = node[key]
    return node


def _kind(value: Any) -> str:
    return {list: "a list", str: "a string", type(None): "null", bool: "a boolean"}.get(type(value), "a number")


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."
