"""Schedulers x proposers: a pair SCHEDULER+PROPOSER really runs its scheduler with its
proposer (asha+kde's new configurations come from the KDE once a rung has enough results,
hyperband+gp's and asha+gp's from the GP), a pair that is a preset is the preset, invalid
pairs are refused in one line wherever a name is accepted, and the names are listed
without numpy."""
import math
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from automl_cli.algorithms import catalogue, get_algorithm
from automl_cli.errors import ConfigError, UsageError
from automl_cli.simulate import METRIC, simulate

SEARCH = [{"args": "x", "type": "float", "targets": [-5.0, 10.0]},
          {"args": "y", "type": "float", "targets": [0.0, 15.0]}]


def branin_with_epochs(config, epoch, state):
    """Branin, approached as epochs grow (a multi-fidelity objective)."""
    x, y = config["x"], config["y"]
    value = (y - 5.1 / (4 * math.pi ** 2) * x ** 2 + 5 / math.pi * x - 6) ** 2 + 10 * (1 - 1 / (8 * math.pi)) * \
        math.cos(x) + 10
    return value + 20.0 / epoch, 1.0


def new_jobs(result):
    """The jobs that started a new configuration (not promotions), in order."""
    return [j for j in sorted(result.view.jobs.values(), key=lambda j: j.job_id) if j.start_epoch == 0]


def test_asha_kde_proposes_from_the_kde_once_a_rung_has_enough_results():
    # 2 parameters: min_points 3, so a rung needs 5 results before the model leads
    result = simulate("asha+kde", SEARCH, branin_with_epochs, max_epochs=9, n_workers=2, seed=0,
                      params={"automl_max_trials": 40, "automl_max_concurrent": 2, "automl_random_fraction": 0.0})
    new = new_jobs(result)
    assert all("new, random" in j.note for j in new[:5])  # no rung has 5 results yet
    from_kde = [j for j in new if "KDE at" in j.note]
    assert len(from_kde) >= 25
    # the model stands on the largest rung with enough results: first the rung ASHA's probe of 5
    # trained to (schedulers/fidelity.py), the top one later
    assert "KDE at 3 epochs" in from_kde[0].note and any("KDE at 9 epochs" in j.note for j in from_kde)
    # and it proposes where results were good: the model's first-rung losses beat the random ones
    first_rung = lambda jobs: [j.epochs[1][METRIC] for j in jobs if 1 in j.epochs]  # noqa: E731
    random_losses, kde_losses = first_rung(new[:5]), first_rung(from_kde)
    assert sorted(kde_losses)[len(kde_losses) // 2] < sorted(random_losses)[len(random_losses) // 2]


def test_asha_with_random_is_the_asha_preset_and_differs_from_asha_kde():
    params = {"automl_max_trials": 20, "automl_max_concurrent": 2}
    plain = simulate("asha", SEARCH, branin_with_epochs, max_epochs=9, n_workers=2, seed=3, params=params)
    pair = simulate("asha+random", SEARCH, branin_with_epochs, max_epochs=9, n_workers=2, seed=3, params=params)
    kde = simulate("asha+kde", SEARCH, branin_with_epochs, max_epochs=9, n_workers=2, seed=3,
                   params={**params, "automl_random_fraction": 0.0})
    key = lambda r: [(j["trial_id"], j["params"], j["stop_epoch"]) for j in r.jobs]  # noqa: E731
    assert key(plain) == key(pair)
    assert key(kde) != key(plain)


def test_hyperband_gp_proposes_from_the_gp_after_its_sobol_design():
    # R = 3: one bracket a pass, 3 new configurations at 1 epoch and the best promoted to 3
    result = simulate("hyperband+gp", SEARCH, branin_with_epochs, max_epochs=3, n_workers=1, seed=0,
                      params={"automl_R": 3, "epoch_multiplier": 1, "automl_hyperband_iterations": 3,
                              "automl_initial_random": 2})
    new = new_jobs(result)
    assert len(new) == 9 and all("initial design (Sobol)" in j.note for j in new[:2])
    assert all("GP log expected improvement" in j.note for j in new[2:])
    # the GP models the largest budget with as many results as the design: the 1-epoch
    # results the job is asked for, until the third pass, when 3 epochs have two
    assert not any("GP of the" in j.note for j in new[:6])
    assert all("(GP of the 3-epoch results)" in j.note for j in new[6:])


def test_asha_gp_proposes_from_the_gp():
    result = simulate("asha+gp", SEARCH, branin_with_epochs, max_epochs=9, n_workers=2, seed=1,
                      params={"automl_max_trials": 8, "automl_max_concurrent": 2, "automl_initial_random": 3})
    new = new_jobs(result)
    assert len(new) == 8 and all("initial design (Sobol)" in j.note for j in new[:3])
    assert all("GP log expected improvement" in j.note for j in new[3:])


def test_a_pair_that_is_a_preset_is_that_preset():
    for entry in catalogue.PRESETS.values():
        assert get_algorithm(entry.pair) is get_algorithm(entry.name)
    assert get_algorithm("hyperband+kde").name == "bohb"


@pytest.mark.parametrize("name, says", [
    ("pbt+gp", "'pbt+gp' is not a valid pair: pbt takes only random"),
    ("asha+de", "'asha+de' is not a valid pair: asha takes only random, gp, kde"),
    ("hyperband+grid", "'hyperband+grid' is not a valid pair"),
    ("asha+tpe", "unknown proposer 'tpe' in 'asha+tpe'"),
    ("bandit+kde", "unknown scheduler 'bandit' in 'bandit+kde'"),
    ("bohbb", "unknown algorithm 'bohbb'"),
])
def test_an_invalid_pair_is_refused_in_one_line_that_lists_the_valid_ones(name, says):
    with pytest.raises(UsageError) as caught:
        get_algorithm(name)
    message = str(caught.value)
    assert says in message and "\n" not in message
    if "valid pair" in says:
        assert "asha+kde" in message and "hyperband+gp" in message


def test_a_pair_is_a_clara_controller_name_too():
    from automl_cli.clara.components import algorithm_name

    assert algorithm_name("asha+kde", "config_automl.json", ["controller"]) == "asha+kde"
    assert algorithm_name("ReinforcementController", "config_automl.json", ["controller"]) == "reinforcement"
    with pytest.raises(ConfigError, match="not a valid pair"):
        algorithm_name("pbt+kde", "config_automl.json", ["controller"])


def test_a_pair_takes_the_parameters_of_its_scheduler_and_its_proposer():
    cls = get_algorithm("asha+kde")
    assert {"automl_nu", "automl_max_trials", "automl_kde_samples", "automl_random_fraction"} <= set(cls.parameters)
    with pytest.raises(UsageError, match="algorithm 'asha\\+kde' has no parameter 'automl_R'"):
        cls(None, max_epochs=9, params={"automl_R": 9})


def test_plan_runs_a_pair():
    from automl_cli.plan import make_plan, render
    from automl_cli.space import parse_search_space

    space = parse_search_space({"x": 0, "y": 0, "search": SEARCH}, Path("t"))
    plan = make_plan(space, "hyperband+gp", {"automl_R": 9, "epoch_multiplier": 1}, 9, 2, 1.0, "given")
    lines = render(plan)
    assert lines[0].startswith("algorithm hyperband+gp") and any(line.startswith("bracket 1:") for line in lines)
    asha = make_plan(space, "asha+kde", {"automl_max_trials": 10}, 9, 2, 1.0, "given")
    assert asha.jobs >= 10


def test_automl_algorithms_lists_presets_and_pairs():
    from automl_cli.cli import cli

    out = CliRunner().invoke(cli, ["algorithms"]).output
    for name in ["bohb:", "dehb:", "asha+kde:", "asha+gp:", "hyperband+gp:", "hyperband+kde = bohb"]:
        assert name in out
    assert "    automl_kde_samples = 64" in out


def test_the_catalogue_lists_without_numpy():
    code = ("import sys; from automl_cli.algorithms import catalogue; "
            "names = [e.name for e in catalogue.pairs()] + list(catalogue.PRESETS); "
            "assert 'asha+kde' in names; print('numpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "False"
