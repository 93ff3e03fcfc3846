"""The report's figure builders, without a browser: what each figure holds (traces, axes,
log scales, the warning instead of a ranking, the workers' utilisation, runs compared on one
axis). `synthetic_view` builds a RunView from a few lines of job data, as the journal would."""
import math

import numpy as np
import pytest

from automl_cli.report import render_page
from automl_cli.report.common import columns
from automl_cli.report.curves import curves_figure
from automl_cli.report.history import history_figure
from automl_cli.report.importance import importance_figure, too_few
from automl_cli.report.params import parallel_figure, slices_figure, wrap
from automl_cli.report.pbt import pbt_figure
from automl_cli.report.timeline import timeline_figure, utilisation
from automl_cli.status import RunView
from automl_cli.store import Event

LONG_SPACE = [
    {"name": "Adam.learning_rate_of_the_optimizer", "type": "float",
     "spec": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True, "choices": None}},
    {"name": "RandomAffined.rotation_range_in_degrees", "type": "float",
     "spec": {"type": "float", "low": 0.0, "high": 30.0, "log": False, "choices": None}},
    {"name": "SegAhnet.if_use_psp+final_activation", "type": "enum",
     "spec": {"type": "enum", "log": False, "choices": [[True, "softmax"], [False, "sigmoid"]]}},
]


def synthetic_view(jobs, *, space=None, algorithm="random", run_id="syn", workers=("W1", "W2"),
                   direction="maximize", start=1000.0):
    """A RunView from job dicts: params, curve (metric per epoch from start_epoch+1), worker,
    started/ended (seconds after the run's start), and optional status, trial, rung, bracket,
    start_epoch, copy_from (job id). Job ids count from 1."""
    events = [(start, "run_started", {"run_id": run_id, "algorithm": algorithm, "metric": "val_mean_dice",
                                      "direction": direction, "workers": [{"name": w, "gpus": [i]}
                                                                          for i, w in enumerate(workers)],
                                      "space": space or []})]
    for job_id, job in enumerate(jobs, start=1):
        first = job.get("start_epoch", 0)
        curve = job["curve"]
        t0, t1 = start + job["started"], start + job["ended"]
        events.append((t0, "job_started", {
            "job_id": job_id, "name": f"{job['worker']}_1_J{job_id}", "trial_id": job.get("trial", job_id),
            "worker": job["worker"], "gpus": [0], "params": job["params"], "start_epoch": first,
            "stop_epoch": first + len(curve), "bracket": job.get("bracket"), "rung": job.get("rung"),
            "copy_from_job": job.get("copy_from"), "note": job.get("note", "")}))
        for index, value in enumerate(curve):
            epoch = first + index + 1
            events.append((t0 + (t1 - t0) * (index + 1) / (len(curve) + 1), "metrics",
                           {"job_id": job_id, "epoch": epoch, "values": {"val_mean_dice": value}}))
        events.append((t1, "job_finished", {"job_id": job_id, "status": job.get("status", "completed")}))
    view = RunView()
    for seq, (time, kind, data) in enumerate(sorted(events, key=lambda e: e[0]), start=1):
        view.apply(Event(seq, time, kind, data))
    return view


def long_names_view(count=8, run_id="syn", algorithm="random"):
    rng = np.random.default_rng(1)
    jobs = []
    for i in range(count):
        lr = float(10 ** rng.uniform(-5, -1))
        rotation = float(rng.uniform(0, 30))
        choice = [True, "softmax"] if i % 2 else [False, "sigmoid"]
        quality = 0.2 + 0.7 * (math.log10(lr) + 5) / 4 * (1.0 if choice[0] else 0.8)  # lr matters most
        jobs.append({"params": {"Adam.learning_rate_of_the_optimizer": lr,
                                "RandomAffined.rotation_range_in_degrees": rotation,
                                "SegAhnet.if_use_psp+final_activation": choice},
                     "curve": [quality * (1 - 0.5 ** e) for e in (1, 2, 3)], "worker": "W1" if i % 2 == 0 else "W2",
                     "started": 10.0 * (i // 2), "ended": 10.0 * (i // 2) + 9.0,
                     "status": "stopped" if i == 3 else "completed"})
    return synthetic_view(jobs, space=LONG_SPACE, run_id=run_id, algorithm=algorithm)


def test_history_has_every_finished_job_and_the_best_so_far_over_time_and_count():
    view = long_names_view()
    figure = history_figure([view])
    points = [t for t in figure.data if t.mode == "markers"]
    assert sum(len(t.y) for t in points) == 2 * 8  # each job once per subplot
    assert {t.name for t in points} == {"completed job", "stopped job"}
    hover = points[0].hovertext[0]  # the job, its parameters and epochs
    assert "W1_1_J1" in hover and "Adam.learning_rate_of_the_optimizer = " in hover and "epochs 0-3" in hover
    best = [t for t in figure.data if t.name == "best so far"]
    assert len(best) == 2 and {t.xaxis for t in best} == {"x", "x2"}
    assert list(best[1].y) == list(np.maximum.accumulate([j.metric for j in sorted(
        view.jobs.values(), key=lambda j: j.ended)]))
    assert "(s)" in figure.layout.xaxis.title.text and figure.layout.yaxis.title.text.startswith("val_mean_dice")


def test_history_when_the_first_job_stays_best_is_drawn_at_its_value():
    view = synthetic_view([{"params": {"x": 1.0}, "curve": [0.9], "worker": "W1", "started": 0, "ended": 1},
                           {"params": {"x": 2.0}, "curve": [0.5], "worker": "W1", "started": 1, "ended": 2},
                           {"params": {"x": 3.0}, "curve": [0.6], "worker": "W1", "started": 2, "ended": 3}])
    best = [t for t in history_figure([view]).data if t.name == "best so far"][0]
    assert list(best.y) == [0.9, 0.9, 0.9]


def test_compare_puts_every_run_on_the_same_axes():
    views = [long_names_view(run_id=name, algorithm=name) for name in ("random", "bohb", "asha")]
    figure = history_figure(views)
    assert {t.legendgroup for t in figure.data} == {"random", "bohb", "asha"}
    assert {t.xaxis for t in figure.data} == {"x", "x2"}  # two subplots, shared by the runs
    curves = curves_figure(views)
    assert {t.legendgroup for t in curves.data if t.mode != "markers" or t.legendgroup} >= {"random", "bohb", "asha"}
    assert [t.name for t in curves.data if t.showlegend and t.legendgroup in ("random", "bohb", "asha")] == [
        "random", "bohb", "asha"]
    page = render_page(views)
    assert page.count("</body>") == 1 and "id='summary'" in page
    assert all(f"<td>{name}</td>" in page for name in ("random", "bohb", "asha"))


def test_learning_curves_one_line_per_job_a_colour_bar_and_the_best_named():
    view = long_names_view()
    figure = curves_figure([view])
    lines = [t for t in figure.data if t.legendgroup and t.legendgroup.startswith("W")]
    assert len(lines) == 8
    assert len({t.line.color for t in lines}) > 4  # coloured by score, not one colour
    assert sum(1 for t in lines if t.showlegend) == 5 and all(t.name.startswith("#") for t in lines if t.showlegend)
    assert any(t.marker.showscale for t in figure.data)  # the colour bar
    assert [t.name for t in figure.data if t.name == "stopped"] == ["stopped"]


def test_learning_curves_mark_rungs_and_promotions():
    jobs = [{"params": {"x": float(i)}, "curve": [0.1 * i], "worker": "W1", "started": i, "ended": i + 1,
             "rung": 0, "bracket": 0, "trial": i} for i in range(1, 4)]
    jobs.append({"params": {"x": 3.0}, "curve": [0.5, 0.6], "worker": "W1", "started": 5, "ended": 7, "rung": 1,
                 "bracket": 0, "trial": 3, "start_epoch": 1})
    figure = curves_figure([synthetic_view(jobs, algorithm="hyperband")])
    assert sorted(shape.x0 for shape in figure.layout.shapes) == [1, 3]
    assert [len(t.x) for t in figure.data if t.name == "promoted"] == [1]
    continued = [t for t in figure.data if t.legendgroup == "W1_1_J4"][0]
    assert list(continued.x) == [1, 2, 3]  # joined to the rung it was promoted from


def test_parallel_coordinates_full_names_log_axes_and_categories():
    figure = parallel_figure(long_names_view())
    dims = figure.data[0].dimensions
    labels = [d.label.replace("<br>", "") for d in dims]
    assert labels == ["Adam.learning_rate_of_the_optimizer (log)", "RandomAffined.rotation_range_in_degrees",
                      "SegAhnet.if_use_psp", "SegAhnet.final_activation", "val_mean_dice"]
    lr = dims[0]
    assert -5 <= min(lr.values) and max(lr.values) <= -1  # log10 of the values
    assert "1e-4" in lr.ticktext or "1e-3" in lr.ticktext
    assert list(dims[3].ticktext) == ["softmax", "sigmoid"] and list(dims[2].ticktext) == ["true", "false"]
    assert all(len(line) <= 20 for d in dims for line in d.label.split("<br>"))


def test_wrap_breaks_names_at_dots_and_underscores_and_keeps_every_character():
    assert wrap("SegAhnet.if_use_psp+final_activation").replace("<br>", "") == "SegAhnet.if_use_psp+final_activation"
    assert "<br>" in wrap("Adam.learning_rate_of_the_optimizer")


def test_slices_use_log_x_for_log_parameters():
    figure = slices_figure(long_names_view())
    assert figure.layout.xaxis.type == "log" and figure.layout.xaxis2.type != "log"
    assert figure.layout.xaxis3.type == "category"


def test_log_is_inferred_from_the_range_when_the_space_is_not_recorded():
    view = synthetic_view([{"params": {"lr": 10 ** -i, "width": 10.0 + i}, "curve": [0.1 * i], "worker": "W1",
                            "started": i, "ended": i + 1} for i in range(1, 6)])
    found = {c.name: c for c in columns(view)}
    assert found["lr"].log and found["lr"].log_inferred and not found["width"].log
    labels = [d.label for d in parallel_figure(view).data[0].dimensions]
    assert labels[0] == "lr (log, guessed)" and labels[1] == "width"  # the page says it is a guess
    assert slices_figure(view).layout.xaxis.type == "log"


def test_history_says_how_many_finished_jobs_it_cannot_draw():
    view = synthetic_view([{"params": {"x": 1.0}, "curve": [0.5], "worker": "W1", "started": 0, "ended": 1},
                           {"params": {"x": 2.0}, "curve": [], "worker": "W1", "started": 1, "ended": 2,
                            "status": "failed"}])
    figure = history_figure([view])
    assert "(1 finished without a score: not drawn)" in figure.layout.title.text
    assert sum(len(t.y) for t in figure.data if t.mode == "markers") == 2


def test_importance_warns_instead_of_ranking_with_too_few_jobs():
    few = long_names_view(count=5)  # 4 parameters (the grouped enum has two args): 8 jobs needed
    assert "Too few finished jobs" in too_few(few) and importance_figure(few) is None
    page = render_page([few])
    assert "id='importance-warning'" in page and "id=\"importance\"" not in page


def test_importance_has_an_interval_per_parameter():
    figure = importance_figure(long_names_view(count=12))
    bar = figure.data[0]
    assert len(bar.y) == 4 and bar.error_x.array is not None and bar.error_x.arrayminus is not None
    assert all(low >= 0 and high >= 0 for low, high in zip(bar.error_x.arrayminus, bar.error_x.array))
    assert bar.y[-1] == "Adam.learning_rate_of_the_optimizer"  # the one that matters, on top


def test_timeline_and_utilisation():
    view = synthetic_view([{"params": {"x": 1.0}, "curve": [0.5], "worker": "W1", "started": 0, "ended": 10},
                           {"params": {"x": 2.0}, "curve": [0.4], "worker": "W2", "started": 0, "ended": 5,
                            "status": "failed"}])
    assert utilisation(view) == pytest.approx(0.75)
    figure = timeline_figure(view)
    assert "utilisation 75%" in figure.layout.title.text
    assert sorted(t.name for t in figure.data) == ["completed job", "failed job"]
    assert list(figure.data[0].base) == [0.0] and list(figure.data[0].x) == [10.0]


def test_pbt_schedule_per_member_and_exploits():
    jobs = []
    for member, lr in ((1, 1e-3), (2, 1e-2)):
        jobs.append({"params": {"lr": lr}, "curve": [0.2 * member], "worker": f"W{member}", "started": 0, "ended": 1,
                     "trial": member})
    jobs.append({"params": {"lr": 1e-3}, "curve": [0.3], "worker": "W1", "started": 1, "ended": 2, "trial": 1,
                 "start_epoch": 1})
    jobs.append({"params": {"lr": 1.2e-3}, "curve": [0.5], "worker": "W2", "started": 1, "ended": 2, "trial": 2,
                 "start_epoch": 1, "copy_from": 1})
    figure = pbt_figure(synthetic_view(jobs, algorithm="pbt",
                                       space=[{"name": "lr", "spec": {"type": "float", "log": True}}]))
    members = [t for t in figure.data if t.name.startswith("member")]
    assert [t.name for t in members] == ["member 1", "member 2"]
    assert list(members[1].x) == [0, 1, 1, 2] and list(members[1].y) == [1e-2, 1e-2, 1.2e-3, 1.2e-3]
    exploit = [t for t in figure.data if t.name.startswith("exploit")][0]
    assert list(exploit.x) == [1, 1, None] and list(exploit.y) == [1e-3, 1.2e-3, None]
    assert figure.layout.yaxis.type == "log"


def test_page_embeds_plotly_once_and_says_when_it_is_live():
    page = render_page([long_names_view()], refresh_seconds=5)
    assert page.count("</body>") == 1 and page.count("<script type='text/javascript'>/**") <= 1
    assert page.count("Plotly.newPlot") == 6  # history, curves, parallel, slices, importance, timeline
    assert "live: refreshed every 5 s" in page
    assert "id='live'" not in render_page([long_names_view()])


def test_a_run_without_jobs_yet_renders_with_notes_in_place_of_plots():
    view = synthetic_view([])
    page = render_page([view], refresh_seconds=2)
    assert page.count("</body>") == 1 and "Plotly.newPlot" not in page
    assert "id='best-over-time-none'" in page and "No finished job yet: nothing to rank." in page


def test_a_minimized_metric_keeps_the_lowest_so_far():
    view = synthetic_view([{"params": {"x": float(i)}, "curve": [value], "worker": "W1", "started": i, "ended": i + 1}
                           for i, value in enumerate([0.5, 0.7, 0.3, 0.4])], direction="minimize")
    best = [t for t in history_figure([view]).data if t.name == "best so far"][0]
    assert list(best.y) == [0.5, 0.5, 0.3, 0.3]
    assert "lower is better" in history_figure([view]).layout.yaxis.title.text
    assert parallel_figure(view).data[0].line.reversescale  # the best colour still means the best job


def test_importance_compares_jobs_of_one_budget_and_names_a_parameter_that_never_varied():
    jobs = [{"params": {"x": float(i), "fixed": 1.0}, "curve": [0.1 * i], "worker": "W1", "started": i,
             "ended": i + 1, "rung": 0, "bracket": 0} for i in range(1, 7)]
    jobs += [{"params": {"x": float(i), "fixed": 1.0}, "curve": [0.1 * i, 0.2 * i, 0.3 * i], "worker": "W2",
              "started": 10 + i, "ended": 11 + i, "rung": 1, "bracket": 0} for i in (5, 6)]
    view = synthetic_view(jobs, algorithm="hyperband")
    figure = importance_figure(view)
    assert "the 6 jobs trained to 1 epochs" in figure.layout.title.text  # the rung-0 scores, not mixed with rung 1
    assert "fixed (one value: not varied)" in figure.data[0].y
    few = synthetic_view(jobs[:3] + jobs[6:], algorithm="hyperband")
    assert "3 job(s) trained to 1 epochs for 2 parameter(s)" in too_few(few)


def test_an_inactive_value_sits_below_its_axis_labelled():
    jobs = [{"params": {"lr": 10 ** -i, "net": ["a" if i % 2 else "b"]}, "curve": [0.1 * i], "worker": "W1",
             "started": i, "ended": i + 1} for i in range(1, 5)]
    jobs.append({"params": {"lr": 1e-3}, "curve": [0.2], "worker": "W1", "started": 6, "ended": 7})  # net inactive
    space = [{"name": "lr", "spec": {"type": "float", "log": True}},
             {"name": "net", "spec": {"type": "enum", "log": False, "choices": [["a"], ["b"]]}}]
    dims = parallel_figure(synthetic_view(jobs, space=space)).data[0].dimensions
    net = dims[1]
    assert list(net.ticktext) == ["(inactive)", "a", "b"] and net.values[-1] == net.tickvals[0]
    assert net.range[0] < net.tickvals[0]


def test_the_page_says_what_the_search_gained_over_the_config_as_written():
    jobs = [{"params": {"lr": 0.01}, "curve": [0.5, 0.6], "worker": "W1", "started": 0, "ended": 10,
             "note": "the config's own values"},
            {"params": {"lr": 0.003}, "curve": [0.6, 0.75], "worker": "W2", "started": 0, "ended": 12},
            {"params": {"lr": 0.1}, "curve": [0.2, 0.3], "worker": "W1", "started": 10, "ended": 20}]
    page = render_page([synthetic_view(jobs)])
    line = page.split("<p id='baseline'>")[1].split("</p>")[0]
    assert "The config as written (trial 1, W1_1_J1): val_mean_dice 0.6 after 2 epoch(s)" in line
    assert "W2_1_J2: 0.75, 0.15 higher (25.0%): what the search gained" in line
    # still the best: said so, no gain claimed
    jobs[0]["curve"] = [0.5, 0.9]
    line = render_page([synthetic_view(jobs)]).split("<p id='baseline'>")[1].split("</p>")[0]
    assert line.endswith("the search has not beaten it (yet).")
    # a run without the config's own values first says nothing about it
    jobs[0]["note"] = ""
    assert "id='baseline'" not in render_page([synthetic_view(jobs)])
