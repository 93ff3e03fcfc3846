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


def maximize(score: Score, space: SearchSpace, rng: np.random.Generator, *, anchors: list[dict],
             seen: set[str], n_random: int = 1000, n_local: int = 20, n_starts: int = 5,
             rounds: int = 2) -> tuple[dict[str, Any], float] | None:
    """The configuration (not in `seen`) that scores highest, and its score; None when every
    candidate found was already seen. `anchors` are configurations worth searching near
    (e.g. the best so far)."""
    candidates = [space.sample(rng) for _ in range(n_random)]
    for anchor in anchors:
        candidates += [space.perturb(anchor, rng, 0.05, 0.15) for _ in range(n_local)]
    with one_thread():
        values = _score_rows(score, np.array([space.encode(c) for c in candidates]))
        results = list(zip(values.tolist(), candidates))
        for i in _distinct_top(values, candidates, n_starts):
            results.append(_improve(score, space, candidates[i], rounds))
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


def _improve(score: Score, space: SearchSpace, start: dict, rounds: int) -> tuple[float, dict]:
    point = space.encode(start)
    for _ in range(rounds):
        config = space.decode(point)
        numeric = _numeric_coordinates(space, config)
        if numeric:
            point = _lbfgs(score, point, numeric)
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


def _lbfgs(score: Score, point: np.ndarray, free: list[int]) -> np.ndarray:
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
