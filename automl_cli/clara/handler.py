"""The handler contract: Clara's AutoML events, as a user's handler class receives them.

A handler is any class with some of the methods below (subclassing `Handler` is the easy
way; an event it does not define is skipped). Each method gets one `HandlerContext`. The
events, in the order a run produces them:

    start_automl            the run started (or resumed: ctx.resumed)
    search_space_available  right after: ctx.space is the search space
    recommendations_available  the algorithm proposed ctx.recommendations (one round)
    start_job               a job folder started training (ctx.job)
    end_job                 it ended: ctx.job has its status, score and values
    round_ended             every job of round ctx.round (and of every earlier round) ended
    end_automl              the run ended: ctx.status, ctx.best, ctx.message

A *round* is one batch of recommendations: the jobs the algorithm proposed in one call,
numbered 1, 2, ... from the start of the run. Round k ends when every job of rounds 1..k has
ended for good (completed, failed or stopped; a crashed job that is retried has not), so
rounds end in order even when an asynchronous algorithm starts round k+1 before round k is
over. A job run again after a crash or an interruption has no recommendation of its own:
it gets start_job and end_job, and belongs to the round of its first attempt.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..space import SearchSpace
from ..status import RunView

EVENTS = ("start_automl", "search_space_available", "recommendations_available", "start_job", "end_job",
          "round_ended", "end_automl")


@dataclass
class JobInfo:
    """One job folder (one attempt of a job): what it ran and, once ended, how it ended."""

    name: str  # the folder's name, e.g. W2_1_J7
    job_id: int
    trial_id: int
    worker: str
    attempt: int
    directory: Path
    values: dict[str, Any]  # the concrete value of every search parameter (None: inactive)
    start_epoch: int
    stop_epoch: int
    round: int | None  # the round of the recommendation it runs
    status: str = "running"  # then "completed" | "failed" | "stopped" | "retried" | "interrupted"
    score: float | None = None  # the run's metric, in its own direction (None: no result)
    epoch: int = 0  # the last epoch it reached, counted over its trial
    seconds: float = 0.0  # how long it ran
    cause: str = ""  # why it failed or was stopped
    copy_from_job: int | None = None  # PBT: the job whose weights it started from

    @property
    def epochs_trained(self) -> int:
        return max(0, self.epoch - self.start_epoch)


@dataclass(frozen=True)
class Recommendation:
    """One configuration the algorithm proposed: a new trial, or a next stage of one."""

    trial_id: int
    values: dict[str, Any]
    start_epoch: int
    stop_epoch: int
    note: str = ""


@dataclass
class HandlerContext:
    """What a handler sees at an event. The same fields at every event; those that do not
    apply are None or empty (ctx.job outside start_job / end_job, ...)."""

    event: str
    run_id: str
    run_dir: Path  # the run folder: trace.log, journal.db, the job folders, best/
    mmar_root: Path
    space: SearchSpace
    metric: str
    direction: str  # "maximize" | "minimize"
    algorithm: str
    view: RunView  # the run as the journal has it so far (read it, never change it)
    jobs: list[JobInfo]  # every job folder so far, in start order
    resumed: bool = False  # this process continues an earlier run (--resume)
    job: JobInfo | None = None
    recommendations: list[Recommendation] = field(default_factory=list)
    round: int | None = None
    status: str | None = None  # end_automl: "completed" | "failed" | "interrupted"
    message: str = ""  # end_automl: the run's closing message
    search_complete: bool = False  # end_automl: the algorithm finished its search (not stopped early)
    log: Callable[..., None] = lambda message, level="INFO": None  # log(message, level=...): a line in trace.log
    request_stop: Callable[[str], bool] = lambda reason: False  # finish early; running jobs end

    @property
    def best(self) -> JobInfo | None:
        """The ended job folder with the best score so far."""
        scored = [j for j in self.jobs if j.score is not None and j.status in ("completed", "stopped")]
        if not scored:
            return None
        sign = -1.0 if self.direction == "maximize" else 1.0
        return min(scored, key=lambda j: (sign * j.score, j.job_id))


class BadArgument(ValueError):
    """A component's argument `arg` is wrong; raised by a constructor, reported as a
    ConfigError at that argument's JSON path."""

    def __init__(self, arg: str, message: str):
        self.arg = arg
        super().__init__(message)


class Handler:
    """Base of event handlers: override the events you need; each gets a HandlerContext.

    An exception in start_automl aborts the run before any job starts (a handler that cannot
    set itself up would otherwise miss the whole run); an exception in any other event is
    written to trace.log with the handler's name and the search goes on."""

    def start_automl(self, ctx: HandlerContext) -> None:
        pass

    def search_space_available(self, ctx: HandlerContext) -> None:
        pass

    def recommendations_available(self, ctx: HandlerContext) -> None:
        pass

    def start_job(self, ctx: HandlerContext) -> None:
        pass

    def end_job(self, ctx: HandlerContext) -> None:
        pass

    def round_ended(self, ctx: HandlerContext) -> None:
        pass

    def end_automl(self, ctx: HandlerContext) -> None:
        pass
