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

Many workers (`--workers 8`, or `--workers 1,8`; `--wall F`):

    python benchmarks/quality.py --workers 1,8 --seeds 5 --methods asha,bohb,dehb --results FILE
    python benchmarks/quality.py --workers 8 --wall 0.25 --seeds 5 --methods bfbo --results FILE

T is the wall time of the sequential runs above: `--budget-trainings` full trainings of
virtual time on one worker (every epoch costs what the problem says). Each of ours runs once
per worker count N with N simulated workers for a wall time of F x T (`--wall`, default 1:
T itself, i.e. N times the sequential runs' total cost; never less than T/N, the equal-cost
point, so one worker always runs to T), and its trajectory is kept: the
regret of the configuration best/ would hold at each moment it changed (RunView.best's rule
over the jobs ended by then: SimulationResult.incumbent_trace). "Regret at wall time t" is
read from it, so one run gives every t up to F x T. (A run stopped at t could also rank a
job the budget cut at t; the trajectory ignores those. For the full-training methods,
bayesian and bfbo, that changes nothing once a training has completed.) The yardstick is
Optuna's GPSampler run sequentially for T (the runs of the tables above, reused from the
file): the median of its final regret over `--yardstick-seeds` seeds when given, else over
`--seeds` or 10, whichever is more (`--seeds 60 --yardstick-seeds 20` measures ours on 60
seeds without 40 more Optuna runs). Printed, for each N > 1:
- equal total cost: N workers at wall time T/N against the same method on 1 worker at T
  (its traced run when `--workers` includes 1, otherwise, and always for random, bayesian
  and bfbo when the file has them, its runs in the tables above);
  "no worse on" counts the problems where the median is no worse (parallelism must not
  waste the budget), "worse beyond chance" those where a one-sided Mann-Whitney test says N
  workers end worse with p < 0.05 (two runs of random search differ in their medians too);
- for N > 4, the same at wall time T/4 (N/4 times the cost): whether N workers give one
  worker's answer at least 4 times sooner;
- equal wall time: N workers' median regret at t = T/N, T/4, T/2 and T, beside one worker
  and optuna-gp at T;
- the wall time to reach optuna-gp's sequential median final regret, as a fraction of T:
  per seed, the first time from which the handed-over configuration's regret stays at or
  below it up to the horizon F x T; the median over seeds, or "not by F T" when at least
  half the seeds never get there.
Results are kept under "problem/method/seed/budget/wN", so the sequential entries stay valid.
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
    # automl_max_concurrent: the default, every worker (one in the sequential tables)
    "asha": {"automl_nu": 3, "automl_min_top_configs": 100_000},
    # enough passes over the brackets to fill the budget; the time budget ends the run
    "dehb": {"automl_R": 27, "automl_nu": 3, "epoch_multiplier": 1, "automl_hyperband_iterations": 1000},
}
# every job a full training: once one has completed, a job the budget cut is never the pick
FULL_TRAININGS = ("random", "bayesian", "bfbo")
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


def run_ours_traced(problem, name: str, seed: int, wall: float, workers: int) -> dict:
    """One of ours on `workers` simulated workers for `wall` virtual seconds: the regret of
    what best/ holds at each moment it changed (SimulationResult.incumbent_trace: RunView.best's
    rule over the jobs ended by then), and of the final pick (`result.best`, which may also
    rank a job the budget cut)."""
    result = simulate(name, problem.search, problem.objective, max_epochs=problem.max_epochs, n_workers=workers,
                      time_budget=wall, direction="minimize", seed=seed, params=OURS[name])
    trace = [[when, problem.regret(config)] for when, _, config in result.incumbent_trace()]
    busy = sum(j["end_time"] - j["start_time"] for j in result.jobs if j["end_time"] is not None)
    return {"trace": trace, "regret": math.inf if result.best is None else problem.regret(result.best[0]),
            "horizon": wall, "jobs": len(result.jobs), "utilisation": busy / (workers * max(result.elapsed, 1e-9))}


def regret_at(trace: list, t: float) -> float:
    """The regret of the configuration a run would hand over at wall time t (inf before any)."""
    value = math.inf
    for when, regret in trace:
        if when > t * (1 + 1e-12):
            break
        value = regret
    return value


def time_to_reach(trace: list, target: float, horizon: float) -> float:
    """The first wall time from which the handed-over configuration's regret stays at or
    below `target` up to `horizon` (inf if it never does)."""
    reached = math.inf
    for when, regret in trace:
        if when > horizon * (1 + 1e-12):
            break
        if regret <= target:
            reached = min(reached, when)
        else:
            reached = math.inf
    return reached


def run_optuna(problem, name: str, seed: int, budget: float) -> dict | None:
    study = optuna_study(problem, name, seed, budget)
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    return study.best_trial.params if complete else None


def optuna_study(problem, name: str, seed: int, budget: float):
    """The reference tool's study after `budget` seconds of the problem's cost."""
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
    return study


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
    parser.add_argument("--workers", help="the parallel benchmark: worker counts of ours, e.g. 8 or 1,8 "
                                          "(see 'Many workers' above)")
    parser.add_argument("--wall", type=float, default=1.0,
                        help="with --workers: how long ours run, as a fraction of the sequential wall time T")
    parser.add_argument("--yardstick-seeds", type=int,
                        help="with --workers: seeds of the sequential optuna-gp runs the yardstick is the median of "
                             "(default: --seeds or 10, whichever is more)")
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
    if args.workers:
        return main_parallel(args, methods, saved)
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


def main_parallel(args, methods, saved: dict) -> None:
    """Ours on N workers against the sequential yardstick (Optuna's GPSampler, one worker)."""
    counts = [int(n) for n in args.workers.split(",")]
    ours = [m for m in methods if m in OURS]
    problems = args.problems.split(",")
    print(f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} cores; seeds {args.seeds}; "
          f"T = {args.budget_trainings:g} full trainings of wall time; workers {counts}; ours run to {args.wall:g} T")
    runs: dict = {}  # (problem, method, workers) -> list of entries, one per seed
    yardstick: dict[str, float] = {}
    for pname in problems:
        problem = ALL[pname]()
        T = args.budget_trainings * problem.max_epochs * 1.0
        gp = []
        for seed in range(args.yardstick_seeds or max(args.seeds, 10)):  # optuna-gp's runs in the main tables
            key = f"{pname}/optuna-gp/{seed}/{args.budget_trainings:g}"
            if key not in saved:
                began = time.perf_counter()
                config = run_optuna(problem, "optuna-gp", seed, T)
                saved[key] = {"regret": math.inf if config is None else problem.regret(config),
                              "seconds": time.perf_counter() - began}
                if args.results:
                    args.results.write_text(json.dumps(saved, indent=0, sort_keys=True))
            gp.append(saved[key]["regret"])
        yardstick[pname] = float(np.median(gp))
        print(f"  {pname:<20} optuna-gp sequential median final regret {yardstick[pname]:.4g}", flush=True)
        for method in ours:
            for n in counts:
                if n == 1 and method in FULL_TRAININGS and all(
                        f"{pname}/{method}/{seed}/{args.budget_trainings:g}" in saved for seed in range(args.seeds)):
                    continue  # its runs in the main tables: the same pick (see the docstring)
                # at least T/N: the equal-cost table reads N workers at T/N (one worker at T)
                horizon = max(args.wall, 1.0 / n) * T
                entries = []
                for seed in range(args.seeds):
                    key = f"{pname}/{method}/{seed}/{args.budget_trainings:g}/w{n}"
                    entry = saved.get(key)
                    if entry is None or entry["horizon"] < horizon * (1 - 1e-9):
                        began = time.perf_counter()
                        entry = run_ours_traced(problem, method, seed, horizon, n)
                        entry["seconds"] = time.perf_counter() - began
                        saved[key] = entry
                        if args.results:
                            args.results.write_text(json.dumps(saved, indent=0, sort_keys=True))
                    entries.append({**entry, "T": T})
                runs[pname, method, n] = entries
                # runs made by other scripts calling run_ours_traced (merged in) carry no time
                timed = [e["seconds"] for e in entries if "seconds" in e]
                print(f"  {pname:<20} {method:<10} {n} workers: median regret at {horizon / T:g} T "
                      f"{np.median([regret_at(e['trace'], horizon) for e in entries]):.4g}, utilisation "
                      f"{np.median([e['utilisation'] for e in entries]):.0%}, tool seconds {sum(timed):.0f}"
                      + (f" ({len(entries) - len(timed)} runs untimed)" if len(timed) < len(entries) else ""),
                      flush=True)
    print_parallel(runs, ours, counts, problems, yardstick, saved, args)


def _med(values) -> str:
    v = float(np.median(values))
    return "-" if math.isnan(v) else "inf" if math.isinf(v) else f"{v:.3g}"


def _worse_p(a, b) -> float:
    """One-sided Mann-Whitney p that the regrets `a` tend to be larger than `b` (1 when all tie)."""
    from scipy.stats import mannwhitneyu

    if len(set(a) | set(b)) == 1:  # all tied (e.g. every run at regret 0): nothing to rank
        return 1.0
    return float(mannwhitneyu(a, b, alternative="greater").pvalue)


def print_parallel(runs, ours, counts, problems, yardstick, saved, args) -> None:
    def at(pname, method, n, fraction):
        """Median regret over seeds at wall time fraction * T (None where the runs stop sooner)."""
        entries = runs[pname, method, n]
        if any(e["horizon"] < fraction * e["T"] * (1 - 1e-9) for e in entries):
            return None
        return [regret_at(e["trace"], fraction * e["T"]) for e in entries]

    def sequential(pname, method):
        """Ours on one worker for T: the traced run if there is one, else the main tables' run."""
        if (pname, method, 1) in runs:
            return at(pname, method, 1, 1.0)
        keys = [f"{pname}/{method}/{s}/{args.budget_trainings:g}" for s in range(args.seeds)]
        return [saved[k]["regret"] for k in keys] if all(k in saved for k in keys) else None

    def against_one(n, fraction):
        """N workers at wall time fraction * T against one worker at T, a row per method."""
        print("| method | " + " | ".join(problems) + " | no worse on (median) | worse beyond chance (p < 0.05) on |")
        print("|---|" + "---|" * (len(problems) + 2))
        for m in ours:
            cells, wins, worse, known = [], 0, 0, 0
            for pname in problems:
                a, b = at(pname, m, n, fraction), sequential(pname, m)
                if a is None or b is None:
                    cells.append("-")
                    continue
                known += 1
                wins += bool(np.median(a) <= np.median(b))
                p = _worse_p(a, b)
                worse += p < 0.05
                cells.append(f"{_med(a)} vs {_med(b)} (p {p:.2g})")
            print(f"| {m} | " + " | ".join(cells) + f" | {wins} of {known} | {worse} of {known} |")

    many = [n for n in counts if n > 1]
    print(f"\nOptuna GPSampler, sequential, median final regret at T: "
          + ", ".join(f"{p} {yardstick[p]:.3g}" for p in problems))
    for n in many:
        print(f"\n{n} workers at equal total cost (wall T/{n}) vs 1 worker at T, median regret (p: one-sided "
              f"Mann-Whitney, that {n} workers end worse; the medians of two samples of one method differ by chance):\n")
        against_one(n, 1 / n)
        if n > 4:  # the speed-up check: N workers get one worker's answer at least 4 times sooner
            print(f"\n{n} workers at wall time T/4 ({n / 4:g} times the total cost) vs 1 worker at T, as above "
                  f"('-': runs that stop before T/4; --wall 0.25 runs them that far):\n")
            against_one(n, 0.25)
        fractions = sorted({1 / n, 0.25, 0.5, 1.0})
        print(f"\n{n} workers, median regret at wall time t (T: the sequential runs' wall time); "
              f"last row: optuna-gp, 1 worker, at T:\n")
        for pname in problems:
            print(f"| {pname} | " + " | ".join(f"t = T/{round(1 / f)}" if f < 1 else "t = T" for f in fractions)
                  + " | 1 worker, t = T |")
            print("|---|" + "---|" * (len(fractions) + 1))
            for m in ours:
                cells = [(_med(v) if (v := at(pname, m, n, f)) is not None else "-") for f in fractions]
                one = sequential(pname, m)
                print(f"| {m} | " + " | ".join(cells) + f" | {_med(one) if one is not None else '-'} |")
            print(f"| optuna-gp | " + " | ".join("" for _ in fractions) + f" | {yardstick[pname]:.3g} |\n")
        print(f"Wall time to reach optuna-gp's sequential median final regret, as a fraction of T (median over "
              f"seeds; 'not by H': not reached by the horizon H in at least half of them):\n")
        print("| method | " + " | ".join(problems) + " | within T/4 on |")
        print("|---|" + "---|" * (len(problems) + 1))
        for m in ours:
            cells, wins = [], 0
            for pname in problems:
                entries = runs[pname, m, n]
                horizon = min(e["horizon"] / e["T"] for e in entries)
                reach = [time_to_reach(e["trace"], yardstick[pname], horizon * e["T"]) / e["T"] for e in entries]
                med = float(np.median(reach))
                wins += med <= 0.25
                cells.append(f"{med:.3g}" if math.isfinite(med) else f"not by {horizon:g} T")
            print(f"| {m} | " + " | ".join(cells) + f" | {wins} of {len(problems)} |")


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
