"""grid: the table it builds (log spacing, ints on their step, conditions) and how it runs it."""
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import write_json

from automl_cli.algorithms import get_algorithm, load_all
from automl_cli.algorithms.base import Outcome
from automl_cli.algorithms.proposers.grid import grid_size, grid_table
from automl_cli.cli import cli
from automl_cli.errors import UsageError
from automl_cli.space import parse_search_space

load_all()

SPACE = parse_search_space({"opt": "adam", "lr": 0.1, "mom": 0.9, "depth": 1, "search": [
    {"args": "opt", "type": "enum", "targets": [["adam"], ["sgd"]]},
    {"args": "lr", "type": "float", "targets": [1e-4, 1e-2], "log": True},
    {"args": "mom", "type": "float", "targets": [0.5, 0.9], "condition": {"param": "opt", "in": ["sgd"]}},
    # on the step lattice {1, 4} the middle point 2.5 rounds onto 1, and is kept once
    {"args": "depth", "type": "int", "targets": [1, 4], "step": 3}]}, Path("grid.json"))


def test_grid_table_of_a_mixed_space_log_spacing_int_step_and_condition():
    rows = [(c["opt"][0], c["lr"], c["mom"], c["depth"]) for c in grid_table(SPACE, 3)]
    expected = []
    for lr in (1e-4, 1e-3, 1e-2):
        for depth in (1, 4):
            expected.append(("adam", lr, None, depth))
    for lr in (1e-4, 1e-3, 1e-2):
        for depth in (1, 4):
            for mom in (0.5, 0.7, 0.9):
                expected.append(("sgd", lr, mom, depth))
    assert len(rows) == len(expected) == 24
    for row, want in zip(rows, expected):
        assert row[0] == want[0] and row[1] == pytest.approx(want[1], rel=1e-9) and row[3] == want[3]
        assert row[2] == (None if want[2] is None else pytest.approx(want[2]))
        assert isinstance(row[3], int)
    assert grid_size(SPACE, 3) == 24
    assert all(SPACE.contains(c) for c in grid_table(SPACE, 3))


def test_grid_points_two_takes_the_ends_and_counts_match():
    rows = grid_table(SPACE, 2)
    assert {c["lr"] for c in rows} == {1e-4, 1e-2}
    assert {c["mom"] for c in rows} == {None, 0.5, 0.9}
    assert len(rows) == grid_size(SPACE, 2) == 2 * 2 + 2 * 2 * 2


def drive(seed, points=3, workers=2):
    algo = get_algorithm("grid")(SPACE, max_epochs=4, seed=seed, params={"grid_points": points})
    proposed, job, running = [], 0, []
    while not algo.is_done():
        batch = algo.suggest(workers - len(running))
        assert len(batch) == min(workers - len(running), algo.planned_jobs() - len(proposed))
        running += batch
        proposed += [r.params for r in batch]
        request = running.pop(0)
        job += 1
        assert request.stop_epoch == 4 and request.start_epoch == 0  # trained in full
        algo.on_finished(Outcome(request.trial_id, job, "failed" if job % 5 == 0 else "completed", 1.0, 4))
    return algo, proposed


def test_grid_runs_every_configuration_once_in_an_order_the_seed_shuffles():
    algo, first = drive(seed=0)
    assert algo.planned_jobs() == 24
    assert sorted(map(repr, first)) == sorted(map(repr, grid_table(SPACE, 3)))
    assert drive(seed=0)[1] == first
    assert drive(seed=1)[1] != first
    assert "24 configurations" in algo.explain()[0]


def test_a_grid_too_large_is_a_usage_error_that_suggests_the_way_out():
    five = parse_search_space({**{f"x{i}": 0 for i in range(5)}, "search": [
        {"args": f"x{i}", "type": "float", "targets": [0, 1]} for i in range(5)]}, Path("big.json"))
    with pytest.raises(UsageError, match=r"grid: the grid has 16807 configurations .* lower grid_points"):
        get_algorithm("grid")(five, max_epochs=1, params={"grid_points": 7})
    assert get_algorithm("grid")(five, max_epochs=1, params={"grid_points": 6}).planned_jobs() == 7776
    with pytest.raises(UsageError, match="grid_points: must be at least 2"):
        get_algorithm("grid")(five, max_epochs=1, params={"grid_points": 1})


def test_cli_lists_both_algorithms_with_their_parameters_and_plan_counts_the_grid(fake_mmar):
    listed = CliRunner().invoke(cli, ["algorithms"])  # in-process: a subprocess re-imports torch, seconds
    assert listed.exit_code == 0
    assert "grid_points = 3" in listed.stdout
    for key in ("max_rounds = 20", "learning_rate = 0.5", "baseline_decay = 0.5", "min_std = 0.05"):
        assert key in listed.stdout
    automl = fake_mmar / "config" / "config_automl.json"
    write_json(automl, {**json.loads(automl.read_text()), "controller": {"name": "grid", "args": {"grid_points": 4}}})
    plan = CliRunner().invoke(cli, ["plan", "-m", str(fake_mmar), "--epoch-seconds", "1"])
    assert plan.exit_code == 0, plan.output
    assert "grid: 8 configurations" in plan.output and "total: 8 jobs, 24 epochs" in plan.output
