"""What every algorithm must do, checked the same way for each preset and each
SCHEDULER+PROPOSER pair by the public suite in automl_cli.testing (users run it on their
own algorithms and controllers): the same seed makes the same search; replaying its
journal makes the same decisions as the live run; it never proposes outside the space;
failed jobs don't stop it; it stops at its budget.

A new preset gets these checks by being named in algorithms/catalogue.py and given a small
budget in automl_cli.testing.BUDGETS; a new pair by being valid there."""
import json
from pathlib import Path

import pytest

from automl_cli.algorithms import REGISTRY, get_algorithm, load_all
from automl_cli.algorithms.presets import all_names
from automl_cli.errors import UsageError
from automl_cli.simulate import run_simulation
from automl_cli.store import Journal
from automl_cli.testing import (BUDGETS, CONFIG, MAX_EPOCHS, SPACE, check_algorithm, check_rebuild, named,
                                objective, run)

load_all()
NAMES = all_names()


def test_every_preset_has_a_budget_and_every_pair_is_checked():
    assert set(REGISTRY) == set(BUDGETS)
    assert {"asha+kde", "asha+gp", "hyperband+gp"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_conformance(name, tmp_path):
    check_algorithm(named(name), label=name, journal_path=tmp_path / "journal.db")


def test_a_crashing_configuration_fails_its_job_and_nothing_else():
    result = run_simulation(SPACE, objective, lambda values: SPACE.apply(CONFIG, values), algorithm="random",
                            max_epochs=MAX_EPOCHS, n_workers=2, seed=0, params={"automl_max_recommendations": 40})
    failed = [j for j in result.jobs if j["status"] == "failed"]
    assert failed and all(j["params"]["M.act"] == ["gelu"] and j["params"]["M.depth"] == 5 for j in failed)


ADOPTING = sorted(name for name in NAMES if get_algorithm(name).can_adopt)


def test_the_full_training_algorithms_can_be_rebuilt():
    assert ADOPTING == ["bayesian", "bfbo", "full+kde", "grid", "random", "reinforcement"]


@pytest.mark.parametrize("name", ADOPTING)
def test_a_run_whose_replay_broke_is_rebuilt_and_then_replays(name):
    trials = check_rebuild(named(name), label=name)
    if name == "grid":  # no grid point twice
        assert len({json.dumps(p, sort_keys=True) for p in trials.values()}) == len(trials)


def test_an_algorithm_that_cannot_adopt_refuses_a_rebuild():
    from automl_cli.backends.simulated import SimulatedBackend
    from automl_cli.engine import Engine
    from automl_cli.simulate import METRIC

    _, settings, journal = run(named("hyperband"), seed=1, label="hyperband")
    fresh = get_algorithm("hyperband")(SPACE, max_epochs=MAX_EPOCHS, seed=1, params=BUDGETS["hyperband"])
    engine = Engine(settings, fresh, SimulatedBackend(objective, METRIC, dict, None), Journal(Path(":memory:")))
    with pytest.raises(UsageError, match="hyperband cannot be rebuilt"):
        engine.resume(list(journal.events()), rebuild=True)


def test_the_suite_catches_an_algorithm_that_does_not_replay():
    """The public helper fails an algorithm whose draws do not come from its seed."""
    import numpy as np

    from automl_cli.algorithms.base import JobRequest, Outcome

    class Unseeded(get_algorithm("random")):
        def suggest(self, free_slots):
            jobs = []
            for _ in range(min(free_slots, self.book.remaining())):
                params = self.space.sample(np.random.default_rng())  # the clock's entropy: not replayable
                jobs.append(JobRequest(self.book.add(params), params, self.max_epochs))
            return jobs

        def on_finished(self, outcome: Outcome):
            self.book.finish(outcome)

    make = lambda space, max_epochs, seed: Unseeded(space, max_epochs=max_epochs, seed=seed,  # noqa: E731
                                                     params={"automl_max_recommendations": 6})
    with pytest.raises(AssertionError, match="the same seed made another search"):
        check_algorithm(make, label="unseeded")


class SampleController:
    """A Clara-style controller as a user writes one: random recommendations from ctx.rng."""

    def __init__(self, rounds=8):
        self.rounds, self.made = rounds, 0

    def set_search_space(self, space, ctx):
        self.space = space

    def _more(self, count, ctx):
        count = min(count, self.rounds - self.made)
        self.made += count
        return [self.space.sample(ctx.rng) for _ in range(count)]

    def initial_recommendation(self, ctx):
        return self._more(3, ctx)

    def refine_recommendation(self, outcome, ctx):
        return self._more(1, ctx)


def test_a_users_controller_is_checked_by_the_public_suite():
    from automl_cli.testing import controller_factory

    check_algorithm(controller_factory(SampleController, rounds=8), label="SampleController")
