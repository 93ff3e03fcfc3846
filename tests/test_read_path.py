"""The read-only commands start light: they import no numpy, scipy, torch, engine or SLURM
backend (issue #21 item 4). Checked by the modules a real process ends with, not by timing,
so the test is cheap and steady on a busy machine; benchmarks/systems.py startup times them."""
import json
import subprocess
import sys

from conftest import ROOT, run_cli

HEAVY = ("numpy", "scipy", "torch", "automl_cli.engine", "automl_cli.backends.slurm", "jsonschema")

# runs the command line in-process and prints the heavy modules it loaded on the way out
_PROBE = """
import json, sys
from automl_cli.cli import main
heavy = {heavy!r}
try:
    main()
finally:
    loaded = sorted(m for m in sys.modules if any(m == h or m.startswith(h + ".") for h in heavy))
    print("LOADED=" + json.dumps(loaded), file=sys.stderr)
"""


def _heavy_modules(*args: str) -> list[str]:
    result = subprocess.run([sys.executable, "-c", _PROBE.format(heavy=HEAVY), *args], capture_output=True,
                            text=True, timeout=120, cwd=ROOT)
    marker = [line for line in result.stderr.splitlines() if line.startswith("LOADED=")]
    assert marker, result.stderr
    return json.loads(marker[-1][len("LOADED="):])


def test_read_only_commands_import_nothing_heavy(fake_mmar):
    result = run_cli("run", "-m", str(fake_mmar), "--run-id", "done", "--workers", "0")
    assert result.returncode == 0, result.stderr
    run = ["-m", str(fake_mmar), "--run-id", "done"]
    loaded = {command: _heavy_modules(*command.split(), *run)
              for command in ("status", "status --json", "workers", "summary", "stop")}
    run = ["-m", str(fake_mmar), "--run-id", "latest"]
    loaded.update({f"{command} --run-id latest": _heavy_modules(*command.split(), *run)
                   for command in ("status", "workers", "summary")})
    loaded.update({command: _heavy_modules(*command.split(), "-m", str(fake_mmar)) for command in ("runs", "runs --json")})
    assert loaded == {command: [] for command in loaded}


def test_help_imports_nothing_heavy():
    assert _heavy_modules("--help") == []


def test_the_probe_sees_a_heavy_import(fake_mmar):
    assert "numpy" in _heavy_modules("validate", "-m", str(fake_mmar))  # so the checks above are not vacuous
