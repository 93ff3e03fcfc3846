"""How a job's epochs score and how its end is classified: completed, stopped, failed,
retried or interrupted.

The engine decides nothing here by itself: it tells `JobScores` each metrics line, and
`classify` how the job ended and what the run knew about it (asked to stop, hung, NaN,
interrupted, its attempt). Resume's replay scores the journaled lines through the same
JobScores, so a resumed run knows every job's score as the dead run did.
"""
from __future__ import annotations

import json
import math
import signal
from dataclasses import dataclass, field
from typing import Any

from .backends.base import JobExit

# a trainer's exit code for a bad config (docs/trainer.md): every attempt would fail alike
CONFIG_ERROR_EXIT = 2


@dataclass
class JobScores:
    """Each job's score as a loss (the algorithm always minimises: a maximised metric is
    negated), folded from its epochs: its best epoch ("best": what models/model.pt holds) or
    its last ("last"). A metric that is not a finite number marks the job as NaN (failed,
    never retried)."""

    metric: str
    direction: str  # "maximize" | "minimize"
    mode: str = "best"
    loss_of: dict[int, float] = field(default_factory=dict)  # job id -> its score so far
    nan: dict[int, str] = field(default_factory=dict)  # job id -> why its metric is unusable

    def loss(self, metric: float) -> float:
        return -metric if self.direction == "maximize" else metric

    def add(self, job_id: int, values: dict[str, Any]) -> float | None:
        """Fold one epoch's line into the job's score; its loss, or None when the line has
        no usable metric (an epoch without validation, or NaN: then `nan` says why)."""
        metric = values.get(self.metric)
        if metric is None and self.metric not in values:
            return None  # an epoch without validation
        if not isinstance(metric, (int, float)) or isinstance(metric, bool) or not math.isfinite(metric):
            self.nan.setdefault(job_id, f"{self.metric} is not a finite number ({json.dumps(metric)}) "
                                        f"at epoch {values.get('epoch')}")
            return None
        loss = self.loss(float(metric))
        if self.mode == "last":
            self.loss_of[job_id] = loss
        else:
            self.loss_of[job_id] = min(loss, self.loss_of.get(job_id, math.inf))
        return loss


@dataclass(frozen=True)
class Ending:
    """How a job ended: `status` for the journal, `cause` in words, `loss` the score the
    algorithm hears (None for a failed or retried job)."""

    status: str  # completed | stopped | failed | retried | interrupted
    cause: str
    loss: float | None


def classify(exit: JobExit, *, loss: float | None, metric: str, nan: str | None = None, hung: str | None = None,
             stop_reason: str | None = None, interrupted: bool = False, attempt: int = 1,
             max_retries: int = 1) -> Ending:
    """The job's ending, from its exit and what the run knew of it, first rule first:
    a NaN metric fails it (another attempt would diverge again); a hung job fails, and is
    retried as a crash while it has attempts left; a job asked to stop is stopped, scored
    on the epochs it reported; exit code 2 (the trainer refused its config) fails without
    a retry; another non-zero exit is a crash, retried from its checkpoint while attempts
    are left; a clean exit without the metric fails; else it completed. A job cut by
    Ctrl-C or an error (`interrupted`) is not an outcome at all: a resumed run continues it."""
    if nan is not None:
        status, cause = "failed", nan
    elif hung is not None and not interrupted:
        status, cause = "failed", hung
        if attempt <= max_retries:
            status = "retried"
    elif stop_reason is not None:
        status, cause = "stopped", stop_reason
    elif exit.returncode == CONFIG_ERROR_EXIT:
        status, cause = "failed", exit_cause(exit, "a config error, not retried")
    elif exit.returncode != 0:
        status, cause = "failed", exit_cause(exit)
        if attempt <= max_retries:
            status = "retried"
    elif loss is None:
        status, cause = "failed", f"the trainer wrote no {metric}"
    else:
        status, cause = "completed", ""
    scored = loss if status not in ("failed", "retried") else None
    if interrupted:
        status = "interrupted"
    return Ending(status, cause, scored)


def exit_cause(exit: JobExit, why: str = "") -> str:
    """`exit code 1: <the log's last line>`, `killed by SIGKILL`, ..."""
    code = exit.returncode
    if code < 0:
        try:
            how = f"killed by {signal.Signals(-code).name}"
        except ValueError:
            how = f"killed by signal {-code}"
    else:
        how = f"exit code {code}"
    if why:
        how += f" ({why})"
    last = next((line for line in reversed(exit.log_tail) if line.strip()), "")
    return how + (f": {last.strip()[:300]}" if last else "")
