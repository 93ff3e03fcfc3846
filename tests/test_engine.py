"""The engine, the journal and the outputs, driven through the real CLI with a stand-in
trainer (tests/fake_trainer.py) so each run takes seconds."""
import json
import os
from pathlib import Path

import pytest

from automl_cli.status import RunView
from conftest import run_cli, set_epoch_seconds, start_run, wait_for, write_json


def set_behaviour(mmar: Path, behaviour_choices):
    """Search `behaviour` too, so some jobs crash or report NaN."""
    path = mmar / "config" / "config_train.json"
    config = json.loads(path.read_text())
    config["fake"]["search"].append({"domain": "test", "type": "enum", "args": ["behaviour"],
                                     "targets": [[b] for b in behaviour_choices]})
    write_json(path, config)


def test_run_with_two_workers_writes_jobs_journal_status_trace_and_best(fake_mmar):
    result = run_cli("run", "-m", str(fake_mmar), "--set", "run_id=r1", "workers=0:1")
    assert result.returncode == 0, result.stderr
    assert "no GPU visible: running 2 CPU worker(s)" in result.stderr
    run_dir = fake_mmar / "automl" / "r1"
    jobs = sorted(p.name for p in run_dir.iterdir() if p.name.startswith("W"))
    assert len(jobs) == 4
    assert {j.split("_J")[1] for j in jobs} == {"1", "2", "3", "4"}  # global job numbers
    assert all(j.split("_")[0] in ("W1", "W2") and j.split("_")[1] == "1" for j in jobs)

    view = RunView.load(run_dir)
    assert view.status == "completed"
    assert [j.status for j in view.jobs.values()] == ["completed"] * 4
    for job in view.jobs.values():
        # each job's config holds exactly its recommendation, search sections resolved
        config = json.loads((Path(job.directory) / "config" / "config_train.json").read_text())
        assert config["fake"]["args"]["lr"] == job.params["Fake.lr"]
        assert [config["fake"]["args"]["choice"]] == job.params["Fake.choice"]
        assert "search" not in config["fake"]
        assert sorted(job.epochs) == [1, 2, 3]
        # data is linked, not copied
        assert (Path(job.directory) / "resources").is_symlink()
        assert not (Path(job.directory) / "automl").exists()

    best = view.best()
    summary = json.loads((run_dir / "best" / "summary.json").read_text())
    assert summary["job"] == best.name and summary["value"] == pytest.approx(best.metric)
    assert max(j.metric for j in view.jobs.values()) == pytest.approx(best.metric)
    assert json.loads((run_dir / "best" / "models" / "model.pt").read_text())["value"] == pytest.approx(best.metric)
    assert "search" not in json.loads((run_dir / "best" / "config" / "config_train.json").read_text())["fake"]

    status = json.loads((run_dir / "status.json").read_text())
    assert status["r1"]["detailed_status"]["status"] == "SUCCESS"
    entry = status[best.name]
    assert entry["epoch"] == 3 and entry["max_epoch"] == 3 and entry["detailed_status"]["status"] == "SUCCESS"
    assert {k["metric"] for k in entry["kpi"]} == {"train_loss", "val_mean_dice"}
    assert entry["time_per_epoch"] is not None and entry["eta"] == "0:00:00"

    trace = (run_dir / "trace.log").read_text()
    assert "run r1 started: algorithm random" in trace and "search Fake.lr (lr, float)" in trace
    assert trace.count("started on W") == 4 and "AutoML run is successful" in trace
    assert "leaderboard of run r1" in result.stdout

    shown = run_cli("status", "-m", str(fake_mmar), "--run-id", "r1")
    assert shown.returncode == 0 and f"best val_mean_dice {best.metric:.4f} from {best.name}" in shown.stdout
    as_json = json.loads(run_cli("status", "-m", str(fake_mmar), "--run-id", "r1", "--json").stdout)
    assert as_json == status


def test_existing_run_id_is_refused_and_nothing_is_touched(fake_mmar):
    assert run_cli("run", "-m", str(fake_mmar), "--run-id", "same", "--set", "automl_max_recommendations=1").returncode == 0
    before = sorted(p.name for p in (fake_mmar / "automl" / "same").iterdir())
    again = run_cli("run", "-m", str(fake_mmar), "--run-id", "same")
    assert again.returncode == 2
    assert "run 'same' already exists" in again.stderr
    assert sorted(p.name for p in (fake_mmar / "automl" / "same").iterdir()) == before


def test_crashing_and_nan_jobs_are_recorded_with_their_cause_and_the_search_goes_on(fake_mmar):
    set_behaviour(fake_mmar, ["ok", "crash", "nan"])
    result = run_cli("run", "-m", str(fake_mmar), "--run-id", "f", "--workers", "0:1",
                     "--set", "automl_max_recommendations=9", "seed=1")
    assert result.returncode == 0, result.stderr
    view = RunView.load(fake_mmar / "automl" / "f")
    causes = {j.params["Fake.behaviour"][0]: (j.status, j.cause) for j in view.jobs.values()}
    assert causes["crash"][0] == "failed" and "exit code 1" in causes["crash"][1]
    assert "CUDA out of memory" in causes["crash"][1]
    assert causes["nan"] == ("failed", "val_mean_dice is not a finite number (null) at epoch 2")
    attempts = {j.params["Fake.behaviour"][0]: j.name.split("_")[1] for j in view.jobs.values()}
    assert attempts["crash"] == "2" and attempts["nan"] == "1"  # crashes are retried, NaN is not
    assert view.best().params["Fake.behaviour"] == ["ok"]
    assert len(view.jobs) == 9


def test_every_job_failing_exits_1_and_points_at_the_first_log_after_retrying_crashes(fake_mmar):
    set_behaviour(fake_mmar, ["crash"])
    result = run_cli("run", "-m", str(fake_mmar), "--run-id", "allfail", "--set", "automl_max_recommendations=2")
    assert result.returncode == 1
    # each crash was retried once from its checkpoint (automl_max_retries defaults to 1)
    assert "every job failed; the first: W1_2_J1: exit code 1" in result.stderr
    assert "W1_2_J1/train.log" in result.stderr
    trace = (fake_mmar / "automl" / "allfail" / "trace.log").read_text()
    assert "job W1_1_J1 crashed: exit code 1" in trace and "(attempt 2 of 2)" in trace
    assert "resume at 1" in (fake_mmar / "automl" / "allfail" / "W1_2_J1" / "train.log").read_text()
    assert RunView.load(fake_mmar / "automl" / "allfail").status == "failed"


@pytest.mark.parametrize("args, message", [
    (["--workers", "0,,1"], "bad worker spec '0,,1'"),
    (["--algorithm", "nope"], "unknown algorithm 'nope'"),
    (["--set", "automl_R=3"], "algorithm 'random' has no parameter 'automl_R'"),
    (["--set", "=x"], "bad --set item '=x'"),  # a bare word is ignored with a warning (test_bad_input.py)
    (["--set", "traceout=loud"], "bad traceout 'loud'"),
])
def test_bad_command_lines_are_one_line_usage_errors(fake_mmar, args, message):
    base = [] if any(a.startswith("run_id") for a in args) else ["--run-id", "x"]
    result = run_cli("run", "-m", str(fake_mmar), *base, *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (fake_mmar / "automl" / "x").exists()


@pytest.mark.parametrize("file, content, message", [
    ("config_train.json", '{"epochs": 3,', "config_train.json: $: invalid JSON at line 1 column 14"),
    ("config_automl.json", '{"direction": "up"}',
     'config_automl.json: $.direction: expected one of "maximize", "minimize", got "up"'),
    ("config_automl.json", '{"controller": {"args": {}}}',
     'config_automl.json: $.controller: expected exactly one of "name" or "path"'),
    ("environment.json", '{"DATA_ROOT": ["a"]}', "environment.json: $.DATA_ROOT: expected string or number or boolean"),
    ("config_train.json", '{"epochs": "{EPOCHS}", "fake": {"name": "F", "args": {"lr": 1}, "search": '
                          '[{"type": "float", "args": "lr", "targets": [0, 1]}]}}',
     "config_train.json: $.epochs: unknown variable {EPOCHS}"),
    ("config_train.json", '{"epochs": 0, "fake": {"name": "F", "args": {"lr": 1}, "search": '
                          '[{"type": "float", "args": "lr", "targets": [0, 1]}]}}',
     "config_train.json: $.epochs:"),
    ("config_train.json", '{"epochs": 3, "fake": {"name": "F", "args": {"lr": 1}}}',
     'config_train.json: $: nothing to search'),
])
def test_broken_config_files_name_file_and_json_path_and_start_nothing(fake_mmar, file, content, message):
    (fake_mmar / "config" / file).write_text(content)
    for command in (["run", "-m", str(fake_mmar), "--run-id", "x"], ["validate", "-m", str(fake_mmar)]):
        result = run_cli(*command)
        assert result.returncode == 2, result.stderr
        assert message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert not (fake_mmar / "automl").exists()


def test_validate_prints_the_search_space(fake_mmar):
    result = run_cli("validate", "-m", str(fake_mmar))
    assert result.returncode == 0, result.stderr
    assert "Fake.lr" in result.stdout and "[0.0001, 0.1] log" in result.stdout
    assert "Fake.choice" in result.stdout and '"good" | "bad"' in result.stdout
    assert "algorithm random" in result.stdout and "configs are valid" in result.stdout


def test_environment_and_own_keys_are_substituted(fake_mmar, tmp_path):
    from automl_cli.mmar import MMAR

    path = fake_mmar / "config" / "config_train.json"
    config = json.loads(path.read_text())
    config.update({"learning_rate": 0.02, "data": "{DATA_ROOT}/x.nii", "rate": "{learning_rate}"})
    write_json(path, config)
    resolved, _ = MMAR.open(fake_mmar).load_train_config()
    assert resolved["data"] == f"{fake_mmar}/resources/x.nii"
    assert resolved["rate"] == 0.02


def test_trainconf_automlconf_and_yaml_configs_are_honoured(fake_mmar):
    import yaml

    config = json.loads((fake_mmar / "config" / "config_train.json").read_text())
    config["fake"]["search"] = config["fake"]["search"][:1]  # only the learning rate
    write_json(fake_mmar / "config" / "config_train_for_automl.json", config)
    automl = json.loads((fake_mmar / "config" / "config_automl.json").read_text())
    automl["controller"]["args"]["automl_max_recommendations"] = 2
    (fake_mmar / "config" / "my_automl.yaml").write_text(yaml.safe_dump(automl))
    result = run_cli("run", "-m", str(fake_mmar), "--automlconf", "my_automl.yaml",
                     "--set", "run_id=custom", "trainconf=config_train_for_automl.json")
    assert result.returncode == 0, result.stderr
    assert "config_train_for_automl.json, my_automl.yaml" in result.stdout
    view = RunView.load(fake_mmar / "automl" / "custom")
    assert len(view.jobs) == 2
    assert all(set(j.params) == {"Fake.lr"} for j in view.jobs.values())


def test_status_watch_follows_a_run_until_it_ends(fake_mmar):
    set_epoch_seconds(fake_mmar, 0.3)
    run = start_run(fake_mmar, "--run-id", "w")
    assert wait_for(lambda: (fake_mmar / "automl" / "w" / "journal.db").exists())
    watched = run_cli("status", "-m", str(fake_mmar), "--run-id", "w", "--watch", "--interval", "0.5")
    run.communicate(timeout=120)
    assert watched.returncode == 0, watched.stderr
    lines = [l for l in watched.stdout.splitlines() if l.startswith("run w:")]
    assert len(lines) >= 2 and "running" in lines[0] and lines[-1].startswith("run w: completed")
    assert "\x1b[" not in watched.stdout  # no control codes when stdout is not a terminal


def test_report_is_one_self_contained_html_file_with_a_leaderboard_csv(fake_mmar):
    import csv
    from html.parser import HTMLParser

    assert run_cli("run", "-m", str(fake_mmar), "--run-id", "rep", "--workers", "0:1",
                   "--set", "automl_max_recommendations=6").returncode == 0
    result = run_cli("report", "-m", str(fake_mmar), "--run-id", "rep")
    assert result.returncode == 0, result.stderr
    page = (fake_mmar / "automl" / "rep" / "report.html").read_text()

    class Collect(HTMLParser):
        def __init__(self):
            super().__init__()
            self.ids, self.remote = set(), []

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if "id" in attrs:
                self.ids.add(attrs["id"])
            for key in ("src", "href"):
                if key in attrs:
                    self.remote.append(attrs[key])

    collect = Collect()
    collect.feed(page)
    assert {"leaderboard", "best-over-time", "learning-curves", "importance"} <= collect.ids
    assert collect.remote == []  # nothing fetched from elsewhere: plotly.js is inline
    view = RunView.load(fake_mmar / "automl" / "rep")
    from automl_cli.report.curves import curves_figure  # every job's curve (tests/test_report_* check the rest)

    assert sorted(t.legendgroup for t in curves_figure([view]).data if t.mode != "markers") == sorted(
        j.name for j in view.jobs.values())
    rows = list(csv.reader(open(fake_mmar / "automl" / "rep" / "report.csv")))
    assert rows[0][:4] == ["rank", "job", "trial", "val_mean_dice"]
    assert [r[1] for r in rows[1:]] == [j.name for j in view.leaderboard()]
    assert "Fake.lr" in page and "Fake.choice" in page  # both parameters ranked by importance


def test_report_exports_scalars_and_an_hparams_table_to_tensorboard(fake_mmar):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert run_cli("run", "-m", str(fake_mmar), "--run-id", "tb", "--set", "automl_max_recommendations=3").returncode == 0
    result = run_cli("report", "-m", str(fake_mmar), "--run-id", "tb")
    assert result.returncode == 0 and "tensorboard --logdir" in result.stdout
    root = fake_mmar / "automl" / "tb" / "tensorboard"
    view = RunView.load(fake_mmar / "automl" / "tb")
    for job in view.jobs.values():
        events = EventAccumulator(str(root / job.name))
        events.Reload()
        values = [(s.step, s.value) for s in events.Scalars("val_mean_dice")]
        assert values == [(e, pytest.approx(job.epochs[e]["val_mean_dice"])) for e in sorted(job.epochs)]
    runs = sorted(p.name for p in (root / "hparams").iterdir() if p.is_dir())
    assert runs == sorted(j.name for j in view.jobs.values())  # one HParams row per job
    for job in view.jobs.values():
        events = EventAccumulator(str(root / "hparams" / job.name))
        events.Reload()
        assert "_hparams_/session_start_info" in events.PluginTagToContent("hparams")
        [score] = events.Scalars("hparam/val_mean_dice")
        assert score.value == pytest.approx(job.metric)
