"""SLURM backend: one sbatch job per automl job, watched with squeue from the login node.

The job folder on the shared file system is the meeting point: the tool writes the job
script and, once sbatch answers, the SLURM job id there (slurm_job.json); the job writes
its log, metrics and checkpoints there, and its trainer's exit status (slurm_exit).

Jobs are submitted with --requeue and --signal=B:USR1@N, so a preempted, requeued or
time-limited job restarts in the same folder and resumes from its newest checkpoint; the
tool only sees the state go back to PENDING and then RUNNING, and the epochs the job
reports again after a restart are dropped by the engine (it accepts only new epochs).

A run resumed after the tool died re-attaches to its SLURM jobs instead of submitting them
again: `reattach` for jobs the journal knows, and `start` itself for a job submitted just
before the tool died (its folder holds the id, or squeue knows its unique name).
"""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

from ..errors import AutomlError, UsageError
from ..files import write_text_atomic
from ..workers import Worker
from .base import (COMMON_EXECUTOR_ARGS, Backend, BackendKind, Job, JobExit, JobSpec, MetricsReport, Placement,
                   PlacementRequest)
from .local import _tail
from .metrics import MetricsTail
from .slurm_script import (EXIT_FILE, RECORD_FILE, SCRIPT_FILE, SUBMITTING_FILE, SlurmOptions, job_name,
                           map_state, is_alive, render_script, sbatch_argv)

COMMANDS = ("sbatch", "squeue", "scontrol", "scancel")
_TIMEOUT = 60  # seconds a SLURM command may take (a loaded slurmctld is slow, not dead)
_PREEMPTED_GRACE = 120.0  # seconds PREEMPTED may last before it is taken as final (no requeue)
_MISSING_POLLS = 3  # polls a job may be absent from squeue before it is taken as gone


class JobFolders(Protocol):
    def job_dir(self, job: Job) -> Path: ...

    def prepare(self, job: Job) -> JobSpec: ...

    def adopt(self, job: Job) -> JobSpec: ...


def _quiet(message: str, *, level: str = "INFO", key: bool = False) -> None:
    """No trace attached."""


def check_commands() -> None:
    """The SLURM client commands must be on PATH before a run starts anything."""
    missing = [c for c in COMMANDS if shutil.which(c) is None]
    if missing:
        raise UsageError(f"--backend slurm needs the SLURM client commands on PATH; missing: {', '.join(missing)}")


def slurm(args: list[str], check: bool = True) -> subprocess.CompletedProcess:
    """Run one SLURM command (never through a shell)."""
    try:
        result = subprocess.run(args, capture_output=True, text=True, timeout=_TIMEOUT, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AutomlError(f"{args[0]} failed: {exc}") from None
    if check and result.returncode != 0:
        raise AutomlError(f"{' '.join(args[:2])} ... failed ({result.returncode}): "
                          f"{(result.stderr or result.stdout).strip()[:400]}")
    return result


def query_states(slurm_ids: list[str]) -> dict[str, tuple[str, str]] | None:
    """{slurm id: (state, reason)} for the ids squeue still knows; None when squeue could not
    answer (then nothing is concluded). squeue --json is not used: 22.05 ignores -j there."""
    if not slurm_ids:
        return {}
    result = slurm(["squeue", "-h", "-t", "all", "-j", ",".join(slurm_ids), "-o", "%i|%T|%r"], check=False)
    if result.returncode != 0:
        if "Invalid job id" in result.stderr:
            return {}  # every id is gone (purged after MinJobAge)
        return None
    states: dict[str, tuple[str, str]] = {}
    for line in result.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) >= 2 and parts[0] in slurm_ids:  # filtered here too: never trust -j alone
            states[parts[0]] = (parts[1], parts[2] if len(parts) > 2 else "")
    return states


def show_job(slurm_id: str) -> dict[str, str]:
    """`scontrol show job -o ID` as a dict (empty when SLURM no longer knows the job)."""
    result = slurm(["scontrol", "show", "job", "-o", slurm_id], check=False)
    if result.returncode != 0:
        return {}
    fields: dict[str, str] = {}
    for item in result.stdout.strip().split(" "):
        key, sep, value = item.partition("=")
        if sep and key not in fields:
            fields[key] = value
    return fields


@dataclass
class _Tracked:
    spec: JobSpec
    slurm_id: str
    state: str = "PENDING"
    reason: str = ""
    metrics: MetricsTail | None = None  # the job folder's metrics file (made from spec)
    stop_requested: bool = False
    preempted_since: float | None = None
    missing: int = 0
    restarts: int = 0

    def __post_init__(self) -> None:
        if self.metrics is None:
            self.metrics = MetricsTail(self.spec.metrics_file)


class SlurmBackend(Backend):
    """`folders` makes and finds job folders (for an MMAR: run.MMARJobs)."""

    def __init__(self, folders: JobFolders, options: SlurmOptions, run_id: str, *,
                 trace: Callable[..., None] = _quiet, grace_seconds: float = 30.0):
        self.folders = folders
        self.options = options
        self.run_id = run_id
        self.trace = trace
        # scancel's SIGKILL comes KillWait (30 s by default) after SIGTERM: wait that long at least
        self.grace_seconds = max(grace_seconds, 35.0)
        self.jobs: dict[int, _Tracked] = {}
        self.last_query = 0.0
        self.submitted = 0

    # -- starting -------------------------------------------------------------------
    def start(self, job: Job) -> dict[str, Any]:
        directory = self.folders.job_dir(job)
        name = job_name(self.run_id, job.name, str(directory))
        found = self._find_submitted(directory, name)
        if found is not None:
            spec = self.folders.adopt(job)
            self.trace(f"job {job.name}: SLURM job {found} was submitted for it before the tool stopped; "
                       "attaching to it instead of submitting again", level="WARN")
            slurm_id = found
        else:
            spec = self.folders.prepare(job)
            slurm_id = self._submit(job, spec, name)
        self.jobs[job.job_id] = _Tracked(spec, slurm_id)
        self.last_query = 0.0  # learn the new job's state at the next poll
        return {"dir": str(spec.directory), "devices": "", "slurm_job_id": slurm_id,
                "where": f"SLURM job {slurm_id}"}

    def _submit(self, job: Job, spec: JobSpec, name: str) -> str:
        script = spec.directory / SCRIPT_FILE
        script.write_text(render_script(self.options, job_label=f"{self.run_id}/{job.name}",
                                        directory=str(spec.directory), command=spec.command, env=spec.env))
        script.chmod(0o755)
        argv = sbatch_argv(self.options, name=name, directory=str(spec.directory), log_file=str(spec.log_file),
                           script=str(script))
        # sbatch outlives a tool killed while it waits for the answer, and its job then exists
        # without a record: the marker tells a resumed run to wait for that sbatch and look
        # the job up by its name instead of submitting again
        marker = spec.directory / SUBMITTING_FILE
        marker.write_text(json.dumps({"pid": None, "host": socket.gethostname()}))
        try:
            process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                       stdin=subprocess.DEVNULL)
        except OSError as exc:
            raise AutomlError(f"sbatch failed: {exc}") from None
        marker.write_text(json.dumps({"pid": process.pid, "host": socket.gethostname()}))
        try:
            out, err = process.communicate(timeout=_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
        if process.returncode != 0:
            message = f"sbatch failed ({process.returncode}): {(err or out).strip()[:400]}"
            if not self.submitted:  # the cluster refused the settings before anything ran
                raise UsageError(f"{message}; check the SLURM options (partition, account, qos, gres, ...)")
            raise AutomlError(message)
        slurm_id = out.strip().split(";")[0]  # --parsable: "ID" or "ID;CLUSTER"
        if not slurm_id.isdigit():
            raise AutomlError(f"sbatch answered {out.strip()!r}, not a job id")
        self.submitted += 1
        _write_record(spec.directory, {"slurm_job_id": slurm_id, "job_id": job.job_id, "name": job.name,
                                       "slurm_name": name, "submitted": time.time()})
        return slurm_id

    def _find_submitted(self, directory: Path, name: str) -> str | None:
        """A SLURM job already submitted for this folder: from its record, else by its name
        (sbatch answered but the tool died before writing the record)."""
        try:
            slurm_id = str(json.loads((directory / RECORD_FILE).read_text())["slurm_job_id"])
        except (OSError, ValueError, KeyError, TypeError):
            slurm_id = None
        if slurm_id is not None:
            states = query_states([slurm_id])
            if states is None or slurm_id in states or (directory / EXIT_FILE).exists():
                return slurm_id
            return None
        marker = directory / SUBMITTING_FILE
        if not marker.exists():
            return None  # never handed to sbatch
        _wait_for_sbatch(marker)
        result = slurm(["squeue", "-h", "-t", "all", "-n", name, "-o", "%i|%T"], check=False)
        known = [line.split("|")[0] for line in result.stdout.splitlines() if line.split("|")[0].isdigit()]
        if not known:
            return None
        slurm_id = max(known, key=int)
        _write_record(directory, {"slurm_job_id": slurm_id, "slurm_name": name, "found_by_name": True})
        return slurm_id

    def reattach(self, job: Job, placed: dict[str, Any]) -> bool:
        slurm_id = placed.get("slurm_job_id")
        if not slurm_id:
            return False
        directory = Path(placed.get("dir", ""))
        states = query_states([str(slurm_id)])
        if states is not None and str(slurm_id) not in states and not (directory / EXIT_FILE).exists():
            return False  # SLURM forgot it and it left no exit status: the engine runs it again
        spec = self.folders.adopt(job)
        state = states.get(str(slurm_id), ("gone", ""))[0] if states else "unknown"
        self.jobs[job.job_id] = _Tracked(spec, str(slurm_id), state=state)
        self.trace(f"job {job.name}: re-attached to SLURM job {slurm_id} ({state})", key=True)
        self.last_query = 0.0
        return True

    # -- watching -------------------------------------------------------------------
    def running(self) -> list[int]:
        return list(self.jobs)

    def queued(self, job_id: int) -> bool:
        job = self.jobs.get(job_id)
        return job is not None and map_state(job.state) in ("queued", "preempted")

    def poll(self) -> list[MetricsReport | JobExit]:
        events: list[MetricsReport | JobExit] = []
        for job_id, job in self.jobs.items():
            events += self._read_metrics(job_id, job)
        now = time.monotonic()
        if not self.jobs or now - self.last_query < self.options.poll_seconds:
            return events
        self.last_query = now
        states = query_states([j.slurm_id for j in self.jobs.values()])
        if states is None:
            return events  # squeue failed (slurmctld busy or restarting): ask again later
        for job_id, job in list(self.jobs.items()):
            ended = self._update(job_id, job, states.get(job.slurm_id), now)
            if ended is not None:
                events += self._read_metrics(job_id, job)  # lines written just before the end
                del self.jobs[job_id]
                events.append(ended)
        return events

    def _update(self, job_id: int, job: _Tracked, seen: tuple[str, str] | None, now: float) -> JobExit | None:
        """Follow one job's state; its JobExit when it has ended."""
        name = job.spec.name
        if seen is None:
            job.missing += 1
            if not (job.spec.directory / EXIT_FILE).exists() and job.missing < _MISSING_POLLS:
                return None
            return self._exit(job_id, job, "GONE", "SLURM no longer lists the job")
        state, reason = seen
        ours = map_state(state)
        job.missing = 0
        if state != job.state:
            previous, job.state, job.reason = job.state, state, reason
            if ours == "running" and previous not in ("RUNNING", "COMPLETING"):
                restarts = self._restarts(job)
                self.trace(f"job {name}: SLURM job {job.slurm_id} running"
                           + (f" again (SLURM_RESTART_COUNT={restarts}), resuming from its checkpoint"
                              if restarts else ""), key=bool(restarts))
            elif ours == "queued" and previous in ("RUNNING", "COMPLETING", "PREEMPTED", "REQUEUED"):
                if not job.stop_requested:
                    self.trace(f"job {name}: SLURM job {job.slurm_id} requeued ({state}, {reason}); it will "
                               "resume from its checkpoint", level="WARN", key=True)
            elif ours == "preempted":
                self.trace(f"job {name}: SLURM job {job.slurm_id} preempted; waiting for its requeue",
                           level="WARN", key=True)
        if ours == "preempted":
            job.preempted_since = job.preempted_since or now
            if now - job.preempted_since < _PREEMPTED_GRACE:
                return None
            return self._exit(job_id, job, state, reason)  # never requeued: final after all
        else:
            job.preempted_since = None
        if is_alive(ours):
            return None
        return self._exit(job_id, job, state, reason)

    def _restarts(self, job: _Tracked) -> int:
        try:
            job.restarts = int(show_job(job.slurm_id).get("Restarts", job.restarts))
        except ValueError:
            pass
        return job.restarts

    def _exit(self, job_id: int, job: _Tracked, state: str, reason: str) -> JobExit:
        """The JobExit of an ended SLURM job: the trainer's own exit status when the job
        script recorded it, else SLURM's; a job that did not complete is never 0."""
        ours = map_state(state)
        code = _read_exit(job.spec.directory)
        if ours == "completed":
            code = 0 if code is None else code
        elif state == "GONE":  # purged from squeue: the job folder is all there is
            code = 1 if code is None else code
        else:
            if code is None:
                code = _exit_code(show_job(job.slurm_id).get("ExitCode", ""))
            if job.stop_requested and ours == "cancelled":
                code = code if code not in (None, 0) else -15
            elif not code:
                code = 1  # TIMEOUT, NODE_FAIL, ... can report 0:0: it did not complete all the same
        tail = _tail(job.spec.log_file)
        if code != 0 or (ours != "completed" and state != "GONE"):
            tail.append(f"automl-slurm: SLURM job {job.slurm_id} ended {state}" + (f" ({reason})" if reason and
                                                                                   reason != "None" else ""))
            self.trace(f"job {job.spec.name}: SLURM job {job.slurm_id} ended {state}",
                       level="INFO" if job.stop_requested else "WARN")
        return JobExit(job_id, code, job.stop_requested, tail)

    def _read_metrics(self, job_id: int, job: _Tracked) -> list[MetricsReport]:
        return [MetricsReport(job_id, values) for values in job.metrics.read()]

    # -- stopping -------------------------------------------------------------------
    def stop(self, job_id: int) -> None:
        job = self.jobs.get(job_id)
        if job is None or job.stop_requested:
            return
        job.stop_requested = True
        # scancel: SIGTERM to the script and the trainer (which checkpoint), SIGKILL after KillWait
        slurm(["scancel", job.slurm_id], check=False)
        self.last_query = 0.0

    def stop_all(self) -> list[MetricsReport | JobExit]:
        pending = [j for j in self.jobs.values() if not j.stop_requested]
        for job in pending:
            job.stop_requested = True
        if pending:
            slurm(["scancel", *[j.slurm_id for j in pending]], check=False)
        events: list[MetricsReport | JobExit] = []
        deadline = time.monotonic() + self.grace_seconds
        try:
            while self.jobs and time.monotonic() < deadline:
                self.last_query = 0.0
                events += self.poll()
                if self.jobs:
                    time.sleep(min(1.0, self.options.poll_seconds))
        except KeyboardInterrupt:
            pass  # a second Ctrl-C: stop waiting; SLURM kills the cancelled jobs after KillWait
        for job_id, job in list(self.jobs.items()):
            events += self._read_metrics(job_id, job)
            tail = _tail(job.spec.log_file) + [f"automl-slurm: SLURM job {job.slurm_id} cancelled; "
                                               "not waited for"]
            events.append(JobExit(job_id, -15, True, tail))
        self.jobs.clear()
        return events


def _wait_for_sbatch(marker: Path, timeout: float = _TIMEOUT) -> None:
    """Wait until the sbatch a dead tool started for this folder has ended (it is then in
    squeue, or it failed). From another host, or without its pid, a short wait stands in."""
    try:
        info = json.loads(marker.read_text())
    except (OSError, ValueError):
        info = {}
    pid = info.get("pid")
    if not pid or info.get("host") != socket.gethostname():
        time.sleep(3.0)
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                if b"sbatch" not in handle.read():
                    return  # the pid is another process now
            with open(f"/proc/{pid}/stat") as handle:
                if handle.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return
        except OSError:
            return
        time.sleep(0.1)


def _write_record(directory: Path, record: dict) -> None:
    # the one record of which SLURM job runs this folder: a torn one would submit the job twice
    write_text_atomic(directory / RECORD_FILE, json.dumps(record))


def _read_exit(directory: Path) -> int | None:
    try:
        return int((directory / EXIT_FILE).read_text().strip())
    except (OSError, ValueError):
        return None


def _exit_code(text: str) -> int | None:
    """scontrol's ExitCode=RC:SIGNAL -> RC, or -SIGNAL when a signal ended the job."""
    rc, sep, sig = text.partition(":")
    try:
        code, signum = int(rc), int(sig) if sep else 0
    except ValueError:
        return None
    return -signum if signum else code


def slurm_options(loaded, executor: dict, given: dict[str, Any]) -> SlurmOptions:
    """SlurmExecutor's args in config_automl.json (`loaded`: runconfig.Loaded), overridden
    by the --slurm-* options `given`."""
    from ..errors import ConfigError

    from_config = {k: v for k, v in (executor.get("args") or {}).items() if k not in COMMON_EXECUTOR_ARGS} \
        if executor.get("name") == "SlurmExecutor" else {}
    try:
        SlurmOptions.from_dict(from_config, where="executor.args.")
    except UsageError as exc:
        raise ConfigError(loaded.automl_path, ["executor", "args"], str(exc)) from None
    return SlurmOptions.from_dict({**from_config, **{k: v for k, v in given.items() if v is not None}})


class SlurmKind(BackendKind):
    """One sbatch job per job. The tool runs on a login node and SLURM places jobs on GPUs
    (--gres), so the workers are slots: one per SLURM job queued or running at a time."""

    def place(self, request: PlacementRequest) -> Placement:
        options = slurm_options(request.loaded, request.executor, request.options)
        check_commands()
        warnings = []
        if request.workers is not None:
            warnings.append(f"--workers '{request.workers}' is ignored with --backend slurm: up to {options.max_jobs} "
                            "SLURM jobs (--slurm-max-jobs) run at a time, each on the GPUs of --slurm-gres")
        return Placement([Worker(i, ()) for i in range(1, options.max_jobs + 1)], options=options, warnings=warnings)

    def create(self, settings, jobs, trace) -> Backend:
        return SlurmBackend(jobs, settings.backend_options or SlurmOptions(), settings.run_id, trace=trace,
                            grace_seconds=settings.grace_seconds)

    def where(self, settings) -> str:
        return f"up to {len(settings.workers)} SLURM jobs at a time"


KIND = SlurmKind()
