"""The workers' timeline: one row per worker, a bar per job from its start to its end
(colour = outcome), and how busy the workers were: busy time / (workers x span)."""
from __future__ import annotations

import plotly.graph_objects as go

from ..status import JobView, RunView
from .common import OUTCOME_COLOURS, axis, job_hover, layout, time_unit


def _end(view: RunView, job: JobView) -> float:
    return job.ended if job.ended is not None else max(view.last_event, job.started)


def utilisation(view: RunView) -> float | None:
    """The share of the workers' time spent on jobs, from the first job's start to the last
    one's end (None before any job)."""
    jobs = list(view.jobs.values())
    if not jobs:
        return None
    start, end = min(j.started for j in jobs), max(_end(view, j) for j in jobs)
    workers = len(set(view.workers) | {j.worker for j in jobs})
    if end <= start or not workers:
        return None
    busy = sum(_end(view, j) - j.started for j in jobs)
    return busy / (workers * (end - start))


def timeline_figure(view: RunView) -> go.Figure | None:
    jobs = sorted(view.jobs.values(), key=lambda j: j.started)
    if not jobs:
        return None
    span = max(_end(view, j) for j in jobs) - view.started
    unit, per = time_unit(span)
    workers = sorted(set(view.workers) | {j.worker for j in jobs})
    figure = go.Figure()
    for status in dict.fromkeys(j.status for j in jobs):
        own = [j for j in jobs if j.status == status]
        figure.add_trace(go.Bar(
            y=[j.worker for j in own], x=[(_end(view, j) - j.started) / per for j in own],
            base=[(j.started - view.started) / per for j in own], orientation="h", name=f"{status} job",
            marker={"color": OUTCOME_COLOURS.get(status, "#555"), "line": {"color": "#fff", "width": 1}},
            text=[j.name for j in own], textposition="inside", insidetextanchor="middle",
            hovertext=[job_hover(view, j) for j in own], hoverinfo="text"))
    used = utilisation(view)
    title = "Workers' timeline" + (f": utilisation {used:.0%} (busy time / (workers x span))" if used else "")
    figure.update_layout(**layout(title, height=160 + 40 * len(workers), barmode="overlay",
                                  legend={"orientation": "h", "y": -0.35}))
    figure.update_xaxes(axis(f"time since the run started ({unit})", rangemode="tozero"))
    figure.update_yaxes(axis("worker", type="category", categoryorder="array", categoryarray=workers[::-1]))
    return figure
