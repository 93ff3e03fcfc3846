"""The algorithm contract and the registry every algorithm plugs into.

An algorithm decides, never executes: it is asked for jobs when workers are free, hears
each epoch's metric and each job's end, and says when it is done. It knows nothing of
processes, files or SLURM. It draws randomness only from its own seeded generator and
keeps no state it could not rebuild by hearing the same calls again, so a run replayed
from its journal makes the same decisions.

Metrics reach an algorithm as *losses*: the engine negates a metric that is maximised,
so every algorithm minimises and none can get the direction wrong.
"""
from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..errors import UsageError
from ..space import SearchSpace

CONTINUE, STOP = "continue", "stop"


def config_key(params: dict[str, Any]) -> str:
    """A configuration as a hashable key (to tell whether it was tried already)."""
    return json.dumps(params, sort_keys=True)


def stop_because(reason: str) -> str:
    """An on_metrics answer that stops the job and says why (shown in the trace)."""
    return f"{STOP}: {reason}"


@dataclass(frozen=True)
class JobRequest:
    """Run trial `trial_id` with `params` from `start_epoch` to `stop_epoch`
    (a later job of the same trial resumes from that trial's checkpoint)."""

    trial_id: int
    params: dict[str, Any]
    stop_epoch: int
    start_epoch: int = 0
    note: str = ""  # why this job exists, for the trace (e.g. "initial design")
    bracket: int | None = None  # for bracket-based algorithms: which bracket and rung
    rung: int | None = None
    copy_from_job: int | None = None  # start from that finished job's checkpoint (PBT's exploit)


@dataclass(frozen=True)
class Outcome:
    """How a job ended. `loss` is the best loss over its epochs (None when it failed)."""

    trial_id: int
    job_id: int
    status: str  # "completed" | "failed" | "stopped"
    loss: float | None
    epochs: int
    cause: str = ""


@dataclass(frozen=True)
class ParamSpec:
    """A documented algorithm parameter, as users write it in config_automl.json.
    `kind` converts the value; `auto` names a string that stands for "work it out"."""

    default: Any
    help: str
    kind: type = int
    minimum: float | None = None
    auto: str | None = None
    maximum: float | None = None


class Algorithm(ABC):
    """Base of every search algorithm. Subclasses set `name`, `summary` and `parameters`."""

    name: ClassVar[str]
    summary: ClassVar[str]
    parameters: ClassVar[dict[str, ParamSpec]] = {}
    # whether `adopt` works: a run it searched can be rebuilt (--resume --rebuild)
    can_adopt: ClassVar[bool] = False

    def __init__(self, space: SearchSpace, *, max_epochs: int, seed: int = 0,
                 params: dict[str, Any] | None = None, direction: str = "minimize"):
        self.space = space
        self.max_epochs = int(max_epochs)
        self.seed = seed
        self.direction = direction
        self.params = resolve_params(type(self), params or {})
        self.rng = np.random.default_rng(seed)

    @abstractmethod
    def suggest(self, free_slots: int) -> list[JobRequest]:
        """Up to `free_slots` jobs to start now (fewer, or none, is fine)."""

    def on_metrics(self, trial_id: int, job_id: int, epoch: int, loss: float) -> str:
        """A running job finished `epoch` (counted over its trial) with `loss`; answer
        CONTINUE, STOP or stop_because(reason)."""
        return CONTINUE

    @abstractmethod
    def on_finished(self, outcome: Outcome) -> None:
        """A job ended (completed, failed or stopped)."""

    @abstractmethod
    def is_done(self) -> bool:
        """True when the algorithm will ask for nothing more."""

    def adopt(self, request: JobRequest) -> None:
        """Take `request`, a trial this algorithm did not suggest, as one of its own: a
        rebuilt run (`--resume --rebuild`, when an exact replay broke) hands a fresh algorithm
        each trial its journal holds, in the order they started, then their epochs and ends
        through on_metrics and on_finished as usual. Only for algorithms with `can_adopt`."""
        raise NotImplementedError(f"{self.name} cannot adopt trials")

    def explain(self) -> list[str]:
        """Lines for the trace at the start of a run: how the algorithm read its parameters."""
        return []

    def loss_of(self, metric: float) -> float:
        """A metric value (e.g. a user's threshold) in the loss units algorithms compare."""
        return -metric if self.direction == "maximize" else metric

    def incumbent(self) -> tuple[dict[str, Any], float] | None:
        """The algorithm's own pick of the best configuration and its loss, when it has one
        (e.g. the best at the highest budget); None leaves the choice to the engine."""
        return None

    def planned_jobs(self) -> int | None:
        """How many jobs the whole search runs, when known in advance (for progress)."""
        return None


REGISTRY: dict[str, type[Algorithm]] = {}


def register(cls: type[Algorithm]) -> type[Algorithm]:
    REGISTRY[cls.name] = cls
    return cls


def get_algorithm(name: str) -> type[Algorithm]:
    from . import load_all

    load_all()
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise UsageError(f"unknown algorithm '{name}' (known: {known})") from None


def resolve_params(cls: type[Algorithm], given: dict[str, Any]) -> dict[str, Any]:
    """Defaults overlaid with what the user gave, each checked against its ParamSpec."""
    out = {k: spec.default for k, spec in cls.parameters.items()}
    for key, value in given.items():
        spec = cls.parameters.get(key)
        if spec is None:
            known = ", ".join(sorted(cls.parameters)) or "none"
            raise UsageError(f"algorithm '{cls.name}' has no parameter '{key}' (its parameters: {known})")
        if value is None or (spec.auto is not None and value == spec.auto):
            out[key] = spec.default
            continue
        try:
            if spec.kind is int and (isinstance(value, bool) or float(value) != int(float(value))):
                raise ValueError
            value = spec.kind(value if spec.kind is not int else int(float(value)))
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError
        except (TypeError, ValueError, OverflowError):
            raise UsageError(f"{cls.name} parameter {key}: expected {spec.kind.__name__}"
                             f"{' (finite)' if spec.kind is float else ''}, got {value!r}") from None
        if spec.minimum is not None and value < spec.minimum:
            raise UsageError(f"{cls.name} parameter {key}: must be at least {spec.minimum}, got {value}")
        if spec.maximum is not None and value > spec.maximum:
            raise UsageError(f"{cls.name} parameter {key}: must be at most {spec.maximum}, got {value}")
        out[key] = value
    return out


@dataclass
class TrialBook:
    """Bookkeeping shared by one-job-per-trial algorithms: which trials were asked for,
    which are running and what each finished with."""

    budget: int
    proposed: list[dict[str, Any]] = field(default_factory=list)
    running: set[int] = field(default_factory=set)
    losses: dict[int, float | None] = field(default_factory=dict)

    def remaining(self) -> int:
        return self.budget - len(self.proposed)

    def add(self, params: dict[str, Any]) -> int:
        self.proposed.append(params)
        trial_id = len(self.proposed)
        self.running.add(trial_id)
        return trial_id

    def finish(self, outcome: Outcome) -> None:
        self.running.discard(outcome.trial_id)
        self.losses[outcome.trial_id] = outcome.loss if outcome.status == "completed" else None

    def done(self) -> bool:
        return self.remaining() <= 0 and not self.running


class FullTrainings(Algorithm):
    """Base of algorithms that train each configuration once, in full, for a budget of
    `budget_param` configurations: subclasses only choose the next one. (With no
    `budget_param`, the subclass makes `self.book` itself, e.g. once it knows a table's size.)"""

    budget_param: ClassVar[str | None] = "automl_max_recommendations"
    can_adopt = True

    def __init__(self, space, **kwargs):
        super().__init__(space, **kwargs)
        if self.budget_param:
            self.book = TrialBook(self.params[self.budget_param])

    @abstractmethod
    def next_config(self) -> tuple[dict[str, Any], str]:
        """The next configuration to train, and why (for the trace)."""

    def suggest(self, free_slots: int) -> list[JobRequest]:
        jobs = []
        for _ in range(min(free_slots, self.book.remaining())):
            params, note = self.next_config()
            jobs.append(JobRequest(self.book.add(params), params, self.max_epochs, note=note))
        return jobs

    def on_finished(self, outcome: Outcome) -> None:
        self.book.finish(outcome)

    def adopt(self, request: JobRequest) -> None:
        """A trial of a rebuilt run: it counts against the budget, and its result will be heard."""
        if request.trial_id != len(self.book.proposed) + 1:
            raise UsageError(f"{self.name} cannot adopt trial {request.trial_id} after {len(self.book.proposed)} "
                             "trials: a rebuilt run's trials must come in order")
        self.book.add(request.params)

    def is_done(self) -> bool:
        return self.book.done()

    def planned_jobs(self) -> int:
        return self.book.budget
