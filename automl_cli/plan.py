"""`automl plan`: what a search will run, before anything runs.

For bracket-based algorithms the schedule is printed rung by rung; for every algorithm the
jobs, the epochs and a wall-time estimate come from simulating the search itself with a
constant time per epoch (so barriers and idle workers are counted, not guessed).
"""
from __future__ import annotations

import json
import random
import statistics
from dataclasses import dataclass
from pathlib import Path

from .algorithms.base import get_algorithm
from .algorithms.catalogue import initial_design_line
from .algorithms.schedulers.hyperband import SuccessiveHalving
from .durations import format_duration
from .simulate import run_simulation
from .status import RunView, _clock
from .store import JOURNAL


@dataclass
class Plan:
    algorithm: str
    params: dict
    reasons: list[str]
    brackets: list[list[tuple[int, int, str]]]  # per bracket: (n, epochs, how a job gets there)
    jobs: int
    epochs: int
    workers: int
    epoch_seconds: float | None
    epoch_seconds_source: str
    wall_seconds: float | None
    time_budget: float | None = None
    time_budget_hard: bool = False
    budget_ended: bool = False  # the budget, not the schedule, ended the simulated search
    brackets_started: int = 0


def measured_epoch_seconds(runs_dir: Path) -> tuple[float | None, str]:
    """The median seconds per epoch of the newest earlier run of this MMAR, if any."""
    journals = sorted(runs_dir.glob(f"*/{JOURNAL}"), key=lambda p: p.stat().st_mtime, reverse=True)
    for journal in journals:
        try:
            view = RunView.load(journal.parent)
        except Exception:  # a damaged or foreign journal says nothing about epoch times
            continue
        seconds = [e["seconds"] for j in view.jobs.values() for e in j.epochs.values()
                   if isinstance(e.get("seconds"), (int, float))]
        if seconds:
            return statistics.median(seconds), f"median of {len(seconds)} epochs of run {view.run_id}"
    return None, "no earlier run to measure; give --epoch-seconds"


def make_plan(space, algorithm: str, params: dict, max_epochs: int, workers: int,
              epoch_seconds: float | None, source: str, seed: int = 0, time_budget: float | None = None,
              time_budget_hard: bool = False) -> Plan:
    """The schedule, and the search simulated at `epoch_seconds` per epoch: within
    `time_budget` (seconds) when one is given and the epoch time is known."""
    cls = get_algorithm(algorithm)
    algo = cls(space, max_epochs=max_epochs, seed=seed, params=params)
    reasons, brackets = [], []
    if isinstance(algo, SuccessiveHalving):
        reasons = algo.adjustment + ([f"the brackets below run {algo.iterations} times over"]
                                     if algo.iterations > 1 else [])
        design = initial_design_line(algorithm, algo.params, len(space))
        reasons += [design] if design else []
        for bracket in algo.schedule:
            rows, before = [], None
            for rung in bracket.rungs:
                rows.append((rung.n, rung.epochs, "" if before is None else algo.rung_entry(rung, rung.epochs - before)))
                before = rung.epochs
            brackets.append(rows)
    else:
        reasons = algo.explain()
    noise = random.Random(seed)
    budget = time_budget if epoch_seconds else None  # what fits in it is known only with the epoch time
    result = run_simulation(space, lambda c, e, s: (noise.random(), epoch_seconds or 1.0), dict,
                            algorithm=algorithm, max_epochs=max_epochs, n_workers=workers, seed=seed, params=params,
                            time_budget=budget if budget is not None else float("inf"),
                            time_budget_hard=time_budget_hard)
    epochs = sum(len(j["metrics"]) for j in result.jobs)
    wall = result.elapsed if epoch_seconds else None
    started = {j.bracket for j in result.view.jobs.values() if j.bracket is not None}
    return Plan(algorithm, algo.params, reasons, brackets, len(result.jobs), epochs, workers, epoch_seconds, source,
                wall, time_budget, time_budget_hard, result.view.budget_reached is not None, len(started))


def render(plan: Plan) -> list[str]:
    lines = [f"algorithm {plan.algorithm} {json.dumps(plan.params)}"]
    lines += [f"  {reason}" for reason in plan.reasons]
    for number, rows in enumerate(plan.brackets, start=1):
        lines.append(f"bracket {number}: " + " -> ".join(f"{n} x {epochs} epochs" for n, epochs, _ in rows))
        for i, (n, epochs, entry) in enumerate(rows):
            lines.append(f"    rung {i}: {n:>4} configuration(s), each trained to epoch {epochs}"
                         + (f" ({entry})" if entry else ""))
    if plan.time_budget is not None and plan.wall_seconds is not None:
        budget = format_duration(plan.time_budget)
        brackets = f" ({plan.brackets_started} bracket(s) begun)" if plan.brackets_started else ""
        if plan.budget_ended:
            then = "the running jobs stopped there" if plan.time_budget_hard else "the running jobs finish"
            lines.append(f"in the time budget {budget} with {plan.workers} worker(s) at {plan.epoch_seconds:.3g} "
                         f"s/epoch: {plan.jobs} jobs start{brackets}, {plan.epochs} epochs of training; the budget "
                         f"ends the search ({then}, at {_clock(plan.wall_seconds)}; job start-up not included)")
        else:
            lines.append(f"the search ends before the time budget {budget}: {plan.jobs} jobs{brackets}, "
                         f"{plan.epochs} epochs of training in {_clock(plan.wall_seconds)} with {plan.workers} "
                         f"worker(s) at {plan.epoch_seconds:.3g} s/epoch (job start-up not included)")
        return lines
    lines.append(f"total: {plan.jobs} jobs, {plan.epochs} epochs of training")
    if plan.time_budget is not None:
        lines.append(f"what fits in the time budget {format_duration(plan.time_budget)}: unknown without the time "
                     "of an epoch; give --epoch-seconds")
    if plan.wall_seconds is not None:
        lines.append(f"estimated wall time with {plan.workers} worker(s) at {plan.epoch_seconds:.3g} s/epoch "
                     f"({plan.epoch_seconds_source}): {_clock(plan.wall_seconds)} (job start-up not included)")
    else:
        lines.append(f"no time estimate: {plan.epoch_seconds_source}")
    return lines
