"""Stopping the tool stops its jobs: exit 130, run marked interrupted, no job process left."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from automl_cli.status import RunView
from conftest import ROOT, run_cli, write_json


def job_processes(marker: str) -> list[int]:
    """PIDs whose command line mentions `marker` (the run folder), from /proc."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                if marker.encode() in handle.read():
                    found.append(int(pid))
        except OSError:
            continue
    return found


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_to_the_tool_stops_every_job_and_exits_130(fake_mmar, sig):
    path = fake_mmar / "config" / "config_train.json"
    config = json.loads(path.read_text())
    config["sleep"] = 2.0
    write_json(path, config)
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    tool = subprocess.Popen([sys.executable, "-m", "automl_cli", "run", "-m", str(fake_mmar), "--run-id", "int",
                             "--workers", "0:1"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    run_dir = fake_mmar / "automl" / "int"
    deadline = time.time() + 60
    while time.time() < deadline and len(job_processes(str(run_dir))) < 2:
        time.sleep(0.1)
    assert len(job_processes(str(run_dir))) >= 2, "both workers should be training"
    # another shell can read the run while it goes on
    live = run_cli("status", "-m", str(fake_mmar), "--run-id", "int", "--json")
    assert live.returncode == 0, live.stderr
    assert json.loads(live.stdout)["int"]["detailed_status"]["status"] == "RUNNING"
    tool.send_signal(sig)
    out, err = tool.communicate(timeout=60)
    assert tool.returncode == 130, err
    assert "interrupted" in err
    time.sleep(0.2)
    assert job_processes(str(run_dir)) == []
    view = RunView.load(run_dir)
    assert view.status == "interrupted"
    assert [(j.status, j.cause) for j in view.jobs.values()] == [("interrupted", "run interrupted")] * 2
    assert json.loads((run_dir / "status.json").read_text())["int"]["detailed_status"]["status"] == "INTERRUPTED"
    assert "--resume" in err

    # the same command with --resume continues: the two interrupted jobs run again as attempt 2
    # from their checkpoints, then the search finishes its 4 trials
    config["sleep"] = 0.05
    write_json(path, config)
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

