"""Never lose work, part 2: resume refuses what it cannot honour and asks for nothing its
journal knows; a damaged run folder is reported, never silently redone.

Runs that "died" are made by editing a finished run's journal (the events a dead tool would
not have written are deleted), which is what a kill -9 leaves, without waiting for one."""
import json
import os
import sqlite3
from pathlib import Path

from automl_cli.status import RunView
from automl_cli.store import BACKUP, JOURNAL
from conftest import run_cli, write_json


def run(mmar: Path, *args: str):
    return run_cli("run", "-m", str(mmar), *args)


def one_line(result, code: int) -> str:
    """The one error line (a warning may come before it), never a traceback."""
    assert result.returncode == code, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.strip().splitlines() if not line.startswith("automl: warning: ")]
    assert len(lines) == 1 and lines[0].startswith("automl: error: "), result.stderr
    return lines[0]


def sql(run_dir: Path, *statements: str | tuple, copy: bool = True) -> None:
    """Edit the journal as a dead run would have left it, and its copy to match."""
    db = sqlite3.connect(run_dir / JOURNAL)
    for statement in statements:
        if isinstance(statement, tuple):  # (SQL, parameters): JSON with quotes in it goes as a parameter
            db.execute(*statement)
        else:
            db.execute(statement)
    db.commit()
    if copy:
        target = sqlite3.connect(run_dir / BACKUP)
        db.backup(target)
        target.close()
    db.close()


def unfinish(run_dir: Path, job_id: int) -> None:
    """The tool died while job `job_id` ran: no end for it, nor for the run."""
    sql(run_dir, "DELETE FROM events WHERE kind = 'run_finished'",
        f"DELETE FROM events WHERE kind = 'job_finished' AND json_extract(data, '$.job_id') = {job_id}")


def kinds(run_dir: Path) -> list[str]:
    db = sqlite3.connect(run_dir / JOURNAL)
    try:
        return [k for (k,) in db.execute("SELECT kind FROM events ORDER BY seq")]
    finally:
        db.close()


def started(run_dir: Path) -> dict:
    db = sqlite3.connect(run_dir / JOURNAL)
    try:
        return json.loads(db.execute("SELECT data FROM events WHERE kind = 'run_started'").fetchone()[0])
    finally:
        db.close()


def snapshot(run_dir: Path) -> dict:
    """Every file of the run folder and its bytes (aside: SQLite's -shm index and the empty
    -wal a reader makes)."""
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in sorted(run_dir.rglob("*"))
            if p.is_file() and not p.name.endswith("-shm") and p.name != ".lock"
            and not (p.name.endswith("-wal") and p.stat().st_size == 0)}


def test_resume_alone_continues_as_started_and_refuses_a_value_or_a_space_that_changed(fake_mmar):
    first = run(fake_mmar, "--run-id", "r", "--algorithm", "random", "--workers", "0:1", "--set", "seed=4",
                "automl_max_recommendations=3", "DATA_ROOT=/x", "sleep=0.01")
    assert first.returncode == 0, first.stderr
    run_dir = fake_mmar / "automl" / "r"
    record = started(run_dir)
    assert record["invocation"]["set"] == {"seed": 4, "automl_max_recommendations": 3, "DATA_ROOT": "/x", "sleep": 0.01}
    assert record["invocation"]["workers"] == "0:1" and record["invocation"]["algorithm"] == "random"
    assert set(record["versions"]) == {"python", "automl-cli", "numpy", "scipy", "torch"}
    lr = next(p for p in record["space"] if p["name"] == "Fake.lr")
    assert lr["spec"]["low"] == 0.0001 and lr["spec"]["log"] is True
    unfinish(run_dir, 3)
    before = kinds(run_dir)

    # a value given again with another value is refused, naming it
    seed = one_line(run(fake_mmar, "--run-id", "r", "--resume", "--set", "seed=5"), 2)
    assert "cannot resume run 'r': seed was 4, now 5" in seed
    algorithm = one_line(run(fake_mmar, "--run-id", "r", "--resume", "--algorithm", "bayesian"), 2)
    assert 'algorithm was "random", now "bayesian"' in algorithm
    # a search range that moved is refused: jobs would continue old checkpoints with new values
    config_path = fake_mmar / "config" / "config_train.json"
    original = config_path.read_text()
    config = json.loads(original)
    config["fake"]["search"][0]["targets"] = [0.05, 0.1]
    write_json(config_path, config)
    space = one_line(run(fake_mmar, "--run-id", "r", "--resume"), 2)
    assert space == ("automl: error: cannot resume run 'r': the search space changed: Fake.lr range [0.0001, 0.1] -> "
                     "[0.05, 0.1]; put it back as it was, or search the new space in another run (a new --run-id)")
    config["fake"]["search"][0]["targets"] = [0.0001, 0.1]
    config["fake"]["search"][1]["targets"] = [["good"], ["bad"], ["ugly"]]
    write_json(config_path, config)
    choices = one_line(run(fake_mmar, "--run-id", "r", "--resume"), 2)
    assert 'Fake.choice choices [["good"], ["bad"]] -> [["good"], ["bad"], ["ugly"]]' in choices
    config_path.write_text(original)
    assert kinds(run_dir) == before  # nothing was written by the refusals

    # --resume alone: the algorithm, its parameters, the seed, workers and variables as started
    again = run(fake_mmar, "--run-id", "r", "--resume")
    assert again.returncode == 0, again.stderr
    view = RunView.load(run_dir)
    assert view.status == "completed" and len({j.trial_id for j in view.jobs.values()}) == 3
    relaunched = next(j for j in view.jobs.values() if j.job_id == 3)
    assert relaunched.name.endswith("_2_J3") and relaunched.status == "completed"
    job_env = json.loads((Path(relaunched.directory) / "config" / "environment.json").read_text())
    assert job_env["DATA_ROOT"] == "/x"
    db = sqlite3.connect(run_dir / JOURNAL)
    [(data,)] = db.execute("SELECT data FROM events WHERE kind = 'run_resumed'").fetchall()
    db.close()
    assert [w["name"] for w in json.loads(data)["workers"]] == ["W1", "W2"]

    # a finished run says so, exits 0 and changes nothing (best/ is not rewritten)
    after = snapshot(run_dir)
    done = run(fake_mmar, "--run-id", "r", "--resume")
    assert done.returncode == 0, done.stderr
    assert "run 'r' is already finished, nothing to resume: AutoML run is successful" in done.stdout
    assert snapshot(run_dir) == after


def test_a_journal_from_before_the_full_record_still_resumes(fake_mmar):
    assert run(fake_mmar, "--run-id", "old", "--set", "automl_max_recommendations=2", "sleep=0.01").returncode == 0
    run_dir = fake_mmar / "automl" / "old"
    record = started(run_dir)
    for key in ("invocation", "versions", "max_retries"):
        record.pop(key)
    record["space"] = [{k: v for k, v in p.items() if k != "spec"} for p in record["space"]]
    sql(run_dir, ("UPDATE events SET data = ? WHERE kind = 'run_started'", (json.dumps(record),)))
    unfinish(run_dir, 2)
    # an old journal holds no invocation: the settings are given again, as they had to be
    again = run(fake_mmar, "--run-id", "old", "--resume", "--set", "automl_max_recommendations=2", "sleep=0.01")
    assert again.returncode == 0, again.stderr
    assert RunView.load(run_dir).status == "completed"


def test_a_replay_broken_by_a_library_change_is_named_and_rebuild_continues_approximately(fake_mmar):
    assert run(fake_mmar, "--run-id", "v", "--set", "automl_max_recommendations=3", "sleep=0.01").returncode == 0
    run_dir = fake_mmar / "automl" / "v"
    record = started(run_dir)
    record["versions"]["numpy"] = "0.0.1"  # the run started under another numpy ...
    sql(run_dir, ("UPDATE events SET data = ? WHERE kind = 'run_started'", (json.dumps(record),)))
    # ... which drew another first configuration than this numpy does
    db = sqlite3.connect(run_dir / JOURNAL)
    seq, data = db.execute("SELECT seq, data FROM events WHERE kind = 'job_started' ORDER BY seq").fetchone()
    db.close()
    job = json.loads(data)
    job["params"]["Fake.lr"] = 0.0123
    sql(run_dir, ("UPDATE events SET data = ? WHERE seq = ?", (json.dumps(job), seq)))
    unfinish(run_dir, 3)
    before = kinds(run_dir)

    broken = one_line(run(fake_mmar, "--run-id", "v", "--resume"), 2)
    assert broken.startswith("automl: error: cannot resume run 'v' exactly: its journal does not replay (random now "
                             "proposes Fake.lr=")
    assert "where the run had Fake.lr=0.0123" in broken
    assert "numpy 0.0.1 -> " in broken and "continue it approximately with --resume --rebuild" in broken
    assert kinds(run_dir) == before

    rebuilt = run(fake_mmar, "--run-id", "v", "--resume", "--rebuild")
    assert rebuilt.returncode == 0, rebuilt.stderr
    view = RunView.load(run_dir)
    assert view.status == "completed"
    trials = {j.trial_id: j for j in view.jobs.values()}
    assert sorted(trials) == [1, 2, 3] and all(j.status == "completed" for j in trials.values())
    assert trials[1].params["Fake.lr"] == 0.0123 and trials[1].name == "W1_1_J1"  # kept, not rerun
    assert "continues approximately: random was rebuilt from the journal" in (run_dir / "trace.log").read_text()
    assert "run_rebuilt" in kinds(run_dir)
    assert run(fake_mmar, "--run-id", "v", "--resume").returncode == 0  # then: finished


def test_a_deleted_job_folder_is_said_and_its_job_starts_from_scratch(fake_mmar):
    assert run(fake_mmar, "--run-id", "d", "--set", "automl_max_recommendations=2", "sleep=0.01").returncode == 0
    run_dir = fake_mmar / "automl" / "d"
    unfinish(run_dir, 2)
    import shutil

    shutil.rmtree(run_dir / "W1_1_J1")  # finished: its result stands, its weights are gone
    shutil.rmtree(run_dir / "W1_1_J2")  # running when the tool died: nothing to continue from
    again = run(fake_mmar, "--run-id", "d", "--resume")
    assert again.returncode == 0, again.stderr
    trace = (run_dir / "trace.log").read_text()
    assert f"job folder {run_dir / 'W1_1_J2'} (job W1_1_J2) is missing" in trace
    assert "its result stands in the journal, its weights are lost" in trace
    assert "trial 2 has no folder left: a job that continues it starts from scratch (epoch 0)" in trace
    assert "resume at 0" in (run_dir / "W1_2_J2" / "train.log").read_text()
    view = RunView.load(run_dir)
    assert [(j.name, j.status, sorted(j.epochs)) for j in view.jobs.values()] == [
        ("W1_1_J1", "completed", [1, 2, 3]), ("W1_2_J2", "completed", [1, 2, 3])]
    summary = json.loads((run_dir / "best" / "summary.json").read_text())
    assert summary["job"] == "W1_2_J2"  # the one job whose folder holds weights
    if view.best().name == "W1_1_J1":
        assert "the best job with a folder (that of W1_1_J1 is missing)" in view.message


def test_a_truncated_journal_is_one_line_touches_nothing_and_recover_restores_its_copy(fake_mmar):
    assert run(fake_mmar, "--run-id", "t", "--set", "automl_max_recommendations=2", "sleep=0.01").returncode == 0
    run_dir = fake_mmar / "automl" / "t"
    assert (run_dir / BACKUP).is_file()
    journal = run_dir / JOURNAL
    whole = journal.read_bytes()
    # the copy as taken when job 1 ended (the journal's later events are what recover loses)
    db = sqlite3.connect(run_dir / BACKUP)
    [first_end] = db.execute("SELECT MIN(seq) FROM events WHERE kind = 'job_finished'").fetchone()
    db.execute(f"DELETE FROM events WHERE seq > {first_end}")
    db.commit()
    db.close()

    journal.write_bytes(whole[:len(whole) // 2])
    before = snapshot(run_dir)
    for args in (["status"], ["report"], ["summary"], ["run", "--resume"]):
        line = one_line(run_cli(*args, "-m", str(fake_mmar), "--run-id", "t"), 2)
        assert line.startswith(f"automl: error: the journal {journal} is damaged (")
        assert f"nothing was changed; `automl recover -m {fake_mmar} --run-id t` restores its copy of " in line
    assert snapshot(run_dir) == before

    journal.write_bytes(b"")  # truncated to nothing: never a run that starts over in the old folders
    line = one_line(run(fake_mmar, "--run-id", "t", "--resume"), 2)
    assert "it ends at event 0, but its copy journal.db.bak holds events up to" in line
    assert (run_dir / "W1_1_J2" / "models" / "checkpoint.pt").is_file() and journal.read_bytes() == b""

    recovered = run_cli("recover", "-m", str(fake_mmar), "--run-id", "t")
    assert recovered.returncode == 0, recovered.stderr
    assert f"restored {journal} from its copy journal.db.bak" in recovered.stdout
    assert "it does not know the job folder(s) W1_1_J2: --resume trains those jobs again" in recovered.stdout
    assert len(list(run_dir.glob("journal.db.damaged-*"))) == 1
    assert run_cli("status", "-m", str(fake_mmar), "--run-id", "t").returncode == 0
    intact = one_line(run_cli("recover", "-m", str(fake_mmar), "--run-id", "t"), 2)
    assert "is not damaged; nothing was changed" in intact
    again = run(fake_mmar, "--run-id", "t", "--resume")
    assert again.returncode == 0, again.stderr
    view = RunView.load(run_dir)
    assert view.status == "completed" and [j.name for j in view.jobs.values()] == ["W1_1_J1", "W1_1_J2"]
    assert os.path.getsize(run_dir / BACKUP) > 0
