"""Runs the `dehb` package on one of our problems; meant for its own virtual environment
(dehb needs numpy < 2), called by quality.py:

    <dehb venv>/bin/python benchmarks/dehb_runner.py PROBLEM SEED BUDGET

Prints one JSON line: the incumbent config DEHB chose and the cost it used. DEHB trains
every configuration from scratch at each fidelity, so a job at f epochs costs f epochs.
"""
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dehb import DEHB  # noqa: E402

from benchmarks.configspaces import configspace, decoder  # noqa: E402
from benchmarks.problems import ALL  # noqa: E402


def main(name: str, seed: int, budget: float) -> None:
    problem = ALL[name]()
    decode = decoder(problem)

    used = {"cost": 0.0}

    def objective(config, fidelity, **kwargs):
        value, cost = problem.from_scratch(decode(config), max(1, int(round(fidelity))))
        used["cost"] += cost
        return {"fitness": value, "cost": cost}

    with tempfile.TemporaryDirectory() as out:
        optimizer = DEHB(f=objective, cs=configspace(problem, seed), dimensions=len(problem.search), min_fidelity=1,
                         max_fidelity=problem.max_epochs, eta=3, n_workers=1, output_path=out, seed=seed,
                         save_freq=None)
        # ask/tell until the simulated cost budget is spent (run(total_cost=) counts wall-clock seconds)
        while used["cost"] < budget:
            job = optimizer.ask()
            optimizer.tell(job, objective(job["config"], job["fidelity"]))
        config, score = optimizer.get_incumbents()
    print(json.dumps({"config": decode(config), "score": score, "cost": used["cost"]}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]))
