"""What a run looks like, rebuilt from its journal: jobs, their metrics, the best so far.

`RunView.apply` folds one journal event into the picture; the engine calls it live and
`automl status` replays the journal through it, so both show the same thing. The
TAO-style status.json and the leaderboard are rendered from a RunView.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from .durations import format_duration
from .store import Event, read_events

_TAO_STATUS = {"running": "RUNNING", "completed": "SUCCESS", "failed": "FAILURE", "stopped": "STOPPED",
               "interrupted": "INTERRUPTED", "retried": "RETRYING"}


@dataclass
class JobView:
    job_id: int
    name: str
    trial_id: int
    worker: str
    gpus: list[int]
    params: dict[str, Any]
    start_epoch: int
    stop_epoch: int
    started: float
    directory: str = ""
    bracket: int | None = None
    rung: int | None = None
    note: str = ""
    copy_from: int | None = None  # the job whose checkpoint this one started from (PBT's exploit)
    status: str = "running"
    ended: float | None = None
    metric: float | None = None  # best value of the run's metric, in its direction
    best_epoch: int | None = None
    cause: str = ""
    epochs: dict[int, dict[str, Any]] = field(default_factory=dict)

    @property
    def place(self) -> str:
        """Where the job sits in a bracket-based schedule: "b2 r1", "r3", or "-"."""
        if self.rung is None:
            return "-"
        return f"b{self.bracket} r{self.rung}" if self.bracket else f"r{self.rung}"

    @property
    def epoch(self) -> int:
        return max(self.epochs, default=self.start_epoch)

    def time_per_epoch(self) -> float | None:
        seconds = [e["seconds"] for e in self.epochs.values() if isinstance(e.get("seconds"), (int, float))]
        return sum(seconds) / len(seconds) if seconds else None

    def eta(self) -> float | None:
        if self.status != "running":
            return 0.0
        per = self.time_per_epoch()
        return None if per is None else per * max(0, self.stop_epoch - self.epoch)


@dataclass
class WorkerView:
    """One worker as the journal tells it: suspended or not, the jobs it ran, its current job."""

    name: str
    gpus: list[int]
    suspended: bool = False
    jobs_run: int = 0  # job starts on this worker, each attempt counted
    current: int | None = None  # the job id it runs now
    where: str = ""  # the backend's word for where the current job runs ("SLURM job 123")

    @property
    def state(self) -> str:
        if self.suspended:
            return "suspended (busy)" if self.current is not None else "suspended"
        return "busy" if self.current is not None else "idle"


@dataclass
class RunView:
    run_id: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    started: float = 0.0
    ended: float | None = None
    status: str = "running"
    message: str = ""
    jobs: dict[int, JobView] = field(default_factory=dict)
    last_seq: int = 0
    best_job_id: int | None = None  # kept up to date by apply(), so best() costs nothing
    full_depth: int = 0  # the most epochs a completed job trained to: who may be best (see best())
    workers: dict[str, WorkerView] = field(default_factory=dict)
    stop_requested: str | None = None  # why the run was asked to finish early (no new jobs)
    # the time budget (seconds of the run's own time, over all its sessions; None: none), as
    # the latest start or resume set it, and the budget_reached event's data once it ran out
    time_budget: float | None = None
    time_budget_hard: bool = False
    budget_reached: dict[str, Any] | None = None
    # the run's own time: each session (a start or a resume) counts from its first event to
    # its last, so the hours a crashed run's machine was down are not counted
    used_before: float = 0.0  # by the sessions before this one
    session_started: float | None = None
    last_event: float = 0.0
    previous_kind: str = ""

    @property
    def metric_name(self) -> str:
        return self.settings.get("metric", "metric")

    @property
    def maximize(self) -> bool:
        return self.settings.get("direction", "maximize") == "maximize"

    def better(self, a: float | None, b: float | None) -> bool:
        """Is metric `a` better than `b` (None is worst)?"""
        if a is None or not math.isfinite(a):
            return False
        if b is None:
            return True
        return a > b if self.maximize else a < b

    def apply(self, event: Event) -> None:
        d = event.data
        self.last_seq = event.seq
        self._count_time(event)
        if event.kind == "run_started":
            self.run_id, self.settings, self.started = d["run_id"], d, event.time
            self._set_workers(d.get("workers", []))
        elif event.kind == "job_started" and d["job_id"] in self.jobs:  # run again after an interruption
            job = self.jobs[d["job_id"]]
            self._worker_done(job)
            job.name, job.worker, job.gpus, job.directory = d["name"], d["worker"], d["gpus"], d.get("dir", "")
            job.status, job.ended, job.cause, job.started = "running", None, "", event.time
            self._worker_busy(d)
        elif event.kind == "job_started":
            self.jobs[d["job_id"]] = JobView(
                d["job_id"], d["name"], d["trial_id"], d["worker"], d["gpus"], d["params"],
                d["start_epoch"], d["stop_epoch"], event.time, d.get("dir", ""), d.get("bracket"), d.get("rung"),
                d.get("note", ""), d.get("copy_from_job"))
            self._worker_busy(d)
        elif event.kind == "metrics":
            job = self.jobs[d["job_id"]]
            job.epochs[d["epoch"]] = d["values"]
            value = d["values"].get(self.metric_name)
            if isinstance(value, (int, float)) and self.better(value, job.metric):
                job.metric, job.best_epoch = float(value), d["epoch"]
            self._contend(job)  # a better score, or trained as far as the completed jobs now
        elif event.kind == "job_finished":
            job = self.jobs[d["job_id"]]
            job.status, job.ended, job.cause = d["status"], event.time, d.get("cause", "")
            self._worker_done(job)
            if d.get("metric") is not None and d["metric"] != job.metric:  # scored on its last epoch
                job.metric, job.best_epoch = d["metric"], job.epoch
            deeper = job.status == "completed" and job.epoch > self.full_depth
            if deeper:
                self.full_depth = job.epoch
            if deeper or self.best_job_id == job.job_id:  # who may be best, or the best's score, changed
                board = self.leaderboard()
                self.best_job_id = board[0].job_id if board and self._eligible(board[0]) else None
            else:
                self._contend(job)
        elif event.kind == "run_finished":
            self.status, self.ended, self.message = d["status"], event.time, d.get("message", "")
        elif event.kind == "run_resumed":
            self.status, self.ended, self.message = "running", None, ""
            # a resumed run starts with every worker taking jobs and no stop asked for
            self.stop_requested = None
            if "workers" in d:
                self._set_workers(d["workers"])
            kept = set(d.get("reattached", []))  # jobs still with the backend stay where they run
            for worker in self.workers.values():
                worker.suspended = False
                if worker.current not in kept:
                    worker.current, worker.where = None, ""
        elif event.kind == "worker_suspended" and d["worker"] in self.workers:
            self.workers[d["worker"]].suspended = True
        elif event.kind == "worker_resumed" and d["worker"] in self.workers:
            self.workers[d["worker"]].suspended = False
        elif event.kind == "run_stop_requested":
            self.stop_requested = d.get("reason", "")
        elif event.kind == "budget_reached":
            self.budget_reached = d

    def _count_time(self, event: Event) -> None:
        d = event.data
        # a session begins with the run's start or a resume (a rebuilt resume journals
        # run_rebuilt, then run_resumed: one session)
        if event.kind in ("run_started", "run_rebuilt") or (event.kind == "run_resumed"
                                                             and self.previous_kind != "run_rebuilt"):
            if self.session_started is not None:
                self.used_before += max(0.0, self.last_event - self.session_started)
            self.session_started = event.time
        if event.kind in ("run_started", "run_resumed") and "time_budget" in d:  # a resume may extend it
            self.time_budget, self.time_budget_hard = d["time_budget"], bool(d.get("time_budget_hard"))
            self.budget_reached = None
        self.previous_kind = event.kind
        if not d.get("recovered"):  # recovered: read from a dead run's metrics files as the next session began
            self.last_event = max(self.last_event, event.time)

    def time_used(self, now: float | None = None) -> float:
        """Seconds of the run's own time so far (`now`: the live run's clock; else up to its
        last journaled event)."""
        if self.session_started is None:
            return self.used_before
        end = self.last_event if now is None else max(now, self.last_event)
        return self.used_before + max(0.0, end - self.session_started)

    def _set_workers(self, workers: list[dict[str, Any]]) -> None:
        """The run's workers (at its start, or as a resumed run names them: it may have others);
        a worker kept keeps its count of jobs (the summary keeps every job's worker)."""
        old = self.workers
        self.workers = {w["name"]: WorkerView(w["name"], list(w.get("gpus", []))) for w in workers}
        for name, worker in self.workers.items():
            if name in old:
                worker.jobs_run, worker.current, worker.where = old[name].jobs_run, old[name].current, old[name].where

    def _worker_busy(self, started: dict[str, Any]) -> None:
        worker = self.workers.get(started["worker"])
        if worker is None:  # a worker the run did not name at its start or resume
            worker = self.workers[started["worker"]] = WorkerView(started["worker"], list(started["gpus"]))
        worker.jobs_run += 1
        worker.current, worker.where = started["job_id"], started.get("where", "")

    def _worker_done(self, job: JobView) -> None:
        worker = self.workers.get(job.worker)
        if worker is not None and worker.current == job.job_id:
            worker.current, worker.where = None, ""

    @classmethod
    def load(cls, run_dir: Path) -> "RunView":
        view = cls()
        for event in read_events(run_dir):  # a damaged journal: one line (DamagedJournal), never a traceback
            view.apply(event)
        return view

    def lineage(self, job: JobView) -> list[JobView]:
        """The jobs whose training the weights of `job` carry, first to last: earlier segments
        of its trial, and across an exploit, the donor's."""
        chain, current = [], job
        while current is not None and current not in chain:
            chain.append(current)
            if current.copy_from is not None:
                current = self.jobs.get(current.copy_from)
            else:
                before = [j for j in self.jobs.values() if j.trial_id == current.trial_id and j.job_id < current.job_id
                          and j.stop_epoch == current.start_epoch and j.status == "completed"]
                current = max(before, key=lambda j: j.job_id) if before and current.start_epoch > 0 else None
        return chain[::-1]

    def running(self) -> list[JobView]:
        return [j for j in self.jobs.values() if j.status == "running"]

    def leaderboard(self) -> list[JobView]:
        """Jobs with a metric, best first: the jobs that may be best() (trained as far as
        the completed jobs), by score, then the others, by score; the first is best()."""
        return ranked(self.jobs.values(), self.full_depth, self.maximize)

    def best(self) -> JobView | None:
        """The winner: what best/ publishes, `automl status` shows and simulate() returns.

        The best score among the jobs that trained as far as any completed job trained (for
        a full-budget search: the jobs that trained the full budget); before any job has
        completed, the best score of all. A job stopped early, cut by the time budget or
        trained on a lower rung of a multi-fidelity schedule is not preferred to one that
        trained the full budget, however good its score at a few epochs: a score at a low
        budget is an estimate of the model's, and it is the fully trained model whose
        weights best/ holds. Failed jobs never win; ties go to the earlier job. The rule
        needs nothing but the journal, so a live run, status.json and `automl status` agree.
        It is the incumbent rule of Hyperband (the best at the top rung) and ASHA (the best
        at the highest rung with results)."""
        return None if self.best_job_id is None else self.jobs[self.best_job_id]

    def _eligible(self, job: JobView) -> bool:
        return job.metric is not None and job.status != "failed" and job.epoch >= self.full_depth

    def _contend(self, job: JobView) -> None:
        """Make `job` the best when it may be best and beats the best so far."""
        if not self._eligible(job):
            return
        best = self.best()
        if best is None or self.better(job.metric, best.metric) or (
                job.metric == best.metric and job.job_id < best.job_id):
            self.best_job_id = job.job_id

    @property
    def value_widths(self) -> dict[str, int]:
        return value_widths(self.settings.get("space", []))

    def value_columns(self) -> list[str]:
        """flat_values' keys for this run's jobs: the space's parameters in its order, one per
        arg of a grouped enum, then any a job holds that the space record does not name."""
        columns = flat_columns(self.value_widths)
        for job in sorted(self.jobs.values(), key=lambda j: j.job_id):
            columns += [key for key in flat_values(job.params, self.value_widths) if key not in columns]
        return columns

    def suspended_workers(self) -> list[str]:
        return [w.name for w in self.workers.values() if w.suspended]

    def control_notes(self) -> list[str]:
        """What the admin commands changed in the search: suspended workers, a requested stop."""
        notes = []
        if self.suspended_workers():
            notes.append(f"suspended: {', '.join(self.suspended_workers())} (no new jobs for them)")
        if self.stop_requested and self.status == "running":
            notes.append(f"stopping: {self.stop_requested} (no new jobs; the running ones end)")
        return notes

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for job in self.jobs.values():
            out[job.status] = out.get(job.status, 0) + 1
        return out

    def eta(self) -> float | None:
        """A rough time to the end: jobs still to run times the mean job time, spread over workers."""
        planned = self.settings.get("planned_jobs")
        finished = [j for j in self.jobs.values() if j.ended is not None]
        if not planned or not finished or self.status != "running":
            return None if self.status == "running" else 0.0
        mean = sum(j.ended - j.started for j in finished) / len(finished)
        workers = max(1, len(self.settings.get("workers", [])))
        left_running = sum((j.eta() or 0.0) for j in self.running())
        not_started = max(0, planned - len(self.jobs))
        eta = (left_running + not_started * mean) / workers
        if self.time_budget is not None:  # no job starts after the budget: hard, it ends there; soft, a job later
            left = max(0.0, self.time_budget - self.time_used())
            eta = min(eta, left if self.time_budget_hard else left + mean)
        return eta

    def budget_json(self) -> dict[str, Any] | None:
        """The time budget as status.json shows it (None: the run has none)."""
        if self.time_budget is None:
            return None
        reached = self.budget_reached
        return {"budget": format_duration(self.time_budget), "seconds": self.time_budget,
                "used_seconds": round(self.time_used(), 1), "hard": self.time_budget_hard,
                "reached": reached is not None,
                "message": reached.get("message") if reached else None}

    def status_json(self) -> dict[str, Any]:
        """TAO-style status: the brain (run) entry, then one entry per experiment (job)."""
        best = self.best()
        brain_message = self.message or (
            f"AutoML {self.status}: {len(self.jobs)} job(s) started"
            + (f", best {self.metric_name} {best.metric:.4f} in {best.name}" if best else ""))
        out: dict[str, Any] = {self.run_id: {
            "detailed_status": {"message": brain_message, "status": _TAO_STATUS.get(self.status, self.status.upper())},
            "algorithm": self.settings.get("algorithm"),
            "metric": self.metric_name,
            "direction": self.settings.get("direction"),
            "jobs": self.counts(),
            "planned_jobs": self.settings.get("planned_jobs"),
            "eta": _clock(self.eta()),
            "best": None if best is None else {"job": best.name, "value": best.metric, "epoch": best.best_epoch,
                                                "params": flat_values(best.params, self.value_widths)},
            "suspended_workers": self.suspended_workers(),
            "stop_requested": self.stop_requested,
            "time_budget": self.budget_json(),
        }}
        for job in sorted(self.jobs.values(), key=lambda j: j.job_id):
            stamp = dt.datetime.fromtimestamp(job.ended or time.time())
            message = {"running": f"training on {job.worker}", "completed": "train action completed successfully",
                       "failed": f"failed: {job.cause}", "stopped": f"stopped: {job.cause}",
                       "interrupted": f"interrupted: {job.cause}; a resumed run continues it",
                       "retried": f"crashed: {job.cause}; retrying"}[job.status]
            kpi: dict[str, dict[str, Any]] = {}
            for epoch in sorted(job.epochs):
                for key, value in job.epochs[epoch].items():
                    if key not in ("epoch", "seconds"):
                        kpi.setdefault(key, {})[str(epoch)] = value
            out[job.name] = {
                "detailed_status": {"date": f"{stamp.month}/{stamp.day}/{stamp.year}", "time": stamp.strftime("%H:%M:%S"),
                                    "message": message, "status": _TAO_STATUS[job.status]},
                "epoch": job.epoch,
                "max_epoch": job.stop_epoch,
                "eta": _clock(job.eta()),
                "time_per_epoch": _clock(job.time_per_epoch(), micro=True),
                "kpi": [{"metric": k, "values": v} for k, v in kpi.items()],
                "worker": job.worker,
                "gpus": job.gpus,
                "trial": job.trial_id,
                "bracket": job.bracket,
                "rung": job.rung,
                "start_epoch": job.start_epoch,
                "why": job.note,
                "params": flat_values(job.params, self.value_widths),
            }
        return out


def full_depth(jobs: Iterable[JobView]) -> int:
    """The most epochs a completed job trained to (0 before any completed)."""
    return max((j.epoch for j in jobs if j.status == "completed"), default=0)


def ranked(jobs: Iterable[JobView], depth: int, maximize: bool) -> list[JobView]:
    """RunView.best()'s rule as an order: jobs with a score (failed ones never), those that
    trained at least `depth` epochs first, each group by score, ties to the earlier job."""
    scored = [j for j in jobs if j.metric is not None and j.status != "failed"]
    return sorted(scored, key=lambda j: (j.epoch < depth, -j.metric if maximize else j.metric, j.job_id))


def arg_names(name: str, count: int) -> list[str]:
    """One name per arg of a grouped enum called `name`: `SegAhnet.if_use_psp+final_activation`
    gives `SegAhnet.if_use_psp` and `SegAhnet.final_activation`. The journal keeps the
    parameter's name only, and space.py names a grouped item `<component>.<arg>+<arg>...`
    (aliases: `<alias>+<alias>`), so the names are read back from it; any other name gets
    `name[0]`, `name[1]`, ..."""
    parts = name.split("+")
    if len(parts) != count or not all(parts):
        return [f"{name}[{i}]" for i in range(count)]
    component = parts[0].rpartition(".")[0]
    return [parts[0]] + [part if "." in part or not component else f"{component}.{part}" for part in parts[1:]]


def flat_values(params: dict[str, Any], widths: dict[str, int] | None = None) -> dict[str, Any]:
    """A job's values as the files people load show them (status.json, best/summary.json,
    report.csv, stats.csv): an enum's choice, which the journal keeps as a list of one value
    per arg, becomes the value itself (`0`, `"softmax"`), one key per arg for a grouped enum;
    numbers stay as they are. `widths` (values per job of each parameter: its args for an
    enum) gives an inactive grouped enum, None, one key per arg too."""
    widths = widths or {}
    out: dict[str, Any] = {}
    for name, value in params.items():
        width = widths.get(name) or (len(value) if isinstance(value, list) else 1)
        if width == 1:
            out[name] = value[0] if isinstance(value, list) and len(value) == 1 else value
        else:
            out.update(zip(arg_names(name, width), value if isinstance(value, list) else [value] * width))
    return out


def value_widths(space: list[dict[str, Any]]) -> dict[str, int]:
    """Values per job of each parameter of a run_started space record: an enum's (or bool's)
    args, else 1; a record without the choices (an older journal) leaves it to the values."""
    widths = {}
    for param in space:
        choices = (param.get("spec") or {}).get("choices")
        widths[param["name"]] = len(choices[0]) if choices else 1
    return widths


def flat_columns(widths: dict[str, int]) -> list[str]:
    """The keys of flat_values for parameters of these widths, in their order."""
    return [column for name, width in widths.items() for column in (arg_names(name, width) if width > 1 else [name])]


def csv_cell(value: Any) -> Any:
    """A value in a CSV cell: text and numbers as they are, true/false as JSON writes them,
    an inactive parameter empty, anything else (a list) as JSON."""
    if value is None:
        return ""
    if isinstance(value, (bool, list, dict)):
        return json.dumps(value)
    return value


def format_params(params: dict[str, Any]) -> str:
    """`Adam.lr=0.00123 SegAhnet.if_use_psp+final_activation=[true,"softmax"]`, for tables and lines."""
    def one(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.4g}"
        if isinstance(value, list) and len(value) == 1:
            return one(value[0])
        return json.dumps(value, separators=(",", ":"))
    return " ".join(f"{name}={one(value)}" for name, value in params.items())


def _clock(seconds: float | None, micro: bool = False) -> str | None:
    if seconds is None:
        return None
    text = str(dt.timedelta(seconds=float(seconds)))
    return text if micro else text.split(".")[0]
