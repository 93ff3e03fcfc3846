"""Parameter importance with its uncertainty: a random forest's importances, refitted on
bootstrap resamples of the finished jobs, shown as the mean and the 10-90 % interval. With
fewer than two finished jobs per parameter there is no ranking, only a plain warning:
a forest fitted on that few jobs ranks noise with confidence."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from ..status import RunView
from .common import axis, columns, layout, scored

PER_PARAMETER = 2  # finished jobs per parameter below which no ranking is shown
RESAMPLES = 20


def too_few(view: RunView) -> str | None:
    """The warning shown instead of a ranking, or None when there are enough finished jobs."""
    done = [j for j in scored(view) if j.status != "failed"]
    if not done:
        return "No finished job yet: nothing to rank."
    cols = columns(view, done)
    if not cols:
        return "No parameters to rank."
    if len(done) < max(4, PER_PARAMETER * len(cols)):
        return (f"Too few finished jobs to rank the parameters: {len(done)} job(s) for {len(cols)} parameter(s); "
                f"an importance needs at least {max(4, PER_PARAMETER * len(cols))} (two per parameter, four at "
                "least). Any ranking from these would be noise.")
    return None


def importances(view: RunView, resamples: int = RESAMPLES, seed: int = 0) -> dict[str, np.ndarray]:
    """Per parameter, its forest importance in each bootstrap resample of the finished jobs."""
    from sklearn.ensemble import RandomForestRegressor

    done = [j for j in scored(view) if j.status != "failed"]
    cols = columns(view, done)
    x = np.array([[(-1.0 if c.number(j.job_id) is None else c.number(j.job_id)) for c in cols] for j in done])
    y = np.array([j.metric for j in done])
    rng = np.random.default_rng(seed)
    out = np.zeros((resamples, len(cols)))
    for r in range(resamples):
        pick = rng.integers(0, len(done), len(done))
        if np.ptp(y[pick]) == 0:  # all one score: nothing to explain, no importance
            continue
        forest = RandomForestRegressor(n_estimators=25, random_state=r).fit(x[pick], y[pick])
        out[r] = forest.feature_importances_
    return {c.name: out[:, i] for i, c in enumerate(cols)}


def importance_figure(view: RunView) -> go.Figure | None:
    if too_few(view):
        return None
    found = importances(view)
    ranked = sorted(found.items(), key=lambda item: item[1].mean())  # plotly draws bars bottom up: best on top
    names = [name for name, _ in ranked]
    means = [float(v.mean()) for _, v in ranked]
    low = [float(np.percentile(v, 10)) for _, v in ranked]
    high = [float(np.percentile(v, 90)) for _, v in ranked]
    figure = go.Figure(go.Bar(
        x=means, y=names, orientation="h", marker={"color": "#2b7bba"}, name="mean importance",
        error_x={"type": "data", "symmetric": False, "array": [h - m for h, m in zip(high, means)],
                 "arrayminus": [m - lo for m, lo in zip(means, low)], "color": "#333", "thickness": 1.5},
        hovertemplate="%{y}: %{x:.3f}<extra></extra>"))
    figure.update_layout(**layout(f"Parameter importance: mean and 10-90 % interval over {RESAMPLES} bootstrap "
                                  "resamples", height=140 + 40 * len(names),
                                  margin={"l": 40, "r": 30, "t": 60, "b": 60}))
    figure.update_xaxes(axis("share of the score's variance explained (random forest importance, 0-1)",
                             rangemode="tozero"))
    figure.update_yaxes(axis("parameter", automargin=True))
    return figure
