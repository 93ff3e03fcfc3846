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
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..errors import UsageError
from ..space import SearchSpace
from .params import ParamSpec, resolve_params  # noqa: F401 (the contract's parameters)

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


class Algorithm(ABC):
    """Base of every search algorithm. Subclasses set `name`, `summary` and `parameters`."""

    name: ClassVar[str]
    summary: ClassVar[str]
    parameters: ClassVar[dict[str, ParamSpec]] = {}
    # whether `adopt` works: a run it searched can be rebuilt (--resume --rebuild)
    can_adopt: ClassVar[bool] = False

    def __init__(self, space: SearchSpace, *, max_epochs: int, seed: int = 0,
                 params: dict[str, Any] | None = None, direction: str = "minimize",
                 start_from: dict[str, Any] | None = None):
        """`start_from`: the configuration as the user wrote it (SearchSpace.written_values:
        by parameter name, None where unusable), to be the first configuration proposed;
        None: no such start."""
        self.space = space
        self.start_from = start_from
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

    def planned_jobs(self) -> int | None:
        """How many jobs the whole search runs, when known in advance (for progress)."""
        return None


# every preset by name, as an Algorithm class (presets.load_all fills it)
REGISTRY: dict[str, type[Algorithm]] = {}


def get_algorithm(name: str) -> type[Algorithm]:
    """The class of a preset (`bohb`) or of a pair `SCHEDULER+PROPOSER` (`asha+kde`); a
    pair that is a preset is that preset. Unknown names and invalid pairs are one-line
    UsageErrors that list what is known."""
    from .presets import algorithm_class

    return algorithm_class(name)


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
