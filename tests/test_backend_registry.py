"""backends/registry.py: backends by name, imported only when a run uses one; adding one is
its file and one registration."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from automl_cli.backends import registry
from automl_cli.errors import UsageError
from automl_cli.status import RunView
from conftest import write_json

TINY = '''
from automl_cli.backends.base import BackendKind, Placement
from automl_cli.backends.local import LocalBackend
from automl_cli.workers import Worker

STARTED = []


class TinyBackend(LocalBackend):
    """Local processes, counted."""

    def start(self, job):
        STARTED.append(job.name)
        return {**super().start(job), "where": "tiny"}


class TinyKind(BackendKind):
    def place(self, request):
        return Placement([Worker(1, ()), Worker(2, ())], options={"given": request.options})

    def create(self, settings, jobs, trace):
        return TinyBackend(jobs.prepare, settings.grace_seconds)


KIND = TinyKind()
'''


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    (tmp_path / "tiny_backend.py").write_text(TINY)
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.register("tiny", "tiny_backend:KIND", executor="TinyExecutor")
    yield sys.modules.get("tiny_backend")
    registry.unregister("tiny")
    sys.modules.pop("tiny_backend", None)


def test_the_registry_lists_local_and_slurm_and_their_executors():
    assert registry.names()[:2] == ["local", "slurm"]
    assert registry.executors() == {"MMARExecutor": "local", "SlurmExecutor": "slurm"}


def test_an_unknown_backend_is_a_one_line_usage_error(fake_mmar):
    with pytest.raises(UsageError) as error:
        registry.get("nope")
    assert str(error.value) == "unknown backend 'nope' (known: local, slurm)"
    from automl_cli.runconfig import load_mmar, settings_for_run

    with pytest.raises(UsageError, match="unknown backend 'nope'"):
        settings_for_run(load_mmar(str(fake_mmar)), run_id="x", workers=None, algorithm=None, traceout=None,
                         set_values={}, warn=lambda m: None, backend="nope")


def test_listing_the_backends_imports_none():
    code = ("import sys; from automl_cli.backends import registry; registry.names(); import automl_cli.cli; "
            "print([m for m in sys.modules if m.startswith('automl_cli.backends.') and m != 'automl_cli.backends.registry'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_registered_backend_is_selectable_by_option_and_by_executor(fake_mmar, tiny):
    from automl_cli.cli import cli

    result = CliRunner().invoke(cli, ["run", "-m", str(fake_mmar), "--run-id", "t1", "--backend", "tiny"])
    assert result.exit_code == 0, result.output
    module = sys.modules["tiny_backend"]
    view = RunView.load(fake_mmar / "automl" / "t1")
    assert view.settings["backend"] == "tiny"
    assert sorted(module.STARTED) == sorted(j.name for j in view.jobs.values()) and len(module.STARTED) == 4
    assert {w.name for w in view.workers.values()} == {"W1", "W2"}  # the workers its kind placed
    assert (fake_mmar / "automl" / "t1" / "best" / "summary.json").is_file()

    # config_automl.json's executor selects it too
    path = fake_mmar / "config" / "config_automl.json"
    config = json.loads(path.read_text())
    config["executor"]["name"] = "TinyExecutor"
    write_json(path, config)
    from automl_cli.runconfig import load_mmar, settings_for_run

    settings, workers = settings_for_run(load_mmar(str(fake_mmar)), run_id="t2", workers=None, algorithm=None,
                                         traceout=None, set_values={}, warn=lambda m: None)
    assert settings.backend == "tiny" and len(workers) == 2 and settings.backend_options == {"given": {}}


def test_a_registration_names_module_and_attribute():
    with pytest.raises(ValueError, match="package.module:attr"):
        registry.register("bad", "no_colon_here")
    assert "bad" not in registry.names()
