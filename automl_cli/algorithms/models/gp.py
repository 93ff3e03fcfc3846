"""Gaussian-process surrogate of the loss on the unit cube, and log expected improvement.

Written for the regime of hyperparameter search: tens to a few hundred points, up to a few
dozen coordinates, and an acquisition function that must be optimised by gradient.

- Kernel: Matern 5/2 with one length scale per coordinate (ARD), a signal variance and a
  noise variance. Losses are standardised before fitting, centred on the worst seen: the
  prior mean (see _scale).
- Hyperparameters: maximum a posteriori, not maximum likelihood. The length scales carry
  the dimension-scaled log-normal prior of Hvarfner et al. (2024), which keeps the model
  smooth until the data says otherwise (plain maximum likelihood with few points tends to
  pick tiny length scales and a model that knows nothing between its points); the noise
  has a prior that favours small noise without forbidding large. Fitted by L-BFGS-B from
  the last fit and from the prior's centre.
- Log expected improvement (Ament et al. 2023) in a form that stays finite and has a useful
  gradient far from the incumbent, where plain EI underflows to 0.

torch gives the gradients (of the marginal likelihood for fitting, of the acquisition for
its optimisation); everything runs in float64 on one CPU thread, which is both the fastest
for matrices this small and keeps replays of a search bit-for-bit identical.
"""
from __future__ import annotations

import math
from contextlib import contextmanager

import numpy as np
import torch
from scipy.optimize import minimize

_JITTER = 1e-8
# variances, on the standardised scale. The floor is below the jitter (so the jitter is the
# real floor): a floor of 1e-6 bound on noiseless problems and blurred the model near the
# optimum, where losses differ by 1e-6 of their spread (Branin: median regret 1.4e-4 -> 3.9e-5
# over seeds 0-9, benchmarks/QUALITY.md). Noisy losses fit their noise well above it.
_NOISE_BOUNDS = (1e-10, 1.0)
_SIGNAL_BOUNDS = (0.05, 20.0)
_LENGTH_BOUNDS = (1e-3, 1e3)
_LENGTH_PRIOR_VAR = 3.0  # of log length
_LENGTH_PRIOR_BASE = 0.5  # the median length scale in one dimension (unit cube)
_NOISE_PRIOR_CENTRE = math.log(0.03)  # log noise variance, standardised scale: validation scores are noisy


def _length_prior_mean(dims: int) -> float:
    # log length ~ N(log(1/2) + log(d)/2, 3): the sqrt(d) growth of Hvarfner et al., centred
    # shorter than their sqrt(2) + log(d)/2; on the benchmark's 2-6 dimensional problems their
    # centre kept the model so smooth that searches stalled on a boundary of the cube.
    return math.log(_LENGTH_PRIOR_BASE) + 0.5 * math.log(dims)


@contextmanager
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def matern52(a: torch.Tensor, b: torch.Tensor, lengths: torch.Tensor, signal: torch.Tensor) -> torch.Tensor:
    """The kernel between rows of `a` (m, d) and `b` (n, d): (m, n); with a batch of length
    scales (K, d) and signals (K,), one matrix per member: (K, m, n)."""
    if lengths.dim() > 1:  # a batch of members
        lengths, signal = lengths[:, None, None, :], signal[:, None, None]
    diff = (a[:, None, :] - b[None, :, :]) / lengths
    r = torch.sqrt((diff ** 2).sum(-1) + 1e-12)  # the epsilon keeps the gradient finite at r = 0
    s5 = math.sqrt(5.0) * r
    return signal * (1.0 + s5 + s5 ** 2 / 3.0) * torch.exp(-s5)


class GP:
    """A fitted GP: `predict` gives the posterior mean and standard deviation of the latent
    loss (in the caller's units), differentiably when given tensors."""

    def __init__(self, x: np.ndarray, y: np.ndarray, theta: np.ndarray, scale: tuple[float, float] | None = None):
        self.x = torch.as_tensor(x, dtype=torch.float64)
        y = np.asarray(y, dtype=float)
        self.y_centre, self.y_std = scale if scale is not None else _scale(y)
        self.z = torch.as_tensor((y - self.y_centre) / self.y_std, dtype=torch.float64)
        self.theta = np.asarray(theta, dtype=float)
        lengths, signal, noise = _unpack(torch.as_tensor(self.theta), x.shape[1])
        self.lengths, self.signal, self.noise = lengths, signal, noise
        k = matern52(self.x, self.x, lengths, signal) + (noise + _JITTER) * torch.eye(len(self.z), dtype=torch.float64)
        self.chol = _cholesky(k)
        self.alpha = torch.cholesky_solve(self.z[:, None], self.chol)[:, 0]

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, start: np.ndarray | None = None) -> "GP":
        """MAP hyperparameters for points `x` (rows in the unit cube) and losses `y`; `start`
        is an earlier fit's theta (same dimensions), tried first."""
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        dims = x.shape[1]
        xt = torch.as_tensor(x, dtype=torch.float64)
        centre, spread = _scale(y)
        z = (y - centre) / spread
        zt = torch.as_tensor(z, dtype=torch.float64)
        starts = [_prior_centre(dims)] + ([np.asarray(start, dtype=float)] if start is not None else [])
        lower, upper = _log_bounds(dims)
        bounds = list(zip(lower, upper))

        def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
            t = torch.tensor(theta, dtype=torch.float64, requires_grad=True)
            loss = _neg_log_posterior(t, xt, zt)
            if not torch.isfinite(loss):
                return 1e10, np.zeros_like(theta)
            loss.backward()
            return loss.item(), t.grad.numpy().copy()

        best_theta, best_value = starts[0], math.inf
        with one_thread():
            for theta0 in starts:
                theta0 = np.clip(theta0, lower, upper)
                result = minimize(objective, theta0, jac=True, method="L-BFGS-B", bounds=bounds,
                                  options={"maxiter": 200})
                if result.fun < best_value:
                    best_theta, best_value = result.x, float(result.fun)
            return cls(x, y, best_theta)

    def predict(self, xq) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and standard deviation of the loss at the rows of `xq`."""
        xq = torch.as_tensor(xq, dtype=torch.float64)
        k_star = matern52(xq, self.x, self.lengths, self.signal)
        mean = k_star @ self.alpha
        v = torch.linalg.solve_triangular(self.chol, k_star.T, upper=False)
        var = torch.clamp(self.signal - (v ** 2).sum(0), min=1e-12)
        return mean * self.y_std + self.y_centre, torch.sqrt(var) * self.y_std

    def with_theta(self, theta: np.ndarray) -> "GP":
        """The same data and scaling under other hyperparameters."""
        y = self.z.numpy() * self.y_std + self.y_centre
        return GP(self.x.numpy(), y, theta, scale=(self.y_centre, self.y_std))

    def posterior_samples(self, rng: np.random.Generator, count: int) -> list[np.ndarray]:
        """`count` hyperparameter vectors drawn from a Laplace approximation of their
        posterior about this fit (a Gaussian in log space whose precision is the Hessian of
        the negative log posterior), for averaging the acquisition over what the data leaves
        uncertain (mostly the length scales, with few points). Coordinates at a bound (the
        noise at its floor, typically) are held: the Hessian says nothing there."""
        lower, upper = _log_bounds(self.x.shape[1])
        free = np.flatnonzero((self.theta > lower + 1e-3) & (self.theta < upper - 1e-3))
        if len(free) == 0:
            return []
        base = torch.as_tensor(self.theta, dtype=torch.float64)
        index = torch.as_tensor(free)

        def negative(u: torch.Tensor) -> torch.Tensor:
            theta = base.clone()
            theta[index] = u
            return _neg_log_posterior(theta, self.x, self.z)

        with one_thread():
            hessian = torch.autograd.functional.hessian(negative, base[index].clone()).numpy()
        if not np.all(np.isfinite(hessian)):
            return []
        values, vectors = np.linalg.eigh((hessian + hessian.T) / 2)
        # no direction less certain than the widest prior (log noise, variance 9)
        values = np.maximum(values, 1.0 / 9.0)
        root = vectors / np.sqrt(values)
        out = []
        for _ in range(count):
            theta = self.theta.copy()
            theta[free] += root @ rng.standard_normal(len(free))
            out.append(np.clip(theta, lower, upper))
        return out

    def with_fantasies(self, x_more: np.ndarray) -> "GP":
        """The same model (same hyperparameters) that has also 'seen' its own mean at
        `x_more`: pending jobs, so the next proposal looks elsewhere (kriging believer)."""
        if len(x_more) == 0:
            return self
        with torch.no_grad(), one_thread():
            mean, _ = self.predict(x_more)
        x = np.vstack([self.x.numpy(), x_more])
        y = np.concatenate([self.z.numpy() * self.y_std + self.y_centre, mean.numpy()])
        # the real data's scaling: fantasies must not move the standardisation
        return GP(x, y, self.theta, scale=(self.y_centre, self.y_std))


def believe(models: list[GP], x_more: np.ndarray, best: float) -> tuple[list[GP], list[float]]:
    """Kriging believer: each model told its own mean at `x_more` (configurations running or
    already chosen, whose results are not in), and the loss each must then improve on: a
    believed loss below the real best is the best that model believes in, so improvement
    is sought beyond it rather than at the believed point again."""
    if len(x_more) == 0:
        return models, [best] * len(models)
    models = [m.with_fantasies(x_more) for m in models]
    return models, [min(best, float(m.z[-len(x_more):].min()) * m.y_std + m.y_centre) for m in models]


def log_expected_improvement(mean: torch.Tensor, std: torch.Tensor, best: float) -> torch.Tensor:
    """log E[max(best - f, 0)] for f ~ N(mean, std^2), minimisation, stable for any z."""
    z = (best - mean) / std
    return _log_h(z) + torch.log(std)


class GPEnsemble:
    """GPs on the same points under different hyperparameters, predicted together: one
    batched kernel for all of them instead of a Python loop per member (the acquisition is
    evaluated thousands of times per proposal). Built once per proposal; the acquisition
    and the mean the refinement consults are both read from it. One member is predicted
    on its own, exactly as the single GP predicts."""

    def __init__(self, members: list[GP]):
        self.members = members
        if len(members) == 1:
            return
        self.x = members[0].x
        self.y_centre, self.y_std = members[0].y_centre, members[0].y_std
        self.lengths = torch.stack([m.lengths for m in members])  # (K, d)
        self.signal = torch.stack([m.signal for m in members])  # (K,)
        self.alpha = torch.stack([m.alpha for m in members])  # (K, n)
        self.chol = torch.stack([m.chol for m in members])  # (K, n, n)

    def predict(self, xq) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior means and standard deviations, (K, m): a row per member."""
        if len(self.members) == 1:
            mean, std = self.members[0].predict(xq)
            return mean[None], std[None]
        xq = torch.as_tensor(xq, dtype=torch.float64)
        k_star = matern52(xq, self.x, self.lengths, self.signal)  # (K, m, n)
        mean = (k_star @ self.alpha[:, :, None])[..., 0]
        v = torch.linalg.solve_triangular(self.chol, k_star.transpose(1, 2), upper=False)
        var = torch.clamp(self.signal[:, None] - (v ** 2).sum(1), min=1e-12)
        return mean * self.y_std + self.y_centre, torch.sqrt(var) * self.y_std

    def log_ei(self, best: float | list[float]):
        """log of the expected improvement averaged over the members (one GP per
        hyperparameter sample): an acquisition that stays open to what any plausible fit of
        the data thinks promising, where one MAP fit can be sure of itself too early.
        `best`: the loss to improve on, one for all members or one per member. (With one
        member the log of the sum of one term is that term, exactly.)"""
        offset = math.log(len(self.members))
        per_member = torch.as_tensor(best, dtype=torch.float64).reshape(-1, 1)  # (K or 1, 1) against (K, m)
        return lambda x: torch.logsumexp(log_expected_improvement(*self.predict(x), per_member), 0) - offset

    def mean(self):
        """The predicted loss averaged over the members: what they expect, without their spread."""
        return lambda x: self.predict(x)[0].mean(0)


def _log_h(z: torch.Tensor) -> torch.Tensor:
    """log(phi(z) + z Phi(z)), accurate for very negative z through the scaled erfc."""
    log_phi = -0.5 * z ** 2 - 0.5 * math.log(2 * math.pi)
    direct = torch.log(torch.clamp(torch.exp(log_phi) + z * torch.special.ndtr(z), min=1e-300))
    t = torch.clamp(-z, min=1.0)
    mills = torch.special.erfcx(t / math.sqrt(2.0)) * math.sqrt(math.pi / 2.0)  # Phi(-t) / phi(t)
    tail = log_phi + torch.log(torch.clamp(1.0 - t * mills, min=1e-300))
    return torch.where(z > -1.0, direct, tail)


def _scale(y: np.ndarray) -> tuple[float, float]:
    """The prior mean and the unit of the standardised losses: the worst loss seen, and the
    spread. Where the model has no data it predicts the worst seen, not the average: most
    of a search space is worse than average, and an average prior mean made expected
    improvement favour the far corners of the cube, where the variance is largest (on
    augmented Hartmann-6, 3 of 10 seeds spent their last third there and ended at regret
    > 1). With the worst as prior mean, improvement is sought near good points until the
    model's variance says elsewhere; benchmarks/QUALITY.md has the figures."""
    return float(y.max()), float(y.std()) or 1.0


def _log_bounds(dims: int) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds of theta (log lengths, log signal, log noise)."""
    lower = np.log([_LENGTH_BOUNDS[0]] * dims + [_SIGNAL_BOUNDS[0], _NOISE_BOUNDS[0]])
    upper = np.log([_LENGTH_BOUNDS[1]] * dims + [_SIGNAL_BOUNDS[1], _NOISE_BOUNDS[1]])
    return lower, upper


def _unpack(theta: torch.Tensor, dims: int):
    return torch.exp(theta[:dims]), torch.exp(theta[dims]), torch.exp(theta[dims + 1])


def _prior_centre(dims: int) -> np.ndarray:
    mu = _length_prior_mean(dims)
    return np.concatenate([np.full(dims, mu), [0.0], [_NOISE_PRIOR_CENTRE]])


def _neg_log_posterior(theta: torch.Tensor, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    dims, n = x.shape[1], len(z)
    lengths, signal, noise = _unpack(theta, dims)
    k = matern52(x, x, lengths, signal) + (noise + _JITTER) * torch.eye(n, dtype=torch.float64)
    chol, info = torch.linalg.cholesky_ex(k)
    if int(info) != 0:
        return torch.tensor(math.inf, dtype=torch.float64)
    alpha = torch.cholesky_solve(z[:, None], chol)[:, 0]
    nll = 0.5 * (z @ alpha) + torch.log(torch.diagonal(chol)).sum()
    # priors: log length as above; log signal ~ N(0, 1); log noise ~ N(log 0.03, 3)
    mu = _length_prior_mean(dims)
    prior = (((theta[:dims] - mu) ** 2).sum() / (2 * _LENGTH_PRIOR_VAR) + theta[dims] ** 2 / 2.0
             + (theta[dims + 1] - _NOISE_PRIOR_CENTRE) ** 2 / (2 * 9.0))
    return nll + prior


def _cholesky(k: torch.Tensor) -> torch.Tensor:
    chol, info = torch.linalg.cholesky_ex(k)
    jitter = 1e-6
    while int(info) != 0 and jitter < 1.0:  # nearly duplicate points: add jitter until it factorises
        chol, info = torch.linalg.cholesky_ex(k + jitter * torch.eye(len(k), dtype=torch.float64))
        jitter *= 10
    return chol
