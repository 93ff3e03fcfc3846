"""A full disk ends a run in one line and loses nothing: the run folder on a small tmpfs
(a real ENOSPC; mounting needs root, so these skip, saying why, where it cannot be done) and
a file size limit (a real EFBIG from the kernel, anywhere)."""
import os
import resource
import subprocess
import sys

import pytest

from automl_cli.status import RunView
from conftest import ROOT, job_processes, pace_jobs, run_cli, start_run, wait_for


@pytest.fixture
def small_disk(fake_mmar):
    """fake_mmar with its runs folder (automl/) on a 2 MB tmpfs; yields a function that fills
    it (True) or frees it (False)."""
    runs = fake_mmar / "automl"
    runs.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(runs)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill ({(mounted.stderr or 'mount failed').strip()}): needs root")
    filler = runs / "filler"

    def fill(full: bool) -> None:
        if full:
            with open(filler, "ab", buffering=0) as handle:
                try:
                    while True:
                        handle.write(b"\0" * 65536)
                except OSError:
                    pass
        else:
            filler.unlink(missing_ok=True)

    yield fill
    subprocess.run(["umount", "-l", str(runs)], capture_output=True)


def one_error_line(result) -> str:
    assert result.returncode == 1, (result.returncode, result.stdout[-2000:], result.stderr[-2000:])
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    errors = [line for line in result.stderr.splitlines() if line.strip() and "warning" not in line]
    assert len(errors) == 1, result.stderr
    return errors[0]


def test_a_disk_full_before_the_start_is_one_line_and_leaves_no_run_folder(fake_mmar, small_disk):
    small_disk(True)
    result = run_cli("run", "-m", str(fake_mmar), "--run-id", "x")
    run_dir = fake_mmar / "automl" / "x"
    assert one_error_line(result) == f"automl: error: no space left on device writing {run_dir}/journal.db"
    assert not run_dir.exists()  # no .lock, no empty journal: the same command runs once there is room
    small_disk(False)
    again = run_cli("run", "-m", str(fake_mmar), "--run-id", "x")
    assert again.returncode == 0, again.stderr
    assert RunView.load(run_dir).status == "completed"


def test_a_disk_full_mid_run_stops_the_jobs_with_their_checkpoints_and_resume_completes(fake_mmar, small_disk):
    pace_jobs(fake_mmar, [0.1, 600])  # each job checkpoints epoch 1, then stays in epoch 2
    run = start_run(fake_mmar, "--run-id", "x", "--workers", "0:0")
    run_dir = fake_mmar / "automl" / "x"
    checkpoints = [run_dir / name / "models" / "checkpoint.pt" for name in ("W1_1_J1", "W2_1_J2")]
    try:
        assert wait_for(lambda: all(c.exists() for c in checkpoints), timeout=60)
        small_disk(True)  # the run's next write (status.json within a second) finds no room
        out, err = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
    line = one_error_line(subprocess.CompletedProcess(run.args, run.returncode, out, err))
    assert line.startswith("automl: error: no space left on device writing ") and str(run_dir) in line
    assert job_processes(str(run_dir)) == []  # the jobs were stopped, none left running
    assert all('"epoch": 1' in c.read_text() for c in checkpoints)  # epoch 1's checkpoints are intact
    small_disk(False)
    pace_jobs(fake_mmar, 0.05)
    resumed = run_cli("run", "-m", str(fake_mmar), "--run-id", "x", "--workers", "0:0", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    view = RunView.load(run_dir)
    assert view.status == "completed" and len(view.jobs) == 4
    assert all(j.status == "completed" and j.epoch == 3 for j in view.jobs.values())
    # the two jobs the disk stopped continued from their epoch-1 checkpoints
    for job in (view.jobs[1], view.jobs[2]):
        assert "resume at 1" in (run_dir / job.name / "train.log").read_text()
    assert (run_dir / "best" / "summary.json").is_file()


def _with_file_size_limit(limit: int, *args: str) -> subprocess.CompletedProcess:
    """`automl ARGS` with every file it (or a job) writes limited to `limit` bytes: writes past
    it fail with EFBIG, as a full disk fails them with ENOSPC (Python ignores SIGXFSZ)."""
    def limited():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    env = dict(os.environ)
    return subprocess.run([sys.executable, "-m", "automl_cli", *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=300, preexec_fn=limited)


def test_a_file_size_limit_reached_mid_run_is_one_line_and_resume_completes(fake_mmar):
    # journal.db's write-ahead log grows by a page of 4 KB per event: 100 KB is a few jobs
    result = _with_file_size_limit(100_000, "run", "-m", str(fake_mmar), "--run-id", "x",
                                   "--set", "automl_max_recommendations=12")
    run_dir = fake_mmar / "automl" / "x"
    line = one_error_line(result)
    assert line.startswith("automl: error: file too large") and f"writing {run_dir}/" in line, line
    view = RunView.load(run_dir)
    assert view.status != "completed" and view.jobs  # it had started
    assert job_processes(str(run_dir)) == []
    resumed = run_cli("run", "-m", str(fake_mmar), "--run-id", "x", "--resume", "--set",
                      "automl_max_recommendations=12")
    assert resumed.returncode == 0, resumed.stderr
    view = RunView.load(run_dir)
    assert view.status == "completed" and len(view.jobs) == 12
