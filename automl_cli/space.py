"""The search space: parsed from the "search" sections of config_train.json.

Clara's format, exactly as its guide describes it: a component `{"name", "args"}` carries
`"search": [item, ...]`; an item names one or more of the component's `args`, a `type` and
`targets`. A `float` item draws one number in `[min, max]` and gives it to every listed
arg; an `enum` item picks one choice, a list holding one value per arg, so related args
move together. We add `int`, `"log": true` (float/int) and enum `"weights"`.

Algorithms see a parameter by its name and work in the unit cube (`encode`/`decode`):
one coordinate per float/int (log-scaled when asked), one one-hot block per enum, so a
model never reads an arbitrary order into the choices.

Clara's further forms (docs/usage.md, "Search sections"):

- `"@disabled"` among an item's args searches the component's own `"disabled"` attribute;
- `"arg#name"` names the value drawn for `arg`; another component's `"apply": {"arg2":
  "name"}` receives that same value, so one draw lands in several places;
- a top-level item's arg that is not a first-level key is a free tag: a value that exists
  only to be consumed by `apply` (e.g. which of several losses is disabled); written with
  an "@" ("@myTransformDisable", as Clara 4.1's examples do) it is a free tag whatever its
  name, the same tag as without the "@";
- a top-level `"lr_search": [min, max]` searches the learning rate.

A parameter's args are its slots: one value per arg (an enum choice holds one per slot, a
float gives its one value to every slot), and each slot has a name that `apply` refers to.
"""
from __future__ import annotations

import copy
import json
import math
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .errors import ConfigError, json_path
from .mmar import validate
from .ranges import Bounds, NumberRange, choice_weights

Location = tuple  # JSON path parts (str keys, int indices) from the document root

DISABLED = "@disabled"  # the arg that stands for a component's "disabled" attribute
# keys that only the search reads: dropped from a job's config with remove_search_augs
SEARCH_KEYS = ("search", "apply")
LR_SEARCH = "lr_search"


@dataclass(frozen=True)
class Place:
    """One more place a parameter's slot is written to: a component's `apply` entry."""

    holder: Location  # the component
    key: str  # an arg of the component, or DISABLED
    slot: int  # which of the parameter's slots (a float has its one value in every slot)
    source: str  # the JSON path of the apply entry


@dataclass(frozen=True)
class Param:
    """One searched quantity: one "search" item."""

    name: str
    kind: str  # "float" | "int" | "enum"
    domain: str
    holder: Location  # where the component (or the root) sits in the document
    args: tuple[str, ...]
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[tuple, ...] | None = None
    weights: tuple[float, ...] | None = None
    step: float | None = None  # quantised ranges: low + k * step
    condition: tuple[str, tuple] | None = None  # (parameter, values it must take) for this one to matter
    direct: bool = False  # the args are keys of the holder itself, not of its "args"
    source: str = ""  # the item's JSON path, for messages and reports
    origin: str = "search section"  # or "additional parameter", with " + custom range" when one applied
    slots: tuple[str, ...] = ()  # each arg's value's name (alias, tag or default); () for the defaults
    tags: tuple[str, ...] = ()  # args that are free tags: written nowhere but where "apply" names them
    applied: tuple[Place, ...] = ()  # where "apply" entries send the values too

    @property
    def slot_names(self) -> tuple[str, ...]:
        # the parser names every slot; a parameter made elsewhere (an added one) has one arg
        return self.slots or tuple(self.name if len(self.args) == 1 else f"{self.name}[{i}]"
                                   for i in range(len(self.args)))

    def slot_values(self, value: Any) -> list:
        """One value per slot: an enum's choice, or a float's one value repeated."""
        return list(value) if self.is_choice else [value] * len(self.args)

    def places(self) -> list[str]:
        """Where this parameter's values are written, as dotted paths, apply entries marked."""
        out = [dotted_path(self.holder, arg, self.direct) for arg in self.args if arg not in self.tags]
        several = len(self.args) > 1
        for place in self.applied:
            slot = f"{self.slot_names[place.slot]} -> " if several else ""
            out.append(f"{slot}{dotted_path(place.holder, place.key, False)} (apply)")
        return out

    @property
    def is_choice(self) -> bool:
        """enum and bool pick one of a list of choices (bool: [false..], [true..])."""
        return self.kind in ("enum", "bool")

    @property
    def width(self) -> int:
        """Coordinates this parameter takes in the unit cube."""
        return len(self.choices) if self.is_choice else 1

    def sample(self, rng: np.random.Generator) -> Any:
        if self.is_choice:
            index = rng.choice(len(self.choices), p=self.weights)
            return list(self.choices[index])
        return self.from_unit(rng.random())

    def active(self, values: dict[str, Any]) -> bool:
        """Does this parameter matter, given the others' values?"""
        if self.condition is None:
            return True
        parent, allowed = self.condition
        value = values.get(parent)
        return any(value == a or value == [a] for a in allowed)

    def from_unit(self, u: float) -> float | int:
        """A number in [low, high] from a unit coordinate (log scale when asked)."""
        u = min(max(float(u), 0.0), 1.0)
        if self.log:
            value = math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        else:
            value = self.low + u * (self.high - self.low)
        if self.step:
            value = self.low + round((value - self.low) / self.step) * self.step
            if value > self.high + 1e-12:
                value -= self.step
        if self.kind == "int":
            return int(min(max(round(value), self.low), self.high))
        return float(min(max(value, self.low), self.high))

    def on_step(self, value: float) -> bool:
        if not self.step:
            return True
        k = (value - self.low) / self.step
        return abs(k - round(k)) < 1e-6

    def to_unit(self, value: float) -> float:
        if self.log:
            return (math.log(value) - math.log(self.low)) / (math.log(self.high) - math.log(self.low))
        return (value - self.low) / (self.high - self.low)

    def choice_index(self, value: Any) -> int:
        return [list(c) for c in self.choices].index(list(value))

    def describe(self) -> str:
        if self.is_choice:
            text = " | ".join(_short(c) for c in self.choices)
            if self.weights and len(set(self.weights)) > 1:
                text += "  weights " + ", ".join(f"{w:.2f}" for w in self.weights)
            return text
        return (f"[{self.low:g}, {self.high:g}]" + (" log" if self.log else "")
                + (f" step {self.step:g}" if self.step else ""))

    @property
    def scale(self) -> str:
        return "log" if self.log else ("-" if self.is_choice else "linear")

    def describe_condition(self) -> str:
        if self.condition is None:
            return "-"
        parent, allowed = self.condition
        return f"{parent} in {json.dumps(list(allowed))}"


def dotted_path(holder: Location, key: str, direct: bool) -> str:
    """`train.optimizer.args.lr` for an arg, `train.transforms.1.disabled` for DISABLED,
    the key alone at the top level."""
    base = ".".join(str(part) for part in holder)
    if key == DISABLED:
        return f"{base}.disabled"
    middle = "" if holder == () or direct else "args."
    return f"{base}.{middle}{key}".lstrip(".")


def _short(choice: tuple) -> str:
    return json.dumps(choice[0]) if len(choice) == 1 else json.dumps(list(choice))


class SearchSpace:
    """The ordered parameters of one config_train.json."""

    def __init__(self, params: list[Param]):
        self.params = params
        self.by_name = {p.name: p for p in params}

    def __len__(self) -> int:
        return len(self.params)

    @property
    def dims(self) -> int:
        return sum(p.width for p in self.params)

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """A random configuration; a parameter whose condition does not hold is None (and no
        random number is drawn for it)."""
        values: dict[str, Any] = {p.name: p.sample(rng) for p in self.params if p.condition is None}
        for p in self.params:  # conditions name unconditional parameters, all drawn above
            if p.condition is not None:
                values[p.name] = p.sample(rng) if p.active(values) else None
        return {p.name: values[p.name] for p in self.params}

    def encode(self, values: dict[str, Any]) -> np.ndarray:
        """A config as a point of the unit cube (enums one-hot). An inactive parameter's
        coordinates stay 0: a constant, so models never see its meaningless value as noise."""
        out = np.zeros(self.dims)
        i = 0
        for p in self.params:
            value = values[p.name]
            if value is not None:
                if p.is_choice:
                    out[i + p.choice_index(value)] = 1.0
                else:
                    out[i] = p.to_unit(value)
            i += p.width
        return out

    def decode(self, point: np.ndarray) -> dict[str, Any]:
        """The config nearest to a point of the unit cube (an enum takes its largest coordinate;
        inactive parameters are None)."""
        values: dict[str, Any] = {}
        i = 0
        for p in self.params:
            if p.is_choice:
                values[p.name] = list(p.choices[int(np.argmax(point[i:i + p.width]))])
            else:
                values[p.name] = p.from_unit(point[i])
            i += p.width
        return self._deactivate(values)

    def to_units(self, values: dict[str, Any]) -> np.ndarray:
        """A config as one unit coordinate per parameter (a choice i of n sits at (i + 0.5) / n;
        an inactive parameter is NaN): the compact form evolutionary and density models use."""
        out = np.full(len(self.params), np.nan)
        for k, p in enumerate(self.params):
            value = values[p.name]
            if value is not None:
                out[k] = (p.choice_index(value) + 0.5) / len(p.choices) if p.is_choice else p.to_unit(value)
        return out

    def from_units(self, units: np.ndarray, rng: np.random.Generator | None = None) -> dict[str, Any]:
        """The config at one unit coordinate per parameter (the inverse of to_units; a choice
        takes the cell its coordinate falls in). A parameter that is active but has no
        coordinate (NaN: it was inactive where this point came from) is drawn at random."""
        values: dict[str, Any] = {}
        for k, p in enumerate(self.params):
            u = float(units[k])
            if math.isnan(u):
                values[p.name] = None
            elif p.is_choice:
                values[p.name] = list(p.choices[min(int(min(max(u, 0.0), 1.0) * len(p.choices)), len(p.choices) - 1)])
            else:
                values[p.name] = p.from_unit(u)
        values = self._deactivate(values)
        for p in self.params:
            if values[p.name] is None and p.active(values):
                values[p.name] = p.sample(rng if rng is not None else np.random.default_rng(0))
        return values

    def _deactivate(self, values: dict[str, Any]) -> dict[str, Any]:
        for p in self.params:
            if not p.active(values):
                values[p.name] = None
        return values

    def perturb(self, values: dict[str, Any], rng: np.random.Generator, scale: float,
                switch: float) -> dict[str, Any]:
        """A neighbour of `values`: unit coordinates moved by N(0, scale), each enum
        switched to a random other choice with probability `switch`."""
        point = self.encode(values)
        i = 0
        for p in self.params:
            if p.is_choice:
                if rng.random() < switch:
                    point[i:i + p.width] = 0.0
                    point[i + rng.integers(p.width)] = 1.0
            else:
                point[i] = _reflect(point[i] + rng.normal(0.0, scale))
            i += p.width
        moved = self.decode(point)
        for p in self.params:  # a parameter that just became active gets a fresh value
            if moved[p.name] is not None and values.get(p.name) is None:
                moved[p.name] = p.sample(rng)
        return moved

    def contains(self, values: dict[str, Any]) -> bool:
        if set(values) != set(self.by_name):
            return False
        for p in self.params:
            v = values[p.name]
            if not p.active(values):
                if v is not None:
                    return False
            elif v is None:
                return False
            elif p.is_choice:
                if not isinstance(v, list) or v not in [list(c) for c in p.choices]:
                    return False
            elif not (p.low <= v <= p.high) or (p.kind == "int" and int(v) != v) or not p.on_step(v):
                return False
        return True

    def written_values(self, doc: dict) -> dict[str, Any]:
        """The configuration config_train.json holds as written: each parameter's searched
        args' current values, None where the config cannot give one (absent, out of the range,
        not one of the choices). `complete` makes a configuration of it."""
        values: dict[str, Any] = {}
        for p in self.params:
            slots: list | None = []
            for arg in p.args:
                if arg in p.tags:
                    continue
                try:
                    node = _at(doc, p.holder)
                    if arg == DISABLED:
                        slots.append(node["disabled"])
                    else:
                        slots.append((node if p.holder == () or p.direct else node["args"])[arg])
                except (KeyError, IndexError, TypeError):
                    slots = None
                    break
            values[p.name] = self._written_value(p, slots)
        return values

    @staticmethod
    def _written_value(p: Param, slots: list | None) -> Any:
        if not slots:  # only tags, or not found: nothing the config says
            return None
        if p.is_choice:
            return slots if slots in [list(c) for c in p.choices] else None
        value = slots[0]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or any(v != value for v in slots):
            return None
        if not (p.low <= value <= p.high) or (p.kind == "int" and int(value) != value) or not p.on_step(value):
            return None
        return int(value) if p.kind == "int" else float(value)

    def complete(self, written: dict[str, Any], rng: np.random.Generator) -> tuple[dict[str, Any], list[str]]:
        """A configuration from `written` (written_values, or a caller's values by parameter
        name), and the parameters that had to be drawn because it gives no usable value for
        them. Unconditional parameters first, as `sample` does, so that a condition reads its
        parent's final value and a replay draws alike."""
        values: dict[str, Any] = {}
        drawn: list[str] = []
        for p in sorted(self.params, key=lambda q: q.condition is not None):
            if not p.active(values):
                values[p.name] = None
            elif written.get(p.name) is not None:
                values[p.name] = written[p.name]
            else:
                values[p.name] = p.sample(rng)
                drawn.append(p.name)
        return {p.name: values[p.name] for p in self.params}, [p.name for p in self.params if p.name in drawn]

    def apply(self, doc: dict, values: dict[str, Any], *, remove_search: bool = True) -> dict:
        """A copy of config_train.json with the chosen values written into the args they
        search, the "disabled" attributes they switch and the args that "apply" them; with
        `remove_search`, the "search", "apply" and "lr_search" keys are dropped (they are
        resolved)."""
        out = copy.deepcopy(doc)
        for p in self.params:
            value = values[p.name]
            if value is None:
                continue  # inactive: the config keeps what it had
            slot_values = p.slot_values(value)
            for arg, v in zip(p.args, slot_values):
                if arg not in p.tags:
                    _write(out, p.holder, arg, p.direct, v)
            for place in p.applied:
                _write(out, place.holder, place.key, False, slot_values[place.slot])
        return strip_search(out) if remove_search else out


def strip_search(doc: dict) -> dict:
    """`doc` without the keys only the search reads ("search", "apply", "lr_search"),
    changed in place and returned."""
    doc.pop(LR_SEARCH, None)
    for node, _ in _walk(doc, ()):
        for key in SEARCH_KEYS:
            node.pop(key, None)
    return doc


def _write(doc: dict, holder: Location, key: str, direct: bool, value: Any) -> None:
    node = _at(doc, holder)
    if key == DISABLED:
        node["disabled"] = copy.deepcopy(value)
    elif holder == () or direct:
        node[key] = copy.deepcopy(value)
    else:
        node["args"][key] = copy.deepcopy(value)


def _at(doc: Any, location: Location) -> Any:
    for part in location:
        doc = doc[part]
    return doc


def _walk(node: Any, where: Location) -> Iterator[tuple[dict, Location]]:
    """Every object in the document with its location, parents before children."""
    if isinstance(node, dict):
        yield node, where
        for key, value in node.items():
            if key not in SEARCH_KEYS:
                yield from _walk(value, where + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, where + (i,))


def parse_search_space(doc: dict, file: Path) -> SearchSpace:
    """Every "search" section, "apply" entry and the "lr_search" of config_train.json,
    checked; errors name file and JSON path."""
    params: list[Param] = []
    appliers: list[tuple[dict, Location]] = []
    for holder, where in _walk(doc, ()):
        if "apply" in holder and (where == () or "name" in holder or "path" in holder):
            appliers.append((holder, where))
        if "search" not in holder:
            continue
        items = holder["search"]
        if not isinstance(items, list):
            raise ConfigError(file, where + ("search",), "expected a list of search items")
        if where == ():
            args_of, owner = holder, "the config's top level"
        else:
            if not isinstance(holder.get("args"), dict):
                raise ConfigError(file, where + ("search",),
                                  'a search section must sit beside the component\'s "name" and "args"')
            args_of, owner = holder["args"], f"component {holder.get('name', json_path(where))}"
        for index, item in enumerate(items):
            check_finite(item, file, where + ("search", index))
            params.append(_parse_item(item, where, index, args_of, owner, holder, file))
    check_finite(doc.get(LR_SEARCH), file, (LR_SEARCH,))
    lr = _lr_search(doc, file)
    if lr is not None:
        params.append(lr)
    _check_given_names(params, doc, file)
    params = _resolve_applies(_unique_names(params), appliers, file)
    _check_tags_applied(params, file)
    _check_set_once(params, file)
    _check_conditions(params, file)
    return SearchSpace(params)


def check_finite(value: Any, file: Path, at: Location | list) -> None:
    """Every number in `value` must be finite: Python's JSON reader takes Infinity and NaN
    (YAML .inf, .nan), which are no JSON numbers and would reach every job as a value."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(file, list(at), f"expected a finite number, got {_dump(value)}")
    if isinstance(value, dict):
        for key, item in value.items():
            check_finite(item, file, [*at, key])
    elif isinstance(value, list):
        for i, item in enumerate(value):
            check_finite(item, file, [*at, i])


def _lr_search(doc: dict, file: Path) -> Param | None:
    """`"lr_search": [min, max]`: a float search on the top-level `learning_rate` when the
    config has one (Clara's configs feed it to the optimizer as "{learning_rate}"), else on
    train.optimizer.args.lr; log scale when min > 0, as learning rates vary by decades."""
    if LR_SEARCH not in doc:
        return None
    bounds, at = doc[LR_SEARCH], (LR_SEARCH,)
    if (not isinstance(bounds, list) or len(bounds) != 2
            or any(isinstance(b, bool) or not isinstance(b, (int, float)) for b in bounds)):
        raise ConfigError(file, at, f"expected [min, max], two numbers, got {_dump(bounds)}")
    low, high = bounds
    if not 0 <= low < high:
        raise ConfigError(file, at, f"expected 0 <= min < max, got {_dump(bounds)}")
    optimizer = doc.get("train", {}).get("optimizer") if isinstance(doc.get("train"), dict) else None
    if "learning_rate" in doc:
        holder, arg, name = (), "learning_rate", "learning_rate"
    elif isinstance(optimizer, dict) and isinstance(optimizer.get("args"), dict) and "lr" in optimizer["args"]:
        holder, arg = ("train", "optimizer"), "lr"
        name = f"{optimizer['name']}.lr" if isinstance(optimizer.get("name"), str) else "lr"
    else:
        raise ConfigError(file, at, 'no learning rate to search: the config has no top-level "learning_rate" '
                                    "and no train.optimizer.args.lr")
    return Param(name=name, kind="float", domain="lr", holder=holder, args=(arg,), low=low, high=high,
                 log=low > 0, source=json_path(at), slots=(name,))


def _switches(p: Param) -> list[int]:
    """The slots of `p` that turn a component on or off ("@disabled", here or via apply)."""
    return sorted({k for k, arg in enumerate(p.args) if arg == DISABLED}
                  | {place.slot for place in p.applied if place.key == DISABLED})


def boolean_slot(p: Param, slot: int) -> bool:
    """Does this slot only ever hold true or false (what a "disabled" attribute takes)?"""
    return p.is_choice and all(isinstance(choice[slot], bool) for choice in p.choices)


def check_switches(p: Param) -> str | None:
    """Why `p` cannot drive the "disabled" attributes it is sent to; None when it can."""
    for slot in _switches(p):
        if not boolean_slot(p, slot):
            return (f'"{p.slot_names[slot]}" switches a component on and off ("disabled"), so it must take '
                    f"true or false, but it takes {p.describe()}")
    return None


def _given_names(p: Param, doc: dict) -> list[tuple[int, str]]:
    """The slots whose names the user gave: aliases ("arg#name") and free tags."""
    holder = _at(doc, p.holder)
    base = f"{holder['name']}." if p.holder != () and isinstance(holder.get("name"), str) else ""
    return [(k, name) for k, (arg, name) in enumerate(zip(p.args, p.slot_names))
            if arg in p.tags or name != base + arg]


def _arg_location(p: Param, k: int) -> Location:
    return _location(p.source) + ("args", k)


def _check_given_names(params: list[Param], doc: dict, file: Path) -> None:
    """An alias or a tag names one value: given twice, or also the name of another value,
    an "apply" naming it would have to guess."""
    given: dict[str, str] = {}  # name -> where it was given
    for p in params:
        for k, name in _given_names(p, doc):
            if name in given:
                raise ConfigError(file, _arg_location(p, k),
                                  f'the name "{name}" is given twice (first at {given[name]})')
            given[name] = json_path(_arg_location(p, k))
    for p in params:
        own = {name for _, name in _given_names(p, doc)}
        for name in sorted({p.name, *p.slot_names} - own):
            if name in given:
                raise ConfigError(file, _location(p.source), f'"{name}" names this parameter and also the alias or '
                                                             f"tag at {given[name]}; rename one of them")


def _resolve_applies(params: list[Param], appliers: list[tuple[dict, Location]], file: Path) -> list[Param]:
    """Attach each component's "apply" entries to the parameters they name."""
    slots: dict[str, tuple[int, int] | None] = {}  # None: several parameters have that name
    for i, p in enumerate(params):
        for k, name in enumerate(p.slot_names):
            slots[name] = None if name in slots else (i, k)
    places: dict[int, list[Place]] = {i: [] for i in range(len(params))}
    for holder, where in appliers:
        at = where + ("apply",)
        if where == ():
            raise ConfigError(file, at, 'an "apply" belongs to a component, beside its "name" and "args" '
                                        "(search first-level keys with a top-level search item)")
        entries = holder["apply"]
        if not isinstance(entries, dict) or not entries:
            raise ConfigError(file, at, 'expected an object {"<arg> or @disabled": "<parameter name>", ...}, '
                                        f"got {_dump(entries)}")
        args_of = holder.get("args") if isinstance(holder.get("args"), dict) else {}
        for key, name in entries.items():
            loc = at + (key,)
            if isinstance(name, str) and name.startswith("@") and name not in slots and name[1:] in slots:
                name = name[1:]  # a free tag named as its item writes it ("@myTransformDisable")
            if key != DISABLED and key not in args_of:
                known = ", ".join(sorted(args_of)) or "none"
                raise ConfigError(file, loc, f'"{key}" is not an arg of component {holder.get("name")} '
                                             f'(its args: {known}; or "@disabled")')
            if not isinstance(name, str) or name not in slots:
                known = ", ".join(n for n in slots) or "none"
                raise ConfigError(file, loc, f"unknown parameter {_dump(name)} (known: {known})")
            if slots[name] is None:
                raise ConfigError(file, loc, f'"{name}" names several searched values; give the one meant '
                                             'an alias ("arg#name") and apply that')
            i, k = slots[name]
            places[i].append(Place(where, key, k, json_path(loc)))
    resolved = [replace(p, applied=tuple(places[i])) if places[i] else p for i, p in enumerate(params)]
    for p in resolved:
        problem = check_switches(p)
        if problem:
            place = next((pl for pl in p.applied if pl.key == DISABLED and not boolean_slot(p, pl.slot)), None)
            raise ConfigError(file, _location(place.source) if place else _location(p.source), problem)
    return resolved


def _check_tags_applied(params: list[Param], file: Path) -> None:
    for p in params:
        for k, arg in enumerate(p.args):
            if arg in p.tags and not any(place.slot == k for place in p.applied):
                raise ConfigError(file, _arg_location(p, k),
                                  f'"{arg}" is neither a first-level key nor a tag that a component applies '
                                  f'(no "apply" names "{p.slot_names[k]}")')


def _check_set_once(params: list[Param], file: Path) -> None:
    """One place, one value: an arg searched twice, or searched and applied, is a mistake."""
    setters: dict[str, str] = {}

    def claim(path: str, source: str) -> None:
        if path in setters:
            raise ConfigError(file, _location(source), f"{path} is set by two searched values: "
                                                       f"{setters[path]} and this one")
        setters[path] = source

    for p in params:
        for arg in p.args:
            if arg not in p.tags:
                claim(dotted_path(p.holder, arg, p.direct), p.source)
    for p in params:
        for place in p.applied:
            claim(dotted_path(place.holder, place.key, False), place.source)


def _check_conditions(params: list[Param], file: Path) -> None:
    """A condition names an unconditional parameter and values it can take."""
    by_name = {p.name: p for p in params}
    for p in params:
        if p.condition is None:
            continue
        at = _location(p.source) + ("condition",)
        parent_name, allowed = p.condition
        parent = by_name.get(parent_name)
        if parent is None or parent is p:
            known = ", ".join(q.name for q in params if q is not p)
            raise ConfigError(file, at + ("param",), f'unknown parameter "{parent_name}" (known: {known})')
        if parent.condition is not None:
            raise ConfigError(file, at + ("param",), f'"{parent_name}" is itself conditional; a condition must '
                                                     "name an unconditional parameter")
        for i, value in enumerate(allowed):
            if parent.is_choice:
                ok = any(value == list(c) or [value] == list(c) for c in parent.choices)
            else:
                ok = isinstance(value, (int, float)) and not isinstance(value, bool) and parent.low <= value <= parent.high
            if not ok:
                raise ConfigError(file, at + ("in", i), f'{_dump(value)} is not a value "{parent_name}" can take '
                                                         f"({parent.describe()})")


def _location(source: str) -> Location:
    """Parse back a JSON path like $.train.model.search[0] into its parts."""
    parts: list = []
    for key, index in re.findall(r"\.([^.\[]+)|\[(\d+)\]", source[1:]):
        parts.append(key if key else int(index))
    return tuple(parts)


def _parse_item(item: Any, where: Location, index: int, args_of: dict, owner: str,
                holder: dict, file: Path) -> Param:
    at = where + ("search", index)
    validate(item, "search_item", file, list(at))
    written = (item["args"],) if isinstance(item["args"], str) else tuple(item["args"])
    base = f"{holder['name']}." if where != () and isinstance(holder.get("name"), str) else ""
    args, slots, tags = [], [], []
    for i, text in enumerate(written):
        loc = at + ("args",) if isinstance(item["args"], str) else at + ("args", i)
        arg, sep, alias = text.partition("#")
        if not arg or (sep and not alias) or "#" in alias:
            raise ConfigError(file, loc, f'expected "<arg>" or "<arg>#<name>", got {_dump(text)}')
        if arg.startswith("@") and arg != DISABLED and where == ():
            # Clara 4.1's examples write a top-level free tag with its "@" ("@myTransformDisable")
            # and apply it without ("myTransformDisable"): the same tag, named without the "@"
            arg = arg[1:]
            if not arg or arg.startswith("@"):
                raise ConfigError(file, loc, f'expected "<arg>", "@<tag>" or "<arg>#<name>", got {_dump(text)}')
            tags.append(arg)
        elif arg.startswith("@"):
            if arg != DISABLED:
                raise ConfigError(file, loc, f'unknown attribute "{arg}": "@disabled" is the one searchable attribute')
            if where == ():
                raise ConfigError(file, loc, '"@disabled" belongs to a component\'s search, not the top level')
        elif arg not in args_of:
            if where != ():
                known = ", ".join(sorted(args_of)) or "none"
                raise ConfigError(file, loc, f'"{arg}" is not an arg of {owner} (its args: {known})')
            tags.append(arg)  # not a first-level key: a free tag, checked once the applies are known
        args.append(arg)
        slots.append(alias or base + arg)
    args = tuple(args)
    if len(set(args)) != len(args):
        raise ConfigError(file, at + ("args",), "an arg is listed twice")
    named = any("#" in text for text in written)
    if len(args) == 1:
        name = slots[0]
    else:
        name = "+".join(slots) if named else base + "+".join(args)
    kind = item["type"]
    if kind == "bool":  # sugar for an enum of [false...] and [true...], every arg alike
        targets = [[False] * len(args), [True] * len(args)]
    else:
        targets = item["targets"]
    domain = item.get("domain", "general")
    condition = (item["condition"]["param"], tuple(item["condition"]["in"])) if "condition" in item else None
    common = dict(name=name, kind=kind, domain=domain, holder=where, args=args, source=json_path(at),
                  condition=condition, slots=tuple(slots), tags=tuple(tags))
    if kind in ("enum", "bool"):
        choices = []
        for i, choice in enumerate(targets):
            if not isinstance(choice, list):
                if len(args) == 1:  # ["adam", "sgd"] for one arg reads as [["adam"], ["sgd"]]
                    choice = [choice]
                else:
                    raise ConfigError(file, at + ("targets", i),
                                      f"expected a list of {len(args)} values (one per arg), got {_dump(choice)}")
            if len(choice) != len(args):
                raise ConfigError(file, at + ("targets", i),
                                  f"expected {len(args)} value(s), one per arg {list(args)}, got {_dump(choice)}")
            for k, arg in enumerate(args):
                if arg == DISABLED and not isinstance(choice[k], bool):
                    raise ConfigError(file, at + ("targets", i),
                                      f'"@disabled" takes true or false, got {_dump(choice[k])}')
            choices.append(tuple(choice))
        if len({_dump(list(c)) for c in choices}) != len(choices):
            raise ConfigError(file, at + ("targets",), "a choice is listed twice")
        norm = choice_weights(item.get("weights"), len(choices), file, at + ("weights",), "choice")
        return Param(choices=tuple(choices), weights=norm, **common)
    number = int if kind == "int" else (int, float)
    if (len(targets) != 2 or any(isinstance(t, bool) or not isinstance(t, number) for t in targets)):
        what = "integers" if kind == "int" else "numbers"
        raise ConfigError(file, at + ("targets",), f"expected [min, max], two {what}, got {_dump(targets)}")
    low, high = targets
    number = NumberRange(kind, low, high, log=bool(item.get("log", False)), step=item.get("step"))
    number.checked(file, Bounds("min", "max", at + ("targets",), at + ("step",)))
    return Param(**{**common, **number.fields()})


def _unique_names(params: list[Param]) -> list[Param]:
    """Two items may search same-named args of same-named components: keep names unique
    by falling back to the item's JSON path."""
    counts: dict[str, int] = {}
    for p in params:
        counts[p.name] = counts.get(p.name, 0) + 1
    return [p if counts[p.name] == 1 else replace(p, name=p.source) for p in params]


def _dump(value: Any) -> str:
    return json.dumps(value)


def _reflect(u: float) -> float:
    """A unit coordinate folded back into [0, 1] at the ends (0.03 above the top is 0.97):
    clipping would pile every step that overshoots onto the bound itself, so a neighbour of
    a point near an end would sit exactly at the end far more often than by chance."""
    u = abs(u) % 2.0
    return 2.0 - u if u > 1.0 else u
