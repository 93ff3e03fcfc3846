"""Never lose work: kill -9 the tool at many moments, resume each time, and get the run an
uninterrupted one would have produced."""
import json
import random
import signal
import time
from pathlib import Path

import pytest

from automl_cli.status import RunView
from conftest import ROOT, run_cli, run_processes, start_run, wait_for, write_json


def configure(mmar: Path, algorithm: str, recommendations: int) -> None:
    path = mmar / "config" / "config_automl.json"
    config = json.loads(path.read_text())
    config["controller"] = {"name": algorithm, "args": {"automl_max_recommendations": recommendations}}
    write_json(path, config)
    train = json.loads((mmar / "config" / "config_train.json").read_text())
    train["sleep"] = 0.4
    write_json(mmar / "config" / "config_train.json", train)


def decisions(run_dir: Path) -> list:
    view = RunView.load(run_dir)
    trials = {}
    for job in sorted(view.jobs.values(), key=lambda j: j.job_id):
        trials.setdefault(job.trial_id, job.params)
    return [trials[t] for t in sorted(trials)]


def journal_events(run_dir: Path) -> int:
    """Events in the run's journal so far (0 before it exists), read while the run writes it."""
    import sqlite3

    from automl_cli.store import JOURNAL

    path = run_dir / JOURNAL
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    except sqlite3.OperationalError:  # created but its table not yet written
        return 0


def start(mmar: Path, resume: bool):
    return start_run(mmar, "--run-id", "k", "--workers", "0", *(["--resume"] if resume else []))


@pytest.mark.slow
def test_kill_9_at_ten_moments_then_resume_gives_the_uninterrupted_run(fake_mmar, tmp_path):
    configure(fake_mmar, "bayesian", 8)
    reference = tmp_path / "reference"
    import shutil

    shutil.copytree(fake_mmar, reference)
    assert run_cli("run", "-m", str(reference), "--run-id", "k", "--workers", "0").returncode == 0
    expected = decisions(reference / "automl" / "k")

    # ten moments spread over the run, as points in its journal (so a fast machine that
    # finishes sooner still meets every one): the tool is killed as soon as the journal
    # holds that many events
    total = journal_events(reference / "automl" / "k")
    moments = sorted(random.Random(7).sample(range(3, total - 3), 10))
    kills, resume = 0, False
    for moment in moments:
        tool = start(fake_mmar, resume)
        assert wait_for(lambda: journal_events(fake_mmar / "automl" / "k") >= moment or tool.poll() is not None,
                        timeout=120)
        assert tool.poll() is None, f"the run ended before its journal reached {moment} events"
        tool.send_signal(signal.SIGKILL)
        tool.wait(timeout=60)
        kills, resume = kills + 1, True
    tool = start(fake_mmar, True)
    _, err = tool.communicate(timeout=300)
    assert tool.returncode == 0, err
    assert kills == 10

    run_dir = fake_mmar / "automl" / "k"
    view = RunView.load(run_dir)
    assert view.status == "completed"
    assert decisions(run_dir) == expected  # the same decisions as the uninterrupted run
    assert len(view.jobs) == 8 and all(j.status == "completed" for j in view.jobs.values())
    assert all(sorted(j.epochs) == [1, 2, 3] for j in view.jobs.values())
    # no attempt trained an epoch its predecessor had already checkpointed
    for folder in sorted(run_dir.glob("W*_J*")):
        _, attempt, job = folder.name.split("_")
        if attempt == "1":
            continue
        [previous] = run_dir.glob(f"W*_{int(attempt) - 1}_{job}")  # any worker may have run it
        saved = previous / "models" / "checkpoint.pt"
        done = json.loads(saved.read_text())["epoch"] if saved.exists() else 0
        log = folder / "train.log"
        trained = [int(l.split()[1]) for l in log.read_text().splitlines() if l.startswith("epoch")] if log.exists() else []
        assert not trained or trained[0] == done + 1
    # no job process outlived its tool (a killed job's last process may take a moment to go)
    assert wait_for(lambda: run_processes(run_dir) == [], timeout=30), run_processes(run_dir)


def test_resume_refuses_other_settings_and_a_missing_run(fake_mmar):
    import sqlite3

    from automl_cli.store import BACKUP, JOURNAL

    configure(fake_mmar, "random", 2)
    assert run_cli("run", "-m", str(fake_mmar), "--run-id", "s").returncode == 0
    run_dir = fake_mmar / "automl" / "s"
    published = (run_dir / "best" / "summary.json").stat().st_mtime_ns
    done = run_cli("run", "-m", str(fake_mmar), "--run-id", "s", "--resume")
    assert done.returncode == 0, done.stderr  # resuming a finished run says so and changes nothing
    assert "run 's' is already finished, nothing to resume" in done.stdout
    assert (run_dir / "best" / "summary.json").stat().st_mtime_ns == published
    # the tool died before it wrote the run's end: a resume must be the same run
    db = sqlite3.connect(run_dir / JOURNAL)
    db.execute("DELETE FROM events WHERE kind = 'run_finished'")
    db.commit()
    db.close()
    (run_dir / BACKUP).unlink()
    other = run_cli("run", "-m", str(fake_mmar), "--run-id", "s", "--resume", "--set", "seed=5")
    assert other.returncode == 2 and "its seed was 0, now 5" in other.stderr
    fresh = run_cli("run", "-m", str(fake_mmar), "--run-id", "new", "--resume")  # nothing to resume: it starts
    assert fresh.returncode == 0 and RunView.load(fake_mmar / "automl" / "new").status == "completed"
    ended = run_cli("run", "-m", str(fake_mmar), "--run-id", "s", "--resume")
    assert ended.returncode == 0, ended.stderr
    assert RunView.load(run_dir).status == "completed"


@pytest.mark.slow
def test_kill_9_during_a_real_training_then_resume_continues_from_the_checkpoint(tmp_path):
    import shutil

    mmar = tmp_path / "mmar"
    shutil.copytree(ROOT / "mmar_template", mmar, ignore=shutil.ignore_patterns("automl"))
    config = json.loads((mmar / "config" / "config_train.json").read_text())
    config["epochs"] = 4
    config["train"]["data"]["args"]["num_samples"] = 400  # epochs long enough to kill one mid-way
    write_json(mmar / "config" / "config_train.json", config)
    write_json(mmar / "config" / "config_automl.json",
               {"controller": {"name": "random", "args": {"automl_max_recommendations": 1}}})
    tool = start(mmar, resume=False)
    metrics = mmar / "automl" / "k" / "W1_1_J1" / "models" / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (metrics.exists() and metrics.read_text().strip()):
        time.sleep(0.1)
    tool.send_signal(signal.SIGKILL)
    tool.wait()
    resumed = start(mmar, resume=True)
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    view = RunView.load(mmar / "automl" / "k")
    [job] = view.jobs.values()
    assert job.name == "W1_2_J1" and job.status == "completed" and sorted(job.epochs) == [1, 2, 3, 4]
    log = (mmar / "automl" / "k" / "W1_2_J1" / "train.log").read_text()
    assert "resumed from" in log  # the second attempt continued the first one's checkpoint
