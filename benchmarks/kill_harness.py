"""Kill harness: `kill -9` the tool at random moments of real searches, resume each time,
and count what went wrong.

    python benchmarks/kill_harness.py [--kills 10] [--algorithms bayesian,hyperband,asha,pbt,dehb]
                                      [--seed 0] [--epoch-seconds 0.15] [--workdir DIR]

Each algorithm searches a small MMAR whose jobs run tests/fake_trainer.py (no torch), on
two CPU workers; half the algorithms start it through a wrapper script that does not
`exec` it (`bash wrap.sh {mmar} {epochs}`), as cluster wrappers often do. The tool is
started, killed with SIGKILL after a random 0.2-2.5 s, started again with --resume, and so
on `--kills` times; then it runs to its end. After each kill and at the end it checks:

- orphans: a process of the dead run (its command line or environment names the run
  folder) still alive 3 s after the kill;
- epochs trained twice: a (job, epoch) that trainers completed more than once, from the
  trainers' ledger (FAKE_TRAINER_LEDGER, outside job folders) and from the metrics files
  of each job's attempts;
- every job terminal (completed, stopped or failed) and the run completed;
- the run has as many jobs as the same search run without interruption.

Prints one line per algorithm and the totals; exit code 1 if anything went wrong.
tests/test_kill_harness.py runs a short version (3 kills each) in CI.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FAKE_TRAINER = ROOT / "tests" / "fake_trainer.py"
sys.path.insert(0, str(ROOT))

from automl_cli.status import RunView  # noqa: E402

# small searches with the algorithms' own parameters (3 epochs per full training)
ALGORITHMS = {
    "bayesian": {"automl_max_recommendations": 4},
    "hyperband": {"automl_R": 3, "automl_nu": 3, "epoch_multiplier": 1},
    "asha": {"automl_max_trials": 6, "automl_max_concurrent": 2, "automl_min_epochs": 1},
    "pbt": {"automl_population_size": 2, "automl_eval_interval": 1},
    "dehb": {"automl_R": 3, "automl_nu": 3, "epoch_multiplier": 1, "automl_hyperband_iterations": 2},
}
WRAPPED = ("hyperband", "pbt", "dehb")  # jobs started through a wrapper script
RUN_ID = "kill"
WORKERS = "0:0"


@dataclass
class Result:
    algorithm: str
    wrapped: bool
    kills: int = 0
    survived: int = 0  # resumed runs that completed the search
    orphans: int = 0  # processes of a dead run alive 3 s after its kill
    twice: int = 0  # (job, epoch) pairs trained more than once
    jobs: int = 0
    expected_jobs: int = 0
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems


def write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))


def make_mmar(root: Path, algorithm: str, *, wrapped: bool, epoch_seconds: float) -> Path:
    """The fake MMAR of tests/conftest.py's fake_mmar fixture, set up for `algorithm`."""
    write_json(root / "config" / "config_train.json", {
        "epochs": 3, "sleep": epoch_seconds,
        "fake": {"name": "Fake", "args": {"lr": 0.01, "choice": "good", "behaviour": "ok"},
                 "search": [
                     {"domain": "lr", "type": "float", "args": ["lr"], "targets": [0.0001, 0.1], "log": True},
                     {"domain": "net", "type": "enum", "args": ["choice"], "targets": [["good"], ["bad"]]}]},
    })
    command = f"{sys.executable} {FAKE_TRAINER} {{mmar}} {{epochs}}"
    if wrapped:
        wrapper = root / "wrap.sh"
        wrapper.write_text(f'#!/bin/bash\necho "wrapper $$"\n"{sys.executable}" "{FAKE_TRAINER}" "$@"\n')
        command = f"bash {wrapper} {{mmar}} {{epochs}}"
    write_json(root / "config" / "config_automl.json", {
        "controller": {"name": algorithm, "args": ALGORITHMS[algorithm]},
        "executor": {"name": "MMARExecutor", "args": {"train_command": command, "grace_seconds": 5}},
        "metric": "val_mean_dice",
    })
    write_json(root / "config" / "environment.json", {"DATA_ROOT": "{MMAR_ROOT}/resources"})
    (root / "resources").mkdir(exist_ok=True)
    (root / "models").mkdir(exist_ok=True)
    return root


def start_tool(mmar: Path, resume: bool, ledger: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    env["FAKE_TRAINER_LEDGER"] = str(ledger)
    return subprocess.Popen([sys.executable, "-m", "automl_cli", "run", "-m", str(mmar), "--run-id", RUN_ID,
                             "--workers", WORKERS, *(["--resume"] if resume else [])],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def run_processes(run_dir: Path) -> list[int]:
    """Live (not zombie) processes whose command line or environment names the run folder."""
    marker = str(run_dir.resolve()).encode()
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat", "rb") as handle:
                if handle.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                    continue
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                cmdline = handle.read()
            with open(f"/proc/{pid}/environ", "rb") as handle:
                environ = handle.read()
        except (OSError, IndexError):
            continue
        if marker in cmdline or marker in environ:
            found.append(int(pid))
    return found


def epochs_trained_twice(run_dir: Path, ledger: Path) -> Counter:
    """(job id, epoch) -> times trained, for those trained more than once: from the ledger
    and from the metrics files of every attempt's folder."""
    times: Counter = Counter()
    if ledger.exists():
        times.update((parts[0].split("_J")[1], int(parts[1])) for parts in map(str.split, ledger.read_text().splitlines())
                     if len(parts) > 1 and parts[1].isdigit())
    files: Counter = Counter()
    for metrics in run_dir.glob("W*_J*/models/metrics.jsonl"):
        job = metrics.parent.parent.name.split("_J")[1]
        for line in metrics.read_text().splitlines():
            try:
                files[(job, json.loads(line)["epoch"])] += 1
            except (ValueError, KeyError, TypeError):
                continue
    twice = Counter({k: v for k, v in times.items() if v > 1})
    twice.update({k: v for k, v in files.items() if v > 1 and k not in twice})
    return twice


def uninterrupted_jobs(mmar: Path, ledger: Path) -> int:
    tool = start_tool(mmar, False, ledger)
    _, err = tool.communicate(timeout=600)
    if tool.returncode != 0:
        raise RuntimeError(f"the uninterrupted run failed: {err[-2000:]}")
    return len(RunView.load(mmar / "automl" / RUN_ID).jobs)


def harness(algorithm: str, workdir: Path, kills: int, rng: random.Random, *, epoch_seconds: float = 0.15,
            wrapped: bool | None = None, max_wait: float = 2.5) -> Result:
    """Kill one algorithm's search `kills` times at random moments, resume at once (as a
    requeue script would) each time, then let it finish; check as the module says."""
    wrapped = algorithm in WRAPPED if wrapped is None else wrapped
    result = Result(algorithm, wrapped)
    began = time.monotonic()
    reference = make_mmar(workdir / f"{algorithm}-reference", algorithm, wrapped=wrapped, epoch_seconds=epoch_seconds)
    result.expected_jobs = uninterrupted_jobs(reference, workdir / f"{algorithm}-reference.ledger")
    mmar = make_mmar(workdir / algorithm, algorithm, wrapped=wrapped, epoch_seconds=epoch_seconds)
    run_dir = mmar / "automl" / RUN_ID
    ledger = workdir / f"{algorithm}.ledger"
    killed_at: list[float] = []  # time.time() of each kill
    killed_uptime = 0.0  # the last kill, in seconds since boot
    resume = False
    while result.kills < kills:
        tool = start_tool(mmar, resume, ledger)
        resume = True
        time.sleep(rng.uniform(0.2, max_wait))
        _check_dead_runs(result, run_dir, len(killed_at), killed_uptime)  # the resumed tool has stopped them
        if tool.poll() is not None:  # it finished first: start over with a fresh run to kill again
            _, err = tool.communicate()
            if tool.returncode != 0:
                result.problems.append(f"a run exited {tool.returncode}: {err.strip()[-300:]}")
                break
            result.survived += 1
            _check_end(result, run_dir, ledger, killed_at)
            shutil.rmtree(run_dir)
            ledger.unlink(missing_ok=True)
            killed_at.clear()
            resume = False
            continue
        tool.send_signal(signal.SIGKILL)
        tool.wait()
        killed_at.append(time.time())
        killed_uptime = _uptime()
        result.kills += 1
    tool = start_tool(mmar, resume, ledger)
    _, err = tool.communicate(timeout=600)
    if tool.returncode != 0:
        result.problems.append(f"the last resume exited {tool.returncode}: {err.strip()[-300:]}")
    else:
        result.survived += 1
        _check_end(result, run_dir, ledger, killed_at)
    result.seconds = time.monotonic() - began
    return result


def _uptime() -> float:
    """Seconds since boot: the clock of /proc/<pid>/stat's start times."""
    with open("/proc/uptime") as handle:
        return float(handle.read().split()[0])


def _started(pid: int) -> float:
    """When a process started, in seconds since boot."""
    with open(f"/proc/{pid}/stat", "rb") as handle:
        ticks = int(handle.read().rsplit(b")", 1)[1].split()[19])
    return ticks / os.sysconf("SC_CLK_TCK")


def _check_dead_runs(result: Result, run_dir: Path, kills: int, killed_uptime: float) -> None:
    """No process that started before the last kill (a dead run's) may still be alive."""
    if not kills:
        return
    left = []
    for pid in run_processes(run_dir):
        try:
            if _started(pid) < killed_uptime - 0.02:  # start times come in clock ticks
                left.append(pid)
        except (OSError, IndexError):
            continue
    if left:
        result.orphans += len(left)
        result.problems.append(f"after kill {kills}: {len(left)} process(es) of a dead run still alive")
        for pid in left:  # so that later checks are about later kills
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def _orphans(ledger: Path, killed_at: list[float]) -> set[tuple[str, str]]:
    """(job, pid) of trainers that went on after their tool was killed: one that started
    before a kill and ended after it without a SIGTERM (the supervisor sends one at once),
    or that completed an epoch more than 0.3 s after it (a stopped trainer completes none)."""
    found = set()
    if not ledger.exists():
        return found
    for parts in map(str.split, ledger.read_text().splitlines()):
        if len(parts) < 5:
            continue
        name, what, pid, started, ended = parts[0], parts[1], parts[2], float(parts[3]), float(parts[4])
        for kill in killed_at:
            if what == "end" and started < kill < ended - 0.2 and parts[6:7] == ["0"]:
                found.add((name, pid))
            elif what != "end" and started < kill < ended - 0.3:
                found.add((name, pid))
    return found


def _check_end(result: Result, run_dir: Path, ledger: Path, killed_at: list[float]) -> None:
    view = RunView.load(run_dir)
    result.jobs = len(view.jobs)
    if view.status != "completed":
        result.problems.append(f"run {view.status}")
    open_jobs = [j.name for j in view.jobs.values() if j.status not in ("completed", "stopped", "failed")]
    if open_jobs:
        result.problems.append(f"jobs not terminal: {open_jobs}")
    if result.jobs != result.expected_jobs:
        result.problems.append(f"{result.jobs} jobs, the uninterrupted run had {result.expected_jobs}")
    twice = epochs_trained_twice(run_dir, ledger)
    if twice:
        result.twice += len(twice)
        result.problems.append(f"epochs trained twice (job, epoch): {sorted(twice)}")
    orphaned = _orphans(ledger, killed_at)
    if orphaned:
        result.orphans += len(orphaned)
        result.problems.append(f"trainers that went on after their tool was killed (job, pid): {sorted(orphaned)}")
    time.sleep(0.2)
    if run_processes(run_dir):
        result.orphans += len(run_processes(run_dir))
        result.problems.append("processes left after the run ended")


def run_all(algorithms: list[str], kills: int, seed: int, workdir: Path, epoch_seconds: float = 0.15,
            max_wait: float = 2.5) -> list[Result]:
    """Every algorithm at once, each in a thread (the tools mostly wait for their trainers)."""
    results: dict[str, Result] = {}

    def one(index: int, algorithm: str) -> None:
        rng = random.Random(seed * 1000 + index)
        try:
            results[algorithm] = harness(algorithm, workdir, kills, rng, epoch_seconds=epoch_seconds,
                                         max_wait=max_wait)
        except Exception as exc:  # noqa: BLE001 - reported as the algorithm's problem
            results[algorithm] = Result(algorithm, algorithm in WRAPPED, problems=[f"{type(exc).__name__}: {exc}"])

    threads = [threading.Thread(target=one, args=(i, a)) for i, a in enumerate(algorithms)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [results[a] for a in algorithms]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--algorithms", default=",".join(ALGORITHMS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epoch-seconds", type=float, default=0.15)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="kill-harness-"))
    workdir.mkdir(parents=True, exist_ok=True)
    results = run_all(args.algorithms.split(","), args.kills, args.seed, workdir, args.epoch_seconds)
    print(f"{'algorithm':<10} {'wrapper':<7} {'kills':>5} {'survived':>8} {'orphans':>7} {'twice':>5} "
          f"{'jobs':>9} {'seconds':>7}  problems")
    for r in results:
        print(f"{r.algorithm:<10} {'yes' if r.wrapped else 'no':<7} {r.kills:>5} {r.survived:>8} {r.orphans:>7} "
              f"{r.twice:>5} {f'{r.jobs}/{r.expected_jobs}':>9} {r.seconds:>7.1f}  {'; '.join(r.problems) or '-'}")
    print(f"total: {sum(r.kills for r in results)} kills, {sum(r.survived for r in results)} survived, "
          f"{sum(r.orphans for r in results)} orphans seen, {sum(r.twice for r in results)} epochs trained twice, "
          f"{sum(not r.ok for r in results)} algorithm(s) with problems (work folder {workdir})")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
