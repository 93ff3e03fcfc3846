"""No job process outlives the tool, no launch goes unjournaled, and a job that hangs is
noticed (issue 19, part 2: items 1, 2 and 8).

Jobs run tests/fake_trainer.py, directly or through a wrapper script that starts it
without `exec` (so the trainer is the first process's child, as with many cluster
wrappers). FAKE_TRAINER_LEDGER records every epoch any trainer completes, outside the job
folders, so an epoch trained twice shows even if its folder was replaced."""
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from automl_cli.status import RunView
from automl_cli.store import JOURNAL, Journal
from conftest import (FAKE_TRAINER, ROOT, live_pids, run_cli, run_processes, set_epoch_seconds, start_run, wait_for,
                      write_json)


def trainers(run_dir: Path) -> list[int]:
    """The fake trainers (python running fake_trainer.py) working in this run's folders."""
    found = []
    for pid in run_processes(run_dir):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                argv = handle.read().split(b"\0")
        except OSError:
            continue
        if len(argv) > 1 and argv[1].endswith(b"fake_trainer.py"):
            found.append(pid)
    return found


@pytest.fixture
def leftovers():
    """Run folders whose processes are SIGKILLed after the test, pass or fail."""
    run_dirs: list[Path] = []
    yield run_dirs
    for run_dir in run_dirs:
        for pid in run_processes(run_dir):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def use_wrapper(mmar: Path, tmp_path: Path, recommendations: int = 2, grace: float = 3) -> None:
    """Jobs start `bash wrap.sh {mmar} {epochs}`, which runs the trainer without exec."""
    wrapper = tmp_path / "wrap.sh"
    wrapper.write_text(f'#!/bin/bash\necho "wrapper $$"\n"{sys.executable}" "{FAKE_TRAINER}" "$@"\n'
                       'echo "wrapper: trainer ended $?"\n')
    path = mmar / "config" / "config_automl.json"
    config = json.loads(path.read_text())
    config["executor"]["args"].update(train_command=f"bash {wrapper} {{mmar}} {{epochs}}", grace_seconds=grace)
    config["controller"]["args"]["automl_max_recommendations"] = recommendations
    write_json(path, config)


def epochs_trained(ledger: Path) -> Counter:
    """(job id, epoch) -> how many times a trainer completed it."""
    if not ledger.exists():
        return Counter()
    return Counter((name.split("_J")[1], int(epoch)) for name, epoch, *_ in
                   (line.split() for line in ledger.read_text().splitlines()) if epoch.isdigit())


def events(run_dir: Path, kind: str) -> list[dict]:
    journal = Journal(run_dir / JOURNAL, readonly=True)
    try:
        return [e.data for e in journal.events() if e.kind == kind]
    finally:
        journal.close()


def finish_resumed(mmar: Path, run_id: str, *extra: str) -> subprocess.CompletedProcess:
    set_epoch_seconds(mmar, 0.05)  # new job folders (the next attempts) train fast
    result = run_cli("run", "-m", str(mmar), "--run-id", run_id, "--resume", *extra, timeout=120)
    assert result.returncode == 0, result.stderr
    return result


# -- item 1: every process of a job dies with the tool ----------------------------------
def test_a_wrapper_scripts_trainer_dies_with_the_tool_and_resume_trains_no_epoch_twice(
        fake_mmar, tmp_path, monkeypatch, leftovers):
    """Before: the trainer a wrapper started (without exec) never heard of the tool's death
    and trained on with parent 1, into the folder the resumed run copied its checkpoint from."""
    ledger = tmp_path / "ledger"
    monkeypatch.setenv("FAKE_TRAINER_LEDGER", str(ledger))
    use_wrapper(fake_mmar, tmp_path)
    set_epoch_seconds(fake_mmar, [0.05, 30])  # the trainers sit in epoch 2 when the tool dies
    run_dir = fake_mmar / "automl" / "w"
    leftovers.append(run_dir)
    tool = start_run(fake_mmar, "--run-id", "w", "--workers", "0:0")
    assert wait_for(lambda: sum(1 for _ in ledger.open()) >= 2 if ledger.exists() else False, 30)
    assert len(trainers(run_dir)) == 2
    tool.kill()
    tool.wait()
    # the supervisors stop everything at once (SIGTERM: the trainers stop between two slices)
    assert wait_for(lambda: not run_processes(run_dir), 2.0), \
        f"left running after the tool died: {run_processes(run_dir)}"
    finish_resumed(fake_mmar, "w", "--workers", "0:0")
    view = RunView.load(run_dir)
    assert view.status == "completed" and len(view.jobs) == 2
    assert all(j.status == "completed" and sorted(j.epochs) == [1, 2, 3] for j in view.jobs.values())
    trained = epochs_trained(ledger)
    assert trained and max(trained.values()) == 1, trained
    assert not run_processes(run_dir)


def test_resume_stops_a_trainer_its_dead_run_left_before_starting_the_job_again(
        fake_mmar, tmp_path, monkeypatch, leftovers):
    """The job's first process killed with the tool (as the OOM killer might): nothing was
    left to stop the wrapper's trainer, which trains on. Before: --resume checked only the
    pid it had recorded (the dead first process) and started the job again beside it."""
    ledger = tmp_path / "ledger"
    monkeypatch.setenv("FAKE_TRAINER_LEDGER", str(ledger))
    use_wrapper(fake_mmar, tmp_path, recommendations=1)
    set_epoch_seconds(fake_mmar, [0.05, 30])  # the orphan sits in epoch 2 however slow the machine
    run_dir = fake_mmar / "automl" / "o"
    leftovers.append(run_dir)
    tool = start_run(fake_mmar, "--run-id", "o")
    assert wait_for(lambda: ledger.exists() and ledger.read_text().strip(), 30)
    assert wait_for(lambda: len(events(run_dir, "job_started")) == 1 and len(trainers(run_dir)) == 1, 30)
    [started] = events(run_dir, "job_started")
    [orphan] = trainers(run_dir)
    os.kill(started["pid"], signal.SIGKILL)  # the job's first process and the tool, together
    tool.kill()
    tool.wait()
    assert wait_for(lambda: started["pid"] not in live_pids(), 30)
    assert orphan in trainers(run_dir), "the trainer should have outlived its first process"
    result = finish_resumed(fake_mmar, "o")
    assert "the previous run's jobs left running" in (run_dir / "trace.log").read_text()
    assert orphan not in trainers(run_dir)
    view = RunView.load(run_dir)
    assert [(j.name, j.status, sorted(j.epochs)) for j in view.jobs.values()] == [("W1_2_J1", "completed", [1, 2, 3])]
    trained = epochs_trained(ledger)
    assert max(trained.values()) == 1, f"epochs trained twice: {trained}"
    assert not run_processes(run_dir)


# -- item 2: no launch without a record, no child without its parent -----------------------
_DIE_AFTER_FORK = """
import os, signal, sys
from automl_cli.backends import local
started = local.LocalBackend.start
def start(self, job):  # the tool dies the moment its job's process exists, before journaling it
    placed = started(self, job)
    os.kill(os.getpid(), signal.SIGKILL)
local.LocalBackend.start = start
from automl_cli.cli import main
sys.argv = ["automl", "run", "-m", sys.argv[1], "--run-id", "u"]
main()
"""


def test_a_launch_the_tool_died_in_is_journaled_stopped_and_run_once_on_resume(fake_mmar, tmp_path, monkeypatch,
                                                                              leftovers):
    """Before: the journal had no trace of a job whose process was made just as the tool
    died; the process trained with no owner and the resumed run started the same job, in
    the same folder, again."""
    ledger = tmp_path / "ledger"
    monkeypatch.setenv("FAKE_TRAINER_LEDGER", str(ledger))
    use_wrapper(fake_mmar, tmp_path, recommendations=2)
    set_epoch_seconds(fake_mmar, 0.3)
    run_dir = fake_mmar / "automl" / "u"
    leftovers.append(run_dir)
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)
    tool = subprocess.run([sys.executable, "-c", _DIE_AFTER_FORK, str(fake_mmar)], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert tool.returncode == -signal.SIGKILL, tool.stderr
    assert [(e["job_id"], e["name"]) for e in events(run_dir, "job_launching")] == [(1, "W1_1_J1")]
    assert events(run_dir, "job_started") == []
    assert wait_for(lambda: not run_processes(run_dir), 3.0), "the unjournaled job's process outlived the tool"
    finish_resumed(fake_mmar, "u")
    view = RunView.load(run_dir)
    assert sorted((j.name, j.status) for j in view.jobs.values()) == [("W1_1_J1", "completed"),
                                                                      ("W1_1_J2", "completed")]
    trained = epochs_trained(ledger)
    assert max(trained.values()) == 1, f"epochs trained twice: {trained}"


def test_a_job_whose_tool_died_before_it_could_watch_starts_nothing(tmp_path):
    """The parent-death signal is asked for after fork: a tool that died in between is
    noticed (the parent is no longer the tool) and the command never starts."""
    from automl_cli.backends import supervise

    touched = tmp_path / "started"
    not_my_parent = os.getpid() + 1 if os.getppid() != os.getpid() + 1 else os.getpid() + 2
    result = subprocess.run([sys.executable, "-I", "-S", supervise.__file__, str(not_my_parent), "1",
                             "touch", str(touched)], capture_output=True, timeout=10)
    assert result.returncode == 0 and not touched.exists()
    # with the right parent it runs the command and ends as the command ended
    ran = subprocess.Popen([sys.executable, "-I", "-S", supervise.__file__, str(os.getpid()), "1", "sh", "-c",
                            f"touch {touched}; exit 7"])
    assert ran.wait(timeout=10) == 7 and touched.exists()
    killed = subprocess.Popen([sys.executable, "-I", "-S", supervise.__file__, str(os.getpid()), "1", "sh", "-c",
                               "kill -9 $$"])
    assert killed.wait(timeout=10) == -signal.SIGKILL


# -- item 8: a job that hangs is noticed ----------------------------------------------------
def test_a_hung_job_is_stopped_failed_with_its_reason_and_retried_once(fake_mmar, leftovers):
    """Before: a trainer that stopped reporting kept its worker forever."""
    path = fake_mmar / "config" / "config_train.json"
    config = json.loads(path.read_text())
    config["fake"]["args"]["behaviour"] = "hang"  # after epoch 1, deaf to SIGTERM: SIGKILL ends it
    write_json(path, config)
    path = fake_mmar / "config" / "config_automl.json"
    config = json.loads(path.read_text())
    config["executor"]["args"]["grace_seconds"] = 0.5
    write_json(path, config)
    run_dir = fake_mmar / "automl" / "h"
    leftovers.append(run_dir)
    result = run_cli("run", "-m", str(fake_mmar), "--run-id", "h", "--set", "automl_max_recommendations=1",
                     "--set", "automl_job_timeout=1", timeout=60)
    assert result.returncode == 1, result.stderr
    finished = events(run_dir, "job_finished")
    assert [(f["status"], f["cause"]) for f in finished] == [("retried", "no epoch for 1 s"),
                                                             ("failed", "no epoch for 1 s")]
    assert [e["reason"] for e in events(run_dir, "job_hung")] == ["no epoch for 1 s"] * 2
    trace = (run_dir / "trace.log").read_text()
    assert "W1_1_J1: no epoch for 1 s; stopping it as hung" in trace
    assert "job W1_1_J1 hung: no epoch for 1 s; retrying it from its checkpoint (attempt 2 of 2)" in trace
    assert "no epoch for 1 s" in result.stderr  # every job failed: the first one's cause
    assert not run_processes(run_dir)


def test_the_job_timeout_is_checked_and_by_default_follows_the_slowest_epoch(fake_mmar):
    from automl_cli.backends.simulated import SimulatedBackend
    from automl_cli.engine import AUTO_TIMEOUT_FLOOR, Engine, EngineSettings
    from automl_cli.algorithms import get_algorithm, load_all
    from automl_cli.space import parse_search_space
    from automl_cli.workers import Worker

    bad = run_cli("run", "-m", str(fake_mmar), "--run-id", "t", "--set", "automl_job_timeout=-1")
    assert bad.returncode == 2 and "automl_job_timeout must be a number of seconds >= 0" in bad.stderr
    load_all()
    config = {"m": {"name": "M", "args": {"lr": 0.1}, "search": [{"args": "lr", "type": "float",
                                                                  "targets": [0.001, 0.1]}]}}
    space = parse_search_space(config, Path("c.json"))
    algorithm = get_algorithm("random")(space, max_epochs=3, seed=0, params={"automl_max_recommendations": 2})
    backend = SimulatedBackend(lambda c, epoch, state: (1.0 / epoch, 120.0 if epoch == 2 else 30.0), "loss",
                               lambda values: space.apply(config, values))
    engine = Engine(EngineSettings("t", "random", space, [Worker(1, ())], "loss", "minimize", 3,
                                   job_timeout="auto"), algorithm, backend, Journal(Path(":memory:")))
    assert engine.job_timeout() == AUTO_TIMEOUT_FLOOR  # before any epoch: the floor
    engine.run()
    assert engine.job_timeout() == 10 * 120.0  # ten times the slowest epoch seen
    assert all(j.status == "completed" for j in engine.view.jobs.values())
