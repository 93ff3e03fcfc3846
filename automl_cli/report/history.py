"""The search's history: every finished job as a point and the best score so far, over
wall time (left) and over the count of finished jobs (right); several runs share the axes."""
from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..status import RunView
from .common import OUTCOME_COLOURS, RUN_COLOURS, axis, job_hover, layout, metric_title, scored, time_unit


def history_figure(views: list[RunView]) -> go.Figure | None:
    """None when no run has a finished job with a score yet."""
    runs = [(view, scored(view)) for view in views]
    if not any(done for _, done in runs):
        return None
    span = max((j.ended - view.started) for view, done in runs for j in done)
    unit, per = time_unit(span)
    figure = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.06,
                           subplot_titles=("over wall time", "over finished jobs"))
    compare = len(views) > 1
    for index, (view, done) in enumerate(runs):
        if not done:
            continue
        colour = RUN_COLOURS[index % len(RUN_COLOURS)]
        group = view.run_id if compare else None
        times = [(j.ended - view.started) / per for j in done]
        counts = list(range(1, len(done) + 1))
        best, best_line = None, []
        for job in done:  # failed jobs never win, whatever they scored
            if job.status != "failed" and view.better(job.metric, best):
                best = job.metric
            best_line.append(best)
        for col, xs in ((1, times), (2, counts)):
            if compare:
                figure.add_trace(go.Scatter(
                    x=xs, y=[j.metric for j in done], mode="markers", name=f"{view.run_id}: jobs",
                    legendgroup=group, showlegend=col == 1, hovertext=[job_hover(view, j) for j in done],
                    hoverinfo="text", marker={"color": colour, "size": 7, "opacity": 0.6,
                                              "symbol": ["x" if j.status == "failed" else "circle" for j in done]}),
                    row=1, col=col)
            else:
                for status in dict.fromkeys(j.status for j in done):
                    own = [i for i, j in enumerate(done) if j.status == status]
                    figure.add_trace(go.Scatter(
                        x=[xs[i] for i in own], y=[done[i].metric for i in own], mode="markers",
                        name=f"{status} job", legendgroup=status, showlegend=col == 1,
                        hovertext=[job_hover(view, done[i]) for i in own], hoverinfo="text",
                        marker={"color": OUTCOME_COLOURS.get(status, "#555"), "size": 8}), row=1, col=col)
            figure.add_trace(go.Scatter(
                x=xs, y=best_line, mode="lines", line={"shape": "hv", "width": 2.5,
                                                      "color": colour if compare else "#111"},
                name=f"{view.run_id}: best so far" if compare else "best so far", legendgroup=group or "best",
                showlegend=col == 1, hovertemplate="best so far %{y:.4g}<extra></extra>"), row=1, col=col)
    unscored = sum(1 for view in views for j in view.jobs.values() if j.ended is not None and j.metric is None)
    title = "Best score so far, and every finished job" + (
        f" ({unscored} finished without a score: not drawn)" if unscored else "")
    figure.update_layout(**layout(title, height=430,
                                  legend={"orientation": "h", "y": -0.22}))
    figure.update_xaxes(axis(f"time since the run started ({unit})"), row=1, col=1)
    figure.update_xaxes(axis("finished jobs (count)", rangemode="tozero"), row=1, col=2)
    figure.update_yaxes(axis(metric_title(views[0])), row=1, col=1)
    figure.update_yaxes(axis(""), row=1, col=2)
    return figure
