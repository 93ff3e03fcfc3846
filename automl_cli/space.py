"""The search space: parsed from the "search" sections of config_train.json.

Clara's format, exactly as its guide describes it: a component `{"name", "args"}` carries
`"search": [item, ...]`; an item names one or more of the component's `args`, a `type` and
`targets`. A `float` item draws one number in `[min, max]` and gives it to every listed
arg; an `enum` item picks one choice, a list holding one value per arg, so related args
move together. We add `int`, `"log": true` (float/int) and enum `"weights"`.

Algorithms see a parameter by its name and work in the unit cube (`encode`/`decode`):
one coordinate per float/int (log-scaled when asked), one one-hot block per enum, so a
model never reads an arbitrary order into the choices.
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

Location = tuple  # JSON path parts (str keys, int indices) from the document root


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
                point[i] = min(max(point[i] + rng.normal(0.0, scale), 0.0), 1.0)
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

    def apply(self, doc: dict, values: dict[str, Any], *, remove_search: bool = True) -> dict:
        """A copy of config_train.json with the chosen values written into the args they
        search; with `remove_search`, the "search" sections are dropped (they are resolved)."""
        out = copy.deepcopy(doc)
        for p in self.params:
            holder = _at(out, p.holder)
            target = holder if p.holder == () or p.direct else holder["args"]
            value = values[p.name]
            if value is None:
                continue  # inactive: the config keeps what it had
            if p.is_choice:
                for arg, v in zip(p.args, value):
                    target[arg] = copy.deepcopy(v)
            else:
                for arg in p.args:
                    target[arg] = value
        if remove_search:
            for node, _ in _walk(out, ()):
                node.pop("search", None)
        return out


def _at(doc: Any, location: Location) -> Any:
    for part in location:
        doc = doc[part]
    return doc


def _walk(node: Any, where: Location) -> Iterator[tuple[dict, Location]]:
    """Every object in the document with its location, parents before children."""
    if isinstance(node, dict):
        yield node, where
        for key, value in node.items():
            if key != "search":
                yield from _walk(value, where + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, where + (i,))


def parse_search_space(doc: dict, file: Path) -> SearchSpace:
    """Every "search" section of config_train.json, checked; errors name file and JSON path."""
    params: list[Param] = []
    for holder, where in _walk(doc, ()):
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
            params.append(_parse_item(item, where, index, args_of, owner, holder, file))
    params = _unique_names(params)
    _check_conditions(params, file)
    return SearchSpace(params)


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
    args = (item["args"],) if isinstance(item["args"], str) else tuple(item["args"])
    for i, arg in enumerate(args):
        if arg not in args_of:
            known = ", ".join(sorted(args_of)) or "none"
            loc = at + ("args",) if isinstance(item["args"], str) else at + ("args", i)
            raise ConfigError(file, loc, f'"{arg}" is not an arg of {owner} (its args: {known})')
    if len(set(args)) != len(args):
        raise ConfigError(file, at + ("args",), "an arg is listed twice")
    kind = item["type"]
    if kind == "bool":  # sugar for an enum of [false...] and [true...], every arg alike
        targets = [[False] * len(args), [True] * len(args)]
    elif "targets" not in item:
        raise ConfigError(file, at, "missing required key: 'targets'")
    else:
        targets = item["targets"]
    domain = item.get("domain", "general")
    base = f"{holder['name']}." if where != () and isinstance(holder.get("name"), str) else ""
    condition = (item["condition"]["param"], tuple(item["condition"]["in"])) if "condition" in item else None
    common = dict(name=base + "+".join(args), kind=kind, domain=domain, holder=where, args=args,
                  source=json_path(at), condition=condition)
    if kind in ("enum", "bool"):
        for key in ("log", "step"):
            if key in item:
                raise ConfigError(file, at + (key,), f'"{key}" applies to float and int items, not {kind}')
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
            choices.append(tuple(choice))
        if len({_dump(list(c)) for c in choices}) != len(choices):
            raise ConfigError(file, at + ("targets",), "a choice is listed twice")
        weights = item.get("weights")
        if weights is not None and len(weights) != len(choices):
            raise ConfigError(file, at + ("weights",),
                              f"expected {len(choices)} weights (one per choice), got {len(weights)}")
        total = sum(weights) if weights else None
        norm = tuple(w / total for w in weights) if weights else tuple(1 / len(choices) for _ in choices)
        return Param(choices=tuple(choices), weights=norm, **common)
    if "weights" in item:
        raise ConfigError(file, at + ("weights",), '"weights" applies to enum and bool items only')
    number = int if kind == "int" else (int, float)
    if (len(targets) != 2 or any(isinstance(t, bool) or not isinstance(t, number) for t in targets)):
        what = "integers" if kind == "int" else "numbers"
        raise ConfigError(file, at + ("targets",), f"expected [min, max], two {what}, got {_dump(targets)}")
    low, high = targets
    if not low < high:
        raise ConfigError(file, at + ("targets",), f"expected min < max, got {_dump(targets)}")
    log = bool(item.get("log", False))
    if log and low <= 0:
        raise ConfigError(file, at + ("targets",), f"a log range needs min > 0, got {_dump(targets)}")
    step = item.get("step")
    if step is not None:
        if kind == "int" and step != int(step):
            raise ConfigError(file, at + ("step",), f"an int range needs a whole step, got {_dump(step)}")
        if step > high - low:
            raise ConfigError(file, at + ("step",), f"step {step:g} is larger than the range [{low:g}, {high:g}]")
    return Param(low=low, high=high, log=log, step=step, **common)


def _unique_names(params: list[Param]) -> list[Param]:
    """Two items may search same-named args of same-named components: keep names unique
    by falling back to the item's JSON path."""
    counts: dict[str, int] = {}
    for p in params:
        counts[p.name] = counts.get(p.name, 0) + 1
    return [p if counts[p.name] == 1 else replace(p, name=p.source) for p in params]


def _dump(value: Any) -> str:
    return json.dumps(value)
