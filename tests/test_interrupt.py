"""Stopping the tool stops its jobs: exit 130, run marked interrupted, no job process left."""
import json
import signal
from pathlib import Path

import pytest

from automl_cli.status import RunView
from conftest import job_processes, run_cli, run_processes, set_epoch_seconds, start_run, wait_for


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_to_the_tool_stops_every_job_and_exits_130(fake_mmar, sig):
    set_epoch_seconds(fake_mmar, 5.0)  # still training after a status call on a loaded machine
    tool = start_run(fake_mmar, "--run-id", "int", "--workers", "0:1")
    run_dir = fake_mmar / "automl" / "int"
    assert wait_for(lambda: len(job_processes(str(run_dir))) >= 2), "both workers should be training"
    # another shell can read the run while it goes on
    live = run_cli("status", "-m", str(fake_mmar), "--run-id", "int", "--json")
    assert live.returncode == 0, live.stderr
    assert json.loads(live.stdout)["int"]["detailed_status"]["status"] == "RUNNING"
    tool.send_signal(sig)
    out, err = tool.communicate(timeout=60)
    assert tool.returncode == 130, err
    assert "interrupted" in err
    assert wait_for(lambda: run_processes(run_dir) == [], timeout=30), run_processes(run_dir)
    view = RunView.load(run_dir)
    assert view.status == "interrupted"
    assert [(j.status, j.cause) for j in view.jobs.values()] == [("interrupted", "run interrupted")] * 2
    assert json.loads((run_dir / "status.json").read_text())["int"]["detailed_status"]["status"] == "INTERRUPTED"
    assert "--resume" in err

    # the same command with --resume continues: the two interrupted jobs run again as attempt 2
    # from their checkpoints, then the search finishes its 4 trials
    set_epoch_seconds(fake_mmar, 0.05)
    again = run_cli("run", "-m", str(fake_mmar), "--run-id", "int", "--workers", "0:1", "--resume")
    assert again.returncode == 0, again.stderr
    view = RunView.load(run_dir)
    assert view.status == "completed"
    assert sorted(j.name.split("_")[1] for j in view.jobs.values()) == ["1", "1", "2", "2"]
    assert all(j.status == "completed" and sorted(j.epochs) == [1, 2, 3] for j in view.jobs.values())
    for job in view.jobs.values():
        if job.name.split("_")[1] == "2":  # trained only past the first attempt's checkpoint
            [first_attempt] = run_dir.glob(f"W*_1_J{job.job_id}")
            saved = first_attempt / "models" / "checkpoint.pt"
            done = json.loads(saved.read_text())["epoch"] if saved.exists() else 0
            trained = [int(line.split()[1]) for line in (Path(job.directory) / "train.log").read_text().splitlines()
                       if line.startswith("epoch")]
            assert trained == list(range(done + 1, 4))

