"""Feeds Clara's handler events from the journal: an engine listener that maps each
journaled event onto start_automl, recommendations_available, start_job, end_job,
round_ended, ... (see handler.py for the events and what a round is) and calls every
handler, keeping one handler's failure from stopping the search."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import UsageError
from ..store import Event
from .handler import HandlerContext, JobInfo, Recommendation


class HandlerSetupFailed(UsageError):
    """A handler raised in start_automl: the run stops before any job starts."""


@dataclass
class _Round:
    number: int
    waiting: set[int]  # trials asked for whose job has not started yet
    recommendations: list[Recommendation] = field(default_factory=list)
    started: list[JobInfo] = field(default_factory=list)  # started, their start_job not yet sent
    announced: bool = False  # recommendations_available sent
    open_jobs: set[int] = field(default_factory=set)  # job ids not yet ended for good


class HandlerHub:
    """One per run. `handlers` are (label, instance) pairs, the label naming the handler in
    trace.log; `engine` supplies the run's settings, view, request_stop and whether its
    algorithm is done."""

    def __init__(self, handlers: list[tuple[str, Any]], engine, run_dir: Path, mmar_root: Path,
                 trace: Callable[..., None]):
        self.handlers = handlers
        self.engine = engine
        self.run_dir = Path(run_dir)
        self.mmar_root = Path(mmar_root)
        self.trace = trace
        self.jobs: list[JobInfo] = []  # every job folder, in start order
        self.current: dict[int, JobInfo] = {}  # job id -> its latest folder
        self.rounds: list[_Round] = []
        self.waiting: dict[int, _Round] = {}  # trial asked for -> its round, until its job starts
        self.to_announce: list[_Round] = []  # rounds with started jobs not yet announced
        self.rounds_ended = 0
        self.started_at: dict[str, float] = {}
        self.resumed = False
        self.silent = False
        self.began = False  # start_automl went through
        self.ended = False

    # -- the listener ----------------------------------------------------------------------
    def restore(self, history: list[Event]) -> None:
        """Rebuild the bookkeeping of an earlier run from its journal, calling no handler."""
        self.silent = True
        try:
            for event in history:
                self(event)
        finally:
            self.silent = False
            self.began = self.ended = False  # this process starts and ends its handlers anew

    def __call__(self, event: Event) -> None:
        d = event.data
        if event.kind not in ("job_started", "run_resumed"):  # a resumed run's first jobs may complete a round
            self._flush()
        if event.kind in ("run_started", "run_resumed"):
            self.resumed = event.kind == "run_resumed"
            self._fire("start_automl")
            self.began = True
            self._fire("search_space_available")
        elif event.kind == "asked":
            batch = _Round(len(self.rounds) + 1, set(d["trials"]))
            self.rounds.append(batch)
            self.waiting.update({trial: batch for trial in d["trials"]})
        elif event.kind == "job_started":
            self._job_started(event)
        elif event.kind == "job_finished":
            self._job_finished(event)
        elif event.kind == "run_finished":
            self._end(d["status"], d.get("message", ""))

    def close(self) -> None:
        """End handlers that heard the start but no end (the run stopped on an error)."""
        self._flush()
        if self.began and not self.ended:
            self._end("failed", "the run stopped on an error (see trace.log)")

    # -- events ----------------------------------------------------------------------------
    def _job_started(self, event: Event) -> None:
        d = event.data
        earlier = self.current.get(d["job_id"])
        round_ = earlier.round if earlier else None
        info = JobInfo(d["name"], d["job_id"], d["trial_id"], d["worker"], d.get("attempt", 1),
                       Path(d.get("dir") or self.run_dir / d["name"]), dict(d["params"]), d["start_epoch"],
                       d["stop_epoch"], round_, copy_from_job=d.get("copy_from_job"), epoch=d["start_epoch"])
        self.jobs.append(info)
        self.current[info.job_id] = info
        self.started_at[info.name] = event.time
        batch = self.waiting.pop(info.trial_id, None) if earlier is None else None
        if batch is None:
            self._fire("start_job", job=info)
            return
        batch.waiting.discard(info.trial_id)
        info.round = batch.number
        batch.open_jobs.add(info.job_id)
        batch.recommendations.append(Recommendation(info.trial_id, info.values, info.start_epoch, info.stop_epoch,
                                                    d.get("note", "")))
        batch.started.append(info)
        if batch not in self.to_announce:
            self.to_announce.append(batch)
        if not batch.waiting:
            self._flush()

    def _flush(self) -> None:
        """A round's recommendations go out once its jobs have started (they start together,
        in one turn of the loop, except after a resume), then a start_job for each. A job of
        an announced round that starts later gets its start_job alone."""
        rounds, self.to_announce = self.to_announce, []
        for batch in rounds:
            if not batch.announced:
                batch.announced = True
                self._fire("recommendations_available", recommendations=list(batch.recommendations),
                           round=batch.number)
            started, batch.started = batch.started, []
            for info in started:
                self._fire("start_job", job=info)

    def _job_finished(self, event: Event) -> None:
        d = event.data
        info = self.current.get(d["job_id"])
        if info is None:
            return
        info.status, info.score, info.cause = d["status"], d.get("metric"), d.get("cause", "")
        info.epoch = max(info.epoch, d.get("epochs") or 0)
        info.seconds = max(0.0, event.time - self.started_at.get(info.name, event.time))
        self._fire("end_job", job=info)
        if info.status in ("retried", "interrupted") or info.round is None:
            return
        self.rounds[info.round - 1].open_jobs.discard(info.job_id)
        while self.rounds_ended < len(self.rounds):
            batch = self.rounds[self.rounds_ended]
            if batch.open_jobs or batch.waiting or batch.started:
                break
            self.rounds_ended += 1
            self._fire("round_ended", round=batch.number)

    def _end(self, status: str, message: str) -> None:
        if self.ended:
            return
        self.ended = True
        complete = status == "completed" and self.engine.algorithm.is_done()
        self._fire("end_automl", status=status, message=message, search_complete=complete)

    # -- calling handlers ------------------------------------------------------------------
    def _fire(self, event: str, **fields: Any) -> None:
        if self.silent:
            return
        s = self.engine.s
        for label, handler in self.handlers:
            method = getattr(handler, event, None)
            if method is None:
                continue
            ctx = HandlerContext(event, s.run_id, self.run_dir, self.mmar_root, s.space, s.metric, s.direction,
                                 s.algorithm, self.engine.view, self.jobs, resumed=self.resumed,
                                 log=self._logger(label), request_stop=self.engine.request_stop, **fields)
            try:
                method(ctx)
            except Exception as exc:  # noqa: BLE001 -- a user's handler must not take the search down
                problem = f"handler {label} failed in {event}: {type(exc).__name__}: {exc}"
                if event == "start_automl":
                    raise HandlerSetupFailed(f"{problem}; no job was started: fix it and continue the run "
                                             "with --resume") from None
                self.trace(f"{problem}; the search goes on", level="ERROR")

    def _logger(self, label: str) -> Callable[..., None]:
        def log(message: str, level: str = "INFO") -> None:
            self.trace(f"{label}: {message}", level=level)
        return log
