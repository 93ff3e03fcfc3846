"""Search quality against the tools people use today, on the same cost budget.

    python benchmarks/quality.py [--seeds 10] [--budget-trainings 40] [--problems a,b] [--methods x,y]
                                 [--reference-python PATH] [--results FILE]

Every method gets the same simulated cost budget (`--budget-trainings` full trainings of
27 epochs), one worker, and is scored by the regret of the configuration it picks (for ours,
`simulate().best`: the job best/ would hold, docs/usage.md; for the others, their own
incumbent), computed on the noise-free full-fidelity value. Ours run through `simulate()`
(the real engine and algorithms on a virtual clock); Optuna runs in-process (pip install
-e .[bench]); the `dehb` package and HpBandSter run in a virtual environment of their own
because they need numpy < 2 (see benchmarks/README.md): `dehb-package` and
`hpbandster-bohb` in the tables, where ours are `dehb` and `bohb`. Prints a table of median
final regret (IQR) per problem and the mean rank of each method, then each of ours beside
the tools it is named after.

With `--results FILE` each run's regret is saved as it finishes and runs already in the
file are not repeated, so a long benchmark can be stopped, resumed, or split into parts
(e.g. the reference tools in one go, ours after a change) and printed together.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from automl_cli.simulate import simulate  # noqa: E402
from benchmarks.problems import ALL  # noqa: E402

OURS = {
    "random": {"automl_max_recommendations": 100_000},
    "bayesian": {"automl_max_recommendations": 100_000},
    "bfbo": {"automl_max_recommendations": 100_000},
    "reinforcement": {"max_rounds": 100_000},
    "hyperband": {"automl_R": 27, "automl_nu": 3, "epoch_multiplier": 1, "automl_hyperband_iterations": 1000},
    "hyperband_es": {"automl_R": 27, "automl_nu": 3, "epoch_multiplier": 1, "automl_hyperband_iterations": 1000, "automl_early_stop_threshold": 2.0},  # noqa: E501 (stops a job above 2 from epoch 3)
    "bohb": {"automl_R": 27, "automl_nu": 3, "epoch_multiplier": 1, "automl_hyperband_iterations": 1000},
    "asha": {"automl_nu": 3, "automl_max_concurrent": 1, "automl_min_top_configs": 100_000},
    # enough passes over the brackets to fill the budget; the time budget ends the run
    "dehb": {"automl_R": 27, "automl_nu": 3, "epoch_multiplier": 1, "automl_hyperband_iterations": 1000},
}
OPTUNA = ("optuna-tpe", "optuna-gp", "optuna-tpe-hyperband")
# ours against the tools each is named after (the bar: no worse on 3 of the 4 problems)
NAMESAKES = [("bayesian", "optuna-gp"), ("bfbo", "optuna-gp"), ("bohb", "optuna-tpe-hyperband"),
             ("bohb", "hpbandster-bohb"), ("dehb", "dehb-package")]
DEHB_PACKAGE = "dehb-package"  # the authors' `dehb` package; "dehb" is ours
HPBANDSTER = "hpbandster-bohb"  # BOHB's authors' code; "bohb" is ours
# the reference tools that need numpy < 2 share one virtual environment (benchmarks/README.md)
REFERENCE_RUNNERS = {DEHB_PACKAGE: "dehb_runner.py", HPBANDSTER: "hpbandster_runner.py"}
DEFAULT_REFERENCE_PYTHON = ROOT / ".bench" / "dehb-venv" / "bin" / "python"


def run_ours(problem, name: str, seed: int, budget: float) -> dict:
    result = simulate(name, problem.search, problem.objective, max_epochs=problem.max_epochs, n_workers=1,
                      time_budget=budget, direction="minimize", seed=seed, params=OURS[name])
    return result.best[0]


def run_optuna(problem, name: str, seed: int, budget: float) -> dict | None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = (optuna.samplers.GPSampler(seed=seed) if name == "optuna-gp"
               else optuna.samplers.TPESampler(seed=seed))
    pruner = (optuna.pruners.HyperbandPruner(min_resource=1, max_resource=problem.max_epochs, reduction_factor=3)
              if name.endswith("hyperband") else optuna.pruners.NopPruner())
    study = optuna.create_study(sampler=sampler, pruner=pruner)
    used = {"cost": 0.0}

    def objective(trial):
        config = {}
        for item in problem.search:
            key = item["args"][0]
            if item["type"] == "enum":
                config[key] = trial.suggest_categorical(key, [c[0] for c in item["targets"]])
            elif item["type"] == "int":
                config[key] = trial.suggest_int(key, *item["targets"], log=item.get("log", False))
            else:
                config[key] = trial.suggest_float(key, *item["targets"], log=item.get("log", False))
        state, value = {}, None
        for epoch in range(1, problem.max_epochs + 1):
            if used["cost"] >= budget:
                study.stop()
                raise optuna.TrialPruned()
            value, seconds = problem.objective(config, epoch, state)
            used["cost"] += seconds
            trial.report(value, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return value

    while used["cost"] < budget:
        study.optimize(objective, n_trials=1)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    return study.best_trial.params if complete else None


def run_reference(method: str, problem, seed: int, budget: float, python: Path) -> dict | None:
    """One run of a reference tool in its own environment; the configuration it hands over."""
    runner = REFERENCE_RUNNERS[method]
    out = subprocess.run([str(python), str(ROOT / "benchmarks" / runner), problem.name, str(seed), str(budget)],
                         capture_output=True, text=True, timeout=3600, cwd=ROOT)
    line = next((l for l in reversed(out.stdout.splitlines()) if l.startswith('{"config"')), None)
    if line is None:
        raise RuntimeError(f"{runner} failed: {out.stderr[-500:]}")
    return json.loads(line)["config"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--budget-trainings", type=float, default=40.0)
    parser.add_argument("--problems", default=",".join(ALL))
    parser.add_argument("--methods", default=",".join([*OURS, *OPTUNA, *REFERENCE_RUNNERS]))
    parser.add_argument("--reference-python", "--dehb-python", dest="reference_python", type=Path,
                        default=DEFAULT_REFERENCE_PYTHON, help="python of the reference tools' environment")
    parser.add_argument("--results", type=Path, help="JSON file of per-run regrets: saved to, and reused from")
    args = parser.parse_args()
    methods = args.methods.split(",")
    unknown = [m for m in methods if m not in OURS and m not in OPTUNA and m not in REFERENCE_RUNNERS]
    if unknown:
        parser.error(f"unknown method(s) {', '.join(unknown)}")
    skipped = [m for m in methods if m in REFERENCE_RUNNERS] if not args.reference_python.exists() else []
    if skipped:
        print(f"skipping {', '.join(skipped)}: no interpreter at {args.reference_python} (see benchmarks/README.md)")
        methods = [m for m in methods if m not in skipped]
    saved = json.loads(args.results.read_text()) if args.results and args.results.exists() else {}
    print(f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} cores; seeds {args.seeds}; "
          f"budget {args.budget_trainings:g} full trainings per run; one worker")
    regrets: dict[str, dict[str, list[float]]] = {}
    seconds: dict[str, float] = {m: 0.0 for m in methods}
    for pname in args.problems.split(","):
        problem = ALL[pname]()
        budget = args.budget_trainings * problem.max_epochs * 1.0
        regrets[pname] = {}
        for method in methods:
            values = []
            for seed in range(args.seeds):
                key = f"{pname}/{method}/{seed}/{args.budget_trainings:g}"
                if key in saved:
                    values.append(saved[key]["regret"])
                    seconds[method] += saved[key]["seconds"]
                    continue
                began = time.perf_counter()
                if method in OURS:
                    config = run_ours(problem, method, seed, budget)
                elif method in OPTUNA:
                    config = run_optuna(problem, method, seed, budget)
                elif method in REFERENCE_RUNNERS:
                    config = run_reference(method, problem, seed, budget, args.reference_python)
                else:
                    raise SystemExit(f"unknown method {method!r}")
                took = time.perf_counter() - began
                seconds[method] += took
                values.append(math.inf if config is None else problem.regret(config))
                if args.results:
                    saved[key] = {"regret": values[-1], "seconds": took}
                    args.results.write_text(json.dumps(saved, indent=0, sort_keys=True))
            regrets[pname][method] = values
            print(f"  {pname:<20} {method:<22} median regret {np.median(values):.4g}", flush=True)
    print_table(regrets, methods, args.seeds, seconds)
    print_namesakes(regrets, methods)


def print_table(regrets, methods, seeds, seconds) -> None:
    print("\n| problem | " + " | ".join(methods) + " |")
    print("|---|" + "---|" * len(methods))
    ranks = {m: [] for m in methods}
    for pname, by_method in regrets.items():
        cells = []
        for m in methods:
            v = np.array(by_method[m])
            q1, med, q3 = np.percentile(v, [25, 50, 75])
            cells.append(f"{med:.3g} ({q1:.3g}-{q3:.3g})")
        print(f"| {pname} | " + " | ".join(cells) + " |")
        for seed in range(seeds):
            row = np.array([by_method[m][seed] for m in methods])
            order = row.argsort().argsort() + 1.0  # 1 = best
            for m, r in zip(methods, order):
                ranks[m].append(r)
    print("| mean rank | " + " | ".join(f"{np.mean(ranks[m]):.2f}" for m in methods) + " |")
    print("| tool seconds (all runs) | " + " | ".join(f"{seconds[m]:.0f}" for m in methods) + " |")


def print_namesakes(regrets, methods) -> None:
    """Ours against its namesake: medians side by side and on how many problems ours is no worse."""
    pairs = [(ours, ref) for ours, ref in NAMESAKES if ours in methods and ref in methods]
    if not pairs:
        return
    problems = list(regrets)
    print("\n| ours vs reference (median) | " + " | ".join(problems) + " | no worse on |")
    print("|---|" + "---|" * (len(problems) + 1))
    for ours, ref in pairs:
        cells, wins = [], 0
        for pname in problems:
            a, b = np.median(regrets[pname][ours]), np.median(regrets[pname][ref])
            wins += bool(a <= b)
            cells.append(f"{a:.3g} vs {b:.3g}")
        print(f"| {ours} vs {ref} | " + " | ".join(cells) + f" | {wins} of {len(problems)} |")


if __name__ == "__main__":
    main()
