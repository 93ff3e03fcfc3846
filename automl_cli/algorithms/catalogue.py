"""The two axes of every search algorithm, and the names users choose them by.

A *scheduler* decides when to run what: full trainings, Hyperband's synchronous brackets
(with or without early stopping), asynchronous successive halving (ASHA), or PBT's
population of segments. A *proposer* decides which configuration to try next: random
draws, a grid, a Gaussian process (one at a time, or a batch), BOHB's KDE, differential
evolution, or the reinforcement policy. An algorithm is one of each.

Every TAO/Clara algorithm is a *preset*: a name for a pair with the behaviour, defaults
and documentation it always had (bohb = hyperband + kde, ...). Any other valid pair is
chosen by the name `SCHEDULER+PROPOSER` (e.g. `asha+kde`, asynchronous BOHB), wherever an
algorithm name is accepted; a pair that is a preset runs as that preset.

This module is metadata only, without numpy: `automl algorithms` and the config checks
read it without loading the modules that compute. Each piece's parameters are declared
here for that reason; the classes in schedulers/ and proposers/ refer to them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import UsageError
from .params import ParamSpec

BUDGET = {"automl_max_recommendations": ParamSpec(20, "configurations to train", minimum=1)}
# the passes over its brackets a Hyperband-family schedule gets when a time budget, not the
# schedule, is to end the search (runconfig.fill_budget): a fixed number, not one worked out
# from the budget, so that a resume with a bigger budget continues the same schedule
BUDGET_PASSES = 1000
HYPERBAND_PARAMETERS = {
    "automl_R": ParamSpec(27, "maximum resource of one configuration (the top rung), in units of epoch_multiplier epochs",
                          minimum=1),
    "automl_nu": ParamSpec(3, "keep the best 1/nu of each rung", minimum=2),
    "automl_hyperband_iterations": ParamSpec(1, "passes over the bracket list (TAO runs one; a long search "
                                                "or a time budget wants more)", minimum=1),
    "epoch_multiplier": ParamSpec(None, "epochs per unit of resource; 'auto' (default) derives it from the config's "
                                        "epochs as the TAO guide describes", minimum=1, auto="auto"),
}
EARLY_STOP_PARAMETERS = {
    "automl_early_stop_threshold": ParamSpec(0.1, "a job whose metric is worse than this is stopped "
                                                  "(below it when maximising, above it when minimising)", kind=float),
    "automl_min_early_stop_epochs": ParamSpec(3, "epochs a trial trains before it can be stopped", minimum=1),
}
ASHA_PARAMETERS = {
    "automl_nu": ParamSpec(3, "promote the top 1/nu of a rung", minimum=2),
    "automl_min_epochs": ParamSpec(1, "epochs of the bottom rung", minimum=1),
    "automl_max_concurrent": ParamSpec(0, "jobs running at once, at most (0: one on every worker; "
                                          "TAO's default was 4)", minimum=0),
    "automl_max_trials": ParamSpec(0, "configurations to start in all (0: no limit)", minimum=0),
    "automl_min_top_configs": ParamSpec(5, "with no trial limit, stop once this many configurations "
                                           "reached the top rung", minimum=1),
}
PBT_PARAMETERS = {
    "automl_population_size": ParamSpec(10, "members trained side by side", minimum=2),
    "automl_eval_interval": ParamSpec(10, "epochs between rankings (one job per segment)", minimum=1),
    "automl_max_generations": ParamSpec(20, "segments per member at most (with the config's epochs, "
                                            "whichever ends first)", minimum=1),
    "automl_perturbation_factor": ParamSpec(1.2, "explore multiplies or divides numbers by this", kind=float,
                                            minimum=1.0),
    "automl_truncation": ParamSpec(0.25, "bottom fraction that exploits the top fraction (at most 0.5: "
                                         "the two fractions must not overlap)", kind=float, minimum=0.0,
                                   maximum=0.5),
    "automl_resample_probability": ParamSpec(0.25, "chance that explore draws a value afresh", kind=float,
                                             minimum=0.0),
}

GP_PARAMETERS = {
    "automl_initial_random": ParamSpec(0, "configurations of the initial (Sobol) design before the GP "
                                          "leads (0: picked from the space's size)", minimum=0),
}
KDE_PARAMETERS = {
    "automl_kde_samples": ParamSpec(64, "candidates drawn from the good density; the one with the best "
                                        "good/bad ratio is run", minimum=1),
    "automl_top_n_percent": ParamSpec(15, "percent of a budget's results that count as good", minimum=1,
                                      maximum=99),
    "automl_min_points_in_model": ParamSpec(0, "results each density needs at least; 0 = the number of "
                                               "parameters + 1 (the paper's choice)", minimum=0),
    "automl_random_fraction": ParamSpec(0.2, "fraction of new configurations drawn at random (the paper: 1/3)",
                                        kind=float, minimum=0, maximum=1),
    "automl_bandwidth_factor": ParamSpec(3.0, "widens the good density's bandwidths when drawing candidates",
                                         kind=float, minimum=1),
}
DE_PARAMETERS = {
    "automl_mutation_factor": ParamSpec(0.5, "DE mutation factor F in a + F (b - c)", kind=float,
                                        minimum=0.0, maximum=2.0),
    "automl_crossover_prob": ParamSpec(0.5, "DE crossover probability: each coordinate comes from the "
                                            "mutant with this probability", kind=float, minimum=0.0, maximum=1.0),
    "automl_breed_full_budget": ParamSpec(0, "1 = a bracket's last (full-budget) rung runs bred trials from "
                                             "scratch, as the paper; 0 = it promotes the rung below's best, "
                                             "resuming", minimum=0, maximum=1),
}
POLICY_MAX_STD = 0.5
POLICY_PARAMETERS = {
    "max_rounds": ParamSpec(20, "configurations to train (a space of choices only: ignored, every combination "
                                "is trained once)", minimum=1),
    "learning_rate": ParamSpec(0.5, "policy step per finished job", kind=float, minimum=0.0),
    "baseline_decay": ParamSpec(0.5, "weight of the old baseline when a reward arrives", kind=float, minimum=0.0,
                                maximum=0.99),
    "min_std": ParamSpec(0.05, "floor on each number's policy std (unit scale): it keeps exploring", kind=float,
                         minimum=0.001, maximum=POLICY_MAX_STD),
    "exploration": ParamSpec(0.1, "share of each choice's draw spread evenly over its options", kind=float,
                             minimum=0.0, maximum=1.0),
}


@dataclass(frozen=True)
class Piece:
    """A scheduler or a proposer: its summary, parameters and where its class lives."""

    name: str
    summary: str
    parameters: dict[str, ParamSpec]
    where: str  # "module:Class" under automl_cli.algorithms
    # a proposer that decides how many configurations a full-trainings search runs (a grid's
    # size, Clara's max_rounds) replaces the scheduler's automl_max_recommendations
    sets_budget: bool = False


SCHEDULERS = {p.name: p for p in [
    Piece("full", "each configuration trained once, in full", BUDGET, "schedulers.full_trainings:FullTrainings"),
    Piece("hyperband", "successive-halving brackets (TAO's tables), promoted jobs resume", HYPERBAND_PARAMETERS,
          "schedulers.hyperband:SuccessiveHalving"),
    Piece("hyperband_es", "hyperband brackets that stop a job mid-stage when its metric is worse than a threshold",
          {**HYPERBAND_PARAMETERS, **EARLY_STOP_PARAMETERS}, "schedulers.hyperband_es:EarlyStoppingHyperband"),
    Piece("asha", "asynchronous successive halving: promotes as soon as a rung allows, no barrier", ASHA_PARAMETERS,
          "schedulers.asha:ASHA"),
    Piece("pbt", "a population trains in segments; the worst copy the best's weights and perturb their "
                 "hyperparameters", PBT_PARAMETERS, "schedulers.population:PopulationBasedTraining"),
]}
PROPOSERS = {p.name: p for p in [
    Piece("random", "independent draws from the search space (enum weights honoured)", {},
          "proposers.random:RandomProposer"),
    Piece("grid", "every combination of the choices x grid_points values per number, in a seeded order",
          {"grid_points": ParamSpec(3, "values per float/int, evenly spaced in its scale (log when log)", minimum=2)},
          "proposers.grid:GridProposer", sets_budget=True),
    Piece("gp", "Gaussian process (Matern 5/2, ARD, MAP) + log expected improvement after a Sobol design",
          GP_PARAMETERS, "proposers.gp:GPProposer"),
    Piece("gp_batch", "a Sobol start, then batches whose members believe the ones before them (kriging believer; bfbo)",
          GP_PARAMETERS, "proposers.gp_batch:BatchGPProposer"),
    Piece("kde", "BOHB's model of good vs bad results (TPE-style KDEs) at the largest budget with enough results",
          KDE_PARAMETERS, "proposers.kde:KDEProposer"),
    Piece("de", "differential evolution, one population per budget; breeds promotions too (DEHB)", DE_PARAMETERS,
          "proposers.de:DEProposer"),
    Piece("policy", "REINFORCE policy (softmax per choice, clipped Gaussian per number); a space of choices only "
                    "runs as a full grid", POLICY_PARAMETERS, "proposers.policy:PolicyProposer", sets_budget=True),
]}

# Which proposers each scheduler takes. A grid and the policy are for full trainings: a
# grid is a finite list trained once each, and the policy learns from full-training scores
# (results at mixed budgets would teach it the budget, not the configuration). DE breeds
# against Hyperband's per-budget populations and takes part in its promotions. PBT starts
# its members at random and explores around them itself.
VALID = {
    "full": ("random", "grid", "gp", "gp_batch", "kde", "policy"),
    "hyperband": ("random", "gp", "kde", "de"),
    "hyperband_es": ("random", "gp", "kde", "de"),
    "asha": ("random", "gp", "kde"),
    "pbt": ("random",),
}


@dataclass(frozen=True)
class Entry:
    """A name users can choose: a preset, or a SCHEDULER+PROPOSER pair."""

    name: str
    scheduler: str
    proposer: str
    summary: str
    # settings of the scheduler that a preset fixes (not user parameters), e.g. DEHB's s = 0 bracket
    options: dict[str, Any] = field(default_factory=dict)
    preset: bool = True

    @property
    def pair(self) -> str:
        return f"{self.scheduler}+{self.proposer}"

    @property
    def parameters(self) -> dict[str, ParamSpec]:
        """The scheduler's parameters, then the proposer's (a budget-setting proposer's
        replaces the scheduler's automl_max_recommendations)."""
        proposer = PROPOSERS[self.proposer]
        own = {k: v for k, v in SCHEDULERS[self.scheduler].parameters.items()
               if not (proposer.sets_budget and k in BUDGET)}
        return {**own, **proposer.parameters}


PRESETS = {e.name: e for e in [
    Entry("random", "full", "random", "independent draws from the search space (enum weights honoured), "
                                      "each trained in full"),
    Entry("grid", "full", "grid", "every combination of the choices x grid_points values per number, "
                                  "each trained in full"),
    Entry("bayesian", "full", "gp", "Gaussian process (Matern 5/2, ARD, MAP) + log expected improvement, "
                                    "one config at a time, full training each"),
    Entry("bfbo", "full", "gp_batch", "batch-first Bayesian optimisation: a Sobol start, then a whole batch "
                                      "from one fit (kriging believer)"),
    Entry("reinforcement", "full", "policy", "REINFORCE policy (softmax per choice, clipped Gaussian per number) "
                                             "learns from each job's score, each trained in full; a space of "
                                             "choices only runs as a full grid"),
    Entry("hyperband", "hyperband", "random", "successive-halving brackets (TAO's tables), random "
                                              "configurations, promoted jobs resume"),
    Entry("hyperband_es", "hyperband_es", "random", "hyperband that stops a job mid-stage when its metric is "
                                                    "worse than a threshold"),
    # measured: the s = 0 bracket's 4 random full trainings per pass cost more than they find
    Entry("bohb", "hyperband", "kde", "hyperband whose new configurations come from a model of good vs bad "
                                      "results (TPE-style KDEs)"),
    # the paper's s = 0 bracket: without it the top level's population would hold 2 members for R = 27, nu = 3
    Entry("dehb", "hyperband", "de", "hyperband brackets whose configurations are bred by differential "
                                     "evolution, one population per budget", options={"full_bracket": True}),
    Entry("asha", "asha", "random", "asynchronous successive halving: promotes as soon as a rung allows, "
                                    "no barrier"),
    Entry("pbt", "pbt", "random", "population trains in segments; the worst copy the best's weights and perturb "
                                  "their hyperparameters"),
]}
_PRESET_OF_PAIR = {e.pair: e.name for e in PRESETS.values()}


def valid_pairs() -> list[str]:
    return [f"{s}+{p}" for s, proposers in VALID.items() for p in proposers]


def pairs() -> list[Entry]:
    """Every valid pair that is not a preset, as an entry of its own."""
    out = []
    for name in valid_pairs():
        if name in _PRESET_OF_PAIR:
            continue
        scheduler, proposer = name.split("+")
        out.append(Entry(name, scheduler, proposer, f"{SCHEDULERS[scheduler].summary}; new configurations: "
                                                    f"{PROPOSERS[proposer].summary}", preset=False))
    return out


def preset_of(pair: str) -> str | None:
    """The preset a pair is, if any (hyperband+kde is bohb)."""
    return _PRESET_OF_PAIR.get(pair)


def entry(name: str) -> Entry:
    """The preset or pair `name` stands for; a UsageError (one line) for anything else."""
    if name in PRESETS:
        return PRESETS[name]
    if "+" not in name:
        known = ", ".join(sorted(PRESETS))
        raise UsageError(f"unknown algorithm '{name}' (known: {known}; or a pair SCHEDULER+PROPOSER, "
                         f"see `automl algorithms`)")
    scheduler, _, proposer = name.partition("+")
    if scheduler not in SCHEDULERS:
        raise UsageError(f"unknown scheduler '{scheduler}' in '{name}' (schedulers: {', '.join(SCHEDULERS)})")
    if proposer not in PROPOSERS:
        raise UsageError(f"unknown proposer '{proposer}' in '{name}' (proposers: {', '.join(PROPOSERS)})")
    if proposer not in VALID[scheduler]:
        raise UsageError(f"'{name}' is not a valid pair: {scheduler} takes only {', '.join(VALID[scheduler])} "
                         f"(valid pairs: {', '.join(valid_pairs())})")
    preset = preset_of(name)
    if preset is not None:
        return PRESETS[preset]
    return next(e for e in pairs() if e.name == name)


def known(name: str) -> bool:
    try:
        entry(name)
    except UsageError:
        return False
    return True


# The GP's initial design is a share of the configurations a search will train: the
# dimension-based size alone spent 9 of 12 full trainings on Sobol points for 7 parameters,
# leaving the model 3. A third keeps enough spread for the first fit and gives the rest to
# the model; at least 2 (a GP needs two points to fit a length scale), at most the
# dimension-based size (more points than that add little to the first fit).
INITIAL_SHARE = 3


def initial_design(n_params: int, planned: int | None, given: int = 0) -> tuple[int, str]:
    """How many Sobol points the GP proposers start with, and why, for a space of
    `n_params` parameters and a search of `planned` configurations (None: no fixed number);
    `given`: automl_initial_random (0: choose)."""
    by_dimension = min(10, max(3, n_params + 2))
    if given:
        if planned is not None and given > planned:
            return planned, f"automl_initial_random {given}, cut to the {planned} configurations"
        return given, "automl_initial_random"
    if planned is None:
        return by_dimension, f"{n_params} parameters + 2, within 3..10: the search has no fixed number of configurations"
    share = max(2, -(-planned // INITIAL_SHARE))
    size = min(by_dimension, share, planned)
    if size == planned:
        why = "all of them: too few configurations for the model to lead"
    elif share < by_dimension:
        why = f"a third of the budget, at least 2; {n_params} parameters alone would take {by_dimension}"
    else:
        why = f"{n_params} parameters + 2, within 3..10, no more than a third of the budget"
    return size, why


def initial_design_line(name: str, params: dict[str, Any], n_params: int) -> str | None:
    """validate's and plan's line on the GP's initial design (None for other proposers);
    `params`: the algorithm's resolved parameters."""
    chosen = entry(name)
    if chosen.proposer not in ("gp", "gp_batch"):
        return None
    planned = params.get("automl_max_recommendations") if chosen.scheduler == "full" else (
        params.get("automl_max_trials") or None if chosen.scheduler == "asha" else None)
    size, why = initial_design(n_params, planned, params.get("automl_initial_random", 0))
    of = f"{planned} configurations" if planned is not None else "an open number of configurations"
    return f"initial design: {size} Sobol points of {of} ({why})"
