"""Run any algorithm on an objective function, in virtual time: the public Python API.

    from automl_cli.simulate import simulate
    result = simulate(algorithm="bayesian",
                      search=[{"args": ["x1"], "type": "float", "targets": [-5, 10]},
                              {"args": ["x2"], "type": "float", "targets": [0, 15]}],
                      objective=lambda config, epoch, state: (branin(config), 1.0),
                      max_epochs=1, n_workers=4, time_budget=3600.0)
    result.best   # (config, metric)
    result.jobs   # one dict per job

The search list is a Clara "search" list whose args are the config's keys; it means what
it means in an MMAR (float / int / enum, log, weights). The objective is called once per
epoch with the trial's config, the epoch (from 1) and the trial's own `state` dict (kept
across the trial's epochs and jobs), and returns `(metric, seconds)`; the virtual clock
advances by those seconds. The engine, the journal and the algorithms are the real ones.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .algorithms.base import get_algorithm
from .backends.simulated import SimulatedBackend
from .engine import Engine, EngineSettings
from .errors import UsageError
from .space import SearchSpace, parse_search_space
from .status import RunView, full_depth, ranked
from .store import Journal
from .workers import Worker

METRIC = "objective"


@dataclass
class SimulationResult:
    """What a simulated search did: its jobs, its winner and the virtual time it used.

    `best` is (config, score) of the job `automl run` would publish in best/ (RunView.best:
    the best among the jobs that trained as far as any completed job), so a benchmark of
    simulate() measures the pick users get."""

    jobs: list[dict[str, Any]]
    best: tuple[dict[str, Any], float] | None
    elapsed: float
    direction: str
    view: RunView = field(repr=False)

    def incumbent_trace(self) -> list[tuple[float, float, dict[str, Any]]]:
        """(time, the winner's score, its config) each time the winner changed, over job
        ends: `best` as it stood after each job ended. Under a multi-fidelity schedule the
        score may get worse when the first job of a higher budget completes."""
        configs = {j["job_id"]: j["config"] for j in self.jobs}
        ended: list = []
        out: list[tuple[float, float, dict[str, Any]]] = []
        winner = None
        for job in sorted((j for j in self.view.jobs.values() if j.ended is not None), key=lambda j: (j.ended, j.job_id)):
            ended.append(job)
            board = ranked(ended, full_depth(ended), self.view.maximize)
            if board and board[0].job_id != winner:
                winner = board[0].job_id
                out.append((job.ended, board[0].metric, configs[winner]))
        return out


def simulate(algorithm: str, search: list[dict], objective: Callable[[dict, int, dict], tuple[float, float]],
             max_epochs: int, n_workers: int = 1, time_budget: float = math.inf, direction: str = "minimize",
             seed: int = 0, params: dict[str, Any] | None = None, score: str = "last",
             time_budget_hard: bool = True, start_from: dict[str, Any] | None = None) -> SimulationResult:
    """Run `algorithm` against `objective` with `n_workers` simulated workers until the
    algorithm is done or `time_budget` virtual seconds have passed: no job starts after it,
    and the running ones are cut there (`time_budget_hard`, the default) or finish, as
    `automl run --time-budget` does without --time-budget-hard.
    A job is scored by its `last` epoch (the value at the fidelity it reached), or by its
    `best` epoch as MMAR runs do (where models/model.pt holds the best epoch's weights).
    `start_from`: the config's values (its keys, as `search` names them in its args) to propose
    first, as a run does with automl_start_from_config; None (the default): no such start,
    so benchmarks compare the algorithms alone."""
    if direction not in ("minimize", "maximize"):
        raise UsageError(f"direction must be 'minimize' or 'maximize', got {direction!r}")
    if n_workers < 1:
        raise UsageError(f"n_workers must be at least 1, got {n_workers}")
    template: dict[str, Any] = {}  # the config's keys, in the order the search names them
    for item in search:
        args = item.get("args", []) if isinstance(item, dict) else []
        for arg in [args] if isinstance(args, str) else args:
            template.setdefault(arg, None)
    space = parse_search_space({**template, "search": search}, Path("<simulate search>"))

    def to_config(values: dict[str, Any]) -> dict[str, Any]:
        return space.apply(template, values)

    written = None if start_from is None else space.written_values({**template, **start_from})
    return run_simulation(space, objective, to_config, algorithm=algorithm, max_epochs=max_epochs,
                          n_workers=n_workers, time_budget=time_budget, direction=direction, seed=seed, params=params,
                          score=score, time_budget_hard=time_budget_hard, start_from=written)


def run_simulation(space: SearchSpace, objective: Callable[[dict, int, dict], tuple[float, float]],
                   to_config: Callable[[dict], dict], *, algorithm: str, max_epochs: int, n_workers: int = 1,
                   time_budget: float = math.inf, direction: str = "minimize", seed: int = 0,
                   params: dict[str, Any] | None = None, score: str = "last",
                   time_budget_hard: bool = True, start_from: dict[str, Any] | None = None) -> SimulationResult:
    """simulate() on any SearchSpace (e.g. an MMAR's); `to_config` maps a job's parameters
    to what the objective receives; `start_from`: SearchSpace.written_values, or None."""
    algo = get_algorithm(algorithm)(space, max_epochs=max_epochs, seed=seed, params=params or {}, direction=direction,
                                    start_from=start_from)
    budget = None if math.isinf(time_budget) else float(time_budget)
    # the virtual clock stops at a hard budget, so no epoch ends after it
    backend = SimulatedBackend(objective, METRIC, to_config, budget if time_budget_hard else None)
    journal = Journal(Path(":memory:"))
    workers = [Worker(i + 1, ()) for i in range(n_workers)]
    if score not in ("best", "last"):
        raise UsageError(f"score must be 'best' or 'last', got {score!r}")
    engine = Engine(EngineSettings("simulation", algorithm, space, workers, METRIC, direction, max_epochs,
                                   time_budget=budget, time_budget_hard=time_budget_hard, score=score),
                    algo, backend, journal)
    try:
        view = engine.run()
    finally:
        journal.close()
    jobs = [{"job_id": j.job_id, "trial_id": j.trial_id, "config": to_config(j.params), "params": j.params,
             "start_epoch": j.start_epoch, "stop_epoch": j.stop_epoch,
             "metrics": [j.epochs[e].get(METRIC) for e in sorted(j.epochs)],
             "start_time": j.started, "end_time": j.ended, "status": j.status, "worker": j.worker}
            for j in sorted(view.jobs.values(), key=lambda j: j.job_id)]
    best = view.best()
    return SimulationResult(jobs, None if best is None else (to_config(best.params), best.metric), backend.now(),
                            direction, view)
