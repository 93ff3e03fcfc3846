"""The one loop: ask the algorithm for jobs, hand them to the backend, feed metrics back,
journal everything, and at the end publish the best job.

Nothing here knows how an algorithm decides or how a backend runs a process.
"""
from __future__ import annotations

import fcntl
import json
import math
import os
import shlex
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .algorithms.base import STOP, Algorithm, JobRequest, Outcome
from .backends.base import Backend, JobExit, JobSpec, MetricsReport
from .errors import Interrupted, SearchFailed, UsageError
from .mmar import MMAR, clone_job, write_json_atomic
from .space import SearchSpace
from .status import JobView, RunView, format_params
from .store import JOURNAL, Journal
from .trace import Trace
from .workers import Worker, device_env, threads_per_worker

METRICS_FILE = "models/metrics.jsonl"
DEFAULT_TRAIN_COMMAND = [sys.executable, "-m", "automl_cli", "train", "-m", "{mmar}", "--epochs", "{epochs}"]
_STATUS_EVERY = 1.0
_POLL_SECONDS = 0.2


@dataclass
class RunSettings:
    """Everything a run needs, resolved from the command line and the config files."""

    mmar: MMAR
    run_id: str
    workers: list[Worker]
    have_gpus: bool
    space: SearchSpace
    train_config: dict  # config_train.json as written (variables not substituted)
    metric: str
    direction: str
    max_epochs: int
    algorithm: str
    algorithm_params: dict[str, Any]
    seed: int = 0
    traceout: str = "file"
    train_command: list[str] = field(default_factory=lambda: list(DEFAULT_TRAIN_COMMAND))
    remove_search_augs: bool = True
    grace_seconds: float = 30.0
    config_files: dict[str, str] = field(default_factory=dict)

    @property
    def run_dir(self) -> Path:
        return self.mmar.runs_dir / self.run_id


def parse_train_command(text: str) -> list[str]:
    """executor.args.train_command: a shell-like line with {mmar} and {epochs} placeholders."""
    parts = shlex.split(text)
    if "{epochs}" not in text:
        raise UsageError("executor.args.train_command must contain {epochs} (the epoch the job trains up to)")
    return parts


class Engine:
    def __init__(self, settings: RunSettings, algorithm: Algorithm, backend: Backend, *, live: bool | None = None):
        self.s = settings
        self.algorithm = algorithm
        self.backend = backend
        self.run_dir = settings.run_dir
        self._lock_run_dir()
        self.journal = Journal(self.run_dir / JOURNAL)
        self.trace = Trace(self.run_dir, settings.traceout, live=live)
        self.view = RunView()
        self.free = list(settings.workers)
        self.job_worker: dict[int, Worker] = {}
        self.job_trial: dict[int, int] = {}
        self.job_loss: dict[int, float] = {}
        self.job_nan: dict[int, str] = {}
        self.stop_reason: dict[int, str] = {}
        self.next_job = 1
        self._status_written = 0.0

    # -- set-up -------------------------------------------------------------------------
    def _lock_run_dir(self) -> None:
        if self.run_dir.exists():
            raise UsageError(
                f"run '{self.s.run_id}' already exists in {self.run_dir}; choose another run_id "
                "(e.g. --set run_id=NEW) or remove that folder")
        self.run_dir.mkdir(parents=True)
        self._lock = open(self.run_dir / ".lock", "w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(f"run '{self.s.run_id}' is in use by another automl process") from None

    def _record(self, kind: str, **data: Any) -> None:
        self.view.apply(self.journal.append(kind, **data))

    # -- the loop -----------------------------------------------------------------------
    def run(self) -> RunView:
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            self._start()
            while not (self.algorithm.is_done() and not self.backend.running()):
                started = self._fill_workers()
                events = self.backend.poll()
                for event in events:
                    self._handle(event)
                if not started and not events and not self.backend.running() and not self.algorithm.is_done():
                    raise SearchFailed(f"{self.s.algorithm} asked for no job while none is running and it is not done")
                self._refresh()
                if not events:
                    time.sleep(_POLL_SECONDS)
            return self._finish()
        except KeyboardInterrupt:
            self.trace("interrupted: stopping running jobs (they checkpoint first)", level="WARN")
            self._stop_everything("run interrupted")
            self._record("run_finished", status="interrupted", message="interrupted by the user")
            self._write_status()
            raise Interrupted(f"run '{self.s.run_id}' interrupted; its jobs and journal are in {self.run_dir}") from None
        except BaseException as exc:
            self._stop_everything(f"run stopped by an error: {exc}")
            raise
        finally:
            signal.signal(signal.SIGTERM, previous)
            self.trace.close()
            self.journal.close()

    def _stop_everything(self, cause: str) -> None:
        """Stop all jobs and journal how each ended; the algorithm is not consulted."""
        for job_id in list(self.job_worker):
            self.stop_reason.setdefault(job_id, cause)
        for event in self.backend.stop_all():
            if isinstance(event, MetricsReport):
                self._record_metrics(event)
            elif event.job_id in self.view.jobs:
                self._record_exit(event)

    def _start(self) -> None:
        s = self.s
        workers = [{"name": w.name, "gpus": list(w.gpus)} for w in s.workers]
        space = [{"name": p.name, "domain": p.domain, "type": p.kind, "range": p.describe(), "source": p.source}
                 for p in s.space.params]
        self._record("run_started", run_id=s.run_id, mmar=str(s.mmar.root), algorithm=s.algorithm,
                     params=self.algorithm.params, metric=s.metric, direction=s.direction, max_epochs=s.max_epochs,
                     workers=workers, device="gpu" if s.have_gpus else "cpu", seed=s.seed, space=space,
                     planned_jobs=self.algorithm.planned_jobs(), config_files=s.config_files)
        self.trace(f"run {s.run_id} started: algorithm {s.algorithm} {json.dumps(self.algorithm.params)}, "
                   f"metric {s.metric} ({s.direction}), {s.max_epochs} epochs per full training", key=True)
        self.trace(f"workers: " + ", ".join(f"{w['name']} on {'GPUs ' + ','.join(map(str, w['gpus'])) if s.have_gpus else 'CPU'}"
                                            for w in workers), key=True)
        for p in s.space.params:
            self.trace(f"search {p.name} ({p.domain}, {p.kind}) {p.describe()}  from {p.source}")
        self._write_status()

    def _fill_workers(self) -> bool:
        if not self.free or self.algorithm.is_done():
            return False
        requests = self.algorithm.suggest(len(self.free))
        for request in requests:
            self._launch(request, self.free.pop(0))
        return bool(requests)

    def _launch(self, request: JobRequest, worker: Worker) -> None:
        s = self.s
        if not s.space.contains(request.params):
            raise SearchFailed(f"{s.algorithm} proposed a configuration outside the search space: {request.params}")
        job_id = self.next_job
        self.next_job += 1
        name = f"{worker.name}_1_J{job_id}"
        job_dir = self.run_dir / name
        config = s.space.apply(s.train_config, request.params, remove_search=s.remove_search_augs)
        clone_job(s.mmar, job_dir, config)
        env = dict(os.environ)
        env.update({"CUDA_VISIBLE_DEVICES": device_env(worker, s.have_gpus), "MMAR_ROOT": str(job_dir),
                    "AUTOML_METRICS_FILE": str(job_dir / METRICS_FILE), "AUTOML_JOB_NAME": name,
                    "PYTHONUNBUFFERED": "1"})
        if not s.have_gpus:
            threads = str(threads_per_worker(len(s.workers)))
            env.update({"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads})
        command = [part.format(mmar=job_dir, epochs=request.stop_epoch) for part in s.train_command]
        spec = JobSpec(job_id, name, job_dir, command, env, job_dir / "train.log", job_dir / METRICS_FILE)
        self.job_worker[job_id] = worker
        self.job_trial[job_id] = request.trial_id
        self._record("job_started", job_id=job_id, name=name, trial_id=request.trial_id, worker=worker.name,
                     gpus=list(worker.gpus) if s.have_gpus else [], params=request.params,
                     start_epoch=request.start_epoch, stop_epoch=request.stop_epoch, dir=str(job_dir),
                     note=request.note)
        self.backend.start(spec)
        where = f"GPUs {env['CUDA_VISIBLE_DEVICES']}" if s.have_gpus else "CPU"
        self.trace(f"job {name} started on {worker.name} ({where}): trial {request.trial_id}, epochs "
                   f"{request.start_epoch}->{request.stop_epoch}, {format_params(request.params)}"
                   + (f" [{request.note}]" if request.note else ""), key=True)

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
        self._record("metrics", job_id=job_id, epoch=epoch, values=values)
        metric = values.get(self.s.metric)
        if metric is None and self.s.metric not in values:
            return None  # an epoch without validation
        if not isinstance(metric, (int, float)) or isinstance(metric, bool) or not math.isfinite(metric):
            if job_id not in self.job_nan:
                self.job_nan[job_id] = f"{self.s.metric} is not a finite number ({json.dumps(metric)}) at epoch {epoch}"
                self.trace(f"job {job.name}: {self.job_nan[job_id]}; stopping it", level="ERROR")
                self.backend.stop(job_id)
            return None
        loss = -float(metric) if self.s.direction == "maximize" else float(metric)
        self.job_loss[job_id] = min(loss, self.job_loss.get(job_id, math.inf))
        self.trace(f"job {job.name} epoch {epoch}/{job.stop_epoch}: {self.s.metric} {metric:.4f}"
                   + (f", train_loss {values['train_loss']:.4f}" if isinstance(values.get("train_loss"), float) else ""))
        return loss

    def _on_metrics(self, event: MetricsReport) -> None:
        loss = self._record_metrics(event)
        job_id, epoch = event.job_id, event.values.get("epoch")
        if loss is None or job_id in self.stop_reason:
            return
        job = self.view.jobs[job_id]
        if self.algorithm.on_metrics(self.job_trial[job_id], job_id, epoch, loss) == STOP:
            self.stop_reason[job_id] = f"stopped by {self.s.algorithm} at epoch {epoch}"
            self.trace(f"job {job.name}: {self.stop_reason[job_id]}", key=True)
            self.backend.stop(job_id)

    def _on_exit(self, event: JobExit) -> None:
        outcome = self._record_exit(event)
        self.algorithm.on_finished(outcome)
        job = self.view.jobs[event.job_id]
        if outcome.status == "failed":
            self.trace(f"job {job.name} failed: {outcome.cause}; log: {job.directory}/train.log", level="ERROR")
        else:
            score = "no metric yet" if job.metric is None else \
                f"best {self.s.metric} {job.metric:.4f} at epoch {job.best_epoch}"
            self.trace(f"job {job.name} {outcome.status}: {score}" + (f" ({outcome.cause})" if outcome.cause else ""),
                       key=True)
            best = self.view.best()
            if best is not None and best.job_id == job.job_id:
                self.trace(f"new best: {job.name} {self.s.metric} {job.metric:.4f} {format_params(job.params)}", key=True)

    def _record_exit(self, event: JobExit) -> Outcome:
        """Journal how a job ended and free its worker."""
        job_id = event.job_id
        job = self.view.jobs[job_id]
        loss = self.job_loss.get(job_id)
        if job_id in self.job_nan:
            status, cause = "failed", self.job_nan[job_id]
        elif job_id in self.stop_reason:
            status, cause = "stopped", self.stop_reason[job_id]
        elif event.returncode != 0:
            status, cause = "failed", _exit_cause(event)
        elif loss is None:
            status, cause = "failed", f"the trainer wrote no {self.s.metric} (see {job.directory}/train.log)"
        else:
            status, cause = "completed", ""
        best_loss = loss if status != "failed" else None
        metric = None if best_loss is None else (-best_loss if self.s.direction == "maximize" else best_loss)
        self._record("job_finished", job_id=job_id, status=status, metric=metric, cause=cause,
                     returncode=event.returncode, log_tail=event.log_tail if status == "failed" else [])
        self.free.append(self.job_worker.pop(job_id))
        self.free.sort(key=lambda w: w.index)
        return Outcome(self.job_trial[job_id], job_id, status, best_loss, job.epoch, cause)

    # -- output -------------------------------------------------------------------------
    def _refresh(self) -> None:
        now = time.monotonic()
        if now - self._status_written >= _STATUS_EVERY:
            self._write_status()
        self.trace.show(self.view)

    def _write_status(self) -> None:
        self._status_written = time.monotonic()
        write_json_atomic(self.run_dir / "status.json", self.view.status_json())

    def _finish(self) -> RunView:
        best = self.view.best()
        if best is None:
            failed = [j for j in self.view.jobs.values() if j.status == "failed"]
            message = "every job failed" + (f"; the first: {failed[0].name}: {failed[0].cause}; log: "
                                            f"{failed[0].directory}/train.log" if failed else "")
            self._record("run_finished", status="failed", message=message)
            self._write_status()
            self.trace(message, level="ERROR")
            raise SearchFailed(message)
        best_dir = publish_best(self.view, best, self.run_dir)
        message = (f"AutoML run is successful: best {self.s.metric} {best.metric:.4f} in {best.name}; "
                   f"best config and weights under {best_dir}")
        self._record("run_finished", status="completed", message=message, best_job=best.name)
        self._write_status()
        self.trace(message, key=True)
        return self.view


def publish_best(view: RunView, best: JobView, run_dir: Path) -> Path:
    """best/: the winning job's resolved config, its weights and a summary, as an MMAR
    that `automl train -m best --validate-only` can evaluate."""
    job_dir = Path(best.directory)
    best_dir = run_dir / "best"
    tmp = run_dir / ".best.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(job_dir / "config", tmp / "config")
    (tmp / "models").mkdir()
    weights = job_dir / "models" / "model.pt"
    for item in (job_dir / "models").iterdir():
        if item.is_file() and item.suffix in (".pt", ".pth", ".ckpt", ".jsonl"):
            shutil.copy2(item, tmp / "models" / item.name)
    summary = {"run_id": view.run_id, "job": best.name, "trial_id": best.trial_id, "metric": view.metric_name,
               "direction": view.settings.get("direction"), "value": best.metric, "epoch": best.best_epoch,
               "epochs_trained": best.epoch, "params": best.params,
               "weights": "models/model.pt" if weights.exists() else None, "source": str(job_dir)}
    write_json_atomic(tmp / "summary.json", summary)
    shutil.rmtree(best_dir, ignore_errors=True)
    os.replace(tmp, best_dir)
    return best_dir


def _exit_cause(event: JobExit) -> str:
    code = event.returncode
    if code < 0:
        try:
            how = f"killed by {signal.Signals(-code).name}"
        except ValueError:
            how = f"killed by signal {-code}"
    else:
        how = f"exit code {code}"
    last = next((line for line in reversed(event.log_tail) if line.strip()), "")
    return f"{how}" + (f": {last.strip()[:300]}" if last else "")


def _raise_interrupt(signum, frame):  # noqa: ARG001
    raise KeyboardInterrupt
