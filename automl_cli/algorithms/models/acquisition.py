"""Maximising an acquisition function over a search space (floats, ints, enums, conditions).

Random candidates alone find the acquisition's peak only roughly, and the peak of EI is
often narrow or on the boundary of the space (the best learning rate at its bound, say).
So: score many random and local candidates, take the best few as starts, and improve each
by turns of L-BFGS-B over its numeric coordinates (enums held) and an exact sweep over
each enum's choices (numbers held). The result is snapped to the space (ints, steps,
inactive parameters) and scored again as it will really run.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from scipy.optimize import minimize

from ...space import SearchSpace
from ..base import config_key
from .gp import one_thread

Score = Callable[[torch.Tensor], torch.Tensor]  # rows of the unit cube -> values to maximise

_END = 1e-9  # a unit coordinate this close to 0 or 1 is at an end of its range
_INSIDE = 0.05  # where, inside an end, the predicted loss is compared with the end's


def maximize(score: Score, space: SearchSpace, rng: np.random.Generator, *, anchors: list[dict],
             seen: set[str], mean: Score | None = None, n_random: int = 1000, n_local: int = 20,
             n_starts: int = 5, rounds: int = 2) -> tuple[dict[str, Any], float] | None:
    """The configuration (not in `seen`) that scores highest, and its score; None when every
    candidate found was already seen. `anchors` are configurations worth searching near
    (e.g. the best so far). `mean`, the model's predicted loss, keeps the refinement from
    moving a number onto an end of its range unless the loss is predicted to fall there
    (see _lbfgs)."""
    candidates = [space.sample(rng) for _ in range(n_random)]
    for anchor in anchors:
        candidates += [space.perturb(anchor, rng, 0.05, 0.15) for _ in range(n_local)]
    with one_thread():
        values = _score_rows(score, np.array([space.encode(c) for c in candidates]))
        results = list(zip(values.tolist(), candidates))
        for i in _distinct_top(values, candidates, n_starts):
            results.append(_improve(score, space, candidates[i], rounds, mean))
    results.sort(key=lambda vc: -vc[0])
    for value, config in results:
        if config_key(config) not in seen:
            return config, value
    return None


def _score_rows(score: Score, rows: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return score(torch.as_tensor(rows, dtype=torch.float64)).numpy()


def _distinct_top(values: np.ndarray, candidates: list[dict], count: int) -> list[int]:
    picked, keys = [], set()
    for i in np.argsort(-values):
        key = config_key(candidates[i])
        if key not in keys:
            picked.append(int(i))
            keys.add(key)
        if len(picked) == count:
            break
    return picked


def _improve(score: Score, space: SearchSpace, start: dict, rounds: int,
             mean: Score | None = None) -> tuple[float, dict]:
    point = space.encode(start)
    for _ in range(rounds):
        config = space.decode(point)
        numeric = _numeric_coordinates(space, config)
        if numeric:
            point = _lbfgs(score, point, numeric, mean)
        point = _sweep_choices(score, space, point)
    config = space.decode(point)
    return float(_score_rows(score, space.encode(config)[None, :])[0]), config


def _numeric_coordinates(space: SearchSpace, config: dict) -> list[int]:
    out, i = [], 0
    for p in space.params:
        if not p.is_choice and config[p.name] is not None:
            out.append(i)
        i += p.width
    return out


def _lbfgs(score: Score, point: np.ndarray, free: list[int], mean: Score | None = None) -> np.ndarray:
    """`point` with its `free` coordinates moved uphill by L-BFGS-B. Given the model's `mean`,
    a coordinate the climb carried onto an end of its range (from inside) keeps the end only
    where the predicted loss is lower there than just inside it; elsewhere it was carried by
    the model's spread alone, which grows toward the edges of the cube wherever data is
    thin, so it goes back to its start and the others climb again without it. Proposals at
    an end are then the ones the model expects to be good (issue #22: on augmented
    Hartmann-6 a third of the climbs onto an end lowered the MAP fit's mean nowhere)."""
    out = _climb(score, point, free)
    if mean is None:
        return out
    held: list[int] = []
    while True:
        pushed = [i for i in free if i not in held and _at_end(out[i]) and not _at_end(point[i])
                  and not _falls_toward_end(mean, out, i)]
        if not pushed:
            return out
        held += pushed
        out[pushed] = point[pushed]
        rest = [i for i in free if i not in held]
        if not rest:
            return out
        out = _climb(score, out, rest)


def _at_end(u: float) -> bool:
    return u < _END or u > 1.0 - _END


def _falls_toward_end(mean: Score, point: np.ndarray, i: int) -> bool:
    inside = point.copy()
    inside[i] = _INSIDE if point[i] < 0.5 else 1.0 - _INSIDE
    end, near = _score_rows(mean, np.stack([point, inside]))
    return bool(end < near)


def _climb(score: Score, point: np.ndarray, free: list[int]) -> np.ndarray:
    fixed = torch.as_tensor(point, dtype=torch.float64)
    index = torch.as_tensor(free)

    def objective(u: np.ndarray) -> tuple[float, np.ndarray]:
        t = torch.tensor(u, dtype=torch.float64, requires_grad=True)
        row = fixed.clone()
        row[index] = t
        value = -score(row[None, :])[0]
        if not torch.isfinite(value):
            return 1e10, np.zeros_like(u)
        value.backward()
        return value.item(), t.grad.numpy().copy()

    result = minimize(objective, point[free], jac=True, method="L-BFGS-B", bounds=[(0.0, 1.0)] * len(free),
                      options={"maxiter": 50})
    out = point.copy()
    out[free] = np.clip(result.x, 0.0, 1.0)
    return out


def _sweep_choices(score: Score, space: SearchSpace, point: np.ndarray) -> np.ndarray:
    """Each enum in turn takes the choice that scores best with everything else held."""
    i = 0
    for p in space.params:
        if p.is_choice and space.decode(point)[p.name] is not None:
            options = np.repeat(point[None, :], p.width, axis=0)
            options[:, i:i + p.width] = np.eye(p.width)
            point = options[int(np.argmax(_score_rows(score, options)))]
        i += p.width
    return point
