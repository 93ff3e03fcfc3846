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
    source: str = ""  # the item's JSON path, for messages and reports

    @property
    def width(self) -> int:
        """Coordinates this parameter takes in the unit cube."""
        return len(self.choices) if self.kind == "enum" else 1

    def sample(self, rng: np.random.Generator) -> Any:
        if self.kind == "enum":
            index = rng.choice(len(self.choices), p=self.weights)
            return list(self.choices[index])
        return self.from_unit(rng.random())

    def from_unit(self, u: float) -> float | int:
        """A number in [low, high] from a unit coordinate (log scale when asked)."""
        u = min(max(float(u), 0.0), 1.0)
        if self.log:
            value = math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        else:
            value = self.low + u * (self.high - self.low)
        if self.kind == "int":
            return int(min(max(round(value), self.low), self.high))
        return float(min(max(value, self.low), self.high))

    def to_unit(self, value: float) -> float:
        if self.log:
            return (math.log(value) - math.log(self.low)) / (math.log(self.high) - math.log(self.low))
        return (value - self.low) / (self.high - self.low)

    def choice_index(self, value: Any) -> int:
        return [list(c) for c in self.choices].index(list(value))

    def describe(self) -> str:
        if self.kind == "enum":
            text = " | ".join(_short(c) for c in self.choices)
            if self.weights and len(set(self.weights)) > 1:
                text += "  weights " + ", ".join(f"{w:.2f}" for w in self.weights)
            return text
        return f"[{self.low:g}, {self.high:g}]" + (" log" if self.log else "")


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
        return {p.name: p.sample(rng) for p in self.params}

    def encode(self, values: dict[str, Any]) -> np.ndarray:
        """A config as a point of the unit cube (enums one-hot)."""
        out = np.zeros(self.dims)
        i = 0
        for p in self.params:
            if p.kind == "enum":
                out[i + p.choice_index(values[p.name])] = 1.0
            else:
                out[i] = p.to_unit(values[p.name])
            i += p.width
        return out

    def decode(self, point: np.ndarray) -> dict[str, Any]:
        """The config nearest to a point of the unit cube (an enum takes its largest coordinate)."""
        values: dict[str, Any] = {}
        i = 0
        for p in self.params:
            if p.kind == "enum":
                values[p.name] = list(p.choices[int(np.argmax(point[i:i + p.width]))])
            else:
                values[p.name] = p.from_unit(point[i])
            i += p.width
        return values

    def perturb(self, values: dict[str, Any], rng: np.random.Generator, scale: float,
                switch: float) -> dict[str, Any]:
        """A neighbour of `values`: unit coordinates moved by N(0, scale), each enum
        switched to a random other choice with probability `switch`."""
        point = self.encode(values)
        i = 0
        for p in self.params:
            if p.kind == "enum":
                if rng.random() < switch:
                    point[i:i + p.width] = 0.0
                    point[i + rng.integers(p.width)] = 1.0
            else:
                point[i] = min(max(point[i] + rng.normal(0.0, scale), 0.0), 1.0)
            i += p.width
        return self.decode(point)

    def contains(self, values: dict[str, Any]) -> bool:
        if set(values) != set(self.by_name):
            return False
        for p in self.params:
            v = values[p.name]
            if p.kind == "enum":
                if list(v) not in [list(c) for c in p.choices]:
                    return False
            elif not (p.low <= v <= p.high) or (p.kind == "int" and int(v) != v):
                return False
        return True

    def apply(self, doc: dict, values: dict[str, Any], *, remove_search: bool = True) -> dict:
        """A copy of config_train.json with the chosen values written into the args they
        search; with `remove_search`, the "search" sections are dropped (they are resolved)."""
        out = copy.deepcopy(doc)
        for p in self.params:
            holder = _at(out, p.holder)
            target = holder if p.holder == () else holder["args"]
            value = values[p.name]
            if p.kind == "enum":
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
    return SearchSpace(_unique_names(params))


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
    kind, targets = item["type"], item["targets"]
    domain = item.get("domain", "general")
    base = f"{holder['name']}." if where != () and isinstance(holder.get("name"), str) else ""
    common = dict(name=base + "+".join(args), kind=kind, domain=domain, holder=where, args=args,
                  source=json_path(at))
    if kind == "enum":
        if "log" in item:
            raise ConfigError(file, at + ("log",), '"log" applies to float and int items, not enum')
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
        raise ConfigError(file, at + ("weights",), '"weights" applies to enum items only')
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
    return Param(low=low, high=high, log=log, **common)


def _unique_names(params: list[Param]) -> list[Param]:
    """Two items may search same-named args of same-named components: keep names unique
    by falling back to the item's JSON path."""
    counts: dict[str, int] = {}
    for p in params:
        counts[p.name] = counts.get(p.name, 0) + 1
    return [p if counts[p.name] == 1 else replace(p, name=p.source) for p in params]


def _dump(value: Any) -> str:
    return json.dumps(value)
