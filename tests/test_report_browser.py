"""The HTML report renders in a real browser (Debian's headless Chromium): the page loads
and every plot holds drawn marks."""
import os
import shutil
import subprocess
from html.parser import HTMLParser

import pytest

from conftest import run_cli

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def browser():
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: .ci/run installs Debian's chromium package")
        pytest.skip("chromium is not installed here (CI installs it)")
    return CHROMIUM


class Marks(HTMLParser):
    """Per svg id, how many drawn marks (lines with points, dots) it holds."""

    def __init__(self):
        super().__init__()
        self.current, self.marks, self.errors = None, {}, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "svg":
            self.current = attrs.get("id")
            self.marks[self.current] = 0
        elif self.current and ((tag == "polyline" and attrs.get("points", "").strip()) or tag == "circle"):
            self.marks[self.current] += 1

    def handle_endtag(self, tag):
        if tag == "svg":
            self.current = None


@pytest.mark.parametrize("algorithm, settings, expected", [
    ("hyperband", ["automl_R=3", "epoch_multiplier=1"], {"best-over-time", "learning-curves", "parallel", "rungs"}),
    ("pbt", ["automl_population_size=4", "automl_eval_interval=1"],
     {"best-over-time", "learning-curves", "parallel", "schedule-0"}),
])
def test_report_loads_in_chromium_with_every_plot_drawn(fake_mmar, tmp_path, browser, algorithm, settings, expected):
    assert run_cli("run", "-m", str(fake_mmar), "--run-id", "r", "--workers", "0:1", "--algorithm", algorithm,
                   "--set", *settings).returncode == 0
    assert run_cli("report", "-m", str(fake_mmar), "--run-id", "r").returncode == 0
    page = fake_mmar / "automl" / "r" / "report.html"
    profile = tmp_path / "profile"
    dom = subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "</html>" in dom.stdout and "ERR_" not in dom.stdout
    marks = Marks()
    marks.feed(dom.stdout)  # the DOM as the browser built it, not our text
    assert expected <= set(marks.marks)
    assert all(marks.marks[name] > 0 for name in expected), marks.marks
    shot = tmp_path / "report.png"
    subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}", f"--screenshot={shot}", "--window-size=900,2000",
                    page.as_uri()], capture_output=True, timeout=120, check=True)
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one
