"""`--set VAR=VALUE` for a {VAR} of the training config reaches every job and best/, and a
resumed run must be given the same; best/ holds only the config the job trained with."""
import json

from conftest import run_cli, write_json


def test_set_variables_reach_jobs_and_best_and_bind_a_resume(fake_mmar):
    config_path = fake_mmar / "config" / "config_train.json"
    config = json.loads(config_path.read_text())
    config["fake"]["args"]["data"] = "{DATA_ROOT}/x"
    write_json(config_path, config)
    write_json(fake_mmar / "config" / "other_train.json", config)  # another config: not copied to best/
    result = run_cli("run", "-m", str(fake_mmar), "--set", "run_id=v", "DATA_ROOT=/elsewhere", "sleep=0.01",
                     "automl_max_recommendations=2")
    assert result.returncode == 0, result.stderr
    run_dir = fake_mmar / "automl" / "v"
    job = next(run_dir.glob("W1_1_J*"))
    assert json.loads((job / "config" / "environment.json").read_text())["DATA_ROOT"] == "/elsewhere"
    assert json.loads((job / "config" / "config_train.json").read_text())["sleep"] == 0.01  # a top-level key
    assert [p.name for p in (run_dir / "best" / "config").iterdir()] == ["config_train.json"]
    best = json.loads((run_dir / "best" / "config" / "config_train.json").read_text())
    assert best["fake"]["args"]["data"] == "/elsewhere/x" and "search" not in best["fake"]
    import sqlite3

    from automl_cli.store import BACKUP, JOURNAL

    db = sqlite3.connect(run_dir / JOURNAL)  # as if the tool died before the run's end
    db.execute("DELETE FROM events WHERE kind = 'run_finished'")
    db.commit()
    db.close()
    (run_dir / BACKUP).unlink()
    again = run_cli("run", "-m", str(fake_mmar), "--set", "run_id=v", "DATA_ROOT=/other", "sleep=0.01",
                    "automl_max_recommendations=2", "--resume")
    assert again.returncode == 2 and 'DATA_ROOT was "/elsewhere", now "/other"' in again.stderr, again.stderr


def test_set_of_a_searched_variable_is_refused(fake_mmar):
    config_path = fake_mmar / "config" / "config_train.json"
    config = json.loads(config_path.read_text())
    config["rate"] = 0.1
    config["search"] = [{"domain": "lr", "type": "float", "args": ["rate"], "targets": [0.01, 0.5]}]
    write_json(config_path, config)
    result = run_cli("run", "-m", str(fake_mmar), "--set", "run_id=v", "rate=0.2")
    assert result.returncode == 2 and "rate is searched" in result.stderr, result.stderr
    assert not (fake_mmar / "automl").exists()
