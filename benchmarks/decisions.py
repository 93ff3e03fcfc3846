"""Every algorithm's decisions on the benchmark seeds, as fingerprints, to show that a
refactor changed none of them (or which ones it changed).

    python benchmarks/decisions.py --save before.json      # on the old code
    python benchmarks/decisions.py --compare before.json   # on the new code: lists what differs

A decision sequence is every job a simulated search ran, in order: its trial, parameters,
epochs, worker, outcome and metrics. Each algorithm runs on the four public problems,
seeds 0-4, with 1 and 4 workers and a budget of 12 full trainings, then is fingerprinted
(sha256 of the sequence). Runs that finish with the same fingerprint made the same
decisions; a different one prints the first job where they part.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from automl_cli.errors import UsageError  # noqa: E402
from automl_cli.simulate import simulate  # noqa: E402
from benchmarks.problems import ALL  # noqa: E402

HYPERBAND = {"automl_R": 9, "automl_nu": 3, "epoch_multiplier": 3, "automl_hyperband_iterations": 50}
PRESETS = {
    "random": {"automl_max_recommendations": 1000},
    "grid": {"grid_points": 2},
    "bayesian": {"automl_max_recommendations": 1000},
    "bfbo": {"automl_max_recommendations": 1000},
    "reinforcement": {"max_rounds": 1000},
    "hyperband": HYPERBAND,
    "hyperband_es": {**HYPERBAND, "automl_early_stop_threshold": 100.0, "automl_min_early_stop_epochs": 2},
    "bohb": HYPERBAND,
    "dehb": HYPERBAND,
    "asha": {"automl_nu": 3, "automl_min_top_configs": 1000},
    "pbt": {},
}
SEEDS = range(5)
WORKERS = (1, 4)
BUDGET_TRAININGS = 12


def sequence(algorithm: str, problem, seed: int, workers: int) -> list[list]:
    params = dict(PRESETS[algorithm])
    if algorithm == "asha":
        params["automl_max_concurrent"] = workers
    try:
        result = simulate(algorithm, problem.search, problem.objective, max_epochs=problem.max_epochs,
                          n_workers=workers, time_budget=BUDGET_TRAININGS * problem.max_epochs,
                          direction="minimize", seed=seed, params=params)
    except UsageError as exc:  # e.g. a grid too large for the problem: the refusal is the decision
        return [["refused", str(exc)]]
    jobs = [[j["trial_id"], j["params"], j["start_epoch"], j["stop_epoch"], j["worker"], j["status"],
             [None if m is None else round(m, 9) for m in j["metrics"]]] for j in result.jobs]
    best = result.best
    return jobs + [["best", None if best is None else [best[0], round(best[1], 9)]]]


def fingerprint(seq: list) -> str:
    return hashlib.sha256(json.dumps(seq, sort_keys=True, default=str).encode()).hexdigest()[:16]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--save", type=Path, help="write the sequences to this file")
    parser.add_argument("--compare", type=Path, help="compare with sequences saved earlier")
    parser.add_argument("--algorithms", default=",".join(PRESETS))
    args = parser.parse_args()
    saved = json.loads(args.compare.read_text()) if args.compare else {}
    out, same, differ = {}, 0, []
    for algorithm in args.algorithms.split(","):
        for make in ALL.values():
            problem = make()
            for seed in SEEDS:
                for workers in WORKERS:
                    key = f"{algorithm}/{problem.name}/seed{seed}/w{workers}"
                    seq = sequence(algorithm, problem, seed, workers)
                    out[key] = seq
                    if key in saved:
                        if fingerprint(saved[key]) == fingerprint(seq):
                            same += 1
                        else:
                            old = saved[key]
                            at = next((i for i, (a, b) in enumerate(zip(old, json.loads(json.dumps(seq))))
                                       if a != b), min(len(old), len(seq)))
                            differ.append(f"{key}: differs from job {at + 1} ({len(old)} -> {len(seq)} jobs)")
        print(f"{algorithm}: done", flush=True)
    if args.save:
        args.save.write_text(json.dumps(out))
    if args.compare:
        print(f"{same} of {len(out)} runs made the same decisions")
        for line in differ:
            print("  " + line)
        sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
