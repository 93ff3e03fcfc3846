"""The one loop: ask the algorithm for jobs, hand them to the backend, feed metrics back,
and journal every event.

Nothing here knows how an algorithm decides, how a backend runs a job, or where the run
lives on disk: the same loop drives real processes (`run.py`) and simulations
(`simulate.py`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

from .algorithms.base import STOP, Algorithm, JobRequest, Outcome
from .backends.base import Backend, Job, JobExit, MetricsReport
from .durations import format_duration
from .errors import DiskFull, Interrupted, SearchFailed, UsageError
from .outcomes import CONFIG_ERROR_EXIT, JobScores, classify
from .replay import ResumeMismatch, replay  # noqa: F401 -- ResumeMismatch: for importers of the engine
from .resume import space_record
from .space import SearchSpace
from .status import JobView, RunView, format_params
from .store import Event, Journal
from .workers import Worker

# Polling backs off from 10 ms to 0.25 s while nothing happens: short jobs are collected
# at once, and a long quiet stretch costs a few wake-ups a second.
_POLL_MIN, _POLL_MAX = 0.01, 0.25
# automl_job_timeout "auto": a job is hung after this many times the slowest epoch the run has
# seen (from a job's start to its first report counts as an epoch: start-up included), and
# never before this many seconds
AUTO_TIMEOUT_FACTOR, AUTO_TIMEOUT_FLOOR = 10.0, 600.0


def format_duration_left(seconds: float) -> str:
    """A duration to the second (none below 0), for the trace."""
    return format_duration(max(0, round(seconds)))


def _quiet(message: str, *, level: str = "INFO", key: bool = False) -> None:
    """The trace of a run nobody watches (simulations)."""


@dataclass
class EngineSettings:
    run_id: str
    algorithm: str
    space: SearchSpace
    workers: list[Worker]
    metric: str
    direction: str  # "maximize" | "minimize"
    max_epochs: int
    # seconds of the run's own time (summed over its sessions: RunView.time_used) after which
    # no job starts; `time_budget_hard`: the running jobs are stopped then too, else they finish
    time_budget: float | None = None
    time_budget_hard: bool = False
    score: str = "best"  # a job's score: its "best" epoch (what models/model.pt holds) or its "last"
    max_retries: int = 1  # more attempts a crashed job gets (from its checkpoint); NaN and exit 2 never are
    # seconds without an epoch after which a running job is stopped as hung (failed, retried
    # as a crash): a number, "auto" (see AUTO_TIMEOUT_FACTOR) or 0 (never)
    job_timeout: float | str = 0
    # the algorithm's schedule runs until the time budget ends it: no planned job count is shown
    open_ended: bool = False
    info: dict[str, Any] = field(default_factory=dict)  # more for the run_started event
    resume_info: dict[str, Any] = field(default_factory=dict)  # more for a run_resumed (or run_rebuilt) event


class Engine:
    """Runs one search to its end. `trace(message, level=, key=)` receives the human-readable
    events; `refresh(view)` is called after each round (status file, live table).

    Others act on a live run through `listeners` (each journaled event, as it happens: event
    handlers) and `tick_hooks` (called once per loop turn with the engine: e.g. a control
    inbox), using the control methods `request_stop`, `suspend_worker`, `resume_worker` and
    `abort_job`. Each control is journaled, so `automl status` and the replay see it."""

    def __init__(self, settings: EngineSettings, algorithm: Algorithm, backend: Backend, journal: Journal, *,
                 trace: Callable[..., None] = _quiet, refresh: Callable[[RunView], None] | None = None):
        self.s = settings
        self.algorithm = algorithm
        self.backend = backend
        self.journal = journal
        self.trace = trace
        self.refresh = refresh
        self.view = RunView()
        self.free = list(settings.workers)
        self.jobs: dict[int, Job] = {}  # running
        self.scores = JobScores(settings.metric, settings.direction, settings.score)
        self.stop_reason: dict[int, str] = {}
        self.requests: dict[int, JobRequest] = {}  # job id -> the request it runs
        self.relaunch: list[Job] = []  # jobs a resumed run starts again first
        self.reattached: list[Job] = []  # jobs a resumed run found still with the backend
        self.repeating: set[int] = set()  # jobs now reporting epochs already counted
        self.resumed = False
        self.rebuilt: int | None = None  # trials a rebuilt algorithm adopted (--resume --rebuild)
        self.stopped_unfinished: list[Job] = []
        self.unstarted: list[JobRequest] = []
        self.interrupted: set[int] = set()  # jobs cut by Ctrl-C or an error: a resumed run continues them
        self.last_report: dict[int, float] = {}  # running job -> when it started or last reported (backend clock)
        self.slowest_epoch = 0.0  # the longest wait for a report the run has seen
        self.launched: dict[int, float] = {}  # job launched this session -> when, until its first report
        self.quickest_first: float | None = None  # the shortest launch-to-first-report this session
        self.closing = False  # too little of a hard budget is left for a new job's first epoch
        self.hung: dict[int, str] = {}  # jobs stopped for reporting no epoch -> why
        self.next_job = 1
        self.suspended: set[str] = set()  # worker names given no new job
        self.stopping: str | None = None  # why the run is finishing early: no new jobs, running ones end
        self.budget_end: float | None = None  # backend clock time at which the time budget runs out
        self.budget_spent = False
        self.listeners: list[Callable[[Event], None]] = []
        self.tick_hooks: list[Callable[["Engine"], None]] = []

    def _record(self, kind: str, **data: Any) -> None:
        try:
            event = self.journal.append(kind, when=self.backend.now(), **data)
        except DiskFull:  # not journaled, but the view still hears it: the stop that follows knows every job
            self.view.apply(Event(self.view.last_seq, self.backend.now(), kind, data))
            raise
        self.view.apply(event)
        for listener in self.listeners:
            listener(event)

    # -- the loop -----------------------------------------------------------------------
    def run(self) -> RunView:
        """Run until the algorithm is done (or the deadline passes); returns the run's view.
        Raises SearchFailed when no job produced a result, Interrupted on Ctrl-C / SIGTERM."""
        pause = _POLL_MIN
        try:
            self._start()
            while not ((self.algorithm.is_done() or self.stopping) and not self.backend.running()):
                if self.budget_end is not None and not self.budget_spent and self.backend.now() >= self.budget_end:
                    self._budget_reached()
                for hook in self.tick_hooks:
                    hook(self)
                started = False if self.stopping else self._fill_workers()
                events = self.backend.poll()
                for event in events:
                    self._handle(event)
                self._check_hung()
                if (not started and not events and not self.backend.running() and not self.algorithm.is_done()
                        and not self.stopping and self.free):
                    raise SearchFailed(f"{self.s.algorithm} asked for no job while none is running and it is not done")
                if self.refresh:
                    self.refresh(self.view)
                if events or started:
                    pause = _POLL_MIN
                else:
                    self.backend.idle(pause)
                    pause = min(_POLL_MAX, pause * 2)
        except KeyboardInterrupt:
            self.trace("interrupted: stopping running jobs (they checkpoint first; Ctrl-C again to kill them now)",
                       level="WARN")
            self._stop_everything("run interrupted", interrupting=True)
            self._record("run_finished", status="interrupted", message="interrupted by the user")
            raise Interrupted(f"run '{self.s.run_id}' interrupted") from None
        except BaseException as exc:
            self._stop_everything(f"run stopped by an error: {exc}", interrupting=True)
            raise
        return self.view

    def resume(self, events: list[Event], *, rebuild: bool = False) -> None:
        """Rebuild the run from its journal (replay.replay: the view, the scores, and the
        algorithm by hearing the same calls again); jobs that were running when the run
        stopped are started again first, from their checkpoints, or followed where the
        backend still has them. ResumeMismatch when the algorithm answers differently;
        `rebuild`: the algorithm adopts the finished trials instead (approximate)."""
        replayed = replay(events, algorithm=self.algorithm, name=self.s.algorithm, view=self.view, scores=self.scores,
                          workers=self.s.workers, backend=self.backend, rebuild=rebuild)
        self.requests, self.stop_reason = replayed.requests, replayed.stop_reason
        self.relaunch, self.reattached = replayed.relaunch, replayed.reattached
        self.stopped_unfinished, self.unstarted = replayed.stopped_unfinished, replayed.unstarted
        self.next_job = max(self.next_job, replayed.next_job)
        self.jobs = {job.job_id: job for job in self.reattached}
        self.free = [w for w in self.free if all(job.worker != w for job in self.reattached)]
        self.resumed = True
        self.rebuilt = replayed.adopted if rebuild else None

    def finish(self, published: Callable[[JobView], str] | None = None) -> JobView:
        """Record the end of a completed loop: the best job, or SearchFailed when none
        produced a result. `published(best)` may add to the closing message (e.g. where
        best/ was written)."""
        best = self.view.best()
        if best is None:
            failed = [j for j in self.view.jobs.values() if j.status == "failed"]
            message = "every job failed" + (f"; the first: {failed[0].name}: {failed[0].cause}; log: "
                                            f"{failed[0].directory}/train.log" if failed else "")
            self._record("run_finished", status="failed", message=message, done=self.algorithm.is_done())
            self.trace(message, level="ERROR")
            raise SearchFailed(message)
        message = f"AutoML run is successful: best {self.s.metric} {best.metric:.4f} in {best.name}"
        if self.budget_spent and not self.algorithm.is_done():
            message += (f" (ended by its time budget {format_duration(self.s.time_budget)}; --resume with a "
                        "bigger --time-budget continues the search)")
        elif self.stopping and not self.algorithm.is_done():
            message += f" (stopped early: {self.stopping}; --resume continues the search)"
        if published:
            message += "; " + published(best)
        # a search that ended while a spent budget let its last jobs finish has nothing left either
        budget_tail = self.budget_spent and not self.relaunch and not self.unstarted
        self._record("run_finished", status="completed", message=message, best_job=best.name,
                     done=self.algorithm.is_done() and (not self.stopping or budget_tail))
        self.trace(message, key=True)
        return best

    def _start(self) -> None:
        s = self.s
        workers = [{"name": w.name, "gpus": list(w.gpus)} for w in s.workers]
        budget = {} if s.time_budget is None else {"time_budget": s.time_budget, "time_budget_hard": s.time_budget_hard}
        if s.time_budget is not None:
            # the sessions before this one used part of it (a resume); this one counts from now
            self.budget_end = self.backend.now() + s.time_budget - self.view.time_used()
        if self.resumed:
            if self.rebuilt is not None:  # a later resume adopts the trials up to here, and replays after
                finished = sum(1 for j in self.view.jobs.values() if j.status in ("completed", "failed", "stopped"))
                self._record("run_rebuilt", trials=self.rebuilt, finished_jobs=finished, **s.resume_info)
                self.trace(f"run {s.run_id} continues approximately: {s.algorithm} was rebuilt from the journal "
                           f"({self.rebuilt} trial(s), {finished} finished job(s) kept), not replayed; from here on "
                           "it decides from those results, not as an uninterrupted run would have", level="WARN",
                           key=True)
            # the workers too: a resumed run may be given others than the run started with
            used = self.view.time_used()
            self._record("run_resumed", relaunched=[j.job_id for j in self.relaunch],
                         reattached=[j.job_id for j in self.reattached], workers=workers, **budget,
                         **s.resume_info)
            for job in self.reattached:
                if job.job_id in self.stop_reason:  # asked to stop before the tool died: ask again
                    self.backend.stop(job.job_id)
            for job in self.stopped_unfinished:
                self.jobs[job.job_id] = job
                self.algorithm.on_finished(self._record_exit(JobExit(job.job_id, -15, True), free_worker=False))
            self.trace(f"run {s.run_id} resumed from its journal: {len(self.view.jobs)} job(s) known, "
                       f"{len(self.relaunch)} to continue from their checkpoints"
                       + (f", {len(self.reattached)} re-attached where they are" if self.reattached else ""),
                       key=True)
            if s.time_budget is not None:
                self.trace(f"time budget {format_duration(s.time_budget)}: {format_duration_left(used)} used by "
                           f"the run so far, {format_duration_left(s.time_budget - used)} left", key=True)
            return
        space = space_record(s.space)
        self._record("run_started", run_id=s.run_id, algorithm=s.algorithm, params=self.algorithm.params,
                     metric=s.metric, direction=s.direction, max_epochs=s.max_epochs, workers=workers, space=space,
                     planned_jobs=None if s.open_ended else self.algorithm.planned_jobs(), seed=self.algorithm.seed,
                     **budget, **s.info)
        self.trace(f"run {s.run_id} started: algorithm {s.algorithm} {json.dumps(self.algorithm.params)}, "
                   f"metric {s.metric} ({s.direction}), {s.max_epochs} epochs per full training", key=True)
        if s.time_budget is not None:
            self.trace(f"time budget {format_duration(s.time_budget)}: no new job after it; running jobs "
                       + ("are stopped then (with their checkpoints)" if s.time_budget_hard else "finish"), key=True)
        for line in self.algorithm.explain():
            self.trace(line)
        for p in s.space.params:
            self.trace(f"search {p.name} ({p.domain}, {p.kind}) {p.describe()}  from {p.source}")

    def _fill_workers(self) -> bool:
        started = False
        if self.free and (self.relaunch or self.unstarted or not self.algorithm.is_done()) \
                and self._too_late_to_start():
            return False
        while self.free and self.relaunch:
            old = self.relaunch.pop(0)
            self._launch(self.requests[old.job_id], self.free.pop(0), job_id=old.job_id, attempt=old.attempt + 1)
            started = True
        while self.free and self.unstarted:
            self._launch(self.unstarted.pop(0), self.free.pop(0))
            started = True
        if not self.free or self.algorithm.is_done():
            return started
        free_slots = len(self.free)
        requests = self.algorithm.suggest(free_slots)
        if requests:
            # what resume replays: a suggest call that returned nothing changed nothing
            self._record("asked", free_slots=free_slots, trials=[r.trial_id for r in requests])
        for request in requests:
            self._launch(request, self.free.pop(0))
        return started or bool(requests)

    def _launch(self, request: JobRequest, worker: Worker, job_id: int | None = None, attempt: int = 1) -> None:
        if not self.s.space.contains(request.params):
            raise SearchFailed(f"{self.s.algorithm} proposed a configuration outside the search space: {request.params}")
        if job_id is None:
            job_id = self.next_job
            self.next_job += 1
        job = Job(job_id, f"{worker.name}_{attempt}_J{job_id}", request.trial_id, worker, request.params,
                  request.start_epoch, request.stop_epoch, attempt, request.copy_from_job)
        self.jobs[job_id] = job
        self.requests[job_id] = request
        # the intent first: a tool that dies while the process is being made leaves a record of
        # the job's name (its folder), so a resumed run stops what may have started there
        self._record("job_launching", job_id=job_id, name=job.name, trial_id=job.trial_id, worker=worker.name,
                     attempt=attempt)
        placed = self.backend.start(job)
        self.last_report[job_id] = self.launched[job_id] = self.backend.now()
        self._record("job_started", job_id=job_id, name=job.name, trial_id=job.trial_id, worker=worker.name,
                     gpus=list(worker.gpus) if placed.get("devices") else [], params=job.params,
                     start_epoch=job.start_epoch, stop_epoch=job.stop_epoch, note=request.note,
                     bracket=request.bracket, rung=request.rung, attempt=attempt,
                     copy_from_job=request.copy_from_job, **placed)
        where = placed.get("where") or (f"GPUs {placed['devices']}" if placed.get("devices") else "CPU")
        self.trace(f"job {job.name} started on {worker.name} ({where}): trial {job.trial_id}, epochs "
                   f"{job.start_epoch}->{job.stop_epoch}, {format_params(job.params)}"
                   + (f" [{request.note}]" if request.note else ""), key=True)

    # -- control of a live run ------------------------------------------------------------
    def request_stop(self, reason: str) -> bool:
        """Finish early and gracefully: start no new job, let the running ones end, then
        finish as usual (best/ published). False if a stop was already requested. The search
        is not over for good: `--resume` continues it."""
        if self.stopping:
            return False
        self.stopping = reason
        self._record("run_stop_requested", reason=reason)
        running = len(self.jobs)
        self.trace(f"stopping the search: {reason}; no new jobs"
                   + (f", waiting for the {running} running job(s) to end" if running else ""), key=True)
        return True

    def _too_late_to_start(self) -> bool:
        """Under a hard budget, True once less of it is left than the quickest launch-to-first-
        report of this session: a job launched now would be cut before its first epoch, all cost
        and no result. Said once; the running jobs go on to the budget, and when none is left the
        budget is taken as reached now (best/ published, a resume with a bigger budget goes on)."""
        if not self.s.time_budget_hard or self.budget_end is None or self.quickest_first is None:
            return False
        left = self.budget_end - self.backend.now()
        if left >= self.quickest_first:
            return False
        if not self.closing:
            self.closing = True
            running = len(self.jobs)
            self.trace(f"time budget {format_duration(self.s.time_budget)}: {format_duration_left(left)} left, less "
                       f"than the quickest first epoch of this session ({format_duration_left(self.quickest_first)}"
                       f" from launch): no new jobs" + (f"; the {running} running are stopped at the budget"
                                                        if running else ""), key=True)
        if not self.backend.running():
            self._budget_reached(early=left)
        return True

    def _budget_reached(self, early: float | None = None) -> None:
        """No new job from here on; with a hard budget the running jobs are stopped (SIGTERM:
        they checkpoint) and end as stopped. The run then finishes as any run stopped early:
        best/ published, and a resume with a bigger budget goes on. `early`: the seconds left
        of a hard budget too short for another job, with none running."""
        if self.s.time_budget_hard:
            # a job that ended since the last poll ended within the budget: hear it first, so it
            # counts as completed rather than as cut by the budget
            for event in self.backend.poll():
                self._handle(event)
        self.budget_spent = True
        budget = format_duration(self.s.time_budget)
        running = len(self.jobs)
        if self.s.time_budget_hard:
            then = f"{running} running stopped with their checkpoints" if running else "none running"
        else:
            then = f"{running} running finish" if running else "none running"
            etas = [self.view.jobs[job_id].eta() for job_id in self.jobs]
            if etas and None not in etas:  # each has timed an epoch: when the search should end
                then += f", the last in about {format_duration_left(max(etas))}"
        message = (f"time budget {budget} reached: no new jobs ({then})" if early is None else
                   f"time budget {budget} as good as reached ({format_duration_left(early)} left, too little for "
                   "a first epoch): none running, the search ends")
        self._record("budget_reached", budget=self.s.time_budget, hard=self.s.time_budget_hard, running=running,
                     used=self.view.time_used(self.backend.now()), message=message)
        self.trace(message, key=True)
        if not self.stopping:
            self.stopping = f"time budget {budget} reached"
            self._record("run_stop_requested", reason=self.stopping)
        if self.s.time_budget_hard:
            for job_id, job in list(self.jobs.items()):
                if job_id in self.stop_reason:
                    continue
                self.stop_reason[job_id] = f"stopped at the time budget {budget}"
                self._record("stop_requested", job_id=job_id, reason=self.stop_reason[job_id])
                self.backend.stop(job_id)

    def suspend_worker(self, name: str) -> str:
        """Give worker `name` no new job (its running job goes on). Returns what happened."""
        worker = self._worker(name)
        if name in self.suspended:
            return f"{name} is already suspended"
        self.suspended.add(name)
        self.free = [w for w in self.free if w.name != name]
        self._record("worker_suspended", worker=name)
        busy = next((j.name for j in self.jobs.values() if j.worker == worker), None)
        message = f"{name} suspended" + (f"; its job {busy} runs on" if busy else "")
        self.trace(message, key=True)
        return message

    def resume_worker(self, name: str) -> str:
        worker = self._worker(name)
        if name not in self.suspended:
            return f"{name} is not suspended"
        self.suspended.discard(name)
        if not any(j.worker == worker for j in self.jobs.values()):
            self.free.append(worker)
            self.free.sort(key=lambda w: w.index)
        self._record("worker_resumed", worker=name)
        message = f"{name} resumed"
        self.trace(message, key=True)
        return message

    def abort_job(self, name: str, reason: str = "aborted by the user") -> str:
        """Stop the running job of worker `name` (or the job named `name`, e.g. W2_1_J7);
        it ends as stopped, scored on the epochs it reported, and the search goes on."""
        job = next((j for j in self.jobs.values() if name in (j.name, j.worker.name)), None)
        if job is None:
            self._worker_or_job(name)
            return f"{name} has no running job"
        if job.job_id in self.stop_reason:
            return f"job {job.name} is already stopping ({self.stop_reason[job.job_id]})"
        self.stop_reason[job.job_id] = reason
        self._record("stop_requested", job_id=job.job_id, reason=reason)
        self.trace(f"job {job.name}: {reason}", key=True)
        self.backend.stop(job.job_id)
        return f"job {job.name} stopping"

    def _worker(self, name: str) -> Worker:
        worker = next((w for w in self.s.workers if w.name == name), None)
        if worker is None:
            raise UsageError(f"no worker '{name}' (workers: {', '.join(w.name for w in self.s.workers)})")
        return worker

    def _worker_or_job(self, name: str) -> None:
        if any(w.name == name for w in self.s.workers) or any(j.name == name for j in self.view.jobs.values()):
            return
        raise UsageError(f"no worker or job '{name}' (workers: {', '.join(w.name for w in self.s.workers)})")

    # -- events from the backend --------------------------------------------------------
    def _handle(self, event: MetricsReport | JobExit) -> None:
        if isinstance(event, MetricsReport):
            self._on_metrics(event)
        else:
            self._on_exit(event)

    def _record_metrics(self, event: MetricsReport) -> float | None:
        """Journal one metrics line; returns its loss when it carries a usable metric."""
        values, job_id = event.values, event.job_id
        job = self.view.jobs[job_id]
        epoch = values.get("epoch")
        if not isinstance(epoch, int) or isinstance(epoch, bool):
            self.trace(f"job {job.name}: ignored a metrics line without an integer epoch: {json.dumps(values)[:200]}",
                       level="WARN")
            return None
        if epoch <= job.epoch:
            # a job restarted from an older checkpoint (requeued, preempted, re-attached after
            # the tool died) reports epochs again: each epoch counts once, as first reported
            if job_id not in self.repeating:
                self.repeating.add(job_id)
                self.trace(f"job {job.name}: epoch {epoch} reported again (the job restarted, or was re-attached); "
                           f"epochs up to {job.epoch} are already counted and their repeats ignored")
            return None
        self.repeating.discard(job_id)
        self._record("metrics", job_id=job_id, epoch=epoch, values=values)
        loss = self.scores.add(job_id, values)
        nan = self.scores.nan.get(job_id)
        if nan is not None and job_id not in self.stop_reason:
            self.stop_reason[job_id] = nan
            self._record("stop_requested", job_id=job_id, reason=nan)
            self.trace(f"job {job.name}: {nan}; stopping it", level="ERROR")
            self.backend.stop(job_id)
        if loss is None:
            return None
        metric = values[self.s.metric]
        self.trace(f"job {job.name} epoch {epoch}/{job.stop_epoch}: {self.s.metric} {metric:.4f}"
                   + (f", train_loss {values['train_loss']:.4f}" if isinstance(values.get("train_loss"), float) else ""))
        return loss

    def _on_metrics(self, event: MetricsReport) -> None:
        launched = self.launched.pop(event.job_id, None)
        if launched is not None:
            took = self.backend.now() - launched
            self.quickest_first = took if self.quickest_first is None else min(self.quickest_first, took)
        self._alive(event.job_id)
        loss = self._record_metrics(event)
        job_id, epoch = event.job_id, event.values.get("epoch")
        if loss is None or job_id in self.stop_reason:
            return
        decision = self.algorithm.on_metrics(self.jobs[job_id].trial_id, job_id, epoch, loss)
        if decision.startswith(STOP):
            why = decision.partition(":")[2].strip() or f"at epoch {epoch}"
            self.stop_reason[job_id] = f"stopped early by {self.s.algorithm}: {why}"
            self._record("stop_requested", job_id=job_id, reason=self.stop_reason[job_id])
            self.trace(f"job {self.jobs[job_id].name}: {self.stop_reason[job_id]}", key=True)
            self.backend.stop(job_id)

    # -- jobs that hang ---------------------------------------------------------------------
    def job_timeout(self) -> float | None:
        """Seconds without a report after which a running job is taken as hung (None: never)."""
        limit = self.s.job_timeout
        if limit == "auto":
            return max(AUTO_TIMEOUT_FLOOR, AUTO_TIMEOUT_FACTOR * self.slowest_epoch)
        return float(limit) or None

    def _alive(self, job_id: int) -> None:
        now = self.backend.now()
        if job_id in self.last_report:
            self.slowest_epoch = max(self.slowest_epoch, now - self.last_report[job_id])
        self.last_report[job_id] = now

    def _check_hung(self) -> None:
        """Stop each running job that reported nothing for job_timeout seconds (a job the
        backend holds in a queue is not late): it ends failed, and is retried as a crash."""
        limit = self.job_timeout()
        if limit is None:
            return
        now = self.backend.now()
        for job_id, job in list(self.jobs.items()):
            if job_id in self.hung or job_id in self.stop_reason:
                continue  # already stopping: the backend kills it after the grace period
            if self.backend.queued(job_id):
                self.last_report[job_id] = now
                continue
            if now - self.last_report.setdefault(job_id, now) < limit:
                continue
            self.hung[job_id] = f"no epoch for {limit:g} s"
            self._record("job_hung", job_id=job_id, seconds=limit, reason=self.hung[job_id])
            self.trace(f"job {job.name}: {self.hung[job_id]}; stopping it as hung (SIGTERM, then SIGKILL "
                       "after the grace period)", level="WARN", key=True)
            self.backend.stop(job_id)

    def _on_exit(self, event: JobExit) -> None:
        old = self.jobs[event.job_id]
        how = "hung" if event.job_id in self.hung else "crashed"
        outcome = self._record_exit(event)
        job = self.view.jobs[event.job_id]
        if outcome.status == "retried":
            self.trace(f"job {old.name} {how}: {outcome.cause}; retrying it from its checkpoint "
                       f"(attempt {old.attempt + 1} of {self.s.max_retries + 1})", level="WARN")
            self.relaunch.append(old)
            return
        self.algorithm.on_finished(outcome)
        if outcome.status == "failed":
            self.trace(f"job {job.name} failed: {outcome.cause}" + (f"; log: {job.directory}/train.log"
                                                                    if job.directory else ""), level="ERROR")
            last = [line.strip() for line in event.log_tail if line.strip()][-5:]
            if event.returncode == CONFIG_ERROR_EXIT and event.job_id not in self.scores.nan and last:
                self.trace(f"job {job.name}: the last lines of its train.log: " + " | ".join(last), level="ERROR")
            return
        score = "no metric yet" if job.metric is None else \
            f"best {self.s.metric} {job.metric:.4f} at epoch {job.best_epoch}"
        self.trace(f"job {job.name} {outcome.status}: {score}" + (f" ({outcome.cause})" if outcome.cause else ""),
                   key=True)
        best = self.view.best()
        if best is not None and best.job_id == job.job_id:
            self.trace(f"new best: {job.name} {self.s.metric} {job.metric:.4f} {format_params(job.params)}", key=True)

    def _record_exit(self, event: JobExit, free_worker: bool = True) -> Outcome:
        """Journal how a job ended (outcomes.classify) and free its worker."""
        job_id = event.job_id
        view = self.view.jobs[job_id]
        ending = classify(event, loss=self.scores.loss_of.get(job_id), metric=self.s.metric,
                          nan=self.scores.nan.get(job_id), hung=self.hung.get(job_id),
                          stop_reason=self.stop_reason.get(job_id), interrupted=job_id in self.interrupted,
                          attempt=self.jobs[job_id].attempt, max_retries=self.s.max_retries)
        status, cause, best_loss = ending.status, ending.cause, ending.loss
        metric = None if best_loss is None else self.scores.loss(best_loss)  # negation undoes itself
        self._record("job_finished", job_id=job_id, status=status, metric=metric, cause=cause, loss=best_loss,
                     epochs=view.epoch, returncode=event.returncode,
                     log_tail=event.log_tail if status in ("failed", "retried") else [])
        job = self.jobs.pop(job_id)
        self.last_report.pop(job_id, None)
        self.launched.pop(job_id, None)
        self.hung.pop(job_id, None)
        if free_worker and job.worker.name not in self.suspended:
            self.free.append(job.worker)
            self.free.sort(key=lambda w: w.index)
        return Outcome(job.trial_id, job_id, status, best_loss, view.epoch, cause)

    def _stop_everything(self, cause: str, interrupting: bool) -> None:
        """Stop all jobs and journal how each ended; the algorithm is not consulted. With
        `interrupting`, a job not already asked to stop is recorded as interrupted, not ended."""
        for job_id in list(self.jobs):
            if job_id not in self.stop_reason:
                self.stop_reason[job_id] = cause
                if interrupting:
                    self.interrupted.add(job_id)
        for event in self.backend.stop_all():
            if isinstance(event, MetricsReport):
                self._record_metrics(event)
            elif event.job_id in self.jobs:
                self._record_exit(event)

