"""A stochastic policy over a search space, with the exact gradient of its log-probability.

All the policy's numbers live in one vector `theta`, so it is easy to update and to check
against finite differences. Per parameter, in the space's order:

- a choice (enum, bool) of k options: k logits. A draw takes option i with probability
  (1 - eps) softmax(logits)_i + eps / k: the `exploration` eps keeps every option alive
  however sure the policy becomes.
- a number (float, int): the mean m and log standard deviation r of a Gaussian on its
  unit coordinate (log scale for log ranges). A draw x ~ N(m, e^r) is clipped to [0, 1],
  so the action is a *clipped* Gaussian: its probability is the density inside (0, 1) and
  the whole tail mass at 0 or 1 (Fujita & Maeda, "Clipped action policy gradient", ICML
  2018). Taking the density of the unclipped x instead would reward the policy for a tail
  it never sees.

An action is one float per parameter: the option's index, or the clipped unit coordinate.
Parameters a configuration leaves inactive (conditions) are left out of its probability.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.special import log_ndtr, logsumexp

from ...space import SearchSpace

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def _mills(z: float) -> float:
    """phi(z) / Phi(z), stable far into the tails (where both underflow)."""
    return math.exp(-0.5 * z * z - _LOG_SQRT_2PI - float(log_ndtr(z)))


class Policy:
    """The layout of `theta` for one space, and the maths on it."""

    def __init__(self, space: SearchSpace, *, init_std: float, min_std: float, max_std: float,
                 exploration: float):
        self.space = space
        self.min_log_std, self.max_log_std = math.log(min_std), math.log(max_std)
        self.exploration = exploration
        self.slices: list[slice] = []
        start = []
        for p in space.params:
            at = sum(len(s) for s in start)
            if p.is_choice:  # the space's weights are the prior: uniform unless the user weighted them
                start.append(np.log(np.maximum(np.asarray(p.weights, dtype=float), 1e-6)))
                self.slices.append(slice(at, at + len(p.choices)))
            else:
                start.append(np.array([0.5, math.log(init_std)]))
                self.slices.append(slice(at, at + 2))
        self.initial = np.concatenate(start) if start else np.zeros(0)

    def choice_probabilities(self, logits: np.ndarray) -> np.ndarray:
        soft = np.exp(logits - logsumexp(logits))
        return (1.0 - self.exploration) * soft + self.exploration / len(logits)

    def sample(self, theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        action = np.empty(len(self.space.params))
        for k, (p, s) in enumerate(zip(self.space.params, self.slices)):
            if p.is_choice:
                action[k] = rng.choice(len(p.choices), p=self.choice_probabilities(theta[s]))
            else:
                mean, log_std = theta[s]
                action[k] = min(max(rng.normal(mean, math.exp(log_std)), 0.0), 1.0)
        return action

    def config(self, action: np.ndarray) -> dict[str, Any]:
        """The configuration an action stands for (inactive parameters None)."""
        values: dict[str, Any] = {}
        for p, a in zip(self.space.params, action):
            values[p.name] = list(p.choices[int(a)]) if p.is_choice else p.from_unit(a)
        return {p.name: values[p.name] if p.active(values) else None for p in self.space.params}

    def active(self, action: np.ndarray) -> list[bool]:
        config = self.config(action)
        return [config[p.name] is not None for p in self.space.params]

    def log_prob(self, theta: np.ndarray, action: np.ndarray) -> float:
        total = 0.0
        for p, s, a, on in zip(self.space.params, self.slices, action, self.active(action)):
            if not on:
                continue
            if p.is_choice:
                total += math.log(self.choice_probabilities(theta[s])[int(a)])
                continue
            mean, log_std = theta[s]
            std = math.exp(log_std)
            if a <= 0.0:
                total += float(log_ndtr(-mean / std))
            elif a >= 1.0:
                total += float(log_ndtr((mean - 1.0) / std))
            else:
                z = (a - mean) / std
                total += -0.5 * z * z - log_std - _LOG_SQRT_2PI
        return total

    def grad_log_prob(self, theta: np.ndarray, action: np.ndarray) -> np.ndarray:
        """d log_prob / d theta, in closed form."""
        grad = np.zeros_like(theta)
        for p, s, a, on in zip(self.space.params, self.slices, action, self.active(action)):
            if not on:
                continue
            if p.is_choice:
                soft = np.exp(theta[s] - logsumexp(theta[s]))
                i = int(a)
                mixed = self.choice_probabilities(theta[s])[i]
                onehot = np.zeros(len(soft))
                onehot[i] = 1.0
                grad[s] = (1.0 - self.exploration) * soft[i] * (onehot - soft) / mixed
                continue
            mean, log_std = theta[s]
            std = math.exp(log_std)
            if a <= 0.0:  # log Phi(z), z = -mean/std: dz/dmean = -1/std, dz/dlog_std = -z
                z = -mean / std
                grad[s] = [-_mills(z) / std, -_mills(z) * z]
            elif a >= 1.0:  # log Phi(z), z = (mean - 1)/std: dz/dmean = 1/std, dz/dlog_std = -z
                z = (mean - 1.0) / std
                grad[s] = [_mills(z) / std, -_mills(z) * z]
            else:
                z = (a - mean) / std
                grad[s] = [z / std, z * z - 1.0]
        return grad

    def natural_scale(self, theta: np.ndarray, grad: np.ndarray) -> np.ndarray:
        """The gradient of each Gaussian divided by its Fisher information (1/std^2 for the
        mean, 2 for the log std), so a step moves the mean in proportion to the spread the
        policy is exploring, not in proportion to 1/std; logits are left as they are."""
        out = grad.copy()
        for p, s in zip(self.space.params, self.slices):
            if not p.is_choice:
                std = math.exp(theta[s][1])
                out[s.start] *= std * std
                out[s.start + 1] *= 0.5
        return out

    def project(self, theta: np.ndarray) -> np.ndarray:
        """Keep each mean in the unit interval, each std in [min_std, max_std] (the floor is
        what keeps a converged policy exploring) and logits centred (softmax ignores a shift)."""
        out = theta.copy()
        for p, s in zip(self.space.params, self.slices):
            if p.is_choice:
                out[s] -= out[s].mean()
            else:
                out[s.start] = min(max(out[s.start], 0.0), 1.0)
                out[s.start + 1] = min(max(out[s.start + 1], self.min_log_std), self.max_log_std)
        return out

    def describe(self, theta: np.ndarray) -> str:
        """The policy in a few words: each choice's most likely option, each number's mean and std."""
        parts = []
        for p, s in zip(self.space.params, self.slices):
            if p.is_choice:
                probs = self.choice_probabilities(theta[s])
                best = int(np.argmax(probs))
                parts.append(f"{p.name} {'/'.join(map(str, p.choices[best]))} p={probs[best]:.2f}")
            else:
                parts.append(f"{p.name} {theta[s.start]:.2f}+-{math.exp(theta[s.start + 1]):.2f}")
        return ", ".join(parts)
