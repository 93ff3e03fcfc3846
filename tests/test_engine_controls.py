"""Acting on a live search: stop gracefully, suspend and resume a worker, abort a job, and
event listeners. Driven in virtual time (the simulated backend), so each test is instant."""
from pathlib import Path

import pytest

from automl_cli.algorithms.base import get_algorithm
from automl_cli.backends.simulated import SimulatedBackend
from automl_cli.engine import Engine, EngineSettings
from automl_cli.errors import UsageError
from automl_cli.space import parse_search_space
from automl_cli.store import Journal
from automl_cli.workers import Worker

SEARCH = [{"args": ["x"], "type": "float", "targets": [0.0, 1.0]}]


def make_engine(n_workers=2, recommendations=8, epochs=3):
    space = parse_search_space({"x": 0.5, "search": SEARCH}, Path("<test>"))
    algo = get_algorithm("random")(space, max_epochs=epochs, seed=0,
                                   params={"automl_max_recommendations": recommendations})
    backend = SimulatedBackend(lambda config, epoch, state: (config["x"] * epoch, 10.0), "objective",
                               lambda values: space.apply({"x": 0.5}, values))
    workers = [Worker(i + 1, ()) for i in range(n_workers)]
    engine = Engine(EngineSettings("controls", "random", space, workers, "objective", "minimize", epochs),
                    algo, backend, Journal(Path(":memory:")))
    return engine


def at_time(engine, when, action):
    """Run `action(engine)` once, on the first loop turn at or after virtual time `when`."""
    done = []

    def hook(e):
        if not done and e.backend.now() >= when:
            done.append(action(e))
    engine.tick_hooks.append(hook)
    return done


def test_stop_starts_no_new_job_lets_running_ones_end_and_finishes_with_a_best():
    engine = make_engine()
    at_time(engine, 15.0, lambda e: e.request_stop("asked by a test"))
    view = engine.run()
    best = engine.finish()
    # two jobs were running at t=15 (3 epochs of 10 s each): both end, nothing new starts
    assert len(view.jobs) == 2
    assert all(j.status == "completed" and j.epoch == 3 for j in view.jobs.values())
    assert "stopped early: asked by a test" in view.message and best is not None
    kinds = [e.kind for e in engine.journal.events()]
    assert kinds.count("run_stop_requested") == 1
    assert engine.request_stop("again") is False  # a second stop changes nothing


def test_a_suspended_worker_gets_no_new_job_until_resumed():
    engine = make_engine(recommendations=6)
    at_time(engine, 5.0, lambda e: e.suspend_worker("W2"))
    resumed = at_time(engine, 65.0, lambda e: e.resume_worker("W2"))
    view = engine.run()
    on_w2 = sorted((j.started, j.name) for j in view.jobs.values() if j.worker == "W2")
    # W2's first job (started at 0) ran on; its next job came only after the resume at t=65
    assert on_w2[0][0] == 0.0 and all(t >= 65.0 for t, _ in on_w2[1:]) and len(on_w2) >= 2
    assert resumed == ["W2 resumed"]
    assert len(view.jobs) == 6 and all(j.status == "completed" for j in view.jobs.values())
    kinds = [e.kind for e in engine.journal.events()]
    assert kinds.count("worker_suspended") == 1 and kinds.count("worker_resumed") == 1


def test_with_every_worker_suspended_the_search_waits_instead_of_failing():
    engine = make_engine(n_workers=1, recommendations=2)
    at_time(engine, 1.0, lambda e: e.suspend_worker("W1"))
    turns = []

    def release(e):
        turns.append(e.backend.now())
        if len(turns) == 50:
            e.resume_worker("W1")
    engine.tick_hooks.append(release)
    view = engine.run()
    assert len(view.jobs) == 2 and view.jobs[2].started >= 30.0


def test_abort_stops_a_workers_job_scores_what_it_reported_and_the_search_goes_on():
    engine = make_engine(recommendations=4)
    answer = at_time(engine, 15.0, lambda e: e.abort_job("W1"))
    view = engine.run()
    assert answer == ["job W1_1_J1 stopping"]
    first = view.jobs[1]
    assert first.status == "stopped" and first.epoch == 2 and "aborted by the user" in first.cause
    assert first.metric is not None  # scored on the epochs it reported
    assert len(view.jobs) == 4 and sum(j.status == "completed" for j in view.jobs.values()) == 3


def test_controls_name_unknown_workers_in_one_line():
    engine = make_engine()
    with pytest.raises(UsageError, match=r"no worker 'W9' \(workers: W1, W2\)"):
        engine.suspend_worker("W9")
    with pytest.raises(UsageError, match="no worker or job 'W9_1_J1'"):
        engine.abort_job("W9_1_J1")
    assert engine.abort_job("W1") == "W1 has no running job"
    assert engine.resume_worker("W1") == "W1 is not suspended"


def test_listeners_hear_every_journaled_event_in_order():
    engine = make_engine(recommendations=2)
    heard = []
    engine.listeners.append(lambda event: heard.append((event.seq, event.kind)))
    engine.run()
    engine.finish()
    assert heard == [(e.seq, e.kind) for e in engine.journal.events()]
    assert heard[0][1] == "run_started" and heard[-1][1] == "run_finished"
