"""Population-based training: exploit copies the donor's checkpoint and explores from its
hyperparameters; it beats fixed hyperparameters when the best learning rate moves."""
import json
import math

import numpy as np
import pytest
import torch

from automl_cli.simulate import simulate
from automl_cli.status import RunView
from conftest import ROOT, run_cli

SEARCH = [{"args": ["lr"], "type": "float", "targets": [1e-4, 1.0], "log": True}]


def target(progress: float) -> float:
    """The best log10 learning rate falls from -1.5 to -2.5 as training progresses."""
    return -1.5 - min(progress, 10.0) / 10.0


def gain(lr: float, progress: float) -> float:
    """Progress per epoch: 1 at the best learning rate of the moment, little a decade away."""
    return math.exp(-((math.log10(lr) - target(progress)) / 0.3) ** 2)


def objective(config, epoch, state):
    state["progress"] = state.get("progress", 0.0) + gain(config["lr"], state.get("progress", 0.0))
    state.setdefault("lineage", []).append(epoch)
    return -state["progress"], 1.0


def fixed_run(lr: float, epochs: int) -> float:
    state = {}
    for epoch in range(1, epochs + 1):
        loss, _ = objective({"lr": lr}, epoch, state)
    return loss


@pytest.mark.parametrize("seed", [0, 1])
def test_pbt_beats_every_fixed_member_of_its_initial_population(seed):
    params = {"automl_population_size": 8, "automl_eval_interval": 2, "automl_max_generations": 15}
    result = simulate("pbt", SEARCH, objective, max_epochs=30, n_workers=4, seed=seed, params=params)
    initial = [j["config"]["lr"] for j in result.jobs if j["start_epoch"] == 0 and j["stop_epoch"] == 2]
    assert len(initial) == 8
    best_fixed = min(fixed_run(lr, 30) for lr in initial)
    assert result.best[1] < best_fixed  # losses: lower is better
    print(f"pbt {result.best[1]:.3f} vs best fixed member {best_fixed:.3f}")


def test_exploit_continues_from_the_donors_state_and_explores_within_bounds():
    params = {"automl_population_size": 4, "automl_eval_interval": 2, "automl_max_generations": 5}
    result = simulate("pbt", SEARCH, objective, max_epochs=10, n_workers=2, seed=0, params=params)
    copied = [j for j in result.view.jobs.values() if "exploit" in j.note]
    assert copied, "the bottom quarter copies the top quarter"
    for job in copied:
        assert job.start_epoch % 2 == 0 and 1e-4 <= job.params["lr"] <= 1.0
        assert "explore: lr" in job.note or "no change" in job.note
    # each member ends at the full 10 epochs; the incumbent is one of them
    ends = {}
    for j in result.jobs:
        ends[j["trial_id"]] = max(ends.get(j["trial_id"], 0), j["stop_epoch"])
    assert set(ends.values()) == {10}


@pytest.mark.slow
def test_exploit_job_folder_starts_from_the_donors_checkpoint_with_the_mutated_lr(tmp_path):
    """On the real trainer: a PBT run on the template, then the exploit job's starting
    checkpoint compared tensor by tensor with the donor's."""
    import shutil

    mmar = tmp_path / "mmar"
    shutil.copytree(ROOT / "mmar_template", mmar, ignore=shutil.ignore_patterns("automl"))
    config = json.loads((mmar / "config" / "config_train.json").read_text())
    config["epochs"] = 3
    (mmar / "config" / "config_train.json").write_text(json.dumps(config))
    result = run_cli("run", "-m", str(mmar), "--run-id", "p", "--workers", "0:1", "--algorithm", "pbt",
                     "--set", "automl_population_size=4", "automl_eval_interval=1", "automl_max_generations=3")
    assert result.returncode == 0, result.stderr[-2000:]
    run_dir = mmar / "automl" / "p"
    view = RunView.load(run_dir)
    exploits = [j for j in view.jobs.values() if j.note.startswith("exploit")]
    assert exploits
    from automl_cli.store import Journal

    journal = Journal(run_dir / "journal.db", readonly=True)
    started = {e.data["job_id"]: e.data for e in journal.events() if e.kind == "job_started"}
    journal.close()
    for job in exploits:
        donor = view.jobs[started[job.job_id]["copy_from_job"]]
        # the trainer resumed from the donor's checkpoint: same epoch, and the job's config has the new lr
        log = (run_dir / job.name / "train.log").read_text()
        assert f"at epoch {donor.stop_epoch}" in log
        job_config = json.loads((run_dir / job.name / "config" / "config_train.json").read_text())
        assert job_config["train"]["optimizer"]["args"]["lr"] == job.params["Adam.lr"]
    # and the copy itself, tensor by tensor: prepare a fresh exploit job folder from the donor
    from automl_cli.backends.base import Job
    from automl_cli.run import MMARJobs
    from automl_cli.workers import Worker

    job = exploits[0]
    donor_id = started[job.job_id]["copy_from_job"]

    from automl_cli.runconfig import load_mmar, settings_for_run

    settings, _ = settings_for_run(load_mmar(str(mmar)), run_id="copy", workers="0", algorithm="pbt",
                                   traceout=None, set_values={}, warn=lambda m: None)
    jobs = MMARJobs(settings)
    jobs.job_dirs[donor_id] = run_dir / view.jobs[donor_id].name
    mutated = dict(job.params)
    spec = jobs.prepare(Job(99, "W1_1_J99", job.trial_id, Worker(1, ()), mutated, donor.stop_epoch, 3, 1, donor_id))
    mine = torch.load(spec.directory / "models" / "checkpoint.pt", weights_only=True)["model"]
    theirs = torch.load(run_dir / view.jobs[donor_id].name / "models" / "checkpoint.pt", weights_only=True)["model"]
    assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)
    written = json.loads((spec.directory / "config" / "config_train.json").read_text())
    assert written["train"]["optimizer"]["args"]["lr"] == mutated["Adam.lr"]
    # lineage: status shows why each job exists, best/ the hyperparameter schedule of the winner
    shown = run_cli("status", "-m", str(mmar), "--run-id", "p")
    assert "exploit: copies trial" in shown.stdout
    summary = json.loads((run_dir / "best" / "summary.json").read_text())
    schedule = summary["schedule"]
    assert schedule[-1]["job"] == summary["job"] and schedule[0]["epochs"][0] == 0
    assert [s["epochs"][1] for s in schedule[:-1]] == [s["epochs"][0] for s in schedule[1:]]  # contiguous


@pytest.mark.parametrize("workers", [1, 3, 4])
def test_no_segment_trains_nothing_and_every_member_trains_every_segment_once(workers):
    """A member ranked at its last-but-one epoch never copies a donor that has already
    finished (that job would train 4->4 and fail with no metric): it is ranked against the
    scores at its own epoch and copies the donor's checkpoint of that epoch, so members never
    jump ahead and the run makes exactly the jobs the plan counts."""
    params = {"automl_population_size": 4, "automl_eval_interval": 1}
    result = simulate("pbt", SEARCH, objective, max_epochs=4, n_workers=workers, seed=0, params=params)
    jobs = sorted(result.view.jobs.values(), key=lambda j: j.job_id)
    assert all(j.stop_epoch > j.start_epoch for j in jobs), [(j.name, j.start_epoch, j.stop_epoch) for j in jobs]
    assert all(j.status == "completed" for j in jobs)
    assert len(jobs) == 16 == result.view.settings["planned_jobs"]
    for trial in range(1, 5):
        segments = [(j.start_epoch, j.stop_epoch) for j in jobs if j.trial_id == trial]
        assert segments == [(0, 1), (1, 2), (2, 3), (3, 4)]
    exploits = [j for j in jobs if j.note.startswith("exploit")]
    assert exploits
    for job in exploits:  # the donor's checkpoint is of the epoch the member resumes at
        donor = next(j for j in jobs if f"(job {j.job_id}," in job.note)
        assert donor.stop_epoch == job.start_epoch and donor.trial_id != job.trial_id


def test_plan_and_run_agree_on_the_jobs_of_a_pbt_search(fake_mmar):
    """automl plan counts population x segments; the run makes exactly those jobs, every
    one of them trains at least an epoch and completes."""
    path = fake_mmar / "config" / "config_train.json"
    config = json.loads(path.read_text())
    config["epochs"], config["sleep"] = 4, 0.01
    path.write_text(json.dumps(config))
    pbt = ["--algorithm", "pbt", "--set", "automl_population_size=4", "automl_eval_interval=1"]
    plan = run_cli("plan", "-m", str(fake_mmar), "--epoch-seconds", "1", *pbt)
    assert plan.returncode == 0, plan.stderr
    assert "total: 16 jobs, 16 epochs of training" in plan.stdout
    result = run_cli("run", "-m", str(fake_mmar), "--run-id", "p", *pbt)
    assert result.returncode == 0, result.stderr
    view = RunView.load(fake_mmar / "automl" / "p")
    assert len(view.jobs) == 16 == view.settings["planned_jobs"]
    assert all(j.status == "completed" and j.stop_epoch > j.start_epoch for j in view.jobs.values())
    assert "failed" not in result.stdout
