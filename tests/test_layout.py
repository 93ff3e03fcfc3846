"""The top-level folders the design promised (issue #21 item 5): config/ holds a ready-to-copy
config_automl.json per algorithm (and one in Clara's form), each valid; commands/ holds
Clara-style scripts that work for any MMAR, given as an argument or MMAR_ROOT."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from automl_cli.algorithms import REGISTRY, get_algorithm, load_all
from automl_cli.cli import cli
from automl_cli.runconfig import controller, load_mmar
from conftest import ROOT

PRESETS = sorted((ROOT / "config").glob("config_automl_*.json"))
COMMANDS = ROOT / "commands"
ADMIN = ("status", "workers", "summary", "stop", "suspend", "resume", "abort")


def test_there_is_a_preset_for_every_algorithm():
    load_all()
    named = {json.loads(p.read_text())["controller"]["name"] for p in PRESETS}
    assert set(REGISTRY) <= named
    assert "ReinforcementController" in named  # Clara's controller/executor/handlers form


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.stem)
def test_each_preset_validates_and_builds_its_algorithm(preset):
    result = CliRunner().invoke(cli, ["validate", "-m", str(ROOT / "mmar_template"), "--automlconf", str(preset)])
    assert result.exit_code == 0, result.output
    assert "configs are valid" in result.output
    loaded = load_mmar(str(ROOT / "mmar_template"), automlconf=str(preset))
    name, params = controller(loaded, None)
    get_algorithm(name)(loaded.space, max_epochs=loaded.max_epochs, seed=0, params=params)  # cross-parameter checks


def _script(name: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k not in ("MMAR_ROOT", "RUN_ID", "AUTOML")}
    full_env.update({"PYTHON": sys.executable, **(env or {})})
    return subprocess.run(["bash", str(COMMANDS / f"{name}.sh"), *args], capture_output=True, text=True,
                          timeout=600, env=full_env, cwd=ROOT)


@pytest.mark.parametrize("name", ("automl", "train", "validate") + ADMIN)
def test_each_script_shows_its_usage_and_automls_help(name):
    result = _script(name, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: commands/{name}.sh [MMAR]")
    assert "Usage:" in result.stdout and ("run" if name == "automl" else name) in result.stdout


def test_a_script_without_an_mmar_says_so():
    result = _script("status")
    assert result.returncode == 2
    assert "no MMAR: give its folder as the first argument or set MMAR_ROOT" in result.stderr


def test_admin_scripts_find_the_mmar_by_argument_or_mmar_root(fake_mmar):
    from conftest import run_cli

    assert run_cli("run", "-m", str(fake_mmar), "--run-id", "a", "--workers", "0").returncode == 0
    by_argument = _script("status", str(fake_mmar), "--json")  # the run id defaults to automl.sh's "a"
    assert by_argument.returncode == 0, by_argument.stderr
    assert json.loads(by_argument.stdout)["a"]["detailed_status"]["status"] == "SUCCESS"
    by_environment = _script("summary", "--json", env={"MMAR_ROOT": str(fake_mmar), "RUN_ID": "a"})
    assert by_environment.returncode == 0, by_environment.stderr
    assert len(json.loads(by_environment.stdout)) == 4
    finished = _script("stop", str(fake_mmar), "--run-id", "a")
    assert finished.returncode == 1 and "not running" in finished.stderr


@pytest.mark.slow
@pytest.mark.e2e
def test_a_real_tiny_search_through_commands_automl_sh(tmp_path):
    mmar = tmp_path / "mmar"
    shutil.copytree(ROOT / "mmar_template", mmar, ignore=shutil.ignore_patterns("automl"))
    result = _script("automl", "run_id=tiny", "workers=0", f"automlconf={ROOT / 'config' / 'config_automl_random.json'}",
                     "automl_max_recommendations=2", "epochs=1", env={"MMAR_ROOT": str(mmar)})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "best val_mean_dice" in result.stdout
    assert (mmar / "automl" / "tiny" / "best" / "models" / "model.pt").is_file()
    jobs = _script("summary", str(mmar), "--run-id", "tiny", "--json")
    assert [row["status"] for row in json.loads(jobs.stdout)] == ["completed", "completed"]


@pytest.mark.parametrize("name", ["automl", "train"])
def test_an_mmars_own_scripts_still_call_automl(name):
    """mmar_template/commands/ stays as Clara users know it: from inside the MMAR, no argument."""
    env = {**os.environ, "AUTOML": f"{sys.executable} -m automl_cli", "PYTHONPATH": str(ROOT)}
    env.pop("MMAR_ROOT", None)
    result = subprocess.run(["bash", str(ROOT / "mmar_template" / "commands" / f"{name}.sh"), "--help"],
                            capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert f"MMAR_ROOT set to {ROOT / 'mmar_template'}" in result.stdout
    assert f"Usage: python -m automl_cli {'run' if name == 'automl' else 'train'}" in result.stdout
