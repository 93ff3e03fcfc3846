"""Bring your own controller: Clara's controller contract, run by our engine.

A controller proposes configurations and learns from their results:

    set_search_space(space, ctx)         once, before anything else
    initial_recommendation(ctx)          -> the first recommendations
    refine_recommendation(outcome, ctx)  -> more, after each job ends

A recommendation is a dict of concrete values, one per search parameter (`ctx.space.params`
names them; an enum over one arg may be given as the bare value, and a parameter whose
condition does not hold as None or left out). `ControllerAlgorithm` adapts a controller to
the Algorithm contract: it keeps every free worker busy from a queue of the
recommendations not yet started, trains each in full, and is done when the queue is empty,
no job is running and the controller has returned nothing more.

For `--resume` the engine replays the journal into a fresh controller (the same calls in
the same order), so a controller must be deterministic given `ctx.seed`: draw randomness
from `ctx.rng` (or a generator seeded from ctx.seed), never from the clock or global state.
"""
from __future__ import annotations

import traceback
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..algorithms.base import Algorithm, JobRequest, Outcome
from ..errors import SearchFailed
from ..space import SearchSpace


@dataclass(frozen=True)
class JobOutcome:
    """How a job of a recommendation ended."""

    name: str  # the job's folder, e.g. W1_1_J3
    job_id: int
    status: str  # "completed" | "failed" | "stopped"
    score: float | None  # the run's metric in its own direction (None: the job produced no result)
    values: dict[str, Any]  # the recommendation it ran
    epochs: int
    cause: str = ""


@dataclass
class ControllerContext:
    """What a controller may use; the same object at every call."""

    seed: int
    rng: np.random.Generator  # seeded from `seed`: the one source of randomness a controller needs
    space: SearchSpace
    max_epochs: int
    direction: str  # the direction of `score` in outcomes: "maximize" | "minimize"
    outcomes: list[JobOutcome] = field(default_factory=list)  # every outcome so far, in order
    pending: list[dict[str, Any]] = field(default_factory=list)  # recommendations queued or running


class Controller:
    """Base of a user's controller; `args` of config_automl.json's controller are passed to
    the constructor as keyword arguments."""

    def set_search_space(self, space: SearchSpace, ctx: ControllerContext) -> None:
        pass

    def initial_recommendation(self, ctx: ControllerContext) -> list[dict[str, Any]]:
        raise NotImplementedError

    def refine_recommendation(self, outcome: JobOutcome, ctx: ControllerContext) -> list[dict[str, Any]]:
        return []


class ControllerAlgorithm(Algorithm):
    """A Clara-style controller seen as an Algorithm. `name` is the controller's path and
    `params` the args it was built with (both journaled: a resumed run must match them)."""

    name = "controller"
    summary = "a user's controller (config_automl.json controller.path)"

    def __init__(self, space: SearchSpace, *, controller: Any, path: str, max_epochs: int, seed: int = 0,
                 params: dict[str, Any] | None = None, direction: str = "minimize"):
        super().__init__(space, max_epochs=max_epochs, seed=seed, direction=direction)
        self.name = path
        self.params = dict(params or {})
        self.controller = controller
        self.ctx = ControllerContext(seed, self.rng, space, self.max_epochs, direction)
        self.queue: deque[dict[str, Any]] = deque()
        self.running: dict[int, dict[str, Any]] = {}  # trial id -> values
        self.trials = 0
        self.started = False
        self.view = None  # the run's RunView, for job names (attach_view)

    def attach_view(self, view) -> None:
        self.view = view

    def suggest(self, free_slots: int) -> list[JobRequest]:
        if not self.started:
            self.started = True
            self._call("set_search_space", self.space, self.ctx)
            self._take(self._call("initial_recommendation", self.ctx), "initial_recommendation")
        jobs = []
        while self.queue and len(jobs) < free_slots:
            values = self.queue.popleft()
            self.trials += 1
            self.running[self.trials] = values
            jobs.append(JobRequest(self.trials, values, self.max_epochs, note=f"recommendation {self.trials} of "
                                                                                f"{self.name}"))
        self._pending()
        return jobs

    def on_finished(self, outcome: Outcome) -> None:
        values = self.running.pop(outcome.trial_id)
        score = None if outcome.loss is None else self.loss_of(outcome.loss)  # loss_of is its own inverse
        job = self.view.jobs.get(outcome.job_id) if self.view is not None else None
        result = JobOutcome(job.name if job else f"J{outcome.job_id}", outcome.job_id, outcome.status, score, values,
                            outcome.epochs, outcome.cause)
        self.ctx.outcomes.append(result)
        self._pending()
        self._take(self._call("refine_recommendation", result, self.ctx), "refine_recommendation")

    def is_done(self) -> bool:
        return self.started and not self.queue and not self.running

    def _call(self, method: str, *args: Any) -> Any:
        """A controller's exception ends the search in one line that says where it was raised."""
        function = getattr(self.controller, method, None)
        if function is None:  # set_search_space is optional; the loader checked the others
            return None
        try:
            return function(*args)
        except Exception as exc:  # noqa: BLE001
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            raise SearchFailed(f"controller {self.name}.{method} raised {type(exc).__name__}: {exc} "
                               f"({frame.filename}:{frame.lineno})") from exc

    def _pending(self) -> None:
        self.ctx.pending = [*self.running.values(), *self.queue]

    def _take(self, recommendations, method: str) -> None:
        for number, given in enumerate(recommendations or []):
            self.queue.append(self._concrete(given, f"{self.name}.{method} recommendation {number + 1}"))
        self._pending()

    def _concrete(self, given: Any, where: str) -> dict[str, Any]:
        """A recommendation as the engine's values: every parameter named, enums as lists."""
        if not isinstance(given, dict):
            raise SearchFailed(f"{where}: expected a dict of parameter values, got {type(given).__name__}")
        unknown = sorted(set(given) - set(self.space.by_name))
        if unknown:
            raise SearchFailed(f"{where}: unknown parameter(s) {', '.join(unknown)} (the search space has "
                               f"{', '.join(self.space.by_name)})")
        values = {}
        for p in self.space.params:
            value = given.get(p.name)
            if p.is_choice and value is not None and not isinstance(value, list):
                value = [value]
            if p.kind == "float" and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            values[p.name] = value
        if not self.space.contains(values):
            raise SearchFailed(f"{where}: {values} is not in the search space (missing, out of range, not a "
                               "choice, or a value for a parameter whose condition does not hold)")
        return values
