"""The HTML report as a real browser (Debian's headless Chromium) builds it: every plot is
drawn by plotly with tick values and titles on its axes, the expected traces, legends and
colour bars, full parameter names, and the history of a run whose first job stayed best at
that job's value (not on the x axis). Checked on the DOM the browser built (--dump-dom after
plotly drew), not on our HTML text; screenshots go to the test's tmp folder.

The runs are made once per module (a random run whose first job stays best, hyperband, pbt,
their compare page, and a synthetic run with long parameter names), and each page is loaded
once: the tests read the cached DOM."""
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from conftest import FAKE_TRAINER, run_cli, write_json
from test_report_figures import long_names_view

from automl_cli.report import render_page, write_report
from automl_cli.report.common import figure_html
from automl_cli.report.page import plotly_js
from automl_cli.report.params import parallel_figure
from automl_cli.status import RunView

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# --disable-gpu leaves WebGL (the parallel coordinates' lines) to SwiftShader, in software;
# --virtual-time-budget lets plotly's asynchronous drawing finish before the DOM is dumped
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--virtual-time-budget=5000"]
FIRST_BEST = 0.875  # the fake trainer's score at lr 0.003 ("good") after 3 epochs: its peak


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: .ci/run installs Debian's chromium package")
        pytest.skip("chromium is not installed here (CI installs it)")
    return CHROMIUM


def make_mmar(root: Path, lr: float) -> Path:
    """conftest's fake MMAR (module-scoped here), its default lr set."""
    write_json(root / "config" / "config_train.json", {
        "epochs": 3, "sleep": 0.05,
        "fake": {"name": "Fake", "args": {"lr": lr, "choice": "good", "behaviour": "ok"},
                 "search": [
                     {"domain": "lr", "type": "float", "args": ["lr"], "targets": [0.0001, 0.1], "log": True},
                     {"domain": "net", "type": "enum", "args": ["choice"], "targets": [["good"], ["bad"]]}]}})
    write_json(root / "config" / "config_automl.json", {
        "controller": {"name": "random", "args": {"automl_max_recommendations": 6}},
        "executor": {"name": "MMARExecutor",
                     "args": {"train_command": f"{sys.executable} {FAKE_TRAINER} {{mmar}} {{epochs}}",
                              "grace_seconds": 5}},
        "metric": "val_mean_dice"})
    write_json(root / "config" / "environment.json", {"DATA_ROOT": "{MMAR_ROOT}/resources"})
    (root / "resources").mkdir()
    (root / "resources" / "data.bin").write_bytes(b"x" * 1000)
    (root / "models").mkdir()
    return root


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Node:
    def __init__(self, tag, attrs, parent):
        self.tag, self.attrs, self.parent, self.children, self.texts = tag, attrs, parent, [], []

    @property
    def classes(self):
        return set((self.attrs.get("class") or "").split())

    def walk(self):
        for child in self.children:
            yield child
            yield from child.walk()

    def find(self, cls=None, tag=None):
        return [n for n in self.walk() if (cls is None or cls in n.classes) and (tag is None or n.tag == tag)]

    def by_id(self, ident):
        return next((n for n in self.walk() if n.attrs.get("id") == ident), None)

    @property
    def text(self):
        return "".join(self.texts) + "".join(c.text for c in self.children)


class DOM(HTMLParser):
    """The browser's serialized DOM as a tree (script and style text left out)."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.root = self.current = Node("#root", {}, None)
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        node = Node(tag, dict(attrs), self.current)
        self.current.children.append(node)
        if tag not in VOID:
            self.current = node

    def handle_startendtag(self, tag, attrs):
        self.current.children.append(Node(tag, dict(attrs), self.current))

    def handle_endtag(self, tag):
        node = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.current = node.parent

    def handle_data(self, data):
        if self.current.tag not in ("script", "style"):
            self.current.texts.append(data)


class Page:
    def __init__(self, path: Path, dom: str, shot: Path):
        self.path, self.shot = path, shot
        self.root = DOM(dom).root

    def plot(self, ident):
        node = self.root.by_id(ident)
        assert node is not None and "js-plotly-plot" in node.classes, f"plot {ident} not drawn"
        return node


def load(browser, page: Path, name: str, shots: Path, height: int, title: str = "<title>automl report") -> Page:
    """One Chromium run: the DOM it built (stdout) and a screenshot of the page, `height` pixels tall."""
    shot = shots / f"{name}.png"
    dom = subprocess.run([browser, *FLAGS, f"--user-data-dir={shots / ('profile-' + name)}", "--dump-dom",
                          f"--screenshot={shot}", f"--window-size=1200,{height}", page.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "</html>" in dom.stdout and title in dom.stdout  # our page, not an error page
    assert shot.is_file()
    return Page(page, dom.stdout, shot)


@pytest.fixture(scope="module")
def pages(browser, tmp_path_factory):
    """name -> Page: the reports of three real runs, their compare page and a synthetic run."""
    base = tmp_path_factory.mktemp("report")
    mmar = make_mmar(base / "mmar", lr=0.003)  # the first job (the config's values) scores the peak: it stays best
    runs = {"first-best": ("random", []), "hb": ("hyperband", ["automl_R=3", "epoch_multiplier=1"]),
            "pbt": ("pbt", ["automl_population_size=4", "automl_eval_interval=1"])}
    for run_id, (algorithm, settings) in runs.items():
        result = run_cli("run", "-m", str(mmar), "--run-id", run_id, "--workers", "0:1", "--algorithm", algorithm,
                         *(["--set", *settings] if settings else []))
        assert result.returncode == 0, result.stderr
        run_dir = mmar / "automl" / run_id
        if run_id == "first-best":  # the command line once; the others in-process (its imports cost seconds)
            result = run_cli("report", "-m", str(mmar), "--run-id", run_id)
            assert result.returncode == 0 and str(run_dir.resolve() / "report.html") in result.stdout, result.stderr
        else:
            write_report(RunView.load(run_dir), run_dir, run_dir / "report.html")
    compare = run_cli("report", "-m", str(mmar), "--run-id", "first-best", "--run-id", "hb")
    compare_page = mmar.resolve() / "automl" / "compare-first-best-hb.html"
    assert compare.returncode == 0 and str(compare_page) in compare.stdout, compare.stdout + compare.stderr
    long_page = base / "long-names.html"
    long_page.write_text(render_page([long_names_view(count=12)]))
    alone = base / "parallel-only.html"  # the same figure alone, for the screenshot's pixels
    alone.write_text(f"<html><head><script>{plotly_js()}</script></head><body>"
                     f"{figure_html(parallel_figure(long_names_view(count=12)), 'parallel')}</body></html>")
    shots = base / "shots"
    found = {run_id: load(browser, mmar / "automl" / run_id / "report.html", run_id, shots, 4200) for run_id in runs}
    found["compare"] = load(browser, compare_page, "compare", shots, 2400)
    found["long"] = load(browser, long_page, "long", shots, 3600)
    found["parallel-only"] = load(browser, alone, "parallel-only", shots, 600, title="")
    few = base / "few-jobs.html"  # 5 jobs for 4 parameters
    few.write_text(render_page([long_names_view(count=5)]))
    found["few"] = load(browser, few, "few", shots, 3000)
    found["views"] = {run_id: RunView.load(mmar / "automl" / run_id) for run_id in runs}
    return found


def ticks(plot, axis: str) -> list[str]:
    """The tick labels plotly drew on one axis (x, y, x2, ...) of a plot."""
    return [t.text for t in plot.find(f"{axis}tick") if t.text.strip()]


def axis_names(plot) -> set[str]:
    return {cls[:-4] for node in plot.walk() for cls in node.classes if re.fullmatch(r"[xy]\d*tick", cls)}


def numbers(labels: list[str]) -> list[float]:
    return [float(label.replace("\u2212", "-")) for label in labels]


RUN_PLOTS = ["best-over-time", "learning-curves", "slices", "importance", "timeline"]
CARTESIAN = {"first-best": RUN_PLOTS,
             "hb": [p for p in RUN_PLOTS if p != "importance"],  # importance: 3 jobs at one budget, a warning
             "pbt": [*RUN_PLOTS, "schedules"],
             "compare": ["best-over-time", "learning-curves"], "long": RUN_PLOTS}


@pytest.mark.parametrize("name", list(CARTESIAN))
def test_every_plot_has_tick_values_and_titles_on_both_axes(pages, name):
    page = pages[name]
    for ident in CARTESIAN[name]:
        plot = page.plot(ident)
        axes = axis_names(plot)
        assert {"x", "y"} <= axes, (ident, axes)
        for axis in axes:
            assert len(ticks(plot, axis)) >= 2, (ident, axis, ticks(plot, axis))
        titles = {n.text for n in plot.walk() if any(re.fullmatch(r"[xy]\d*title", c) for c in n.classes)}
        titles.discard("")
        assert any(t for t in titles if "(" in t), (ident, titles)  # with its unit or direction
        x_titles = [n.text for n in plot.walk() if any(re.fullmatch(r"g-x\d*title", c) for c in n.classes)]
        y_titles = [n.text for n in plot.walk() if any(re.fullmatch(r"g-y\d*title", c) for c in n.classes)]
        assert any(x_titles) and any(y_titles), (ident, x_titles, y_titles)
        assert plot.find("gtitle") and plot.find("gtitle")[0].text  # the plot's own title
    assert page.shot.stat().st_size > 50_000  # a drawn page, not a blank one


def test_history_of_a_run_whose_first_job_stayed_best_shows_that_value(pages):
    view = pages["views"]["first-best"]
    first = view.jobs[1]
    assert first.metric == pytest.approx(FIRST_BEST) and view.best() is first  # the setting this test is about
    plot = pages["first-best"].plot("best-over-time")
    values = numbers(ticks(plot, "y"))
    assert min(values) <= FIRST_BEST <= max(values) + (values[1] - values[0]), values  # the axis reaches it
    assert min(values) > 0  # the axis spans the scores, not 0 to the best
    points = plot.find("point")
    assert len(points) == 2 * len([j for j in view.jobs.values() if j.metric is not None])  # both subplots
    # the best-so-far line: drawn in the upper part of the plot, where its value is, not on the x axis
    line = [t for t in plot.find("trace") if "scatter" in t.classes and t.find("js-line")][0]
    path = line.find("js-line")[0].attrs["d"]
    first_y = float(re.match(r"M[-\d.]+,([-\d.]+)", path).group(1))
    area = [n for n in plot.find("nsewdrag") if n.attrs.get("data-subplot") == "xy"][0]  # the left subplot's
    height = float(area.attrs["height"])
    assert first_y < 0.25 * height, (path, height)
    legend = [n.text for n in plot.find("legendtext")]
    assert "best so far" in legend and "completed job" in legend


def test_learning_curves_one_line_per_job_best_named_and_a_colour_bar(pages):
    view = pages["views"]["hb"]
    plot = pages["hb"].plot("learning-curves")
    lines = [t for t in plot.find("trace") if "scatter" in t.classes]
    with_curves = [j for j in view.jobs.values() if j.epochs]
    assert len(lines) >= len(with_curves) + 1  # a line per job, the marks of promotions, the colour bar's
    legend = [n.text for n in plot.find("legendtext")]
    best = view.leaderboard()[0]
    assert f"#1 {best.name}" in legend and "promoted" in legend
    assert plot.find("colorbar") and "val_mean_dice" in plot.find("cbtitle")[0].text
    assert len(ticks(plot.find("colorbar")[0], "y") or [t.text for t in plot.find("cbaxis")]) >= 1
    rungs = [n.text for n in plot.find("annotation-text")]
    assert any(text.startswith("rung") for text in rungs), rungs  # the rung epochs, as vertical lines


def test_parallel_coordinates_show_full_names_log_ticks_and_lines(pages):
    plot = pages["long"].plot("parallel")
    titles = plot.find("axis-title")
    full = [t.text for t in titles]  # the label as drawn: the tspans of its wrapped lines, joined
    assert full == ["Adam.learning_rate_of_the_optimizer (log)", "RandomAffined.rotation_range_in_degrees",
                    "SegAhnet.if_use_psp", "SegAhnet.final_activation", "val_mean_dice"]
    assert all(len(line.text) <= 20 for t in titles for line in t.children)  # wrapped, so they do not overlap
    lr_ticks = [t.text for t in plot.find("y-axis")[0].find("tick")]
    assert "1e-4" in lr_ticks and "1e-3" in lr_ticks  # a log axis labelled in decades
    assert {"true", "false"} <= {t.text for t in plot.find("y-axis")[2].find("tick")}  # choices as categories
    assert plot.find("cbtitle")[0].text == "val_mean_dice"
    assert plot.find("gl-canvas", tag="canvas")  # the lines: WebGL, drawn by SwiftShader in headless Chromium


def test_parallel_coordinates_lines_are_drawn(pages):
    """The DOM holds only the canvas: whether WebGL drew the lines shows on the screenshot."""
    for name in ("long", "parallel-only"):  # without WebGL plotly writes this in place of the plot
        assert "WebGL is not supported" not in pages[name].root.text
    pil = pytest.importorskip("PIL.Image", reason="Pillow reads the screenshot's pixels")
    # left of the colour bar, the plot alone on its page: the lines' Viridis greens and yellows
    # (a page without WebGL holds none: a grey box and blue text)
    pixels = np.asarray(pil.open(pages["parallel-only"].shot).convert("RGB").crop((0, 0, 950, 560))).astype(int)
    red, green, blue = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    greens = int(((green > red + 40) & (green > blue)).sum())
    yellows = int(((red > 200) & (green > 180) & (blue < 120)).sum())
    assert greens > 300 and yellows > 30, (greens, yellows)


def test_slices_have_log_x_for_log_parameters(pages):
    plot = pages["long"].plot("slices")
    assert {"1e-4", "1e-3"} <= set(ticks(plot, "x"))  # the lr slice, in decades
    assert {"true", "false"} <= set(ticks(plot, "x3"))
    titles = [n.text for n in plot.walk() if any(re.fullmatch(r"g-x\d*title", c) for c in n.classes)]
    assert "Adam.learning_rate_of_the_optimizer (log scale)" in titles


def test_importance_shows_intervals_or_warns(pages):
    plot = pages["long"].plot("importance")
    assert {"Adam.learning_rate_of_the_optimizer", "SegAhnet.if_use_psp"} <= set(ticks(plot, "y"))
    assert plot.find("errorbar") and len(plot.find("point")) == 4
    assert pages["first-best"].root.by_id("importance-warning") is None  # 6 jobs for 2 parameters: enough
    assert pages["first-best"].plot("importance")
    warning = pages["few"].root.by_id("importance-warning")  # 5 jobs for 4 parameters: no ranking
    assert warning is not None and warning.text.startswith("Too few finished jobs to rank the parameters: 5 job(s)")
    assert pages["few"].root.by_id("importance") is None
    hyperband = pages["hb"].root.by_id("importance-warning")  # rung 0's 3 jobs are not ranked with rung 1's
    assert hyperband is not None and "3 job(s) trained to 1 epochs" in hyperband.text


def test_worker_timeline_one_row_per_worker_with_utilisation(pages):
    view = pages["views"]["pbt"]
    plot = pages["pbt"].plot("timeline")
    assert set(ticks(plot, "y")) == {"W1", "W2"}
    assert len(plot.find("point")) == len(view.jobs)  # one bar per job
    assert re.search(r"utilisation \d+%", plot.find("gtitle")[0].text)


def test_pbt_schedules_per_member_and_exploits(pages):
    view = pages["views"]["pbt"]
    plot = pages["pbt"].plot("schedules")
    legend = [n.text for n in plot.find("legendtext")]
    members = sorted({j.trial_id for j in view.jobs.values()})
    assert [f"member {m}" for m in members] == [t for t in legend if t.startswith("member")]
    if any(j.copy_from is not None for j in view.jobs.values()):
        assert "exploit (copied weights)" in legend
    assert {"Fake.lr (log)", "Fake.choice"} <= {n.text for n in plot.walk() if any(
        re.fullmatch(r"g-y\d*title", c) for c in n.classes)}
    assert pages["pbt"].root.by_id("lineage") is not None


def test_compare_puts_both_runs_on_shared_axes(pages):
    page = pages["compare"]
    history = page.plot("best-over-time")
    legend = [n.text for n in history.find("legendtext")]
    assert {"first-best: best so far", "hb: best so far", "first-best: jobs", "hb: jobs"} <= set(legend)
    views = pages["views"]
    scored = sum(1 for run in ("first-best", "hb") for j in views[run].jobs.values() if j.metric is not None)
    assert len(history.find("point")) == 2 * scored
    curves = page.plot("learning-curves")
    assert {"first-best", "hb"} <= {n.text for n in curves.find("legendtext")}
    summary = page.root.by_id("summary")
    assert [row.find(tag="td")[0].text for row in summary.find(tag="tr")[1:]] == ["first-best", "hb"]
