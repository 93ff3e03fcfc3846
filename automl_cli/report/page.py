"""The report page: one self-contained HTML file, plotly.js inline once (it opens offline),
then the tables and one <div> per figure with a stable id. One run, or several on shared
axes (compare)."""
from __future__ import annotations

import html
from functools import lru_cache

from ..durations import format_duration
from ..status import JobView, RunView, format_params, ranked
from .common import figure_html
from .curves import curves_figure
from .history import history_figure
from .importance import importance_figure, too_few
from .params import parallel_figure, slices_figure
from .pbt import is_population, pbt_figure
from .timeline import timeline_figure

STYLE = ("body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;margin-bottom:1em}"
         "td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px;text-align:left}"
         ".warning{background:#fff4e0;border:1px solid #e08a1e;padding:6px 10px}.plot{margin-bottom:1.5em}"
         "#live{color:#27ae60}")


@lru_cache(maxsize=1)
def plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def render_page(views: list[RunView], refresh_seconds: float | None = None) -> str:
    """The whole report page for one run, or several runs on shared axes (compare); the
    dashboard serves the same page (and adds its own polling script before </body>)."""
    compare = len(views) > 1
    ids = ", ".join(v.run_id for v in views)
    sections = [f"<h1>AutoML {'runs compared: ' if compare else 'run '}{html.escape(ids)}</h1>"]
    if refresh_seconds is not None:
        sections.append(f"<p id='live'>live: refreshed every {refresh_seconds:g} s</p>")
    if compare:
        sections += _compare_sections(views)
    else:
        sections += _run_sections(views[0])
    body = "\n".join(sections)
    return ("<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>automl report {html.escape(ids)}</title><style>{STYLE}</style>"
            f"<script type='text/javascript'>{plotly_js()}</script></head><body>\n{body}\n</body></html>")


def _figure(figure, div_id: str, missing: str) -> str:
    if figure is None:
        return f"<p id='{div_id}-none'>{html.escape(missing)}</p>"
    return f"<div class='plot'>{figure_html(figure, div_id)}</div>"


def _run_sections(view: RunView) -> list[str]:
    board = view.leaderboard()
    sections = [
        f"<p>{html.escape(str(view.settings.get('algorithm', '?')))} · metric {html.escape(view.metric_name)} "
        f"({html.escape(str(view.settings.get('direction', '?')))}) · status {html.escape(view.status)} · "
        f"{len(view.jobs)} jobs</p>",
        _baseline(view),
        "<h2>Leaderboard</h2>", _leaderboard(view, board),
        "<h2>Best metric over time</h2>",
        _figure(history_figure([view]), "best-over-time", "no finished job yet"),
        "<h2>Learning curves</h2>", _figure(curves_figure([view]), "learning-curves", "no metrics yet"),
        "<h2>Hyperparameters against the metric</h2>",
        _figure(parallel_figure(view), "parallel", "no finished job yet"),
        _figure(slices_figure(view), "slices", "no finished job yet"),
        "<h2>Parameter importance</h2>",
    ]
    warning = too_few(view)
    sections.append(f"<p id='importance-warning' class='warning'>{html.escape(warning)}</p>" if warning
                    else _figure(importance_figure(view), "importance", "no importance"))
    sections += ["<h2>Workers</h2>", _figure(timeline_figure(view), "timeline", "no job yet")]
    if is_population(view):
        sections += ["<h2>Hyperparameter schedules (pbt)</h2>",
                     _figure(pbt_figure(view), "schedules", "no job yet")]
    lineage = _lineage(view, board[0]) if board else ""
    if lineage:
        sections += ["<h2>Lineage of the best job</h2>", lineage]
    return sections


def _baseline(view: RunView) -> str:
    """What the search gained over the configuration as written in config_train.json (the
    run's first trial with automl_start_from_config), scored at its deepest training."""
    from ..algorithms.schedulers.base import Scheduler

    start = [j for j in view.jobs.values() if j.note.startswith(Scheduler.START_NOTE)]
    if not start:
        return ""
    trial, written = start[0].trial_id, start[0].params
    # the trial's jobs with those values (PBT's member 1 changes them once it exploits)
    scored = [j for j in view.jobs.values()
              if j.trial_id == trial and j.params == written and j.metric is not None and j.status != "failed"]
    if not scored:
        return f"<p id='baseline'>The config as written (trial {trial}) has no score yet.</p>"
    own = ranked(scored, max(j.epoch for j in scored), view.maximize)[0]  # its deepest training's best
    mine = f"The config as written (trial {trial}, {own.name}): {view.metric_name} {own.metric:.4g} after {own.epoch} " \
           "epoch(s)"
    best = view.best()
    if best is None or (best.trial_id == trial and best.params == written):
        return f"<p id='baseline'>{html.escape(mine)}; the search has not beaten it (yet).</p>"
    gain = abs(best.metric - own.metric)
    share = f" ({gain / abs(own.metric):.1%})" if own.metric else ""
    fewer = "" if own.epoch >= best.epoch else \
        f"; it was trained {own.epoch} epoch(s), the best {best.epoch}, so part of the gain is training"
    return (f"<p id='baseline'>{html.escape(mine)}. The best, {html.escape(best.name)}: {best.metric:.4g}, "
            f"{gain:.4g} {'higher' if view.maximize else 'lower'}{share}: what the search gained"
            f"{html.escape(fewer)}.</p>")


def _compare_sections(views: list[RunView]) -> list[str]:
    metrics = {v.metric_name for v in views}
    sections = ["<h2>Runs</h2>", _summary(views)]
    if len(metrics) > 1:
        names = html.escape(", ".join(sorted(metrics)))
        sections.append(f"<p class='warning'>The runs score different metrics ({names}):"
                        " their shared axes compare unlike numbers.</p>")
    sections += ["<h2>Best metric over time</h2>",
                 _figure(history_figure(views), "best-over-time", "no finished job yet"),
                 "<h2>Learning curves</h2>", _figure(curves_figure(views), "learning-curves", "no metrics yet")]
    for view in views:
        sections += [f"<h2>Leaderboard of {html.escape(view.run_id)}</h2>",
                     _leaderboard(view, view.leaderboard(), ident=f"leaderboard-{view.run_id}")]
    return sections


def _summary(views: list[RunView]) -> str:
    rows = []
    for view in views:
        best = view.best()
        span = max((j.ended or j.started for j in view.jobs.values()), default=view.started) - view.started
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in (
            view.run_id, view.settings.get("algorithm", "?"), view.status, len(view.jobs),
            sum(1 for j in view.jobs.values() if j.status == "completed"),
            "-" if best is None else f"{best.metric:.4f}", "-" if best is None else best.name,
            format_duration(round(max(0.0, span), 1)))) + "</tr>")
    return ("<table id='summary'><tr><th>run</th><th>algorithm</th><th>status</th><th>jobs</th><th>completed</th>"
            "<th>best</th><th>best job</th><th>wall time</th></tr>" + "".join(rows) + "</table>")


def _leaderboard(view: RunView, board: list[JobView], rows: int = 10, ident: str = "leaderboard") -> str:
    """The best `rows` jobs; the others (up to 200) folded away below them."""
    head = (f"<tr><th>rank</th><th>job</th><th>{html.escape(view.metric_name)}</th><th>epoch</th><th>status</th>"
            "<th>params</th></tr>")

    def body(start: int, jobs: list[JobView]) -> str:
        return "".join(f"<tr><td>{i}</td><td>{html.escape(j.name)}</td><td>{j.metric:.4f}</td><td>{j.best_epoch}</td>"
                       f"<td>{html.escape(j.status)}</td><td>{html.escape(format_params(j.params))}</td></tr>"
                       for i, j in enumerate(jobs, start=start))
    table = f"<table id='{html.escape(ident)}'>{head}{body(1, board[:rows])}</table>"
    rest = board[rows:200]
    if rest:
        table += (f"<details><summary>the next {len(rest)} jobs</summary><table>{head}{body(rows + 1, rest)}"
                  "</table></details>")
    return table


def _lineage(view: RunView, best: JobView) -> str:
    chain = view.lineage(best)
    if len(chain) < 2:
        return ""
    rows = "".join(f"<tr><td>{html.escape(j.name)}</td><td>{j.trial_id}</td><td>{j.start_epoch}-{j.stop_epoch}</td>"
                   f"<td>{html.escape(format_params(j.params))}</td><td>{html.escape(j.note)}</td></tr>" for j in chain)
    return (f"<table id='lineage'><tr><th>job</th><th>trial</th><th>epochs</th><th>params</th><th>why</th></tr>"
            f"{rows}</table>")
