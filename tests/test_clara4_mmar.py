"""The Clara 4.x example MMAR (mmar_monai/) run as a user runs it: MONAI's UNet, losses,
transforms and engines named in Clara 4.1's config language, trained by the real CLI on
the CPU. Each search form validates and trains; a two-worker search killed with -9 and
resumed continues its jobs from their checkpoints, and best/ re-evaluates to the reported
Dice; SIGTERM mid-epoch keeps the last epoch's checkpoint and the resumed training is
exactly the uninterrupted one."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from automl_cli.status import RunView
from conftest import ROOT, run_cli, start_run, wait_for

pytest.importorskip("monai")

FORMS = ["trn_autoML_Enum", "trn_autoML_LR_LP", "trn_autoML_Loss_Optimizer", "trn_autoML_Transform",
         "trn_autoML_TransformProb"]
JOB_NAME = re.compile(r"W\d+_\d+_J\d+")


@pytest.fixture
def monai_mmar(tmp_path: Path) -> Path:
    """A copy of mmar_monai with its data made by its own script, as commands/*.sh make it."""
    root = tmp_path / "mmar"
    shutil.copytree(ROOT / "mmar_monai", root, ignore=shutil.ignore_patterns("automl", "data", "*.pt", "*.jsonl"))
    subprocess.run([sys.executable, str(root / "custom" / "make_data.py")], check=True, capture_output=True)
    return root


def metrics_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_every_clara_search_form_validates(monai_mmar):
    from automl_cli.runconfig import check_trainer, load_mmar

    for form in ["config_train", *FORMS]:
        loaded = load_mmar(str(monai_mmar), f"{form}.json")
        lines = check_trainer(loaded)
        assert lines[0].startswith("trainer clara4 (MONAI ") and "key metric val_mean_dice" in lines[0], lines
        assert any("16 items under 'training'" in line for line in lines)
        mapped = [line for line in lines if line.startswith("mapped: ")]
        assert len(mapped) == (3 if form == "trn_autoML_Enum" else 0), mapped  # dimensions, to_onehot x2
    assert run_cli("validate", "-m", str(monai_mmar), "--trainconf", "trn_autoML_Enum.json").returncode == 0


@pytest.mark.slow
@pytest.mark.parametrize("form", FORMS)
def test_each_clara_search_form_trains(monai_mmar, form):
    result = run_cli("run", "-m", str(monai_mmar), "--trainconf", f"{form}.json", "--set", "run_id=form",
                     "workers=0", "epochs=1", "automl_max_recommendations=1")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    run_dir = monai_mmar / "automl" / "form"
    [job] = RunView.load(run_dir).jobs.values()
    assert JOB_NAME.fullmatch(job.name) and job.status == "completed" and sorted(job.epochs) == [1]
    job_config = json.loads((run_dir / job.name / "config" / f"{form}.json").read_text())
    log = (run_dir / job.name / "train.log").read_text()
    assert "training on cpu" in log
    if form == "trn_autoML_Enum":  # Clara 4.1's argument names, mapped with a warning
        assert "'dimensions' is now 'spatial_dims'" in log and "is now 'to_onehot=2'" in log
        channels, strides = job.params["UNet.channels+strides"]
        assert job_config["train"]["model"]["args"]["channels"] == channels
    if form == "trn_autoML_Transform":  # the tag written with its @ switches both transforms together
        flags = [t.get("disabled") for t in job_config["train"]["pre_transforms"] if "disabled" in t]
        assert len(flags) == 2 and len(set(map(json.dumps, flags))) == 1
    if form == "trn_autoML_Loss_Optimizer":  # exactly one loss and one optimizer enabled
        for entry in ("loss", "optimizer"):
            assert sum(not c.get("disabled", False) for c in job_config["train"][entry]) == 1
    best = run_dir / "best"
    assert [p.name for p in (best / "config").iterdir()] == ["config_train.json"]


@pytest.mark.slow
def test_two_worker_search_killed_and_resumed_continues_and_best_reevaluates(monai_mmar):
    env = dict(os.environ)
    args = ["--set", "run_id=k", "workers=0:1", "epochs=3", "automl_max_recommendations=3"]
    tool = start_run(monai_mmar, *args)
    run_dir = monai_mmar / "automl" / "k"
    started = lambda: [p for p in run_dir.glob("W*/models/metrics.jsonl") if metrics_lines(p)]  # noqa: E731
    assert wait_for(lambda: len(started()) == 2 or tool.poll() is not None, timeout=240), "no job trained an epoch"
    assert tool.poll() is None, tool.communicate()
    tool.send_signal(signal.SIGKILL)
    tool.wait()
    interrupted = {p.parent.parent.name: len(metrics_lines(p)) for p in started()}

    resumed = subprocess.run([sys.executable, "-m", "automl_cli", "run", "-m", str(monai_mmar), *args, "--resume"],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    view = RunView.load(run_dir)
    finished = [j for j in view.jobs.values() if j.status == "completed"]
    assert len({j.trial_id for j in finished}) == 3 and all(JOB_NAME.fullmatch(j.name) for j in view.jobs.values())
    assert {j.worker for j in view.jobs.values()} == {"W1", "W2"}
    attempt = lambda job: int(job.name.split("_")[1])  # noqa: E731  (W<worker>_<attempt>_J<job>)
    again = [j for j in finished if attempt(j) == 2]
    assert again, "no job was continued after the kill"
    for job in again:
        log = (run_dir / job.name / "train.log").read_text()
        before = next(epochs for name, epochs in interrupted.items() if name.endswith(f"_J{job.job_id}"))
        # its first attempt had a checkpoint: the second went on from it, not from scratch
        assert f"resumed from {run_dir / job.name / 'models' / 'checkpoint.pt'} at epoch" in log
        assert sorted(job.epochs) == [1, 2, 3] and before >= 1

    best = view.best()
    summary = json.loads((run_dir / "best" / "summary.json").read_text())
    assert summary["value"] == pytest.approx(best.metric)
    first_epochs = [metrics_lines(run_dir / j.name / "models" / "metrics.jsonl")[0]["val_mean_dice"]
                    for j in view.jobs.values() if attempt(j) == 1]
    assert best.metric > max(first_epochs) + 0.1  # the search trained for real
    config_text = (run_dir / "best" / "config" / "config_train.json").read_text()
    assert "{DATA_ROOT}" not in config_text and "{learning_rate}" not in config_text and '"search"' not in config_text
    assert json.loads(config_text)["train"]["dataset"]["data_file_base_dir"] == str(monai_mmar / "data")
    evaluated = run_cli("train", "-m", str(run_dir / "best"), "--validate-only")
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    assert json.loads(evaluated.stdout.strip().splitlines()[-1])["val_mean_dice"] == pytest.approx(summary["value"],
                                                                                                   abs=1e-6)


@pytest.mark.slow
def test_sigterm_mid_epoch_keeps_the_last_checkpoint_and_resuming_is_exact(monai_mmar):
    models = monai_mmar / "models"
    whole = run_cli("train", "-m", str(monai_mmar), "--epochs", "3")
    assert whole.returncode == 0, whole.stderr[-2000:]
    uninterrupted = metrics_lines(models / "metrics.jsonl")
    for item in models.iterdir():
        item.unlink()

    env = dict(os.environ)
    trainer = subprocess.Popen([sys.executable, "-m", "automl_cli", "train", "-m", str(monai_mmar), "--epochs", "3"],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert wait_for(lambda: len(metrics_lines(models / "metrics.jsonl")) >= 1, timeout=120)
    time.sleep(0.3)  # into the second epoch
    trainer.send_signal(signal.SIGTERM)
    _, err = trainer.communicate(timeout=60)
    assert trainer.returncode == 143, err[-2000:]
    done = metrics_lines(models / "metrics.jsonl")
    assert 1 <= len(done) < 3
    import torch

    checkpoint = torch.load(models / "checkpoint.pt", weights_only=True)
    assert checkpoint["epoch"] == len(done)  # the checkpoint is the last completed epoch's

    rest = run_cli("train", "-m", str(monai_mmar), "--epochs", "3")
    assert rest.returncode == 0, rest.stderr[-2000:]
    assert f"resumed from {models / 'checkpoint.pt'} at epoch {len(done)}" in rest.stdout + rest.stderr
    resumed = metrics_lines(models / "metrics.jsonl")
    key = lambda lines: [(r["epoch"], r["train_loss"], r["val_mean_dice"]) for r in lines]  # noqa: E731
    assert key(resumed) == key(uninterrupted)
    evaluated = run_cli("train", "-m", str(monai_mmar), "--validate-only")
    assert json.loads(evaluated.stdout.strip().splitlines()[-1])["val_mean_dice"] == pytest.approx(
        max(r["val_mean_dice"] for r in uninterrupted), abs=1e-6)


def test_without_monai_a_clara4_config_is_one_line_naming_the_extra(monai_mmar, tmp_path):
    blocker = tmp_path / "blocked"
    (blocker / "monai").mkdir(parents=True)
    (blocker / "monai" / "__init__.py").write_text("raise ImportError('monai is not installed here')\n")
    env = {"PYTHONPATH": str(blocker)}
    for args in (["validate", "-m", str(monai_mmar)], ["run", "-m", str(monai_mmar), "--set", "run_id=x"],
                 ["train", "-m", str(monai_mmar)]):
        result = run_cli(*args, env=env)
        assert result.returncode == 2, result.stderr
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "pip install 'automl-cli[monai]'" in lines[0] and "config_train.json" in lines[0]
    assert not (monai_mmar / "automl").exists()


def test_validate_names_the_broken_place_of_a_clara4_config(monai_mmar):
    path = monai_mmar / "config" / "config_train.json"
    good = json.loads(path.read_text())
    cases = [
        (lambda c: c["train"]["model"].update(name="UNett"), "$.train.model.name", "unknown component 'UNett'"),
        (lambda c: c["train"]["model"]["args"].update(chanels=[1]), "$.train.model.args.chanels",
         "UNet takes no argument 'chanels'"),
        (lambda c: c["train"]["trainer"]["args"].update(network="@net"), "$.train.trainer.args.network",
         "'@net' refers to nothing"),
        (lambda c: c["validate"]["dataset"].update(data_list_file_path="nowhere.json"),
         "$.validate.dataset.data_list_file_path", "datalist not found"),
        (lambda c: c["validate"]["key_metric"].update(log_label="dice"), "$.validate.key_metric.log_label",
         "set its log_label to 'val_mean_dice'"),
    ]
    from automl_cli.errors import ConfigError
    from automl_cli.runconfig import check_trainer, load_mmar

    for change, where, message in cases:
        config = json.loads(json.dumps(good))
        change(config)
        path.write_text(json.dumps(config))
        with pytest.raises(ConfigError) as info:
            check_trainer(load_mmar(str(monai_mmar)))
        assert info.value.path == where and message in info.value.detail, str(info.value)
    result = run_cli("validate", "-m", str(monai_mmar))  # the last case through the command line: one line, exit 2
    assert result.returncode == 2 and f"config_train.json: $.validate.key_metric.log_label: " in result.stderr


def test_a_loss_from_custom_that_goes_nan_stops_the_job_with_exit_3(monai_mmar):
    (monai_mmar / "custom" / "nan_loss.py").write_text(
        "import torch\n\n\nclass NanLoss(torch.nn.Module):\n"
        "    def forward(self, pred, label):\n"
        "        return (pred * 0).mean() + float('nan')\n")
    path = monai_mmar / "config" / "config_train.json"
    config = json.loads(path.read_text())
    config["train"]["loss"] = {"path": "nan_loss.NanLoss"}  # BYOC: found in the MMAR's custom/
    path.write_text(json.dumps(config))
    result = run_cli("train", "-m", str(monai_mmar), "--epochs", "2")
    assert result.returncode == 3, result.stderr[-2000:]
    assert "not finite" in result.stderr + result.stdout
    [line] = metrics_lines(monai_mmar / "models" / "metrics.jsonl")
    assert line["epoch"] == 1 and line["train_loss"] is None and line["val_mean_dice"] is None
    assert not (monai_mmar / "models" / "checkpoint.pt").exists()


@pytest.mark.slow
def test_a_jobs_last_epoch_is_validated_between_intervals_without_changing_what_follows(monai_mmar):
    """num_interval_per_valid=2 and no ValidationHandler: one is added; a job stopping at
    epoch 3 is still scored there, and continuing it to 4 trains as a run that never stopped."""
    path = monai_mmar / "config" / "config_train.json"
    config = json.loads(path.read_text())
    config["train"]["handlers"] = [h for h in config["train"]["handlers"] if h["name"] != "ValidationHandler"]
    config["num_interval_per_valid"] = 2
    path.write_text(json.dumps(config))
    models = monai_mmar / "models"
    straight = run_cli("train", "-m", str(monai_mmar), "--epochs", "4")
    assert straight.returncode == 0 and "has no ValidationHandler: validating every 2 epoch(s)" in straight.stdout
    whole = metrics_lines(models / "metrics.jsonl")
    assert ["val_mean_dice" in line for line in whole] == [False, True, False, True]
    for item in models.iterdir():
        item.unlink()
    assert run_cli("train", "-m", str(monai_mmar), "--epochs", "3").returncode == 0
    assert "val_mean_dice" in metrics_lines(models / "metrics.jsonl")[-1]  # the job's last epoch is scored
    assert run_cli("train", "-m", str(monai_mmar), "--epochs", "4").returncode == 0
    assert metrics_lines(models / "metrics.jsonl")[-1]["val_mean_dice"] == whole[-1]["val_mean_dice"]
