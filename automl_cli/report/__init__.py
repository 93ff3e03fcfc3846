"""`automl report`: one self-contained HTML file (plotly.js inline, so it opens with no
network) and a leaderboard CSV, from the journal alone; or several runs compared on
shared axes.

Modules, one job each: common (colours, axes, parameters as plot columns), history,
curves, params (parallel coordinates and slices), importance, timeline, pbt (the figure
builders: RunView in, plotly Figure or None out), page (the HTML page).
"""
from __future__ import annotations

import csv
from pathlib import Path

from ..status import RunView, csv_cell, flat_values
from .page import render_page

__all__ = ["render_page", "write_report", "write_csv"]


def write_csv(view: RunView, path: Path) -> Path:
    """The leaderboard as CSV: rank, job, trial, the metric, best_epoch, status, then one column per value."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        columns = view.value_columns()
        writer.writerow(["rank", "job", "trial", view.metric_name, "best_epoch", "status", *columns])
        for rank, job in enumerate(view.leaderboard(), start=1):
            values = flat_values(job.params, view.value_widths)
            writer.writerow([rank, job.name, job.trial_id, job.metric, job.best_epoch, job.status,
                             *[csv_cell(values.get(column)) for column in columns]])
    return path


def write_report(view: RunView, run_dir: Path, out: Path) -> tuple[Path, Path]:
    """Write the HTML report to `out` and the leaderboard CSV beside it."""
    csv_path = write_csv(view, out.with_suffix(".csv"))
    out.write_text(render_page([view]))
    return out, csv_path
