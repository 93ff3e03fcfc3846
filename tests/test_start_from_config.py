"""The config's own values first (issue #22): the configuration as the user wrote it is
trial 1 (bracket 1's first, PBT's member 1) for every algorithm that proposes; a grid runs
its table only. Values the space cannot take are drawn and named; the switch turns it off;
a replayed journal makes the same decisions."""
import json
import math

import pytest

from automl_cli.algorithms import REGISTRY, load_all
from automl_cli.algorithms.presets import all_names
from automl_cli.simulate import simulate
from automl_cli.status import RunView
from automl_cli.testing import CONFIG, SPACE, check_algorithm, check_rebuild, named
from conftest import run_cli, write_json

load_all()

SEARCH = [{"args": ["x1"], "type": "float", "targets": [-5, 10]},
          {"args": ["x2"], "type": "float", "targets": [0, 15], "log": False},
          {"args": ["depth"], "type": "int", "targets": [1, 6]},
          {"args": ["opt", "act"], "type": "enum", "targets": [["adam", "relu"], ["sgd", "tanh"]]}]
WRITTEN = {"x1": 2.5, "x2": 7.0, "depth": 3, "opt": "sgd", "act": "tanh"}
OWN = {"x1": 2.5, "x2": 7.0, "depth": 3, "opt": "sgd", "act": "tanh"}


def curve(config, epoch, state):
    loss = (config["x1"] - 1) ** 2 + (config["x2"] - 3) ** 2 / 10 + config["depth"] + (config["opt"] == "sgd")
    return loss + 10.0 / epoch, 1.0


def small(name):
    return {"automl_max_recommendations": 6} if "automl_max_recommendations" in REGISTRY[name].parameters else {}


def first_trial(result):
    return min(result.jobs, key=lambda j: (j["trial_id"], j["job_id"]))


@pytest.mark.parametrize("name", sorted(n for n in REGISTRY if n != "grid"))
def test_trial_1_is_the_configs_own_values(name):
    for workers in (1, 3):
        result = simulate(name, SEARCH, curve, max_epochs=4, n_workers=workers, seed=1, params=small(name),
                          start_from=WRITTEN)
        job = first_trial(result)
        assert job["trial_id"] == 1 and job["config"] == OWN
        assert job["start_epoch"] == 0
        # asked for once: no other trial repeats it
        assert sum(j["config"] == OWN and j["start_epoch"] == 0 for j in result.jobs) == 1


def test_grid_runs_its_table_only():
    result = simulate("grid", SEARCH, curve, max_epochs=2, seed=0, params={"grid_points": 2}, start_from=WRITTEN)
    assert first_trial(result)["config"] != OWN
    off = simulate("grid", SEARCH, curve, max_epochs=2, seed=0, params={"grid_points": 2})
    assert [j["config"] for j in result.jobs] == [j["config"] for j in off.jobs]


@pytest.mark.parametrize("name", ["random", "bayesian", "hyperband", "pbt"])
def test_off_by_default_in_simulate_so_benchmarks_keep_their_decisions(name):
    on = simulate(name, SEARCH, curve, max_epochs=4, seed=2, params=small(name), start_from=WRITTEN)
    off = simulate(name, SEARCH, curve, max_epochs=4, seed=2, params=small(name))
    assert first_trial(on)["config"] == OWN and first_trial(off)["config"] != OWN


def test_values_outside_the_space_are_drawn_and_named():
    written = {**WRITTEN, "x1": 99.0, "opt": "rmsprop"}
    result = simulate("bayesian", SEARCH, curve, max_epochs=2, seed=0, params=small("bayesian"), start_from=written)
    job = first_trial(result)
    assert job["config"]["x2"] == 7.0 and job["config"]["depth"] == 3
    assert -5 <= job["config"]["x1"] <= 10 and job["config"]["x1"] != 99.0
    assert job["config"]["opt"] in ("adam", "sgd")
    note = result.view.jobs[job["job_id"]].note
    assert note == "the config's own values (x1, opt+act drawn: not usable as written)"


def test_written_values_reads_range_step_and_conditions():
    values = SPACE.written_values(CONFIG)
    assert values == {p.name: v for p, v in zip(SPACE.params, [0.1, ["relu"], 2, 0.0])}
    assert SPACE.complete(values, None)[1] == []
    bad = json.loads(json.dumps(CONFIG))
    bad["model"]["args"].update(lr=1.0, depth=2.5)
    del bad["model"]["args"]["drop"]
    import numpy as np

    config, drawn = SPACE.complete(SPACE.written_values(bad), np.random.default_rng(0))
    assert [SPACE.by_name[n].args for n in drawn] == [("lr",), ("depth",), ("drop",)]
    assert SPACE.contains(config)


@pytest.mark.parametrize("name", all_names())
def test_conformance_with_the_configs_own_values_first(name, tmp_path):
    check_algorithm(named(name, start_from=SPACE.written_values(CONFIG)), label=f"{name} from config",
                    journal_path=tmp_path / "journal.db")


@pytest.mark.parametrize("name", ["random", "bayesian", "bfbo", "reinforcement"])
def test_a_rebuilt_run_does_not_run_the_configs_values_again(name):
    trials = check_rebuild(named(name, start_from=SPACE.written_values(CONFIG)), label=name)
    own = SPACE.complete(SPACE.written_values(CONFIG), None)[0]
    assert sum(params == own for params in trials.values()) <= 1


def _configure(mmar, **automl):
    path = mmar / "config" / "config_automl.json"
    doc = json.loads(path.read_text())
    doc.update(automl)
    write_json(path, doc)


def test_automl_run_starts_from_the_configs_values_and_can_be_switched_off(fake_mmar):
    result = run_cli("run", "-m", str(fake_mmar), "--run-id", "on", "--workers", "0")
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = fake_mmar / "automl" / "on"
    view = RunView.load(run_dir)
    first = min(view.jobs.values(), key=lambda j: j.job_id)
    assert first.trial_id == 1 and first.params == {"Fake.lr": 0.01, "Fake.choice": ["good"]}, first.params
    started = [line for line in (run_dir / "trace.log").read_text().splitlines() if "the config's own values" in line]
    assert len(started) == 1 and "trial 1," in started[0] and started[0].endswith("[the config's own values]")

    result = run_cli("run", "-m", str(fake_mmar), "--run-id", "off", "--workers", "0",
                     "--set", "automl_start_from_config=false")
    assert result.returncode == 0, result.stderr[-3000:]
    trace = (fake_mmar / "automl" / "off" / "trace.log").read_text()
    assert "the config's own values" not in trace

    _configure(fake_mmar, automl_start_from_config="yes")
    result = run_cli("run", "-m", str(fake_mmar), "--run-id", "bad", "--workers", "0")
    assert result.returncode == 2 and "automl_start_from_config" in result.stderr
