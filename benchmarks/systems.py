"""Systems benchmarks: what the machinery costs, apart from training.

    python benchmarks/systems.py [overhead|utilisation|suggest|scale|startup|all]

(a) overhead     per-job cost of the local backend (clone the MMAR, spawn, collect) with a
                 trainer that does nothing: 200 jobs on 2 workers
(b) utilisation  busy fraction of 8 simulated workers, hyperband vs asha, epoch times varying 10x
(c) suggest      time of bayesian's suggest(), a bfbo batch of 8 and a bohb bracket, at 100 and 1,000 observations,
                 and Optuna's GPSampler (pip install -e .[bench]) beside bayesian on the same space and data
(d) scale        time and peak memory of a 10,000-job simulated run
(e) startup      wall time of each command as a whole process (start-up included), as a ratio
                 to `automl --help`: the read-only commands should stay within 1.5x of it

Each prints its figures and the machine it ran on. Times are medians of repeats; the
machines here are shared, so read ratios rather than single numbers.
"""
from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from automl_cli.algorithms import get_algorithm  # noqa: E402
from automl_cli.algorithms.base import Outcome  # noqa: E402
from automl_cli.simulate import simulate  # noqa: E402
from automl_cli.space import parse_search_space  # noqa: E402

NOOP_TRAINER = """
import json, os, sys
path = os.environ["AUTOML_METRICS_FILE"]
with open(path, "a") as out:
    out.write(json.dumps({"epoch": int(sys.argv[1]), "val_mean_dice": 0.5, "seconds": 0.0}) + "\\n")
"""


def machine() -> str:
    return f"{platform.node()} {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"


def overhead(jobs: int = 200, workers: int = 2) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        mmar = Path(tmp) / "mmar"
        shutil.copytree(ROOT / "mmar_template", mmar, ignore=shutil.ignore_patterns("automl"))
        trainer = Path(tmp) / "noop.py"
        trainer.write_text(NOOP_TRAINER)
        config = json.loads((mmar / "config" / "config_automl.json").read_text())
        config["controller"] = {"name": "random", "args": {"automl_max_recommendations": jobs}}
        config["executor"] = {"name": "MMARExecutor", "args": {"train_command": f"{sys.executable} {trainer} {{epochs}}"}}
        (mmar / "config" / "config_automl.json").write_text(json.dumps(config))
        starts = []
        for _ in range(10):
            began = time.perf_counter()
            subprocess.run([sys.executable, str(trainer), "1"], env={**os.environ, "AUTOML_METRICS_FILE": os.devnull},
                           check=True)
            starts.append(time.perf_counter() - began)
        startup = statistics.median(starts)
        began = time.perf_counter()
        subprocess.run([sys.executable, "-m", "automl_cli", "run", "-m", str(mmar), "--run-id", "overhead",
                        "--workers", ":".join(str(i) for i in range(workers))], check=True, cwd=ROOT,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - began
    per_job = wall * workers / jobs
    print(f"(a) overhead: {jobs} no-op jobs on {workers} workers in {wall:.1f} s -> {per_job * 1000:.0f} ms per job "
          f"per worker; the trainer's own start-up {startup * 1000:.0f} ms; engine overhead "
          f"{(per_job - startup) * 1000:.0f} ms per job (target < 150 ms)")


def utilisation(workers: int = 8, budget: float = 20000.0) -> None:
    search = [{"args": ["x"], "type": "float", "targets": [0, 1]}, {"args": ["y"], "type": "float", "targets": [0, 1]}]

    def uneven(config, epoch, state):
        return (config["x"] - 0.3) ** 2 + config["y"] / epoch, 1.0 + 9.0 * config["y"]

    for name, params in (("hyperband", {"automl_R": 27, "automl_nu": 3, "epoch_multiplier": 1}),
                         ("asha", {"automl_nu": 3, "automl_max_concurrent": workers, "automl_min_top_configs": 10**6})):
        result = simulate(name, search, uneven, max_epochs=27, n_workers=workers, time_budget=budget, seed=0,
                          params=params)
        busy = sum(j["end_time"] - j["start_time"] for j in result.jobs)
        print(f"(b) utilisation: {name} with {workers} workers, epoch times 1-10 s: "
              f"{busy / (workers * result.elapsed):.1%} busy over {result.elapsed:.0f} virtual s, "
              f"{len(result.jobs)} jobs (target asha >= 95%)")


def suggest_time(sizes=(100, 1000), repeats: int = 5) -> None:
    space = parse_search_space({"a": 0, "b": 0, "c": 0, "d": "x", "search": [
        {"args": "a", "type": "float", "targets": [1e-5, 1e-1], "log": True},
        {"args": "b", "type": "float", "targets": [0, 1]},
        {"args": "c", "type": "int", "targets": [1, 8]},
        {"args": "d", "type": "enum", "targets": [["x"], ["y"], ["z"]]}]}, Path("bench"))
    for name, batch in (("bayesian", 1), ("bfbo", 8)):
        rng = np.random.default_rng(0)
        for n in sizes:
            algo = get_algorithm(name)(space, max_epochs=1, seed=0, params={"automl_max_recommendations": n + 100})
            for job in range(1, n + 1):
                [request] = algo.suggest(1) if job <= algo.proposer.n_initial else _random_request(algo, rng)
                loss = float(np.log10(request.params["a"]) ** 2 + request.params["b"] + rng.normal(0, 0.1))
                algo.on_finished(Outcome(request.trial_id, job, "completed", loss, 1))
            times = []
            for _ in range(repeats):
                began = time.perf_counter()
                requests = algo.suggest(batch)
                times.append(time.perf_counter() - began)
                for request in requests:
                    algo.on_finished(Outcome(request.trial_id, 0, "completed", 1.0, 1))
            what = "one suggest()" if batch == 1 else f"a batch of {batch}"
            print(f"(c) suggest: {name}, {what} at {n} observations: median {statistics.median(times) * 1000:.0f} ms "
                  f"(min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}) (target < 250 ms per configuration "
                  "at 1,000)")
    _bohb_time(space, sizes, repeats)
    _optuna_gp_time(sizes, repeats)


def _optuna_gp_time(sizes, repeats) -> None:
    """Optuna's GPSampler asked for one configuration after n finished trials of the space
    suggest_time uses, the yardstick for bayesian's suggest() (within 3x at 100)."""
    try:
        import optuna
    except ImportError:
        print("(c) suggest: optuna-gp not measured: optuna is not installed (pip install -e .[bench])")
        return
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    distributions = {"a": FloatDistribution(1e-5, 1e-1, log=True), "b": FloatDistribution(0, 1),
                     "c": IntDistribution(1, 8), "d": CategoricalDistribution(["x", "y", "z"])}
    for n in sizes:
        rng = np.random.default_rng(0)
        study = optuna.create_study(sampler=optuna.samplers.GPSampler(seed=0))
        for _ in range(n):
            params = {"a": float(10 ** rng.uniform(-5, -1)), "b": float(rng.random()), "c": int(rng.integers(1, 9)),
                      "d": str(rng.choice(["x", "y", "z"]))}
            loss = float(np.log10(params["a"]) ** 2 + params["b"] + rng.normal(0, 0.1))
            study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions, value=loss))
        times = []
        for _ in range(repeats):
            began = time.perf_counter()
            trial = study.ask(distributions)
            times.append(time.perf_counter() - began)
            study.tell(trial, 1.0)
        print(f"(c) suggest: optuna-gp, one ask() at {n} observations: median {statistics.median(times) * 1000:.0f} ms "
              f"(min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f})")


def _bohb_time(space, sizes, repeats) -> None:
    """bohb's cost is its model: the densities fitted on n results at one budget and a
    configuration drawn from them, 27 times (a bracket's first rung), with a result arriving
    before each as with one worker, so each proposal fits the densities anew."""
    from automl_cli.algorithms.proposers.base import Result
    for n in sizes:
        algo = get_algorithm("bohb")(space, max_epochs=27, seed=0, params={"epoch_multiplier": 1})
        rng = np.random.default_rng(0)

        def add_result():
            trial = len(algo.trials) + 1
            params = algo.trials[trial] = space.sample(rng)
            algo.proposer.observe(Result(trial, params, 1, float(np.log10(params["a"]) ** 2 + params["b"]),
                                         "completed"))

        for _ in range(n):
            add_result()
        times = []
        for _ in range(repeats):
            began = time.perf_counter()
            for _ in range(27):
                add_result()
                algo.proposer.propose(1, [], algo.schedule[0])
            times.append(time.perf_counter() - began)
        print(f"(c) suggest: bohb, 27 configurations from densities of {n} results: median "
              f"{statistics.median(times) * 1000:.0f} ms")


def _random_request(algo, rng):
    """Fill the history fast: random configurations booked through the algorithm's own ledger."""
    from automl_cli.algorithms.base import JobRequest

    params = algo.space.sample(rng)
    trial_id = algo.book.add(params)
    algo.proposer.added(trial_id, params)
    return [JobRequest(trial_id, params, 1)]


def scale(jobs: int = 10_000, workers: int = 8) -> None:
    search = [{"args": ["x"], "type": "float", "targets": [0, 1]}]
    began = time.perf_counter()
    result = simulate("random", search, lambda c, e, s: (c["x"], 1.0 + c["x"]), max_epochs=3, n_workers=workers,
                      params={"automl_max_recommendations": jobs})
    wall = time.perf_counter() - began
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"(d) scale: {len(result.jobs)} simulated jobs x 3 epochs on {workers} workers in {wall:.1f} s, "
          f"peak memory {peak:.0f} MB for the whole process (targets < 120 s, < 1024 MB)")


def startup(repeats: int = 7) -> None:
    """Each command timed as a user meets it: a fresh interpreter, `python -m automl_cli ...`,
    on a finished two-job run (its no-op trainer makes the run take seconds)."""
    with tempfile.TemporaryDirectory() as tmp:
        mmar = Path(tmp) / "mmar"
        _finished_run(mmar, Path(tmp) / "noop.py", "done")
        run = ["-m", str(mmar), "--run-id", "done"]
        commands = {"--help": ["--help"], "status": ["status", *run], "workers": ["workers", *run],
                    "summary": ["summary", *run], "stop (finished run)": ["stop", *run],
                    "runs": ["runs", "-m", str(mmar)],
                    "status, latest run": ["status", "-m", str(mmar), "--run-id", "latest"],
                    "algorithms": ["algorithms"], "validate": ["validate", "-m", str(mmar)]}
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(repeats):  # interleaved, so a busy spell on the shared machine hits every command alike
            for name, args in commands.items():
                began = time.perf_counter()
                subprocess.run([sys.executable, "-m", "automl_cli", *args], cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
                times[name].append(time.perf_counter() - began)
    base = statistics.median(times["--help"])
    print(f"(e) startup: median of {repeats} whole-process runs, ratio to --help (target <= 1.5x for the read-only "
          "commands)")
    for name, taken in times.items():
        print(f"    {name:<20} {statistics.median(taken) * 1000:6.0f} ms  {statistics.median(taken) / base:4.2f}x")


def _finished_run(mmar: Path, trainer: Path, run_id: str) -> None:
    shutil.copytree(ROOT / "mmar_template", mmar, ignore=shutil.ignore_patterns("automl"))
    trainer.write_text(NOOP_TRAINER)
    config = json.loads((mmar / "config" / "config_automl.json").read_text())
    config["controller"] = {"name": "random", "args": {"automl_max_recommendations": 2}}
    config["executor"] = {"name": "MMARExecutor", "args": {"train_command": f"{sys.executable} {trainer} {{epochs}}"}}
    (mmar / "config" / "config_automl.json").write_text(json.dumps(config))
    subprocess.run([sys.executable, "-m", "automl_cli", "run", "-m", str(mmar), "--run-id", run_id, "--workers", "0"],
                   check=True, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else "all"
    print(f"machine: {machine()}")
    for name, run in (("overhead", overhead), ("utilisation", utilisation), ("suggest", suggest_time),
                      ("scale", scale), ("startup", startup)):
        if which in (name, "all"):
            run()
