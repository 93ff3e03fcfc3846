"""Learning curves: the metric per epoch, one line per job coloured by its final score (a
colour bar says which colour is which score), the best jobs named in the legend, where a
job stopped, failed or was promoted marked, and the rung epochs of a Hyperband-family
run as vertical lines. Several runs: one colour per run instead."""
from __future__ import annotations

import math

import plotly.graph_objects as go
from plotly.colors import sample_colorscale

from ..status import JobView, RunView
from .common import RUN_COLOURS, SCORE_SCALE, axis, job_hover, layout, metric_title

NAMED = 5  # the best jobs that get a legend entry each
MARKS = {"stopped": ("x", "#e08a1e"), "failed": ("x-thin-open", "#c0392b"), "promoted": ("triangle-up", "#111111"),
         "interrupted": ("square-open", "#888888")}


def curve(view: RunView, job: JobView) -> list[tuple[int, float]]:
    points = []
    for epoch, values in sorted(job.epochs.items()):
        value = values.get(view.metric_name)
        if isinstance(value, (int, float)) and math.isfinite(value):
            points.append((epoch, float(value)))
    return points


def promoted(view: RunView, job: JobView) -> bool:
    """The trial trained on past this job's epochs in a later job (a promotion to the next rung)."""
    return job.status == "completed" and job.rung is not None and any(
        o.trial_id == job.trial_id and o.job_id > job.job_id and o.start_epoch >= job.stop_epoch
        for o in view.jobs.values())


def rung_epochs(view: RunView) -> list[int]:
    """The epochs where rungs end in a Hyperband-family run (none for other algorithms)."""
    return sorted({j.stop_epoch for j in view.jobs.values() if j.rung is not None})


def curves_figure(views: list[RunView]) -> go.Figure | None:
    compare = len(views) > 1
    figure = go.Figure()
    scores = [j.metric for v in views for j in v.jobs.values() if j.metric is not None and math.isfinite(j.metric)]
    if not scores:
        return None
    low, high = min(scores), max(scores)
    marks: dict[str, list[tuple[float, float, str]]] = {}
    for index, view in enumerate(views):
        ranks = {j.job_id: i for i, j in enumerate(view.leaderboard(), start=1)}
        named = {job_id for job_id, rank in ranks.items() if rank <= NAMED} if not compare else set()
        first = _first_curve(view)
        for job in sorted(view.jobs.values(), key=lambda j: j.job_id):
            points = curve(view, job)
            if not points:
                continue
            before = _before(view, job)
            if before is not None:  # joined to the segment it continues (a promotion, pbt's next interval)
                points = [before] + points
            if compare:
                colour = RUN_COLOURS[index % len(RUN_COLOURS)]
            else:
                where = 0.5 if high == low or job.metric is None else (job.metric - low) / (high - low)
                colour = sample_colorscale(SCORE_SCALE, [where])[0]
            rank = ranks.get(job.job_id)
            figure.add_trace(go.Scatter(
                x=[e for e, _ in points], y=[v for _, v in points],
                mode="lines+markers" if len(points) < 3 else "lines",
                line={"color": colour, "width": 2.5 if job.job_id in named else 1.2},
                marker={"size": 8 if len(points) == 1 else 4, "color": colour},
                opacity=1.0 if job.job_id in named else (0.6 if compare else 0.75),
                name=(f"#{rank} {job.name}" if job.job_id in named else (view.run_id if compare else job.name)),
                legendgroup=view.run_id if compare else job.name,
                legendrank=ranks.get(job.job_id, 999) if job.job_id in named else 1000 + index,
                showlegend=(job.job_id in named) or (compare and job is first),
                hovertext=job_hover(view, job), hoverinfo="text"))
            kind = "promoted" if promoted(view, job) else job.status
            if kind in MARKS:
                epoch, value = points[-1]
                marks.setdefault(kind, []).append((epoch, value, f"{job.name}: {kind}"))
    for kind, points in marks.items():
        symbol, colour = MARKS[kind]
        figure.add_trace(go.Scatter(x=[p[0] for p in points], y=[p[1] for p in points], mode="markers",
                                    name=kind, marker={"symbol": symbol, "size": 11, "color": colour,
                                                       "line": {"width": 2, "color": colour}},
                                    hovertext=[p[2] for p in points], hoverinfo="text"))
    if not compare:  # the colour bar: an invisible trace carrying the scale
        figure.add_trace(go.Scatter(x=[None], y=[None], mode="markers", showlegend=False, hoverinfo="skip",
                                    marker={"colorscale": SCORE_SCALE, "cmin": low, "cmax": high, "color": [low],
                                            "showscale": True,
                                            "colorbar": {"title": {"text": f"final<br>{views[0].metric_name}"},
                                                         "x": 1.02, "len": 0.9}}))
    for epoch in (rung_epochs(views[0]) if not compare else []):
        figure.add_vline(x=epoch, line={"dash": "dot", "color": "#999"}, annotation_text=f"rung: {epoch} ep",
                         annotation_position="top left", annotation_font_size=10)
    figure.update_layout(**layout("Learning curves" + (": one colour per run" if compare else
                                                       ", coloured by final score"), height=460,
                                  legend={"x": 1.16 if not compare else 1.02, "y": 1}))
    figure.update_xaxes(axis("epoch (epochs trained)", rangemode="tozero"))
    figure.update_yaxes(axis(metric_title(views[0])))
    return figure


def _first_curve(view: RunView) -> JobView | None:
    return next((j for j in sorted(view.jobs.values(), key=lambda j: j.job_id) if curve(view, j)), None)


def _before(view: RunView, job: JobView) -> tuple[int, float] | None:
    """The last point of the job whose weights this one continued from, if it trained any."""
    chain = view.lineage(job)
    if len(chain) < 2:
        return None
    previous = curve(view, chain[-2])
    return previous[-1] if previous else None
