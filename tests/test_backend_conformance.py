"""What every backend must do, checked the same way for each (the algorithms have theirs in
test_conformance.py): a job's metrics come before its exit; stop_all returns every job's
exit and leaves none running; a resumed tool's re-attach finds a job that outlives the
tool (SLURM) and never a dead one (local, simulated); after a stop nothing of the job's
process tree is left, a wrapper script's trainer included, and for local jobs the tool's
death ends them too (a helper that left the job's process group as well).

Jobs run tests/fake_trainer.py through a wrapper script that does not `exec` it. The
SLURM backend runs where a cluster does (see the slurm_cluster fixture); it is skipped,
saying why, elsewhere. A new backend gets these checks by adding a Kit below."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from automl_cli.backends.base import Job, JobExit, JobSpec, MetricsReport
from automl_cli.workers import Worker
from conftest import FAKE_TRAINER, ROOT, live_pids

BACKENDS = ["local", "simulated", "slurm"]
SLOW = 30.0  # seconds an epoch of a "slow" job takes: it is still in epoch 2 when the test acts


def _environ(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/environ", "rb") as handle:
        return dict(item.decode(errors="replace").partition("=")[::2] for item in handle.read().split(b"\0") if item)


def live_processes_with(key: str, value: str) -> list[int]:
    """Live (not zombie) processes whose environment has key=value."""
    found = []
    for pid in live_pids():
        try:
            if _environ(pid).get(key) == value:
                found.append(pid)
        except OSError:
            continue
    return found


class Kit:
    """Makes a backend of one kind, its jobs, and finds a job's processes."""

    def __init__(self, kind: str, tmp_path: Path):
        self.kind = kind
        self.run_dir = tmp_path / "run"
        self.run_dir.mkdir()
        self.slow: dict[int, bool] = {}
        self.wrapper = tmp_path / "wrap.sh"
        helpers = ""
        if kind == "local":  # a helper in the job's group and one that leaves it (setsid)
            helpers = "sleep 600 &\nsetsid sleep 600 &\n"
        self.wrapper.write_text(f'#!/bin/bash\n{helpers}"{sys.executable}" "{FAKE_TRAINER}" "$@"\n'
                                'echo "wrapper: the trainer ended with $?"\n')

    # -- jobs ---------------------------------------------------------------------------
    def job(self, job_id: int, epochs: int = 3, slow: bool = False) -> Job:
        self.slow[job_id] = slow
        return Job(job_id, f"W{job_id}_1_J{job_id}", job_id, Worker(job_id, ()), {"id": job_id}, 0, epochs)

    def job_dir(self, job: Job) -> Path:
        return self.run_dir / job.name

    def prepare(self, job: Job) -> JobSpec:
        directory = self.job_dir(job)
        (directory / "models").mkdir(parents=True, exist_ok=True)
        (directory / "config").mkdir(exist_ok=True)
        sleep = [0.05, SLOW] if self.slow[job.job_id] else 0.05
        (directory / "config" / "config_train.json").write_text(json.dumps(
            {"sleep": sleep, "fake": {"args": {"lr": 0.003, "choice": "good", "behaviour": "ok"}}}))
        metrics = directory / "models" / "metrics.jsonl"
        env = dict(os.environ)
        env.update({"AUTOML_METRICS_FILE": str(metrics), "AUTOML_JOB_NAME": job.name, "MMAR_ROOT": str(directory),
                    "AUTOML_RUN_DIR": str(self.run_dir), "PYTHONUNBUFFERED": "1"})
        return JobSpec(job.job_id, job.name, directory, ["bash", str(self.wrapper), str(directory), str(job.stop_epoch)],
                       env, directory / "train.log", metrics)

    def adopt(self, job: Job) -> JobSpec:
        return self.prepare(job)

    def processes(self, job: Job) -> list[int]:
        """The job's live processes (none for a simulated job)."""
        if self.kind == "simulated":
            return []
        return live_processes_with("AUTOML_METRICS_FILE", str(self.job_dir(job) / "models" / "metrics.jsonl"))

    # -- backends -----------------------------------------------------------------------
    def backend(self):
        if self.kind == "local":
            from automl_cli.backends.local import LocalBackend

            return LocalBackend(self.prepare, grace_seconds=5)
        if self.kind == "simulated":
            from automl_cli.backends.simulated import SimulatedBackend

            slow = self.slow
            return SimulatedBackend(lambda config, epoch, state: (1.0 / epoch, 3600.0 if slow[config["id"]] else 1.0),
                                    "loss", dict)
        from automl_cli.backends.slurm import SlurmBackend
        from automl_cli.backends.slurm_script import SlurmOptions

        return SlurmBackend(self, SlurmOptions(poll_seconds=0.5), "conformance", grace_seconds=5)


@pytest.fixture(params=BACKENDS)
def kit(request, tmp_path):
    if request.param == "slurm":
        request.getfixturevalue("slurm_cluster")  # skips, saying why, where no cluster runs
    made = Kit(request.param, tmp_path)
    yield made
    for job_id in made.slow:  # whatever a failed test left
        for pid in made.processes(made.job(job_id)):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    if request.param == "slurm":
        subprocess.run(["bash", "-c", "scancel -n $(squeue -h -o %j | grep '^automl.conformance' | paste -sd,) "
                        "2>/dev/null"], capture_output=True)


def poll_until(backend, done, timeout: float = 60.0) -> list:
    """Poll the backend until `done(events so far)`; every event seen, in order."""
    events: list = []
    deadline = time.monotonic() + timeout
    while not done(events):
        assert time.monotonic() < deadline, f"timed out; events so far: {events}"
        events += backend.poll()
        if not done(events):
            backend.idle(0.05)
    return events


def exits(events) -> dict[int, JobExit]:
    return {e.job_id: e for e in events if isinstance(e, JobExit)}


def reported(events, job_id: int) -> list[int]:
    return [e.values["epoch"] for e in events if isinstance(e, MetricsReport) and e.job_id == job_id]


def test_a_jobs_metrics_come_before_its_exit(kit):
    backend = kit.backend()
    job = kit.job(1, epochs=3)
    backend.start(job)
    events = poll_until(backend, lambda ev: 1 in exits(ev))
    mine = [e for e in events if e.job_id == 1]
    assert [e.values["epoch"] for e in mine[:-1]] == [1, 2, 3] and all(isinstance(e, MetricsReport) for e in mine[:-1])
    assert isinstance(mine[-1], JobExit) and mine[-1].returncode == 0 and not mine[-1].stop_requested
    assert backend.running() == []
    assert kit.processes(job) == []


def test_stop_all_returns_every_exit_and_leaves_no_process(kit):
    backend = kit.backend()
    jobs = [kit.job(1, slow=True), kit.job(2, slow=True)]
    for job in jobs:
        backend.start(job)
    events = poll_until(backend, lambda ev: all(reported(ev, j.job_id) for j in jobs))
    assert all(kit.processes(j) for j in jobs) or kit.kind == "simulated"
    events += backend.stop_all()
    ended = exits(events)
    assert sorted(ended) == [1, 2] and all(e.stop_requested for e in ended.values())
    assert all(not isinstance(e, MetricsReport) for e in events[events.index(ended[1]):] if e.job_id == 1)
    assert backend.running() == []
    assert [kit.processes(j) for j in jobs] == [[], []]


def test_a_stopped_jobs_whole_process_tree_is_gone(kit):
    backend = kit.backend()
    job = kit.job(1, slow=True)
    backend.start(job)
    poll_until(backend, lambda ev: reported(ev, 1))
    if kit.kind == "local":  # the wrapper, its trainer, a helper in the group and one outside it
        assert len(kit.processes(job)) >= 5
    backend.stop(1)
    events = poll_until(backend, lambda ev: 1 in exits(ev), timeout=60)
    assert exits(events)[1].stop_requested
    assert backend.running() == []
    deadline = time.monotonic() + 5  # SLURM's step ends just after the job's state does
    while kit.processes(job) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert kit.processes(job) == []


_DEAD_TOOL = """
import json, sys, time
sys.path[:0] = [sys.argv[1], sys.argv[1] + "/tests"]
from pathlib import Path
from test_backend_conformance import Kit
kit = Kit.__new__(Kit)
kit.kind, kit.run_dir, kit.wrapper, kit.slow = "local", Path(sys.argv[2]), Path(sys.argv[3]), {}
backend = kit.backend()
print(json.dumps(backend.start(kit.job(1, slow=True))), flush=True)
time.sleep(600)
"""


def test_reattach_follows_only_a_job_that_outlived_its_tool(kit):
    job = kit.job(1, epochs=3, slow=kit.kind != "slurm")
    if kit.kind == "local":
        # the tool dies with kill -9: every process of its job goes with it, so a resumed
        # tool has nothing to re-attach to and runs the job again
        tool = subprocess.Popen([sys.executable, "-c", _DEAD_TOOL, str(ROOT), str(kit.run_dir), str(kit.wrapper)],
                                stdout=subprocess.PIPE, text=True)
        placed = json.loads(tool.stdout.readline())
        deadline = time.monotonic() + 30
        while not (kit.job_dir(job) / "models" / "metrics.jsonl").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(kit.processes(job)) >= 5
        tool.kill()
        tool.wait()
        deadline = time.monotonic() + 3
        while kit.processes(job) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert kit.processes(job) == [], "a process of the job outlived its tool"
        resumed = kit.backend()
        assert resumed.reattach(job, placed) is False and resumed.running() == []
    elif kit.kind == "simulated":
        backend = kit.backend()
        placed = backend.start(job)
        assert kit.backend().reattach(job, placed) is False
    else:
        # a SLURM job outlives the tool: the resumed tool follows it to its end, and reads
        # its metrics (from the start of the file: the engine drops epochs it counted)
        placed = kit.backend().start(job)  # that backend is dropped: the tool "died"
        resumed = kit.backend()
        assert resumed.reattach(job, placed) is True and resumed.running() == [1]
        events = poll_until(resumed, lambda ev: 1 in exits(ev))
        assert reported(events, 1) == [1, 2, 3] and isinstance(events[-1], JobExit) and events[-1].returncode == 0
        assert resumed.running() == []
