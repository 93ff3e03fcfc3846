"""What every figure of the report shares: outcome colours, the plotly layout (axes with
ticks and titled with their units), the run's parameters as plottable columns (log flags
from the run's recorded search space), and the figure-to-HTML step."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from ..status import JobView, RunView, arg_names, flat_values

OUTCOME_COLOURS = {"completed": "#2b7bba", "stopped": "#e08a1e", "failed": "#c0392b", "interrupted": "#888888",
                   "running": "#27ae60", "retried": "#aaaaaa"}
RUN_COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"]
SCORE_SCALE = "Viridis"


def axis(title: str, **extra: Any) -> dict[str, Any]:
    """An axis as every plot of the report draws it: its title, a frame line, outside ticks with values."""
    return {"title": {"text": title}, "showline": True, "linecolor": "#444", "ticks": "outside",
            "showticklabels": True, "mirror": True, "zeroline": False, "gridcolor": "#e5e5e5", **extra}


def layout(title: str, height: int = 420, **extra: Any) -> dict[str, Any]:
    return {"title": {"text": title, "x": 0.01, "xanchor": "left", "font": {"size": 15}}, "height": height,
            "template": "plotly_white", "margin": {"l": 70, "r": 30, "t": 60, "b": 60},
            "hoverlabel": {"namelength": -1}, **extra}


def metric_title(view: RunView) -> str:
    """The metric axis's title: the name and which way is better (a score has no unit)."""
    return f"{view.metric_name} ({'higher' if view.maximize else 'lower'} is better)"


def time_unit(span_seconds: float) -> tuple[str, float]:
    """The unit wall times are shown in, and seconds per unit."""
    if span_seconds < 600:
        return "s", 1.0
    if span_seconds < 3 * 3600:
        return "min", 60.0
    return "h", 3600.0


def scored(view: RunView) -> list[JobView]:
    """Finished jobs with a score (failed ones included when they scored an epoch), in end order."""
    return sorted((j for j in view.jobs.values() if j.ended is not None and j.metric is not None
                   and math.isfinite(j.metric)), key=lambda j: (j.ended, j.job_id))


def job_hover(view: RunView, job: JobView) -> str:
    """A job's hover text: name, outcome, score, epochs and parameters, one per line."""
    score = "-" if job.metric is None else f"{job.metric:.4g}"
    lines = [f"<b>{job.name}</b> ({job.status})", f"{view.metric_name}: {score} at epoch {job.best_epoch}",
             f"epochs {job.start_epoch}-{job.stop_epoch}" + (f", {job.place}" if job.rung is not None else "")]
    lines += [f"{name} = {_short(value)}" for name, value in flat_values(job.params, view.value_widths).items()]
    return "<br>".join(lines)


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return json.dumps(value) if not isinstance(value, str) else value


@dataclass
class Column:
    """One parameter as a plot axis: numbers (log or not) or categories, per job."""
    name: str
    values: dict[int, Any] = field(default_factory=dict)  # job_id -> value (absent: inactive)
    log: bool = False
    categories: list[str] | None = None  # choices (as text), for a categorical column
    log_inferred: bool = False  # the space record said nothing: log guessed from the range

    def number(self, job_id: int) -> float | None:
        """The value as a plotted number: log10 for a log axis, the choice's index for a category."""
        value = self.values.get(job_id)
        if value is None:
            return None
        if self.categories is not None:
            return float(self.categories.index(category(value)))
        return math.log10(value) if self.log else float(value)


def category(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def space_specs(view: RunView) -> dict[str, dict[str, Any]]:
    """Each column's spec as the run_started record keeps it (type, low/high, log, choices);
    each arg of a grouped enum gets the enum's spec with that arg's choices."""
    specs = {}
    for param in view.settings.get("space", []):
        spec = param.get("spec") or {"type": param.get("type")}
        width = view.value_widths.get(param["name"], 1)
        if width > 1 and spec.get("choices"):
            for index, name in enumerate(arg_names(param["name"], width)):
                specs[name] = {**spec, "choices": [[choice[index]] for choice in spec["choices"]]}
        else:
            specs[param["name"]] = spec
    return specs


def columns(view: RunView, jobs: list[JobView] | None = None) -> list[Column]:
    """The run's parameters as plot columns, in the space's order (one per arg of a grouped enum).

    Log axes come from the search space the run recorded (run_started's `space`, `spec.log`).
    A journal without that record (an older run, or a parameter the space does not name) gets
    a log axis when all its values are positive and span more than two decades: inferred, and
    the column says so (`log_inferred`)."""
    jobs = list(view.jobs.values()) if jobs is None else jobs
    specs = space_specs(view)
    out = []
    for name in view.value_columns():
        column = Column(name)
        for job in jobs:
            value = flat_values(job.params, view.value_widths).get(name)
            if value is not None:
                column.values[job.job_id] = value
        values = list(column.values.values())
        if not values:
            continue
        spec = specs.get(name)
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        if not numeric or (spec is not None and spec.get("choices")):
            seen: list[str] = []
            choices = (spec or {}).get("choices") or []
            for choice in choices:  # the space's order of the choices, then any other value seen
                text = category(choice[0] if isinstance(choice, list) and len(choice) == 1 else choice)
                if text not in seen:
                    seen.append(text)
            for value in values:
                if category(value) not in seen:
                    seen.append(category(value))
            column.categories = seen
        elif spec is not None and "log" in spec:
            column.log = bool(spec.get("log")) and min(values) > 0
        else:  # no space record for it: a positive range over more than two decades reads as log
            column.log = min(values) > 0 and max(values) / min(values) > 100
            column.log_inferred = column.log
        out.append(column)
    return out


def log_ticks(low: float, high: float) -> tuple[list[float], list[str]]:
    """Tick positions (log10 units) and labels (1e-4, 3e-4, ...) for a log axis drawn in log10."""
    first, last = math.floor(low), math.ceil(high)
    values, labels = [], []
    for exponent in range(first, last + 1):
        for mantissa in ((1, 3) if last - first <= 4 else (1,)):
            value = math.log10(mantissa) + exponent
            if low - 0.3 <= value <= high + 0.3:
                values.append(value)
                plain = -2 <= exponent <= 3
                labels.append(f"{mantissa * 10.0 ** exponent:g}" if plain else f"{mantissa}e{exponent}")
    return values, labels


def figure_html(figure, div_id: str) -> str:
    """One figure as a <div> and its script; plotly.js itself is on the page once (page.py)."""
    return figure.to_html(full_html=False, include_plotlyjs=False, div_id=div_id,
                          config={"displaylogo": False, "responsive": True})


def log_axis(values: list[float]) -> dict[str, Any]:
    """A log axis for these (positive) values with readable ticks (1e-4, 3e-4, 0.001, ...):
    plotly's own minor labels ("2", "5" between decades) read as values."""
    present = [math.log10(v) for v in values if isinstance(v, (int, float)) and v > 0]
    if not present:
        return {"type": "log"}
    positions, labels = log_ticks(min(present), max(present))
    return {"type": "log", "tickvals": [10 ** p for p in positions], "ticktext": labels}
