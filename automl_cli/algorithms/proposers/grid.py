"""Grid search: every combination of the choices, times `grid_points` values per number.

A float or int takes `grid_points` values evenly spaced over its unit coordinate, so a log
range is spaced in log scale; ints and stepped ranges are rounded onto their lattice and
values that coincide after rounding are kept once. A conditional parameter varies only
where its condition holds and is None elsewhere, so no configuration appears twice.

The table is built in the space's order (the first parameter varies slowest) and then run
in an order shuffled by the seed: a search stopped half-way has covered the whole space
coarsely rather than the first parameter's first value thoroughly.
"""
from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from ...errors import UsageError
from ...space import Param, SearchSpace
from ..base import config_key
from ..catalogue import PROPOSERS
from .base import Proposer

MAX_GRID = 10_000  # beyond this a grid is a months-long search nobody meant to start


def grid_values(param: Param, points: int) -> list[Any]:
    """The values `param` takes on the grid: its choices, or `points` spaced numbers."""
    if param.is_choice:
        return [list(c) for c in param.choices]
    values: list[Any] = []
    for u in np.linspace(0.0, 1.0, points):
        value = _tidy(param, param.from_unit(u))
        if value not in values:  # ints and steps can round neighbours onto one value
            values.append(value)
    return values


def _tidy(param: Param, value: float | int) -> float | int:
    """The value without the float noise of its computation (1e-4, not 1.0000000000000009e-4),
    where that keeps it in the range and on its step: a grid's values are read by people."""
    if param.kind == "int":
        return value
    short = float(f"{value:.12g}")
    return short if param.low <= short <= param.high and param.on_step(short) else value


def grid_size(space: SearchSpace, points: int) -> int:
    """How many configurations the grid holds, counted without building it: conditions
    name unconditional parameters, so each unconditional value multiplies in the
    parameters it switches on."""
    values = {p.name: grid_values(p, points) for p in space.params}
    total = 1
    for parent in (p for p in space.params if p.condition is None):
        children = [p for p in space.params if p.condition is not None and p.condition[0] == parent.name]
        total *= sum(math.prod(len(values[c.name]) for c in children if c.active({parent.name: v}))
                     for v in values[parent.name])
    return total


def grid_table(space: SearchSpace, points: int) -> list[dict[str, Any]]:
    """Every configuration of the grid, in the space's order (first parameter slowest)."""
    values = {p.name: grid_values(p, points) for p in space.params}
    free = [p for p in space.params if p.condition is None]
    table = []
    for combo in itertools.product(*(values[p.name] for p in free)):
        base = dict(zip((p.name for p in free), combo))
        active = [p for p in space.params if p.condition is not None and p.active(base)]
        for extra in itertools.product(*(values[p.name] for p in active)):
            config = {**base, **dict(zip((p.name for p in active), extra))}
            table.append({p.name: config.get(p.name) for p in space.params})
    return table


def checked_grid_size(space: SearchSpace, points: int, algorithm: str) -> int:
    size = grid_size(space, points)
    if size > MAX_GRID:
        shape = " x ".join(f"{len(grid_values(p, points))} {p.name}" for p in space.params)
        raise UsageError(f"{algorithm}: the grid has {size} configurations ({shape}), more than {MAX_GRID}; "
                         f"lower grid_points, search fewer parameters, or use random or bayesian")
    return size


class GridProposer(Proposer):
    """Proposes a fixed table of configurations once each, in a seeded order; the
    full-trainings scheduler runs as many as the table holds."""

    name = "grid"
    parameters = PROPOSERS["grid"].parameters

    def __init__(self, space: SearchSpace, rng, params, *, table: list[dict[str, Any]] | None = None, **kwargs):
        """`table`: the configurations to run (another proposer's, e.g. the policy's on a
        space of choices only); by default the grid of `grid_points` values."""
        super().__init__(space, rng, params, **kwargs)
        if table is None:
            points = params["grid_points"]
            checked_grid_size(space, points, self.algorithm)
            table = grid_table(space, points)
        self.table = table
        self.order = [int(i) for i in self.rng.permutation(len(table))]
        self.taken = 0  # table entries proposed or adopted so far

    # the grid is the search: the config's own values are seldom a grid point, and running
    # them besides would make the run longer than the grid the user asked for
    takes_start = False

    def budget(self) -> int:
        return len(self.table)

    def propose(self, epochs: int, pending: list[dict[str, Any]], bracket=None) -> tuple[dict[str, Any], str]:
        index = self.order[self.taken]
        return self.table[index], f"grid point {index + 1} of {len(self.table)}"

    def added(self, trial_id: int, params: dict[str, Any]) -> None:
        self.taken += 1

    def adopt(self, trial_id: int, params: dict[str, Any]) -> None:
        """A grid point of a rebuilt run takes its place in the order, so it is not run again."""
        key = config_key(params)
        found = next((k for k in range(self.taken, len(self.order)) if config_key(self.table[self.order[k]]) == key),
                     None)
        if found is not None:
            self.order.insert(self.taken, self.order.pop(found))
        self.taken += 1

    def explain(self) -> list[str]:
        points = self.params["grid_points"]
        counts = ", ".join(f"{p.name} {len(grid_values(p, points))}" for p in self.space.params)
        return [f"grid: {len(self.table)} configurations, each trained in full, in an order shuffled by the seed "
                f"(values per parameter: {counts}; conditional parameters vary only where active)"]
