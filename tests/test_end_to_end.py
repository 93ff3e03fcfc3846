"""The real thing: commands/automl.sh on a copy of mmar_template, 2 CPU workers, the
reference trainer in every job, and best/ weights that give the reported Dice."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from automl_cli.status import RunView
from conftest import ROOT, run_cli


@pytest.fixture
def template_copy(tmp_path):
    root = tmp_path / "mmar"
    shutil.copytree(ROOT / "mmar_template", root, ignore=shutil.ignore_patterns("automl"))
    path = root / "config" / "config_train.json"
    config = json.loads(path.read_text())
    config["epochs"] = 3
    path.write_text(json.dumps(config, indent=2))
    return root


@pytest.mark.slow
def test_automl_sh_runs_a_two_worker_cpu_search_and_best_weights_give_the_reported_dice(template_copy):
    env = dict(os.environ)
    env["AUTOML"] = f"{sys.executable} -m automl_cli"
    result = subprocess.run(["bash", str(template_copy / "commands" / "automl.sh"), "run_id=e2e",
                             "automl_max_recommendations=4", "traceout=both"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"MMAR_ROOT set to {template_copy}" in result.stdout
    run_dir = template_copy / "automl" / "e2e"
    view = RunView.load(run_dir)
    assert view.settings["algorithm"] == "bayesian"
    assert [w["name"] for w in view.settings["workers"]] == ["W1", "W2"]
    assert len(view.jobs) == 4 and all(j.status == "completed" for j in view.jobs.values())
    assert {j.worker for j in view.jobs.values()} == {"W1", "W2"}
    # the jobs really trained with different settings, and the settings mattered
    assert len({round(j.metric, 6) for j in view.jobs.values()}) == 4
    for job in view.jobs.values():
        config = json.loads((run_dir / job.name / "config" / "config_train.json").read_text())
        psp, activation = job.params["SegAhnet.if_use_psp+final_activation"]
        assert config["train"]["model"]["args"]["if_use_psp"] == psp
        assert config["train"]["model"]["args"]["final_activation"] == activation
        assert config["train"]["optimizer"]["args"]["lr"] == job.params["Adam.lr"]
        assert config["train"]["transforms"][1]["args"]["probability"] == job.params["RandomAxisFlip.probability"]
        assert "training on cpu" in (run_dir / job.name / "train.log").read_text()

    summary = json.loads((run_dir / "best" / "summary.json").read_text())
    assert summary["value"] == pytest.approx(view.best().metric)
    evaluated = run_cli("train", "-m", str(run_dir / "best"), "--validate-only")
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout.strip().splitlines()[-1])["val_mean_dice"] == pytest.approx(summary["value"],
                                                                                                   abs=1e-6)
    best = view.best().params["SegAhnet.if_use_psp+final_activation"]
    assert f'SegAhnet.if_use_psp+final_activation={json.dumps(best, separators=(",", ":"))}' in result.stdout
    assert "AutoML run is successful" in result.stdout  # traceout=both puts trace lines on the console too
    assert (run_dir / "trace.log").exists()


@pytest.mark.parametrize("algorithm, settings", [
    ("hyperband", ["automl_R=3", "automl_nu=3", "epoch_multiplier=1"]),
    ("hyperband_es", ["automl_R=3", "automl_nu=3", "epoch_multiplier=1", "automl_early_stop_threshold=0.5",
                      "automl_min_early_stop_epochs=2"]),
    ("asha", ["automl_nu=3", "automl_max_trials=4", "automl_max_concurrent=2"]),
])
@pytest.mark.slow
def test_bracket_algorithms_run_end_to_end_and_promoted_jobs_continue_their_trial(template_copy, algorithm, settings):
    result = run_cli("run", "-m", str(template_copy), "--workers", "0:1", "--algorithm", algorithm,
                     "--set", "run_id=b", *settings)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = template_copy / "automl" / "b"
    view = RunView.load(run_dir)
    assert (run_dir / "best" / "models" / "model.pt").exists()
    trace = (run_dir / "trace.log").read_text()
    promoted = [j for j in view.jobs.values() if j.start_epoch > 0]
    assert promoted, "one configuration reaches the top rung"
    for job in promoted:
        assert "promoted, rank 1" in job.note and "promoted" in trace
        before = [j for j in view.jobs.values() if j.trial_id == job.trial_id and j.stop_epoch == job.start_epoch]
        assert before and before[0].status == "completed"
        # the real trainer resumed from the trial's checkpoint: its metrics lines continue the curve
        lines = [json.loads(line) for line in (run_dir / job.name / "models" / "metrics.jsonl").read_text().splitlines()]
        last = job.stop_epoch if job.status == "completed" else job.start_epoch + len(lines)  # an early stop ends sooner
        assert lines and [line["epoch"] for line in lines] == list(range(job.start_epoch + 1, last + 1))
        assert "resumed from" in (run_dir / job.name / "train.log").read_text()
    status = json.loads((run_dir / "status.json").read_text())
    assert all(status[j.name]["rung"] is not None for j in view.jobs.values())
    if algorithm == "hyperband_es":  # below 0.5 from epoch 2 on means stopped right there
        for job in view.jobs.values():
            low = [e for e, values in sorted(job.epochs.items()) if e >= 2 and values["val_mean_dice"] < 0.5]
            if low:  # decided at that epoch; a real trainer may finish the epoch already under way
                assert job.status == "stopped"
                assert f"job {job.name}: stopped early by hyperband_es: metric" in trace
                assert f"threshold 0.5 at epoch {low[0]}" in trace
