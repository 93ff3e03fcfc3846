"""The parameters against the score: parallel coordinates (one axis per parameter, log axes
for log parameters, choices as categories, one line per finished job coloured by score)
and slice plots (the score against each parameter on its own)."""
from __future__ import annotations

import math

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..status import RunView
from .common import (OUTCOME_COLOURS, SCORE_SCALE, Column, axis, columns, job_hover, layout, log_axis, log_ticks,
                     metric_title, scored)

WRAP = 16  # characters per line of an axis label before it wraps (at a '.', '+' or '_')


def wrap(name: str, width: int = WRAP) -> str:
    """A long parameter name on several lines, broken after '.', '+' or '_', never cut."""
    lines, line = [], ""
    for piece in _pieces(name):
        if line and len(line) + len(piece) > width:
            lines.append(line)
            line = ""
        line += piece
    lines.append(line)
    return "<br>".join(lines)


def _pieces(name: str) -> list[str]:
    pieces, current = [], ""
    for char in name:
        current += char
        if char in ".+_":
            pieces.append(current)
            current = ""
    return pieces + ([current] if current else [])


def _dimension(column: Column, job_ids: list[int]) -> dict:
    values = [column.number(i) for i in job_ids]
    present = [v for v in values if v is not None]
    dim = {"label": wrap(column.name) + _log_note(column), "values": values}
    if column.categories is not None:
        dim.update(tickvals=list(range(len(column.categories))), ticktext=column.categories,
                   range=[-0.3, len(column.categories) - 0.7])
    elif column.log and present:
        dim["tickvals"], dim["ticktext"] = log_ticks(min(present), max(present))
        # the axis runs from tick to tick: a tick outside the range would be drawn at its end, misplaced
        dim["range"] = [min(dim["tickvals"] + present), max(dim["tickvals"] + present)]
    return dim


def _log_note(column: Column) -> str:
    if not column.log:
        return ""
    return " (log, guessed)" if column.log_inferred else " (log)"


def parallel_figure(view: RunView) -> go.Figure | None:
    done = [j for j in scored(view) if j.status != "failed"]
    cols = columns(view, done)
    if not done or not cols:
        return None
    ids = [j.job_id for j in done]
    # an inactive value (a conditional parameter) has no place on its axis: plotly needs a
    # number, so it goes just below the axis's range and reads as "off"
    dims = []
    for column in cols:
        dim = _dimension(column, ids)
        present = [v for v in dim["values"] if v is not None]
        if len(present) < len(ids):
            floor = (min(present + dim.get("tickvals", [])) - 1) if present else -1
            dim["values"] = [floor if v is None else v for v in dim["values"]]
            if "tickvals" in dim:  # labelled, and inside the axis's range
                dim["tickvals"], dim["ticktext"] = [floor, *dim["tickvals"]], ["(inactive)", *dim["ticktext"]]
                dim["range"] = [floor - 0.3, dim["range"][1]]
        dims.append(dim)
    scores = [j.metric for j in done]
    dims.append({"label": wrap(view.metric_name), "values": scores})
    figure = go.Figure(go.Parcoords(
        dimensions=dims, labelangle=0, labelside="bottom",
        line={"color": scores, "colorscale": SCORE_SCALE, "showscale": True, "reversescale": not view.maximize,
              "colorbar": {"title": {"text": view.metric_name}}},
        labelfont={"size": 11}, tickfont={"size": 10}))
    figure.update_layout(**layout("Parallel coordinates: one line per finished job, coloured by score",
                                  height=420, margin={"l": 80, "r": 90, "t": 70, "b": 80}))
    return figure


def slices_figure(view: RunView) -> go.Figure | None:
    done = scored(view)
    cols = columns(view, done)
    if not done or not cols:
        return None
    per_row = min(3, len(cols))
    rows = math.ceil(len(cols) / per_row)
    figure = make_subplots(rows=rows, cols=per_row, shared_yaxes=True, horizontal_spacing=0.05,
                           vertical_spacing=0.22 / rows * 2 if rows > 1 else 0.1)
    shown: set[str] = set()
    for index, column in enumerate(cols):
        row, col = index // per_row + 1, index % per_row + 1
        for status in dict.fromkeys(j.status for j in done):
            own = [j for j in done if j.status == status and j.job_id in column.values]
            if not own:
                continue
            xs = [column.values[j.job_id] for j in own]
            if column.categories is not None:
                xs = [column.categories[int(column.number(j.job_id))] for j in own]
            figure.add_trace(go.Scatter(x=xs, y=[j.metric for j in own], mode="markers", name=f"{status} job",
                                        legendgroup=status, showlegend=status not in shown,
                                        marker={"color": OUTCOME_COLOURS.get(status, "#555"), "size": 8},
                                        hovertext=[job_hover(view, j) for j in own], hoverinfo="text"),
                             row=row, col=col)
            shown.add(status)
        extra = log_axis(list(column.values.values())) if column.log else {}
        if column.categories is not None:
            extra = {"type": "category", "categoryorder": "array", "categoryarray": column.categories}
        figure.update_xaxes(axis(wrap(column.name, 40) + _log_note(column).replace("log", "log scale"), **extra),
                            row=row, col=col)
        figure.update_yaxes(axis(metric_title(view) if col == 1 else ""), row=row, col=col)
    figure.update_layout(**layout("The score against each parameter", height=330 * rows + 40,
                                  legend={"orientation": "h", "y": 1.03, "yanchor": "bottom", "x": 0.5,
                                          "xanchor": "center"}))
    return figure
