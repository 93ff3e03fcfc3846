"""Finding runs (issue #20 item 4): `automl runs`, `--run-id latest`, -m defaulting to the
current MMAR, an unknown run id listing the runs there are, and `automl --help`'s lines."""
import json
import re

import pytest

from conftest import run_cli

FAST = ("--workers", "0", "--set", "automl_max_recommendations=2")


def _run(mmar, run_id: str, *more: str):
    result = run_cli("run", "-m", str(mmar), "--run-id", run_id, *FAST, *more)
    assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def three_runs(fake_mmar):
    for run_id in ("first", "second", "third"):
        _run(fake_mmar, run_id)
    return fake_mmar


def test_runs_lists_every_run_newest_first(three_runs):
    result = run_cli("runs", "-m", str(three_runs))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert f"runs of {three_runs.resolve()}, newest first" in lines[0]
    cells = [[cell.strip() for cell in re.split("[│┃]", line)[1:-1]] for line in lines if line and line[0] in "│┃"]
    assert cells[0] == ["run", "algorithm", "status", "jobs", "best", "started", "duration"]
    assert [row[0] for row in cells[1:]] == ["third", "second", "first"]
    for row in cells[1:]:
        assert row[1:4] == ["random", "completed", "2 completed of 2"]
        assert re.fullmatch(r"0\.\d{4} W\d_1_J\d", row[4]) and re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", row[5])
        assert re.fullmatch(r"\d+:\d\d", row[6])


def test_runs_json(three_runs):
    result = run_cli("runs", "-m", str(three_runs), "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [row["run_id"] for row in rows] == ["third", "second", "first"]
    newest = rows[0]
    assert newest["algorithm"] == "random" and newest["status"] == "completed"
    assert newest["jobs"] == {"completed": 2} and newest["planned_jobs"] == 2
    assert newest["metric"] == "val_mean_dice" and isinstance(newest["best"]["value"], float)
    assert newest["folder"] == str(three_runs.resolve() / "automl" / "third")
    assert newest["started"] <= newest["ended"] and newest["seconds"] >= 0
    assert rows[1]["started"] <= newest["started"]


def test_runs_of_an_mmar_without_runs(fake_mmar):
    result = run_cli("runs", "-m", str(fake_mmar))
    assert result.returncode == 0 and "no runs yet in" in result.stdout
    assert json.loads(run_cli("runs", "-m", str(fake_mmar), "--json").stdout) == []


def test_run_id_latest_is_the_newest_run(three_runs):
    run = ["-m", str(three_runs), "--run-id", "latest"]
    status = run_cli("status", *run, "--json")
    assert status.returncode == 0, status.stderr
    assert list(json.loads(status.stdout))[0] == "third"
    summary = run_cli("summary", *run)
    assert summary.returncode == 0 and "jobs of run third" in summary.stdout
    workers = run_cli("workers", *run)
    assert workers.returncode == 0 and "run third: completed" in workers.stdout
    report = run_cli("report", *run)
    assert report.returncode == 0 and str(three_runs.resolve() / "automl" / "third" / "report.html") in report.stdout
    stop = run_cli("stop", *run)
    assert stop.returncode == 1 and "'third'" in stop.stderr  # a finished run: named by its own id


def test_latest_with_no_runs_says_so(fake_mmar):
    result = run_cli("status", "-m", str(fake_mmar), "--run-id", "latest")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"automl: error: no runs yet in {fake_mmar.resolve() / 'automl'}"]


def test_an_unknown_run_id_lists_the_runs(three_runs):
    for command in ("status", "summary", "workers", "report"):
        result = run_cli(command, "-m", str(three_runs), "--run-id", "nope")
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, lines
        assert lines[0] == (f"automl: error: no run 'nope' in {three_runs.resolve() / 'automl'}; runs there, newest "
                            "first: third, second, first (automl runs lists them)")


def test_mmar_defaults_to_the_current_folder(fake_mmar, tmp_path):
    # as Clara's users type it, from inside the MMAR
    result = run_cli("run", "--run-id", "test1", *FAST, cwd=fake_mmar)
    assert result.returncode == 0, result.stderr
    assert (fake_mmar / "automl" / "test1" / "best").is_dir()
    listed = run_cli("runs", "--json", cwd=fake_mmar)
    assert listed.returncode == 0, listed.stderr
    assert [row["run_id"] for row in json.loads(listed.stdout)] == ["test1"]
    for command in ("status", "summary", "workers"):
        shown = run_cli(command, "--run-id", "latest", cwd=fake_mmar)
        assert shown.returncode == 0 and "test1" in shown.stdout, shown.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for args in (["runs"], ["status", "--run-id", "test1"], ["run", "--run-id", "x", "--workers", "0"]):
        result = run_cli(*args, cwd=elsewhere)
        assert result.returncode == 2
        assert result.stderr.strip().splitlines() == [
            f"automl: error: no -m MMAR given and the current folder {elsewhere} is not an MMAR "
            "(no config/config_train.json)"], args


def test_help_shows_each_commands_first_sentence_whole():
    result = run_cli("--help")
    assert result.returncode == 0, result.stderr
    listed = " ".join(result.stdout.split("Commands:")[1].split())
    for line in ("suspend Give WORKER (e.g. W2) no new job; the job it runs now goes on.",
                 "runs List every run of the MMAR, newest first: algorithm, status, jobs, best score, start and "
                 "duration.",
                 "stop Finish the search gracefully: no new jobs, the running ones end, best/ is published and the "
                 "run exits 0; `automl run ... --resume` continues it later.",
                 "abort Stop the job a worker runs (W1) or a job by name (W1_1_J7): it ends as stopped, scored on "
                 "the epochs it reported, and the search goes on.",
                 "plan Show the schedule, the number of jobs and epochs, and an estimated wall time (saying what it "
                 "assumed: workers, seconds per epoch, start-up per job).",
                 "dashboard Serve the runs' report pages live in a browser, refreshed from the journals while they "
                 "run (read-only; Ctrl-C stops it)."):
        assert line in listed
    assert "..." not in listed.replace("automl run ...", "")  # nothing cut


def test_runs_says_which_runs_were_killed_and_which_are_damaged(fake_mmar):
    from automl_cli.store import Journal

    _run(fake_mmar, "done")
    killed = fake_mmar / "automl" / "killed"  # a journal that says running, and no `automl run` holding the folder
    killed.mkdir()
    journal = Journal(killed / "journal.db")
    journal.append("run_started", run_id="killed", algorithm="random", metric="val_mean_dice", direction="maximize",
                   workers=[{"name": "W1", "gpus": []}], planned_jobs=4)
    journal.close()
    damaged = fake_mmar / "automl" / "damaged"
    damaged.mkdir()
    (damaged / "journal.db").write_text("not a journal")
    result = run_cli("runs", "-m", str(fake_mmar), "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["run_id"]: row for row in json.loads(result.stdout)}
    assert rows["done"]["status"] == "completed"
    assert rows["killed"]["status"] == "interrupted" and rows["killed"]["seconds"] is None
    assert rows["killed"]["jobs"] == {} and rows["killed"]["planned_jobs"] == 4
    assert rows["damaged"]["status"] == "damaged" and rows["damaged"]["algorithm"] is None
