"""Local backend: one process per job on this machine, each in its own process group.

A job's process group is what gets signalled, so a trainer's data-loader children stop
with it and nothing is left holding a GPU. Metrics are read by tailing the job's metrics
file, which the trainer appends to one JSON line per epoch.
"""
from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from typing import Any, Callable

from .base import Backend, Job, JobExit, JobSpec, MetricsReport


@dataclass
class _Running:
    spec: JobSpec
    process: subprocess.Popen
    log: object
    offset: int = 0
    partial: str = ""
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
        log = open(spec.log_file, "ab")
        process = subprocess.Popen(spec.command, cwd=spec.directory, env=spec.env, stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                                   preexec_fn=_die_with_parent)
        self.jobs[spec.job_id] = _Running(spec, process, log)
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
                    _signal_group(job.process, signal.SIGKILL)
                continue
            _signal_group(job.process, signal.SIGKILL)  # reap anything the trainer left behind
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
            _signal_group(job.process, signal.SIGKILL)
            job.process.wait()
            events += self._read_metrics(job)
            job.log.close()
            events.append(JobExit(job_id, job.process.returncode, True, _tail(job.spec.log_file)))
        self.jobs.clear()
        return events

    @staticmethod
    def _read_metrics(job: _Running) -> list[MetricsReport]:
        path = job.spec.metrics_file
        try:
            with open(path, "r") as handle:
                handle.seek(job.offset)
                chunk = handle.read()
                job.offset = handle.tell()
        except FileNotFoundError:
            return []
        text = job.partial + chunk
        lines = text.split("\n")
        job.partial = lines.pop()  # an unfinished last line waits for the next poll
        reports = []
        for line in lines:
            line = line.strip()
            if not line:
                continue
            try:
                values = json.loads(line)
            except json.JSONDecodeError:
                values = {"unreadable": line[:200]}
            reports.append(MetricsReport(job.spec.job_id, values if isinstance(values, dict) else {"unreadable": line}))
        return reports


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux for SIGTERM when the tool dies, even by kill -9,
    so a trainer checkpoints and exits instead of running on without an owner."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: stale jobs are still stopped when the run resumes


def kill_stale_group(pid: int, directory: str) -> bool:
    """Kill the process group of a job a dead run left behind, if `pid` is still that job
    (its command line or working folder names the job's folder); True if one was killed."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            cmdline = handle.read().decode("utf-8", "replace")
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return False
    if directory not in cmdline and cwd != directory:
        return False
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return False
    return True


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
