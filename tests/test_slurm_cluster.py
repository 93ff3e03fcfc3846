"""The SLURM backend against a real slurmctld (scripts/slurm/cluster.sh: one node, 4 fake
GPUs, partitions debug and urgent): real searches, requeue, preemption, the time-limit
signal, and a tool killed with SIGKILL that re-attaches instead of submitting again.
Skipped, with the reason, where no cluster runs (see the slurm_cluster fixture: `.ci/run` starts one)."""
import json
import re
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from automl_cli.backends.slurm_script import job_name
from automl_cli.status import RunView
from automl_cli.store import JOURNAL, Journal
from conftest import ROOT, pace_jobs, run_cli, set_epoch_seconds, start_run, wait_for, write_json

FAST = ["--slurm-poll-seconds", "0.5"]


def run_slurm_jobs(run_dir: Path) -> dict[str, list[tuple[str, str]]]:
    """Every SLURM job the cluster knows for this run's job folders: {name: [(id, state)]}.
    Names are unique per job folder (job_name hashes the folder), so a job submitted twice
    shows as one name with two ids."""
    names = {job_name(run_dir.name, d.name, str(d)): d.name for d in run_dir.iterdir() if d.is_dir()}
    out = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%i|%j|%T"], capture_output=True, text=True,
                         check=True).stdout
    found: dict[str, list[tuple[str, str]]] = {}
    for line in out.splitlines():
        slurm_id, name, state = line.split("|")
        if name in names:
            found.setdefault(names[name], []).append((slurm_id, state))
    return found


@pytest.fixture
def cancel_afterwards():
    """Cancel what a test's runs left in the queue, so a failed test does not hold the GPUs."""
    run_dirs: list[Path] = []
    yield run_dirs
    for run_dir in run_dirs:
        if run_dir.exists():
            ids = [i for jobs in run_slurm_jobs(run_dir).values() for i, state in jobs]
            if ids:
                subprocess.run(["scancel", *ids], capture_output=True)


def slurm_id(job_dir: Path) -> str:
    return json.loads((job_dir / "slurm_job.json").read_text())["slurm_job_id"]


def journal_events(run_dir: Path, kind: str) -> list[dict]:
    """The run's journal events of `kind`; none while the tool is still creating the journal."""
    try:
        journal = Journal(run_dir / JOURNAL, readonly=True)
        try:
            return [e.data for e in journal.events() if e.kind == kind]
        finally:
            journal.close()
    except sqlite3.OperationalError:  # the file does not exist yet
        return []


@pytest.fixture
def template(tmp_path):
    """mmar_template with 4 epochs of full training and 5x the training data: an epoch takes
    long enough (about a second or more) to requeue a job between two epochs."""
    root = tmp_path / "slurm_mmar"
    shutil.copytree(ROOT / "mmar_template", root, ignore=shutil.ignore_patterns("automl"))
    path = root / "config" / "config_train.json"
    config = json.loads(path.read_text())
    config["epochs"] = 4
    config["train"]["data"]["args"]["num_samples"] = 480
    write_json(path, config)
    return root


HYPERBAND = ["--algorithm", "hyperband", "--set", "automl_R=4", "automl_nu=4", "epoch_multiplier=1"]


@pytest.mark.slow
def test_hyperband_runs_4_gpu_jobs_at_a_time_survives_a_requeue_and_matches_the_local_run(
        slurm_cluster, template, tmp_path, cancel_afterwards):
    local_mmar = tmp_path / "local_mmar"
    shutil.copytree(template, local_mmar)
    run_dir = template / "automl" / "hb"
    cancel_afterwards.append(run_dir)

    began = time.monotonic()
    tool = start_run(template, "--run-id", "hb", "--backend", "slurm", "--slurm-max-jobs", "4", "--slurm-gres",
                     "gpu:1", *FAST, *HYPERBAND)

    def promoted_mid_training():
        if not journal_events(run_dir, "job_started"):
            return None
        jobs = RunView.load(run_dir).jobs.values()
        return next((j for j in jobs if j.start_epoch > 0 and j.start_epoch < j.epoch < j.stop_epoch - 1), None)

    assert wait_for(promoted_mid_training, timeout=400), "the promoted job never got going"
    promoted = promoted_mid_training()
    requeued_at = promoted.epoch
    subprocess.run(["scontrol", "requeue", slurm_id(Path(promoted.directory))], check=True)
    out, err = tool.communicate(timeout=500)
    slurm_seconds = time.monotonic() - began
    assert tool.returncode == 0, err[-3000:]

    view = RunView.load(run_dir)
    assert len(view.jobs) == 5 and all(j.status == "completed" for j in view.jobs.values())
    started = journal_events(run_dir, "job_started")
    assert len(started) == 5  # the requeue happened inside SLURM: the engine started nothing again
    # four jobs at a time, each with one GPU of its own
    first = [j for j in view.jobs.values() if j.start_epoch == 0]
    devices = set()
    for job in view.jobs.values():
        job_dir = Path(job.directory)
        assert "#SBATCH --gres=gpu:1" in (job_dir / "slurm_job.sh").read_text()
        log = (job_dir / "train.log").read_text()
        seen = [line.split("CUDA_VISIBLE_DEVICES=")[1].split()[0] for line in log.splitlines()
                if line.startswith("automl-slurm: job") and "CUDA_VISIBLE_DEVICES=" in line]
        assert seen and all(d in ("0", "1", "2", "3") for d in seen), log[:2000]
        if job in first:
            devices.add(seen[0])
    assert len(first) == 4 and devices == {"0", "1", "2", "3"}

    # the requeued job restarted once, from its checkpoint: its epochs continue, each once
    promoted = view.jobs[promoted.job_id]
    job_dir = Path(promoted.directory)
    log = (job_dir / "train.log").read_text()
    assert "SLURM_RESTART_COUNT=0" in log and "SLURM_RESTART_COUNT=1" in log
    restarted = log.split("SLURM_RESTART_COUNT=1")[1]
    resumed_at = int(re.search(r"resumed from \S+checkpoint\.pt at epoch (\d+)", restarted).group(1))
    assert requeued_at <= resumed_at < promoted.stop_epoch  # at least where the tool saw it when requeued
    written = [json.loads(line)["epoch"] for line in (job_dir / "models" / "metrics.jsonl").read_text().splitlines()]
    assert written == list(range(promoted.start_epoch + 1, promoted.stop_epoch + 1))
    journaled = [m["epoch"] for m in journal_events(run_dir, "metrics") if m["job_id"] == promoted.job_id]
    assert journaled == written
    trace = (run_dir / "trace.log").read_text()
    assert f"SLURM job {slurm_id(job_dir)} requeued" in trace and "SLURM_RESTART_COUNT=1" in trace
    slurm_jobs = run_slurm_jobs(run_dir)
    assert sorted(slurm_jobs) == sorted(j.name for j in view.jobs.values())
    assert all(len(ids) == 1 and ids[0][1] == "COMPLETED" for ids in slurm_jobs.values())

    # the same search on the local backend, same seed: the same trials, the same scores
    began = time.monotonic()
    local = run_cli("run", "-m", str(local_mmar), "--run-id", "hb", "--workers", "0:0:0:0", *HYPERBAND)
    local_seconds = time.monotonic() - began
    assert local.returncode == 0, local.stderr[-3000:]
    local_view = RunView.load(local_mmar / "automl" / "hb")

    def trials(v):
        return sorted((j.trial_id, json.dumps(j.params, sort_keys=True), j.start_epoch, j.stop_epoch)
                      for j in v.jobs.values())

    assert trials(view) == trials(local_view)
    for job in view.jobs.values():
        twin = next(j for j in local_view.jobs.values() if (j.trial_id, j.start_epoch) == (job.trial_id,
                                                                                          job.start_epoch))
        assert job.metric == pytest.approx(twin.metric, abs=1e-5)
    assert view.best().trial_id == local_view.best().trial_id
    print(f"\nSLURM e2e: slurm run {slurm_seconds:.1f} s, local run {local_seconds:.1f} s")


def test_kill_9_of_the_tool_then_resume_reattaches_and_submits_no_job_twice(slurm_cluster, fake_mmar,
                                                                            cancel_afterwards):
    set_epoch_seconds(fake_mmar, 3.0)  # jobs of 9 s: still running when the tool comes back
    run_dir = fake_mmar / "automl" / "kill"
    cancel_afterwards.append(run_dir)
    args = ["--run-id", "kill", "--backend", "slurm", *FAST, "--set", "automl_max_recommendations=7"]

    def started_jobs():
        return len(journal_events(run_dir, "job_started")) if (run_dir / JOURNAL).exists() else 0

    def epochs_journaled():
        return len(journal_events(run_dir, "metrics")) if (run_dir / JOURNAL).exists() else 0

    # first kill: four jobs running, some epochs journaled; second: while the next jobs start
    tool = start_run(fake_mmar, *args)
    assert wait_for(lambda: epochs_journaled() >= 2, timeout=120)
    tool.send_signal(signal.SIGKILL)
    tool.wait()
    alive = run_slurm_jobs(run_dir)
    assert len(alive) == 4 and all(s in ("RUNNING", "PENDING", "COMPLETING", "COMPLETED") for v in alive.values()
                                   for _, s in v)
    tool = start_run(fake_mmar, *args, "--resume")
    assert wait_for(lambda: started_jobs() >= 5, timeout=120)
    tool.send_signal(signal.SIGKILL)
    tool.wait()
    tool = start_run(fake_mmar, *args, "--resume")
    out, err = tool.communicate(timeout=300)
    assert tool.returncode == 0, err[-3000:]

    view = RunView.load(run_dir)
    assert len(view.jobs) == 7 and all(j.status == "completed" for j in view.jobs.values())
    assert all(sorted(j.epochs) == [1, 2, 3] for j in view.jobs.values())
    started = journal_events(run_dir, "job_started")
    assert len(started) == 7  # nothing was relaunched
    submitted = run_slurm_jobs(run_dir)
    assert sorted(submitted) == sorted(d["name"] for d in started)
    assert all(len(ids) == 1 for ids in submitted.values()), submitted  # one sbatch per job, ever
    assert {d["slurm_job_id"] for d in started} == {ids[0][0] for ids in submitted.values()}
    # every epoch counted once although re-attached jobs re-read their metrics files from the start
    epochs = [(m["job_id"], m["epoch"]) for m in journal_events(run_dir, "metrics")]
    assert len(epochs) == len(set(epochs)) == 21
    trace = (run_dir / "trace.log").read_text()
    assert "re-attached to SLURM job" in trace and "(RUNNING)" in trace


def test_a_job_whose_sbatch_outlived_the_tool_is_found_by_name_not_submitted_again(slurm_cluster, tmp_path):
    from automl_cli.backends.base import Job, JobSpec
    from automl_cli.backends.slurm import SlurmBackend
    from automl_cli.backends.slurm_script import RECORD_FILE, SUBMITTING_FILE, SlurmOptions
    from automl_cli.workers import Worker

    directory = tmp_path / "run" / "W1_1_J1"
    directory.mkdir(parents=True)

    class Folders:
        def job_dir(self, job):
            return directory

        def prepare(self, job):
            raise AssertionError("the job was prepared and submitted again")

        def adopt(self, job):
            return JobSpec(job.job_id, job.name, directory, ["true"], {}, directory / "train.log",
                           directory / "metrics.jsonl")

    # the state a tool leaves when killed while sbatch ran: the marker, a job, no record
    (directory / SUBMITTING_FILE).write_text(json.dumps({"pid": None, "host": "elsewhere"}))
    name = job_name("run", "W1_1_J1", str(directory))
    submitted = subprocess.run(["sbatch", "--parsable", "-J", name, "-o", "/dev/null", "--wrap", "sleep 60"],
                               capture_output=True, text=True, check=True).stdout.strip()
    backend = SlurmBackend(Folders(), SlurmOptions(poll_seconds=0.5), "run", grace_seconds=5)
    try:
        placed = backend.start(Job(1, "W1_1_J1", 1, Worker(1, ()), {}, 0, 1))
        assert placed["slurm_job_id"] == submitted
        assert json.loads((directory / RECORD_FILE).read_text())["slurm_job_id"] == submitted
        time.sleep(1.0)
        assert backend.poll() == [] and backend.running() == [1]  # followed as running
    finally:
        events = backend.stop_all()
        subprocess.run(["scancel", submitted], capture_output=True)
    assert [(e.job_id, e.stop_requested) for e in events if hasattr(e, "returncode")] == [(1, True)]


def test_time_limit_signal_and_preemption_requeue_jobs_that_resume_from_their_checkpoints(
        slurm_cluster, fake_mmar, cancel_afterwards):
    set_epoch_seconds(fake_mmar, 1.0)
    path = fake_mmar / "config" / "config_train.json"
    config = json.loads(path.read_text())
    config["epochs"] = 6
    write_json(path, config)
    run_dir = fake_mmar / "automl" / "pre"
    cancel_afterwards.append(run_dir)
    tool = start_run(fake_mmar, "--run-id", "pre", "--backend", "slurm", *FAST, "--slurm-partition", "debug",
                     "--set", "automl_max_recommendations=2")

    def epoch_of(name):
        metrics = run_dir / name / "models" / "metrics.jsonl"
        return len(metrics.read_text().splitlines()) if metrics.exists() else 0

    assert wait_for(lambda: epoch_of("W1_1_J1") >= 1 and epoch_of("W2_1_J2") >= 1, timeout=120)
    # the warning --signal=B:USR1@N would send before the time limit, delivered now
    subprocess.run(["scancel", "--signal=USR1", "--batch", slurm_id(run_dir / "W1_1_J1")], check=True)
    assert wait_for(lambda: "requeueing job" in (run_dir / "W1_1_J1" / "train.log").read_text(), timeout=60)
    # a job of the higher-priority partition preempts W2's job (PreemptMode=REQUEUE)
    urgent = subprocess.run(["sbatch", "--parsable", "-p", "urgent", "--gres=gpu:4", "-o", "/dev/null",
                             "--wrap", "sleep 2"], capture_output=True, text=True, check=True).stdout.strip()
    try:
        out, err = tool.communicate(timeout=300)
    finally:
        subprocess.run(["scancel", urgent], capture_output=True)
    assert tool.returncode == 0, err[-3000:]

    view = RunView.load(run_dir)
    assert all(j.status == "completed" and sorted(j.epochs) == [1, 2, 3, 4, 5, 6] for j in view.jobs.values())
    for name in ("W1_1_J1", "W2_1_J2"):
        log = (run_dir / name / "train.log").read_text()
        assert "SLURM_RESTART_COUNT=1" in log, log
        written = [json.loads(line)["epoch"] for line in (run_dir / name / "models" / "metrics.jsonl").read_text()
                   .splitlines()]
        assert written == [1, 2, 3, 4, 5, 6]  # resumed where the checkpoint was, never from the start
        assert "resume at 0" in log and log.count("resume at 0") == 1
    assert "USR1: time limit near" in (run_dir / "W1_1_J1" / "train.log").read_text()
    # preemption sends SIGTERM, and with preempt_send_user_signal the job's USR1 as well: either one
    # makes the job checkpoint
    preempted = (run_dir / "W2_1_J2" / "train.log").read_text()
    assert "SIGTERM (preempted" in preempted or "USR1: time limit near" in preempted
    trace = (run_dir / "trace.log").read_text()
    assert trace.count("requeued") >= 2 and "SLURM_RESTART_COUNT=1" in trace
    assert len(journal_events(run_dir, "job_started")) == 2


def test_ctrl_c_cancels_the_slurm_jobs_after_their_checkpoint_and_resume_finishes_the_run(
        slurm_cluster, fake_mmar, cancel_afterwards):
    set_epoch_seconds(fake_mmar, 2.0)
    run_dir = fake_mmar / "automl" / "int"
    cancel_afterwards.append(run_dir)
    args = ["--run-id", "int", "--backend", "slurm", *FAST, "--slurm-max-jobs", "2"]
    tool = start_run(fake_mmar, *args)
    # both jobs have reported an epoch, so both trainers are up with their SIGTERM handler (on a loaded
    # machine the second job can start seconds after the first has reported two)
    assert wait_for(lambda: (run_dir / JOURNAL).exists()
                    and len({e["job_id"] for e in journal_events(run_dir, "metrics")}) >= 2, timeout=120)
    tool.send_signal(signal.SIGINT)
    out, err = tool.communicate(timeout=120)
    assert tool.returncode == 130, err
    # the tool waited for its jobs: cancelled and ended, nothing left in the queue
    jobs = run_slurm_jobs(run_dir)
    assert len(jobs) == 2 and all(state == "CANCELLED" for ids in jobs.values() for _, state in ids), jobs
    view = RunView.load(run_dir)
    assert [j.status for j in view.jobs.values()] == ["interrupted"] * 2
    for name in jobs:
        assert "SIGTERM (preempted, requeued or cancelled): checkpointing" in (run_dir / name / "train.log").read_text()

    set_epoch_seconds(fake_mmar, 0.05)
    again = run_cli("run", "-m", str(fake_mmar), *args, "--resume")
    assert again.returncode == 0, again.stderr[-3000:]
    view = RunView.load(run_dir)
    assert view.status == "completed" and len(view.jobs) == 4
    assert all(j.status == "completed" and sorted(j.epochs) == [1, 2, 3] for j in view.jobs.values())
    # the interrupted jobs ran again as attempt 2 (new folders, new SLURM jobs) from their checkpoints
    assert sorted(j.name.split("_")[1] for j in view.jobs.values()) == ["1", "1", "2", "2"]
    for job in view.jobs.values():
        if job.name.split("_")[1] == "2":
            assert "resume at 0" not in (Path(job.directory) / "train.log").read_text()


def test_admin_commands_act_on_a_slurm_run_as_on_a_local_one(slurm_cluster, fake_mmar, cancel_afterwards):
    """suspend, abort (scancel) and stop from another shell: the tool on the login node acts."""
    pace_jobs(fake_mmar, [0.1, 600])  # jobs report epoch 1, then wait in epoch 2 until released
    run_dir = fake_mmar / "automl" / "adm"
    cancel_afterwards.append(run_dir)
    tool = start_run(fake_mmar, "--run-id", "adm", "--backend", "slurm", *FAST, "--slurm-max-jobs", "2",
                     "--set", "automl_max_recommendations=4")

    def admin(*args):
        return run_cli(*args, "-m", str(fake_mmar), "--run-id", "adm")
    try:
        assert wait_for(lambda: len(journal_events(run_dir, "metrics")) >= 2, timeout=120)
        assert admin("suspend", "W2").stdout.strip() == "W2 suspended; its job W2_1_J2 runs on"
        rows = json.loads(admin("workers", "--json").stdout)
        assert [(r["worker"], r["gpus"], r["state"], r["current_job"]) for r in rows] == [
            ("W1", "SLURM slot", "busy", "W1_1_J1"), ("W2", "SLURM slot", "suspended (busy)", "W2_1_J2")]
        assert rows[1]["where"] == f"SLURM job {slurm_id(run_dir / 'W2_1_J2')}"
        assert admin("abort", "W2").stdout.strip() == "job W2_1_J2 stopping"
        assert wait_for(lambda: journal_events(run_dir, "job_finished"), timeout=120)
        stopping = admin("stop")
        assert stopping.returncode == 0 and "its 1 running job(s) end first" in stopping.stdout, stopping.stderr
        pace_jobs(fake_mmar, 0.05)
        out, err = tool.communicate(timeout=300)
    finally:
        if tool.poll() is None:
            tool.kill()
    assert tool.returncode == 0, err[-3000:]
    view = RunView.load(run_dir)
    assert [(j.name, j.status, j.cause) for j in view.jobs.values()] == [
        ("W1_1_J1", "completed", ""), ("W2_1_J2", "stopped", "aborted by the user")]
    assert "stopped early: asked by automl stop" in view.message and (run_dir / "best").is_dir()
    assert [(d["job_id"], d["status"]) for d in journal_events(run_dir, "job_finished")][0] == (2, "stopped")
