"""The time budget: durations, the run's own time over its sessions, and in simulation every
algorithm stopping to launch at the budget (soft: running jobs finish; hard: they are cut)."""
import json
import re
import time
from pathlib import Path

import pytest

from automl_cli.algorithms import REGISTRY, load_all
from automl_cli.backends.base import Backend, JobExit, MetricsReport
from automl_cli.engine import Engine, EngineSettings
from automl_cli.durations import format_duration, parse_duration
from automl_cli.runconfig import BUDGET_PASSES, fill_budget
from automl_cli.simulate import simulate
from automl_cli.space import parse_search_space
from automl_cli.status import RunView
from automl_cli.store import Event, Journal, read_events
from automl_cli.workers import Worker

from conftest import run_cli, set_epoch_seconds
from test_simulate import SEARCH, curve

load_all()

# long enough that half of its natural length is a budget that bites
LONG = {"random": {"automl_max_recommendations": 24}, "bayesian": {"automl_max_recommendations": 14},
        "bfbo": {"automl_max_recommendations": 14}, "grid": {"grid_points": 4},
        "reinforcement": {"max_rounds": 24}, "asha": {"automl_max_trials": 24},
        "pbt": {"automl_population_size": 4, "automl_eval_interval": 3}}


@pytest.mark.parametrize("text, seconds", [("90s", 90), ("45m", 2700), ("12h", 43200), ("1d", 86400),
                                           ("1h30m", 5400), ("2d3h4m5s", 183845), ("1.5h", 5400), ("600", 600),
                                           (" 12H ", 43200), (3600, 3600), (0.5, 0.5)])
def test_durations_read(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "12x", "30m1h", "1h1h", "-5", "0", 0, "0s", "inf", "nan", True, None,
                                  [1], "1h-30m"])
def test_bad_durations_are_refused(text):
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration(text)


@pytest.mark.parametrize("seconds, text", [(43200, "12h"), (5400, "1h30m"), (90, "1m30s"), (86400, "1d"),
                                           (0.5, "0.5s")])
def test_durations_written_as_read(seconds, text):
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds


def _events(*rows):
    return [Event(seq, when, kind, data) for seq, (when, kind, data) in enumerate(rows, start=1)]


def _clock(rows) -> RunView:
    """A view that heard only the events' times (RunView._count_time): no jobs needed."""
    view = RunView()
    for seq, (when, kind, data) in enumerate(rows, start=1):
        view._count_time(Event(seq, when, kind, data))
    return view


def test_used_time_counts_each_session_not_the_time_between():
    view = _clock([
        (1000.0, "run_started", {"run_id": "r", "time_budget": 3600.0}),
        (1100.0, "asked", {}),
        (1300.0, "metrics", {"job_id": 1, "epoch": 1}),  # the tool dies after this
        # a day later: what the dead run's trainer wrote is recovered as the next session begins
        (90000.0, "metrics", {"job_id": 1, "epoch": 2, "recovered": True}),
        (90001.0, "run_rebuilt", {}),  # --rebuild: then run_resumed, in the same session
        (90002.0, "run_resumed", {"time_budget": 7200.0, "time_budget_hard": True}),
        (90051.0, "asked", {})])
    assert view.time_used() == 300.0 + 50.0
    assert (view.time_budget, view.time_budget_hard) == (7200.0, True)
    assert view.time_used(now=90101.0) == 400.0


def test_a_resume_without_a_budget_keeps_the_one_the_run_had():
    view = _clock([(0.0, "run_started", {"run_id": "r", "time_budget": 60.0}), (70.0, "budget_reached", {}),
                   (500.0, "run_resumed", {}), (510.0, "asked", {})])
    assert view.time_budget == 60.0 and view.time_used() == 80.0


def _budget(full) -> float:
    """A budget that bites: the time at which about two thirds of the run's jobs had started
    (at a job's start: the run with the budget starts it no more)."""
    starts = sorted(j["start_time"] for j in full.jobs)
    k = next(i for i in range(len(starts) * 2 // 3, len(starts)) if starts[i] > starts[i - 1])
    return starts[k]


def _mid_job(full) -> float:
    """A budget that falls in the middle of a job (two thirds into the run's jobs)."""
    job = sorted(full.jobs, key=lambda j: j["start_time"])[len(full.jobs) * 2 // 3]
    return (job["start_time"] + job["end_time"]) / 2


def _run(algorithm, **options):
    params = dict(LONG.get(algorithm, {}))
    return simulate(algorithm, SEARCH, curve, max_epochs=9, n_workers=3, seed=0, params=params, **options)


@pytest.mark.parametrize("algorithm", sorted(REGISTRY))
def test_soft_budget_starts_no_job_after_it_and_lets_running_ones_finish(algorithm):
    full = _run(algorithm)
    budget = _budget(full)
    result = _run(algorithm, time_budget=budget, time_budget_hard=False)
    assert result.jobs and max(j["start_time"] for j in result.jobs) < budget
    # up to the budget the run is the run without one: the same jobs start, at the same times
    before = [(j["job_id"], j["params"], j["start_time"]) for j in full.jobs if j["start_time"] < budget]
    assert [(j["job_id"], j["params"], j["start_time"]) for j in result.jobs] == before
    assert len(result.jobs) < len(full.jobs)
    assert not any("time budget" in job.cause for job in result.view.jobs.values())
    assert all(j["status"] in ("completed", "stopped") for j in result.jobs)
    assert result.view.budget_reached["hard"] is False
    assert result.view.stop_requested.startswith("time budget")


@pytest.mark.parametrize("algorithm", sorted(REGISTRY))
def test_hard_budget_cuts_running_jobs_at_it(algorithm):
    full = _run(algorithm)
    budget = _mid_job(full)
    result = _run(algorithm, time_budget=budget)  # hard: simulate()'s default
    assert result.elapsed == budget
    assert max(j["start_time"] for j in result.jobs) < budget
    assert max(j["end_time"] for j in result.jobs) <= budget
    cut = [job for job in result.view.jobs.values() if "time budget" in job.cause]
    running_at_budget = [j for j in full.jobs if j["start_time"] < budget < j["end_time"]]
    assert running_at_budget and cut
    assert all(job.status == "stopped" and job.ended == budget for job in cut)
    assert result.view.budget_reached["hard"] is True


class _PollingBackend(Backend):
    """Processes on a clock that moves 4 s per poll: what happened since the last poll is only
    heard at the next one, as with real processes. Job k trains 2 epochs of 3k s and exits 0
    half a second later; a stop cuts what has not happened yet."""

    def __init__(self):
        self.clock, self.pending, self.live = 0.0, [], set()

    def start(self, job):
        self.live.add(job.job_id)
        epoch = 3.0 * job.job_id
        self.pending += [(self.clock + epoch, MetricsReport(job.job_id, {"epoch": 1, "val": 0.5})),
                         (self.clock + 2 * epoch, MetricsReport(job.job_id, {"epoch": 2, "val": 0.6})),
                         (self.clock + 2 * epoch + 0.5, JobExit(job.job_id, 0))]
        return {"dir": ""}

    def poll(self):
        events = [event for when, event in self.pending if when <= self.clock]
        self.pending = [(when, event) for when, event in self.pending if when > self.clock]
        self.live -= {event.job_id for event in events if isinstance(event, JobExit)}
        self.clock += 4.0
        return events

    def stop(self, job_id):
        if job_id in self.live:
            self.pending = [(w, e) for w, e in self.pending if e.job_id != job_id] + \
                [(self.clock, JobExit(job_id, -15, stop_requested=True))]

    def stop_all(self):
        for job_id in list(self.live):
            self.stop(job_id)
        return self.poll()

    def running(self):
        return sorted(self.live)

    def now(self):
        return self.clock

    def idle(self, seconds):
        pass


def test_a_job_that_ended_just_before_a_hard_budget_counts_as_completed():
    # job 1 exits at 6.5 s; the engine would hear of it at its poll at 8 s, but first finds the
    # 7 s budget spent: the exit is heard before the running jobs are cut, so job 1 completed,
    # and only job 2 (its second epoch would end at 12 s) is cut
    space = parse_search_space({"m": {"name": "M", "args": {"lr": 0.1}, "search": [
        {"args": "lr", "type": "float", "targets": [1e-4, 1e-1]}]}}, Path("c.json"))
    algo = REGISTRY["random"](space, max_epochs=2, seed=0, params={"automl_max_recommendations": 4})
    journal = Journal(Path(":memory:"))
    settings = EngineSettings("r", "random", space, [Worker(1, ()), Worker(2, ())], "val", "maximize", 2,
                              time_budget=7.0, time_budget_hard=True)
    view = Engine(settings, algo, _PollingBackend(), journal).run()
    ended = {job.job_id: (job.status, job.epoch, job.cause) for job in view.jobs.values()}
    assert ended == {1: ("completed", 2, ""), 2: ("stopped", 1, "stopped at the time budget 7s")}
    reached = next(e for e in journal.events() if e.kind == "budget_reached")
    assert reached.data["running"] == 1


def _even(config, epoch, state):
    """`curve`'s values with every epoch taking 5 s: a job launched with 5 s left reports in time."""
    return curve(config, epoch, state)[0], 5.0


@pytest.mark.parametrize("algorithm", sorted(REGISTRY))
def test_a_hard_budget_launches_no_job_it_would_cut_before_its_first_epoch(algorithm):
    # epochs end at multiples of 5 s; with 47 s, a job launched at 45 s would be cut at 47 s
    # with nothing to show, so none is: every job the run started reported at least one epoch
    params = dict(LONG.get(algorithm, {}))
    result = simulate(algorithm, SEARCH, _even, max_epochs=9, n_workers=3, seed=0, params=params, time_budget=47.0)
    jobs = result.view.jobs.values()
    assert all(job.epoch > job.start_epoch for job in jobs), \
        [(job.name, job.start_epoch, job.epoch, job.cause) for job in jobs if job.epoch == job.start_epoch]
    assert max(job.started for job in jobs) <= 40
    assert result.view.budget_reached is not None


def test_with_nothing_running_and_no_time_for_an_epoch_the_search_ends_before_its_hard_budget():
    # one worker, 3 epochs of 5 s per job, 34 s: two jobs end at 30 s and a third would be
    # cut at 34 s before its first epoch; the search ends at 30 s, as if its budget were spent
    result = simulate("random", SEARCH, _even, max_epochs=3, n_workers=1, seed=0,
                      params={"automl_max_recommendations": 10}, time_budget=34.0)
    assert [(job.status, job.epoch) for job in result.view.jobs.values()] == [("completed", 3), ("completed", 3)]
    assert result.elapsed == 30.0
    reached = result.view.budget_reached
    assert reached["hard"] is True and reached["running"] == 0
    assert reached["message"] == ("time budget 34s as good as reached (4s left, too little for a first epoch): "
                                  "none running, the search ends")
    # a soft budget lets running jobs finish whatever is left: it keeps launching until it ends,
    # and says when the last running job should end
    soft = simulate("random", SEARCH, _even, max_epochs=3, n_workers=1, seed=0,
                    params={"automl_max_recommendations": 10}, time_budget=34.0, time_budget_hard=False)
    assert len(soft.view.jobs) == 3 and soft.elapsed == 45.0
    assert soft.view.budget_reached["message"] == ("time budget 34s reached: no new jobs (1 running finish, the last "
                                                   "in about 10s)")  # seen at 35 s, the first event after 34 s: 2 epochs left


@pytest.mark.parametrize("algorithm", ["hyperband", "hyperband_es", "bohb", "dehb"])
def test_a_budget_lengthens_the_hyperband_family_until_it_ends_the_search(algorithm):
    one_pass = simulate(algorithm, SEARCH, curve, max_epochs=9, n_workers=3, seed=0)
    params: dict = {}
    notes = fill_budget(algorithm, params, 9, 3 * one_pass.elapsed)
    assert params == {"automl_hyperband_iterations": BUDGET_PASSES} and "raised" in notes[0]
    filled = simulate(algorithm, SEARCH, curve, max_epochs=9, n_workers=3, seed=0, params=params,
                      time_budget=3 * one_pass.elapsed, time_budget_hard=False)
    assert filled.view.budget_reached is not None  # the budget ended it, not the schedule
    assert len(filled.jobs) > 2 * len(one_pass.jobs)
    # the notes number brackets without the 1000 passes nobody plans (one pass: "bracket 2/3")
    assert sum(1 for job in filled.view.jobs.values() if job.note) > len(one_pass.jobs)
    assert all(re.match(r"bracket \d+ rung", job.note) for job in filled.view.jobs.values() if job.note)
    assert all(re.match(r"bracket \d+/\d+ rung", job.note) for job in one_pass.view.jobs.values() if job.note)
    lines = REGISTRY[algorithm](parse_search_space({"x1": 0, "x2": 0, "opt": "adam", "act": "relu", "search": SEARCH},
                                                   Path("c.json")), max_epochs=9, seed=0, params=params).explain()
    assert any("brackets run over and over until the time budget ends the search" in line for line in lines)


def test_a_schedule_the_user_set_is_kept_and_pbt_trains_to_the_configs_epochs():
    params = {"automl_hyperband_iterations": 2}
    assert fill_budget("hyperband", params, 9, 3600.0) == [] and params == {"automl_hyperband_iterations": 2}
    assert fill_budget("hyperband", {}, 9, None) == []
    params = {"automl_eval_interval": 2}
    assert "automl_max_generations raised to 50" in fill_budget("pbt", params, 100, 3600.0)[0]
    assert params["automl_max_generations"] == 50
    params = {}
    assert fill_budget("random", params, 9, 3600.0) == [] and params == {}


# -- end to end: the real command line, real trainer processes (tests/fake_trainer.py) ----------
def test_a_run_ends_on_its_budget_and_a_resume_with_a_bigger_one_goes_on(fake_mmar):
    set_epoch_seconds(fake_mmar, 0.4)
    run_dir = fake_mmar / "automl" / "b"
    common = ("run", "-m", str(fake_mmar), "--run-id", "b", "--workers", "0:1", "automl_max_recommendations=40")

    soft = run_cli(*common, "--time-budget", "4s", timeout=120)
    assert soft.returncode == 0, soft.stderr
    trace = (run_dir / "trace.log").read_text()
    assert "time budget 4s: no new job after it; running jobs finish" in trace
    # both workers are busy but at the moment one job ends and the next has yet to start
    # (and when the last should end, once each has timed an epoch)
    assert re.search(r"time budget 4s reached: no new jobs \([12] running finish(, the last in about \d+s)?\)", trace)
    assert "ended by its time budget 4s; --resume with a bigger --time-budget continues" in soft.stdout + trace
    status = json.loads((run_dir / "status.json").read_text())["b"]
    assert status["time_budget"]["reached"] and status["time_budget"]["budget"] == "4s"
    events = read_events(run_dir)
    reached = next(e for e in events if e.kind == "budget_reached")
    first = [e for e in events if e.kind == "job_started"]
    assert 2 <= len(first) < 40 and all(e.time < reached.time for e in first)
    assert all(e.data["status"] == "completed" for e in events if e.kind == "job_finished")  # soft: they finished
    assert (run_dir / "best" / "config" / "config_train.json").is_file()

    again = run_cli("run", "-m", str(fake_mmar), "--run-id", "b", "--resume", timeout=120)  # the budget is spent
    assert again.returncode == 0, again.stderr
    assert "time budget 4s reached: no new jobs (none running)" in (run_dir / "trace.log").read_text()
    assert sum(e.kind == "job_started" for e in read_events(run_dir)) == len(first)

    time.sleep(2)  # the machine idle between sessions: not the run's time
    set_epoch_seconds(fake_mmar, 2.0)  # the next jobs outlast what is left of the budget: both are cut
    hard = run_cli("run", "-m", str(fake_mmar), "--run-id", "b", "--resume", "--time-budget", "10s",
                   "--time-budget-hard", timeout=120)
    assert hard.returncode == 0, hard.stderr
    trace = (run_dir / "trace.log").read_text()
    assert "time budget 10s reached: no new jobs (2 running stopped with their checkpoints)" in trace
    events = read_events(run_dir)
    started = [e for e in events if e.kind == "job_started"]
    assert len(started) > len(first)
    cut = [e.data for e in events if e.kind == "job_finished" and "time budget" in (e.data.get("cause") or "")]
    assert len(cut) == 2 and all(d["status"] == "stopped" and d["cause"] == "stopped at the time budget 10s"
                                 for d in cut)
    names = {e.data["job_id"]: e.data["name"] for e in started}
    for d in cut:  # stopped with SIGTERM: each keeps the checkpoint of the epochs it trained
        assert d["epochs"] == 0 or (run_dir / names[d["job_id"]] / "models" / "checkpoint.pt").is_file()
    status = json.loads((run_dir / "status.json").read_text())["b"]
    assert status["time_budget"]["hard"] and status["time_budget"]["seconds"] == 10
    # the three sessions' own time: about the 10 s budget (plus the stopping), not the wall time since the start
    wall = events[-1].time - events[0].time
    assert 10 <= status["time_budget"]["used_seconds"] < wall - 1.5


def test_bad_budgets_are_one_line_naming_where_they_were(fake_mmar):
    bad = run_cli("run", "-m", str(fake_mmar), "--run-id", "x", "--time-budget", "12x")
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0
    assert "bad --time-budget: expected a duration" in bad.stderr
    config = fake_mmar / "config" / "config_automl.json"
    doc = json.loads(config.read_text())
    doc["automl_time_budget"] = "soon"
    config.write_text(json.dumps(doc))
    bad = run_cli("run", "-m", str(fake_mmar), "--run-id", "x")
    assert bad.returncode == 2 and "config_automl.json: $.automl_time_budget: expected a duration" in bad.stderr
    assert not (fake_mmar / "automl" / "x").exists()


def test_plan_says_what_fits_in_the_budget(fake_mmar):
    fits = run_cli("plan", "-m", str(fake_mmar), "--algorithm", "hyperband", "--workers", "0:1", "--epoch-seconds",
                   "10", "--time-budget", "30m", "--set", "automl_R=3")
    assert fits.returncode == 0, fits.stderr
    assert "automl_hyperband_iterations raised to 1000" in fits.stdout
    assert "in the time budget 30m with 2 worker(s) at 10 s/epoch:" in fits.stdout
    assert "the budget ends the search (the running jobs finish" in fits.stdout
    short = run_cli("plan", "-m", str(fake_mmar), "--workers", "0:1", "--epoch-seconds", "10", "--time-budget", "1d")
    assert "the search ends before the time budget 1d: 4 jobs" in short.stdout  # automl_max_recommendations: 4
    # hard: 4 jobs of 3 epochs (30 s) on 2 workers end at 30 s and 60 s; with 65 s a third
    # round would be cut 5 s into its first epoch, so the search ends at 60 s
    hard = run_cli("plan", "-m", str(fake_mmar), "--workers", "0:1", "--epoch-seconds", "10", "--time-budget", "65s",
                   "--time-budget-hard", "--set", "automl_max_recommendations=8")
    assert ("4 jobs start, 12 epochs of training; the budget ends the search (none running, its last 5s too short "
            "for a job's first epoch, at 0:01:00;") in hard.stdout, hard.stdout
    cut = run_cli("plan", "-m", str(fake_mmar), "--workers", "0:1", "--epoch-seconds", "10", "--time-budget", "55s",
                  "--time-budget-hard", "--set", "automl_max_recommendations=8")
    assert "4 jobs start, 10 epochs of training; the budget ends the search (the running jobs stopped there, at " \
           "0:00:55;" in cut.stdout, cut.stdout
    unknown = run_cli("plan", "-m", str(fake_mmar), "--time-budget", "1h")
    assert "what fits in the time budget 1h: unknown without the time of an epoch" in unknown.stdout


def test_the_budget_of_config_automl_json_is_said_by_validate_and_ends_the_run(fake_mmar):
    set_epoch_seconds(fake_mmar, 1.5)  # the first two jobs outlast the budget: both are cut
    config = fake_mmar / "config" / "config_automl.json"
    doc = json.loads(config.read_text())
    doc.update({"automl_time_budget": "3s", "automl_time_budget_hard": True})
    doc["controller"]["args"]["automl_max_recommendations"] = 40
    config.write_text(json.dumps(doc))
    validate = run_cli("validate", "-m", str(fake_mmar))
    assert "time budget 3s: no new job after it; running jobs are stopped then (with their checkpoints)" \
        in validate.stdout
    ran = run_cli("run", "-m", str(fake_mmar), "--run-id", "c", "--workers", "0:1", timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert "time budget 3s reached: no new jobs (2 running stopped with their checkpoints)" in \
        (fake_mmar / "automl" / "c" / "trace.log").read_text()


def test_a_schedule_lengthened_for_the_budget_shows_no_planned_job_count(fake_mmar):
    """1000 passes over the brackets are 'until the budget', not 17,000 planned jobs."""
    config = fake_mmar / "config" / "config_automl.json"
    doc = json.loads(config.read_text())
    doc["controller"] = {"name": "hyperband", "args": {"automl_R": 3, "automl_nu": 3, "epoch_multiplier": 1}}
    config.write_text(json.dumps(doc))
    ran = run_cli("run", "-m", str(fake_mmar), "--run-id", "h", "--time-budget", "2s", timeout=120)
    assert ran.returncode == 0, ran.stderr
    view = RunView.load(fake_mmar / "automl" / "h")
    assert view.settings["planned_jobs"] is None
    given = run_cli("run", "-m", str(fake_mmar), "--run-id", "g", "--time-budget", "2s",
                    "--set", "automl_hyperband_iterations=1", timeout=120)
    assert given.returncode == 0, given.stderr
    assert RunView.load(fake_mmar / "automl" / "g").settings["planned_jobs"] == 4  # R=3, nu=3: 3 jobs, then 1
