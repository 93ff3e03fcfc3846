"""A product-kernel density on the unit cube for mixed search spaces (BOHB's l(x) and g(x)).

Points come from `SearchSpace.to_units`: one coordinate per parameter in [0, 1]. A numeric
coordinate (float, log float, int: all already scaled to the unit interval) gets a Gaussian
kernel truncated to [0, 1] and renormalised there, so no mass leaks outside the cube and
the density integrates to one. A choice coordinate of n categories (category = floor(u*n))
gets the Aitchison-Aitken kernel: mass 1 - lam on the data point's category and lam/(n-1)
on each other one, so the order of the choices means nothing.

Bandwidths follow the normal reference rule, 1.06 * std * N^(-1/(4+d)), per coordinate
(for a choice coordinate the std of its category indices, as statsmodels does), never
below `min_bandwidth`, since identical points would otherwise give a zero-width spike; a
choice's lam is capped at (n-1)/n, where the kernel is uniform. With `clip` > 0 a numeric
bandwidth is also at least clip / min(100, N + 2): TPE's "magic clip" (Bergstra et al. 2011)
scaled by `clip`. Without it a density fitted on near-identical points (a search creeping
around its best result) has a near-zero width, and proposals drawn from it only creep on.

A NaN coordinate (an inactive conditional parameter) is left out of that point's kernel
product: the point says nothing about a parameter it did not have. A NaN in a query point
likewise drops the coordinate, so the density is then the marginal over the others.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.special import logsumexp, ndtr, ndtri

MIN_BANDWIDTH = 1e-3
LOG_SQRT_2PI = 0.5 * np.log(2 * np.pi)


class UnitKDE:
    """Product-kernel density over points of [0, 1]^d. `n_choices[j]` is the number of
    categories of coordinate j, or 0 when it is numeric."""

    def __init__(self, n_choices: Sequence[int], min_bandwidth: float = MIN_BANDWIDTH, clip: float = 0.0):
        self.n_choices = np.asarray(n_choices, dtype=int)
        self.is_choice = self.n_choices > 0
        self.min_bandwidth = float(min_bandwidth)
        self.clip = float(clip)
        self.data = np.empty((0, len(self.n_choices)))
        self.bandwidths = np.full(len(self.n_choices), self.min_bandwidth)

    @property
    def dims(self) -> int:
        return len(self.n_choices)

    def fit(self, points: np.ndarray) -> "UnitKDE":
        points = np.asarray(points, dtype=float).reshape(-1, self.dims)
        if len(points) == 0:
            raise ValueError("a density needs at least one point")
        self.data = np.clip(points, 0.0, 1.0)  # NaN stays NaN
        self.bandwidths = np.array([self._bandwidth(j) for j in range(self.dims)])
        return self

    def _bandwidth(self, j: int) -> float:
        column = self.data[:, j]
        values = column[~np.isnan(column)]
        if self.is_choice[j]:
            values = self._categories(values, j).astype(float)
        spread = float(np.std(values)) if len(values) > 1 else 0.0
        width = max(1.06 * spread * len(self.data) ** (-1.0 / (4 + self.dims)), self.min_bandwidth)
        if self.is_choice[j]:
            return min(width, self._uniform_lambda(j))
        return max(width, self.clip / min(100.0, len(self.data) + 2.0))

    def _uniform_lambda(self, j: int) -> float:
        """The Aitchison-Aitken lambda at which every category gets the same mass."""
        n = self.n_choices[j]
        return (n - 1) / n if n > 1 else 0.0

    def _categories(self, units: np.ndarray, j: int) -> np.ndarray:
        n = self.n_choices[j]
        return np.clip(np.floor(np.clip(units, 0.0, 1.0) * n), 0, n - 1).astype(int)

    # -- density ---------------------------------------------------------------------------
    def log_pdf(self, x: np.ndarray) -> np.ndarray:
        """log density at each row of `x` (shape (m, d), or (d,) for one point)."""
        query = np.asarray(x, dtype=float)
        single = query.ndim == 1
        query = query.reshape(-1, self.dims)
        terms = np.zeros((len(query), len(self.data), self.dims))  # log kernel per query, datum, coordinate
        for j in range(self.dims):
            terms[:, :, j] = self._log_kernel(query[:, j], j)
        out = logsumexp(terms.sum(axis=2), axis=1) - np.log(len(self.data))
        return out[0] if single else out

    def _log_kernel(self, q: np.ndarray, j: int) -> np.ndarray:
        """log K_j(q_i, data_kj) as an (m, N) array; 0 where either side is NaN (left out)."""
        centres = self.data[:, j]
        missing = np.isnan(q)[:, None] | np.isnan(centres)[None, :]
        q, centres = np.nan_to_num(q, nan=0.5), np.nan_to_num(centres, nan=0.5)
        if self.is_choice[j]:
            out = self._log_aitchison_aitken(q, centres, j, self.bandwidths[j])
        else:
            out = self._log_truncated_normal(q, centres, self.bandwidths[j])
        return np.where(missing, 0.0, out)

    def _log_aitchison_aitken(self, q, centres, j, lam) -> np.ndarray:
        n = self.n_choices[j]
        if n < 2:
            return np.zeros((len(q), len(centres)))
        same = self._categories(q, j)[:, None] == self._categories(centres, j)[None, :]
        return np.where(same, np.log1p(-lam), np.log(lam / (n - 1)))

    @staticmethod
    def _log_truncated_normal(q, centres, width) -> np.ndarray:
        z = (q[:, None] - centres[None, :]) / width
        mass = ndtr((1.0 - centres) / width) - ndtr(-centres / width)  # of N(centre, width) inside [0, 1]
        inside = (q >= 0.0) & (q <= 1.0)
        log_density = -0.5 * z ** 2 - LOG_SQRT_2PI - np.log(width) - np.log(mass)[None, :]
        return np.where(inside[:, None], log_density, -np.inf)

    # -- sampling --------------------------------------------------------------------------
    def sample(self, rng: np.random.Generator, n: int, bandwidth_factor: float = 1.0) -> np.ndarray:
        """`n` points: each a data point moved by its kernel, with every bandwidth widened by
        `bandwidth_factor` (a choice's lambda at most to uniform). NaN coordinates stay NaN."""
        centres = self.data[rng.integers(len(self.data), size=n)]
        out = np.empty_like(centres)
        for j in range(self.dims):
            width = self.bandwidths[j] * bandwidth_factor
            if self.is_choice[j]:
                out[:, j] = self._sample_choice(rng, centres[:, j], j, min(width, self._uniform_lambda(j)))
            else:
                out[:, j] = self._sample_truncated_normal(rng, centres[:, j], width)
        return out

    def _sample_choice(self, rng, centres, j, lam) -> np.ndarray:
        n = self.n_choices[j]
        kept = self._categories(np.nan_to_num(centres, nan=0.5), j)
        moves = rng.random(len(centres)) < lam
        # a move goes to one of the n-1 other categories, uniformly, as the kernel says
        shift = rng.integers(1, max(n, 2), size=len(centres))
        category = np.where(moves, (kept + shift) % n, kept)
        return np.where(np.isnan(centres), np.nan, (category + 0.5) / n)

    @staticmethod
    def _sample_truncated_normal(rng, centres, width) -> np.ndarray:
        # inverse CDF restricted to [0, 1]: exact, and one uniform draw per point
        safe = np.nan_to_num(centres, nan=0.5)
        low, high = ndtr(-safe / width), ndtr((1.0 - safe) / width)
        u = low + rng.random(len(centres)) * (high - low)
        values = np.clip(safe + width * ndtri(np.clip(u, 1e-300, 1 - 1e-16)), 0.0, 1.0)
        return np.where(np.isnan(centres), np.nan, values)
