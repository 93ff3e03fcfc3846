"""Population-based training: each member's hyperparameter schedule over epochs (one step
line per trial), and its exploits: a dashed line from the donor's value where it was copied
to the member's new value where it went on."""
from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..status import RunView
from .common import RUN_COLOURS, axis, columns, layout, log_axis

MAX_PARAMETERS = 6


def is_population(view: RunView) -> bool:
    return "pbt" in str(view.settings.get("algorithm", "")) or any(
        j.copy_from is not None for j in view.jobs.values())


def pbt_figure(view: RunView) -> go.Figure | None:
    jobs = sorted(view.jobs.values(), key=lambda j: (j.trial_id, j.start_epoch, j.job_id))
    cols = columns(view, jobs)[:MAX_PARAMETERS]
    if not jobs or not cols:
        return None
    trials = sorted({j.trial_id for j in jobs})
    figure = make_subplots(rows=len(cols), cols=1, shared_xaxes=True, vertical_spacing=0.12 / max(1, len(cols) - 1)
                           if len(cols) > 1 else 0.1)
    for row, column in enumerate(cols, start=1):
        def value(job):
            raw = column.values.get(job.job_id)
            if column.categories is None or raw is None:
                return raw
            return column.categories[int(column.number(job.job_id))]
        for index, trial in enumerate(trials):
            own = [j for j in jobs if j.trial_id == trial and column.values.get(j.job_id) is not None]
            xs, ys, hover = [], [], []
            for job in own:
                xs += [job.start_epoch, job.stop_epoch]
                ys += [value(job)] * 2
                hover += [f"member {trial}: {job.name}<br>{column.name} = {value(job)}"] * 2
            figure.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name=f"member {trial}",
                                        legendgroup=f"member {trial}", showlegend=row == 1,
                                        line={"color": RUN_COLOURS[index % len(RUN_COLOURS)], "width": 2},
                                        marker={"size": 5}, hovertext=hover, hoverinfo="text"), row=row, col=1)
        xs, ys, hover = [], [], []
        for job in jobs:  # exploit: the donor's value at its end, then this job's at its start
            donor = view.jobs.get(job.copy_from) if job.copy_from is not None else None
            if donor is None or column.values.get(donor.job_id) is None or column.values.get(job.job_id) is None:
                continue
            xs += [donor.stop_epoch, job.start_epoch, None]
            ys += [value(donor), value(job), None]
            text = f"{job.name} (member {job.trial_id}) copied {donor.name} (member {donor.trial_id})"
            hover += [text, text, None]
        if xs:
            figure.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name="exploit (copied weights)",
                                        legendgroup="exploit", showlegend=row == 1,
                                        line={"dash": "dash", "color": "#111", "width": 1.5},
                                        marker={"symbol": "star", "size": 9, "color": "#111"},
                                        hovertext=hover, hoverinfo="text"), row=row, col=1)
        extra = log_axis(list(column.values.values())) if column.log else {}
        if column.categories is not None:
            extra = {"type": "category", "categoryorder": "array", "categoryarray": column.categories}
        figure.update_yaxes(axis(column.name + (" (log)" if column.log else ""), **extra), row=row, col=1)
        figure.update_xaxes(axis("epoch (epochs trained)" if row == len(cols) else "", showticklabels=True),
                            row=row, col=1)
    figure.update_layout(**layout("Population: each member's hyperparameters over epochs, and its exploits",
                                  height=120 + 250 * len(cols), legend={"x": 1.02, "y": 1}))
    return figure
