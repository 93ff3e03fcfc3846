"""`automl report`: one self-contained HTML file (no network needed to open it) and a
leaderboard CSV, from the journal alone.

Charts are inline SVG drawn here: a few dozen lines each, no plotting library and no
script to fetch. Parameter importance comes from a random forest (scikit-learn, already a
dependency) fitted on the finished jobs' unit-cube encodings.
"""
from __future__ import annotations

import csv
import html
import json
from pathlib import Path

import numpy as np

from .status import JobView, RunView, csv_cell, flat_values, format_params

_COLOURS = {"completed": "#2b7bba", "stopped": "#e08a1e", "failed": "#c0392b", "interrupted": "#888888",
            "running": "#27ae60", "retried": "#888888"}
W, H, PAD = 640, 260, 40


def write_report(view: RunView, run_dir: Path, out: Path) -> tuple[Path, Path]:
    """Write the HTML report to `out` and the leaderboard CSV beside it."""
    board = view.leaderboard()
    csv_path = out.with_suffix(".csv")
    with open(csv_path, "w", newline="") as handle:
        writer = csv.writer(handle)
        columns = view.value_columns()
        writer.writerow(["rank", "job", "trial", view.metric_name, "best_epoch", "status", *columns])
        for rank, job in enumerate(board, start=1):
            values = flat_values(job.params, view.value_widths)
            writer.writerow([rank, job.name, job.trial_id, job.metric, job.best_epoch, job.status,
                             *[csv_cell(values.get(column)) for column in columns]])
    out.write_text(render_page([view]))
    return out, csv_path


def render_page(views: list[RunView], refresh_seconds: float | None = None) -> str:
    """The whole report page for one run, or several runs on shared axes (compare); the
    dashboard serves the same page. Today only the first run is drawn."""
    view = views[0]
    board = view.leaderboard()
    sections = [
        f"<h1>AutoML run {html.escape(view.run_id)}</h1>",
        f"<p>{html.escape(view.settings.get('algorithm', '?'))} · metric {html.escape(view.metric_name)} "
        f"({html.escape(view.settings.get('direction', '?'))}) · status {html.escape(view.status)} · "
        f"{len(view.jobs)} jobs</p>",
        "<h2>Leaderboard</h2>", _leaderboard(view, board),
        "<h2>Best metric over time</h2>", _best_over_time(view),
        "<h2>Learning curves</h2>", _curves(view),
        "<h2>Parameter importance</h2>", _importance(view),
    ]
    sections += ["<h2>Hyperparameters against the metric</h2>", _parallel(view)]
    if any(j.rung is not None for j in view.jobs.values()):
        sections += ["<h2>Rungs</h2>", _rungs(view)]
    if any(j.copy_from is not None for j in view.jobs.values()):
        sections += ["<h2>Hyperparameter schedules (pbt)</h2>", _schedules(view)]
    lineage = _lineage(view, board[0]) if board else ""
    if lineage:
        sections += ["<h2>Lineage of the best job</h2>", lineage]
    page = ("<!doctype html><html><head><meta charset='utf-8'><title>automl report "
            f"{html.escape(view.run_id)}</title><style>body{{font-family:sans-serif;margin:2em}}"
            "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px}"
            "svg{background:#fafafa;border:1px solid #ddd}</style></head><body>"
            + "\n".join(sections) + "</body></html>")
    return page


def _leaderboard(view: RunView, board: list[JobView]) -> str:
    rows = "".join(f"<tr><td>{i}</td><td>{html.escape(j.name)}</td><td>{j.metric:.4f}</td><td>{j.best_epoch}</td>"
                   f"<td>{html.escape(j.status)}</td><td>{html.escape(format_params(j.params))}</td></tr>"
                   for i, j in enumerate(board[:30], start=1))
    return (f"<table id='leaderboard'><tr><th>rank</th><th>job</th><th>{html.escape(view.metric_name)}</th>"
            f"<th>epoch</th><th>status</th><th>params</th></tr>{rows}</table>")


def _scale(values, low_px, high_px):
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    return lambda v: low_px + (v - lo) / span * (high_px - low_px)


def _svg(body: str, xlabel: str, ylabel: str, ident: str) -> str:
    return (f"<svg id='{ident}' width='{W}' height='{H}' xmlns='http://www.w3.org/2000/svg'>"
            f"<line x1='{PAD}' y1='{H - PAD}' x2='{W - 10}' y2='{H - PAD}' stroke='#333'/>"
            f"<line x1='{PAD}' y1='10' x2='{PAD}' y2='{H - PAD}' stroke='#333'/>"
            f"<text x='{W // 2}' y='{H - 8}' font-size='12'>{html.escape(xlabel)}</text>"
            f"<text x='4' y='20' font-size='12'>{html.escape(ylabel)}</text>{body}</svg>")


def _best_over_time(view: RunView) -> str:
    done = sorted((j for j in view.jobs.values() if j.ended and j.metric is not None and j.status != "failed"),
                  key=lambda j: j.ended)
    if not done:
        return "<p>no finished job yet</p>"
    points, best = [], None
    for job in done:
        if view.better(job.metric, best):
            best = job.metric
        points.append((job.ended - view.started, best))
    x = _scale([p[0] for p in points] + [0.0], PAD, W - 10)
    y = _scale([p[1] for p in points], H - PAD, 10)
    path = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in points)
    return _svg(f"<polyline fill='none' stroke='#2b7bba' stroke-width='2' points='{path}'/>",
                "seconds since start", f"best {view.metric_name}", "best-over-time")


def _curves(view: RunView) -> str:
    curves = [(j, sorted((e, v.get(view.metric_name)) for e, v in j.epochs.items()
                         if isinstance(v.get(view.metric_name), (int, float))))
              for j in view.jobs.values()]
    curves = [(j, c) for j, c in curves if c]
    if not curves:
        return "<p>no metrics yet</p>"
    x = _scale([e for _, c in curves for e, _ in c] + [0], PAD, W - 10)
    y = _scale([v for _, c in curves for _, v in c], H - PAD, 10)
    lines = "".join(f"<polyline class='curve {j.status}' fill='none' stroke='{_COLOURS.get(j.status, '#555')}' "
                    f"stroke-width='1.5' points='{' '.join(f'{x(e):.1f},{y(v):.1f}' for e, v in c)}'>"
                    f"<title>{html.escape(j.name)}</title></polyline>" for j, c in curves)
    legend = " ".join(f"<span style='color:{c}'>■ {s}</span>" for s, c in _COLOURS.items())
    return _svg(lines, "epoch", view.metric_name, "learning-curves") + f"<p>{legend}</p>"


def _importance(view: RunView) -> str:
    from sklearn.ensemble import RandomForestRegressor

    done = [j for j in view.jobs.values() if j.metric is not None and j.status != "failed"]
    names = sorted({k for j in done for k in j.params})
    if len(done) < 4 or not names:
        return "<p>too few finished jobs to estimate importance</p>"
    columns = []
    for name in names:  # each parameter as numbers: its value, or the index of its choice
        values = [j.params.get(name) for j in done]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values if v is not None):
            columns.append([float(v) if v is not None else -1.0 for v in values])
        else:
            seen = sorted({json.dumps(v) for v in values})
            columns.append([float(seen.index(json.dumps(v))) for v in values])
    forest = RandomForestRegressor(n_estimators=200, random_state=0).fit(np.array(columns).T,
                                                                          [j.metric for j in done])
    ranked = sorted(zip(names, forest.feature_importances_), key=lambda t: -t[1])
    rows = "".join(f"<tr><td>{html.escape(n)}</td><td>{v:.3f}</td>"
                   f"<td><div style='background:#2b7bba;height:10px;width:{int(300 * v)}px'></div></td></tr>"
                   for n, v in ranked)
    return f"<table id='importance'><tr><th>parameter</th><th>importance</th><th></th></tr>{rows}</table>"


def _lineage(view: RunView, best: JobView) -> str:
    chain = view.lineage(best)
    if len(chain) < 2:
        return ""
    rows = "".join(f"<tr><td>{html.escape(j.name)}</td><td>{j.trial_id}</td><td>{j.start_epoch}-{j.stop_epoch}</td>"
                   f"<td>{html.escape(format_params(j.params))}</td><td>{html.escape(j.note)}</td></tr>" for j in chain)
    return (f"<table id='lineage'><tr><th>job</th><th>trial</th><th>epochs</th><th>params</th><th>why</th></tr>"
            f"{rows}</table>")


def _numeric(view: RunView) -> dict[str, list[tuple[JobView, float]]]:
    """Each parameter as a number per job: the value, or the index of the choice."""
    out: dict[str, list[tuple[JobView, float]]] = {}
    names = sorted({k for j in view.jobs.values() for k in j.params})
    for name in names:
        values = [(j, j.params.get(name)) for j in view.jobs.values() if j.params.get(name) is not None]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for _, v in values):
            out[name] = [(j, float(v)) for j, v in values]
        else:
            seen = sorted({json.dumps(v) for _, v in values})
            out[name] = [(j, float(seen.index(json.dumps(v)))) for j, v in values]
    return out


def _parallel(view: RunView) -> str:
    """Parallel coordinates: one axis per parameter, one line per finished job, darker = better."""
    done = [j for j in view.jobs.values() if j.metric is not None and j.status != "failed"]
    axes = _numeric(view)
    if not done or not axes:
        return "<p>no finished job yet</p>"
    names = list(axes)
    xs = [PAD + i * (W - PAD - 20) / max(1, len(names) - 1) for i in range(len(names))]
    scales = {n: _scale([v for _, v in axes[n]], H - PAD, 20) for n in names}
    metric = _scale([j.metric for j in done], 0.15, 1.0)
    lines = []
    for job in done:
        values = {n: dict((j.job_id, v) for j, v in axes[n]).get(job.job_id) for n in names}
        points = [f"{x:.1f},{scales[n](values[n]):.1f}" for x, n in zip(xs, names) if values[n] is not None]
        strength = metric(job.metric) if view.maximize else 1.15 - metric(job.metric)
        lines.append(f"<polyline class='pc' fill='none' stroke='#2b7bba' stroke-opacity='{strength:.2f}' "
                     f"points='{' '.join(points)}'><title>{html.escape(job.name)} {job.metric:.4f}</title></polyline>")
    ticks = "".join(f"<line x1='{x:.1f}' y1='20' x2='{x:.1f}' y2='{H - PAD}' stroke='#999'/>"
                    f"<text x='{x - 20:.1f}' y='{H - PAD + 14}' font-size='10'>{html.escape(n[-22:])}</text>"
                    for x, n in zip(xs, names))
    return (f"<svg id='parallel' width='{W}' height='{H}' xmlns='http://www.w3.org/2000/svg'>{ticks}{''.join(lines)}"
            "</svg><p>one line per finished job; darker lines scored better</p>")


def _rungs(view: RunView) -> str:
    """Hyperband-family runs: each job's score by the epoch it trained to; promotions join a trial's dots."""
    jobs = [j for j in view.jobs.values() if j.metric is not None]
    if not jobs:
        return "<p>no finished job yet</p>"
    x = _scale([j.stop_epoch for j in jobs] + [0], PAD, W - 10)
    y = _scale([j.metric for j in jobs], H - PAD, 10)
    body = []
    for trial in {j.trial_id for j in jobs}:
        own = sorted((j for j in jobs if j.trial_id == trial), key=lambda j: j.stop_epoch)
        if len(own) > 1:
            body.append("<polyline fill='none' stroke='#bbb' points='"
                        + " ".join(f"{x(j.stop_epoch):.1f},{y(j.metric):.1f}" for j in own) + "'/>")
    body += [f"<circle class='rung' cx='{x(j.stop_epoch):.1f}' cy='{y(j.metric):.1f}' r='4' "
             f"fill='{_COLOURS.get(j.status, '#555')}'><title>{html.escape(j.name)} {html.escape(j.place)}</title>"
             "</circle>" for j in jobs]
    return _svg("".join(body), "epochs trained (rung)", view.metric_name, "rungs")


def _schedules(view: RunView) -> str:
    """pbt: each numeric hyperparameter's value over epochs, one step line per member."""
    charts = []
    for name, values in list(_numeric(view).items())[:4]:
        by_trial: dict[int, list[tuple[int, int, float]]] = {}
        for job, value in values:
            by_trial.setdefault(job.trial_id, []).append((job.start_epoch, job.stop_epoch, value))
        x = _scale([e for segs in by_trial.values() for s, t, _ in segs for e in (s, t)], PAD, W - 10)
        y = _scale([v for segs in by_trial.values() for _, _, v in segs], H - PAD, 10)
        lines = "".join(
            f"<polyline class='schedule' fill='none' stroke='hsl({(trial * 67) % 360},60%,45%)' points='"
            + " ".join(f"{x(s):.1f},{y(v):.1f} {x(t):.1f},{y(v):.1f}" for s, t, v in sorted(segs)) + "'/>"
            for trial, segs in by_trial.items())
        charts.append(_svg(lines, "epoch", name, f"schedule-{len(charts)}"))
    return "".join(charts)
