"""Honest small budgets (issue #22): the GP's initial design is a share of the
configurations a search trains, not only the space's dimension, and validate, plan and
trace.log say how many and why."""
import json

import pytest

from automl_cli.algorithms import get_algorithm, load_all
from automl_cli.algorithms.catalogue import initial_design, initial_design_line
from automl_cli.simulate import simulate
from conftest import run_cli, write_json

load_all()

SEVEN = [{"args": [f"x{i}"], "type": "float", "targets": [0, 1]} for i in range(7)]


@pytest.mark.parametrize("n_params, planned, size", [
    (7, 12, 4),     # was 9 of 12: the model chose only 3
    (7, 40, 9),     # a large budget keeps the dimension-based size
    (3, 6, 2),      # at least 2
    (7, 2, 2), (7, 1, 1),  # never more than the search trains
    (7, None, 9),   # no fixed number (hyperband+gp): the dimension decides
])
def test_initial_design_is_a_share_of_the_budget(n_params, planned, size):
    assert initial_design(n_params, planned)[0] == size


def test_a_given_initial_design_is_kept_within_the_budget():
    assert initial_design(7, 12, 6) == (6, "automl_initial_random")
    assert initial_design(7, 4, 6)[0] == 4


@pytest.mark.parametrize("name", ["bayesian", "bfbo"])
def test_twelve_trainings_of_seven_parameters_leave_eight_to_the_model(name):
    result = simulate(name, SEVEN, lambda c, e, s: (sum((v - 0.3) ** 2 for v in c.values()), 1.0), max_epochs=1,
                      n_workers=1, seed=0, params={"automl_max_recommendations": 12})
    notes = [result.view.jobs[j["job_id"]].note for j in result.jobs]
    assert sum("initial design" in n for n in notes) == 4 and len(notes) == 12


def test_the_trace_says_how_many_initial_points_and_why():
    from automl_cli.simulate import simulate  # noqa: F401  (the space comes from simulate's parser)
    from automl_cli.space import parse_search_space
    from pathlib import Path

    space = parse_search_space({**{f"x{i}": 0.5 for i in range(7)}, "search": SEVEN}, Path("t.json"))
    algo = get_algorithm("bayesian")(space, max_epochs=1, params={"automl_max_recommendations": 12})
    assert "initial design: 4 Sobol points of 12 configurations (a third of the budget, at least 2; " \
           "7 parameters alone would take 9)" in algo.explain()
    assert initial_design_line("random", {}, 7) is None
    assert initial_design_line("hyperband+gp", {"automl_initial_random": 0}, 7).startswith(
        "initial design: 9 Sobol points of an open number of configurations")


def test_validate_and_plan_print_the_initial_design(fake_mmar):
    path = fake_mmar / "config" / "config_automl.json"
    doc = json.loads(path.read_text())
    doc["controller"] = {"name": "bayesian", "args": {"automl_max_recommendations": 12}}
    write_json(path, doc)
    expected = "initial design: 4 Sobol points of 12 configurations (2 parameters + 2, within 3..10, " \
               "no more than a third of the budget)"
    validated = run_cli("validate", "-m", str(fake_mmar))
    assert validated.returncode == 0, validated.stderr
    assert expected in " ".join(validated.stdout.split())  # the console wraps long lines
    planned = run_cli("plan", "-m", str(fake_mmar), "--epoch-seconds", "1")
    assert planned.returncode == 0, planned.stderr
    assert expected in " ".join(planned.stdout.split())
