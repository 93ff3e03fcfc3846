"""The backend contract: a backend executes jobs and keeps the time; it never decides."""
from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..workers import Worker


@dataclass(frozen=True)
class Job:
    """One run of one trial's config for a span of epochs, on one worker.

    A job with `start_epoch` > 0 continues its trial from the trial's checkpoint."""

    job_id: int
    name: str
    trial_id: int
    worker: Worker
    params: dict[str, Any]
    start_epoch: int
    stop_epoch: int
    attempt: int = 1  # > 1 when the job is run again after an interruption
    copy_from_job: int | None = None  # start from a copy of that finished job's checkpoint


@dataclass(frozen=True)
class JobSpec:
    """What a process-based backend runs for a job: its folder, command and environment."""

    job_id: int
    name: str
    directory: Path
    command: list[str]
    env: dict[str, str]
    log_file: Path
    metrics_file: Path


@dataclass(frozen=True)
class MetricsReport:
    """One epoch line the job's trainer wrote."""

    job_id: int
    values: dict[str, Any]


@dataclass(frozen=True)
class JobExit:
    """The job's process ended with `returncode` (negative: killed by that signal)."""

    job_id: int
    returncode: int
    stop_requested: bool = False
    log_tail: list[str] = field(default_factory=list)


class Backend(ABC):
    @abstractmethod
    def start(self, job: Job) -> dict[str, Any]:
        """Launch the job and return at once; the result (e.g. the job's folder) is journaled."""

    @abstractmethod
    def poll(self) -> list[MetricsReport | JobExit]:
        """What happened since the last poll, in order (a job's metrics before its exit)."""

    @abstractmethod
    def stop(self, job_id: int) -> None:
        """Ask a job to checkpoint and stop; it is killed if it has not stopped after the grace period."""

    @abstractmethod
    def stop_all(self) -> list[MetricsReport | JobExit]:
        """Stop every job and wait until none is left (used when the run ends or is
        interrupted); returns what happened meanwhile, as poll() would."""

    @abstractmethod
    def running(self) -> list[int]:
        """Job ids still running."""

    def queued(self, job_id: int) -> bool:
        """True while the job waits for resources (e.g. a pending SLURM job): it cannot report
        epochs yet, so the engine does not count it as hung."""
        return False

    def reattach(self, job: Job, placed: dict[str, Any]) -> bool:
        """A resumed run offers each job it saw start but not end, with what `start`
        returned for it; True if the backend found the job still there (queued, running or
        ended but not yet reported) and follows it again, so it is not started twice."""
        return False

    def now(self) -> float:
        """The backend's clock (wall time here; virtual time in a simulation)."""
        return time.time()

    def idle(self, seconds: float) -> None:
        """Nothing happened: wait a little before polling again."""
        time.sleep(seconds)


# executor.args every executor understands; a backend may read the others as its own options
COMMON_EXECUTOR_ARGS = frozenset({"train_command", "remove_search_augs", "grace_seconds", "msg_destination",
                                  "trainer"})


@dataclass
class PlacementRequest:
    """What a backend places a run's workers from (runconfig.settings_for_run)."""

    loaded: Any  # runconfig.Loaded: the MMAR's checked configs (automl_path, automl_doc, ...)
    executor: dict[str, Any]  # config_automl.json's executor section
    workers: str | None  # the --workers spec, None when not given
    options: dict[str, Any]  # the backend options given on the command line (--slurm-*; None: not given)


@dataclass
class Placement:
    """A backend's answer: the run's workers and its own settings."""

    workers: list[Worker]
    have_gpus: bool = False
    options: Any = None  # the backend's own settings, kept as RunSettings.backend_options
    warnings: list[str] = field(default_factory=list)  # said once every check of the run has passed


class BackendKind(ABC):
    """What a registered backend (backends/registry.py) needs from a run besides the Backend
    contract: how it places the workers, and how it makes the Backend."""

    @abstractmethod
    def place(self, request: PlacementRequest) -> Placement:
        """Check the settings that concern the backend and give the run's workers; a bad
        one is a UsageError or ConfigError (one line), raised before the run folder exists."""

    @abstractmethod
    def create(self, settings: Any, jobs: Any, trace: Any) -> Backend:
        """The Backend of a run: `settings` is its runconfig.RunSettings, `jobs` the
        run.MMARJobs that make and find job folders, `trace` the run's trace."""

    def where(self, settings: Any) -> str:
        """Where the run's jobs go, for the trace's "workers:" line."""
        return ", ".join(w.name for w in settings.workers)

    def stop_leftovers(self, settings: Any, history: list) -> list[int]:
        """Before a resumed run reads its jobs' files: stop whatever of the dead run still
        trains beside it; the pids stopped. Backends whose jobs outlive the tool on purpose
        (SLURM: re-attached) stop nothing."""
        return []
