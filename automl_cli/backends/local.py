"""Local backend: one process group per job on this machine, each job in a session of its own.

A job's first process is a small supervisor (supervise.py) that runs the trainer's command:
it stops every process of the job when the tool dies (even by kill -9), however the command
starts its trainer (a wrapper script, helper processes), and it ends as the trainer ended.
The job's process group is what gets signalled, so a trainer's data-loader children stop
with it and nothing is left holding a GPU. Metrics are read by tailing the job's metrics
file, which the trainer appends to one JSON line per epoch.

Every job's environment carries the run's identity (RUN_MARKER, the run folder), so a
resumed run finds whatever a dead run left behind by who it is, not by a pid alone.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import UsageError
from . import supervise
from .base import Backend, BackendKind, Job, JobExit, JobSpec, MetricsReport, Placement, PlacementRequest
from .metrics import MetricsTail


@dataclass
class _Running:
    spec: JobSpec
    process: subprocess.Popen
    log: object
    metrics: MetricsTail
    kill_at: float | None = None  # when SIGTERM was sent + grace


class LocalBackend(Backend):
    """`prepare` turns a job into what to run (for an MMAR: a cloned job folder, the
    trainer's command line and the job's environment)."""

    def __init__(self, prepare: Callable[[Job], JobSpec], grace_seconds: float = 30.0):
        self.prepare = prepare
        self.grace_seconds = grace_seconds
        self.jobs: dict[int, _Running] = {}

    def start(self, job: Job) -> dict[str, Any]:
        spec = self.prepare(job)
        _check_command(spec)
        log = open(spec.log_file, "ab")
        # the supervisor first: it starts the command and stops all of the job if the tool dies
        command = [sys.executable, "-I", "-S", SUPERVISOR, str(os.getpid()), str(self.grace_seconds), *spec.command]
        process = subprocess.Popen(command, cwd=spec.directory, env=spec.env, stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.jobs[spec.job_id] = _Running(spec, process, log, MetricsTail(spec.metrics_file))
        return {"dir": str(spec.directory), "devices": spec.env.get("CUDA_VISIBLE_DEVICES", ""), "pid": process.pid}

    def running(self) -> list[int]:
        return list(self.jobs)

    def poll(self) -> list[MetricsReport | JobExit]:
        events: list[MetricsReport | JobExit] = []
        now = time.monotonic()
        for job_id, job in list(self.jobs.items()):
            returncode = job.process.poll()
            events += self._read_metrics(job)
            if returncode is None:
                if job.kill_at is not None and now >= job.kill_at:
                    _kill_job(job.process)
                continue
            _kill_job(job.process)  # anything the trainer left behind
            job.log.close()
            del self.jobs[job_id]
            events.append(JobExit(job_id, returncode, job.kill_at is not None, _tail(job.spec.log_file)))
        return events

    def stop(self, job_id: int) -> None:
        job = self.jobs.get(job_id)
        if job is None or job.kill_at is not None:
            return
        job.kill_at = time.monotonic() + self.grace_seconds
        _signal_group(job.process, signal.SIGTERM)

    def stop_all(self) -> list[MetricsReport | JobExit]:
        for job_id in list(self.jobs):
            self.stop(job_id)
        events: list[MetricsReport | JobExit] = []
        deadline = time.monotonic() + self.grace_seconds
        try:
            while self.jobs and time.monotonic() < deadline:
                events += self.poll()
                time.sleep(0.1)
        except KeyboardInterrupt:
            pass  # a second Ctrl-C: no more grace, everything is killed below
        for job_id, job in list(self.jobs.items()):
            _kill_job(job.process)
            job.process.wait()
            events += self._read_metrics(job)
            job.log.close()
            events.append(JobExit(job_id, job.process.returncode, True, _tail(job.spec.log_file)))
        self.jobs.clear()
        return events

    @staticmethod
    def _read_metrics(job: _Running) -> list[MetricsReport]:
        return [MetricsReport(job.spec.job_id, values) for values in job.metrics.read()]


SUPERVISOR = str(Path(supervise.__file__).resolve())
RUN_MARKER = "AUTOML_RUN_DIR"  # in every job's environment: the run folder the job belongs to


def _check_command(spec: JobSpec) -> None:
    """The train command must exist before anything starts (the supervisor would only say
    so in each job's log, job after job)."""
    program = spec.command[0] if spec.command else ""
    if "/" in program:
        found = os.access(spec.directory / program, os.X_OK)
    else:
        found = shutil.which(program, path=spec.env.get("PATH", os.defpath)) is not None
    if not found:
        raise UsageError(f"cannot start the train command: {program!r} is not an executable program "
                         "(executor.args.train_command)")


def _kill_job(process: subprocess.Popen) -> None:
    """SIGKILL every process of a job: what left its group below the supervisor, then the group."""
    if process.returncode is None:
        supervise.signal_tree(process.pid, signal.SIGKILL)
    _signal_group(process, signal.SIGKILL)


def _environ(pid: int) -> dict[str, str]:
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            raw = handle.read()
    except OSError:
        return {}
    pairs = (item.decode("utf-8", "replace").partition("=") for item in raw.split(b"\0") if item)
    return {key: value for key, _, value in pairs}


def _belongs(pid: int, run_dir: str, folders: dict[str, str]) -> bool:
    """Is `pid` a process of this run's jobs? Its environment names the run; or (a trainer
    that cleared its environment) it works in one of `folders` (job folder -> job name) and
    its command line or environment names that job."""
    env = _environ(pid)
    if env.get(RUN_MARKER) == run_dir:
        return True
    try:
        cwd = os.readlink(f"/proc/{pid}/cwd")
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            cmdline = handle.read().decode("utf-8", "replace")
    except OSError:
        return False
    for folder, name in folders.items():
        if (cwd == folder or cwd.startswith(folder + "/")) and (folder in cmdline
                                                                or env.get("AUTOML_JOB_NAME") == name):
            return True
    return False


def find_stale(run_dir: str | Path, folders: dict[str, str] | None = None) -> list[int]:
    """Live processes of this run's jobs (see _belongs), outside this process's own tree."""
    run_dir, folders = str(run_dir), {str(k): v for k, v in (folders or {}).items()}
    table = supervise.process_table()
    mine = {os.getpid(), *supervise.descendants(os.getpid(), table)}
    return [pid for pid, (_, _, state) in table.items()
            if state != "Z" and pid not in mine and _belongs(pid, run_dir, folders)]


def stop_stale_jobs(run_dir: str | Path, folders: dict[str, str] | None = None,
                    grace_seconds: float = 30.0) -> list[int]:
    """Stop whatever a dead run of `run_dir` left running (for the local backend, before a
    resumed run starts a job in the same folders): SIGTERM to each such process's group and
    tree, SIGKILL after `grace_seconds`. `folders` (job folder -> job name) are the folders
    of the dead run's unfinished jobs, for trainers that cleared their environment. Returns
    the pids found (empty when nothing was left)."""
    found = find_stale(run_dir, folders)
    left = found
    for sig, wait in ((signal.SIGTERM, grace_seconds), (signal.SIGKILL, 5.0)):
        for pid in left:
            _signal_stale(pid, sig)
        deadline = time.monotonic() + wait
        while left and time.monotonic() < deadline:
            time.sleep(0.05)
            left = find_stale(run_dir, folders)
        if not left:
            break
    return found


def _signal_stale(pid: int, sig: int) -> None:
    """`sig` to a stale process, the processes below it and its process group (a job's own
    group: never the tool's)."""
    supervise.signal_tree(pid, sig)
    try:
        group = os.getpgid(pid)
        if group != os.getpgrp():
            os.killpg(group, sig)
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _tail(path, lines: int = 20) -> list[str]:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 8192))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return []
    return text.splitlines()[-lines:]


class LocalKind(BackendKind):
    """Jobs as processes on this machine: the workers are the --workers spec's GPU groups
    (or CPU workers when no GPU is visible)."""

    def place(self, request: PlacementRequest) -> Placement:
        from ..workers import check_against_devices, nvidia_smi_count, parse_workers, visible_gpus

        if any(v is not None for v in request.options.values()):
            raise UsageError("--slurm-* options need --backend slurm (or executor SlurmExecutor in config_automl.json)")
        spec = "0" if request.workers is None else request.workers
        workers = parse_workers(spec)
        n_gpus, mask_warning = visible_gpus(physical=nvidia_smi_count())
        if n_gpus:
            check_against_devices(workers, n_gpus)
        warnings = [] if n_gpus else [f"no GPU visible: running {len(workers)} CPU worker(s) for the spec '{spec}'"]
        return Placement(workers, have_gpus=n_gpus > 0, warnings=warnings + ([mask_warning] if mask_warning else []))

    def create(self, settings, jobs, trace) -> Backend:
        return LocalBackend(jobs.prepare, settings.grace_seconds)

    def where(self, settings) -> str:
        return ", ".join(f"{w.name} on {'GPUs ' + ','.join(map(str, w.gpus)) if settings.have_gpus else 'CPU'}"
                         for w in settings.workers)

    def stop_leftovers(self, settings, history) -> list[int]:
        """Every process a dead run's jobs left (found by the run's marker in their
        environment, or working in the folder of a job the journal saw launched but not
        ended), stopped before a job starts again in those folders."""
        run_dir = settings.run_dir
        open_jobs: dict[int, dict[str, str]] = {}  # job id -> {its folder: its name}, while not ended
        for event in history:
            if event.kind in ("job_launching", "job_started"):
                name = event.data["name"]
                folder = event.data.get("dir") or str(run_dir / name)
                open_jobs.setdefault(event.data["job_id"], {})[str(Path(folder).resolve())] = name
            elif event.kind == "job_finished":
                open_jobs.pop(event.data["job_id"], None)
        folders = {folder: name for job in open_jobs.values() for folder, name in job.items()}
        return stop_stale_jobs(run_dir.resolve(), folders, settings.grace_seconds)


KIND = LocalKind()
