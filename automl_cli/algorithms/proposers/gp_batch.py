"""Batch-first Bayesian optimisation: every free worker gets a configuration at once.

Where `bayesian` thinks one configuration at a time, bfbo is asked for as many as there are
free workers and chooses them together, so a cluster of workers starts a whole batch
without waiting on the model between jobs:

- The initial design is a scrambled Sobol sequence in the unit cube, not random points:
  a batch of it covers the space evenly (random points clump).
- After that, a batch is built by local penalisation (Gonzalez et al., AISTATS 2016):
  the first member maximises log expected improvement; each next one maximises log EI
  plus the log of a penaliser around every configuration already chosen or still running.
  The penaliser around x_j is the probability that x is outside the ball where, given a
  Lipschitz constant L of the loss, f could not beat the best value M:
  Phi((L * |x - x_j| + M - mu_j) / sigma_j). A point the model expects to be bad
  excludes a wide ball, a promising one a narrow one. L is the largest norm of the GP
  mean's gradient over many points of the cube, as in the paper.
- One model per batch (refitted as results arrive, see GPSearch.model), not one per
  member: the penalisers stand in for the results the batch has not yet produced.

Differences from the paper: our acquisition is log EI (stable far from the incumbent)
rather than EI with a soft-plus transform, so the penalisers add in log space; distances
are taken in the unit-cube encoding (one-hot enums), the same space the GP sees.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..base import config_key
from ..catalogue import PROPOSERS
from .gp import GPModel

if TYPE_CHECKING:
    from ..models.gp import GP, GPEnsemble

_LIPSCHITZ_POINTS = 500  # random points of the cube at which the mean's gradient is measured
_MIN_LIPSCHITZ = 1e-7  # a flat model (L = 0) would penalise nothing; the paper uses the same guard


class BatchGPProposer(GPModel):
    name = "gp_batch"
    parameters = PROPOSERS["gp_batch"].parameters
    batch = True

    def propose(self, epochs: int, pending: list[dict[str, Any]], bracket=None) -> tuple[dict[str, Any], str]:
        return self.propose_batch(1, epochs, pending)[0]

    def propose_batch(self, count: int, epochs: int, pending: list[dict[str, Any]]) -> list[tuple[dict[str, Any], str]]:
        batch: list[tuple[dict[str, Any], str]] = []
        while len(self.proposed) + len(batch) < self.n_initial and len(batch) < count:
            batch.append(self.initial_point(self.seen() | {config_key(c) for c, _ in batch}))
        if len(batch) < count:
            batch += self._penalised_batch(count - len(batch), [c for c, _ in batch], pending)
        return batch

    def _penalised_batch(self, count: int, chosen: list[dict],
                         pending: list[dict[str, Any]]) -> list[tuple[dict[str, Any], str]]:
        from ..models.acquisition import maximize  # torch: imported on first use (see gp.py)
        from ..models.gp import GPEnsemble

        configs, losses, budget = self.observations()
        if len(losses) < 2:
            return [(self.space.sample(self.rng), "random (too few finished jobs for the GP)") for _ in range(count)]
        gp = self.model(configs, losses, budget)
        best = float(losses.min())
        lipschitz = self._lipschitz(gp)
        ensemble = GPEnsemble(self.plausible(gp))
        anchors = [configs[i] for i in np.argsort(losses)[:5]]
        out = []
        for member in range(count):
            around = pending + chosen
            score = _penalised_log_ei(ensemble, best, lipschitz, np.array([self.space.encode(c) for c in around])
                                      if around else None)
            found = maximize(score, self.space, self.rng, anchors=anchors,
                             seen=self.seen() | {config_key(c) for c in chosen}, mean=ensemble.mean())
            if found is None:
                config, note = self.space.sample(self.rng), "random (every candidate was already tried)"
            else:
                config, value = found
                note = (f"batch member {member + 1}/{count}: log EI {value:.3g}"
                        + (f", penalised around {len(around)} running or chosen" if around else ""))
            chosen.append(config)
            out.append((config, note))
        return out

    def _lipschitz(self, gp: GP) -> float:
        import torch

        from ..models.gp import one_thread

        points = np.array([self.space.encode(self.space.sample(self.rng)) for _ in range(_LIPSCHITZ_POINTS)])
        x = torch.cat([torch.as_tensor(points, dtype=torch.float64), gp.x]).requires_grad_(True)
        with one_thread():
            mean, _ = gp.predict(x)
            (grad,) = torch.autograd.grad(mean.sum(), x)
        return max(float(grad.norm(dim=1).max()), _MIN_LIPSCHITZ)


def _penalised_log_ei(ensemble: GPEnsemble, best: float, lipschitz: float, around: np.ndarray | None):
    """log EI averaged over the ensemble's members (the MAP fit first: its mean and spread
    size the balls), plus the log penalisers around `around`."""
    import torch

    log_ei = ensemble.log_ei(best)
    if around is None:
        return log_ei
    gp = ensemble.members[0]
    centres = torch.as_tensor(around, dtype=torch.float64)
    with torch.no_grad():
        mu, sigma = gp.predict(centres)
    sigma = torch.clamp(sigma, min=1e-9)

    def score(x: "torch.Tensor") -> "torch.Tensor":
        distance = torch.sqrt(((x[:, None, :] - centres[None, :, :]) ** 2).sum(-1) + 1e-12)
        z = (lipschitz * distance + best - mu[None, :]) / sigma[None, :]
        return log_ei(x) + torch.special.log_ndtr(z).sum(1)

    return score

