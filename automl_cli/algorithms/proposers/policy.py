"""Clara's reinforcement-learning controller: a policy that learns which configurations pay.

After Yang et al., "Searching learning strategy with reinforcement learning for 3D medical
image segmentation" (MICCAI 2019): a stochastic policy over the search space proposes
configurations, each is trained in full, and its validation score is the reward that
updates the policy by REINFORCE. The policy (models/policy.py) is a softmax per choice and
a clipped Gaussian per number on its unit coordinate.

Each finished job updates the policy at once, in the order results arrive, so a free
worker never waits for a batch: it gets a draw from the policy as it stands. The update is

    theta += learning_rate * A * F^-1 grad log pi(action)

with A the reward (minus the job's loss) less an exponential moving baseline, divided by
an exponential moving mean of |reward - baseline| (so the step does not depend on the
metric's units) and clipped to [-3, 3] (so one diverged training cannot throw the policy
away). F^-1 scales each Gaussian's gradient by its Fisher information, as natural
evolution strategies do: the mean moves in proportion to the spread being explored.

A failed job is scored as the worst reward seen so far (no update before any job has
completed): the policy learns to avoid what crashes, and no made-up penalty reaches the
gradient. It moves neither the baseline nor the spread. A job stopped early (deadline)
trained only part-way and teaches nothing.

A space of choices only is run as a full grid instead, every combination once, as Clara
did: there are few enough combinations to try them all, and trying them all is better
than sampling with repeats.

The policy learns from full-training scores, so it pairs with the full-trainings scheduler
only (`reinforcement`): results at mixed budgets would teach it the budget.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..base import config_key
from ..catalogue import POLICY_MAX_STD, PROPOSERS
from ..models.policy import Policy
from .base import Proposer, Result
from .grid import GridProposer, checked_grid_size, grid_table

_INIT_STD = 0.3  # a first policy close to uniform on [0, 1], with a little mass at each end
_MAX_STD = POLICY_MAX_STD
_MAX_ADVANTAGE = 3.0
_REDRAWS = 20  # draws tried for a configuration not already proposed


class PolicyProposer(Proposer):
    name = "policy"
    parameters = PROPOSERS["policy"].parameters

    def __init__(self, space, rng, params, **kwargs):
        super().__init__(space, rng, params, **kwargs)
        self.policy: Policy | None = None
        self.grid: GridProposer | None = None
        if all(p.is_choice for p in space.params):
            checked_grid_size(space, 2, self.algorithm)  # choices only: grid_points plays no part
            self.grid = GridProposer(space, rng, params, table=grid_table(space, 2), **kwargs)
            return
        self.policy = Policy(space, init_std=_INIT_STD, min_std=self.params["min_std"], max_std=_MAX_STD,
                             exploration=self.params["exploration"])
        self.theta = self.policy.initial
        # trial -> the action its configuration came from, and the policy it was drawn from
        self.actions: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._drawn: np.ndarray | None = None  # the action of the configuration just proposed
        self.seen: set[str] = set()
        self.baseline: float | None = None
        self.spread: float | None = None
        self.worst: float | None = None
        self.updates = 0

    @property
    def takes_start(self) -> bool:
        return self.grid is None  # a grid of choices runs its table only (grid.py)

    def budget(self) -> int:
        return self.grid.budget() if self.grid is not None else self.params["max_rounds"]

    def propose(self, epochs: int, pending: list[dict[str, Any]], bracket=None) -> tuple[dict[str, Any], str]:
        if self.grid is not None:
            return self.grid.propose(epochs, pending)
        self._drawn, params, note = self._draw()
        return params, note

    def added(self, trial_id: int, params: dict[str, Any]) -> None:
        if self.grid is not None:
            self.grid.added(trial_id, params)
            return
        self.actions[trial_id] = (self._drawn, self.theta)

    def _draw(self) -> tuple[np.ndarray, dict[str, Any], str]:
        """A draw from the policy, redrawn while it repeats a configuration already proposed
        (a full training is too dear to spend on a known answer)."""
        note = (f"policy after {self.updates} update{'' if self.updates == 1 else 's'}: "
                f"{self.policy.describe(self.theta)}")
        for _ in range(_REDRAWS):
            action = self.policy.sample(self.theta, self.rng)
            params = self.policy.config(action)
            if config_key(params) not in self.seen:
                self.seen.add(config_key(params))
                return action, params, note
        return action, params, note + f" (a repeat: {_REDRAWS} draws found nothing new)"

    def adopt(self, trial_id: int, params: dict[str, Any]) -> None:
        """A trial of a rebuilt run: known, so not drawn again; with no action of this policy
        behind it, its result moves the baseline but not the policy."""
        if self.grid is not None:
            self.grid.adopt(trial_id, params)
            return
        self.seen.add(config_key(params))

    def observe(self, result: Result) -> None:
        if self.policy is None:
            return
        if result.trial_id not in self.actions:  # adopted by a rebuilt run
            self._advantage(result)
            return
        action, drawn_from = self.actions.pop(result.trial_id)
        advantage = self._advantage(result)
        if advantage:
            # the gradient at the policy the action was drawn from: with several workers the
            # policy has moved since, and at the current one an old draw can sit many stds from
            # the mean, where the log std's gradient (z^2 - 1) would blow the spread wide open
            step = self.policy.natural_scale(drawn_from, self.policy.grad_log_prob(drawn_from, action))
            self.theta = self.policy.project(self.theta + self.params["learning_rate"] * advantage * step)
            self.updates += 1

    def _advantage(self, result: Result) -> float:
        """How much better than usual this job did, in units of the usual deviation (0: no update)."""
        decay = self.params["baseline_decay"]
        completed = result.status == "completed" and result.loss is not None and math.isfinite(result.loss)
        if not completed:
            if result.status != "failed" or self.baseline is None or not self.spread:
                return 0.0
            return max(-_MAX_ADVANTAGE, (self.worst - self.baseline) / self.spread)
        reward = -float(result.loss)
        self.worst = reward if self.worst is None else min(self.worst, reward)
        if self.baseline is None:
            self.baseline = reward
            return 0.0
        deviation = reward - self.baseline
        self.spread = abs(deviation) if self.spread is None else decay * self.spread + (1 - decay) * abs(deviation)
        self.baseline = decay * self.baseline + (1 - decay) * reward
        if self.spread == 0.0:
            return 0.0
        return min(max(deviation / self.spread, -_MAX_ADVANTAGE), _MAX_ADVANTAGE)

    def explain(self) -> list[str]:
        if self.policy is None:
            return [f"reinforcement: the space has only choices, so it runs the full grid as Clara did: all "
                    f"{len(self.grid.table)} combinations once each, in an order shuffled by the seed (max_rounds "
                    f"is not used)"]
        p = self.params
        return [f"reinforcement: {p['max_rounds']} configurations drawn from a policy (softmax per choice, "
                f"clipped Gaussian per number, start {self.policy.describe(self.theta)})",
                f"  REINFORCE after each finished job: learning_rate {p['learning_rate']}, moving baseline with "
                f"decay {p['baseline_decay']}, std floor {p['min_std']}, exploration {p['exploration']}; a failed "
                f"job counts as the worst result so far"]
