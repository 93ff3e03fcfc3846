"""TAO-style customisation of the search space, from config_automl.json:

- `remove_default_automl_parameters`: search items to drop, by name or dotted path;
- `additional_automl_parameters`: dotted paths into config_train.json to search too;
- `custom_automl_ranges`: per parameter (name or dotted path) `valid_min`, `valid_max`,
  `valid_options`, `option_weights`, and `disable_list: true` to read a numeric option list
  as the continuous range it spans.

An added parameter without a custom range gets one derived from its current value, and
`automl validate` prints how.
"""
from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

from .errors import ConfigError, json_path
from .ranges import Bounds, NumberRange, choice_weights
from .space import Param, SearchSpace, _check_conditions, check_finite, check_switches, dotted_path


def dotted(p: Param) -> list[str]:
    """The dotted paths that name a parameter: `train.optimizer.args.lr` for each arg
    (`train.transforms.1.disabled` for "@disabled", the tag itself for a free tag)."""
    return [dotted_path(p.holder, arg, p.direct) for arg in p.args]


def customize(space: SearchSpace, train_doc: dict, automl: dict, automl_file: Path) -> tuple[SearchSpace, list[str]]:
    """The search space after removals, additions and custom ranges; and what was derived."""
    notes: list[str] = []
    params = list(space.params)
    for i, key in enumerate(automl.get("remove_default_automl_parameters") or []):
        keep = [p for p in params if not _names(p, key)]
        if len(keep) == len(params):
            raise ConfigError(automl_file, ["remove_default_automl_parameters", i],
                              f'"{key}" names no search parameter (known: {", ".join(p.name for p in params)})')
        params = keep
    ranges = automl.get("custom_automl_ranges") or {}
    check_finite(ranges, automl_file, ["custom_automl_ranges"])
    for i, path in enumerate(automl.get("additional_automl_parameters") or []):
        where = ["additional_automl_parameters", i]
        if not isinstance(path, str) or not path:
            raise ConfigError(automl_file, where, "expected a dotted path into config_train.json")
        if any(path in dotted(p) for p in params):
            raise ConfigError(automl_file, where, f'"{path}" is searched already')
        params.append(_added(path, train_doc, ranges.get(path), automl_file, where, notes))
    used = set()
    for n, p in enumerate(params):
        for key, spec in ranges.items():
            if _names(p, key) and p.origin == "search section":
                params[n] = _ranged(p, spec, automl_file, ["custom_automl_ranges", key])
                problem = check_switches(params[n])
                if problem:
                    raise ConfigError(automl_file, ["custom_automl_ranges", key], problem)
                used.add(key)
            elif p.origin.startswith("additional") and key in dotted(p):
                used.add(key)
    for key in ranges:
        if key not in used:
            raise ConfigError(automl_file, ["custom_automl_ranges", key],
                              f'"{key}" names no searched parameter (known: {", ".join(p.name for p in params)})')
    _check_conditions(params, automl_file)
    return SearchSpace(params), notes


def _names(p: Param, key: str) -> bool:
    return key == p.name or key in dotted(p) or key == p.source or key in p.slot_names


def _added(path: str, doc: dict, spec: dict | None, file: Path, where: list, notes: list[str]) -> Param:
    parts: list[Any] = path.split(".")
    node: Any = doc
    for depth, part in enumerate(parts):
        if isinstance(node, list) and part.isdigit():
            part = parts[depth] = int(part)
        if not isinstance(node, (dict, list)) or (isinstance(node, dict) and part not in node) or \
                (isinstance(node, list) and not (isinstance(part, int) and part < len(node))):
            reached = ".".join(map(str, parts[:depth])) or "the top level"
            raise ConfigError(file, where, f'no "{part}" in config_train.json at {reached} (path "{path}")')
        if depth < len(parts) - 1:
            node = node[part]
    value = node[parts[-1]]
    in_args = len(parts) >= 2 and parts[-2] == "args"
    holder = tuple(parts[:-2] if in_args else parts[:-1])
    param = Param(name=path, kind="float", domain="additional", holder=holder, args=(parts[-1],),
                  direct=not in_args and holder != (), source=json_path(["additional_automl_parameters", where[1]]),
                  origin="additional parameter")
    if spec is not None:
        return _ranged(param, spec, file, ["custom_automl_ranges", path], current=value)
    derived = _derive(param, value, file, where)
    notes.append(f"{path}: {derived.describe()} ({derived.kind}) derived from its current value {value!r}")
    return derived


def _derive(p: Param, value: Any, file: Path, where: list) -> Param:
    """A sensible range around a current value: a decade either side of a positive float (log),
    half to double an int, both values of a bool."""
    if isinstance(value, bool):
        return replace(p, kind="bool", choices=((False,), (True,)), weights=(0.5, 0.5))
    if isinstance(value, int):
        low, high = (max(1, value // 2), max(value * 2, value + 1)) if value > 0 else (value - 5, value + 5)
        return replace(p, kind="int", low=low, high=high)
    if isinstance(value, float) and math.isfinite(value):
        if value > 0:
            return replace(p, low=value / 10, high=value * 10, log=True)
        return replace(p, low=value - 1.0, high=value + 1.0)
    raise ConfigError(file, where, f"cannot derive a range from the current value {value!r}: give valid_options "
                                   "(or valid_min/valid_max) in custom_automl_ranges")


def _ranged(p: Param, spec: Any, file: Path, where: list, current: Any = None) -> Param:
    """Apply one custom_automl_ranges entry (its keys and their types checked by the schema)."""
    origin = p.origin + " + custom range"
    options = spec.get("valid_options")
    if options is not None:
        if spec.get("disable_list"):
            if not all(isinstance(o, (int, float)) and not isinstance(o, bool) for o in options) or len(options) < 2:
                raise ConfigError(file, where + ["valid_options"], "disable_list needs two or more numbers")
            kind = "int" if all(isinstance(o, int) for o in options) else "float"
            return replace(p, kind=kind, low=min(options), high=max(options), choices=None, weights=None,
                           origin=origin)
        norm = choice_weights(spec.get("option_weights"), len(options), file, where + ["option_weights"], "option")
        width = len(p.args)
        choices = tuple(tuple(o) if isinstance(o, list) and width > 1 else (o,) * width for o in options)
        return replace(p, kind="enum", choices=choices, weights=norm, low=None, high=None, log=False, origin=origin)
    low, high = spec.get("valid_min", p.low), spec.get("valid_max", p.high)
    if low is None or high is None:
        raise ConfigError(file, where, "give valid_min and valid_max (or valid_options)")
    kind = p.kind if p.kind in ("float", "int") else ("int" if isinstance(current, int) and isinstance(low, int)
                                                        and isinstance(high, int) else "float")
    # the parameter's own log scale and step hold in its custom range too: a range they do
    # not fit is an error here, as in a search item, never a scale silently dropped
    why_log = f" ({p.name} is searched on a log scale, {p.source})" if p.log else ""
    number = NumberRange(kind, low, high, log=p.log, step=p.step).checked(file, Bounds("valid_min", "valid_max", where),
                                                                            why_log)
    return replace(p, **number.fields(), choices=None, weights=None, origin=origin)
