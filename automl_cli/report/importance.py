"""Parameter importance with its uncertainty: a random forest's importances, refitted on
bootstrap resamples of the finished jobs, shown as the mean and the 10-90 % interval. With
fewer than two finished jobs per parameter there is no ranking, only a plain warning:
a forest fitted on that few jobs ranks noise with confidence. Scores at different training
budgets (a Hyperband family's rungs) are not compared: the jobs of one budget are used, the
budget most jobs trained to."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from ..status import JobView, RunView
from .common import axis, columns, layout, scored

PER_PARAMETER = 2  # finished jobs per parameter below which no ranking is shown
RESAMPLES = 20


def compared(view: RunView) -> tuple[list[JobView], int | None]:
    """The finished jobs whose scores are compared, and their budget (epochs trained; None
    when all trained alike): those of the budget most jobs trained to, the deeper on a tie."""
    done = [j for j in scored(view) if j.status != "failed"]
    depths: dict[int, list[JobView]] = {}
    for job in done:
        depths.setdefault(job.epoch, []).append(job)
    if len(depths) < 2:
        return done, None
    depth = max(depths, key=lambda d: (len(depths[d]), d))
    return depths[depth], depth


def too_few(view: RunView) -> str | None:
    """The warning shown instead of a ranking, or None when there are enough finished jobs."""
    done, depth = compared(view)
    if not done:
        return "No finished job yet: nothing to rank."
    cols = columns(view, done)
    if not cols:
        return "No parameters to rank."
    if len(done) < max(4, PER_PARAMETER * len(cols)):
        budget = f" trained to {depth} epochs" if depth is not None else ""
        return (f"Too few finished jobs to rank the parameters: {len(done)} job(s){budget} for {len(cols)} "
                "parameter(s); "
                f"an importance needs at least {max(4, PER_PARAMETER * len(cols))} (two per parameter, four at "
                "least). Any ranking from these would be noise.")
    return None


def importances(view: RunView, resamples: int = RESAMPLES, seed: int = 0) -> dict[str, np.ndarray]:
    """Per parameter, its forest importance in each bootstrap resample of the finished jobs."""
    from sklearn.ensemble import RandomForestRegressor

    done, _ = compared(view)
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
    varied = {c.name: len({repr(v) for v in c.values.values()}) > 1 for c in columns(view, compared(view)[0])}
    names = [name if varied.get(name, True) else f"{name} (one value: not varied)" for name, _ in ranked]
    means = [float(v.mean()) for _, v in ranked]
    low = [float(np.percentile(v, 10)) for _, v in ranked]
    high = [float(np.percentile(v, 90)) for _, v in ranked]
    figure = go.Figure(go.Bar(
        x=means, y=names, orientation="h", marker={"color": "#2b7bba"}, name="mean importance",
        error_x={"type": "data", "symmetric": False, "array": [h - m for h, m in zip(high, means)],
                 "arrayminus": [m - lo for m, lo in zip(means, low)], "color": "#333", "thickness": 1.5},
        hovertemplate="%{y}: %{x:.3f}<extra></extra>"))
    done, depth = compared(view)
    budget = f", the {len(done)} jobs trained to {depth} epochs" if depth is not None else ""
    figure.update_layout(**layout(f"Parameter importance: mean and 10-90 % interval over {RESAMPLES} bootstrap "
                                  f"resamples{budget}", height=140 + 40 * len(names),
                                  margin={"l": 40, "r": 30, "t": 60, "b": 60}))
    figure.update_xaxes(axis("share of the score's variance explained (random forest importance, 0-1)",
                             rangemode="tozero"))
    figure.update_yaxes(axis("parameter", automargin=True))
    return figure
