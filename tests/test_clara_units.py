"""The Clara layer in virtual time and on small folders: a user's controller replays from
the journal, rounds end in order under an asynchronous algorithm, MMARHandler's pruning
rule keeps every checkpoint a search may still start from, job folders in both modes."""
import json
from pathlib import Path

from automl_cli.algorithms.base import get_algorithm
from automl_cli.backends.simulated import SimulatedBackend
from automl_cli.clara import Controller, ControllerAlgorithm, JobInfo, MMARHandler
from automl_cli.clara.handler import HandlerContext
from automl_cli.clara.hub import HandlerHub
from automl_cli.engine import Engine, EngineSettings
from automl_cli.mmar import MMAR, clone_job
from automl_cli.space import parse_search_space
from automl_cli.status import RunView
from automl_cli.store import Journal
from automl_cli.workers import Worker

CONFIG = {"x": 0.5, "act": "relu", "search": [{"args": ["x"], "type": "float", "targets": [0.0, 1.0]},
                                              {"args": ["act"], "type": "enum", "targets": [["relu"], ["tanh"]]}]}
SPACE = parse_search_space(CONFIG, Path("<test>"))


class HillClimber(Controller):
    """Deterministic given ctx.seed: random starts, then a step from the best outcome so far."""

    def __init__(self, budget=9, starts=3):
        self.budget, self.starts, self.proposed = budget, starts, 0

    def initial_recommendation(self, ctx):
        self.proposed = self.starts
        return [{"x": float(ctx.rng.random()), "act": "relu"} for _ in range(self.starts)]

    def refine_recommendation(self, outcome, ctx):
        if self.proposed >= self.budget:
            return []
        self.proposed += 1
        best = min((o for o in ctx.outcomes if o.score is not None), key=lambda o: o.score)
        x = min(1.0, max(0.0, best.values["x"] + float(ctx.rng.normal(0, 0.1))))
        return [{"x": x, "act": ["tanh"] if outcome.job_id % 2 else "relu"}]


def objective(config, epoch, state):
    return (config["x"] - 0.3) ** 2 + (0.1 if config["act"] == "relu" else 0.0) + 1.0 / epoch, 1.0


def engine_for(algorithm, journal=None, workers=3):
    backend = SimulatedBackend(objective, "objective", lambda values: SPACE.apply(CONFIG, values))
    settings = EngineSettings("clara", algorithm.name, SPACE, [Worker(i + 1, ()) for i in range(workers)],
                              "objective", "minimize", 3)
    return Engine(settings, algorithm, backend, journal or Journal(Path(":memory:")))


def controller_algorithm(seed=1):
    return ControllerAlgorithm(SPACE, controller=HillClimber(), path="tests.HillClimber", max_epochs=3, seed=seed,
                               params={"budget": 9}, direction="minimize")


def test_a_deterministic_controller_replays_from_the_journal_into_the_same_recommendations():
    algorithm = controller_algorithm()
    engine = engine_for(algorithm)
    algorithm.attach_view(engine.view)
    engine.run()
    events = list(engine.journal.events())
    started = [e.data for e in events if e.kind == "job_started"]
    assert len(started) == 9 and algorithm.is_done()
    assert len(algorithm.ctx.outcomes) == 9 and all(o.name.startswith("W") for o in algorithm.ctx.outcomes)
    assert all(o.score == engine.view.jobs[o.job_id].metric for o in algorithm.ctx.outcomes)

    fresh = controller_algorithm()
    replay = engine_for(fresh)
    replay.resume(events)  # raises ResumeMismatch if the controller proposes other trials
    for job in started:
        assert replay.requests[job["job_id"]].params == job["params"]
    assert fresh.is_done()
    other = engine_for(controller_algorithm(seed=2))
    other.run()
    assert [e.data["params"] for e in other.journal.events() if e.kind == "job_started"] != \
        [job["params"] for job in started]


def test_a_recommendation_outside_the_space_ends_the_search_in_one_line():
    class Wrong(Controller):
        def initial_recommendation(self, ctx):
            return [{"x": 2.0, "act": "relu"}]

    algorithm = ControllerAlgorithm(SPACE, controller=Wrong(), path="tests.Wrong", max_epochs=3)
    try:
        algorithm.suggest(1)
    except Exception as exc:  # noqa: BLE001
        assert "tests.Wrong.initial_recommendation recommendation 1" in str(exc) and "not in the search space" in \
            str(exc)
    else:
        raise AssertionError("accepted x=2.0 outside [0, 1]")


class Recorder:
    def __init__(self):
        self.heard = []

    def __getattr__(self, event):
        if event.startswith("_"):
            raise AttributeError(event)
        return lambda ctx: self.heard.append((event, ctx.job.round if ctx.job else ctx.round,
                                              ctx.job.name if ctx.job else None))


def test_rounds_end_in_order_under_an_asynchronous_algorithm(tmp_path):
    algorithm = get_algorithm("asha")(SPACE, max_epochs=3, seed=0, params={"automl_max_trials": 8,
                                                                          "automl_max_concurrent": 3,
                                                                          "automl_min_epochs": 1})
    engine = engine_for(algorithm)
    recorder = Recorder()
    engine.listeners.append(HandlerHub([("recorder", recorder)], engine, tmp_path, tmp_path, lambda *a, **k: None))
    engine.run()
    engine.finish()
    heard = recorder.heard
    assert heard[0][0] == "start_automl" and heard[-1][0] == "end_automl"
    ended = [r for e, r, _ in heard if e == "round_ended"]
    asked = [r for e, r, _ in heard if e == "recommendations_available"]
    assert ended == asked == list(range(1, len(asked) + 1)) and len(asked) > 1
    ends = {j: i for i, (e, r, j) in enumerate(heard) if e == "end_job"}
    for number in ended:  # every job of rounds 1..k ended before round k ends
        at = heard.index(("round_ended", number, None))
        assert all(ends[j] < at for e, r, j in heard if e == "start_job" and r <= number)
    overlapping = [r for r in ended
                   if any(e == "start_job" and rr == r + 1 and i < heard.index(("round_ended", r, None))
                          for i, (e, rr, _) in enumerate(heard))]
    assert overlapping  # asha started a round before the previous one ended
    assert len([h for h in heard if h[0] == "end_job"]) == len(engine.view.jobs)


def folder(tmp_path, name, trial, job_id, status="completed", score=None, epochs=(0, 3)):
    directory = tmp_path / name
    (directory / "models").mkdir(parents=True)
    (directory / "models" / "checkpoint.pt").write_text("{}")
    return JobInfo(name, job_id, trial, name[:2], 1, directory, {"x": 0.1}, epochs[0], epochs[1], 1, status=status,
                   score=score)


def context(tmp_path, jobs, direction="maximize", stops=None, algorithm="pbt"):
    view = RunView()
    return HandlerContext("end_job", "r", tmp_path, tmp_path, SPACE, "dice", direction, algorithm, view, jobs,
                          job=jobs[-1], log=lambda *a, **k: None,
                          request_stop=(stops.append if stops is not None else (lambda reason: False)))


def test_pruning_keeps_a_pbt_donor_while_its_trials_next_segment_runs(tmp_path):
    donor = folder(tmp_path, "W1_1_J1", trial=1, job_id=1, score=0.9)
    weak = folder(tmp_path, "W2_1_J2", trial=2, job_id=2, score=0.1)
    old = folder(tmp_path, "W2_1_J3", trial=3, job_id=3, score=0.2)
    next_of_donor = folder(tmp_path, "W1_1_J4", trial=1, job_id=4, status="running", epochs=(3, 6))
    next_of_old = folder(tmp_path, "W2_1_J5", trial=3, job_id=5, score=0.3, epochs=(3, 6))
    next_of_weak = folder(tmp_path, "W2_1_J6", trial=2, job_id=6, status="running", epochs=(3, 6))
    jobs = [donor, weak, old, next_of_donor, next_of_old, next_of_weak]
    handler = MMARHandler(num_mmars_to_keep=1)
    handler.end_job(context(tmp_path, jobs))
    kept = sorted(p.parent.parent.name for p in tmp_path.glob("*/models/checkpoint.pt"))
    # J1 is superseded, but its successor has not completed: PBT may still copy it. J2 is its
    # trial's latest completed folder. Only J3, superseded by the completed J5 at a time when
    # every member has passed epoch 3, loses its weights.
    assert kept == ["W1_1_J1", "W1_1_J4", "W2_1_J2", "W2_1_J5", "W2_1_J6"]
    handler.end_automl(HandlerContext("end_automl", "r", tmp_path, tmp_path, SPACE, "dice", "maximize", "pbt",
                                      RunView(), jobs, status="completed",
                                      search_complete=False, log=lambda *a, **k: None))
    assert len(list(tmp_path.glob("*/models/checkpoint.pt"))) == 5  # stopped early: --resume needs them


def test_pruning_keeps_a_superseded_pbt_checkpoint_while_a_member_may_still_copy_it(tmp_path):
    """PBT's exploit copies the donor's checkpoint at the copying member's epoch: trial 1 has
    moved on to epoch 6, but trial 2 is still training to epoch 3 and, if it ranks in the
    bottom there, copies trial 1's job that ended at epoch 3."""
    first = folder(tmp_path, "W1_1_J1", trial=1, job_id=1, score=0.5)
    slow = folder(tmp_path, "W2_1_J2", trial=2, job_id=2, status="running")
    second = folder(tmp_path, "W1_1_J3", trial=1, job_id=3, score=0.6, epochs=(3, 6))
    third = folder(tmp_path, "W1_1_J4", trial=1, job_id=4, status="running", epochs=(6, 9))
    handler = MMARHandler(num_mmars_to_keep=1)
    handler.end_job(context(tmp_path, [first, slow, second, third]))
    assert (tmp_path / "W1_1_J1" / "models" / "checkpoint.pt").exists()
    # once trial 2 is past epoch 3, nothing can copy J1 any more; other algorithms never wait
    slow.status, slow.score = "completed", 0.1
    onward = folder(tmp_path, "W2_1_J5", trial=2, job_id=5, status="running", epochs=(3, 6))
    handler.end_job(context(tmp_path, [first, slow, second, third, onward]))
    assert not (tmp_path / "W1_1_J1" / "models" / "checkpoint.pt").exists()
    other = tmp_path / "asha"
    jobs = [folder(other, "W1_1_J1", trial=1, job_id=1, score=0.5),
            folder(other, "W2_1_J2", trial=2, job_id=2, status="running"),
            folder(other, "W1_1_J3", trial=1, job_id=3, score=0.6, epochs=(3, 9))]
    MMARHandler(num_mmars_to_keep=1).end_job(context(other, jobs, algorithm="asha"))
    assert not (other / "W1_1_J1" / "models" / "checkpoint.pt").exists()


def test_stop_threshold_reaches_downwards_for_a_minimised_metric(tmp_path):
    stops = []
    handler = MMARHandler(stop_threshold=0.2)
    handler.end_job(context(tmp_path, [folder(tmp_path, "W1_1_J1", 1, 1, score=0.25)], "minimize", stops))
    assert stops == []
    handler.end_job(context(tmp_path, [folder(tmp_path, "W1_1_J2", 2, 2, score=0.2)], "minimize", stops))
    assert stops == ["dice 0.2000 of W1_1_J2 reached stop_threshold 0.2 (MMARHandler)"]


def make_mmar(tmp_path):
    root = tmp_path / "mmar"
    (root / "config").mkdir(parents=True)
    (root / "config" / "config_train_for_automl.json").write_text(json.dumps({"search": "original"}))
    (root / "config" / "config_train.json").write_text("{}")
    (root / "resources").mkdir()
    (root / "resources" / "data.bin").write_bytes(b"x")
    (root / "models").mkdir()
    (root / "models" / "checkpoint.pt").write_text("old")
    (root / "runs").mkdir()
    return MMAR(root)


def test_job_folders_link_the_mmar_by_default_and_copy_it_whole_on_request(tmp_path):
    mmar = make_mmar(tmp_path)
    linked = clone_job(mmar, tmp_path / "J1", {"applied": True}, train_config_name="config_train_for_automl.json",
                       skip=frozenset({"runs"}))
    assert json.loads((linked.config_dir / "config_train_for_automl.json").read_text()) == {"applied": True}
    assert (linked.root / "resources").is_symlink() and not (linked.root / "runs").exists()
    assert list((linked.root / "models").iterdir()) == []  # never the MMAR's checkpoint
    copied = clone_job(mmar, tmp_path / "J2", {"applied": True}, copy_whole=True, skip=frozenset({"runs"}))
    assert not (copied.root / "resources").is_symlink() and (copied.root / "resources" / "data.bin").is_file()
    assert json.loads((copied.config_dir / "config_train.json").read_text()) == {"applied": True}
    assert json.loads((copied.config_dir / "config_train_for_automl.json").read_text()) == {"search": "original"}
