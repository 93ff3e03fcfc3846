"""Code written against Clara Train 4.x's own Python API (`automl.defs`,
`automl.components.controllers.controller`, `automl.components.handlers.handler`) runs
unchanged: a controller and a handler in the MMAR's custom/ folder, written as a Clara user
writes them, drive a real run of the command line (the stand-in trainer, so seconds)."""
import importlib
import json
import signal
import sys
import textwrap

import pytest

from automl_cli.clara import clara_api
from automl_cli.clara.clara_api.adapters import ClaraControllerAlgorithm, SpaceMap
from automl_cli.clara.components import load_class
from automl_cli.algorithms.base import Outcome as OurOutcome
from automl_cli.errors import ConfigError, SearchFailed
from automl_cli.runconfig import controller, describe_components, load_mmar
from automl_cli.space import parse_search_space
from automl_cli.status import RunView
from conftest import run_cli, set_epoch_seconds, start_run, wait_for, write_json

# A Clara 4.x user's custom/myAutoMLController.py: a random controller over the enum and
# float targets (the global `random` module, a priority queue of scores, stop_work after
# max_rounds results) and a handler that writes down what each event's context holds.
CLARA_MODULE = textwrap.dedent('''
    import json
    import random
    import threading
    from queue import PriorityQueue

    from automl.components.controllers.controller import Controller
    from automl.components.handlers.handler import Handler
    from automl.defs import Context, ContextKey, Outcome, Recommendation, SearchResult, Status


    class RandomController(Controller):
        def __init__(self, max_rounds=1000, batch=3, log_file=None):
            Controller.__init__(self)
            self.max_rounds = max_rounds
            self.batch = batch
            self.log_file = log_file
            self.current_rec_id = 0
            self.space = None
            self.scores = PriorityQueue()

        def _log(self, **record):
            with open(self.log_file, "a") as out:
                out.write(json.dumps(record) + "\\n")

        def set_search_space(self, space, ctx):
            self.space = space
            self.enum_space = {k: v for k, v in space.targets.items() if ".enum" in k}
            self.float_space = {k: v for k, v in space.targets.items() if ".float" in k}
            self._log(event="space", targets={k: [[r.min, r.max] for r in v] for k, v in space.targets.items()},
                      in_ctx=ctx.get_prop(ContextKey.SEARCH_SPACE) is space)

        def _sample_space(self):
            recommends = []
            for _ in range(self.batch):
                values = {}
                for k, v in self.enum_space.items():
                    values[k] = random.randint(0, len(v) - 1)
                for k, v in self.float_space.items():
                    values[k] = random.uniform(v[0].min, v[0].max)
                self._log(event="recommend", rec_id=self.current_rec_id, values=values)
                recommends.append(Recommendation(self.current_rec_id, SearchResult(self.space, values)))
                self.current_rec_id += 1
            return recommends

        def initial_recommendation(self, ctx):
            return self._sample_space()

        def refine_recommendation(self, outcome: Outcome, ctx: Context):
            self.scores.put((-outcome.score, outcome.recommendation_id))
            self._log(event="outcome", rec_id=outcome.recommendation_id, score=outcome.score, job=outcome.job_name,
                      status=outcome.status)
            if self.scores.qsize() >= self.max_rounds:
                ctx.stop_work(self, "Number of runs reached {}. Requesting stop.".format(self.max_rounds))
                return []
            return self._sample_space()


    class MyHandler(Handler):
        def __init__(self, log_file):
            Handler.__init__(self)
            self.log_file = log_file
            self.update_lock = threading.Lock()

        def _log(self, **record):
            with self.update_lock, open(self.log_file, "a") as out:
                out.write(json.dumps(record) + "\\n")

        def startup(self, ctx: Context):
            self._log(event="startup")

        def start_automl(self, ctx: Context):
            self._log(event="start_automl")

        def search_space_available(self, ctx: Context):
            self._log(event="search_space_available", keys=list(ctx.get_prop(ContextKey.SEARCH_SPACE).targets))

        def recommendations_available(self, ctx):
            recs = ctx.get_prop(ContextKey.RECOMMENDATIONS)
            self._log(event="recommendations_available", rec_ids=[r.rec_id for r in recs],
                      values=[r.result.values for r in recs])

        def start_job(self, ctx: Context):
            recs = ctx.get_prop("_recommendations")
            self._log(event="start_job", job=ctx.get_prop("_jobName"), recs=[r.rec_id for r in recs],
                      status=ctx.get_prop(ContextKey.JOB_STATUS))
            ctx.set_prop("mine", "set at start_job")

        def end_job(self, ctx: Context):
            parms = ctx.get_prop(ContextKey.CONCRETE_SEARCH_VALUE)
            self._log(event="end_job", job=ctx.get_prop(ContextKey.JOB_NAME),
                      params={k.split(":")[1]: v[0] for k, v in parms.items()},
                      score=ctx.get_prop(ContextKey.SCORE), status=ctx.get_prop(ContextKey.JOB_STATUS),
                      rec_id=ctx.get_prop(ContextKey.RECOMMENDATION).rec_id, mine=ctx.get_prop("mine"))

        def round_ended(self, ctx: Context):
            self._log(event="round_ended")

        def end_automl(self, ctx: Context):
            self._log(event="end_automl")

        def shutdown(self, ctx: Context):
            self._log(event="shutdown")
''')


@pytest.fixture(autouse=True)
def own_imports():
    """Each test's custom/ modules are its own: forget those an earlier test imported."""
    path, modules = list(sys.path), set(sys.modules)
    yield
    sys.path[:] = path
    for name in set(sys.modules) - modules:
        if "/custom/" in (getattr(sys.modules[name], "__file__", None) or "") or name.split(".")[0] == "automl":
            del sys.modules[name]


def clara_mmar(mmar, tmp_path, max_rounds=3, name="myController"):
    """The fake MMAR set up as Clara's BYOC example is: a controller by name and path, a handler by path."""
    (mmar / "custom").mkdir(exist_ok=True)
    (mmar / "custom" / "myAutoMLController.py").write_text(CLARA_MODULE)
    path = mmar / "config" / "config_automl.json"
    doc = json.loads(path.read_text())
    doc["controller"] = {"name": name, "path": "myAutoMLController.RandomController",
                         "args": {"max_rounds": max_rounds, "log_file": str(tmp_path / "controller.jsonl")}}
    doc["handlers"] = [{"name": "StatsHandler"},
                       {"path": "myAutoMLController.MyHandler", "args": {"log_file": str(tmp_path / "handler.jsonl")}}]
    write_json(path, doc)


def records(path, event=None):
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return [r for r in lines if event is None or r["event"] == event]


def jobs_by_trial(run_dir):
    return sorted(RunView.load(run_dir).jobs.values(), key=lambda j: j.trial_id)


def test_a_clara_controller_and_handler_run_unchanged_end_to_end(fake_mmar, tmp_path):
    clara_mmar(fake_mmar, tmp_path)
    validated = run_cli("validate", "-m", str(fake_mmar))
    assert validated.returncode == 0, validated.stderr
    assert "controller myAutoMLController.RandomController (your own, written against Clara's API" in validated.stdout
    assert "(name myController ignored: path given)" in validated.stdout
    assert "handlers: StatsHandler, myAutoMLController.MyHandler (Clara's API)" in validated.stdout
    assert not (tmp_path / "controller.jsonl").exists()  # validate builds the controller, calls nothing

    result = run_cli("run", "-m", str(fake_mmar), "--set", "run_id=clara")
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = fake_mmar / "automl" / "clara"
    jobs = jobs_by_trial(run_dir)
    assert RunView.load(run_dir).settings["algorithm"] == "myAutoMLController.RandomController"

    # the search space as Clara's controller sees it, keyed <domain>.<type>:<parameter>
    space = records(tmp_path / "controller.jsonl", "space")
    assert space == [{"event": "space", "in_ctx": True,
                      "targets": {"lr.float:Fake.lr": [[0.0001, 0.1]], "net.enum:Fake.choice": [[0, 0], [1, 1]]}}]
    # stop_work after 3 results: exactly the first three recommendations were trained, in order
    recommended = {r["rec_id"]: r["values"] for r in records(tmp_path / "controller.jsonl", "recommend")}
    assert len(recommended) == 9  # three at first, three after each of the first two results
    assert len(jobs) == 3 and all(j.status == "completed" for j in jobs)
    for rec_id, job in enumerate(jobs):
        values = recommended[rec_id]
        assert job.params["Fake.lr"] == values["lr.float:Fake.lr"]
        assert job.params["Fake.choice"] == [["good"], ["bad"]][values["net.enum:Fake.choice"]]
    outcomes = records(tmp_path / "controller.jsonl", "outcome")
    assert [(o["rec_id"], o["job"], o["status"]) for o in outcomes] == [(i, j.name, "completed")
                                                                         for i, j in enumerate(jobs)]
    assert [o["score"] for o in outcomes] == pytest.approx([j.metric for j in jobs])
    trace = (run_dir / "trace.log").read_text()
    assert ("stopping the search: controller myAutoMLController.RandomController asked to stop: Number of runs "
            "reached 3. Requesting stop.") in trace
    assert "ERROR" not in trace
    # the controller's search is over for good (a resume would not go on with its queued recommendations)
    assert "stopped early" not in RunView.load(run_dir).message

    # the handler heard every event, Clara's props filled
    heard = records(tmp_path / "handler.jsonl")
    kinds = [h["event"] for h in heard]
    assert kinds[:4] == ["startup", "start_automl", "search_space_available", "recommendations_available"]
    assert kinds[-2:] == ["end_automl", "shutdown"] and kinds.count("round_ended") == 3
    assert heard[2]["keys"] == ["lr.float:Fake.lr", "net.enum:Fake.choice"]
    rounds = [h for h in heard if h["event"] == "recommendations_available"]
    assert [h["rec_ids"] for h in rounds] == [[0], [1], [2]]  # one worker: one job a round
    assert [h["values"][0] for h in rounds] == [recommended[i] for i in range(3)]
    starts = [h for h in heard if h["event"] == "start_job"]
    assert [(s["job"], s["recs"], s["status"]) for s in starts] == [(j.name, [i], "running")
                                                                    for i, j in enumerate(jobs)]
    ends = [h for h in heard if h["event"] == "end_job"]
    assert [(e["job"], e["rec_id"], e["status"], e["mine"]) for e in ends] == \
        [(j.name, i, "completed", "set at start_job") for i, j in enumerate(jobs)]
    assert [e["score"] for e in ends] == pytest.approx([j.metric for j in jobs])
    assert [e["params"] for e in ends] == [{"Fake.lr": j.params["Fake.lr"], "Fake.choice": j.params["Fake.choice"][0]}
                                           for j in jobs]


def test_a_killed_run_resumes_and_its_clara_controller_replays_the_same_decisions(fake_mmar, tmp_path):
    """The controller draws from the global random module: the adapter gives it a stream
    seeded from the run's seed, so an uninterrupted run and a killed-then-resumed run train
    the same configurations."""
    clara_mmar(fake_mmar, tmp_path, max_rounds=4)
    whole = run_cli("run", "-m", str(fake_mmar), "--set", "run_id=whole")
    assert whole.returncode == 0, whole.stderr[-3000:]
    expected = [(j.params["Fake.lr"], j.params["Fake.choice"]) for j in jobs_by_trial(fake_mmar / "automl" / "whole")]
    assert len(expected) == 4

    (tmp_path / "handler.jsonl").unlink()
    set_epoch_seconds(fake_mmar, 0.3)
    run_dir = fake_mmar / "automl" / "k"
    tool = start_run(fake_mmar, "--set", "run_id=k")
    try:
        assert wait_for(lambda: (tmp_path / "handler.jsonl").exists()
                        and '"end_job"' in (tmp_path / "handler.jsonl").read_text(), timeout=120)
    finally:
        tool.send_signal(signal.SIGKILL)
        tool.wait(timeout=60)
    resumed = run_cli("run", "-m", str(fake_mmar), "--set", "run_id=k", "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    jobs = [j for j in jobs_by_trial(run_dir) if j.status == "completed"]
    assert [(j.params["Fake.lr"], j.params["Fake.choice"]) for j in jobs] == expected
    kinds = [h["event"] for h in records(tmp_path / "handler.jsonl")]
    assert kinds.count("startup") == 2 and kinds[-2:] == ["end_automl", "shutdown"]
    assert "asked to stop: Number of runs reached 4" in (run_dir / "trace.log").read_text()


def test_clara_modules_are_mounted_only_while_a_users_module_is_imported(tmp_path, monkeypatch):
    """A real package called `automl` (here a stand-in on sys.path) imports normally before
    and after; the user's module keeps the Clara classes it imported."""
    site = tmp_path / "site"
    (site / "automl").mkdir(parents=True)
    (site / "automl" / "__init__.py").write_text("REAL = True\n")
    (site / "automl" / "defs.py").write_text("REAL_DEFS = True\n")
    custom = tmp_path / "mmar" / "custom"
    custom.mkdir(parents=True)
    for name in ("clara_first", "clara_second"):
        (custom / f"{name}.py").write_text(textwrap.dedent('''
            from automl.defs import Recommendation, SearchResult
            from automl.components.controllers.controller import Controller
            import automl.components.handlers.handler as handler_module

            class C(Controller):
                def set_search_space(self, space, ctx): pass
                def initial_recommendation(self, ctx): return []
                def refine_recommendation(self, outcome, ctx): return []

            class H(handler_module.Handler):
                pass
        '''))
    monkeypatch.syspath_prepend(str(site))
    for name in [n for n in sys.modules if n == "automl" or n.startswith("automl.")]:
        monkeypatch.delitem(sys.modules, name)

    cls = load_class("clara_first.C", tmp_path / "mmar", "config_automl.json", ["controller", "path"])
    assert issubclass(cls, clara_api.Controller) and clara_api.is_clara_controller(cls)
    assert [n for n in sys.modules if n == "automl" or n.startswith("automl.")] == []  # nothing left behind
    module = sys.modules["clara_first"]
    assert module.Recommendation is clara_api.Recommendation and module.SearchResult is clara_api.SearchResult
    assert clara_api.is_clara_handler(module.H)
    real = importlib.import_module("automl")
    assert real.REAL and importlib.import_module("automl.defs").REAL_DEFS

    # with the real one imported first, it is back in place after the next user module
    load_class("clara_second.C", tmp_path / "mmar", "config_automl.json", ["controller", "path"])
    assert sys.modules["automl"] is real and sys.modules["automl.defs"].REAL_DEFS
    assert "automl.components" not in sys.modules
    assert sys.modules["clara_second"].Controller is clara_api.Controller


@pytest.mark.parametrize("source, expected", [
    ("from automl.components.executors.executor import Executor\n",
     "ModuleNotFoundError: No module named 'automl.components.executors' (of Clara's API, automl.defs, "
     "automl.components.controllers.controller, automl.components.handlers.handler are provided; see docs/clara.md)"),
    ("from automl.defs import EventType\n",
     "ImportError: cannot import name 'EventType' from 'automl.defs'"),
])
def test_a_clara_module_we_do_not_provide_is_a_one_line_error_saying_what_is(fake_mmar, source, expected):
    (fake_mmar / "custom").mkdir()
    (fake_mmar / "custom" / "needs_more.py").write_text(source + "class C:\n    pass\n")
    path = fake_mmar / "config" / "config_automl.json"
    doc = json.loads(path.read_text())
    doc["handlers"] = [{"path": "needs_more.C"}]
    write_json(path, doc)
    before = {n: m for n, m in sys.modules.items() if n.split(".")[0] == "automl"}
    with pytest.raises(ConfigError) as caught:
        describe_components(load_mmar(str(fake_mmar)))
    message = str(caught.value)
    assert "\n" not in message and "$.handlers[0].path: cannot import module 'needs_more'" in message
    assert expected in message
    if "EventType" in expected:
        assert message.endswith("(automl.defs here provides Context, ContextKey, Outcome, Recommendation, "
                                "SearchRange, SearchResult, SearchSpace, Status; see docs/clara.md)")
    assert {n: m for n, m in sys.modules.items() if n.split(".")[0] == "automl"} == before


def test_a_controller_with_both_name_and_path_runs_the_path(fake_mmar, tmp_path):
    """As in Clara (NVIDIA's example gives both): the path wins, also over one of our names."""
    clara_mmar(fake_mmar, tmp_path, name="random")
    loaded = load_mmar(str(fake_mmar))
    assert controller(loaded, None)[0] == "myAutoMLController.RandomController"
    lines = describe_components(loaded)
    assert lines[0].startswith("controller myAutoMLController.RandomController (your own, written against Clara's API")
    assert lines[0].endswith("(name random ignored: path given)")


def space_of(tmp_path):
    doc = {"epochs": 2, "fake": {"name": "Fake", "args": {"lr": 0.01, "act": "relu", "pair": 1, "width": 8},
                                 "search": [
                                     {"domain": "lr", "type": "float", "args": ["lr"], "targets": [0.001, 0.1]},
                                     {"domain": "net", "type": "enum", "args": ["act", "pair"],
                                      "targets": [["relu", 1], ["gelu", 2], ["tanh", 3]]},
                                     {"domain": "net", "type": "int", "args": ["width"], "targets": [4, 16]}]}}
    return parse_search_space(doc, tmp_path / "config_train.json")


class Scripted(clara_api.Controller):
    """A Clara controller returning what a test gives it, and keeping the outcomes it hears."""

    def __init__(self, initial, refined=()):
        self.initial, self.refined, self.heard = initial, list(refined), []

    def set_search_space(self, space, ctx):
        self.space = space

    def initial_recommendation(self, ctx):
        return [clara_api.Recommendation(rec_id, clara_api.SearchResult(self.space, v)) for rec_id, v in self.initial]

    def refine_recommendation(self, outcome, ctx):
        self.heard.append(outcome)
        return []


def test_clara_values_map_onto_our_parameters_exactly_and_outcomes_back(tmp_path):
    space = space_of(tmp_path)
    targets = SpaceMap(space).clara.targets
    assert list(targets) == ["lr.float:Fake.lr", "net.enum:Fake.act+pair", "net.int:Fake.width"]
    assert [(r.min, r.max, r.choice) for r in targets["net.enum:Fake.act+pair"]] == \
        [(0, 0, ["relu", 1]), (1, 1, ["gelu", 2]), (2, 2, ["tanh", 3])]
    given = {"lr.float:Fake.lr": 0.02, "net.enum:Fake.act+pair": 2, "net.int:Fake.width": 12}
    user = Scripted([("a", given), ("b", {**given, "net.enum:Fake.act+pair": 0})])
    algorithm = ClaraControllerAlgorithm(space, controller=user, path="m.Scripted", max_epochs=2, seed=3,
                                         direction="maximize")
    jobs = algorithm.suggest(2)
    assert [j.params for j in jobs] == [{"Fake.lr": 0.02, "Fake.act+pair": ["tanh", 3], "Fake.width": 12},
                                        {"Fake.lr": 0.02, "Fake.act+pair": ["relu", 1], "Fake.width": 12}]
    algorithm.on_finished(OurOutcome(jobs[1].trial_id, 2, "completed", -0.75, 2))  # a loss: metric 0.75
    algorithm.on_finished(OurOutcome(jobs[0].trial_id, 1, "failed", None, 1, "crashed"))
    assert [(o.recommendation_id, o.score, o.status, o.metric) for o in user.heard] == \
        [("b", 0.75, "completed", 0.75), ("a", clara_api.Outcome.FAILED_SCORE, "failed", None)]
    assert algorithm.is_done()


@pytest.mark.parametrize("values, expected", [
    ({"lr.float:Fake.lr": 0.02, "net.enum:Fake.act+pair": 3, "net.int:Fake.width": 8},
     "net.enum:Fake.act+pair takes the index of one of its 3 choices (0 to 2), got 3"),
    ({"lr.float:Fake.lr": 0.5, "net.enum:Fake.act+pair": 0, "net.int:Fake.width": 8},
     "lr.float:Fake.lr = 0.5 is outside its range [0.001, 0.1]"),
    ({"lr.float:Fake.lr": 0.02, "net.enum:Fake.act+pair": 0},
     "SearchResult.values has no value for net.int:Fake.width (an int parameter: give it a whole number"),
    ({"Fake.lr": 0.02}, "'Fake.lr' is not a key of the search space's targets (lr.float:Fake.lr, "),
])
def test_a_recommendation_outside_the_space_ends_the_search_saying_which_value(tmp_path, values, expected):
    algorithm = ClaraControllerAlgorithm(space_of(tmp_path), controller=Scripted([(0, values)]), path="m.Scripted",
                                         max_epochs=2)
    with pytest.raises(SearchFailed) as caught:
        algorithm.suggest(1)
    assert str(caught.value).startswith("controller m.Scripted.initial_recommendation recommendation 1: ")
    assert expected in str(caught.value)


def test_stop_work_from_a_clara_handler_is_our_stop_request(fake_mmar):
    """With one of our algorithms: the search finishes early, and --resume could go on."""
    (fake_mmar / "custom").mkdir()
    (fake_mmar / "custom" / "stopper.py").write_text(textwrap.dedent('''
        from automl.components.handlers.handler import Handler
        from automl.defs import ContextKey, Status

        class EnoughHandler(Handler):
            def end_job(self, ctx):
                if ctx.get_prop(ContextKey.JOB_STATUS) == Status.COMPLETED and ctx.get_prop(ContextKey.SCORE) > 0:
                    ctx.stop_work(self, "one good job is enough")
    '''))
    path = fake_mmar / "config" / "config_automl.json"
    doc = json.loads(path.read_text())
    doc["handlers"] = [{"path": "stopper.EnoughHandler"}]
    write_json(path, doc)
    result = run_cli("run", "-m", str(fake_mmar), "--set", "run_id=s", "automl_max_recommendations=6")
    assert result.returncode == 0, result.stderr[-3000:]
    view = RunView.load(fake_mmar / "automl" / "s")
    assert len(view.jobs) == 1
    assert "stopped early: EnoughHandler asked to stop: one good job is enough" in view.message
