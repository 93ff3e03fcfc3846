import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# The tests run on the CPU on every machine: GPUs would change where jobs run and what the
# tests read (a spec of 0:1 is refused on a one-GPU machine). The tool and the jobs it starts
# inherit this; the tests about masks set their own, and scripts/gpu_check.sh checks real GPUs.
os.environ["CUDA_VISIBLE_DEVICES"] = ""

ROOT = Path(__file__).resolve().parents[1]
FAKE_TRAINER = Path(__file__).resolve().parent / "fake_trainer.py"


def pytest_addoption(parser):
    parser.addoption("--slow", action="store_true",
                     help="also run the tests marked slow: whole searches with the real trainers (CI runs them)")


def pytest_collection_modifyitems(config, items):
    """A plain `pytest -q` is the fast suite; `--slow` (as in README.md's test command and CI) is all of it."""
    if config.getoption("--slow"):
        return
    skip = pytest.mark.skip(reason="slow: add --slow to run it (CI does)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))


@pytest.fixture
def fake_mmar(tmp_path: Path) -> Path:
    """An MMAR whose jobs run tests/fake_trainer.py: the engine without torch."""
    root = tmp_path / "fake_mmar"
    write_json(root / "config" / "config_train.json", {
        "epochs": 3,
        "sleep": 0.05,
        "fake": {"name": "Fake", "args": {"lr": 0.01, "choice": "good", "behaviour": "ok"},
                 "search": [
                     {"domain": "lr", "type": "float", "args": ["lr"], "targets": [0.0001, 0.1], "log": True},
                     {"domain": "net", "type": "enum", "args": ["choice"], "targets": [["good"], ["bad"]]}]},
    })
    write_json(root / "config" / "config_automl.json", {
        "controller": {"name": "random", "args": {"automl_max_recommendations": 4}},
        "executor": {"name": "MMARExecutor",
                     "args": {"train_command": f"{sys.executable} {FAKE_TRAINER} {{mmar}} {{epochs}}",
                              "grace_seconds": 5}},
        "metric": "val_mean_dice",
    })
    write_json(root / "config" / "environment.json", {"DATA_ROOT": "{MMAR_ROOT}/resources"})
    (root / "resources").mkdir()
    (root / "resources" / "data.bin").write_bytes(b"x" * 1000)
    (root / "models").mkdir()
    return root


def run_cli(*args: str, timeout: float = 600, env: dict | None = None,
            cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the real `automl` command line in a subprocess (as a user would), from the
    repository root or from `cwd` (this checkout's automl_cli all the same)."""
    full_env = {**os.environ, **(env or {})}
    if cwd is not None:
        full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), full_env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "automl_cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=full_env, cwd=cwd or ROOT)


def set_epoch_seconds(mmar: Path, seconds) -> None:
    """How long each epoch of the stand-in trainer takes (slow enough to act on a live run):
    seconds, or a list of seconds per epoch (the last repeated). Runs started later see it;
    pace_jobs reaches jobs already running."""
    path = mmar / "config" / "config_train.json"
    config = json.loads(path.read_text())
    config["sleep"] = seconds
    write_json(path, config)


def pace_jobs(mmar: Path, seconds) -> None:
    """How long each epoch of the stand-in trainer takes, seconds or a list per epoch (the last
    repeated), read again while jobs train: unlike set_epoch_seconds this reaches jobs already
    running, e.g. [0.1, 600] holds them in epoch 2 until a later pace_jobs(mmar, 0.05). The
    first call must come before the run starts."""
    path = mmar / "config" / "config_train.json"
    config = json.loads(path.read_text())
    if "pace_file" not in config:
        config["pace_file"] = str(mmar / "pace.json")
        write_json(path, config)
    tmp = mmar / ".pace.json.tmp"
    tmp.write_text(json.dumps(seconds))
    os.replace(tmp, mmar / "pace.json")  # a trainer never reads half a file


def _interactive_signals() -> None:
    """In the child before exec: SIGINT as an interactive shell leaves it. A test run started
    in the background of a non-interactive shell (`pytest &`, `nohup ... &`) inherits SIGINT
    ignored, and Python then never turns it into KeyboardInterrupt."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_run(mmar: Path, *args: str) -> subprocess.Popen:
    """`automl run -m MMAR ARGS` in the background, in its own session so a signal reaches only it."""
    env = dict(os.environ)
    return subprocess.Popen([sys.executable, "-m", "automl_cli", "run", "-m", str(mmar), *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=_interactive_signals)


def wait_for(predicate, timeout: float = 60.0) -> bool:
    """Poll `predicate` until it holds or `timeout` seconds pass; returns whether it held."""
    import time

    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def job_processes(marker: str) -> list[int]:
    """PIDs whose command line mentions `marker` (the run folder), from /proc."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                if marker.encode() in handle.read():
                    found.append(int(pid))
        except OSError:
            continue
    return found


def live_pids():
    """PIDs of the live processes in /proc (zombies left out: this machine's PID 1 may
    never reap a dead run's supervisor)."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat", "rb") as handle:
                if handle.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                    continue
        except (OSError, IndexError):
            continue
        yield int(pid)


def run_processes(run_dir: Path) -> list[int]:
    """Live processes whose command line or environment names the run folder."""
    marker = str(run_dir).encode()
    found = []
    for pid in live_pids():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                cmdline = handle.read()
            with open(f"/proc/{pid}/environ", "rb") as handle:
                environ = handle.read()
        except OSError:
            continue
        if marker in cmdline or marker in environ:
            found.append(pid)
    return found


SLURM_CLUSTER = ROOT / "scripts" / "slurm" / "cluster.sh"


@pytest.fixture(scope="session")
def slurm_cluster():
    """The local single-node SLURM cluster of scripts/slurm/cluster.sh, found running (`.ci/run`
    starts one). A plain test run never installs packages or starts daemons: only with
    AUTOML_TEST_START_SLURM=1 (as root, with apt) does this fixture start the cluster itself,
    and then stops it at the end, after its jobs are cancelled. Otherwise the SLURM tests skip,
    saying how to enable them."""
    import shutil

    state_dir = Path(os.environ.get("AUTOML_SLURM_DIR", "/tmp/automl-slurm"))
    conf = state_dir / "slurm.conf"
    env = {**os.environ, "SLURM_CONF": str(conf)}
    status = subprocess.run(["bash", str(SLURM_CLUSTER), "status"], capture_output=True, text=True, env=env)
    started_here = status.returncode != 0
    if started_here:
        if os.environ.get("AUTOML_TEST_START_SLURM") != "1":
            pytest.skip("no SLURM cluster running: start one with `sudo scripts/slurm/cluster.sh start` "
                        "(or set AUTOML_TEST_START_SLURM=1 to let the tests start it; bash .ci/run does)")
        if os.geteuid() != 0:
            pytest.skip("no SLURM cluster: scripts/slurm/cluster.sh must run as root to start one")
        if shutil.which("slurmctld") is None and shutil.which("apt-get") is None:
            pytest.skip("no SLURM cluster: slurmctld is not installed and there is no apt-get to install it")
        try:
            start = subprocess.run(["bash", str(SLURM_CLUSTER), "start"], capture_output=True, text=True, env=env,
                                   timeout=300)
        except subprocess.TimeoutExpired:
            pytest.skip("no SLURM cluster: scripts/slurm/cluster.sh start took more than 300 s")
        if start.returncode != 0:
            pytest.skip(f"no SLURM cluster: {(start.stderr or start.stdout).strip().splitlines()[-1:]}")
    previous = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(conf)  # for the tests' own squeue/scontrol and every automl they start
    yield {"dir": state_dir, "conf": conf}
    if previous is None:
        os.environ.pop("SLURM_CONF", None)
    else:
        os.environ["SLURM_CONF"] = previous
    if started_here:  # jobs first: processes outside cgroups would outlive the daemons
        subprocess.run(["bash", "-c", "scancel $(squeue -h -o %i) 2>/dev/null; sleep 1"], env=env)
        subprocess.run(["bash", str(SLURM_CLUSTER), "stop"], capture_output=True, env=env)
