"""`automl plan`: what a search will run, before anything runs.

For bracket-based algorithms the schedule is printed rung by rung; for every algorithm the
jobs, the epochs and a wall-time estimate come from simulating the search itself with a
constant time per epoch and a constant start-up per job (so barriers and idle workers are
counted, not guessed), on as many workers as the run would have. The plan says what it
assumed and where each number came from: the workers (given, the MMAR's commands/automl.sh,
or the run's default), the seconds per epoch and the start-up of a job (given, or measured
in the newest earlier run's journal).
"""
from __future__ import annotations

import json
import random
import re
import statistics
from dataclasses import dataclass
from pathlib import Path

from .algorithms.base import get_algorithm
from .algorithms.catalogue import initial_design_line
from .algorithms.schedulers.hyperband import SuccessiveHalving
from .backends.simulated import SimulatedBackend
from .durations import format_duration
from .engine import Engine, EngineSettings, format_duration_left
from .status import RunView, _clock
from .store import JOURNAL, Journal, read_events
from .workers import Worker


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
    workers_source: str = ""
    startup_seconds: float | None = None  # added to every job's first epoch; None: not measured
    startup_source: str = ""


@dataclass
class Measured:
    """What the newest earlier run with epoch times says about this MMAR's jobs."""

    epoch_seconds: float | None
    epoch_source: str
    startup_seconds: float | None
    startup_source: str


NOT_MEASURED = "start-up not measured: no earlier run; give --startup-seconds"


def measured_epoch_seconds(runs_dir: Path) -> tuple[float | None, str]:
    """The median seconds per epoch of the newest earlier run of this MMAR, if any."""
    found = measure(runs_dir)
    return found.epoch_seconds, found.epoch_source


def measure(runs_dir: Path) -> Measured:
    """The median seconds per epoch and the median start-up of a job in the newest earlier
    run of this MMAR that has epoch times. A job's start-up: from its start to its first
    epoch's end, less that epoch's own seconds (what the trainer spent before training:
    the process, imports, data loading, a checkpoint read)."""
    journals = sorted(runs_dir.glob(f"*/{JOURNAL}"), key=lambda p: p.stat().st_mtime, reverse=True)
    for journal in journals:
        try:
            events = read_events(journal.parent)
        except Exception:  # a damaged or foreign journal says nothing about epoch times
            continue
        run_id, seconds, startups = journal.parent.name, [], []
        started: dict[int, float] = {}  # job id -> when its latest attempt started
        for event in events:
            data = event.data
            if event.kind == "run_started":
                run_id = data.get("run_id", run_id)
            elif event.kind == "job_started":
                started[data["job_id"]] = event.time
            elif event.kind == "metrics":
                took = data.get("values", {}).get("seconds")
                if not isinstance(took, (int, float)) or isinstance(took, bool):
                    continue
                seconds.append(took)
                begun = started.pop(data["job_id"], None)  # only an attempt's first epoch counts
                if begun is not None:
                    startups.append(max(0.0, event.time - begun - took))
        if seconds:
            where = f"of run {run_id}"
            startup, startup_source = None, f"start-up not measured: run {run_id} has no job's first epoch"
            if startups:
                startup = statistics.median(startups)
                startup_source = f"median of {len(startups)} job(s) {where}"
            return Measured(statistics.median(seconds), f"median of {len(seconds)} epochs {where}", startup,
                            startup_source)
    return Measured(None, "no earlier run to measure; give --epoch-seconds", None, NOT_MEASURED)


_WORKERS_PAIR = re.compile(r"(?:(?<![\w-])workers=|--workers[= ])['\"]?([0-9][0-9,:]*)")


def mmar_workers(mmar_root: Path) -> tuple[str, str] | None:
    """The worker spec the MMAR's own commands/automl.sh passes to `automl run` (its last
    `workers=SPEC` or `--workers SPEC`), and where it was found; None when it names none."""
    script = Path(mmar_root) / "commands" / "automl.sh"
    try:
        text = script.read_text(errors="replace")
    except OSError:
        return None
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    found = [m.group(1) for line in lines for m in _WORKERS_PAIR.finditer(line)]
    return (found[-1], f"commands/automl.sh passes workers={found[-1]}") if found else None


class _StartingBackend(SimulatedBackend):
    """The simulated backend, saying to the objective when it is asked for a job's first
    epoch (SimulatedBackend.start asks for it at once), so that epoch carries the start-up."""

    starting = False

    def start(self, job):
        self.starting = True
        try:
            return super().start(job)
        finally:
            self.starting = False


def _simulate(space, algorithm: str, params: dict, max_epochs: int, workers: int, seed: int, epoch_seconds: float,
              startup: float, budget: float | None, hard: bool):
    """The search on `workers` simulated workers, each epoch `epoch_seconds` and each job's
    first one `startup` more: the engine, the journal (in memory) and the algorithm are the
    real ones, as in simulate.run_simulation."""
    noise = random.Random(seed)
    algo = get_algorithm(algorithm)(space, max_epochs=max_epochs, seed=seed, params=params, direction="minimize")

    def objective(config, epoch, state):
        return noise.random(), epoch_seconds + (startup if backend.starting else 0.0)

    backend = _StartingBackend(objective, "objective", dict, budget if hard else None)
    journal = Journal(Path(":memory:"))
    engine = Engine(EngineSettings("plan", algorithm, space, [Worker(i + 1, ()) for i in range(workers)], "objective",
                                   "minimize", max_epochs, time_budget=budget, time_budget_hard=hard, score="last"),
                    algo, backend, journal)
    try:
        view = engine.run()
    finally:
        journal.close()
    return view, backend.now()


def make_plan(space, algorithm: str, params: dict, max_epochs: int, workers: int,
              epoch_seconds: float | None, source: str, seed: int = 0, time_budget: float | None = None,
              time_budget_hard: bool = False, *, workers_source: str = "", startup_seconds: float | None = None,
              startup_source: str = "") -> Plan:
    """The schedule, and the search simulated at `epoch_seconds` per epoch plus
    `startup_seconds` per job (None: not measured, counted as 0): within `time_budget`
    (seconds) when one is given and the epoch time is known."""
    cls = get_algorithm(algorithm)
    algo = cls(space, max_epochs=max_epochs, seed=seed, params=params)
    reasons, brackets = [], []
    if isinstance(algo, SuccessiveHalving):
        reasons = algo.adjustment + ([f"the brackets below run {algo.passes()}"]
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
    budget = time_budget if epoch_seconds else None  # what fits in it is known only with the epoch time
    view, elapsed = _simulate(space, algorithm, params, max_epochs, workers, seed, epoch_seconds or 1.0,
                              (startup_seconds or 0.0) if epoch_seconds else 0.0, budget, time_budget_hard)
    epochs = sum(len(j.epochs) for j in view.jobs.values())
    wall = elapsed if epoch_seconds else None
    started = {j.bracket for j in view.jobs.values() if j.bracket is not None}
    return Plan(algorithm, algo.params, reasons, brackets, len(view.jobs), epochs, workers, epoch_seconds, source,
                wall, time_budget, time_budget_hard, view.budget_reached is not None, len(started),
                workers_source, startup_seconds, startup_source)


def assumed(plan: Plan) -> str:
    """What the estimate assumed, each number with where it came from."""
    parts = [f"{plan.workers} worker(s)" + (f" ({plan.workers_source})" if plan.workers_source else "")]
    if plan.epoch_seconds is not None:
        parts.append(f"{plan.epoch_seconds:.3g} s/epoch ({plan.epoch_seconds_source})")
    if plan.startup_seconds is not None:
        parts.append(f"start-up {plan.startup_seconds:.3g} s per job ({plan.startup_source}), added to every job")
    else:
        parts.append((plan.startup_source or NOT_MEASURED) + "; counted as 0")
    return "assumed: " + "; ".join(parts)


def render(plan: Plan) -> list[str]:
    lines = [f"algorithm {plan.algorithm} {json.dumps(plan.params)}"]
    lines += [f"  {reason}" for reason in plan.reasons]
    for number, rows in enumerate(plan.brackets, start=1):
        lines.append(f"bracket {number}: " + " -> ".join(f"{n} x {epochs} epochs" for n, epochs, _ in rows))
        for i, (n, epochs, entry) in enumerate(rows):
            lines.append(f"    rung {i}: {n:>4} configuration(s), each trained to epoch {epochs}"
                         + (f" ({entry})" if entry else ""))
    startup = "job start-up included" if plan.startup_seconds is not None else "job start-up not measured"
    if plan.time_budget is not None and plan.wall_seconds is not None:
        budget = format_duration(plan.time_budget)
        brackets = f" ({plan.brackets_started} bracket(s) begun)" if plan.brackets_started else ""
        if plan.budget_ended:
            then = "the running jobs finish"
            if plan.time_budget_hard:
                left = plan.time_budget - plan.wall_seconds  # > 0: no job fitted a first epoch in it
                then = (f"none running, its last {format_duration_left(left)} too short for a job's first epoch"
                        if left > 1e-6 else "the running jobs stopped there")
            lines.append(f"in the time budget {budget} with {plan.workers} worker(s) at {plan.epoch_seconds:.3g} "
                         f"s/epoch: {plan.jobs} jobs start{brackets}, {plan.epochs} epochs of training; the budget "
                         f"ends the search ({then}, at {_clock(plan.wall_seconds)}; {startup})")
        else:
            lines.append(f"the search ends before the time budget {budget}: {plan.jobs} jobs{brackets}, "
                         f"{plan.epochs} epochs of training in {_clock(plan.wall_seconds)} with {plan.workers} "
                         f"worker(s) at {plan.epoch_seconds:.3g} s/epoch ({startup})")
        lines.append(assumed(plan))
        return lines
    lines.append(f"total: {plan.jobs} jobs, {plan.epochs} epochs of training")
    if plan.time_budget is not None:
        lines.append(f"what fits in the time budget {format_duration(plan.time_budget)}: unknown without the time "
                     "of an epoch; give --epoch-seconds")
    if plan.wall_seconds is not None:
        lines.append(f"estimated wall time with {plan.workers} worker(s) at {plan.epoch_seconds:.3g} s/epoch "
                     f"({plan.epoch_seconds_source}): {_clock(plan.wall_seconds)} ({startup})")
        lines.append(assumed(plan))
    else:
        lines.append(f"no time estimate: {plan.epoch_seconds_source}")
        lines.append(f"assumed: {plan.workers} worker(s)" + (f" ({plan.workers_source})" if plan.workers_source else ""))
    return lines
