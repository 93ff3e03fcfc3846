"""The SLURM backend without a cluster: option checks, the job script and sbatch's argv
(nothing a user types can run as shell), the state table, and epochs reported twice."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from automl_cli.algorithms import get_algorithm, load_all
from automl_cli.backends.base import Backend, JobExit, MetricsReport
from automl_cli.backends.slurm_script import (EXIT_FILE, SlurmOptions, is_alive, job_name, map_state, parse_time,
                                              render_script, sbatch_argv)
from automl_cli.engine import Engine, EngineSettings
from automl_cli.errors import UsageError
from automl_cli.space import parse_search_space
from automl_cli.store import Journal
from automl_cli.workers import Worker
from conftest import run_cli, write_json

load_all()

EVIL = ["$(touch PWNED_dollar)", "`touch PWNED_tick`", "a'b\"c", "x; touch PWNED_semi", "line\nbreak", "$HOME",
        "--flag=*", "%j"]


@pytest.mark.parametrize("time_text, seconds", [
    ("30", 1800), ("5:30", 330), ("2:00:00", 7200), ("1-0", 86400), ("1-2:30", 95400), ("2-03:04:05", 183845),
    ("UNLIMITED", None), ("infinite", None)])
def test_time_limits_read_as_sbatch_reads_them(time_text, seconds):
    assert parse_time(time_text) == seconds


@pytest.mark.parametrize("option, value, named", [
    ("partition", "debug; rm -rf /", "--slurm-partition"),
    ("partition", "gpu\n#SBATCH --account=other", "--slurm-partition"),
    ("account", "$(whoami)", "--slurm-account"),
    ("qos", "high qos", "--slurm-qos"),
    ("time", "1 hour", "--slurm-time"),
    ("time", "0", "--slurm-time"),
    ("time", "1:2:3:4", "--slurm-time"),
    ("mem", "16 GB", "--slurm-mem"),
    ("mem", "-1G", "--slurm-mem"),
    ("gres", "gpu:1;reboot", "--slurm-gres"),
    ("cpus", 0, "--slurm-cpus"),
    ("cpus", "4", "--slurm-cpus"),
    ("cpus", True, "--slurm-cpus"),
    ("max_jobs", -2, "--slurm-max-jobs"),
    ("signal_seconds", 70000, "--slurm-signal-seconds"),
    ("extra", ["--constraint=a100\nrm -rf /"], "--slurm-sbatch"),
    ("extra", ["--comment=two words"], "--slurm-sbatch"),
    ("extra", ["rm -rf /"], "--slurm-sbatch"),
    ("extra", ["--output=/etc/passwd"], "--slurm-sbatch"),
    ("extra", ["--signal=KILL@1"], "--slurm-sbatch"),
    ("poll_seconds", 0, "--slurm-poll-seconds"),
])
def test_a_bad_value_is_one_usage_error_naming_its_option(option, value, named):
    with pytest.raises(UsageError) as caught:
        SlurmOptions.from_dict({option: value})
    message = str(caught.value)
    assert message.startswith(f"bad {named} ") and "\n" not in message.split(":")[0]
    assert caught.value.exit_code == 2


def test_good_values_pass_and_become_sbatch_lines():
    options = SlurmOptions.from_dict({"partition": "gpu,gpu-long", "account": "proj.a-1", "qos": "normal",
                                      "time": "1-12:00:00", "gres": "gpu:a100:2", "cpus": 8, "mem": "64G",
                                      "extra": ["--constraint=a100", "--exclusive"], "max_jobs": 16})
    assert options.sbatch_lines() == [
        "#SBATCH --partition=gpu,gpu-long", "#SBATCH --account=proj.a-1", "#SBATCH --qos=normal",
        "#SBATCH --time=1-12:00:00", "#SBATCH --gres=gpu:a100:2", "#SBATCH --mem=64G", "#SBATCH --cpus-per-task=8",
        "#SBATCH --ntasks=1", "#SBATCH --constraint=a100", "#SBATCH --exclusive"]
    assert "--gres" not in "".join(SlurmOptions.from_dict({"gres": ""}).sbatch_lines())


def test_the_warning_signal_must_come_before_the_time_limit():
    with pytest.raises(UsageError, match="--slurm-signal-seconds"):
        SlurmOptions.from_dict({"time": "2", "signal_seconds": 120})
    SlurmOptions.from_dict({"time": "3", "signal_seconds": 120})


def test_unknown_options_are_refused():
    with pytest.raises(UsageError, match="unknown SLURM option"):
        SlurmOptions.from_dict({"partion": "debug"})


def test_injection_attempts_in_paths_commands_and_env_stay_literal_when_the_script_runs(tmp_path):
    # a run id, an MMAR path or a train_command can hold anything: run the rendered script
    # itself (without SLURM) and check the trainer got every value byte for byte, and no
    # command hidden in them ran
    directory = tmp_path / "run $(touch PWNED_dir) 'q' `x`"
    directory.mkdir()
    probe = tmp_path / "probe.py"
    probe.write_text("import json, os, sys\n"
                     "print('ARGV=' + json.dumps(sys.argv[1:]))\n"
                     "print('ENV=' + json.dumps({k: os.environ[k] for k in ('MMAR_ROOT', 'AUTOML_JOB_NAME')}))\n"
                     "print('CWD=' + json.dumps(os.getcwd()))\n")
    env = {"MMAR_ROOT": str(directory), "AUTOML_JOB_NAME": EVIL[0] + EVIL[3], "AUTOML_METRICS_FILE": EVIL[2],
           "PYTHONUNBUFFERED": "1", "SECRET_NOT_EXPORTED": "x"}
    script = render_script(SlurmOptions(), job_label="run/" + EVIL[1], directory=str(directory),
                           command=[sys.executable, str(probe), *EVIL], env=env)
    path = tmp_path / "job.sh"
    path.write_text(script)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    result = subprocess.run(["bash", str(path)], capture_output=True, text=True, cwd=tmp_path, env=clean, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = {line.split("=", 1)[0]: line.split("=", 1)[1] for line in result.stdout.splitlines() if "=" in line
             and line.split("=", 1)[0] in ("ARGV", "ENV", "CWD")}
    assert json.loads(lines["ARGV"]) == EVIL
    assert json.loads(lines["ENV"]) == {"MMAR_ROOT": str(directory), "AUTOML_JOB_NAME": EVIL[0] + EVIL[3]}
    assert json.loads(lines["CWD"]) == str(directory)
    assert "SECRET_NOT_EXPORTED" not in script  # only the job's own variables are written
    assert not list(tmp_path.rglob("PWNED*")) and not list(Path.cwd().glob("PWNED*"))
    assert (directory / EXIT_FILE).read_text().strip() == "0"
    assert "CUDA_VISIBLE_DEVICES=" in result.stdout  # what the job saw is in its log


def test_the_setup_snippet_runs_before_the_trainer_and_a_failing_trainer_s_code_is_kept(tmp_path):
    options = SlurmOptions(setup="export FROM_SETUP=yes\necho setup-ran")
    script = render_script(options, job_label="j", directory=str(tmp_path),
                           command=["bash", "-c", 'echo "trainer sees $FROM_SETUP"; exit 7'], env={})
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 7
    assert result.stdout.index("setup-ran") < result.stdout.index("trainer sees yes")
    assert (tmp_path / EXIT_FILE).read_text().strip() == "7"


def test_sbatch_argv_requeues_appends_and_escapes_percent():
    argv = sbatch_argv(SlurmOptions(signal_seconds=90), name="automl.r.W1_1_J1.abcd", directory="/d/100% x",
                       log_file="/d/100% x/train.log", script="/d/100% x/slurm_job.sh")
    assert argv[:2] == ["sbatch", "--parsable"]
    assert "--requeue" in argv and "--open-mode=append" in argv and "--signal=B:USR1@90" in argv
    assert "--output=/d/100%% x/train.log" in argv and "--chdir=/d/100% x" in argv
    assert argv[-1] == "/d/100% x/slurm_job.sh"
    assert not any(a.startswith("--signal") for a in sbatch_argv(SlurmOptions(signal_seconds=0), name="n",
                                                                  directory="/d", log_file="/d/l", script="/d/s"))


def test_job_names_are_safe_and_unique_per_folder():
    a = job_name("my run; $(x)", "W1_1_J1", "/runs/a/W1_1_J1")
    b = job_name("my run; $(x)", "W1_1_J1", "/runs/b/W1_1_J1")
    assert a != b and all(c.isalnum() or c in "_.-" for c in a)


@pytest.mark.parametrize("state, ours, alive", [
    ("PENDING", "queued", True), ("CONFIGURING", "queued", True), ("REQUEUED", "queued", True),
    ("REQUEUE_HOLD", "queued", True), ("SUSPENDED", "queued", True), ("RUNNING", "running", True),
    ("COMPLETING", "ending", True), ("PREEMPTED", "preempted", True), ("COMPLETED", "completed", False),
    ("FAILED", "failed", False), ("TIMEOUT", "timeout", False), ("CANCELLED", "cancelled", False),
    ("CANCELLED by 0", "cancelled", False), ("NODE_FAIL", "node_fail", False),
    ("OUT_OF_MEMORY", "out_of_memory", False), ("BOOT_FAIL", "boot_fail", False), ("DEADLINE", "deadline", False),
    ("running", "running", True), ("SOMETHING_NEW", "unknown", True)])
def test_slurm_states_map_to_ours(state, ours, alive):
    assert map_state(state) == ours
    assert is_alive(map_state(state)) is alive


class _RestartingBackend(Backend):
    """Each job reports epochs 1, 2, then (restarted from an older checkpoint) 1, 2 again, then 3."""

    def __init__(self):
        self.queue = []
        self.live = set()

    def start(self, job):
        self.live.add(job.job_id)
        self.queue += [MetricsReport(job.job_id, {"epoch": e, "val": 0.1 * e + 0.01 * job.job_id})
                       for e in (1, 2, 1, 2, 3)]
        self.queue.append(JobExit(job.job_id, 0))
        return {"dir": ""}

    def poll(self):
        events, self.queue = self.queue, []
        for event in events:
            if isinstance(event, JobExit):
                self.live.discard(event.job_id)
        return events

    def stop(self, job_id):
        pass

    def stop_all(self):
        return self.poll()

    def running(self):
        return list(self.live)

    def idle(self, seconds):
        pass


def test_epochs_reported_again_after_a_restart_count_once(tmp_path):
    space = parse_search_space({"m": {"name": "M", "args": {"lr": 0.1}, "search": [
        {"args": "lr", "type": "float", "targets": [1e-4, 1e-1]}]}}, Path("c.json"))
    algo = get_algorithm("random")(space, max_epochs=3, seed=0, params={"automl_max_recommendations": 2})
    heard = []
    original = algo.on_metrics

    def on_metrics(trial_id, job_id, epoch, loss):
        heard.append((job_id, epoch))
        return original(trial_id, job_id, epoch, loss)

    algo.on_metrics = on_metrics
    journal = Journal(tmp_path / "journal.db")
    settings = EngineSettings("r", "random", space, [Worker(1, ()), Worker(2, ())], "val", "maximize", 3)
    Engine(settings, algo, _RestartingBackend(), journal).run()
    assert sorted(heard) == [(1, 1), (1, 2), (1, 3), (2, 1), (2, 2), (2, 3)]
    epochs = [(e.data["job_id"], e.data["epoch"]) for e in journal.events() if e.kind == "metrics"]
    assert sorted(epochs) == sorted(heard)


def test_cli_rejects_bad_slurm_values_with_exit_code_2_before_anything_starts(fake_mmar):
    result = run_cli("run", "-m", str(fake_mmar), "--run-id", "x", "--backend", "slurm",
                     "--slurm-partition", "debug;touch /tmp/PWNED")
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "automl: error: bad --slurm-partition 'debug;touch /tmp/PWNED': expected a SLURM name (letters, digits, "
        "_ . -; comma-separated for several)"]
    assert not (fake_mmar / "automl" / "x").exists()
    local = run_cli("run", "-m", str(fake_mmar), "--run-id", "x", "--slurm-time", "10")
    assert local.returncode == 2 and "need --backend slurm" in local.stderr


def test_slurm_executor_args_in_config_are_checked_and_name_the_file(fake_mmar):
    path = fake_mmar / "config" / "config_automl.json"
    config = json.loads(path.read_text())
    config["executor"] = {"name": "SlurmExecutor", "args": {**config["executor"]["args"], "mem": "lots"}}
    write_json(path, config)
    result = run_cli("run", "-m", str(fake_mmar), "--run-id", "x")
    assert result.returncode == 2
    assert "config_automl.json: $.executor.args: bad executor.args.mem 'lots'" in result.stderr


def test_without_the_slurm_commands_the_slurm_backend_is_a_usage_error(fake_mmar, tmp_path):
    result = run_cli("run", "-m", str(fake_mmar), "--run-id", "x", "--backend", "slurm",
                     env={"PATH": str(tmp_path)})
    assert result.returncode == 2, result.stderr
    assert "missing: sbatch, squeue, scontrol, scancel" in result.stderr
    assert not (fake_mmar / "automl" / "x").exists()


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch):
    """sbatch/squeue/scontrol/scancel stand-ins on PATH: squeue prints states.txt, scontrol
    the job's line of show.txt, sbatch hands out ids from 101, scancel logs its arguments."""
    bin_dir, state = tmp_path / "fakebin", tmp_path / "fakeslurm"
    bin_dir.mkdir()
    state.mkdir()
    scripts = {
        "sbatch": 'n=$(cat "$S/next" 2>/dev/null || echo 101); echo $((n + 1)) > "$S/next"; echo "$@" >> "$S/sbatch.log"; echo "$n"',
        "squeue": 'cat "$S/states.txt" 2>/dev/null; true',
        "scontrol": 'grep "^JobId=$4 " "$S/show.txt" 2>/dev/null; true',
        "scancel": 'echo "$@" >> "$S/scancel.log"',
    }
    for name, body in scripts.items():
        path = bin_dir / name
        path.write_text(f"#!/bin/bash\nS={state}\n{body}\n")
        path.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return state


def _backend(tmp_path, traced):
    from automl_cli.backends.base import Job, JobSpec
    from automl_cli.backends.slurm import SlurmBackend

    class Folders:
        def job_dir(self, job):
            return tmp_path / "run" / job.name

        def prepare(self, job):
            directory = self.job_dir(job)
            (directory / "models").mkdir(parents=True)
            return self.adopt(job)

        def adopt(self, job):
            directory = self.job_dir(job)
            return JobSpec(job.job_id, job.name, directory, ["true"], {}, directory / "train.log",
                           directory / "models" / "metrics.jsonl")

    backend = SlurmBackend(Folders(), SlurmOptions(poll_seconds=0.1), "run",
                           trace=lambda message, **kw: traced.append(message))
    jobs = [Job(i, f"W{i}_1_J{i}", i, Worker(i, ()), {}, 0, 2) for i in (1, 2, 3, 4)]
    return backend, jobs


def _poll(backend, state, lines, show=""):
    (state / "states.txt").write_text("".join(line + "\n" for line in lines))
    (state / "show.txt").write_text(show)
    backend.last_query = 0.0
    return backend.poll()


def test_slurm_states_reach_the_engine_as_exits_with_the_trainer_s_code_or_slurm_s(fake_slurm, tmp_path):
    traced = []
    backend, jobs = _backend(tmp_path, traced)
    ids = [backend.start(job)["slurm_job_id"] for job in jobs]
    assert ids == ["101", "102", "103", "104"]
    assert "--requeue" in (fake_slurm / "sbatch.log").read_text()
    running = [f"{i}|RUNNING|None" for i in ids]
    assert _poll(backend, fake_slurm, running) == []
    # a requeue: back to PENDING, then RUNNING again, with the restart count in the trace
    assert _poll(backend, fake_slurm, ["101|PENDING|BeginTime", *running[1:]]) == []
    assert _poll(backend, fake_slurm, running, show="JobId=101 JobState=RUNNING Restarts=1 ExitCode=0:0") == []
    assert any("requeued" in t for t in traced) and any("SLURM_RESTART_COUNT=1" in t for t in traced)
    # epochs the job writes come as metrics before its exit
    (tmp_path / "run" / "W1_1_J1" / "models" / "metrics.jsonl").write_text('{"epoch": 1}\n{"epoch": 2}\n')
    (tmp_path / "run" / "W3_1_J3" / "slurm_exit").write_text("3\n")
    events = _poll(backend, fake_slurm, ["101|COMPLETED|None", "102|TIMEOUT|TimeLimit", "103|FAILED|NonZeroExitCode",
                                         "104|RUNNING|None"], show="JobId=102 ExitCode=0:15 Restarts=0")
    assert [e.values["epoch"] for e in events if isinstance(e, MetricsReport)] == [1, 2]
    exits = {e.job_id: e for e in events if isinstance(e, JobExit)}
    assert exits[1].returncode == 0
    assert exits[2].returncode == -15 and exits[2].log_tail[-1] == \
        "automl-slurm: SLURM job 102 ended TIMEOUT (TimeLimit)"
    assert exits[3].returncode == 3  # the trainer's own status, from the job folder
    assert backend.running() == [4]
    # the tool's own cancel is a stop; a job gone from squeue ends with the status it left
    backend.stop(4)
    assert (fake_slurm / "scancel.log").read_text().split() == ["104"]
    events = _poll(backend, fake_slurm, ["104|CANCELLED|None"])
    assert [(e.returncode, e.stop_requested) for e in events] == [(-15, True)]


def test_preempted_waits_for_the_requeue_and_a_vanished_job_is_not_ended_at_once(fake_slurm, tmp_path,
                                                                                  monkeypatch):
    import automl_cli.backends.slurm as slurm_module

    backend, jobs = _backend(tmp_path, [])
    backend.start(jobs[0])
    backend.start(jobs[1])
    assert _poll(backend, fake_slurm, ["101|PREEMPTED|None", "102|RUNNING|None"]) == []
    assert _poll(backend, fake_slurm, ["101|PENDING|BeginTime"]) == []  # 102 missing once: not ended yet
    monkeypatch.setattr(slurm_module, "_PREEMPTED_GRACE", 0.0)  # a PreemptMode=CANCEL cluster
    events = _poll(backend, fake_slurm, ["101|PREEMPTED|None"])
    assert [(e.job_id, e.returncode != 0) for e in events] == [(1, True)]
    (tmp_path / "run" / "W2_1_J2" / "slurm_exit").write_text("0\n")
    events = _poll(backend, fake_slurm, [])
    assert [(e.job_id, e.returncode) for e in events] == [(2, 0)]
