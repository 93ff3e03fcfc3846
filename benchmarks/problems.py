"""Multi-fidelity test problems with known optima, written from their published formulas.

Every problem is minimised. A trial's epoch e of `max_epochs` is fidelity s = e / max_epochs;
`objective(config, epoch, state)` is what `simulate()` calls (value at that fidelity, the
epoch's cost in seconds); `true_value(config)` is the noise-free full-fidelity value, so
regret = true_value(chosen config) - optimum.

- Augmented Branin (the multi-fidelity Branin of BoTorch's test suite): b = 5.1/(4 pi^2) - 0.1 (1 - s).
- Augmented Hartmann-6 (likewise): alpha_1 = 1.0 - 0.1 (1 - s).
- Counting Ones (Falkner et al. 2018): 8 binary + 8 continuous dims; a continuous dim scores
  the mean of b Bernoulli(x_i) draws with b = 27 * epoch samples (27 ... 729 at 27 epochs).
- MF-Hartmann-3 with bias and noise, after mf-prior-bench's generator: every alpha_i is
  lowered by `bias * (1 - s)` (low fidelities are flatter) and N(0, noise * (1 - s)) is added.
  Our "good" setting: bias 0.5, noise 0.05 (low fidelities rank configurations much like
  the top one); these constants are ours, chosen to that description, not copied.
- Mixed-12 (ours): a made-up model of a network's validation loss over 12 hyperparameters of
  every kind a config_train.json searches: log floats (learning rate, weight decay), floats
  (momentum, dropout, warm-up, label smoothing), ints (layers; batch size and width on log
  scales) and choices (optimizer, activation, augmentation). The best learning rate depends
  on the optimizer and the batch size, the best dropout on the width and the augmentation,
  the momentum matters most for SGD; the learning-rate term saturates (a learning rate
  decades off is bad, not infinitely bad), as real losses do. Lower fidelities add a
  decaying learning-curve term and every epoch adds small noise; the optimum, 0.1, is
  reached inside the ranges (AdamW, GELU, light augmentation, 4 layers, width 256, ...).
- Crossing curves (ours): low fidelities that mislead. The full-fidelity value is Hartmann-3;
  an unfinished training (fidelity s < 1) observes it plus what is left to learn,
  10 (1 - s)^4 * (value / optimum) * (0.5 + x2), and noise N(0, 0.1 (1 - s)). The
  configurations that end best have the most left to learn (slow learners), the bad ones
  plateau early, so every curve crosses the others: for x2 = 0 near epoch 2, for x2 = 1 near
  epoch 8 of 27 (the optimum has x2 = 0.85). Over random configurations the Spearman
  correlation of the observed value with the truth is about -0.96 at epoch 1, -0.9 at
  epoch 3 and +0.93 at epoch 9: the low fidelity is a flipped, shifted copy of the full
  one, and successive halving that trusts epochs 1 and 3 keeps the worst. An epoch costs
  0.5 + x2 seconds.
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Callable

import numpy as np

HARTMANN3_A = np.array([[3.0, 10, 30], [0.1, 10, 35], [3.0, 10, 30], [0.1, 10, 35]])
HARTMANN3_P = 1e-4 * np.array([[3689, 1170, 2673], [4699, 4387, 7470], [1091, 8732, 5547], [381, 5743, 8828]])
HARTMANN6_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
                        [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]])
HARTMANN6_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                               [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]])
HARTMANN_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def hartmann(x: np.ndarray, a: np.ndarray, p: np.ndarray, alpha: np.ndarray) -> float:
    return float(-np.sum(alpha * np.exp(-np.sum(a * (x - p) ** 2, axis=1))))


def _rng(config: dict, state: dict) -> np.random.Generator:
    """The trial's own noise stream, seeded from its config so runs repeat."""
    if "rng" not in state:
        key = repr(sorted(config.items())).encode()
        state["rng"] = np.random.default_rng(zlib.crc32(key))
    return state["rng"]


@dataclass(frozen=True)
class Problem:
    name: str
    search: list[dict]
    max_epochs: int
    optimum: float
    value: Callable[[dict, float, dict], float]  # (config, fidelity s, state) -> observed value
    truth: Callable[[dict], float]
    cost: Callable[[dict], float]  # seconds per epoch

    def objective(self, config: dict, epoch: int, state: dict) -> tuple[float, float]:
        return self.value(config, epoch / self.max_epochs, state), self.cost(config)

    def from_scratch(self, config: dict, epochs: int) -> tuple[float, float]:
        """Train `config` from scratch to `epochs`: the last epoch's value and the cost of all of
        them (how the reference tools that never resume a trial spend their budget)."""
        state, value, cost = {}, None, 0.0
        for epoch in range(1, epochs + 1):
            value, seconds = self.objective(config, epoch, state)
            cost += seconds
        return value, cost

    def true_value(self, config: dict) -> float:
        return self.truth(config)

    def regret(self, config: dict) -> float:
        return self.truth(config) - self.optimum


def _floats(names, low=0.0, high=1.0) -> list[dict]:
    return [{"args": [n], "type": "float", "targets": [low, high]} for n in names]


def augmented_branin() -> Problem:
    def value(c, s, state):
        b = 5.1 / (4 * math.pi ** 2) - 0.1 * (1 - s)
        x1, x2 = c["x1"], c["x2"]
        return (x2 - b * x1 ** 2 + 5 / math.pi * x1 - 6) ** 2 + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10

    return Problem("augmented_branin",
                   [{"args": ["x1"], "type": "float", "targets": [-5, 10]},
                    {"args": ["x2"], "type": "float", "targets": [0, 15]}],
                   27, 0.397887, value, lambda c: value(c, 1.0, {}), lambda c: 1.0)


def augmented_hartmann6() -> Problem:
    names = [f"x{i}" for i in range(6)]

    def value(c, s, state):
        alpha = HARTMANN_ALPHA.copy()
        alpha[0] -= 0.1 * (1 - s)
        return hartmann(np.array([c[n] for n in names]), HARTMANN6_A, HARTMANN6_P, alpha)

    return Problem("augmented_hartmann6", _floats(names), 27, -3.32237, value, lambda c: value(c, 1.0, {}),
                   lambda c: 0.5 + c["x0"])


def counting_ones(binary: int = 8, continuous: int = 8) -> Problem:
    cats, conts = [f"c{i}" for i in range(binary)], [f"x{i}" for i in range(continuous)]
    search = [{"args": [n], "type": "enum", "targets": [[0], [1]]} for n in cats] + _floats(conts)

    def value(c, s, state):
        samples = max(1, round(27 * 27 * s))
        rng = _rng(c, state)
        return -(sum(c[n] for n in cats) + sum(rng.binomial(samples, c[n]) / samples for n in conts))

    return Problem("counting_ones", search, 27, -float(binary + continuous), value,
                   lambda c: -(sum(c[n] for n in cats) + sum(c[n] for n in conts)), lambda c: 1.0)


def mf_hartmann3(bias: float = 0.5, noise: float = 0.05) -> Problem:
    names = ["x0", "x1", "x2"]

    def value(c, s, state):
        x = np.array([c[n] for n in names])
        clean = hartmann(x, HARTMANN3_A, HARTMANN3_P, HARTMANN_ALPHA - bias * (1 - s))
        return clean + float(_rng(c, state).normal(0.0, noise * (1 - s))) if s < 1 else clean

    return Problem("mf_hartmann3", _floats(names), 27, -3.86278, value,
                   lambda c: hartmann(np.array([c[n] for n in names]), HARTMANN3_A, HARTMANN3_P, HARTMANN_ALPHA),
                   lambda c: 0.5 + c["x0"])


def mixed12() -> Problem:
    search = [
        {"args": ["lr"], "type": "float", "targets": [1e-5, 1.0], "log": True},
        {"args": ["weight_decay"], "type": "float", "targets": [1e-6, 0.1], "log": True},
        {"args": ["momentum"], "type": "float", "targets": [0.0, 0.99]},
        {"args": ["dropout"], "type": "float", "targets": [0.0, 0.8]},
        {"args": ["warmup"], "type": "float", "targets": [0.0, 0.3]},
        {"args": ["label_smoothing"], "type": "float", "targets": [0.0, 0.3]},
        {"args": ["batch_size"], "type": "int", "targets": [8, 512], "log": True},
        {"args": ["layers"], "type": "int", "targets": [1, 8]},
        {"args": ["width"], "type": "int", "targets": [16, 1024], "log": True},
        {"args": ["optimizer"], "type": "enum", "targets": [["sgd"], ["adam"], ["adamw"]]},
        {"args": ["activation"], "type": "enum", "targets": [["relu"], ["gelu"], ["tanh"]]},
        {"args": ["augment"], "type": "enum", "targets": [["none"], ["light"], ["heavy"]]},
    ]
    best_lr = {"sgd": -1.0, "adam": -3.0, "adamw": -2.7}  # log10, at batch size 64
    best_decay = {"sgd": -3.5, "adam": -4.0, "adamw": -2.0}  # log10
    momentum_weight = {"sgd": 0.8, "adam": 0.2, "adamw": 0.2}
    offsets = {"sgd": 0.01, "adam": 0.02, "adamw": 0.0, "relu": 0.02, "gelu": 0.0, "tanh": 0.08,
               "none": 0.06, "light": 0.0, "heavy": 0.03}

    def truth(c):
        opt = c["optimizer"]
        lr_off = math.log10(c["lr"]) - best_lr[opt] - 0.5 * math.log10(c["batch_size"] / 64)
        best_dropout = 0.1 + 0.15 * (math.log2(c["width"]) - 6) / 4 - (0.1 if c["augment"] == "heavy" else 0.0)
        return (0.1 + 1.5 * (1 - math.exp(-lr_off ** 2 / 2))
                + 0.15 * (math.log10(c["weight_decay"]) - best_decay[opt]) ** 2 / 4
                + momentum_weight[opt] * (c["momentum"] - 0.9) ** 2
                + 0.5 * (c["dropout"] - best_dropout) ** 2
                + 0.3 * (c["warmup"] - (0.05 if opt == "sgd" else 0.1)) ** 2
                + 0.4 * (c["label_smoothing"] - 0.1) ** 2
                + 0.02 * (c["layers"] - 4) ** 2 + 0.05 * (math.log2(c["width"]) - 8) ** 2
                + offsets[opt] + offsets[c["activation"]] + offsets[c["augment"]])

    def value(c, s, state):
        # an unfinished training: a loss still falling, faster at a good learning rate
        speed = 1.0 + min(1.0, abs(math.log10(c["lr"]) - best_lr[c["optimizer"]]) / 2)
        return truth(c) + 0.8 * (1 - s) ** (2 / speed) * 0.5 + float(_rng(c, state).normal(0.0, 0.003))

    def cost(c):  # deeper and wider networks take longer per epoch
        return 0.5 + 0.5 * (c["layers"] / 8) * (math.log2(c["width"]) - 4) / 6

    return Problem("mixed12", search, 27, 0.1, value, truth, cost)


# what is left to learn at fidelity s: CROSSING_SCALE (1 - s)^CROSSING_POWER, times the share
# of the optimum the configuration reaches and (0.5 + x2); the noise of an unfinished job
CROSSING_SCALE, CROSSING_POWER, CROSSING_NOISE = 10.0, 4.0, 0.1


def crossing_curves() -> Problem:
    names = ["x0", "x1", "x2"]
    optimum = -3.86278

    def truth(c):
        return hartmann(np.array([c[n] for n in names]), HARTMANN3_A, HARTMANN3_P, HARTMANN_ALPHA)

    def value(c, s, state):
        final = truth(c)
        if s >= 1:
            return final
        left = CROSSING_SCALE * (1 - s) ** CROSSING_POWER * (final / optimum) * (0.5 + c["x2"])
        return final + left + float(_rng(c, state).normal(0.0, CROSSING_NOISE * (1 - s)))

    return Problem("crossing_curves", _floats(names), 27, optimum, value, truth, lambda c: 0.5 + c["x2"])


ALL: dict[str, Callable[[], Problem]] = {
    "augmented_branin": augmented_branin,
    "augmented_hartmann6": augmented_hartmann6,
    "counting_ones": counting_ones,
    "mf_hartmann3": mf_hartmann3,
    "mixed12": mixed12,
    "crossing_curves": crossing_curves,
}


def regret(problem: Problem, config: dict) -> float:
    """Simple regret of a chosen config: noise-free full-fidelity value minus the known optimum."""
    return problem.true_value(config) - problem.optimum
