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
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .base import JobRequest, Outcome, ParamSpec, TrialBook, config_key, register
from .grid import TableRun, checked_grid_size, grid_table
from .models.policy import Policy

_INIT_STD = 0.3  # a first policy close to uniform on [0, 1], with a little mass at each end
_MAX_STD = 0.5
_MAX_ADVANTAGE = 3.0
_REDRAWS = 20  # draws tried for a configuration not already proposed


@register
class ReinforcementSearch(TableRun):
    name = "reinforcement"
    summary = ("REINFORCE policy (softmax per choice, clipped Gaussian per number) learns from each job's score, "
               "each trained in full; a space of choices only runs as a full grid")
    parameters = {
        "max_rounds": ParamSpec(20, "configurations to train (a space of choices only: ignored, every combination "
                                    "is trained once)", minimum=1),
        "learning_rate": ParamSpec(0.5, "policy step per finished job", kind=float, minimum=0.0),
        "baseline_decay": ParamSpec(0.5, "weight of the old baseline when a reward arrives", kind=float, minimum=0.0,
                                    maximum=0.99),
        "min_std": ParamSpec(0.05, "floor on each number's policy std (unit scale): it keeps exploring", kind=float,
                             minimum=0.001, maximum=_MAX_STD),
        "exploration": ParamSpec(0.1, "share of each choice's draw spread evenly over its options", kind=float,
                                 minimum=0.0, maximum=1.0),
    }

    def __init__(self, space, **kwargs):
        super().__init__(space, **kwargs)
        self.policy: Policy | None = None
        if all(p.is_choice for p in space.params):
            checked_grid_size(space, 2, self.name)  # choices only: grid_points plays no part
            self.start_table(grid_table(space, 2))
            return
        self.policy = Policy(space, init_std=_INIT_STD, min_std=self.params["min_std"], max_std=_MAX_STD,
                             exploration=self.params["exploration"])
        self.theta = self.policy.initial
        self.book = TrialBook(self.params["max_rounds"])
        # trial -> the action its configuration came from, and the policy it was drawn from
        self.actions: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.seen: set[str] = set()
        self.baseline: float | None = None
        self.spread: float | None = None
        self.worst: float | None = None
        self.updates = 0

    def suggest(self, free_slots: int) -> list[JobRequest]:
        if self.policy is None:
            return super().suggest(free_slots)
        jobs = []
        for _ in range(min(free_slots, self.book.remaining())):
            action, params, note = self._draw()
            trial_id = self.book.add(params)
            self.actions[trial_id] = (action, self.theta)
            jobs.append(JobRequest(trial_id, params, self.max_epochs, note=note))
        return jobs

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

    def adopt(self, request) -> None:
        """A trial of a rebuilt run: known, so not drawn again; with no action of this policy
        behind it, its result moves the baseline but not the policy."""
        super().adopt(request)
        if self.policy is not None:
            self.seen.add(config_key(request.params))

    def on_finished(self, outcome: Outcome) -> None:
        super().on_finished(outcome)
        if self.policy is None:
            return
        if outcome.trial_id not in self.actions:  # adopted by a rebuilt run
            self._advantage(outcome)
            return
        action, drawn_from = self.actions.pop(outcome.trial_id)
        advantage = self._advantage(outcome)
        if advantage:
            # the gradient at the policy the action was drawn from: with several workers the
            # policy has moved since, and at the current one an old draw can sit many stds from
            # the mean, where the log std's gradient (z^2 - 1) would blow the spread wide open
            step = self.policy.natural_scale(drawn_from, self.policy.grad_log_prob(drawn_from, action))
            self.theta = self.policy.project(self.theta + self.params["learning_rate"] * advantage * step)
            self.updates += 1

    def _advantage(self, outcome: Outcome) -> float:
        """How much better than usual this job did, in units of the usual deviation (0: no update)."""
        decay = self.params["baseline_decay"]
        completed = outcome.status == "completed" and outcome.loss is not None and math.isfinite(outcome.loss)
        if not completed:
            if outcome.status != "failed" or self.baseline is None or not self.spread:
                return 0.0
            return max(-_MAX_ADVANTAGE, (self.worst - self.baseline) / self.spread)
        reward = -float(outcome.loss)
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
                    f"{len(self.table)} combinations once each, in an order shuffled by the seed (max_rounds "
                    f"is not used)"]
        p = self.params
        return [f"reinforcement: {p['max_rounds']} configurations drawn from a policy (softmax per choice, "
                f"clipped Gaussian per number, start {self.policy.describe(self.theta)})",
                f"  REINFORCE after each finished job: learning_rate {p['learning_rate']}, moving baseline with "
                f"decay {p['baseline_decay']}, std floor {p['min_std']}, exploration {p['exploration']}; a failed "
                f"job counts as the worst result so far"]
