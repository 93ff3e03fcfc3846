"""The backend contract: a backend executes jobs, it never decides anything."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class JobSpec:
    """Everything needed to run one job: its folder, its command and its environment."""

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
    def start(self, spec: JobSpec) -> None:
        """Launch the job; returns at once."""

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
