"""Runs HpBandSter's BOHB (the paper authors' code) on one of our problems; meant for the
reference tools' virtual environment (.bench/dehb-venv: numpy < 2), called by quality.py:

    <venv>/bin/python benchmarks/hpbandster_runner.py PROBLEM SEED BUDGET

Prints one JSON line: the configuration it hands over and the cost it used. HpBandSter
trains every configuration from scratch at each budget, so a job of b epochs costs b
epochs. It runs whole Hyperband iterations, so the run goes on past the budget and its
incumbent is taken as the run stood when the budget was spent: the best result at the
full budget (27 epochs) among the jobs that finished within it, which is HpBandSter's own
rule (`Result.get_incumbent_id`: best at the largest budget) applied at that moment.
"""
import json
import logging
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import hpbandster.core.nameserver as hpns  # noqa: E402
import numpy as np  # noqa: E402
import Pyro4  # noqa: E402
from hpbandster.core.worker import Worker  # noqa: E402
from hpbandster.optimizers import BOHB  # noqa: E402

from benchmarks.configspaces import configspace, decoder  # noqa: E402
from benchmarks.problems import ALL  # noqa: E402


class ProblemWorker(Worker):
    def __init__(self, problem, decode, budget, **kwargs):
        super().__init__(**kwargs)
        self.problem, self.decode, self.budget = problem, decode, budget
        self.used = 0.0
        self.log = []  # (params, epochs, loss, cost used when it finished)

    def compute(self, config, budget, **kwargs):
        if self.used >= self.budget:  # spent: later jobs do not count, so do not train them
            return {"loss": 1e9, "info": "past the budget"}
        epochs = max(1, int(round(budget)))
        params = self.decode(config)
        value, cost = self.problem.from_scratch(params, epochs)
        self.used += cost
        self.log.append((params, epochs, value, self.used))
        return {"loss": float(value), "info": {}}


def main(name: str, seed: int, budget: float) -> None:
    logging.basicConfig(level=logging.ERROR)
    # master, name server and worker all live in this process; Pyro's default serializer
    # cannot send the numpy strings ConfigSpace now gives categorical values (Counting Ones)
    Pyro4.config.SERIALIZER = "pickle"
    Pyro4.config.SERIALIZERS_ACCEPTED.add("pickle")
    problem = ALL[name]()
    decode = decoder(problem)
    np.random.seed(seed)  # BOHB's KDE sampling and random fraction draw from numpy's global generator
    space = configspace(problem, seed)
    run_id = f"bench-{name}-{seed}"
    server = hpns.NameServer(run_id=run_id, host="127.0.0.1", port=0)  # any free port: runs may overlap
    host, port = server.start()
    worker = ProblemWorker(problem, decode, budget, nameserver=host, nameserver_port=port, run_id=run_id)
    worker.run(background=True)
    optimizer = BOHB(configspace=space, run_id=run_id, nameserver=host, nameserver_port=port,
                     min_budget=1, max_budget=problem.max_epochs, eta=3)
    try:
        # one pass over the four brackets costs about 405 epochs; run passes until the budget is spent
        while worker.used < budget:
            optimizer.run(n_iterations=4)
    finally:
        optimizer.shutdown(shutdown_workers=True)
        server.shutdown()
    full = [(loss, params) for params, epochs, loss, used in worker.log
            if epochs == problem.max_epochs and used <= budget and math.isfinite(loss)]
    config = min(full, key=lambda item: item[0])[1] if full else None
    print(json.dumps({"config": config, "cost": worker.used}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]))
