"""`automl dashboard`: the report's pages served live, from the journals, while runs go on.

Standard library HTTP only (http.server.ThreadingHTTPServer). Read-only: it opens the
journals read-only, never writes in a run folder and never takes a run's lock (only the
same instant shared probe `automl runs` makes to tell a live run from an interrupted one).

Pages: `/` lists every run of the MMAR (the columns of `automl runs`); `/run/<id>` is the
report page of one run (`latest` redirects to the newest), refreshed by a small script that
asks `/api/run/<id>/seq?after=N&wait=S` and reloads, keeping the scroll position, when the
journal's last event is no longer N. That request is a long poll: the server answers as soon
as the journal moved on (checking it every --refresh seconds), or after S seconds (at most
MAX_WAIT) with nothing new, so a page learns of a new event within one check without asking
again and again. JSON: `/api/runs` (automl runs --json's rows, with each run's last_seq),
`/api/run/<id>` (status --json), `/api/run/<id>/seq`. An unknown run is a 404 page
listing the runs there are.
"""
from __future__ import annotations

import html
import json
import os
import threading
import time
from collections import OrderedDict
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

from .runfolder import LATEST, run_folders
from .runlist import COLUMNS, row_cells, run_row
from .status import RunView
from .store import JOURNAL

PAGES_KEPT = 8  # rendered pages cached
MAX_WAIT = 10.0  # seconds a page's question may wait for news: short, as a browser holds few connections per host
_STYLE = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
          "td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px;text-align:left}")


def _journal_key(run_dir: Path) -> tuple:
    """What changes when the journal gets an event: the journal's and its WAL's size and mtime."""
    key = []
    for name in (JOURNAL, JOURNAL + "-wal"):
        try:
            st = os.stat(run_dir / name)
            key.append((st.st_size, st.st_mtime_ns))
        except OSError:
            key.append(None)
    return tuple(key)


class Runs:
    """The MMAR's runs, each RunView (and its rendered page) cached until its journal changes."""

    def __init__(self, mmar, automlconf: str | None, refresh_seconds: float):
        self.mmar, self.automlconf, self.refresh_seconds = mmar, automlconf, refresh_seconds
        self._views: dict[Path, tuple[tuple, RunView]] = {}
        # rendered pages, the most recently served few only: one holds plotly.js, megabytes
        self._pages: OrderedDict[Path, tuple[tuple, str]] = OrderedDict()
        self._lock = threading.Lock()

    def folders(self) -> list[Path]:
        return run_folders(self.mmar, self.automlconf)

    def find(self, run_id: str) -> Path | None:
        folders = self.folders()
        for folder in folders:
            if folder.name == run_id:
                return folder
        if run_id == LATEST and folders:
            return folders[0]
        return None

    def view(self, run_dir: Path) -> RunView:
        key = _journal_key(run_dir)
        with self._lock:
            cached = self._views.get(run_dir)
        if cached is not None and cached[0] == key:
            return cached[1]
        view = RunView.load(run_dir)  # a damaged journal raises DamagedJournal: the caller says so
        with self._lock:
            self._views[run_dir] = (key, view)
        return view

    def rows(self) -> list[dict]:
        rows = []
        for folder in self.folders():
            row = run_row(folder, self.view)
            try:
                row["last_seq"] = self.view(folder).last_seq
            except Exception:  # a damaged journal: its row says so already
                row["last_seq"] = None
            rows.append(row)
        return rows

    def page(self, run_dir: Path) -> str:
        from .report import render_page

        view = self.view(run_dir)
        status = live_status(view, run_dir)
        with self._lock:
            cached = self._pages.get(run_dir)
        if cached is not None and cached[0] == (view.last_seq, status):
            return cached[1]
        page = render_page([view], refresh_seconds=self.refresh_seconds)
        page = _inject(page, _banner(view, run_dir.name, status)
                       + _poller(f"/api/run/{quote(run_dir.name)}/seq", view.last_seq, self.refresh_seconds))
        with self._lock:
            self._pages[run_dir] = ((view.last_seq, status), page)
            self._pages.move_to_end(run_dir)
            while len(self._pages) > PAGES_KEPT:
                self._pages.popitem(last=False)
        return page


def live_status(view: RunView, run_dir: Path) -> str:
    """The run's status as `automl runs` says it: a journal that says running with no `automl
    run` holding the folder is an interrupted run."""
    from .control import is_running

    if view.status == "running" and not is_running(run_dir):
        return "interrupted"
    return view.status


def _inject(page: str, extra: str) -> str:
    """`extra` just before the page's </body> (at its end when it has none)."""
    at = page.rfind("</body>")
    return page + extra if at < 0 else page[:at] + extra + page[at:]


def _banner(view: RunView, run_id: str, status: str) -> str:
    """A fixed corner line saying this page is live and what of the journal it shows."""
    jobs = len(view.jobs)
    finished = sum(1 for j in view.jobs.values() if j.status != "running")
    return ("<div id='automl-live' style='position:fixed;top:0;right:0;background:#fffbe6;border:1px solid #e0c060;"
            "padding:4px 8px;font:12px sans-serif;z-index:1000'>"
            f"<a href='/'>all runs</a> · run <b>{html.escape(run_id)}</b> · <span id='automl-status'>"
            f"{html.escape(status)}</span> · jobs <span id='automl-jobs'>{jobs}</span> "
            f"(<span id='automl-finished'>{finished}</span> finished) · journal event "
            f"<span id='automl-seq'>{view.last_seq}</span> · <span id='automl-note'>live</span></div>")


def _poller(url: str, seq, seconds: float) -> str:
    """Ask `url` whether the journal moved on from `seq` (a long poll of up to MAX_WAIT
    seconds); reload the page, keeping its scroll position, when it did; else ask again
    `seconds` later."""
    return ("<script>(function(){var seen=" + json.dumps(seq) + ",url=" + json.dumps(url)
            + ",every=" + json.dumps(int(seconds * 1000)) + ",wait=" + json.dumps(MAX_WAIT)
            + ",key='automl-scroll:'+location.pathname;"
            "var y=sessionStorage.getItem(key);if(y!==null){sessionStorage.removeItem(key);"
            "document.documentElement.dataset.automlReloaded='yes';window.scrollTo(0,parseFloat(y));}"
            "function note(t){var n=document.getElementById('automl-note');if(n)n.textContent=t;}"
            "function poll(){fetch(url+'?after='+encodeURIComponent(seen)+'&wait='+wait,{cache:'no-store'})"
            ".then(function(r){return r.json();}).then(function(d){"
            "if(JSON.stringify(d.last_seq)!==JSON.stringify(seen)){"
            "sessionStorage.setItem(key,String(window.scrollY));note('updating');location.reload();return;}"
            "note('live, checked '+new Date().toLocaleTimeString());setTimeout(poll,every);"
            "}).catch(function(){note('dashboard not reachable; retrying');setTimeout(poll,every);});}"
            "setTimeout(poll,every);})();</script>")


def _index_page(runs: Runs, rows: list[dict], refresh_seconds: float, title: str = "",
                message: str = "") -> str:
    heading = title or f"AutoML runs of {runs.mmar.root}"
    body = [f"<h1>{html.escape(heading)}</h1>"]
    if message:
        body.append(f"<p>{message}</p>")
    if rows:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
        lines = []
        for row in rows:
            cells = row_cells(row)
            link = f"<a href='/run/{quote(row['run_id'])}'>{html.escape(cells[0])}</a>"
            lines.append("<tr>" + f"<td>{link}</td>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells[1:])
                         + "</tr>")
        body.append(f"<table id='runs'><tr>{head}</tr>{''.join(lines)}</table>")
    else:
        body.append("<p>no runs yet</p>")
    signature = [[r["run_id"], r["last_seq"], r["status"]] for r in rows]
    poll = ("<script>(function(){var seen=" + json.dumps(json.dumps(signature)) + ",every="
            + json.dumps(int(refresh_seconds * 1000))
            + ";function poll(){fetch('/api/runs',{cache:'no-store'}).then(function(r){return r.json();})"
            ".then(function(rows){var now=JSON.stringify(rows.map(function(r){return [r.run_id,r.last_seq,"
            "r.status];}));if(now!==seen){location.reload();return;}setTimeout(poll,every);})"
            ".catch(function(){setTimeout(poll,every);});}setTimeout(poll,every);})();</script>")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(heading)}</title>"
            f"<style>{_STYLE}</style></head><body>{''.join(body)}{poll}</body></html>")


def make_handler(runs: Runs):
    class Handler(BaseHTTPRequestHandler):
        server_version = "automl-dashboard"

        def log_message(self, format, *args):  # noqa: A002 - quiet: the terminal shows the URL only
            pass

        def send(self, status: int, body: str, kind: str = "text/html; charset=utf-8", extra=()) -> None:
            data = body.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            for name, value in extra:
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def send_json(self, data, status: int = 200) -> None:
            self.send(status, json.dumps(data, indent=1), "application/json")

        def do_HEAD(self) -> None:  # noqa: N802
            self.do_GET()

        def do_GET(self) -> None:  # noqa: N802
            try:
                self.route(unquote(urlsplit(self.path).path))
            except (BrokenPipeError, ConnectionResetError):
                pass
            except Exception as exc:  # one bad journal never stops the dashboard
                self.send(500, f"<!doctype html><p>automl dashboard: {html.escape(type(exc).__name__)}: "
                               f"{html.escape(str(exc))}</p>")

        def route(self, path: str) -> None:
            parts = [p for p in path.split("/") if p]
            if not parts:
                self.send(200, _index_page(runs, runs.rows(), runs.refresh_seconds))
            elif parts == ["api", "runs"]:
                self.send_json(runs.rows())
            elif parts[0] == "run" and len(parts) == 2:
                run_dir = self.run_or_404(parts[1])
                if run_dir is None:
                    return
                if parts[1] != run_dir.name:  # latest: the page of the run it names, so its poller keeps to it
                    self.send(302, "", extra=[("Location", f"/run/{quote(run_dir.name)}")])
                    return
                self.send(200, runs.page(run_dir))
            elif parts[:2] == ["api", "run"] and len(parts) in (3, 4) and parts[3:] in ([], ["seq"]):
                run_dir = self.run_or_404(parts[2], as_json=True)
                if run_dir is None:
                    return
                if len(parts) == 3:
                    self.send_json(runs.view(run_dir).status_json())
                else:
                    view = self.wait_for_news(run_dir, parse_qs(urlsplit(self.path).query))
                    self.send_json({"run_id": run_dir.name, "last_seq": view.last_seq,
                                    "status": live_status(view, run_dir),
                                    "jobs": len(view.jobs), "counts": view.counts(),
                                    "running": {j.name: j.epoch for j in view.running()}})
            else:
                self.not_found(f"no page {path}")

        def wait_for_news(self, run_dir: Path, query: dict) -> RunView:
            """The run's view once its last event is no longer `after`, or when `wait` seconds
            (at most MAX_WAIT) have passed; at once without `after`, or when the run has finished
            (its next event, if any, is a resume's)."""
            view = runs.view(run_dir)
            try:
                after = int(query["after"][0])
                wait = min(MAX_WAIT, max(0.0, float(query.get("wait", [MAX_WAIT])[0])))
            except (KeyError, ValueError, IndexError):
                return view
            deadline = time.monotonic() + wait
            while view.last_seq == after and view.status == "running" and time.monotonic() < deadline:
                time.sleep(max(0.0, min(runs.refresh_seconds, deadline - time.monotonic())))
                view = runs.view(run_dir)
            return view

        def run_or_404(self, run_id: str, as_json: bool = False) -> Path | None:
            run_dir = runs.find(run_id)
            if run_dir is None:
                self.not_found(f"no run '{run_id}'", as_json)
            return run_dir

        def not_found(self, what: str, as_json: bool = False) -> None:
            names = [folder.name for folder in runs.folders()]
            if as_json:
                self.send_json({"error": what, "runs": names}, 404)
                return
            rows = runs.rows()
            self.send(404, _index_page(runs, rows, runs.refresh_seconds, title=what,
                                       message=html.escape(f"{what} in {runs.mmar.root}; ")
                                       + ("the runs there, newest first:" if rows else "there are no runs yet")))
    return Handler


def serve(mmar, automlconf: str | None, host: str, port: int, refresh_seconds: float) -> ThreadingHTTPServer:
    """A bound server (not yet serving): its server_address holds the port picked for 0."""
    runs = Runs(mmar, automlconf, refresh_seconds)
    server = ThreadingHTTPServer((host, port), make_handler(runs))
    server.daemon_threads = True
    server.runs = runs  # type: ignore[attr-defined]
    return server
