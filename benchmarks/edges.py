"""Where bayesian's model-chosen proposals put numbers: how many sit at an end of their range.

    python benchmarks/edges.py augmented_hartmann6 mixed12 [--seeds 3] [--origin] [--reference]

A proposal is model-chosen when its trial comes after the initial design (and after trial 1,
the config as written). A number is "at an end" when its unit-cube coordinate is 0 or 1: the
low or high end of its range (log ranges in log scale, ints by their value), "near an end"
within 2% of the range of one (uniform draws put 4% of numbers there). None of the
benchmark problems has its optimum at an end, so a model that proposes ends often is
exploring the edge of the cube, not following the data (issue #22 item 2). `--reference`
counts Optuna's GPSampler's trials after its 10 random ones the same way, as a yardstick.

`--origin` also says where the ends come from: how many of the acquisition's L-BFGS-B
refinements moved a number onto an end that their start did not have, and how many
proposals with a number at an end were refined points rather than raw candidates (random
draws and perturbations of the best). It wraps two functions of
automl_cli/algorithms/models/acquisition.py for the run, so it watches the real search.
"""
from __future__ import annotations

import argparse
import sys
from contextlib import contextmanager, nullcontext
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import problems  # noqa: E402
import quality  # noqa: E402
from automl_cli.algorithms.base import config_key  # noqa: E402
from automl_cli.algorithms.catalogue import initial_design  # noqa: E402
from automl_cli.algorithms.models import acquisition  # noqa: E402
from automl_cli.algorithms.models.acquisition import _at_end  # noqa: E402
from automl_cli.simulate import simulate  # noqa: E402
from automl_cli.space import parse_search_space  # noqa: E402

NEAR = 0.02  # "near an end": within 2% of the range (in the unit cube) of either end


def _space(problem):
    names = {a: None for item in problem.search for a in ([item["args"]] if isinstance(item["args"], str)
                                                        else item["args"])}
    return parse_search_space({**names, "search": problem.search}, Path("<edges>"))


def _numbers(space, params: dict) -> list[float]:
    """The unit-cube coordinates of the numbers `params` sets (choices and inactive ones left out)."""
    unit, i, out = space.encode(params), 0, []
    for p in space.params:
        if not p.is_choice and params[p.name] is not None:
            out.append(float(unit[i]))
        i += p.width
    return out


def _tally(space, chosen: list[dict]) -> tuple[int, int, int, int, int]:
    """(proposals with a number at an end, proposals, numbers at an end, numbers, numbers
    near an end, the ends included)."""
    with_end = numbers = at_end = near = 0
    for params in chosen:
        units = _numbers(space, params)
        here = sum(_at_end(u) for u in units)
        numbers += len(units)
        near += sum(u < NEAR or u > 1 - NEAR for u in units)
        at_end += here
        with_end += here > 0
    return with_end, len(chosen), at_end, numbers, near


def count(problem, seeds: int) -> tuple[int, int, int, int, int]:
    """bayesian's model-chosen proposals over `seeds` runs of 40 full trainings, tallied."""
    space = _space(problem)
    first_chosen = initial_design(len(space), quality.OURS["bayesian"]["automl_max_recommendations"])[0] + 2
    chosen = []
    for seed in range(seeds):
        result = simulate("bayesian", problem.search, problem.objective, max_epochs=problem.max_epochs, n_workers=1,
                          time_budget=40 * problem.max_epochs, direction="minimize", seed=seed,
                          params=quality.OURS["bayesian"])
        chosen += [job["params"] for job in result.jobs if job["trial_id"] >= first_chosen]
    return _tally(space, chosen)


def count_reference(problem, seeds: int) -> tuple[int, int, int, int, int]:
    """The same for Optuna's GPSampler (the trials after its random start-up ones)."""
    space = _space(problem)
    enums = {item["args"][0] for item in problem.search if item["type"] == "enum"}
    chosen = []
    for seed in range(seeds):
        study = quality.optuna_study(problem, "optuna-gp", seed, 40 * problem.max_epochs)
        startup = getattr(study.sampler, "_n_startup_trials", 10)
        chosen += [{k: [v] if k in enums else v for k, v in t.params.items()}  # a choice is a list here
                   for t in study.trials if t.number >= startup and t.state.name == "COMPLETE"]
    return _tally(space, chosen)


@contextmanager
def watching_origin():
    """The acquisition's refinement wrapped, for the block, to count where ends appear:
    yields the counters."""
    counts = {"refinements": 0, "refinements onto an end": 0, "proposals at an end": 0,
              "of them refined": 0}
    refined: set[str] = set()
    lbfgs, improve, maximize = acquisition._lbfgs, acquisition._improve, acquisition.maximize

    def counted_lbfgs(score, point, free, mean=None):
        out = lbfgs(score, point, free, mean)
        counts["refinements"] += 1
        counts["refinements onto an end"] += sum(_at_end(out[i]) for i in free) > sum(_at_end(point[i]) for i in free)
        return out

    def counted_improve(score, space, start, rounds, mean=None):
        value, config = improve(score, space, start, rounds, mean)
        refined.add(config_key(config))
        return value, config

    def counted_maximize(score, space, rng, **kwargs):
        refined.clear()
        found = maximize(score, space, rng, **kwargs)
        if found is not None and any(_at_end(u) for u in _numbers(space, found[0])):
            counts["proposals at an end"] += 1
            counts["of them refined"] += config_key(found[0]) in refined
        return found

    acquisition._lbfgs, acquisition._improve, acquisition.maximize = counted_lbfgs, counted_improve, counted_maximize
    try:
        yield counts
    finally:
        acquisition._lbfgs, acquisition._improve, acquisition.maximize = lbfgs, improve, maximize


def _say(label: str, what: str, tally: tuple[int, int, int, int, int]) -> None:
    with_end, proposals, at_end, numbers, near = tally
    print(f"{label}: {with_end} of {proposals} model-chosen {what} have a number at an end; "
          f"{at_end} of {numbers} numbers ({100 * at_end / max(numbers, 1):.0f}%); "
          f"{near} within {NEAR:.0%} of an end ({100 * near / max(numbers, 1):.0f}%)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("problems", nargs="+")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--origin", action="store_true", help="also count where the ends come from")
    parser.add_argument("--reference", action="store_true",
                        help="also count Optuna's GPSampler's model-chosen trials (needs optuna)")
    args = parser.parse_args()
    for name in args.problems:
        if args.reference:
            _say(f"{name}, optuna-gp", "trials", count_reference(getattr(problems, name)(), args.seeds))
        with watching_origin() if args.origin else nullcontext() as origin:
            _say(name, "proposals", count(getattr(problems, name)(), args.seeds))
        if origin is not None:
            print(f"  {origin['refinements onto an end']} of {origin['refinements']} L-BFGS-B refinements moved a "
                  f"number onto an end; {origin['of them refined']} of the {origin['proposals at an end']} proposals "
                  "with a number at an end were refined points, the rest raw candidates")


if __name__ == "__main__":
    main()
