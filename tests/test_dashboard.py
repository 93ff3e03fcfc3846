"""`automl dashboard`: a real server (a subprocess on port 0) against a run in progress; its
pages fetched with urllib and loaded in Debian's headless Chromium."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from conftest import ROOT, _interactive_signals, pace_jobs, start_run, wait_for

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def start_dashboard(mmar, *args):
    """`automl dashboard -m MMAR --port 0 ARGS` in the background; returns it and the URL it printed."""
    env = dict(os.environ)
    proc = subprocess.Popen([sys.executable, "-m", "automl_cli", "dashboard", "-m", str(mmar), "--port", "0", *args],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=_interactive_signals)
    line = proc.stdout.readline()
    match = re.search(r"(http://\S+)", line)
    assert match, (line, proc.stderr.read() if proc.poll() is not None else "")
    return proc, match.group(1)


def stop(proc, how=signal.SIGINT) -> tuple[int, str]:
    proc.send_signal(how)
    out, err = proc.communicate(timeout=20)
    return proc.returncode, out + err


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def seq(base: str, run_id: str) -> dict:
    return json.loads(get(f"{base}/api/run/{run_id}/seq")[1])


def listening_on(port: int) -> set[str]:
    """The local addresses listening on `port` (IPv4, from /proc/net/tcp)."""
    found = set()
    with open("/proc/net/tcp") as handle:
        for line in list(handle)[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hexport = local.split(":")
            if state == "0A" and int(hexport, 16) == port:
                found.add(".".join(str(int(address[i:i + 2], 16)) for i in (6, 4, 2, 0)))
    return found


@pytest.fixture
def live_run(fake_mmar):
    """A run of 4 jobs on one worker, each epoch 1 s: a job ends every few seconds."""
    pace_jobs(fake_mmar, 1.0)
    run = start_run(fake_mmar, "--run-id", "live", "--workers", "0")
    journal = fake_mmar / "automl" / "live" / "journal.db"
    assert wait_for(journal.is_file, 60)
    yield fake_mmar, run
    if run.poll() is None:
        run.send_signal(signal.SIGINT)
    run.communicate(timeout=60)


def test_dashboard_serves_the_runs_read_only_on_localhost(live_run):
    mmar, run = live_run
    proc, url = start_dashboard(mmar, "--run-id", "latest", "--refresh", "0.5")
    try:
        base = url.split("/run/")[0]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/run/live")
        port = int(base.rsplit(":", 1)[1])
        assert listening_on(port) == {"127.0.0.1"}
        status, index = get(base + "/")
        assert status == 200
        for column in ("run", "algorithm", "status", "jobs", "best", "started", "duration"):
            assert f"<th>{column}</th>" in index
        assert "href='/run/live'" in index and "random" in index
        status, page = get(url)
        assert status == 200 and page.count("</body>") == 1
        assert "id='automl-seq'" in page and "/api/run/live/seq" in page
        with urllib.request.urlopen(base + "/run/latest", timeout=30) as response:  # latest: the newest run
            assert response.url == base + "/run/live"
        state = seq(base, "live")
        assert state["run_id"] == "live" and state["last_seq"] > 0
        # a long poll: answered once the journal moved on from `after` (an epoch ends each second)
        moved = json.loads(get(f"{base}/api/run/live/seq?after={state['last_seq']}&wait=10")[1])
        assert moved["last_seq"] > state["last_seq"]
        rows = json.loads(get(base + "/api/runs")[1])
        assert [r["run_id"] for r in rows] == ["live"] and rows[0]["last_seq"] >= state["last_seq"]
        assert "live" in json.loads(get(base + "/api/run/live")[1])
        status, missing = get(base + "/run/nope")
        assert status == 404 and "no run &#x27;nope&#x27;" in missing and "href='/run/live'" in missing
        status, missing = get(base + "/api/run/nope")
        assert status == 404 and json.loads(missing)["runs"] == ["live"]

        # once the run has ended, serving it writes nothing in its folder; SQLite's own side files of a
        # WAL journal (journal.db-wal, -shm) aside: any reader, `automl status` too, opens them, creating
        # empty ones when the run's last close removed them
        run_dir = mmar / "automl" / "live"
        assert wait_for(lambda: seq(base, "live")["status"] != "running", 120)
        run.wait(timeout=60)  # its last writes (the journal's checkpoint) done

        def files():
            return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in run_dir.rglob("*") 
                    if p.name not in ("journal.db-shm", "journal.db-wal")}
        before = files()
        for path in ("/", "/run/live", "/api/runs", "/api/run/live", "/api/run/live/seq"):
            assert get(base + path)[0] == 200
        last, began = seq(base, "live")["last_seq"], time.monotonic()
        assert json.loads(get(f"{base}/api/run/live/seq?after={last}&wait=5")[1])["last_seq"] == last
        assert time.monotonic() - began < 4  # a finished run has no news to wait for
        assert files() == before
    finally:
        code, output = stop(proc)
    assert code == 0 and output.strip().splitlines()[-1] == "automl dashboard: stopped"


def test_an_unknown_run_id_is_one_line_listing_the_runs(live_run):
    from conftest import run_cli

    result = run_cli("dashboard", "-m", str(live_run[0]), "--run-id", "nope", "--port", "0")
    assert result.returncode == 2 and "no run 'nope'" in result.stderr and "live" in result.stderr


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed here (CI installs it)")
def test_the_page_updates_in_chromium_as_jobs_end(fake_mmar, tmp_path):
    pace_jobs(fake_mmar, [0.05, 600])  # the first job holds in its second epoch
    run = start_run(fake_mmar, "--run-id", "live", "--workers", "0", "--set", "automl_max_recommendations=2")
    assert wait_for((fake_mmar / "automl" / "live" / "journal.db").is_file, 60)
    proc, url = start_dashboard(fake_mmar, "--run-id", "live", "--refresh", "0.25")
    base = url.split("/run/")[0]

    def chromium(name: str, *args: str, background: bool = False):
        command = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / name}", *args, url]
        if background:
            return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr[-2000:]
        return result.stdout

    def load(name: str, screenshot: bool = False) -> str:
        if screenshot:
            chromium(name, "--window-size=1200,900", f"--screenshot={tmp_path / (name + '.png')}")
        dom = chromium(name + "-dom", "--dump-dom")
        assert "</html>" in dom and 'id="automl-seq"' in dom  # the page itself, not a browser's error page
        return dom

    def shown(dom: str, ident: str) -> str:
        return re.search(rf"id=\"{ident}\">([^<]*)<", dom).group(1)

    def completed() -> int:
        return seq(base, "live")["counts"].get("completed", 0)

    try:
        # loaded twice, as the first job ends between: the jobs and the events shown grow
        assert wait_for(lambda: seq(base, "live")["jobs"] >= 1 and seq(base, "live")["last_seq"] >= 3, 60)
        first = load("first")
        pace_jobs(fake_mmar, 0.05)  # let it go
        assert wait_for(lambda: completed() >= 1, 60)
        pace_jobs(fake_mmar, [1.0, 1.0, 600])  # the second (last) job holds in its last epoch
        second = load("second", screenshot=True)
        assert int(shown(second, "automl-seq")) > int(shown(first, "automl-seq"))
        assert int(shown(second, "automl-finished")) > int(shown(first, "automl-finished"))
        assert (tmp_path / "second.png").stat().st_size > 1000

        # one browser session: the page waits for news, and reloads itself when the held job is let go
        # and the run ends (virtual time stands still while the page's question is pending)
        assert wait_for(lambda: list(seq(base, "live")["running"].values()) == [2], 30)  # held in epoch 3
        held = seq(base, "live")["last_seq"]
        session = chromium("session", "--virtual-time-budget=1000", "--dump-dom", background=True)
        time.sleep(4)  # the page loaded, its question pending (a question waits up to 10 s)
        assert seq(base, "live")["last_seq"] == held and session.poll() is None
        pace_jobs(fake_mmar, 0.05)
        live, err = session.communicate(timeout=60)
        assert session.returncode == 0, err[-2000:]
        assert 'data-automl-reloaded="yes"' in live and int(shown(live, "automl-seq")) > held
        assert shown(live, "automl-status") == "completed" and shown(live, "automl-finished") == "2"
    finally:
        code, output = stop(proc, signal.SIGTERM)
        if run.poll() is None:
            run.send_signal(signal.SIGINT)
        run.communicate(timeout=60)
    assert code == 0 and output.strip().splitlines()[-1] == "automl dashboard: stopped"


def test_host_0000_exposes_it_on_purpose_and_says_so(fake_mmar):
    proc, url = start_dashboard(fake_mmar, "--host", "0.0.0.0")
    try:
        port = int(url.rsplit(":", 1)[1].strip("/"))
        assert listening_on(port) == {"0.0.0.0"}
        status, index = get(f"http://127.0.0.1:{port}/")
        assert status == 200 and "no runs yet" in index
    finally:
        code, output = stop(proc)
    assert code == 0
    assert "automl: warning: listening on every interface (--host 0.0.0.0)" in output
