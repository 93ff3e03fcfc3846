"""Hyperband's schedule (TAO's tables), the auto-adjustment, promotions that resume, early
stopping, and ASHA's asynchronous promotions."""
import json
import math
from fractions import Fraction

import pytest

from automl_cli.algorithms.schedulers.hyperband import auto_epoch_multiplier, hyperband_schedule, integer_log
from automl_cli.simulate import simulate


def table(R, nu):
    return [[(rung.n, rung.resource) for rung in b.rungs] for b in hyperband_schedule(R, nu, 1)]


def test_hyperband_r81_nu3_matches_table2():
    assert table(81, 3) == [
        [(81, 1), (27, 3), (9, 9), (3, 27), (1, 81)],
        [(27, 3), (9, 9), (3, 27), (1, 81)],
        [(9, 9), (3, 27), (1, 81)],
        [(6, 27), (2, 81)],
    ]


def test_hyperband_r27_nu3_matches_table3():
    assert table(27, 3) == [
        [(27, 1), (9, 3), (3, 9), (1, 27)],
        [(9, 3), (3, 9), (1, 27)],
        [(6, 9), (2, 27)],
    ]


def test_epochs_are_resource_times_multiplier():
    brackets = hyperband_schedule(27, 3, 10)
    assert [r.epochs for r in brackets[0].rungs] == [10, 30, 90, 270]
    assert [r.epochs for r in brackets[2].rungs] == [90, 270]


@pytest.mark.parametrize("R, nu, smax", [(243, 3, 5), (1000, 10, 3), (81, 3, 4), (27, 3, 3), (26, 3, 2), (9, 3, 2),
                                         (2, 2, 1), (100, 10, 2)])
def test_bracket_counts_use_exact_integer_logs(R, nu, smax):
    # a float log gives 4 for log(243)/log(3) and 2 for log(1000)/log(10)
    assert integer_log(R, nu) == smax
    assert len(hyperband_schedule(R, nu, 1)) == smax  # TAO drops the paper's last (s = 0) bracket


def test_a_resource_that_is_not_a_power_of_nu_keeps_fractions_until_epochs_are_rounded():
    (bracket, *_rest) = hyperband_schedule(10, 3, 9)
    assert [r.resource for r in bracket.rungs] == [Fraction(10, 9), Fraction(10, 3), Fraction(10)]
    assert [r.epochs for r in bracket.rungs] == [10, 30, 90]


@pytest.mark.parametrize("max_epoch, R, nu, expected_R, expected_multiplier", [
    (1000, 27, 3, 27, 10),   # 1000^(1/3) = 10
    (80, 27, 3, 27, 4),      # 4.31 -> 4
    (27, 27, 3, 27, 3),      # exactly 3, not 2.999...
    (8, 27, 3, 8, 3),        # below 3 until R = 8: 8^(log 3/log 8) = 3
    (20, 27, 3, 20, 3),
    (300, 81, 3, 81, 4),     # 300^(1/4) = 4.16
])
def test_auto_adjustment_follows_the_guide(max_epoch, R, nu, expected_R, expected_multiplier):
    adjusted = auto_epoch_multiplier(max_epoch, R, nu)
    assert (adjusted.R, adjusted.epoch_multiplier) == (expected_R, expected_multiplier)


def hb_curve(config, epoch, state):
    """Loss falls with epochs toward a floor set by x; one second per epoch."""
    state.setdefault("seen", []).append(epoch)
    return config["x"] + 1.0 / epoch, 1.0


SEARCH = [{"args": ["x"], "type": "float", "targets": [0, 1]}]


def test_hyperband_runs_the_table_and_promoted_jobs_resume_where_their_trial_stopped():
    result = simulate("hyperband", SEARCH, hb_curve, max_epochs=27, n_workers=4,
                      params={"automl_R": 27, "automl_nu": 3, "epoch_multiplier": 1})
    jobs = result.jobs
    assert len(jobs) == 27 + 9 + 3 + 1 + 9 + 3 + 1 + 6 + 2
    by_trial = {}
    for job in jobs:
        by_trial.setdefault(job["trial_id"], []).append(job)
    for trial_jobs in by_trial.values():
        trial_jobs.sort(key=lambda j: j["start_epoch"])
        for before, after in zip(trial_jobs, trial_jobs[1:]):
            assert after["start_epoch"] == before["stop_epoch"]  # resumes, never retrains
            assert after["start_time"] >= before["end_time"]
    # promotions keep the best third of each rung of the first bracket
    first = [j for j in jobs if j["trial_id"] <= 27]
    rung0 = sorted((j for j in first if j["stop_epoch"] == 1), key=lambda j: j["metrics"][-1])
    promoted = {j["trial_id"] for j in first if j["stop_epoch"] == 3}
    assert promoted == {j["trial_id"] for j in rung0[:9]}
    # the incumbent is the best at the top rung (27 epochs)
    top = [j for j in jobs if j["stop_epoch"] == 27]
    assert result.best[1] == min(j["metrics"][-1] for j in top)


def test_the_full_bracket_that_bohb_and_dehb_keep_trains_nu_plus_one_configurations_in_full():
    tao = hyperband_schedule(27, 3, 1)
    paper = hyperband_schedule(27, 3, 1, full_bracket=True)
    assert paper[:-1] == tao
    assert paper[-1].s == 0 and [(r.n, r.epochs) for r in paper[-1].rungs] == [(4, 27)]


def test_hyperband_iterations_repeat_the_bracket_list_with_new_configurations():
    params = {"automl_R": 9, "automl_nu": 3, "epoch_multiplier": 1}
    once = simulate("hyperband", SEARCH, hb_curve, max_epochs=9, n_workers=2, params=params)
    twice = simulate("hyperband", SEARCH, hb_curve, max_epochs=9, n_workers=2,
                     params={**params, "automl_hyperband_iterations": 2})
    assert len(once.jobs) == 9 + 3 + 1 + 3 + 1
    assert len(twice.jobs) == 2 * len(once.jobs)
    assert len({j["trial_id"] for j in twice.jobs}) == 2 * len({j["trial_id"] for j in once.jobs})


@pytest.mark.parametrize("min_epochs", [3, 6])
def test_hyperband_es_stops_below_threshold_after_the_minimum_epochs_and_not_before(min_epochs):
    # maximise: large x looks best for 3 epochs (so it is promoted), then collapses
    def score(x, epoch):
        return 0.4 + 0.5 * x - 0.4 * x * max(0, epoch - 3)

    result = simulate("hyperband_es", SEARCH, lambda c, e, st: (score(c["x"], e), 1.0), max_epochs=9, n_workers=3,
                      direction="maximize", seed=2,
                      params={"automl_R": 9, "automl_nu": 3, "epoch_multiplier": 1,
                              "automl_early_stop_threshold": 0.3, "automl_min_early_stop_epochs": min_epochs})
    stopped = [j for j in result.jobs if j["status"] == "stopped"]
    assert any(j["start_epoch"] + len(j["metrics"]) < j["stop_epoch"] for j in stopped)  # some mid-stage
    for job in result.jobs:
        x = job["config"]["x"]
        below = [e for e in range(1, 10) if score(x, e) < 0.3]
        due = max(min_epochs, below[0]) if below else None
        last = job["start_epoch"] + len(job["metrics"])
        if due is not None and job["start_epoch"] < due <= job["stop_epoch"]:
            assert job["status"] == "stopped" and last == due  # exactly when allowed, not before
        else:
            assert job["status"] == "completed" and last == job["stop_epoch"]
    stopped_trials = {j["trial_id"] for j in stopped}
    for job in result.jobs:  # a stopped trial is never promoted
        if job["trial_id"] in stopped_trials:
            assert job["end_time"] <= max(s["end_time"] for s in stopped if s["trial_id"] == job["trial_id"])


def utilisation(result, n_workers):
    busy = sum(j["end_time"] - j["start_time"] for j in result.jobs)
    return busy / (n_workers * result.elapsed)


def uneven(config, epoch, state):
    """Epoch times vary 10x with x; the loss prefers small x."""
    return config["x"] + 1.0 / epoch, 1.0 + 9.0 * config["x"]


def test_asha_keeps_every_worker_busy_where_hyperband_waits_at_its_barrier():
    budget = 2000.0
    asha = simulate("asha", SEARCH, uneven, max_epochs=27, n_workers=8, time_budget=budget, seed=1,
                    params={"automl_nu": 3, "automl_max_concurrent": 8, "automl_min_top_configs": 1000})
    hb = simulate("hyperband", SEARCH, uneven, max_epochs=27, n_workers=8, time_budget=budget, seed=1,
                  params={"automl_R": 27, "automl_nu": 3, "epoch_multiplier": 1})
    u_asha, u_hb = utilisation(asha, 8), utilisation(hb, 8)
    print(f"utilisation with 8 workers, epoch times varying 10x: asha {u_asha:.1%}, hyperband {u_hb:.1%}")
    assert u_asha > 0.99
    assert u_hb < u_asha


def most_running(result) -> int:
    """The most jobs running at one moment of the virtual clock."""
    edges = sorted([(j["start_time"], 1) for j in result.jobs] + [(j["end_time"], -1) for j in result.jobs],
                   key=lambda e: (e[0], e[1]))  # an end before a start at the same instant
    running = most = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    return most


def test_asha_by_default_keeps_every_worker_busy_and_an_explicit_cap_still_caps():
    params = {"automl_nu": 3, "automl_min_top_configs": 1000}
    default = simulate("asha", SEARCH, uneven, max_epochs=27, n_workers=8, time_budget=500.0, seed=1, params=params)
    assert most_running(default) == 8
    assert utilisation(default, 8) > 0.99
    capped = simulate("asha", SEARCH, uneven, max_epochs=27, n_workers=8, time_budget=500.0, seed=1,
                      params={**params, "automl_max_concurrent": 3})
    assert most_running(capped) == 3


def test_asha_promotes_the_top_third_without_waiting_and_resumes():
    result = simulate("asha", SEARCH, hb_curve, max_epochs=9, n_workers=2, seed=0,
                      params={"automl_nu": 3, "automl_max_concurrent": 2, "automl_max_trials": 18})
    assert len({j["trial_id"] for j in result.jobs}) == 18
    for job in result.jobs:
        if job["start_epoch"] > 0:
            earlier = [j for j in result.jobs if j["trial_id"] == job["trial_id"] and j["stop_epoch"] == job["start_epoch"]]
            assert earlier and earlier[0]["end_time"] <= job["start_time"]
    assert {j["stop_epoch"] for j in result.jobs} == {1, 3, 9}
    top = [j for j in result.jobs if j["stop_epoch"] == 9]
    assert result.best[1] == min(j["metrics"][-1] for j in top)


def test_asha_without_trial_limit_stops_after_min_top_configs():
    result = simulate("asha", SEARCH, hb_curve, max_epochs=9, n_workers=4, seed=0,
                      params={"automl_max_concurrent": 4, "automl_min_top_configs": 3})
    assert sum(1 for j in result.jobs if j["stop_epoch"] == 9 and j["status"] == "completed") >= 3


def test_plan_prints_brackets_totals_and_a_time_estimate(fake_mmar):
    from conftest import run_cli

    result = run_cli("plan", "-m", str(fake_mmar), "--algorithm", "hyperband", "--workers", "0:1",
                     "--epoch-seconds", "60", "--set", "automl_R=9", "epoch_multiplier=2")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "bracket 1: 9 x 2 epochs -> 3 x 6 epochs -> 1 x 18 epochs" in out
    assert "bracket 2: 3 x 6 epochs -> 1 x 18 epochs" in out
    assert "rung 1:    3 configuration(s), each trained to epoch 6 (+4, resuming)" in out
    # 9*2 + 3*4 + 1*12 + 3*6 + 1*12 epochs in 17 jobs
    assert "total: 17 jobs, 72 epochs of training" in out
    assert "estimated wall time with 2 worker(s) at 60 s/epoch (given)" in out
    assert "assumed: 2 worker(s) (--workers 0:1); 60 s/epoch (given); start-up not measured: no earlier run" in out
    auto = run_cli("plan", "-m", str(fake_mmar), "--algorithm", "hyperband")
    reasons = [line.strip() for line in auto.stdout.splitlines()[1:4]]
    # what the auto-adjustment means comes first, how it was worked out after
    assert reasons[0] == ("the top rung trains 9 epochs, 3x the config's 3 (the guide's auto-adjustment; set "
                          "epoch_multiplier to choose)")
    assert reasons[1].startswith("chosen: R=3, epoch_multiplier=3 (auto-adjusted from the config's 3 epochs) by the "
                                 "guide's rule epoch_multiplier = max_epoch^(log nu / log R)")
    assert reasons[2] == "R=27: 3^(log 3/log 27) = 1.4422"
    assert "no time estimate" in auto.stdout
    assert "assumed: 1 worker(s) (automl run's default --workers 0; give --workers to plan more)" in auto.stdout


@pytest.mark.parametrize("max_epochs, first", [
    (6, "the top rung trains 18 epochs, 3x the config's 6 (the guide's auto-adjustment; set epoch_multiplier to "
        "choose)"),
    (27, "the top rung trains 81 epochs, 3x the config's 27 (the guide's auto-adjustment; set epoch_multiplier to "
         "choose)"),
    (80, "the top rung trains 108 epochs, 1.35x the config's 80 (the guide's auto-adjustment; set epoch_multiplier "
         "to choose)"),
])
def test_the_auto_adjustment_note_leads_with_its_consequence(max_epochs, first):
    from automl_cli.algorithms.schedulers.hyperband import resolve_hyperband

    why = resolve_hyperband({"automl_R": 27, "automl_nu": 3, "epoch_multiplier": None}, max_epochs)[3]
    assert why[0] == first and why[1].startswith("chosen: ")
    assert any("^(log 3/log " in line for line in why[2:])  # the formula after
    assert resolve_hyperband({"automl_R": 9, "automl_nu": 3, "epoch_multiplier": 2}, 6)[3] == [
        "epoch_multiplier 2 as given"]


def _journal(run_dir, jobs):
    """A finished run's journal: per job (start, [(end of epoch, its seconds), ...])."""
    from automl_cli.store import JOURNAL, Journal

    run_dir.mkdir(parents=True)
    journal = Journal(run_dir / JOURNAL)
    journal.append("run_started", 0.0, run_id=run_dir.name, algorithm="random", metric="val_mean_dice")
    for job_id, (start, epochs) in enumerate(jobs, start=1):
        journal.append("job_started", start, job_id=job_id, name=f"W1_{job_id}_J{job_id}", trial_id=job_id,
                       worker="W1", gpus=[0], params={}, start_epoch=0, stop_epoch=len(epochs))
        for epoch, (end, seconds) in enumerate(epochs, start=1):
            journal.append("metrics", end, job_id=job_id, epoch=epoch, values={"val_mean_dice": 0.5, "seconds": seconds})
        journal.append("job_finished", epochs[-1][0], job_id=job_id, status="completed")
    journal.close()


def test_plan_measures_the_start_up_of_jobs_in_the_newest_earlier_run(fake_mmar):
    from conftest import run_cli

    from automl_cli.plan import measure

    # start-ups 8, 12 and 30 s (median 12), epochs 10 s
    _journal(fake_mmar / "automl" / "old", [(0.0, [(18.0, 10.0), (28.0, 10.0)]), (28.0, [(50.0, 10.0)]),
                                            (50.0, [(90.0, 10.0), (100.0, 10.0)])])
    found = measure(fake_mmar / "automl")
    assert (found.epoch_seconds, found.startup_seconds) == (10.0, 12.0)
    assert found.startup_source == "median of 3 job(s) of run old"
    result = run_cli("plan", "-m", str(fake_mmar), "--workers", "0")
    assert result.returncode == 0, result.stderr
    # 4 jobs of 3 epochs on one worker: 4 x (12 + 3 x 10) s
    assert "estimated wall time with 1 worker(s) at 10 s/epoch (median of 5 epochs of run old): 0:02:48 (job " \
           "start-up included)" in result.stdout
    assert ("assumed: 1 worker(s) (--workers 0); 10 s/epoch (median of 5 epochs of run old); start-up 12 s per job "
            "(median of 3 job(s) of run old), added to every job") in result.stdout
    given = run_cli("plan", "-m", str(fake_mmar), "--workers", "0:1", "--startup-seconds", "0")
    assert "with 2 worker(s) at 10 s/epoch (median of 5 epochs of run old): 0:01:00" in given.stdout
    assert "start-up 0 s per job (given)" in given.stdout


def test_plan_takes_the_workers_the_mmars_own_command_passes(fake_mmar):
    from conftest import run_cli

    (fake_mmar / "commands").mkdir()
    (fake_mmar / "commands" / "automl.sh").write_text(
        "#!/usr/bin/env bash\n# e.g. commands/automl.sh run_id=test1 workers=0\n"
        'exec automl run -m "$MMAR_ROOT" --set run_id=a workers=0:1:2 "$@"\n')
    result = run_cli("plan", "-m", str(fake_mmar), "--epoch-seconds", "10")
    assert result.returncode == 0, result.stderr
    assert "estimated wall time with 3 worker(s) at 10 s/epoch (given)" in result.stdout
    assert ("assumed: 3 worker(s) (commands/automl.sh passes workers=0:1:2); 10 s/epoch (given); start-up not "
            "measured: no earlier run; give --startup-seconds; counted as 0") in result.stdout
    option = run_cli("plan", "-m", str(fake_mmar), "--epoch-seconds", "10", "--workers", "0:1")
    assert "assumed: 2 worker(s) (--workers 0:1)" in option.stdout
    config = fake_mmar / "config" / "config_automl.json"  # SLURM: as many as may be queued or running at once
    doc = json.loads(config.read_text())
    doc["executor"] = {"name": "SlurmExecutor", "args": {**doc["executor"]["args"], "max_jobs": 6}}
    config.write_text(json.dumps(doc))
    slurm = run_cli("plan", "-m", str(fake_mmar), "--epoch-seconds", "10")
    assert "assumed: 6 worker(s) (SLURM: up to 6 jobs at a time, config_automl.json's executor max_jobs)" \
        in slurm.stdout, slurm.stderr
